using System.Diagnostics;
using System.Reflection;
using System.Text.RegularExpressions;
using Engine.Diagnostics;
using Engine.Identity;
using Engine.Ingest;
using Engine.Profiles;
using Engine.Scores;
using Engine.Segments;
using Engine.Storage;
using Engine.Workspaces;
using Microsoft.Extensions.Logging;

namespace Engine.Runs;

/// <summary>What to run.</summary>
public sealed record RunOptions
{
    /// <summary>The run id; by default the start time, <c>yyyyMMddTHHmmssZ</c>.</summary>
    public string? RunId { get; init; }

    /// <summary>The instant the run computes "now" as (time windows, recency); by default the start time.</summary>
    public DateTimeOffset? AsOf { get; init; }

    /// <summary>Rebuild the identity graph from all history instead of adding only new files to the previous run's graph.</summary>
    public bool FullRefresh { get; init; }

    /// <summary>A local folder for scratch files; the system temp folder by default.</summary>
    public string? ScratchDirectory { get; init; }

    /// <summary>Workers per stage; the results do not depend on it.</summary>
    public int Parallelism { get; init; } = Environment.ProcessorCount;
}

/// <summary>Progress of a run, for a progress display.</summary>
/// <param name="Stage">The stage running.</param>
/// <param name="Detail">What it is doing, for a progress line.</param>
/// <param name="Fraction">Done so far, 0 to 1; negative when the stage cannot know its total.</param>
/// <param name="Rows">Rows the stage has read so far (for a rate), 0 when it is not reading.</param>
public readonly record struct RunProgress(string Stage, string Detail, double Fraction, long Rows = 0);

/// <summary>
/// The result of a run: its manifest and where it was written. The stage results are those of the stages this
/// attempt ran (a resumed run has none for the stages it reused).
/// </summary>
public sealed record RunResult(RunManifest Manifest, string ManifestLocation, IngestResult? Ingest, IdentityResult? Identity = null, ProfilesResult? Profiles = null, SegmentsResult? Segments = null)
{
    /// <summary>The run id had already succeeded: nothing was run, <see cref="Manifest"/> is the earlier one.</summary>
    public bool AlreadySucceeded { get; init; }
}

/// <summary>
/// Runs the pipeline's stages in order for one workspace and writes the run under
/// <c>&lt;output&gt;/runs/&lt;run_id&gt;/</c>, its manifest last. The stages: ingest, identity, training (when the workspace has models),
/// profiles, scores (when it has models), segments (members and deltas).
/// </summary>
public sealed partial class RunExecutor
{
    private readonly StorageResolver _storage;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;

    public RunExecutor(StorageResolver storage, ILogger logger, TimeProvider? time = null)
    {
        _storage = storage;
        _logger = logger;
        _time = time ?? TimeProvider.System;
    }

    /// <summary>The version recorded in manifests.</summary>
    public static string EngineVersion { get; } =
        typeof(RunExecutor).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";

