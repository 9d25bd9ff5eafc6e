using System.Collections.Concurrent;
using System.Diagnostics;
using System.Threading.Channels;
using Engine.Storage;

namespace Engine.Datasets;

/// <summary>
/// Writes a synthetic customer base (see <see cref="GeneratedDatasets"/> for the contract): web and app events,
/// CRM profiles with history and duplicates, consent over time, and the ground truth of who is who.
/// </summary>
/// <remarks>
/// <para>People are simulated in fixed-size blocks, each from its own random stream seeded by (seed, block), so the
/// output is a pure function of the options: the same options give byte-identical files whatever the parallelism.
/// Blocks are generated in parallel (at most 2 × <see cref="GeneratorOptions.Parallelism"/> in flight) and written in
/// block order; their column buffers are then reused, so memory stays bounded by a few blocks plus the Parquet
/// writers' open row groups, whatever the number of people.</para>
/// <para>What the data contains (the realism model) is described on <see cref="BlockGenerator"/> and its knobs in
/// <see cref="Realism"/>. Crawler bots are people of their own (truth kind <c>bot</c>, with a person_id), never
/// identified; junk placeholder values and values shared by several people have a NULL person_id.</para>
/// </remarks>
public sealed class SyntheticGenerator
{
    private readonly GeneratorOptions _options;

    /// <summary>Checks the options; throws <see cref="ArgumentOutOfRangeException"/> naming the first invalid one.</summary>
    public SyntheticGenerator(GeneratorOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
    }

    /// <summary>
    /// Generates the data set into <c>events/</c>, <c>profiles/</c>, <c>consent/</c> and <c>truth/</c> under
    /// <paramref name="output"/>. Each dataset is published atomically when complete; on failure or cancellation
    /// nothing new is published.
    /// </summary>
    public async Task<GenerationSummary> GenerateAsync(StorageLocation output, IProgress<GenerationProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        if (_options.WriteFrom is not null)
        {
            throw new InvalidOperationException("WriteFrom is for appends: use AppendDayAsync");
        }
        var summary = await GenerateAsync(
            output.Child(GeneratedDatasets.EventsFolder), output.Child(GeneratedDatasets.ProfilesFolder), output.Child(GeneratedDatasets.ConsentFolder),
            output.Child(GeneratedDatasets.TruthFolder), progress, cancellationToken);
        if (_options.FutureDays > 0)
        {
            // Written last: a data set that can grow says so only once it is complete.
            await GeneratorState.From(_options).WriteAsync(output, cancellationToken);
        }
        return summary;
    }

    /// <summary>
    /// Appends the next day of a data set generated with <see cref="GeneratorOptions.FutureDays"/> (its
    /// <c>_generator.json</c> says how): the same simulation, of the same people, with rows from the data set's as-of
    /// to one day later written as new files, <c>&lt;dataset&gt;/day-yyyy-MM-dd/part-NNNNN.parquet</c>, beside the old ones
    /// (which are not touched), and added to each dataset's <c>_dataset.json</c>; <c>truth/</c> is written again for
    /// the longer history. Appending a day again after a failure writes the same files again.
    /// </summary>
    /// <returns>What the slice holds, and the state after it (its <see cref="GeneratorState.AsOf"/> is the new end of the history).</returns>
    public static async Task<(GenerationSummary Summary, GeneratorState State)> AppendDayAsync(
        StorageLocation output, int? parallelism = null, IProgress<GenerationProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var state = await GeneratorState.ReadAsync(output, cancellationToken)
            ?? throw new DataException(output.Child(GeneratorState.FileName).ToString(),
                "not found: only a data set generated with future days (engine generate --future-days N) can be appended to");
        var next = state.AsOf.AddDays(1);
        if (next > state.SimulatedUntil)
        {
            throw new DataException(output.Child(GeneratorState.FileName).ToString(),
                $"the simulation of this data set ends at {state.SimulatedUntil:yyyy-MM-dd}: every simulated day is written; generate it again with more --future-days");
        }
        var options = new GeneratorOptions
        {
            People = state.People,
            Seed = state.Seed,
            AsOf = next,
            Days = (int)Math.Round((next - state.WindowStart).TotalDays),
            FutureDays = (int)Math.Round((state.SimulatedUntil - next).TotalDays),
            WriteFrom = state.AsOf,
            Parallelism = parallelism ?? Environment.ProcessorCount,
            // The same blocks of people, each with its own random stream: the same simulation.
            BlockSize = state.BlockSize > 0 ? state.BlockSize : new GeneratorOptions { People = 1, Seed = 0 }.BlockSize,
        };
        var slice = $"day-{state.AsOf.UtcDateTime:yyyy-MM-dd}";
        var folders = new[] { GeneratedDatasets.EventsFolder, GeneratedDatasets.ProfilesFolder, GeneratedDatasets.ConsentFolder };
        var summary = await new SyntheticGenerator(options).GenerateAsync(
            output.Child(folders[0]).Child(slice), output.Child(folders[1]).Child(slice), output.Child(folders[2]).Child(slice),
            output.Child(GeneratedDatasets.TruthFolder), progress, cancellationToken);
        foreach (var folder in folders)
        {
            await AddSliceAsync(output.Child(folder), slice, cancellationToken);
        }
        var after = GeneratorState.From(options);
        await after.WriteAsync(output, cancellationToken);
        return (summary, after);
    }

