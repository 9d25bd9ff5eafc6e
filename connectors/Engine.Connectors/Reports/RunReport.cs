using System.Text.Json;
using System.Text.Json.Serialization;
using Apache.Arrow;
using Engine.Connectors.Ledger;
using Engine.Connectors.Matching;
using Engine.Identity;
using Engine.Runs;
using Engine.Scores;
using Engine.Storage;

namespace Engine.Connectors.Reports;

/// <summary>
/// The run report: what one run did, in figures a person reads without opening a log, written beside the run's
/// manifest as <c>report.json</c> (these figures) and <c>report.html</c> (the same figures with charts, one
/// self-contained file: no network needed to view it). It gathers the run's manifest and <c>run_results.json</c>, the
/// manifests of the runs before it (segment sizes across runs), the model registry (the ROC curve of the version that
/// scored), the run's delivery (<c>deliveries/&lt;run_id&gt;/report.json</c> and <c>events/</c>), when there is one,
/// and the run's <c>measurement.json</c> (holdouts: treatment against control), when one was measured.
/// It lives among the connectors because it reads delivery data; the engine core knows nothing of it.
/// Field names are a public contract, like the manifest's.
/// </summary>
public sealed class RunReport
{
    /// <summary>The figures' file, in the run's folder.</summary>
    public const string JsonFileName = "report.json";

    /// <summary>The readable report, in the run's folder.</summary>
    public const string HtmlFileName = "report.html";

    /// <summary>How many runs the history shows by default (this one and the ones before it).</summary>
    public const int DefaultHistoryRuns = 14;

    [JsonPropertyName("run_id")] public string RunId { get; set; } = "";
    [JsonPropertyName("workspace")] public string Workspace { get; set; } = "";
    /// <summary>The run's status as <c>run_results.json</c> gives it: the manifest's, or failed when the delivery after the run failed.</summary>
    [JsonPropertyName("status")] public string Status { get; set; } = "";

    /// <summary>Why the run failed (the manifest's error); a failed delivery's reason is in its stage's message.</summary>
    [JsonPropertyName("error")] public string? Error { get; set; }

    [JsonPropertyName("as_of")] public DateTimeOffset AsOf { get; set; }
    [JsonPropertyName("started_at")] public DateTimeOffset StartedAt { get; set; }
    [JsonPropertyName("finished_at")] public DateTimeOffset FinishedAt { get; set; }
    [JsonPropertyName("engine_version")] public string EngineVersion { get; set; } = "";
    [JsonPropertyName("generated_at")] public DateTimeOffset GeneratedAt { get; set; }

    /// <summary>Per stage (delivery included when the run delivered), from <c>run_results.json</c>.</summary>
    [JsonPropertyName("stages")] public List<StageResult> Stages { get; set; } = [];

    /// <summary>This run's segments, with what their delivery reached.</summary>
    [JsonPropertyName("segments")] public List<ReportSegment> Segments { get; set; } = [];

    /// <summary>This run and up to <see cref="DefaultHistoryRuns"/> − 1 runs before it (by as-of, then finish time), oldest first.</summary>
    [JsonPropertyName("history")] public List<HistoryRun> History { get; set; } = [];

    [JsonPropertyName("identity")] public ReportIdentity? Identity { get; set; }

    /// <summary>Per model: the distribution of tonight's scores and the ROC curve of the version that scored.</summary>
    [JsonPropertyName("scores")] public SortedDictionary<string, ReportModel> Scores { get; set; } = new(StringComparer.Ordinal);

    /// <summary>The run's delivery, when it was delivered.</summary>
    [JsonPropertyName("delivery")] public ReportDelivery? Delivery { get; set; }

    [JsonPropertyName("activation")] public ReportActivation Activation { get; set; } = new();

    /// <summary>The closed loop: the run's <c>measurement.json</c> (activations against their holdouts), when one was measured.</summary>
    [JsonPropertyName("holdouts")] public Engine.Connectors.Holdouts.Measurement? Holdouts { get; set; }

