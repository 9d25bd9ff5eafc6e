using System.Text.Json;
using System.Text.Json.Serialization;
using Apache.Arrow;
using Engine.Connectors.Destinations;
using Engine.Connectors.Matching;
using Engine.Connectors.Reports;
using Engine.Runs;
using Engine.Storage;
using Engine.Workspaces;

namespace Engine.Connectors.Holdouts;

/// <summary>
/// The closed loop: per activation with a holdout (a segment delivered to a destination) and per outcome, how many
/// of the members who entered the segment converted within the outcome's window — those the destination was sent
/// to (treatment) against the control group held out — with the absolute lift and its 95 % confidence interval, and
/// the time from signal to delivery. Written as <c>runs/&lt;run_id&gt;/measurement.json</c> (names are a public
/// contract) and shown in the run report.
/// </summary>
/// <remarks>
/// <para><b>Who is counted.</b> Every entry (<c>change = entered</c>) of the activation events
/// (<c>deliveries/&lt;run&gt;/events/</c>) of the runs up to the measuring one that carries a holdout group. The
/// treatment group is every entry assigned to it, whatever became of it (delivered, suppressed, unmatched, failed):
/// an intent-to-treat comparison, which stays randomised because the assignment is a hash decided before any of
/// those (held-out members would have met the same consent checks). How many were delivered is reported beside it.
/// A member who enters twice (leaves and comes back) counts twice, each entry with its own window.</para>
/// <para><b>Conversion.</b> An entry made by a run with as-of time A converts when the outcome's source holds a
/// matching event at a time t with A &lt;= t &lt; A + window, for the entry's profile. Only entries whose window has
/// closed by the measurement's as-of time count; the others are reported as <c>open</c>. Outcome events carry raw
/// identifiers: they are normalised with the workspace's identity rules and mapped through the measuring run's
/// <c>identity/</c> — the row belongs to the profile of its most trusted identifier that has one, as in the
/// profiles stage (composite identifiers are not used here) — and the activation's profile ids are carried forward
/// through the <c>identity/merges</c> of the runs after it, so a member whose profile merged later keeps its
/// conversions.</para>
/// <para><b>Statistics.</b> Rates are conversions / entries per group; the lift is treatment rate − control rate
/// (absolute, so a negative lift on a churn outcome means fewer churned); its 95 % interval is Newcombe's hybrid
/// score interval from the two Wilson intervals (<see cref="Proportions"/>).</para>
/// </remarks>
public sealed class Measurement
{
    /// <summary>The figures' file, in the measuring run's folder.</summary>
    public const string FileName = "measurement.json";

    /// <summary>The interval method, as the file names it.</summary>
    public const string MethodName = "newcombe_hybrid_score";

    [JsonPropertyName("run_id")] public string RunId { get; set; } = "";

    /// <summary>Outcome events before this time count, and entries whose window closed by then.</summary>
    [JsonPropertyName("as_of")] public DateTimeOffset AsOf { get; set; }

    [JsonPropertyName("generated_at")] public DateTimeOffset GeneratedAt { get; set; }

    /// <summary>The confidence interval of the lift: Newcombe's hybrid score interval (method 10), from Wilson intervals.</summary>
    [JsonPropertyName("method")] public string Method { get; set; } = MethodName;

    [JsonPropertyName("confidence")] public double Confidence { get; set; } = 0.95;

    /// <summary>The runs whose activation events were read (those with a delivery), oldest first.</summary>
    [JsonPropertyName("runs_read")] public List<string> RunsRead { get; set; } = [];

    [JsonPropertyName("activations")] public List<ActivationMeasurement> Activations { get; set; } = [];

    public byte[] ToUtf8Json() => JsonSerializer.SerializeToUtf8Bytes(this, MeasurementJsonContext.Default.Measurement);

    public static Measurement Parse(ReadOnlySpan<byte> json) => JsonSerializer.Deserialize(json, MeasurementJsonContext.Default.Measurement)
        ?? throw new EngineException("empty measurement");