    /// <summary>Lists the committed files of <paramref name="dataset"/>/<paramref name="slice"/> in the dataset's own <c>_dataset.json</c> (its commit point).</summary>
    private static async Task AddSliceAsync(StorageLocation dataset, string slice, CancellationToken cancellationToken)
    {
        var store = dataset.Store;
        var manifestLocation = dataset.Child(DatasetManifest.FileName);
        var parentBytes = await store.GetAsync(manifestLocation.Key, cancellationToken)
            ?? throw new DataException(manifestLocation.ToString(), "not found: the dataset was not written by engine generate");
        var parent = DatasetManifest.Parse(parentBytes, manifestLocation.ToString());
        var sliceLocation = dataset.Child(slice).Child(DatasetManifest.FileName);
        var sliceManifest = DatasetManifest.Parse(
            await store.GetAsync(sliceLocation.Key, cancellationToken) ?? throw new DataException(sliceLocation.ToString(), "not found"), sliceLocation.ToString());
        // The same day appended again (after a failure) replaces its own entries.
        parent.Files.RemoveAll(f => f.Path.StartsWith(slice + "/", StringComparison.Ordinal));
        foreach (var file in sliceManifest.Files)
        {
            parent.Files.Add(new DatasetManifestFile { Path = $"{slice}/{file.Path}", Rows = file.Rows, Bytes = file.Bytes });
        }
        parent.Rows = parent.Files.Sum(f => f.Rows);
        await store.PutAsync(manifestLocation.Key, parent.ToUtf8Json(), cancellationToken);
    }

    private async Task<GenerationSummary> GenerateAsync(
        StorageLocation eventsLocation, StorageLocation profilesLocation, StorageLocation consentLocation, StorageLocation truthLocation,
        IProgress<GenerationProgress>? progress, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var context = new GeneratorContext(_options);
        var blockSize = _options.BlockSize;
        var blocks = (_options.People + blockSize - 1) / blockSize;
        var inFlight = Math.Max(2, 2 * _options.Parallelism);

        await using var events = await ParquetDatasetWriter.CreateAsync(eventsLocation, context.EventsSchema, GeneratedDatasets.EventsWriteOptions, cancellationToken);
        await using var profiles = await ParquetDatasetWriter.CreateAsync(profilesLocation, context.ProfilesSchema, GeneratedDatasets.ProfilesWriteOptions, cancellationToken);
        await using var consent = await ParquetDatasetWriter.CreateAsync(consentLocation, context.ConsentSchema, GeneratedDatasets.ConsentWriteOptions, cancellationToken);
        await using var truth = await ParquetDatasetWriter.CreateAsync(truthLocation, context.TruthSchema, GeneratedDatasets.TruthWriteOptions, cancellationToken);

        // Junk values belong to nobody and recur in every block: their truth rows are written once, first.
        var junk = new BatchBuffers(context.TruthSchema);
        IdentifierTable.WriteJunkTruth(junk);
        truth.Write(junk.Build());

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var pool = new ConcurrentBag<BlockOutput>();
        using var slots = new SemaphoreSlim(inFlight);
        using var cores = new SemaphoreSlim(_options.Parallelism);
        var pending = Channel.CreateUnbounded<Task<BlockOutput>>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });

        // The producer starts blocks in order, at most inFlight ahead of the writer; workers take a free core each.
        var producer = Task.Run(async () =>
        {
            try
            {
                for (long block = 0; block < blocks; block++)
                {
                    await slots.WaitAsync(stop.Token);
                    var index = block;
                    var task = Task.Run(async () =>
                    {
                        await cores.WaitAsync(stop.Token);
                        try
                        {
                            var buffers = pool.TryTake(out var reused) ? reused : new BlockOutput(context);
                            buffers.Generator.Generate(index);
                            return buffers;
                        }
                        finally
                        {
                            cores.Release();
                        }
                    }, stop.Token);
                    await pending.Writer.WriteAsync(task, stop.Token);
                }
                pending.Writer.Complete();
            }
            catch (Exception e)
            {
                pending.Writer.TryComplete(e);
            }
        }, CancellationToken.None);

        long peopleDone = 0, eventRows = 0, profileRows = 0, consentRows = 0, truthRows = junk.Rows;
        try
        {
            await foreach (var task in pending.Reader.ReadAllAsync(stop.Token))
            {
                var block = await task;
                var batches = block.Build();
                events.Write(batches[0]);
                profiles.Write(batches[1]);
                consent.Write(batches[2]);
                truth.Write(batches[3]);
                peopleDone += block.People;
                eventRows += batches[0].Length;
                profileRows += batches[1].Length;
                consentRows += batches[2].Length;
                truthRows += batches[3].Length;
                pool.Add(block);
                slots.Release();
                progress?.Report(new GenerationProgress(peopleDone, _options.People, eventRows));
            }
        }
        finally
        {
            // On failure, stop the producer and let running blocks finish before the writers are disposed.
            await stop.CancelAsync();
            try
            {
                await producer;
                while (pending.Reader.TryRead(out var task))
                {
                    await task.ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
                }
            }
            catch (OperationCanceledException)
            {
            }
        }
        cancellationToken.ThrowIfCancellationRequested();

        await events.CommitAsync(cancellationToken);
        await profiles.CommitAsync(cancellationToken);
        await consent.CommitAsync(cancellationToken);
        await truth.CommitAsync(cancellationToken);
        return new GenerationSummary(_options.People, eventRows, profileRows, consentRows, truthRows, clock.Elapsed);
    }
}
