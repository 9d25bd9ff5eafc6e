using System.Diagnostics;
using System.Runtime.InteropServices;
using Engine.Diagnostics;
using Engine.Storage;
using Engine.Workspaces;
using Microsoft.Extensions.Logging;

namespace Engine.Identity;

/// <summary>How the identity stage runs.</summary>
public sealed record IdentityOptions
{
    /// <summary>Re-read every file of every source and rebuild the graph, instead of adding only new files to the previous graph.</summary>
    public bool FullRefresh { get; init; }

    /// <summary>A local folder for scratch files (the canonical values spilled while the graph is built); the system temp folder by default.</summary>
    public string? ScratchDirectory { get; init; }

    /// <summary>Row groups read and normalised at once; the result does not depend on it.</summary>
    public int Parallelism { get; init; } = Environment.ProcessorCount;

    /// <summary>
    /// Return the identifier → profile lookup with the result (<see cref="IdentityResult.Lookup"/>), for the stages
    /// after it in the same process, which would otherwise read <c>identity/</c> back and resolve every row again:
    /// each read row's profile (<see cref="RowHubs"/>, recorded during the read: 2 GB at 10M people), and the
    /// identifier hash table unless those rows leave nothing to resolve (a full read). The table is held through the
    /// stitch and the write instead of let go before them; on a first night at 10M people the stage's peak was still
    /// its read's (6.5 GiB).
    /// </summary>
    internal bool KeepLookup { get; init; }
}

/// <summary>The previous run's identity output, which this run continues (incremental) or takes its profile ids from (full).</summary>
/// <param name="RunId">The previous run.</param>
/// <param name="Location">Its <c>identity/</c> folder.</param>
public sealed record PreviousIdentity(string RunId, StorageLocation Location);

/// <summary>Progress of the identity stage: the step, and rows (or identifiers) done in it.</summary>
public readonly record struct IdentityProgress(string Step, long Done);

/// <summary>What the identity stage wrote.</summary>
/// <param name="Report">The figures recorded in the manifest.</param>
/// <param name="Location">The <c>identity/</c> folder written.</param>
public sealed record IdentityResult(IdentityReport Report, StorageLocation Location)
{
    /// <summary>With <see cref="IdentityOptions.KeepLookup"/>: what <c>identity/</c> says, in memory (null when the output is to be read).</summary>
    internal Engine.Profiles.ProfileLookup? Lookup { get; init; }
}

/// <summary>
/// The identity stage: reads every identifier column of every source into the identifier graph, guards against
/// shared values, stitches by union-find with priorities and per-profile limits, gives each cluster a stable profile
/// id, and writes <c>identity/</c> (identifier → profile), <c>identity/merges</c> (how previous ids moved),
/// <c>identity/links</c> (every link and its outcome) and <c>identity/_state.json</c>, in that order.
/// </summary>
/// <remarks>
/// Incremental by default: when the previous run's rules fingerprint matches and none of the files it read has
/// changed, the previous graph is loaded from its output (identifiers in row order, links with their outcomes), only
/// new files are read, links the previous run accepted are kept as they were, and the rest (previously refused links
/// and new ones) are stitched against them. Anything else — a first run, <see cref="IdentityOptions.FullRefresh"/>,
/// changed rules, a changed or removed file — reads all history and rebuilds the graph; profile ids still carry over
/// from the previous output, so a corrected rule can split an old bad merge without renumbering everyone.
/// </remarks>
public sealed class IdentityStage
{
    /// <summary>The stage's folder in a run.</summary>
    public const string Folder = "identity";

    /// <summary>The merges dataset, inside <see cref="Folder"/>.</summary>
    public const string MergesFolder = "merges";

    /// <summary>The links dataset, inside <see cref="Folder"/>.</summary>
    public const string LinksFolder = "links";

    private readonly StorageResolver _storage;
    private readonly ILogger _logger;

    public IdentityStage(StorageResolver storage, ILogger logger)
    {
        _storage = storage;
        _logger = logger;
    }

