using System.Diagnostics;
using System.Text.Json.Serialization;
using Apache.Arrow;
using Engine.Diagnostics;
using Engine.Profiles;
using Engine.Storage;
using Engine.Workspaces;
using Microsoft.Extensions.Logging;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Engine.Scores;

/// <summary>The scores stage's figures in <c>manifest.json</c> (under <c>scores</c>): one entry per model.</summary>
public sealed class ScoresReport
{
    [JsonPropertyName("models")] public Dictionary<string, ModelScoreReport> Models { get; set; } = [];
}

/// <summary>One model in a run: which version scored, whether it was trained tonight, and the scores' distribution.</summary>
public sealed class ModelScoreReport
{
    /// <summary>The version that scored; null when none could (the score columns are NULL).</summary>
    [JsonPropertyName("version")] public int? Version { get; set; }

    /// <summary>The version trained tonight (a new or changed definition), promoted or not.</summary>
    [JsonPropertyName("trained_version")] public int? TrainedVersion { get; set; }

    [JsonPropertyName("decision")] public string? Decision { get; set; }

    /// <summary>Why the model did not train or score tonight (the previous version, if any, scored instead).</summary>
    [JsonPropertyName("error")] public string? Error { get; set; }

    [JsonPropertyName("validation_roc_auc")] public double? ValidationRocAuc { get; set; }

    [JsonPropertyName("scored")] public long Scored { get; set; }

    /// <summary>How the profiles were scored: <c>compiled</c> (the tree ensemble evaluated by the engine) or <c>ML.NET Transform</c>.</summary>
    [JsonPropertyName("scorer")] public string? Scorer { get; set; }

    /// <summary>Profiles outside the model's population: their score is NULL.</summary>
    [JsonPropertyName("outside_population")] public long OutsidePopulation { get; set; }

    /// <summary>Profiles in ten equal-width bins of the score, [0, 0.1) … [0.9, 1].</summary>
    [JsonPropertyName("histogram")] public long[] Histogram { get; set; } = [];

    [JsonPropertyName("mean")] public double? Mean { get; set; }
    [JsonPropertyName("p10")] public double? P10 { get; set; }
    [JsonPropertyName("p50")] public double? P50 { get; set; }
    [JsonPropertyName("p90")] public double? P90 { get; set; }

    /// <summary>
    /// Population stability index of tonight's histogram against the last successful run's (same bins; an empty bin
    /// counts as half a profile): under 0.1 stable, 0.1–0.25 a shift worth a look, over 0.25 a shift.
    /// </summary>
    [JsonPropertyName("psi")] public double? Psi { get; set; }

    [JsonPropertyName("psi_against_run")] public string? PsiAgainstRun { get; set; }

    /// <summary>The model's time in this stage: scoring, and training when this stage trained it (a snapshot label, or outside a run).</summary>
    [JsonPropertyName("seconds")] public double Seconds { get; set; }
}

/// <summary>What the scores stage produced: the profile table with every model's score and decile, and its figures.</summary>
public sealed record ScoresResult(ProfileTable Table, ScoresReport Report);

/// <summary>
/// The scores stage: every model of the workspace scores the profile table and adds two columns, its score (the
/// calibrated probability of its label) and the score's decile. A model with no version yet, or whose definition
/// changed since its latest version, is trained first (<see cref="ModelTraining"/>), so the first night on a fresh
/// workspace already has scores: in a run, a forecast model by the training stage, before tonight's profile table
/// exists (<see cref="TrainingStage"/>), and a snapshot model here, on that table. A model that cannot train or score tonight is reported; the version that scored
/// before keeps scoring, and without one its columns are NULL. The run goes on either way.
/// </summary>
public sealed class ScoresStage
{
    /// <summary>Profiles scored per batch: memory is bounded by the batch, not by the profile count.</summary>
    internal const int BatchRows = 65_536;

    private readonly StorageResolver _storage;
    private readonly ILogger _logger;

    /// <summary>
    /// The run scoring. A version this run trained or registered in an earlier attempt (it was killed before its
    /// scores were committed) is reported as trained tonight and not trained again, so a resumed run reports what an
    /// uninterrupted one would.
    /// </summary>
    public string? RunId { get; init; }

