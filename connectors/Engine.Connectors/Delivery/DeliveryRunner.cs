using Engine.Connectors.Destinations;
using Engine.Connectors.Ledger;
using Engine.Connectors.Matching;
using Engine.Connectors.Holdouts;
using Engine.Connectors.Policy;
using Engine.Connectors.Reports;
using Engine.Runs;
using Engine.Storage;
using Engine.Workspaces;

namespace Engine.Connectors.Delivery;

/// <summary>What <c>engine deliver</c> is asked to do.</summary>
public sealed record DeliveryOptions
{
    /// <summary>The run whose deltas to deliver; null: the latest succeeded run.</summary>
    public string? RunId { get; init; }

    /// <summary>Only this destination; null: every destination.</summary>
    public string? Destination { get; init; }

    /// <summary>Plan and check, send nothing, write nothing.</summary>
    public bool DryRun { get; init; }

    public int Parallelism { get; init; } = Environment.ProcessorCount;

    /// <summary>Builds the client of a destination (tests point API destinations at their contract servers); null: the built-in clients.</summary>
    public Func<DestinationDefinition, IDestination?>? Clients { get; init; }
}

/// <summary>One destination in a delivery: its plan and how its worker ended.</summary>
public sealed record DestinationOutcome(string Destination, long Planned, WorkerResult? Worker, string? Error, IReadOnlyDictionary<string, long> DryRunCounts);

/// <summary>What a delivery did.</summary>
public sealed record DeliveryResult(string RunId, IReadOnlyList<DestinationOutcome> Destinations, DeliveryReport? Report, StorageLocation? Folder);

/// <summary>
/// Delivers a run's membership changes to the workspace's destinations: plans each destination's records in the
/// ledger once (its first delivery of a segment sends the segment's whole membership as entries, later runs their
/// deltas; add-only destinations get no exits; a profile without an identifier the destination matches on is
/// <c>unmatched</c>), runs one <see cref="DestinationWorker"/> per destination at once (a slow or failing destination
/// holds up no other), and writes <c>deliveries/&lt;run_id&gt;/events/</c> and <c>report.json</c> from the ledger.
/// </summary>
public sealed class DeliveryRunner
{
    private readonly Workspace _workspace;
    private readonly DeliveryConfiguration _configuration;
    private readonly StorageResolver _storage;

    public DeliveryRunner(Workspace workspace, DeliveryConfiguration configuration, StorageResolver storage)
    {
        _workspace = workspace;
        _configuration = configuration;
        _storage = storage;
    }

    private StorageLocation Output => _storage.Resolve(_workspace.Output, _workspace.Directory);