    /// <summary>Runs the stage for <paramref name="workspace"/> in run <paramref name="runId"/>, writing under <paramref name="output"/> (the run's <c>identity/</c> folder).</summary>
    public async Task<IdentityResult> RunAsync(
        Workspace workspace, string runId, StorageLocation output, PreviousIdentity? previous, IdentityOptions options,
        IProgress<IdentityProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(workspace);
        ArgumentNullException.ThrowIfNull(options);
        var rules = workspace.Identity;
        var report = new IdentityReport { PreviousRunId = previous?.RunId };
        var clock = Stopwatch.StartNew();

        var sources = new List<(SourceDefinition Source, Dataset Dataset)>();
        foreach (var source in workspace.Sources)
        {
            if (source.Identifiers.Count + source.CompositeIdentifiers.Count == 0)
            {
                continue;
            }
            var location = _storage.Resolve(source.Location, workspace.Directory);
            try
            {
                sources.Add((source, await Dataset.OpenAsync(location, source.Format, cancellationToken)));
            }
            catch (DataException e)
            {
                throw new DataException(e.Location, $"{e.Message[(e.Message.StartsWith(e.Location + ": ", StringComparison.Ordinal) ? e.Location.Length + 2 : 0)..]} (source '{source.Name}', {source.File})", e);
            }
        }
        var fingerprint = IdentityState.Fingerprint(rules, sources.Select(s => s.Source));

        IdentityState? previousState = null;
        if (previous is not null)
        {
            var previousStateLocation = previous.Location.Child(IdentityState.FileName);
            if (await previousStateLocation.Store.GetAsync(previousStateLocation.Key, cancellationToken) is { } bytes)
            {
                previousState = IdentityState.Parse(bytes, previousStateLocation.ToString());
                if (previousState.Format != IdentityState.CurrentFormat)
                {
                    throw new DataException(previousStateLocation.ToString(),
                        $"identity output format {previousState.Format}, this engine reads {IdentityState.CurrentFormat}; run with --full-refresh after moving the old runs away");
                }
            }
        }
        var plan = Plan(previous, previousState, fingerprint, sources, options.FullRefresh);
        report.Mode = plan.Incremental ? IdentityModes.Incremental : IdentityModes.Full;
        report.ModeReason = plan.Reason;
        if (previousState is null)
        {
            report.PreviousRunId = null;
        }
        Log.IdentityMode(_logger, report.Mode, plan.Reason);

        var scratch = options.ScratchDirectory ?? Path.Combine(Path.GetTempPath(), "activation-engine");
        // The table, the first-seen positions and the value offsets sized for the previous run's identifiers, without
        // headroom: the table doubles at 11/16 full, so a margin doubles it whenever the count sits near a threshold
        // (5.4M identifiers at a million people: 16M slots, 403 MB, instead of 8M, 201 MB); growing costs one rehash.
        var expected = checked((int)Math.Min(int.MaxValue / 2, previousState?.Identifiers ?? 0));
        using var values = new CanonicalValueLog(scratch, expected);
        var builder = new IdentityGraphBuilder(rules, expected, values);

        // Incremental: the previous graph first. Its identifiers count as met before any of this run's data, in the
        // order they were written, so they keep their row positions and new identifiers follow them.
        var previousIds = 0;
        long[] previousProfile = [];
        ulong[] previousProfiles = [];
        var pinned = new List<ulong>();
        if (plan.Incremental)
        {
            (previousProfile, previousProfiles) = await ReadPreviousIdentifiersAsync(previous!.Location, builder, progress, cancellationToken);
            previousIds = builder.Table.Count;
            await ReadPreviousLinksAsync(previous.Location, builder, pinned, previousIds, cancellationToken);
        }

        // Kept for the stages after this one in the process: each row's profile, so they need not resolve it again.
        var hubs = options.KeepLookup ? new RowHubs() : null;
        long rowsRead = 0;
        var ordinal = 0;
        foreach (var (source, dataset) in sources)
        {
            ordinal++;
            var files = plan.FilesToRead[source.Name];
            if (files.Count == 0)
            {
                continue;
            }
            var part = dataset.WithFiles(files);
            var before = rowsRead;
            IdentityGraphBuilder.FromDataset(
                part, source, ordinal, rules, builder, source.ScanOptions(options.Parallelism), hubs?.Source(source.Name, part),
                rows => progress?.Report(new IdentityProgress($"reading {source.Name}", before + rows)), cancellationToken);
            rowsRead = builder.Rows;
            report.FilesRead += files.Count;
            Log.IdentitySourceRead(_logger, source.Name, files.Count, rowsRead - before);
        }
        report.RowsRead = builder.Rows;
        var n = builder.Table.Count;
        report.TimingsMs["read"] = clock.ElapsedMilliseconds;
        clock.Restart();
        if (!plan.Incremental && previousState is not null)
        {
            // Full rebuild: previous ids only name this run's clusters; identifiers that vanished count toward retirement.
            (previousProfile, previousProfiles) = await LookUpPreviousIdentifiersAsync(previous!.Location, builder, options.Parallelism, progress, cancellationToken);
            report.TimingsMs["previous_ids"] = clock.ElapsedMilliseconds;
            clock.Restart();
        }

        progress?.Report(new IdentityProgress("stitching", 0));
        var table = options.KeepLookup ? builder.Table : null;
        var graph = builder.BuildCanonical(keepTable: table is not null);
        // The previous ids by node number (none on a first run: every node is new); the array by builder id is let go.
        previousProfile = previousProfile.Length == 0 ? [] : graph.ToNodes<long>(previousProfile, -1);
        var stitched = Stitch(builder, graph, pinned, previousProfile, previousProfiles, previousState?.NextProfileId ?? 1, report, clock);
        previousProfile = []; // a long per identifier, not needed past the ids: not kept through the write
        Fill(report, builder, graph, stitched, previousIds);
        report.TimingsMs["figures"] = clock.ElapsedMilliseconds;
        clock.Restart();

        // identity/ first: committing it replaces the folder (a re-run of this run id), so the datasets inside it
        // (merges, links) come after; links are encoded on every worker, the few merges beside them.
        await IdentityOutput.WriteIdentifiersAsync(output, rules, graph, values, stitched.Assignment.ProfileOf, stitched.Result, options.Parallelism, progress, cancellationToken);
        var linksWrite = Task.Run(() => IdentityOutput.WriteLinksAsync(output.Child(LinksFolder), rules, graph, stitched.Links, options.Parallelism, cancellationToken), cancellationToken);
        await IdentityOutput.WriteMergesAsync(output.Child(MergesFolder), stitched.Assignment.Changes, cancellationToken);
        var links = await linksWrite;
        var state = new IdentityState
        {
            RunId = runId,
            RulesFingerprint = fingerprint,
            NextProfileId = stitched.Assignment.NextProfileId,
            Identifiers = n,
            Links = links,
        };
        foreach (var (source, dataset) in sources)
        {
            state.Sources.Add(new IdentitySourceState
            {
                Name = source.Name,
                Location = dataset.Location.ToString(),
                Files = [.. dataset.Files.Select(f => new IdentityFileState { Key = f.Key, Size = f.Size })],
            });
        }
        var stateLocation = output.Child(IdentityState.FileName);
        await stateLocation.Store.PutAsync(stateLocation.Key, state.ToUtf8Json(), cancellationToken);
        report.TimingsMs["write"] = clock.ElapsedMilliseconds;
        Engine.Profiles.ProfileLookup? lookup = null;
        if (table is not null)
        {
            clock.Restart();
            lookup = Engine.Profiles.ProfileLookup.FromIdentity(
                table, graph.Rank, stitched.Assignment.ProfileOf, hubs, everyFileRead: !plan.Incremental, (output, rules), options.Parallelism);
            report.TimingsMs["lookup"] = clock.ElapsedMilliseconds;
        }
        Log.IdentityFinished(_logger, report.Identifiers, report.Edges, report.Profiles, report.LargestProfile);
        return new IdentityResult(report, output) { Lookup = lookup };
    }