    /// <summary>Whether any destination of <paramref name="configuration"/> holds out a control group (there is something to measure).</summary>
    public static bool Configured(DeliveryConfiguration configuration) => configuration?.Destinations.Any(d => d.Holdout is not null) == true;

    /// <summary>
    /// Measures the activations of <paramref name="workspace"/> with the identity of run <paramref name="runId"/> as of
    /// <paramref name="asOf"/> (default: that run's as-of time), and writes <see cref="FileName"/> into the run's folder.
    /// </summary>
    public static async Task<(Measurement Measurement, StorageLocation File)> WriteAsync(Workspace workspace, DeliveryConfiguration configuration, StorageResolver storage,
        string runId, DateTimeOffset? asOf, CancellationToken cancellationToken)
    {
        var measurement = await BuildAsync(workspace, configuration, storage, runId, asOf, cancellationToken);
        var file = storage.Resolve(workspace.Output, workspace.Directory).Child("runs").Child(runId).Child(FileName);
        await file.Store.PutAsync(file.Key, measurement.ToUtf8Json(), cancellationToken);
        return (measurement, file);
    }

    /// <summary>Measures without writing (see <see cref="WriteAsync"/>).</summary>
    public static async Task<Measurement> BuildAsync(Workspace workspace, DeliveryConfiguration configuration, StorageResolver storage,
        string runId, DateTimeOffset? asOf, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(workspace);
        ArgumentNullException.ThrowIfNull(configuration);
        ArgumentNullException.ThrowIfNull(storage);
        var output = storage.Resolve(workspace.Output, workspace.Directory);
        var runsFolder = output.Child("runs");
        var runs = await RunHistory.ListAsync(runsFolder, cancellationToken);
        var at = runs.ToList().FindIndex(r => r.RunId == runId);
        if (at < 0)
        {
            throw new EngineException($"no run '{runId}' with a readable manifest under {runsFolder}");
        }
        var run = runs[at];
        if (!run.Stages.Exists(s => s.Name == "identity" && s.Status == RunStatus.Succeeded))
        {
            throw new EngineException($"run '{runId}' has no identity output to map outcome events to profiles: measure with a run that succeeded");
        }
        var until = asOf ?? run.AsOf;
        var untilMicros = Micros(until);
        var measurement = new Measurement { RunId = runId, AsOf = until, GeneratedAt = DateTimeOffset.UtcNow };

        // 1. The entries of every activation with a holdout group, from the activation events of the runs so far.
        var entries = new Dictionary<(string Destination, string Segment), List<Entry>>();
        var runIndex = new List<string>();
        for (var r = 0; r <= at; r++)
        {
            var events = output.Child("deliveries").Child(runs[r].RunId).Child("events");
            if (await events.Store.GetAsync(events.Child(DatasetManifest.FileName).Key, cancellationToken) is null)
            {
                continue;
            }
            var dataset = await Dataset.OpenAsync(events, DataFormat.Parquet, cancellationToken);
            // Events written before holdouts existed have no holdout_group: nothing of theirs is measured.
            if (dataset.Files.Count == 0 || !ParquetDataFile.Open(dataset.Location.Store, dataset.Files[0].Key).Schema.FieldsList.Any(f => f.Name == "holdout_group"))
            {
                continue;
            }
            measurement.RunsRead.Add(runs[r].RunId);
            runIndex.Add(runs[r].RunId);
            foreach (var (key, entry) in ReadEntries(dataset, runIndex.Count - 1, cancellationToken))
            {
                (entries.TryGetValue(key, out var list) ? list : entries[key] = []).Add(entry);
            }
        }
        if (entries.Count == 0)
        {
            return measurement;
        }

        // 2. Profile ids carried forward through later merges, to the measuring run's ids.
        await FollowMergesAsync(runsFolder, runs, at, runIndex, entries, cancellationToken);

        // 3. The outcomes to measure, per activation, and the outcome events of their sources, mapped to profiles.
        var plans = new List<(string Destination, string Segment, List<Entry> Entries, List<OutcomeDefinition> Outcomes)>();
        foreach (var ((destinationName, segment), list) in entries.OrderBy(e => e.Key.Destination, StringComparer.Ordinal).ThenBy(e => e.Key.Segment, StringComparer.Ordinal))
        {
            var destination = configuration.Find(destinationName);
            var names = destination?.Holdout?.Outcomes ?? [.. configuration.Settings.Outcomes.Select(o => o.Name)];
            var outcomes = configuration.Settings.Outcomes.Where(o => names.Contains(o.Name)).ToList();
            plans.Add((destinationName, segment, list, outcomes));
        }
        var used = plans.SelectMany(p => p.Outcomes).Distinct().ToList();
        var profiles = new HashSet<long>(entries.Values.SelectMany(l => l.Select(e => e.ProfileId)));
        var firstStart = entries.Values.SelectMany(l => l).Min(e => e.AsOfMicros);
        var conversions = await OutcomeEvents.ReadAsync(workspace, storage, runsFolder.Child(runId).Child("identity"), used, profiles, firstStart, untilMicros, cancellationToken);

        // 4. The figures.
        foreach (var (destinationName, segment, list, outcomes) in plans)
        {
            var activation = new ActivationMeasurement
            {
                Destination = destinationName,
                Segment = segment,
                HoldoutPercent = configuration.Find(destinationName)?.Holdout?.Percent,
                TreatmentEntries = list.Count(e => !e.Control),
                ControlEntries = list.Count(e => e.Control),
                Delivered = list.Count(e => e.Delivered),
                SecondsFromSignal = Percentiles.Of([.. list.Where(e => e.Delivered).Select(e => Percentiles.SecondsBetween(e.SignalMicros, e.DeliveredMicros))]),
                SecondsFromAsOf = Percentiles.Of([.. list.Where(e => e.Delivered).Select(e => Percentiles.SecondsBetween(e.AsOfMicros, e.DeliveredMicros))]),
            };
            foreach (var outcome in outcomes)
            {
                var window = (long)outcome.Window.TotalMicroseconds;
                var times = conversions[outcome.Name];
                var figures = new OutcomeMeasurement { Outcome = outcome.Name, WindowDays = outcome.WindowDays };
                foreach (var entry in list)
                {
                    if (entry.AsOfMicros + window > untilMicros)
                    {
                        figures.Open++;
                        continue;
                    }
                    var converted = times.TryGetValue(entry.ProfileId, out var ts) && AnyWithin(ts, entry.AsOfMicros, entry.AsOfMicros + window);
                    var group = entry.Control ? figures.Control : figures.Treatment;
                    group.Entries++;
                    group.Converted += converted ? 1 : 0;
                }
                figures.Treatment.Finish();
                figures.Control.Finish();
                if (figures.Treatment.Rate is { } treated && figures.Control.Rate is { } control)
                {
                    figures.Lift = treated - control;
                    figures.RelativeLift = control > 0 ? (treated - control) / control : null;
                    var interval = Proportions.NewcombeDifference(figures.Treatment.Converted, figures.Treatment.Entries, figures.Control.Converted, figures.Control.Entries)!.Value;
                    figures.LiftLow = interval.Low;
                    figures.LiftHigh = interval.High;
                }
                activation.Outcomes.Add(figures);
            }
            measurement.Activations.Add(activation);
        }
        return measurement;
    }