    public byte[] ToUtf8Json() => JsonSerializer.SerializeToUtf8Bytes(this, RunReportJsonContext.Default.RunReport);

    public static RunReport Parse(ReadOnlySpan<byte> json) => JsonSerializer.Deserialize(json, RunReportJsonContext.Default.RunReport)
        ?? throw new EngineException("empty run report");

    /// <summary>The report as one self-contained HTML page.</summary>
    public string ToHtml() => RunReportHtml.Render(this);

    /// <summary>
    /// Builds the report of run <paramref name="runId"/> from a workspace's <paramref name="output"/> (the folder
    /// holding <c>runs/</c>, <c>models/</c> and <c>deliveries/</c>).
    /// </summary>
    public static async Task<RunReport> BuildAsync(StorageLocation output, string runId, int historyRuns = DefaultHistoryRuns, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(runId);
        var runs = output.Child("runs");
        var all = await RunHistory.ListAsync(runs, cancellationToken);
        var at = all.ToList().FindIndex(m => m.RunId == runId);
        if (at < 0)
        {
            throw new EngineException($"no run '{runId}' with a readable manifest under {runs}");
        }
        var manifest = all[at];
        var report = new RunReport
        {
            RunId = manifest.RunId,
            Workspace = manifest.Workspace,
            Status = manifest.Status,
            Error = manifest.Error,
            AsOf = manifest.AsOf,
            StartedAt = manifest.StartedAt,
            FinishedAt = manifest.FinishedAt,
            EngineVersion = manifest.EngineVersion,
            GeneratedAt = DateTimeOffset.UtcNow,
        };

        // run_results.json has the delivery's entry too; a run written before it existed falls back to the manifest.
        var resultsFile = runs.Child(runId).Child(RunResults.FileName);
        var results = await resultsFile.Store.GetAsync(resultsFile.Key, cancellationToken) is { } bytes ? RunResults.Parse(bytes) : RunResults.From(manifest);
        report.Stages = results.Results;
        // run_results.json's status: the manifest's, or failed when the delivery after the run failed.
        report.Status = results.Status;

        var first = Math.Max(0, at + 1 - Math.Max(1, historyRuns));
        var window = all.Skip(first).Take(at + 1 - first).ToList();
        foreach (var run in window)
        {
            var entry = new HistoryRun { RunId = run.RunId, AsOf = run.AsOf, FinishedAt = run.FinishedAt, Status = run.Status };
            foreach (var segment in run.Segments?.Segments ?? [])
            {
                entry.Segments[segment.Name] = new SegmentFigures { Members = segment.Members, Entered = segment.Entered, Exited = segment.Exited };
            }
            report.History.Add(entry);
        }

        if (manifest.Identity is { } identity)
        {
            report.Identity = new ReportIdentity
            {
                Mode = identity.Mode,
                ModeReason = identity.ModeReason,
                PreviousRunId = identity.PreviousRunId,
                FilesRead = identity.FilesRead,
                Identifiers = identity.Identifiers,
                Links = identity.Edges,
                Profiles = identity.Profiles,
                ProfilesMerged = identity.ProfilesMerged,
                ProfilesSplit = identity.ProfilesSplit,
                LargestProfile = identity.LargestProfile,
                ProfileSizes = identity.ProfileSizes,
                LinksRefused = new SortedDictionary<string, long>(identity.LinksRefused, StringComparer.Ordinal),
                LinksRefusedTotal = identity.LinksRefused.Values.Sum(),
            };
        }

        if (manifest.Scores is { } scores)
        {
            var registry = new ModelRegistry(output.Child(ModelRegistry.Folder));
            foreach (var (name, model) in scores.Models)
            {
                var entry = new ReportModel
                {
                    Version = model.Version,
                    Error = model.Error,
                    Scored = model.Scored,
                    OutsidePopulation = model.OutsidePopulation,
                    Histogram = model.Histogram,
                    Mean = model.Mean,
                    P10 = model.P10,
                    P50 = model.P50,
                    P90 = model.P90,
                    Psi = model.Psi,
                    PsiAgainstRun = model.PsiAgainstRun,
                    ValidationRocAuc = model.ValidationRocAuc,
                };
                if (model.Version is { } version
                    && (await registry.VersionsAsync(name, cancellationToken)).FirstOrDefault(v => v.Version == version) is { } record)
                {
                    entry.ValidationMethod = record.Metrics.Method;
                    entry.RocCurve = record.Metrics.RocCurve;
                }
                report.Scores[name] = entry;
            }
        }

        var measurementFile = runs.Child(runId).Child(Engine.Connectors.Holdouts.Measurement.FileName);
        if (await measurementFile.Store.GetAsync(measurementFile.Key, cancellationToken) is { } measurementBytes)
        {
            report.Holdouts = Engine.Connectors.Holdouts.Measurement.Parse(measurementBytes);
        }

        var builtSegments = manifest.Segments?.Segments.Where(s => s.Declared).Select(s => s.Name).ToList() ?? [];
        var deliveries = output.Child("deliveries");
        var deliveryFile = deliveries.Child(runId).Child("report.json");
        Dictionary<string, SegmentDelivery> tonight = new(StringComparer.Ordinal);
        if (await deliveryFile.Store.GetAsync(deliveryFile.Key, cancellationToken) is { } deliveryBytes)
        {
            var delivery = DeliveryReport.Parse(deliveryBytes);
            var (perSegment, waits) = await ReadEventsAsync(deliveries.Child(runId).Child("events"), withWaits: true, cancellationToken);
            tonight = perSegment;
            var processed = delivery.Destinations.Values.Sum(d => d.Processed);
            var delivered = delivery.Destinations.Values.Sum(d => d.Added + d.Removed);
            report.Delivery = new ReportDelivery
            {
                SignalAt = delivery.SignalAt,
                WrittenAt = delivery.WrittenAt,
                Destinations = delivery.Destinations,
                Processed = processed,
                Delivered = delivered,
                DeliveredRate = processed == 0 ? null : (double)delivered / processed,
                SecondsToDelivery = Percentiles.Of(waits),
            };
        }

        // A segment reaches a channel once a destination holds some of it: a record delivered tonight or in one of the
        // earlier runs shown (an unchanged segment sends nothing tonight, yet its audience is live).
        var reached = new Dictionary<string, SortedSet<string>>(StringComparer.Ordinal);
        void Reach(Dictionary<string, SegmentDelivery> perSegment)
        {
            foreach (var (segment, figures) in perSegment)
            {
                foreach (var destination in figures.DeliveredTo)
                {
                    (reached.TryGetValue(segment, out var set) ? set : reached[segment] = new SortedSet<string>(StringComparer.Ordinal)).Add(destination);
                }
            }
        }
        Reach(tonight);
        for (var i = window.Count - 2; i >= 0 && builtSegments.Exists(s => !reached.ContainsKey(s)); i--)
        {
            var events = deliveries.Child(window[i].RunId).Child("events");
            if (await events.Store.GetAsync(events.Child(DatasetManifest.FileName).Key, cancellationToken) is not null)
            {
                Reach((await ReadEventsAsync(events, withWaits: false, cancellationToken)).PerSegment);
            }
        }

        foreach (var segment in manifest.Segments?.Segments ?? [])
        {
            var figures = tonight.GetValueOrDefault(segment.Name);
            report.Segments.Add(new ReportSegment
            {
                Name = segment.Name,
                Declared = segment.Declared,
                Members = segment.Members,
                Entered = segment.Entered,
                Exited = segment.Exited,
                Processed = figures?.Processed ?? 0,
                Delivered = figures?.Delivered ?? 0,
                ReachedDestinations = reached.TryGetValue(segment.Name, out var set) ? [.. set] : [],
            });
        }
        var reachedCount = builtSegments.Count(reached.ContainsKey);
        report.Activation = new ReportActivation
        {
            SegmentsBuilt = builtSegments.Count,
            SegmentsReached = reachedCount,
            Rate = builtSegments.Count == 0 ? null : (double)reachedCount / builtSegments.Count,
            RunsConsidered = window.Count,
        };
        return report;
    }