    /// <summary>
    /// Runs every stage. A stage failure is recorded in a manifest with status <c>failed</c> (so the run is visible
    /// as failed, never as done) and rethrown.
    /// </summary>
    public async Task<RunResult> ExecuteAsync(Workspace workspace, RunOptions options, IProgress<RunProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var started = _time.GetUtcNow();
        var runId = options.RunId ?? started.ToString("yyyyMMdd'T'HHmmss'Z'", System.Globalization.CultureInfo.InvariantCulture);
        if (!RunIdPattern().IsMatch(runId))
        {
            throw new EngineException($"invalid run id '{runId}': use letters, digits, '.', '_' and '-' (at most 100)");
        }
        var runsLocation = _storage.Resolve(workspace.Output, workspace.Directory).Child("runs");
        var runLocation = runsLocation.Child(runId);
        var manifestLocation = runLocation.Child(RunManifest.FileName);
        using var runLock = RunLock.Acquire(workspace, runsLocation);

        // The same run id again: a run that succeeded is done; a run that was killed or failed resumes from its
        // checkpoint, after the last stage whose output it committed.
        var checkpoint = await RunCheckpoint.ReadAsync(runLocation, cancellationToken);
        if (await RunHistory.ReadAsync(runsLocation, runId, cancellationToken) is { Status: RunStatus.Succeeded } done)
        {
            if (options.AsOf is { } asked && asked != done.AsOf)
            {
                throw new EngineException($"run '{runId}' already succeeded as of {done.AsOf:O}; a run as of {asked:O} needs a new --run-id");
            }
            if (checkpoint is not null)
            {
                // Killed after its manifest was written: the manifest is the commit point, the checkpoint is stale.
                await RunCheckpoint.DeleteAsync(runLocation, cancellationToken);
            }
            Log.RunAlreadySucceeded(_logger, runId, done.AsOf);
            return new RunResult(done, manifestLocation.ToString(), null) { AlreadySucceeded = true };
        }
        // Under the lock no live writer owns what a killed attempt left in the run's folder.
        (runLocation.Store as LocalObjectStore)?.RemoveAbandonedWrites(runLocation.Key);
        var definitionHash = RunCheckpoint.DefinitionHashOf(workspace);
        RunManifest manifest;
        var completed = new List<string>();
        if (checkpoint is not null)
        {
            manifest = checkpoint.Manifest;
            if (options.AsOf is { } asked && asked != manifest.AsOf)
            {
                throw new EngineException($"run '{runId}' was started as of {manifest.AsOf:O} and is unfinished: resume it as of the same time (or without --as-of), or start a new run with a new --run-id");
            }
            if (manifest.EngineVersion != EngineVersion)
            {
                throw new EngineException($"run '{runId}' was started by engine {manifest.EngineVersion} and is unfinished; engine {EngineVersion} cannot resume it: start a new run with a new --run-id");
            }
            if (checkpoint.DefinitionHash != definitionHash)
            {
                throw new EngineException($"the workspace's definition changed since run '{runId}' was started; a resumed run reuses the outputs of the stages it finished, so it must run the same definition: restore the files, or start a new run with a new --run-id");
            }
            completed.AddRange(checkpoint.Completed);
            manifest.Attempts++;
            manifest.Error = null;
            Log.RunResumed(_logger, runId, manifest.Attempts, string.Join(", ", completed));
        }
        else
        {
            manifest = new RunManifest
            {
                RunId = runId,
                Workspace = workspace.Name,
                AsOf = options.AsOf ?? started,
                StartedAt = started,
                EngineVersion = EngineVersion,
            };
        }
        manifest.Status = RunCheckpoint.Running;
        var asOf = manifest.AsOf;
        var attempt = manifest.Attempts;
        // Written only where every stage recorded so far has committed its output: the manifest's stages are the done ones.
        Task CheckpointAsync() => new RunCheckpoint { DefinitionHash = definitionHash, Manifest = manifest }.WriteAsync(runLocation, cancellationToken);
        using var activity = EngineTelemetry.ActivitySource.StartActivity("engine.run");
        activity?.SetTag("engine.run_id", runId);
        Log.RunStarted(_logger, runId, workspace.Name, asOf);

        IngestResult? ingest = null;
        IdentityResult? identity = null;
        // What identity/ says, in memory when the identity stage ran in this process: training and profiles take it
        // instead of reading identity/ back and hashing every identifier again. Let go once the profiles are built.
        Engine.Profiles.ProfileLookup? lookup = null;
        ProfilesResult? profiles = null;
        SegmentsResult? segments = null;
        try
        {
            // Segment conditions are checked against the declared profile columns first: a typo stops the run
            // before hours of reading, not after.
            SegmentSet.Check(workspace);
            ModelChecks.Check(workspace);
            if (completed.Contains("ingest"))
            {
                // manifest.Inputs came back with the checkpoint.
            }
            else
            {
                ingest = await RunStageAsync(manifest, attempt, "ingest", async () =>
                {
                    var stage = new IngestStage(_storage, _logger);
                    var report = new Progress<IngestProgress>(p => progress?.Report(new RunProgress("ingest", $"{p.Source}: {p.RowsRead:N0} rows", -1, p.RowsRead)));
                    var result = await stage.RunAsync(workspace, report, cancellationToken);
                    return (result, result.Rows, result.Rows, new Dictionary<string, long>
                    {
                        ["sources"] = result.Sources.Count,
                        ["files"] = result.Sources.Sum(s => s.Files.Count),
                        ["files_from_footer"] = result.Sources.Sum(s => s.FilesFromFooter),
                        ["files_scanned"] = result.Sources.Sum(s => s.FilesScanned),
                        ["bytes"] = result.Bytes,
                    });
                }, IngestMessage);
                manifest.Inputs.AddRange(ingest.Sources.Select(source => new RunInput
                {
                    Source = source.Name,
                    Location = source.Location,
                    Format = source.Format,
                    Files = source.Files.Count,
                    Rows = source.Rows,
                    Bytes = source.Bytes,
                    MinTimestamp = source.MinTimestamp,
                    MaxTimestamp = source.MaxTimestamp,
                    NullCounts = new Dictionary<string, long>(source.NullCounts),
                }));
                await CheckpointAsync();
            }

            if (completed.Contains("identity"))
            {
                identity = new IdentityResult(Reused(manifest.Identity, "identity"), runLocation.Child(IdentityStage.Folder));
            }
            else
            {
                identity = await RunStageAsync(manifest, attempt, "identity", async () =>
                {
                    var previous = await RunHistory.FindPreviousAsync(runsLocation, runId, asOf, "identity", cancellationToken);
                    var stage = new IdentityStage(_storage, _logger);
                    // A full build reads every row of the sources with identifiers, which ingest counted: a known total.
                    var full = previous is null || options.FullRefresh;
                    var total = SourceRows(manifest, workspace.Sources.Where(s => s.Identifiers.Count > 0 || s.CompositeIdentifiers.Count > 0).Select(s => s.Name));
                    var report = new Progress<IdentityProgress>(p =>
                    {
                        var reading = p.Step.StartsWith("reading ", StringComparison.Ordinal) && p.Step != "reading previous identities";
                        progress?.Report(new RunProgress("identity", $"{p.Step}: {p.Done:N0}", reading && full && total > 0 ? (double)p.Done / total : -1, reading ? p.Done : 0));
                    });
                    var result = await stage.RunAsync(
                        workspace, runId, runLocation.Child(IdentityStage.Folder),
                        previous is null ? null : new PreviousIdentity(previous.RunId, runsLocation.Child(previous.RunId).Child(IdentityStage.Folder)),
                        new IdentityOptions { FullRefresh = options.FullRefresh, ScratchDirectory = options.ScratchDirectory, Parallelism = options.Parallelism, KeepLookup = !completed.Contains("profiles") },
                        report, cancellationToken);
                    manifest.Identity = result.Report;
                    return (result, result.Report.RowsRead, result.Report.Identifiers, new Dictionary<string, long>
                    {
                        ["identifiers"] = result.Report.Identifiers,
                        ["edges"] = result.Report.Edges,
                        ["profiles"] = result.Report.Profiles,
                        ["largest_profile"] = result.Report.LargestProfile,
                        ["links_refused"] = result.Report.LinksRefused.Values.Sum(),
                        ["shared_values"] = result.Report.SharedValues.Values.Sum(),
                    });
                });
                lookup = identity.Lookup;
                identity = identity with { Lookup = null };
                await CheckpointAsync();
            }

            if (workspace.Models.Count > 0 && !completed.Contains("training"))
            {
                // Before the profiles: a forecast model builds its own past profiles, and training them while tonight's
                // table is held would need both in memory.
                await RunStageAsync(manifest, attempt, "training", async () =>
                {
                    var registry = new ModelRegistry(_storage.Resolve(workspace.Output, workspace.Directory).Child(ModelRegistry.Folder));
                    var report = new Progress<string>(p => progress?.Report(new RunProgress("training", p, -1)));
                    var result = await new TrainingStage(_storage, _logger) { RunId = runId, Lookup = lookup }.RunAsync(
                        workspace, identity.Location, asOf, registry, options.Parallelism, report, cancellationToken);
                    manifest.Training = result;
                    var trained = result.Models.Values.Count(m => m.TrainedVersion is not null);
                    return (result, (long)result.Models.Count, (long)trained, new Dictionary<string, long>
                    {
                        ["models"] = workspace.Models.Count,
                        ["trained"] = trained,
                        ["failed"] = result.Models.Values.Count(m => m.Error is not null),
                    });
                }, result => result.Models.Count == 0 ? "no model to train: each has a version of its current definition" : null);
                await CheckpointAsync();
            }

            if (completed.Contains("profiles"))
            {
                // profiles/ was committed (with the score columns, when the workspace has models): read it back.
                progress?.Report(new RunProgress("profiles", "reading back the profiles of the earlier attempt", -1));
                var location = runLocation.Child(ProfilesStage.Folder);
                profiles = new ProfilesResult(Reused(manifest.Profiles, "profiles"), location, await ProfileTable.ReadAsync(location, cancellationToken));
            }
            else
            {
                profiles = await RunStageAsync(manifest, attempt, "profiles", async () =>
                {
                    var stage = new ProfilesStage(_storage, _logger) { Lookup = lookup };
                    // Each source is read whole, and ingest counted its rows.
                    var report = new Progress<ProfilesProgress>(p =>
                    {
                        var source = p.Step.StartsWith("reading ", StringComparison.Ordinal) ? p.Step["reading ".Length..] : null;
                        var total = source is null ? 0 : SourceRows(manifest, [source]);
                        progress?.Report(new RunProgress("profiles", $"{p.Step}: {p.Done:N0}", total > 0 ? (double)p.Done / total : -1, source is null ? 0 : p.Done));
                    });
                    // With models, profiles/ is written by the scores stage, once the score columns are in.
                    ProfilesResult result;
                    if (workspace.Models.Count == 0)
                    {
                        result = await stage.RunAsync(workspace, identity.Location, runLocation.Child(ProfilesStage.Folder), asOf, options.Parallelism, report, cancellationToken);
                    }
                    else
                    {
                        var (table, built) = await stage.BuildAsync(workspace, workspace.Profiles, identity.Location, asOf, options.Parallelism, report, cancellationToken);
                        result = new ProfilesResult(built, runLocation.Child(ProfilesStage.Folder), table);
                    }
                    manifest.Profiles = result.Report;
                    return (result, result.Report.EventsRead + result.Report.AttributeRowsRead, result.Report.Profiles, new Dictionary<string, long>
                    {
                        ["profiles"] = result.Report.Profiles,
                        ["attribute_rows_read"] = result.Report.AttributeRowsRead,
                        ["attribute_rows_without_profile"] = result.Report.AttributeRowsWithoutProfile,
                        ["events_read"] = result.Report.EventsRead,
                        ["events_without_profile"] = result.Report.EventsWithoutProfile,
                        ["rows_after_as_of"] = result.Report.RowsAfterAsOf,
                    });
                });
                lookup = null;
                if (workspace.Models.Count == 0)
                {
                    await CheckpointAsync();
                }
                else
                {
                    // profiles/ is committed by the scores stage: the two are done together or not at all.
                    var unscored = profiles;
                    profiles = await RunStageAsync(manifest, attempt, "scores", async () =>
                    {
                        var previous = await RunHistory.FindPreviousAsync(runsLocation, runId, asOf, "scores", cancellationToken);
                        var registry = new ModelRegistry(_storage.Resolve(workspace.Output, workspace.Directory).Child(ModelRegistry.Folder));
                        var report = new Progress<string>(p => progress?.Report(new RunProgress("scores", p, -1)));
                        var result = await new ScoresStage(_storage, _logger) { RunId = runId, Training = manifest.Training }.RunAsync(
                            workspace, unscored.Table, identity.Location, asOf, registry, previous?.Scores, previous?.RunId, options.Parallelism, report, cancellationToken);
                        manifest.Scores = result.Report;
                        progress?.Report(new RunProgress("scores", "writing profiles", -1));
                        await ProfilesStage.WriteAsync(unscored.Location, result.Table, options.Parallelism, cancellationToken);
                        var scored = result.Report.Models.Values.Sum(m => m.Scored);
                        return (unscored with { Table = result.Table }, (long)unscored.Table.Count, scored, new Dictionary<string, long>
                        {
                            ["models"] = workspace.Models.Count,
                            ["scored"] = scored,
                            ["trained"] = result.Report.Models.Values.Count(m => m.TrainedVersion is not null),
                            ["failed"] = result.Report.Models.Values.Count(m => m.Error is not null),
                        });
                    });
                    await CheckpointAsync();
                }
            }

            // The last stage: it is followed by the manifest, not by a checkpoint.
            segments = await RunStageAsync(manifest, attempt, "segments", async () =>
            {
                progress?.Report(new RunProgress("segments", $"{workspace.Segments.Count} segment(s) over {profiles.Table.Count:N0} profiles", -1));
                var previous = await RunHistory.FindPreviousAsync(runsLocation, runId, asOf, "segments", cancellationToken);
                var result = await SegmentsStage.RunAsync(
                    workspace, profiles.Table, asOf, runLocation, previous is null ? null : runsLocation.Child(previous.RunId), previous?.RunId,
                    options.Parallelism, cancellationToken);
                manifest.Segments = result.Report;
                return (result, (long)profiles.Table.Count, result.Report.Members, new Dictionary<string, long>
                {
                    ["segments"] = workspace.Segments.Count,
                    ["members"] = result.Report.Members,
                    ["entered"] = result.Report.Entered,
                    ["exited"] = result.Report.Exited,
                });
            });
            manifest.Status = RunStatus.Succeeded;
        }
        catch (Exception e) when (e is EngineException or OperationCanceledException)
        {
            manifest.Status = RunStatus.Failed;
            manifest.Error = e.Message;
            await WriteManifestAsync(manifest, manifestLocation, started, CancellationToken.None);
            throw;
        }
        await WriteManifestAsync(manifest, manifestLocation, started, cancellationToken);
        // After the manifest: killed in between, the next start finds the manifest and drops the stale checkpoint.
        await RunCheckpoint.DeleteAsync(runLocation, cancellationToken);
        return new RunResult(manifest, manifestLocation.ToString(), ingest, identity, profiles, segments);
    }