    public async Task<DeliveryResult> RunAsync(DeliveryOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        var runs = Output.Child("runs");
        var manifest = options.RunId is { } id
            ? await RunHistory.ReadAsync(runs, id, cancellationToken) ?? throw new EngineException($"run '{id}' not found under {runs}")
            : await RunHistory.FindPreviousAsync(runs, "", DateTimeOffset.MaxValue, "segments", cancellationToken)
                ?? throw new EngineException($"no succeeded run under {runs}: run `engine run` first");
        if (manifest.Status != RunStatus.Succeeded || !manifest.Stages.Exists(s => s.Name == "segments" && s.Status == RunStatus.Succeeded))
        {
            throw new EngineException($"run '{manifest.RunId}' did not finish its segments stage: it has no deltas to deliver");
        }
        var runId = manifest.RunId;
        var run = runs.Child(runId);
        var destinations = _configuration.Destinations.Where(d => options.Destination is null || d.Name == options.Destination).ToList();
        if (options.Destination is not null && destinations.Count == 0)
        {
            throw new EngineException($"unknown destination '{options.Destination}'{(Suggestions.Nearest(options.Destination, _configuration.Destinations.Select(d => d.Name)) is { } n ? $" (did you mean '{n}'?)" : "")}");
        }

        using var deliveryLock = options.DryRun ? null : DeliveryLock.Acquire(_workspace, _configuration.Settings, Output);
        await using var ledger = OpenLedger(options.DryRun);
        await ledger.InitializeAsync(cancellationToken);

        // Consent and the suppression list first: a bad consent row stops the delivery before the ledger is touched.
        var consentNeeded = destinations.Any(d => d.Consent != ConsentRule.None);
        using var consent = consentNeeded
            ? await ConsentStore.LoadAsync(_workspace, _configuration.Settings.ConsentSource!, _storage, _configuration.Settings.ConsentChannels, cancellationToken)
            : null;
        var suppression = _configuration.Settings.SuppressionSource is { } list
            ? await SuppressionList.LoadAsync(_workspace, list, _storage, cancellationToken)
            : SuppressionList.Empty;

        // Plan: the records each destination is asked to receive.
        var plans = new Dictionary<string, List<PlannedRecord>>(StringComparer.Ordinal);
        var fullSync = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        foreach (var destination in destinations)
        {
            if (await ledger.IsPlannedAsync(runId, destination.Name, cancellationToken))
            {
                continue;
            }
            var synced = await ledger.SyncedSegmentsAsync(destination.Name, cancellationToken);
            fullSync[destination.Name] = [.. destination.Segments.Where(s => !synced.Contains(s))];
            plans[destination.Name] = await PlanAsync(run, runId, destination, synced, cancellationToken);
        }
        // Records planned by an earlier delivery and not final yet (it stopped, or a destination failed): sent this time.
        var open = (await ledger.RecordsAsync(runId, cancellationToken)).Where(r => r.State != "final").ToList();
        var profileIds = new HashSet<long>(plans.Values.SelectMany(p => p.Select(r => r.ProfileId)).Concat(open.Select(r => r.ProfileId)));
        var columns = destinations.SelectMany(d => d.Fields.Select(f => f.Column)).ToList();
        if (_configuration.Settings.TimezoneColumn is { } zoneColumn)
        {
            columns.Add(zoneColumn);
        }
        var profiles = await ProfileDirectory.LoadAsync(run, profileIds, columns, options.Parallelism, cancellationToken);

        foreach (var destination in destinations)
        {
            if (!plans.TryGetValue(destination.Name, out var plan))
            {
                continue;
            }
            // Known before sending: the control group first (assigned whatever the profile's identifiers, so that both
            // groups hold the unmatched alike), then the profiles the destination cannot match.
            var known = new List<FinalOutcome>();
            foreach (var record in plan)
            {
                if (IsHeldOut(destination, record))
                {
                    known.Add(new FinalOutcome(record.Key, Outcomes.HeldOut, null, null, 0));
                }
                else if (destination.IdentifyBy.Count > 0 && profiles.IdentifiersOf(record.ProfileId, destination.IdentifyBy).Count == 0)
                {
                    known.Add(new FinalOutcome(record.Key, Outcomes.Unmatched, $"no {string.Join(" or ", destination.IdentifyBy)}", null, 0));
                }
            }
            if (!options.DryRun)
            {
                await ledger.PlanAsync(runId, destination.Name, plan, known, fullSync[destination.Name], cancellationToken);
            }
        }

        if (options.DryRun)
        {
            return new DeliveryResult(runId, [.. destinations.Select(d => DryRun(d,
                [.. plans.GetValueOrDefault(d.Name) ?? [], .. open.Where(r => r.Destination == d.Name)
                    .Select(r => new PlannedRecord(r.Key, r.RunId, r.Destination, r.Segment, r.ProfileId, r.Change, r.Channel))],
                profiles, consent, suppression))], null, null);
        }

        var outcomes = await Task.WhenAll(destinations.Select(async destination =>
        {
            var planned = plans.TryGetValue(destination.Name, out var p) ? p.Count : 0;
            try
            {
                await using var client = Client(destination, options, ledger);
                FrequencyCounter? caps = null;
                if (destination.FrequencyCap is { } cap)
                {
                    var since = (DateTimeOffset.UtcNow - cap.Window - DateTimeOffset.UnixEpoch).Ticks / 10;
                    caps = new FrequencyCounter(await ledger.DeliveredSinceAsync(destination.Channel!, since, cancellationToken), cap.Sends);
                }
                var policy = new SendPolicy(destination, consent, suppression, caps, _configuration.Settings.TimezoneColumn, _configuration.Settings.DefaultTimezone);
                var worker = new DestinationWorker(destination, client, ledger, policy, profiles, runId);
                var result = await worker.RunAsync(cancellationToken);
                return new DestinationOutcome(destination.Name, planned, result, result.StoppedBy, new Dictionary<string, long>());
            }
            catch (DestinationException e)
            {
                return new DestinationOutcome(destination.Name, planned, null, e.Message, new Dictionary<string, long>());
            }
        }));

        var records = await ledger.RecordsAsync(runId, cancellationToken);
        var completed = new HashSet<string>(StringComparer.Ordinal);
        foreach (var destination in _configuration.Destinations)
        {
            if (await ledger.IsCompletedAsync(runId, destination.Name, cancellationToken))
            {
                completed.Add(destination.Name);
            }
        }
        var folder = Output.Child("deliveries").Child(runId);
        var report = DeliveryReport.From(runId, manifest.FinishedAt, records, completed);
        await ActivationEvents.WriteAsync(folder.Child("events"), manifest.FinishedAt, manifest.AsOf, records,
            _configuration.Destinations.Where(d => d.Holdout is not null).Select(d => d.Name).ToHashSet(StringComparer.Ordinal), cancellationToken);
        var reportFile = folder.Child("report.json");
        await reportFile.Store.PutAsync(reportFile.Key, report.ToUtf8Json(), cancellationToken);
        return new DeliveryResult(runId, outcomes, report, folder);
    }

#pragma warning disable CA1859 // the PostgreSQL ledger returns here too
    private IDeliveryLedger OpenLedger(bool dryRun)
    {
        var settings = _configuration.Settings;
        if (settings.Ledger == LedgerKind.Postgres)
        {
            var variable = settings.LedgerConnectionVariable!;
            var connection = Environment.GetEnvironmentVariable(variable);
            if (string.IsNullOrEmpty(connection))
            {
                throw new EngineException($"the ledger's connection string is read from the environment variable {variable} ({DeliverySettings.FileName}), which is not set");
            }
            if (dryRun)
            {
                throw new EngineException("--dry-run works on a SQLite ledger only (it reads a copy); with a PostgreSQL ledger, use --destination on a test workspace");
            }
            return new PostgresLedger(connection);
        }
        string path;
        if (settings.LedgerPath is { } configured)
        {
            path = Path.IsPathRooted(configured) ? configured : Path.Combine(LocalOutput(), configured);
        }
        else
        {
            path = Path.Combine(LocalOutput(), "deliveries", "ledger.db");
        }
        // A dry run reads a copy, so that it cannot change the ledger even by creating it.
        if (dryRun)
        {
            var copy = Path.Combine(Path.GetTempPath(), $"engine-dry-run-{Guid.NewGuid():N}.db");
            if (File.Exists(path))
            {
                File.Copy(path, copy);
            }
            return new SqliteLedger(copy);
        }
        return new SqliteLedger(path);
    }
#pragma warning restore CA1859