    /// <summary>Builds the report of run <paramref name="runId"/> and writes <c>report.json</c>, then <c>report.html</c>, into its folder.</summary>
    public static async Task<RunReportFiles> WriteAsync(StorageLocation output, string runId, int historyRuns = DefaultHistoryRuns, CancellationToken cancellationToken = default)
    {
        var report = await BuildAsync(output, runId, historyRuns, cancellationToken);
        var folder = output.Child("runs").Child(runId);
        var json = folder.Child(JsonFileName);
        var html = folder.Child(HtmlFileName);
        await json.Store.PutAsync(json.Key, report.ToUtf8Json(), cancellationToken);
        await html.Store.PutAsync(html.Key, System.Text.Encoding.UTF8.GetBytes(report.ToHtml()), cancellationToken);
        return new RunReportFiles(report, html, json);
    }

    /// <summary>Per segment, the records processed and delivered and the destinations delivered to; with <paramref name="withWaits"/>, the delivered records' seconds from signal to delivery.</summary>
    private static async Task<(Dictionary<string, SegmentDelivery> PerSegment, List<double> Waits)> ReadEventsAsync(
        StorageLocation events, bool withWaits, CancellationToken cancellationToken)
    {
        var dataset = await Dataset.OpenAsync(events, DataFormat.Parquet, cancellationToken);
        List<ColumnSpec> columns = [new("destination", ColumnType.String), new("segment", ColumnType.String), new("outcome", ColumnType.String)];
        if (withWaits)
        {
            columns.Add(new("ts", ColumnType.Timestamp));
            columns.Add(new("signal_ts", ColumnType.Timestamp));
        }
        var perSegment = new Dictionary<string, SegmentDelivery>(StringComparer.Ordinal);
        var waits = new List<double>();
        var parts = DatasetScan.Run(dataset, columns, () => (Segments: new Dictionary<string, SegmentDelivery>(StringComparer.Ordinal), Waits: new List<double>()), (state, scan) =>
        {
            var batch = scan.Batch;
            for (var i = 0; i < batch.Length; i++)
            {
                var destination = ArrowValues.String(batch.Column(0), i) ?? "";
                var segment = ArrowValues.String(batch.Column(1), i) ?? "";
                var outcome = ArrowValues.String(batch.Column(2), i);
                var figures = state.Segments.TryGetValue(segment, out var found) ? found : state.Segments[segment] = new SegmentDelivery();
                figures.Processed++;
                if (outcome != Outcomes.Delivered)
                {
                    continue;
                }
                figures.Delivered++;
                figures.DeliveredTo.Add(destination);
                if (withWaits && Micros(batch.Column(3), i) is { } ts && Micros(batch.Column(4), i) is { } signal)
                {
                    state.Waits.Add(Percentiles.SecondsBetween(signal, ts));
                }
            }
        }, new ScanOptions { Parallelism = 2 }, cancellationToken);
        foreach (var part in parts)
        {
            foreach (var (segment, figures) in part.Segments)
            {
                var total = perSegment.TryGetValue(segment, out var found) ? found : perSegment[segment] = new SegmentDelivery();
                total.Processed += figures.Processed;
                total.Delivered += figures.Delivered;
                total.DeliveredTo.UnionWith(figures.DeliveredTo);
            }
            waits.AddRange(part.Waits);
        }
        return (perSegment, waits);
    }

