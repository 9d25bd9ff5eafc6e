using System.Buffers;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
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
            var (scoreColumn, decileColumn) = Columns(scores, table.Count, parallelism, entry);
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

    /// <summary>
    /// Every profile's score (NaN outside the population). Whole batches go to up to <paramref name="parallelism"/>
    /// workers, each with its own <see cref="FeatureBatch"/> and buffers; a profile's score depends on its row alone, so
    /// the scores are the same whichever worker scored it.
    /// </summary>
    private static async Task<double[]> ScoreAsync(
        ModelDefinition model, ModelRecord version, ModelRegistry registry, ProfileTable table, DateTimeOffset asOf, int parallelism, ModelScoreReport entry,
        CancellationToken cancellationToken)
    {
        version.Features.Check(model.Name, table);
        var ml = new MLContext(version.Trainer.Seed);
        var transformer = await registry.LoadAsync(ml, version, cancellationToken);
        var rows = model.Population is null ? null : ModelTraining.Population(model, table, asOf, parallelism);
        var total = rows?.Length ?? table.Count;
        var batches = (int)(((long)total + BatchRows - 1) / BatchRows);
        // Parallel over batches, or inside the one batch there is: never both, or the two would multiply.
        var workers = Math.Max(1, Math.Min(parallelism, batches));
        var scorer = BatchScorer.For(transformer, workers > 1 ? 1 : parallelism, version.ProbabilityColumn);
        entry.Scorer = scorer.Path;
        var scores = new double[table.Count];
        System.Array.Fill(scores, double.NaN);
        var features = version.Features;
        try
        {
            Parallel.For(
                0,
                batches,
                new ParallelOptions { MaxDegreeOfParallelism = workers, CancellationToken = cancellationToken },
                () => new ScoringWorker(features.Count),
                (b, _, worker) =>
                {
                    var start = b * BatchRows;
                    var n = Math.Min(BatchRows, total - start);
                    var chosen = worker.Rows.AsSpan(0, n);
                    for (var i = 0; i < n; i++)
                    {
                        chosen[i] = rows is null ? start + i : rows[start + i];
                    }
                    features.Fill(table, chosen, asOf, worker.Batch);
                    scorer.Score(worker.Batch, worker.Probabilities);
                    for (var i = 0; i < n; i++)
                    {
                        scores[chosen[i]] = worker.Probabilities[i];
                    }
                    return worker;
                },
                worker => worker.Dispose());
        }
        catch (AggregateException e)
        {
            // As the serial loop threw: a ModelException from the scorer is the model's error, not the run's.
            ExceptionDispatchInfo.Throw(e.Flatten().InnerExceptions[0]);
        }
        return scores;
    }

    /// <summary>One scoring worker's batch and buffers, for the batches it takes.</summary>
    private sealed class ScoringWorker(int features) : IDisposable
    {
        public FeatureBatch Batch { get; } = new(features, BatchRows);

        public float[] Probabilities { get; } = new float[BatchRows];

        public int[] Rows { get; } = new int[BatchRows];

        public void Dispose() => Batch.Dispose();
    }

    /// <summary>
    /// The score and decile columns, and the distribution figures into <paramref name="entry"/>. A profile's decile is
    /// 1 + ⌊10 × (scored profiles with a lower score) / (scored profiles)⌋, so equal scores share a decile.
    /// <para>No sort: with the scored values in ascending order v[0] ≤ … ≤ v[n − 1] and k(d) = ⌈d·n/10⌉, "at least
    /// k(d) scores are lower than s" is "v[k(d) − 1] &lt; s", so the decile is 1 + the number of the nine thresholds
    /// v[k(d) − 1] below s. Those nine and the three percentiles come from a radix select (<see cref="Select"/>); the
    /// rows are cut into ranges on <paramref name="parallelism"/> workers. The mean's sum alone runs over the rows in
    /// order, so that it is the same double to the last bit.</para>
    /// <para><paramref name="scores"/> becomes the score column's values (NaN replaced by 0 under a null).</para>
    /// </summary>
    internal static (DoubleArray Scores, Int64Array Deciles) Columns(double[]? scores, int rows, int parallelism, ModelScoreReport entry)
    {
        entry.Histogram = new long[10];
        if (scores is null)
        {
            entry.OutsidePopulation = rows;
            var none = new ArrowBuffer(new byte[(rows + 7) / 8]);
            return (new DoubleArray(ManagedArrowBuffer.Wrap(new double[rows]), none, rows, rows, 0),
                new Int64Array(ManagedArrowBuffer.Wrap(new long[rows]), none, rows, rows, 0));
        }
        var ranges = new RowRanges(rows, parallelism);
        var options = new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, parallelism) };

        // Pass 1: per range, the scored count, the histogram, the validity bits and the top 16 bits' counts.
        var validity = new byte[(rows + 7) / 8];
        var counts = new long[ranges.Count];
        var histograms = new long[ranges.Count][];
        var tops = new int[ranges.Count][];
        Parallel.For(0, ranges.Count, options, r =>
        {
            var (start, end) = ranges[r];
            var histogram = histograms[r] = new long[10];
            var top = tops[r] = new int[1 << TopBits];
            var scored = 0;
            for (var i = start; i < end; i++)
            {
                var score = scores[i];
                if (double.IsNaN(score))
                {
                    continue;
                }
                scored++;
                validity[i >> 3] |= (byte)(1 << (i & 7));
                histogram[Math.Clamp((int)(score * 10), 0, 9)]++;
                top[(int)(Key(score) >> (64 - TopBits))]++;
            }
            counts[r] = scored;
        });
        long n = 0;
        var topCounts = new long[1 << TopBits];
        for (var r = 0; r < ranges.Count; r++)
        {
            n += counts[r];
            for (var b = 0; b < 10; b++)
            {
                entry.Histogram[b] += histograms[r][b];
            }
            var top = tops[r];
            for (var b = 0; b < top.Length; b++)
            {
                topCounts[b] += top[b];
            }
        }
        entry.Scored = n;
        entry.OutsidePopulation = rows - n;

        // The nine thresholds, then P10, P50, P90 at the ranks a sorted array was read at.
        var thresholds = new double[9];
        if (n > 0)
        {
            Span<long> ranks = stackalloc long[12];
            for (var d = 1; d <= 9; d++)
            {
                ranks[d - 1] = (d * n + 9) / 10 - 1;
            }
            ranks[9] = (int)((n - 1) * 0.1);
            ranks[10] = (int)((n - 1) * 0.5);
            ranks[11] = (int)((n - 1) * 0.9);
            Span<ulong> keys = stackalloc ulong[12];
            Select(scores, ranges, options, topCounts, ranks, keys);
            for (var d = 0; d < 9; d++)
            {
                thresholds[d] = Value(keys[d]);
            }
            (entry.P10, entry.P50, entry.P90) = (Value(keys[9]), Value(keys[10]), Value(keys[11]));

            // Summed in row order, as a single pass would: another order could change the mean's last bits.
            double sum = 0;
            foreach (var score in scores)
            {
                if (!double.IsNaN(score))
                {
                    sum += score;
                }
            }
            entry.Mean = sum / n;
        }

        // Pass 2: the deciles; NaN becomes 0 under a null, as a builder's AppendNull writes.
        var deciles = new long[rows];
        Parallel.For(0, ranges.Count, options, r =>
        {
            var (start, end) = ranges[r];
            for (var i = start; i < end; i++)
            {
                var score = scores[i];
                if (double.IsNaN(score))
                {
                    scores[i] = 0;
                    continue;
                }
                long decile = 1;
                foreach (var threshold in thresholds)
                {
                    decile += threshold < score ? 1 : 0;
                }
                deciles[i] = decile;
            }
        });
        var nulls = (int)(rows - n);
        var bits = nulls == 0 ? ArrowBuffer.Empty : new ArrowBuffer(validity);
        return (new DoubleArray(ManagedArrowBuffer.Wrap(scores), bits, rows, nulls, 0),
            new Int64Array(ManagedArrowBuffer.Wrap(deciles), bits, rows, nulls, 0));
    }

    /// <summary>The bits of a key the first pass counts; each later pass refines by <see cref="DigitBits"/>.</summary>
    private const int TopBits = 16;

    private const int DigitBits = 12;

    private const ulong SignBit = 1UL << 63;

    /// <summary>
    /// The values at <paramref name="ranks"/> (0-based, in the ascending order of the non-NaN scores) as keys: a radix
    /// select. <paramref name="topCounts"/> places each rank under a value of the top 16 bits; each pass then counts
    /// the next 12 bits of the values under a wanted prefix, in parallel over the ranges, until the prefix is the whole
    /// key or every value under it is the same (tied scores, or scores that were floats, stop after two or three
    /// passes). Linear in the rows, where a sort is n log n and serial.
    /// </summary>
    private static void Select(double[] scores, RowRanges ranges, ParallelOptions options, long[] topCounts, ReadOnlySpan<long> ranks, Span<ulong> keys)
    {
        var m = ranks.Length;
        var prefixes = new ulong[m];
        var remaining = new long[m];
        var done = new bool[m];
        for (var j = 0; j < m; j++)
        {
            (prefixes[j], remaining[j]) = Locate(topCounts, ranks[j]);
        }
        var known = TopBits;
        while (known < 64 && System.Array.IndexOf(done, false) >= 0)
        {
            var width = Math.Min(DigitBits, 64 - known);
            var shift = 64 - known - width;
            var mask = (1UL << width) - 1;
            var wanted = prefixes.Where((_, j) => !done[j]).Distinct().Order().ToArray();
            // Most values are under no wanted prefix: one look-up by their top bits rules them out.
            var candidates = new bool[1 << TopBits];
            foreach (var prefix in wanted)
            {
                candidates[(int)(prefix >> (known - TopBits))] = true;
            }
            var counts = new long[wanted.Length << width];
            var least = Enumerable.Repeat(ulong.MaxValue, wanted.Length).ToArray();
            var most = new ulong[wanted.Length];
            var gate = new Lock();
            Parallel.For(0, ranges.Count, options, r =>
            {
                var (start, end) = ranges[r];
                var local = new int[wanted.Length << width];
                var localLeast = Enumerable.Repeat(ulong.MaxValue, wanted.Length).ToArray();
                var localMost = new ulong[wanted.Length];
                for (var i = start; i < end; i++)
                {
                    var score = scores[i];
                    if (double.IsNaN(score))
                    {
                        continue;
                    }
                    var key = Key(score);
                    if (!candidates[(int)(key >> (64 - TopBits))])
                    {
                        continue;
                    }
                    var prefix = key >> (64 - known);
                    for (var w = 0; w < wanted.Length; w++)
                    {
                        if (wanted[w] == prefix)
                        {
                            local[(w << width) | (int)((key >> shift) & mask)]++;
                            localLeast[w] = Math.Min(localLeast[w], key);
                            localMost[w] = Math.Max(localMost[w], key);
                            break;
                        }
                    }
                }
                lock (gate)
                {
                    for (var c = 0; c < local.Length; c++)
                    {
                        counts[c] += local[c];
                    }
                    for (var w = 0; w < wanted.Length; w++)
                    {
                        least[w] = Math.Min(least[w], localLeast[w]);
                        most[w] = Math.Max(most[w], localMost[w]);
                    }
                }
            });
            for (var j = 0; j < m; j++)
            {
                if (done[j])
                {
                    continue;
                }
                var w = System.Array.BinarySearch(wanted, prefixes[j]);
                if (least[w] == most[w])
                {
                    // Every value under the prefix is the same: it is the value at the rank.
                    (prefixes[j], done[j]) = (least[w], true);
                    continue;
                }
                var (digit, rest) = Locate(counts.AsSpan(w << width, 1 << width), remaining[j]);
                (prefixes[j], remaining[j]) = ((prefixes[j] << width) | digit, rest);
            }
            known += width;
        }
        prefixes.CopyTo(keys);
    }

    /// <summary>The bucket that holds the value at <paramref name="rank"/>, and its rank within the bucket.</summary>
    private static (ulong Bucket, long Rank) Locate(ReadOnlySpan<long> counts, long rank)
    {
        for (var b = 0; b < counts.Length; b++)
        {
            if (rank < counts[b])
            {
                return ((ulong)b, rank);
            }
            rank -= counts[b];
        }
        throw new UnreachableException();
    }

    /// <summary>
    /// A key whose unsigned order is the doubles' order: positive doubles with the sign bit set, negative ones
    /// inverted. -0 is read as 0, as <c>&lt;</c> compares them. Never called with NaN.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Key(double value)
    {
        var bits = (ulong)BitConverter.DoubleToInt64Bits(value == 0 ? 0.0 : value);
        return bits ^ ((ulong)((long)bits >> 63) | SignBit);
    }

    private static double Value(ulong key) => BitConverter.Int64BitsToDouble((long)((key & SignBit) != 0 ? key ^ SignBit : ~key));

    /// <summary>Rows cut into at most one range per worker, each a whole number of validity bytes (64 rows).</summary>
    private readonly struct RowRanges
    {
        private const int MinimumRows = 1 << 16;
        private readonly int _rows;
        private readonly int _size;

        public RowRanges(int rows, int parallelism)
        {
            _rows = rows;
            // Small tables in one range: a worker is not worth its start.
            var parts = Math.Clamp(rows / MinimumRows, 1, Math.Max(1, parallelism));
            _size = (int)Math.Min(int.MaxValue & ~63, (((long)rows + parts - 1) / parts + 63) & ~63L);
            _size = Math.Max(_size, 64);
            Count = Math.Max(1, (int)(((long)rows + _size - 1) / _size));
        }

        public int Count { get; }

        public (int Start, int End) this[int range] => (range * _size, (int)Math.Min(_rows, (long)(range + 1) * _size));
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
    /// <summary>Writes each row's probability (ML.NET's <c>Probability</c> column). Workers may call it at once on distinct batches.</summary>
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

    /// <summary>The ensemble is read-only while scoring; each call rents its raw scores, so workers share it.</summary>
    private sealed class Compiled(CompiledTreeEnsemble ensemble, int parallelism) : BatchScorer
    {
        public override string Path => "compiled";

        public override void Score(FeatureBatch batch, Span<float> probabilities)
        {
            var raw = ArrayPool<float>.Shared.Rent(Math.Max(1, batch.RowCount));
            try
            {
                ensemble.Score(batch, raw, probabilities, parallelism);
            }
            finally
            {
                ArrayPool<float>.Shared.Return(raw);
            }
        }
    }

    /// <summary>
    /// One batch at a time: a transformer (a plug-in's own, an ONNX session) is not promised to be thread-safe, so
    /// workers fill their batches in parallel and take turns here.
    /// </summary>
    private sealed class Transform(ITransformer model, string probabilityColumn) : BatchScorer
    {
        private readonly Lock _gate = new();

        public override string Path => "ML.NET Transform";

        public override void Score(FeatureBatch batch, Span<float> probabilities)
        {
            lock (_gate)
            {
                ScoreOne(batch, probabilities);
            }
        }

        private void ScoreOne(FeatureBatch batch, Span<float> probabilities)
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