    /// <summary>Whether a sorted list holds a time in [from, to).</summary>
    private static bool AnyWithin(List<long> sorted, long from, long to)
    {
        var i = sorted.BinarySearch(from);
        if (i < 0)
        {
            i = ~i;
        }
        return i < sorted.Count && sorted[i] < to;
    }

    private static long Micros(DateTimeOffset value) => (value.ToUniversalTime() - DateTimeOffset.UnixEpoch).Ticks / 10;

    /// <summary>One entry of an activation: its (current) profile, group, and times in microseconds since the epoch.</summary>
    internal sealed class Entry
    {
        public long ProfileId { get; set; }
        public int Run { get; init; }
        public bool Control { get; init; }
        public bool Delivered { get; init; }
        public long AsOfMicros { get; init; }
        public long SignalMicros { get; init; }
        public long DeliveredMicros { get; init; }
    }

    private static List<((string, string), Entry)> ReadEntries(Dataset dataset, int run, CancellationToken cancellationToken)
    {
        ColumnSpec[] columns =
        [
            new("destination", ColumnType.String), new("segment", ColumnType.String), new("profile_id", ColumnType.Int64), new("change", ColumnType.String),
            new("outcome", ColumnType.String), new("ts", ColumnType.Timestamp), new("signal_ts", ColumnType.Timestamp), new("as_of", ColumnType.Timestamp),
            new("holdout_group", ColumnType.String),
        ];
        var result = new List<((string, string), Entry)>();
        foreach (var part in DatasetScan.Run(dataset, columns, () => new List<((string, string), Entry)>(), (rows, scan) =>
        {
            var batch = scan.Batch;
            for (var i = 0; i < batch.Length; i++)
            {
                var group = ArrowValues.String(batch.Column(8), i);
                if (group is null || ArrowValues.String(batch.Column(3), i) != Delivery.DeliveryKeys.Entered)
                {
                    continue;
                }
                var outcome = ArrowValues.String(batch.Column(4), i);
                rows.Add(((ArrowValues.String(batch.Column(0), i)!, ArrowValues.String(batch.Column(1), i)!), new Entry
                {
                    ProfileId = ArrowValues.Long(batch.Column(2), i) ?? throw new DataException(scan.Location, $"row {scan.FileRowOffset + i + 1}: profile_id is null"),
                    Run = run,
                    Control = group == ActivationEvents.Control,
                    Delivered = outcome == Ledger.Outcomes.Delivered,
                    AsOfMicros = TimestampMicros(batch.Column(7), i),
                    SignalMicros = TimestampMicros(batch.Column(6), i),
                    DeliveredMicros = TimestampMicros(batch.Column(5), i),
                }));
            }
        }, new ScanOptions { Parallelism = 2 }, cancellationToken))
        {
            result.AddRange(part);
        }
        return result;
    }