    /// <summary>The rows ingest counted in the named sources.</summary>
    private static long SourceRows(RunManifest manifest, IEnumerable<string> sources)
    {
        var names = sources.ToHashSet(StringComparer.Ordinal);
        return manifest.Inputs.Where(i => names.Contains(i.Source)).Sum(i => i.Rows);
    }

    /// <summary>A completed stage's report, from the checkpoint.</summary>
    private static T Reused<T>(T? report, string stage) where T : class
        => report ?? throw new EngineException($"the checkpoint lists stage {stage} as done but has no report of it; remove {RunCheckpoint.FileName} to run this run id from the start");

    /// <summary>How ingest found each source's figures: from Parquet footers, or by reading the files (CSV, footers that could not say).</summary>
    private static string IngestMessage(IngestResult result)
        => string.Join("; ", result.Sources.Select(s => $"{s.Name}: {s.FilesFromFooter} file(s) checked at their footers, {s.FilesScanned} scanned"));

    private async Task<T> RunStageAsync<T>(RunManifest manifest, int attempt, string name, Func<Task<(T Result, long RowsIn, long RowsOut, Dictionary<string, long> Counts)>> stage,
        Func<T, string?>? message = null)
    {
        var record = new StageRecord { Name = name, StartedAt = _time.GetUtcNow(), Attempt = attempt };
        // Stages run one at a time, so the peak from here on is this stage's own.
        var peakMeasured = ProcessMemory.StartStage();
        var clock = Stopwatch.StartNew();
        Log.StageStarted(_logger, name);
        using var activity = EngineTelemetry.ActivitySource.StartActivity($"engine.stage.{name}");
        try
        {
            var (result, rowsIn, rowsOut, counts) = await stage();
            record.RowsIn = rowsIn;
            record.RowsOut = rowsOut;
            record.Counts = counts;
            record.Message = message?.Invoke(result);
            return result;
        }
        catch (Exception e) when (e is EngineException or OperationCanceledException)
        {
            record.Status = RunStatus.Failed;
            record.Message = e.Message;
            Log.StageFailed(_logger, name, e.Message);
            throw;
        }
        finally
        {
            record.DurationMs = clock.ElapsedMilliseconds;
            record.PeakMemoryBytes = ProcessMemory.StagePeakBytes(peakMeasured);
            manifest.Stages.Add(record);
            EngineTelemetry.StageDuration.Record(clock.Elapsed.TotalSeconds, new KeyValuePair<string, object?>("stage", name));
            if (record.Status == RunStatus.Succeeded)
            {
                Log.StageFinished(_logger, name, clock.Elapsed.TotalSeconds, record.RowsOut);
            }
        }
    }