    public ScoresStage(StorageResolver storage, ILogger logger)
    {
        _storage = storage;
        _logger = logger;
    }

    /// <summary>What the run's training stage did: a model it tried and could not train is reported, not tried again here.</summary>
    public TrainingReport? Training { get; init; }

    /// <summary>Scores <paramref name="table"/> with every model; <paramref name="previous"/> is the last successful run's report, for drift.</summary>
    public async Task<ScoresResult> RunAsync(
        Workspace workspace, ProfileTable table, StorageLocation identity, DateTimeOffset asOf, ModelRegistry registry,
        ScoresReport? previous, string? previousRunId, int parallelism, IProgress<string>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(workspace);
        ArgumentNullException.ThrowIfNull(table);
        var report = new ScoresReport();
        var columns = new List<ProfileColumn>(table.Columns);
        foreach (var model in workspace.Models)
        {
            var clock = Stopwatch.StartNew();
            var entry = new ModelScoreReport();
            report.Models[model.Name] = entry;
            var current = await registry.CurrentAsync(model.Name, cancellationToken);
            if (RunId is not null && await registry.VersionsAsync(model.Name, cancellationToken) is [.., var latest] && latest.RunId == RunId)
            {
                (entry.TrainedVersion, entry.Decision) = (latest.Version, latest.Decision);
                if (latest.Promoted)
                {
                    await registry.PointCurrentAtAsync(latest, cancellationToken);
                    current = latest;
                }
            }
            else if (model.External is not null)
            {
                var (added, error) = await ExternalModels.RegisterIfChangedAsync(workspace, model, table, registry, RunId, cancellationToken);
                if (added is not null)
                {
                    (entry.TrainedVersion, entry.Decision, current) = (added.Version, added.Decision, added);
                }
                if (error is not null)
                {
                    entry.Error = error;
                    Log.ModelFailed(_logger, error);
                }
            }
            else if (Training?.Models.TryGetValue(model.Name, out var tried) == true)
            {
                entry.Error = tried.Error;
            }
            else if (ModelTraining.WhyTrain(workspace, model, await registry.VersionsAsync(model.Name, cancellationToken)) is { } reason)
            {
                try
                {
                    progress?.Report($"{model.Name}: training ({reason})");
                    var outcome = await new ModelTraining(_storage, _logger) { RunId = RunId }.TrainAsync(
                        workspace, model, identity, table, asOf, registry, parallelism, progress, cancellationToken);
                    entry.TrainedVersion = outcome.Record.Version;
                    entry.Decision = outcome.Record.Decision;
                    if (outcome.Record.Promoted)
                    {
                        current = outcome.Record;
                    }
                }
                catch (ModelException e)
                {
                    entry.Error = e.Message;
                    Log.ModelFailed(_logger, e.Message);
                }
            }

            double[]? scores = null;
            if (current is not null)
            {
                try
                {
                    progress?.Report($"{model.Name}: scoring {table.Count:N0} profiles with version {current.Version}");
                    scores = await ScoreAsync(model, current, registry, table, asOf, parallelism, entry, cancellationToken);
                    entry.Version = current.Version;
                    entry.ValidationRocAuc = current.External ? null : current.Metrics.RocAuc;
                }
                catch (ModelException e)
                {
                    entry.Error = entry.Error is null ? e.Message : $"{entry.Error}; {e.Message}";
                    Log.ModelFailed(_logger, e.Message);
                }
            }
            var (scoreColumn, decileColumn) = Columns(scores, table.Count, entry);
            columns.Add(new ProfileColumn(model.ScoreColumn, ColumnType.Double, scoreColumn));
            columns.Add(new ProfileColumn(model.DecileColumn, ColumnType.Int64, decileColumn));
            if (previous?.Models.TryGetValue(model.Name, out var before) == true && before.Histogram.Length == entry.Histogram.Length && entry.Scored > 0 && before.Scored > 0)
            {
                entry.Psi = Psi(before.Histogram, entry.Histogram);
                entry.PsiAgainstRun = previousRunId;
            }
            entry.Seconds = clock.Elapsed.TotalSeconds;
            if (entry.Version is { } version)
            {
                Log.ModelScored(_logger, model.Name, version, entry.Scored, entry.Seconds);
            }
        }
        return new ScoresResult(new ProfileTable(table.ProfileIds, columns), report);
    }