    internal static long TimestampMicros(IArrowArray array, int row) => array is TimestampArray timestamps && timestamps.GetTimestamp(row) is { } value
        ? Micros(value)
        : throw new InvalidDataException("expected a non-null timestamp");

    /// <summary>Carries each entry's profile id through the merges of the runs after its own, up to the measuring run.</summary>
    private static async Task FollowMergesAsync(StorageLocation runsFolder, IReadOnlyList<RunManifest> runs, int at, List<string> runIndex,
        Dictionary<(string, string), List<Entry>> entries, CancellationToken cancellationToken)
    {
        var all = entries.Values.SelectMany(l => l).ToList();
        var position = runs.Select((r, i) => (r.RunId, i)).ToDictionary(p => p.RunId, p => p.i, StringComparer.Ordinal);
        var entryRun = runIndex.Select(id => position[id]).ToArray();
        var firstRun = entryRun.Min();
        for (var r = firstRun + 1; r <= at; r++)
        {
            var merges = runsFolder.Child(runs[r].RunId).Child("identity").Child("merges");
            if (await merges.Store.GetAsync(merges.Child(DatasetManifest.FileName).Key, cancellationToken) is null)
            {
                continue;
            }
            var dataset = await Dataset.OpenAsync(merges, DataFormat.Parquet, cancellationToken);
            var moved = new Dictionary<long, long>();
            foreach (var part in DatasetScan.Run(dataset, [new("old_profile_id", ColumnType.Int64), new("new_profile_id", ColumnType.Int64), new("change", ColumnType.String)],
                () => new List<(long, long)>(), (rows, scan) =>
                {
                    var batch = scan.Batch;
                    for (var i = 0; i < batch.Length; i++)
                    {
                        if (ArrowValues.String(batch.Column(2), i) == "merged" && ArrowValues.Long(batch.Column(0), i) is { } from && ArrowValues.Long(batch.Column(1), i) is { } to)
                        {
                            rows.Add((from, to));
                        }
                    }
                }, new ScanOptions { Parallelism = 1 }, cancellationToken))
            {
                foreach (var (from, to) in part)
                {
                    moved[from] = to;
                }
            }
            foreach (var entry in all)
            {
                if (entryRun[entry.Run] < r && moved.TryGetValue(entry.ProfileId, out var to))
                {
                    entry.ProfileId = to;
                }
            }
        }
    }
}