    private string LocalOutput()
    {
        if (!Output.Store.TryGetLocalPath(Output.Key, out var path))
        {
            throw new EngineException($"the SQLite ledger needs a local output folder, and {Output} is not one: set ledger.path in {DeliverySettings.FileName} to a local file, or use a postgres ledger");
        }
        return path;
    }

    private IDestination Client(DestinationDefinition destination, DeliveryOptions options, IDeliveryLedger ledger)
        => options.Clients?.Invoke(destination) ?? DestinationFactory.Create(destination, new DestinationContext(_workspace, _storage, Output) { Ledger = ledger });

    private static async Task<List<PlannedRecord>> PlanAsync(StorageLocation run, string runId, DestinationDefinition destination, IReadOnlySet<string> synced, CancellationToken cancellationToken)
    {
        var wantDeltas = destination.Segments.Where(synced.Contains).ToHashSet(StringComparer.Ordinal);
        var wantFull = destination.Segments.Where(s => !synced.Contains(s)).ToHashSet(StringComparer.Ordinal);
        var records = new List<PlannedRecord>();
        void Add(string segment, long profile, string change)
        {
            if (change == DeliveryKeys.Exited && destination.Mode == SyncMode.AddOnly)
            {
                return;
            }
            records.Add(new PlannedRecord(DeliveryKeys.Record(runId, segment, destination.Name, profile, change), runId, destination.Name, segment, profile, change,
                destination.Channel));
        }
        if (wantDeltas.Count > 0)
        {
            foreach (var (segment, profile, change) in await ReadAsync(run.Child("deltas"), true, wantDeltas, cancellationToken))
            {
                Add(segment, profile, change!);
            }
        }
        if (wantFull.Count > 0)
        {
            foreach (var (segment, profile, _) in await ReadAsync(run.Child("segments"), false, wantFull, cancellationToken))
            {
                Add(segment, profile, DeliveryKeys.Entered);
            }
        }
        records.Sort((a, b) => string.CompareOrdinal(a.Key, b.Key));
        return records;
    }