    /// <summary>Every profile's score (NaN outside the population), batch by batch.</summary>
    private static async Task<double[]> ScoreAsync(
        ModelDefinition model, ModelRecord version, ModelRegistry registry, ProfileTable table, DateTimeOffset asOf, int parallelism, ModelScoreReport entry,
        CancellationToken cancellationToken)
    {
        version.Features.Check(model.Name, table);
        var ml = new MLContext(version.Trainer.Seed);
        var transformer = await registry.LoadAsync(ml, version, cancellationToken);
        var scorer = BatchScorer.For(transformer, parallelism, version.ProbabilityColumn);
        entry.Scorer = scorer.Path;
        var rows = model.Population is null ? null : ModelTraining.Population(model, table, asOf, parallelism);
        var total = rows?.Length ?? table.Count;
        var scores = new double[table.Count];
        System.Array.Fill(scores, double.NaN);
        using var batch = new FeatureBatch(version.Features.Count, BatchRows);
        var probabilities = new float[BatchRows];
        var batchRows = new int[BatchRows];
        for (var start = 0; start < total; start += BatchRows)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var n = Math.Min(BatchRows, total - start);
            for (var i = 0; i < n; i++)
            {
                batchRows[i] = rows is null ? start + i : rows[start + i];
            }
            var chosen = batchRows.AsSpan(0, n);
            version.Features.Fill(table, chosen, asOf, batch);
            scorer.Score(batch, probabilities);
            for (var i = 0; i < n; i++)
            {
                scores[chosen[i]] = probabilities[i];
            }
        }
        return scores;
    }

    /// <summary>
    /// The score and decile columns, and the distribution figures into <paramref name="entry"/>. A profile's decile is
    /// 1 + ⌊10 × (scored profiles with a lower score) / (scored profiles)⌋, so equal scores share a decile.
    /// </summary>
    private static (DoubleArray Scores, Int64Array Deciles) Columns(double[]? scores, int rows, ModelScoreReport entry)
    {
        var scoreBuilder = new DoubleArray.Builder().Reserve(rows);
        var decileBuilder = new Int64Array.Builder().Reserve(rows);
        entry.Histogram = new long[10];
        if (scores is null)
        {
            for (var i = 0; i < rows; i++)
            {
                scoreBuilder.AppendNull();
                decileBuilder.AppendNull();
            }
            entry.OutsidePopulation = rows;
            return (scoreBuilder.Build(), decileBuilder.Build());
        }
        var n = 0;
        foreach (var score in scores)
        {
            n += double.IsNaN(score) ? 0 : 1;
        }
        var sorted = new double[n];
        n = 0;
        foreach (var score in scores)
        {
            if (!double.IsNaN(score))
            {
                sorted[n++] = score;
            }
        }
        System.Array.Sort(sorted);
        double sum = 0;
        for (var i = 0; i < rows; i++)
        {
            var score = scores[i];
            if (double.IsNaN(score))
            {
                scoreBuilder.AppendNull();
                decileBuilder.AppendNull();
                continue;
            }
            scoreBuilder.Append(score);
            decileBuilder.Append(1 + (long)LowerBound(sorted, score) * 10 / n);
            entry.Histogram[Math.Clamp((int)(score * 10), 0, 9)]++;
            sum += score;
        }
        entry.Scored = n;
        entry.OutsidePopulation = rows - n;
        if (n > 0)
        {
            entry.Mean = sum / n;
            entry.P10 = sorted[(int)((n - 1) * 0.1)];
            entry.P50 = sorted[(int)((n - 1) * 0.5)];
            entry.P90 = sorted[(int)((n - 1) * 0.9)];
        }
        return (scoreBuilder.Build(), decileBuilder.Build());
    }

    /// <summary>
    /// The number of values below <paramref name="value"/> in <paramref name="sorted"/>. A tree model gives many
    /// profiles the same score, so a search that lands in a run of equal values and walks back would cost the run.
    /// </summary>
    private static int LowerBound(double[] sorted, double value)
    {
        int low = 0, high = sorted.Length;
        while (low < high)
        {
            var middle = (low + high) >>> 1;
            if (sorted[middle] < value)
            {
                low = middle + 1;
            }
            else
            {
                high = middle;
            }
        }
        return low;
    }

    /// <summary>Σ (actual − expected) · ln(actual / expected) over the bins' shares; an empty bin counts as half a profile.</summary>
    internal static double Psi(long[] expected, long[] actual)
    {
        double expectedTotal = 0, actualTotal = 0;
        for (var b = 0; b < expected.Length; b++)
        {
            expectedTotal += Math.Max(expected[b], 0.5);
            actualTotal += Math.Max(actual[b], 0.5);
        }
        double psi = 0;
        for (var b = 0; b < expected.Length; b++)
        {
            var e = Math.Max(expected[b], 0.5) / expectedTotal;
            var a = Math.Max(actual[b], 0.5) / actualTotal;
            psi += (a - e) * Math.Log(a / e);
        }
        return psi;
    }
}