    /// <summary>Which files to read, and whether the previous graph can be continued.</summary>
    private sealed record ReadPlan(bool Incremental, string Reason, Dictionary<string, List<DataFile>> FilesToRead);

    private static ReadPlan Plan(
        PreviousIdentity? previous, IdentityState? state, string fingerprint, List<(SourceDefinition Source, Dataset Dataset)> sources, bool fullRefresh)
    {
        var all = sources.ToDictionary(s => s.Source.Name, s => s.Dataset.Files.ToList(), StringComparer.Ordinal);
        if (fullRefresh)
        {
            return new ReadPlan(false, "--full-refresh", all);
        }
        if (previous is null)
        {
            return new ReadPlan(false, "first run: no earlier successful run", all);
        }
        if (state is null)
        {
            return new ReadPlan(false, $"run {previous.RunId} has no identity output", all);
        }
        if (state.RulesFingerprint != fingerprint)
        {
            return new ReadPlan(false, $"identity rules or identifier columns changed since run {previous.RunId}", all);
        }
        var previousSources = state.Sources.ToDictionary(s => s.Name, StringComparer.Ordinal);
        var toRead = new Dictionary<string, List<DataFile>>(StringComparer.Ordinal);
        var newFiles = 0;
        foreach (var (source, dataset) in sources)
        {
            if (!previousSources.TryGetValue(source.Name, out var before))
            {
                return new ReadPlan(false, $"source '{source.Name}' is new since run {previous.RunId}", all);
            }
            if (before.Location != dataset.Location.ToString())
            {
                return new ReadPlan(false, $"source '{source.Name}' moved since run {previous.RunId}", all);
            }
            var current = dataset.Files.ToDictionary(f => f.Key, f => f.Size, StringComparer.Ordinal);
            var changed = before.Files.Count(f => !current.TryGetValue(f.Key, out var size) || size != f.Size);
            if (changed > 0)
            {
                return new ReadPlan(false, $"source '{source.Name}': {changed} file(s) changed or removed since run {previous.RunId}", all);
            }
            var seen = before.Files.Select(f => f.Key).ToHashSet(StringComparer.Ordinal);
            var fresh = dataset.Files.Where(f => !seen.Contains(f.Key)).ToList();
            newFiles += fresh.Count;
            toRead[source.Name] = fresh;
        }
        if (state.Sources.Count != sources.Count)
        {
            return new ReadPlan(false, $"a source was removed since run {previous.RunId}", all);
        }
        return new ReadPlan(true, newFiles == 0 ? $"no new files since run {previous.RunId}" : $"{newFiles} new file(s) since run {previous.RunId}", toRead);
    }