/// <summary>One activation (a segment on a destination) with a holdout: its entries, delivery times and outcomes.</summary>
public sealed class ActivationMeasurement
{
    [JsonPropertyName("destination")] public string Destination { get; set; } = "";
    [JsonPropertyName("segment")] public string Segment { get; set; } = "";

    /// <summary>The destination's holdout percentage as configured now; null when it no longer has one.</summary>
    [JsonPropertyName("holdout_percent")] public decimal? HoldoutPercent { get; set; }

    /// <summary>Entries assigned to the treatment group (sent, or meant to be), open windows included.</summary>
    [JsonPropertyName("treatment_entries")] public long TreatmentEntries { get; set; }

    /// <summary>Entries held out (never sent), open windows included.</summary>
    [JsonPropertyName("control_entries")] public long ControlEntries { get; set; }

    /// <summary>Treatment entries the destination acknowledged.</summary>
    [JsonPropertyName("delivered")] public long Delivered { get; set; }

    /// <summary>Seconds from the signal (the run's finish) to the acknowledgement, over the delivered entries.</summary>
    [JsonPropertyName("seconds_from_signal")] public Percentiles? SecondsFromSignal { get; set; }

    /// <summary>Seconds from the run's as-of time (the data's cut-off: when the member entered) to the acknowledgement.</summary>
    [JsonPropertyName("seconds_from_as_of")] public Percentiles? SecondsFromAsOf { get; set; }

    [JsonPropertyName("outcomes")] public List<OutcomeMeasurement> Outcomes { get; set; } = [];
}

/// <summary>One outcome of an activation: conversion in each group over the entries whose window has closed.</summary>
public sealed class OutcomeMeasurement
{
    [JsonPropertyName("outcome")] public string Outcome { get; set; } = "";
    [JsonPropertyName("window_days")] public int WindowDays { get; set; }
    [JsonPropertyName("treatment")] public GroupMeasurement Treatment { get; set; } = new();
    [JsonPropertyName("control")] public GroupMeasurement Control { get; set; } = new();

    /// <summary>Entries (both groups) whose window is still open at the measurement's as-of time: not counted yet.</summary>
    [JsonPropertyName("open")] public long Open { get; set; }

    /// <summary>Treatment rate − control rate; null while a group has no closed entry.</summary>
    [JsonPropertyName("lift")] public double? Lift { get; set; }

    /// <summary>The lower end of the lift's 95 % confidence interval (Newcombe's hybrid score).</summary>
    [JsonPropertyName("lift_low")] public double? LiftLow { get; set; }

    [JsonPropertyName("lift_high")] public double? LiftHigh { get; set; }

    /// <summary>Lift / control rate; null when the control group did not convert at all.</summary>
    [JsonPropertyName("relative_lift")] public double? RelativeLift { get; set; }
}

/// <summary>One group's entries and conversions.</summary>
public sealed class GroupMeasurement
{
    [JsonPropertyName("entries")] public long Entries { get; set; }
    [JsonPropertyName("converted")] public long Converted { get; set; }

    /// <summary>Converted / entries; null without entries.</summary>
    [JsonPropertyName("rate")] public double? Rate { get; set; }

    /// <summary>The rate's 95 % Wilson interval.</summary>
    [JsonPropertyName("rate_low")] public double? RateLow { get; set; }

    [JsonPropertyName("rate_high")] public double? RateHigh { get; set; }

    internal void Finish()
    {
        if (Proportions.Wilson(Converted, Entries) is { } interval)
        {
            Rate = (double)Converted / Entries;
            RateLow = interval.Low;
            RateHigh = interval.High;
        }
    }
}

[JsonSourceGenerationOptions(WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(Measurement))]
internal sealed partial class MeasurementJsonContext : JsonSerializerContext;