    private static long? Micros(IArrowArray array, int row) => array is TimestampArray timestamps && timestamps.GetTimestamp(row) is { } value
        ? (value - DateTimeOffset.UnixEpoch).Ticks / 10
        : null;

    private sealed class SegmentDelivery
    {
        public long Processed { get; set; }
        public long Delivered { get; set; }
        public HashSet<string> DeliveredTo { get; } = new(StringComparer.Ordinal);
    }
}

/// <summary>What <see cref="RunReport.WriteAsync"/> wrote.</summary>
public sealed record RunReportFiles(RunReport Report, StorageLocation Html, StorageLocation Json);

/// <summary>One segment of the run: its membership and what its delivery reached.</summary>
public sealed class ReportSegment
{
    [JsonPropertyName("name")] public string Name { get; set; } = "";

    /// <summary>False for a segment the workspace no longer declares (all its members exit); not counted as built.</summary>
    [JsonPropertyName("declared")] public bool Declared { get; set; } = true;

    [JsonPropertyName("members")] public long Members { get; set; }
    [JsonPropertyName("entered")] public long Entered { get; set; }
    [JsonPropertyName("exited")] public long Exited { get; set; }

    /// <summary>Records of the segment that tonight's delivery processed, over every destination.</summary>
    [JsonPropertyName("processed")] public long Processed { get; set; }