    /// <summary>
    /// Reads the previous <c>identity/</c> rows in order, adding each identifier to the builder (its id must equal its
    /// row position). Returns the previous profile id per builder id and the bitset of previous profile ids.
    /// </summary>
    private static async Task<(long[] PreviousProfile, ulong[] PreviousProfiles)> ReadPreviousIdentifiersAsync(
        StorageLocation location, IdentityGraphBuilder builder, IProgress<IdentityProgress>? progress, CancellationToken cancellationToken)
    {
        var dataset = await Dataset.OpenAsync(location, DataFormat.Parquet, cancellationToken);
        var previousProfile = new List<long>();
        var profiles = new ulong[1024];
        long row = 0;
        IdentityOutput.ReadIdentifiers(dataset, builder.Rules, (_, typeId, value, profileId, _) =>
        {
            Mark(ref profiles, profileId);
            if (typeId < 0)
            {
                throw new DataException($"{location}/row {row}", "identifier type not defined by the identity rules, which have not changed since this output was written: the output is corrupt; run with --full-refresh");
            }
            var id = builder.AddCanonical((byte)typeId, value);
            if (id != row)
            {
                throw new DataException($"{location}/row {row}", "repeats an identifier of an earlier row: the output is corrupt; run with --full-refresh");
            }
            previousProfile.Add(profileId);
            row++;
            if ((row & 0xFFFF) == 0)
            {
                progress?.Report(new IdentityProgress("reading previous identities", row));
            }
        }, cancellationToken);
        return ([.. previousProfile], profiles);
    }