    private static async Task<List<(string Segment, long Profile, string? Change)>> ReadAsync(StorageLocation location, bool deltas, HashSet<string> segments, CancellationToken cancellationToken)
    {
        var dataset = await Dataset.OpenAsync(location, DataFormat.Parquet, cancellationToken);
        List<ColumnSpec> specs = [new("segment", ColumnType.String), new("profile_id", ColumnType.Int64)];
        if (deltas)
        {
            specs.Add(new("change", ColumnType.String));
        }
        var result = new List<(string, long, string?)>();
        foreach (var part in DatasetScan.Run(dataset, specs, () => new List<(string, long, string?)>(), (rows, scan) =>
        {
            var batch = scan.Batch;
            for (var i = 0; i < batch.Length; i++)
            {
                var segment = ArrowValues.String(batch.Column(0), i);
                if (segment is null || !segments.Contains(segment))
                {
                    continue;
                }
                var profile = ArrowValues.Long(batch.Column(1), i)
                    ?? throw new DataException(scan.Location, $"row {scan.FileRowOffset + i + 1}: profile_id is null");
                string? change = null;
                if (deltas)
                {
                    change = ArrowValues.String(batch.Column(2), i);
                    if (change is not (DeliveryKeys.Entered or DeliveryKeys.Exited))
                    {
                        throw new DataException(scan.Location, $"row {scan.FileRowOffset + i + 1}: change '{change}' is neither entered nor exited");
                    }
                }
                rows.Add((segment, profile, change));
            }
        }, new ScanOptions { Parallelism = 2 }, cancellationToken))
        {
            result.AddRange(part);
        }
        return result;
    }

    /// <summary>
    /// Whether a planned record belongs to the destination's control group: its entries are never sent, and neither are
    /// its exits (the member was never added; the assignment is the same every night).
    /// </summary>
    private static bool IsHeldOut(DestinationDefinition destination, PlannedRecord record)
        => destination.Holdout is { } holdout && HoldoutAssignment.IsHeldOut(holdout, destination.Name, record.Segment, record.ProfileId);

    private static DestinationOutcome DryRun(DestinationDefinition destination, List<PlannedRecord> plan, ProfileDirectory profiles,
        ConsentStore? consent, SuppressionList suppression)
    {
        var counts = new SortedDictionary<string, long>(StringComparer.Ordinal);
        var policy = new SendPolicy(destination, consent, suppression, destination.FrequencyCap is { } cap ? new FrequencyCounter([], cap.Sends) : null,
            null, TimeZoneInfo.Utc);
        var now = DateTimeOffset.UtcNow;
        foreach (var record in plan)
        {
            var identifiers = profiles.IdentifiersOf(record.ProfileId, destination.IdentifyBy);
            string outcome;
            if (IsHeldOut(destination, record))
            {
                outcome = Outcomes.HeldOut;
            }
            else if (destination.IdentifyBy.Count > 0 && identifiers.Count == 0)
            {
                outcome = Outcomes.Unmatched;
            }
            else
            {
                var outgoing = new OutgoingRecord(record.Key, record.Segment, record.ProfileId,
                    record.Change == DeliveryKeys.Entered ? RecordOperation.Add : RecordOperation.Remove, identifiers, new Dictionary<string, object?>());
                outcome = policy.Check(outgoing, profiles, now) is { } reason ? $"{Outcomes.Suppressed}:{reason}"
                    : record.Change == DeliveryKeys.Entered ? "would add" : "would remove";
            }
            counts[outcome] = counts.GetValueOrDefault(outcome) + 1;
        }
        return new DestinationOutcome(destination.Name, plan.Count, null, null, counts);
    }
}

/// <summary>
/// One delivery at a time per workspace with a SQLite ledger: an exclusive lock on <c>deliveries/.lock</c> beside
/// the ledger, released when the process ends however it ends (the OS drops the lock of a killed process).
/// </summary>
internal sealed class DeliveryLock : IDisposable
{
    private readonly FileStream? _stream;

    private DeliveryLock(FileStream? stream) => _stream = stream;

    public static DeliveryLock Acquire(Workspace workspace, DeliverySettings settings, StorageLocation output)
    {
        if (settings.Ledger != LedgerKind.Sqlite || !output.Store.TryGetLocalPath(output.Key, out var root))
        {
            return new DeliveryLock(null);
        }
        var path = Path.Combine(root, "deliveries", ".lock");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        try
        {
            return new DeliveryLock(new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None));
        }
        catch (IOException)
        {
            throw new EngineException($"another delivery is running on workspace '{workspace.Name}' ({path} is locked); wait for it to finish");
        }
    }

    public void Dispose() => _stream?.Dispose();
}