    /// <summary>Of those, delivered (added or removed at the destination).</summary>
    [JsonPropertyName("delivered")] public long Delivered { get; set; }

    /// <summary>Destinations that hold some of the segment: a record delivered tonight or in an earlier run of the history.</summary>
    [JsonPropertyName("reached_destinations")] public List<string> ReachedDestinations { get; set; } = [];
}

/// <summary>A run in the history: its segments' sizes and changes.</summary>
public sealed class HistoryRun
{
    [JsonPropertyName("run_id")] public string RunId { get; set; } = "";
    [JsonPropertyName("as_of")] public DateTimeOffset AsOf { get; set; }
    [JsonPropertyName("finished_at")] public DateTimeOffset FinishedAt { get; set; }
    [JsonPropertyName("status")] public string Status { get; set; } = "";
    [JsonPropertyName("segments")] public SortedDictionary<string, SegmentFigures> Segments { get; set; } = new(StringComparer.Ordinal);
}

/// <summary>A segment's size and change in one run.</summary>
public sealed class SegmentFigures
{
    [JsonPropertyName("members")] public long Members { get; set; }
    [JsonPropertyName("entered")] public long Entered { get; set; }
    [JsonPropertyName("exited")] public long Exited { get; set; }
}

/// <summary>The identity figures the report shows: the cluster-size distribution and the refused links.</summary>
public sealed class ReportIdentity
{
    /// <summary><c>full</c> or <c>incremental</c>, and why.</summary>
    [JsonPropertyName("mode")] public string Mode { get; set; } = "";
    [JsonPropertyName("mode_reason")] public string ModeReason { get; set; } = "";
    [JsonPropertyName("previous_run_id")] public string? PreviousRunId { get; set; }

    /// <summary>Input files read tonight: none in an incremental run means no new data (a no-op night).</summary>
    [JsonPropertyName("files_read")] public int FilesRead { get; set; }

    [JsonPropertyName("identifiers")] public long Identifiers { get; set; }
    [JsonPropertyName("links")] public long Links { get; set; }
    [JsonPropertyName("profiles")] public long Profiles { get; set; }
    [JsonPropertyName("profiles_merged")] public long ProfilesMerged { get; set; }
    [JsonPropertyName("profiles_split")] public long ProfilesSplit { get; set; }
    [JsonPropertyName("largest_profile")] public long LargestProfile { get; set; }

    /// <summary>Profiles by identifier count, in the manifest's power-of-two buckets.</summary>
    [JsonPropertyName("profile_sizes")] public List<SizeBucket> ProfileSizes { get; set; } = [];