    /// <summary>
    /// Full rebuild: looks each previous <c>identity/</c> row up in this run's graph, on every worker (the table is
    /// only read now, and each identifier is one row, so workers write distinct entries). Returns the previous profile
    /// id per builder id (-1 for identifiers new tonight) and the bitset of previous profile ids, where identifiers
    /// that vanished still count toward retirement.
    /// </summary>
    private static async Task<(long[] PreviousProfile, ulong[] PreviousProfiles)> LookUpPreviousIdentifiersAsync(
        StorageLocation location, IdentityGraphBuilder builder, int parallelism, IProgress<IdentityProgress>? progress, CancellationToken cancellationToken)
    {
        var dataset = await Dataset.OpenAsync(location, DataFormat.Parquet, cancellationToken);
        var table = builder.Table;
        var previousProfile = new long[table.Count];
        previousProfile.AsSpan().Fill(-1);
        long rows = 0;
        var gate = new Lock();
        var states = IdentityOutput.ScanIdentifiers(dataset, builder.Rules, () => new PreviousRows(), (state, typeId, value, profileId, _) =>
        {
            Mark(ref state.Profiles, profileId);
            if (typeId >= 0)
            {
                state.Add(IdentifierKey.Compute((byte)typeId, value), profileId, table, previousProfile);
            }
            if ((++state.Rows & 0xFFFF) == 0)
            {
                lock (gate)
                {
                    rows += 0x10000;
                    progress?.Report(new IdentityProgress("reading previous identities", rows));
                }
            }
        }, ScanOptions.Default with { Parallelism = Math.Max(1, parallelism) }, cancellationToken);
        var profiles = new ulong[states.Max(s => s.Profiles.Length)];
        foreach (var state in states)
        {
            state.Flush(table, previousProfile);
            for (var w = 0; w < state.Profiles.Length; w++)
            {
                profiles[w] |= state.Profiles[w];
            }
        }
        return (previousProfile, profiles);
    }

    /// <summary>
    /// A worker's share of <see cref="LookUpPreviousIdentifiersAsync"/>: the profile ids it saw, its rows, and the keys
    /// waiting to be looked up. Keys are looked up a few thousand at a time, their slots prefetched
    /// (<see cref="IdentifierTable.TryGet(ReadOnlySpan{IdentifierKey}, Span{int})"/>): one at a time, every lookup in a
    /// table of gigabytes would wait out its own cache miss.
    /// </summary>
    private sealed class PreviousRows
    {
        private const int Pending = 4096;
        private readonly IdentifierKey[] _keys = new IdentifierKey[Pending];
        private readonly long[] _profiles = new long[Pending];
        private readonly int[] _ids = new int[Pending];
        private int _count;
        public ulong[] Profiles = new ulong[1024];
        public long Rows;

        public void Add(in IdentifierKey key, long profileId, IdentifierTable table, long[] previousProfile)
        {
            _keys[_count] = key;
            _profiles[_count] = profileId;
            if (++_count == Pending)
            {
                Flush(table, previousProfile);
            }
        }

        public void Flush(IdentifierTable table, long[] previousProfile)
        {
            var ids = _ids.AsSpan(0, _count);
            table.TryGet(_keys.AsSpan(0, _count), ids);
            for (var i = 0; i < ids.Length; i++)
            {
                if (ids[i] >= 0)
                {
                    previousProfile[ids[i]] = _profiles[i];
                }
            }
            _count = 0;
        }
    }

    /// <summary>Sets <paramref name="profileId"/>'s bit (none for a shared value's -1), growing the set as needed.</summary>
    private static void Mark(ref ulong[] profiles, long profileId)
    {
        if (profileId <= 0)
        {
            return;
        }
        var word = profileId >> 6;
        if (word >= profiles.Length)
        {
            Array.Resize(ref profiles, (int)Math.Max(word + 1, profiles.Length * 2L));
        }
        profiles[word] |= 1UL << (int)(profileId & 63);
    }

    private static async Task ReadPreviousLinksAsync(StorageLocation identity, IdentityGraphBuilder builder, List<ulong> pinned, int identifiers, CancellationToken cancellationToken)
    {
        var location = identity.Child(LinksFolder);
        var dataset = await Dataset.OpenAsync(location, DataFormat.Parquet, cancellationToken);
        IdentityOutput.ReadLinks(dataset, (from, to, linked, _, _) =>
        {
            if ((uint)from >= (uint)identifiers || (uint)to >= (uint)identifiers || from == to)
            {
                throw new DataException(location.ToString(), $"link ({from}, {to}) does not join two of the {identifiers} identifiers: the output is corrupt; run with --full-refresh");
            }
            builder.AddEdge(from, to);
            if (linked)
            {
                pinned.Add(EdgeSet.Pack(from, to));
            }
        }, cancellationToken);
    }

    /// <summary>The stitched graph: the union-find outcome (shared values included), each link's outcome and the profile ids.</summary>
    private sealed record Stitched(StitchResult Result, LinkOutcomes Links, ProfileAssignment Assignment);