    private async Task WriteManifestAsync(RunManifest manifest, StorageLocation location, DateTimeOffset started, CancellationToken cancellationToken)
    {
        manifest.FinishedAt = _time.GetUtcNow();
        // run_results.json first: the manifest stays the last thing a run writes (its commit point).
        var results = new StorageLocation(location.Store, location.Key[..^RunManifest.FileName.Length] + RunResults.FileName);
        await results.Store.PutAsync(results.Key, RunResults.From(manifest).ToUtf8Json(), cancellationToken);
        await location.Store.PutAsync(location.Key, manifest.ToUtf8Json(), cancellationToken);
        Log.RunFinished(_logger, manifest.RunId, manifest.Status, (manifest.FinishedAt - started).TotalSeconds, location.ToString());
    }

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")]
    private static partial Regex RunIdPattern();
}

/// <summary>
/// One run at a time per workspace: an exclusive lock on <c>runs/.lock</c> in a local output folder, held for the
/// whole run and released however the process ends (the OS drops a killed process's lock). A second run is refused
/// with a clear message instead of two runs writing into each other. An output on S3 has no lock (documented).
/// </summary>
internal sealed class RunLock : IDisposable
{
    public const string FileName = ".lock";

    private readonly FileStream? _stream;

    private RunLock(FileStream? stream) => _stream = stream;

    public static RunLock Acquire(Workspace workspace, StorageLocation runs)
    {
        if (!runs.Store.TryGetLocalPath(runs.Key, out var folder))
        {
            return new RunLock(null);
        }
        Directory.CreateDirectory(folder);
        var path = Path.Combine(folder, FileName);
        try
        {
            // Deleted when the run ends normally; a killed run leaves the file, whose lock the OS has dropped.
            return new RunLock(new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.DeleteOnClose));
        }
        catch (IOException)
        {
            throw new EngineException($"another run is in progress on workspace '{workspace.Name}' ({path} is locked): wait for it to finish; two runs would write into each other");
        }
    }

    public void Dispose() => _stream?.Dispose();
}