    /// <summary>Links refused (merges not made), by reason: <c>limit:&lt;type&gt;</c> or <c>shared:&lt;type&gt;</c>.</summary>
    [JsonPropertyName("links_refused")] public SortedDictionary<string, long> LinksRefused { get; set; } = new(StringComparer.Ordinal);

    [JsonPropertyName("links_refused_total")] public long LinksRefusedTotal { get; set; }
}

/// <summary>One model in the report: tonight's score distribution and the ROC curve of the version that scored.</summary>
public sealed class ReportModel
{
    [JsonPropertyName("version")] public int? Version { get; set; }
    [JsonPropertyName("error")] public string? Error { get; set; }
    [JsonPropertyName("scored")] public long Scored { get; set; }
    [JsonPropertyName("outside_population")] public long OutsidePopulation { get; set; }

    /// <summary>Profiles in ten equal-width bins of the score, [0, 0.1) … [0.9, 1].</summary>
    [JsonPropertyName("histogram")] public long[] Histogram { get; set; } = [];

    [JsonPropertyName("mean")] public double? Mean { get; set; }
    [JsonPropertyName("p10")] public double? P10 { get; set; }
    [JsonPropertyName("p50")] public double? P50 { get; set; }
    [JsonPropertyName("p90")] public double? P90 { get; set; }
    [JsonPropertyName("psi")] public double? Psi { get; set; }
    [JsonPropertyName("psi_against_run")] public string? PsiAgainstRun { get; set; }
    [JsonPropertyName("validation_roc_auc")] public double? ValidationRocAuc { get; set; }

    /// <summary>How the version was validated (time split or cross-validation), from the registry.</summary>
    [JsonPropertyName("validation_method")] public string? ValidationMethod { get; set; }

    /// <summary>The version's validation ROC curve from the registry; empty for a version that has none stored.</summary>
    [JsonPropertyName("roc_curve")] public List<RocPoint> RocCurve { get; set; } = [];
}

/// <summary>The run's delivery: the delivery report's figures per destination, with totals.</summary>
public sealed class ReportDelivery
{
    [JsonPropertyName("signal_at")] public DateTimeOffset SignalAt { get; set; }
    [JsonPropertyName("written_at")] public DateTimeOffset WrittenAt { get; set; }
    [JsonPropertyName("destinations")] public SortedDictionary<string, DestinationReport> Destinations { get; set; } = new(StringComparer.Ordinal);
    [JsonPropertyName("processed")] public long Processed { get; set; }

    /// <summary>Records added or removed at their destination.</summary>
    [JsonPropertyName("delivered")] public long Delivered { get; set; }

    /// <summary><see cref="Delivered"/> / <see cref="Processed"/>; null when nothing was processed.</summary>
    [JsonPropertyName("delivered_rate")] public double? DeliveredRate { get; set; }

    /// <summary>Time to activation over every destination: seconds from the signal to each delivered record's acknowledgement.</summary>
    [JsonPropertyName("seconds_to_delivery")] public Percentiles? SecondsToDelivery { get; set; }
}

/// <summary>Whether the run's audiences reach a channel.</summary>
public sealed class ReportActivation
{
    /// <summary>Segments the workspace declares, built by the run.</summary>
    [JsonPropertyName("segments_built")] public long SegmentsBuilt { get; set; }

    /// <summary>Of those, segments some destination holds (see <see cref="ReportSegment.ReachedDestinations"/>).</summary>
    [JsonPropertyName("segments_reached")] public long SegmentsReached { get; set; }

    /// <summary><see cref="SegmentsReached"/> / <see cref="SegmentsBuilt"/>; null when no segment was built.</summary>
    [JsonPropertyName("rate")] public double? Rate { get; set; }

    /// <summary>The runs whose deliveries count (this run and the earlier ones of the history).</summary>
    [JsonPropertyName("runs_considered")] public int RunsConsidered { get; set; }
}

[JsonSourceGenerationOptions(WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(RunReport))]
internal sealed partial class RunReportJsonContext : JsonSerializerContext;