/// <summary>
/// Scores feature batches: a LightGbm or FastTree model through its compiled tree ensemble (<see cref="CompiledTreeEnsemble"/>,
/// equal to ML.NET's scores within 1e-5 and several times faster), any other model through ML.NET's
/// <see cref="ITransformer.Transform"/> over a <see cref="FeatureDataView"/>.
/// </summary>
internal abstract class BatchScorer
{
    /// <summary>Writes each row's probability (ML.NET's <c>Probability</c> column).</summary>
    public abstract void Score(FeatureBatch batch, Span<float> probabilities);

    /// <summary>Which path scores: <c>compiled</c> or <c>ML.NET Transform</c>.</summary>
    public abstract string Path { get; }

    public static BatchScorer For(ITransformer model, int parallelism, string probabilityColumn = "Probability")
    {
        try
        {
            return new Compiled(CompiledTreeEnsemble.FromModel(model), Math.Max(1, parallelism));
        }
        catch (NotSupportedException)
        {
            return new Transform(model, probabilityColumn);
        }
    }

    private sealed class Compiled(CompiledTreeEnsemble ensemble, int parallelism) : BatchScorer
    {
        private float[] _raw = [];

        public override string Path => "compiled";

        public override void Score(FeatureBatch batch, Span<float> probabilities)
        {
            if (_raw.Length < batch.RowCount)
            {
                _raw = new float[batch.Capacity];
            }
            ensemble.Score(batch, _raw, probabilities, parallelism);
        }
    }

    private sealed class Transform(ITransformer model, string probabilityColumn) : BatchScorer
    {
        public override string Path => "ML.NET Transform";

        public override void Score(FeatureBatch batch, Span<float> probabilities)
        {
            var predictions = model.Transform(new FeatureDataView(batch));
            // ML.NET names an ONNX output "x.output" as the column "x".
            var column = predictions.Schema.GetColumnOrNull(probabilityColumn)
                ?? (probabilityColumn.EndsWith(".output", StringComparison.Ordinal) ? predictions.Schema.GetColumnOrNull(probabilityColumn[..^".output".Length]) : null)
                ?? throw new ModelException($"the model's output has no column '{probabilityColumn}' (its columns: {string.Join(", ", predictions.Schema.Select(c => c.Name))})");
            using var cursor = predictions.GetRowCursor([column]);
            var i = 0;
            if (column.Type is VectorDataViewType)
            {
                // An ONNX classifier's output: [p] or [p(negative), p(positive)].
                var getter = cursor.GetGetter<VBuffer<float>>(column);
                VBuffer<float> value = default;
                while (cursor.MoveNext())
                {
                    getter(ref value);
                    probabilities[i++] = value.GetItemOrDefault(value.Length == 2 ? 1 : 0);
                }
            }
            else
            {
                var getter = cursor.GetGetter<float>(column);
                float value = 0;
                while (cursor.MoveNext())
                {
                    getter(ref value);
                    probabilities[i++] = value;
                }
            }
        }
    }
}