    /// <summary>
    /// Stitching (previous links pinned, shared values guarded) and profile ids, all on the key-ordered graph, with the
    /// previous profile ids by node number.
    /// </summary>
    private static Stitched Stitch(
        IdentityGraphBuilder builder, CanonicalGraph graph, List<ulong> pinned, long[] previousProfile, ulong[] previousProfiles, long nextProfileId,
        IdentityReport report, Stopwatch clock)
    {
        var pinnedEdges = graph.Remap(CollectionsMarshal.AsSpan(pinned));
        var result = Stitcher.Run(graph.NodeTypes, graph.Edges, builder.Policies(), pinnedEdges);
        var links = LinkOutcomes.Classify(graph, result, pinnedEdges);
        report.TimingsMs["stitch"] = clock.ElapsedMilliseconds;
        clock.Restart();
        var assignment = ProfileIds.Assign(result.ClusterOf, result.Shared, previousProfile, previousProfiles, nextProfileId);
        report.TimingsMs["assign"] = clock.ElapsedMilliseconds;
        clock.Restart();
        return new Stitched(result, links, assignment);
    }

    private static void Fill(IdentityReport report, IdentityGraphBuilder builder, CanonicalGraph graph, Stitched stitched, int previousIds)
    {
        var stitch = stitched.Result;
        var assignment = stitched.Assignment;
        var rules = builder.Rules;
        var n = graph.NodeCount;
        report.Identifiers = n;
        report.NewIdentifiers = n - previousIds;
        report.Edges = graph.EdgeCount;
        report.Unions = stitch.Unions;
        var byType = new long[rules.Types.Count];
        foreach (var t in graph.NodeTypes)
        {
            byType[t]++;
        }
        for (var t = 0; t < rules.Types.Count; t++)
        {
            var name = rules.Types[t].Name;
            report.IdentifiersByType[name] = byType[t];
            if (stitch.SharedPerType[t] > 0)
            {
                report.SharedValues[name] = stitch.SharedPerType[t];
            }
            var skipped = new Dictionary<string, long>(StringComparer.Ordinal);
            foreach (var status in (ReadOnlySpan<NormalizeStatus>)[NormalizeStatus.Empty, NormalizeStatus.Invalid, NormalizeStatus.TooLong, NormalizeStatus.Blocked])
            {
                var count = builder.Skipped[t][(int)status];
                if (count > 0)
                {
                    skipped[IdentityOutput.StatusName(status)] = count;
                }
            }
            if (skipped.Count > 0)
            {
                report.ValuesSkipped[name] = skipped;
            }
        }
        var links = stitched.Links;
        for (var i = 0; i < links.Outcome.Length; i++)
        {
            if (links.Outcome[i] != LinkOutcomes.Linked)
            {
                var key = (links.Outcome[i] == LinkOutcomes.RefusedShared ? "shared:" : "limit:") + rules.Types[links.ReasonType[i]].Name;
                report.LinksRefused[key] = report.LinksRefused.GetValueOrDefault(key) + 1;
            }
        }

        report.Profiles = assignment.Profiles;
        report.ProfilesKept = assignment.Kept;
        report.ProfilesCreated = assignment.Created;
        foreach (var change in assignment.Changes)
        {
            switch (change.Kind)
            {
                case ProfileChangeKind.Merged: report.ProfilesMerged++; break;
                case ProfileChangeKind.Split: report.ProfilesSplit++; break;
                case ProfileChangeKind.Retired: report.ProfilesRetired++; break;
            }
        }
        // Identifiers per profile, then the power-of-two histogram.
        var sizes = new int[n];
        var clusterOf = stitch.ClusterOf;
        for (var i = 0; i < n; i++)
        {
            if (assignment.ProfileOf[i] >= 0)
            {
                sizes[clusterOf[i]]++;
            }
        }
        var buckets = new long[33];
        foreach (var size in sizes)
        {
            if (size > 0)
            {
                buckets[size == 1 ? 0 : 64 - System.Numerics.BitOperations.LeadingZeroCount((ulong)(size - 1))]++;
                report.LargestProfile = Math.Max(report.LargestProfile, size);
            }
        }
        for (var b = 0; b < buckets.Length; b++)
        {
            if (buckets[b] > 0)
            {
                report.ProfileSizes.Add(new SizeBucket { Min = b == 0 ? 1 : (1L << (b - 1)) + 1, Max = 1L << b, Profiles = buckets[b] });
            }
        }
    }
}
