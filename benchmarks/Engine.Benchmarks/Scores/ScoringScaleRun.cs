using Engine.Diagnostics;
using System.Diagnostics;
using System.Text.Json;
using Engine.Benchmarks.Infrastructure;
using Engine.Scores;
using Engine.TestKit;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Trainers.LightGbm;
using LightGbmModel = Microsoft.ML.Data.BinaryPredictionTransformer<Microsoft.ML.Calibrators.CalibratedModelParametersBase<Microsoft.ML.Trainers.LightGbm.LightGbmBinaryModelParameters, Microsoft.ML.Calibrators.PlattCalibrator>>;

namespace Engine.Benchmarks.Scores;

/// <summary>
/// <c>--scoring-scale --rows N</c>: batch scoring of N generated profiles with a LightGbm model (200 trees of 31
/// leaves over 30 features by default, trained here on 200,000 rows with signal and missing values), three ways in one
/// process: the compiled evaluator (<see cref="CompiledTreeEnsemble"/>), ML.NET's own batch
/// <see cref="ITransformer.Transform"/> over a <see cref="FeatureDataView"/> (its <c>Probability</c> column read
/// through a cursor, which is what makes ML.NET evaluate), and <see cref="PredictionEngine{TSrc, TDst}"/> row by row
/// over a prefix. Rows are generated batch by batch (65,536 by default) into the same reused buffers, so memory is
/// bounded by the batch, not N. Every row is scored both by the compiled evaluator and by ML.NET's Transform, and the
/// run fails unless the two agree within 1e-5 on each (the prefix's PredictionEngine rows too). ML.NET's Transform reads
/// with one cursor, as it is used; it is also run with the batch split over a cursor per core, so the ratio at equal
/// cores is printed beside the target's.
/// </summary>
internal static class ScoringScaleRun
{
    private const double Target = 5;
    private const double Tolerance = 1e-5;
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    private sealed record Options(
        long Rows,
        int BatchRows = 65_536,
        int Features = 30,
        int Trees = 200,
        int Leaves = 31,
        int TrainRows = 200_000,
        long EngineRows = 500_000,
        int Seed = 17);

    public static int Run(string[] args)
    {
        var options = new Options(ChildSide.LongOption(args, "--rows") ?? throw new ArgumentException("--rows N is required"));
        options = options with
        {
            BatchRows = (int)(ChildSide.LongOption(args, "--batch") ?? options.BatchRows),
            Trees = (int)(ChildSide.LongOption(args, "--trees") ?? options.Trees),
            Leaves = (int)(ChildSide.LongOption(args, "--leaves") ?? options.Leaves),
            TrainRows = (int)(ChildSide.LongOption(args, "--train-rows") ?? options.TrainRows),
            EngineRows = ChildSide.LongOption(args, "--prediction-engine-rows") ?? options.EngineRows,
        };
        var result = Measure(options, Console.Out);
        if (result is null)
        {
            return 1;
        }
        var json = Path.Combine(BenchmarkData.RepositoryRoot, "artifacts", "bench", $"scoring-scale-{options.Rows}-{DateTime.UtcNow:yyyyMMdd'T'HHmmss'Z'}.json");
        Directory.CreateDirectory(Path.GetDirectoryName(json)!);
        File.WriteAllText(json, JsonSerializer.Serialize(result, Json));
        Console.WriteLine($"// written: {Path.GetRelativePath(BenchmarkData.RepositoryRoot, json)}");
        return 0;
    }

    /// <summary>The <c>--check</c> form: small sizes, the same three paths and the same agreement test, no target. Returns failures.</summary>
    public static int Check()
    {
        var result = Measure(new Options(Rows: 150_000, BatchRows: 16_384, Trees: 60, TrainRows: 20_000, EngineRows: 5_000), Console.Out);
        return result is null ? 1 : 0;
    }

    private static Dictionary<string, object>? Measure(Options o, TextWriter output)
    {
        var cores = Environment.ProcessorCount;
        output.WriteLine($"// scoring scale run: {o.Rows:N0} rows in batches of {o.BatchRows:N0}; LightGbm {o.Trees} trees x {o.Leaves} leaves over {o.Features} features, trained on {o.TrainRows:N0} rows; {cores} cores");
        var data = new ScoringData(o.Features, o.Seed);
        var ml = new MLContext(seed: o.Seed);

        // Training (not the subject; timed for the record).
        var clock = Stopwatch.StartNew();
        LightGbmModel model;
        double auc;
        using (var training = new FeatureBatch(o.Features, o.TrainRows, withLabels: true))
        using (var holdout = new FeatureBatch(o.Features, 50_000, withLabels: true))
        {
            data.Fill(training, 0, o.TrainRows, cores);
            model = ml.BinaryClassification.Trainers.LightGbm(new LightGbmBinaryTrainer.Options
            {
                NumberOfIterations = o.Trees,
                NumberOfLeaves = o.Leaves,
                MinimumExampleCountPerLeaf = 20,
                LearningRate = 0.05,
                Seed = o.Seed,
                // One thread: the same model every run, and LightGbm's OpenMP workers spin badly on a shared 2-core machine.
                NumberOfThreads = 1,
            }).Fit(new FeatureDataView(training, data.FeatureNames()));
            // Rows far past those scored below: a held-out check that the model learned the signal.
            data.Fill(holdout, long.MaxValue / 2, holdout.Capacity, cores);
            auc = ml.BinaryClassification.Evaluate(model.Transform(new FeatureDataView(holdout))).AreaUnderRocCurve;
        }
        var trainSeconds = clock.Elapsed.TotalSeconds;
        clock.Restart();
        var compiled = CompiledTreeEnsemble.FromModel(model);
        var compileSeconds = clock.Elapsed.TotalSeconds;
        var (splits, missingLeft) = compiled.SplitCounts;
        output.WriteLine($"// trained in {trainSeconds:F1} s (holdout AUC {auc:F3}); compiled in {compileSeconds * 1000:F0} ms: {compiled.TreeCount} trees, {splits:N0} splits ({missingLeft:N0} send missing values left), kernel {compiled.Kernel}");

        // The batch, split in one part per core for ML.NET's cursor-per-core pass; every path reads the same parts.
        var partRows = (o.BatchRows + cores - 1) / cores;
        var parts = new FeatureBatch[cores];
        var views = new FeatureDataView[cores];
        for (var p = 0; p < cores; p++)
        {
            parts[p] = new FeatureBatch(o.Features, partRows);
            views[p] = new FeatureDataView(parts[p]);
        }
        var compiledScore = new float[o.BatchRows];
        var compiledProbability = new float[o.BatchRows];
        var singleScore = new float[o.BatchRows];
        var singleProbability = new float[o.BatchRows];
        var mlScore = new float[o.BatchRows];
        var mlProbability = new float[o.BatchRows];
        var mlScoreParallel = new float[o.BatchRows];
        var mlProbabilityParallel = new float[o.BatchRows];
        var engineProbability = new float[o.BatchRows];
        var engine = new PredictionEngineSide(ml, model, o.Features);
        var agreement = new Agreement();

        try
        {
            // Warm-up, untimed: the JIT and ML.NET's first binding for every path.
            Fill(data, parts, 0, Math.Min(4096, o.BatchRows), cores);
            ScoreCompiled(compiled, parts, compiledScore, compiledProbability, cores);
            ScoreMlNet(model, views, parts, mlScore, mlProbability, 1);
            ScoreMlNet(model, views, parts, mlScoreParallel, mlProbabilityParallel, cores);
            engine.Score(parts[0], 0, 16, compiledProbability);

            var other = new OtherCpu();
            double generate = 0, compiledAll = 0, compiledOne = 0, mlOne = 0, mlAll = 0, engineSeconds = 0;
            long engineRows = 0;
            var allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
            long compiledAllocated = 0;
            var run = Stopwatch.StartNew();
            var nextReport = o.Rows / 10;
            for (long first = 0; first < o.Rows; first += o.BatchRows)
            {
                if (first >= nextReport)
                {
                    // Progress on stderr: ML.NET's passes make a 10M run take minutes.
                    Console.Error.WriteLine($"// {first:N0} of {o.Rows:N0} rows after {run.Elapsed.TotalSeconds:F0} s: compiled {first / compiledAll:N0} rows/s, ML.NET Transform {first / mlOne:N0} rows/s");
                    nextReport += o.Rows / 10;
                }
                var rows = (int)Math.Min(o.BatchRows, o.Rows - first);
                clock.Restart();
                Fill(data, parts, first, rows, cores);
                generate += clock.Elapsed.TotalSeconds;

                var before = GC.GetTotalAllocatedBytes(precise: false);
                clock.Restart();
                ScoreCompiled(compiled, parts, compiledScore, compiledProbability, cores);
                compiledAll += clock.Elapsed.TotalSeconds;
                compiledAllocated += GC.GetTotalAllocatedBytes(precise: false) - before;
                clock.Restart();
                ScoreCompiled(compiled, parts, singleScore, singleProbability, 1);
                compiledOne += clock.Elapsed.TotalSeconds;

                clock.Restart();
                ScoreMlNet(model, views, parts, mlScore, mlProbability, 1);
                mlOne += clock.Elapsed.TotalSeconds;
                clock.Restart();
                ScoreMlNet(model, views, parts, mlScoreParallel, mlProbabilityParallel, cores);
                mlAll += clock.Elapsed.TotalSeconds;

                agreement.Compare("compiled vs ML.NET Transform", first, rows, compiledScore, compiledProbability, mlScore, mlProbability);
                agreement.Compare("compiled (1 thread) vs ML.NET Transform", first, rows, singleScore, singleProbability, mlScore, mlProbability);
                agreement.Compare("ML.NET Transform, cursor per core vs one cursor", first, rows, mlScoreParallel, mlProbabilityParallel, mlScore, mlProbability);

                if (first < o.EngineRows)
                {
                    var engineCount = (int)Math.Min(rows, o.EngineRows - first);
                    clock.Restart();
                    var done = 0;
                    for (var p = 0; p < parts.Length && done < engineCount; p++)
                    {
                        var n = Math.Min(parts[p].RowCount, engineCount - done);
                        engine.Score(parts[p], done, n, engineProbability);
                        done += n;
                    }
                    engineSeconds += clock.Elapsed.TotalSeconds;
                    engineRows += engineCount;
                    agreement.CompareProbability("compiled vs PredictionEngine", first, engineCount, compiledProbability, engineProbability);
                }
            }
            var otherCores = other.Cores();
            var peak = ProcessMemory.PeakBytes();
            var totalAllocated = GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore;

            var compiledRate = o.Rows / compiledAll;
            var mlRate = o.Rows / mlOne;
            var ratio = compiledRate / mlRate;
            var equalCoresRatio = compiledRate / (o.Rows / mlAll);
            var engineRate = engineRows / engineSeconds;
            output.WriteLine();
            output.WriteLine($"scoring, {o.Rows:N0} rows x {o.Features} features, LightGbm {compiled.TreeCount} trees x {o.Leaves} leaves, batches of {o.BatchRows:N0}; {cores} cores");
            output.WriteLine($"{"path",-52} {"rows",13} {"seconds",9} {"rows/s",13}");
            Row(output, $"compiled ({compiled.Kernel}), {cores} threads", o.Rows, compiledAll);
            Row(output, $"compiled ({compiled.Kernel}), 1 thread", o.Rows, compiledOne);
            Row(output, "ML.NET Transform, one cursor", o.Rows, mlOne);
            Row(output, $"ML.NET Transform, a cursor per core ({cores})", o.Rows, mlAll);
            Row(output, $"ML.NET PredictionEngine, row by row (first {engineRows:N0} rows)", engineRows, engineSeconds);
            Row(output, "generating the rows (not in any figure above)", o.Rows, generate);
            output.WriteLine($"compiled / ML.NET Transform = {ratio:F1}x (target >= {Target:F0}x: {(ratio >= Target ? "met" : "NOT met")}); at equal cores (Transform with a cursor per core) {equalCoresRatio:F1}x; one thread against one cursor {o.Rows / compiledOne / mlRate:F1}x; against PredictionEngine {compiledRate / engineRate:F1}x");
            output.WriteLine($"agreement: {agreement.Summary()}");
            output.WriteLine($"memory: peak RSS {peak / 1048576.0:F0} MB (batch buffers {(long)o.BatchRows * o.Features * 4 / 1048576.0:F1} MB); the compiled path allocated {compiledAllocated / (double)o.Rows:F3} bytes per row; other processes used {otherCores:F2} cores on average during the run");
            if (!agreement.Passed)
            {
                output.WriteLine($"FAILED: {agreement.Failures} rows differ by more than {Tolerance:0e0}; first: {agreement.FirstFailure}");
                return null;
            }
            return new Dictionary<string, object>
            {
                ["benchmark"] = "scoring-scale",
                ["rows"] = o.Rows,
                ["batch_rows"] = o.BatchRows,
                ["features"] = o.Features,
                ["trees"] = compiled.TreeCount,
                ["leaves"] = o.Leaves,
                ["train_rows"] = o.TrainRows,
                ["holdout_auc"] = auc,
                ["processors"] = cores,
                ["kernel"] = compiled.Kernel,
                ["train_seconds"] = trainSeconds,
                ["compile_seconds"] = compileSeconds,
                ["compiled"] = new { threads = cores, seconds = compiledAll, rows_per_second = compiledRate, allocated_bytes_per_row = compiledAllocated / (double)o.Rows },
                ["compiled_one_thread"] = new { seconds = compiledOne, rows_per_second = o.Rows / compiledOne },
                ["mlnet_transform"] = new { cursors = 1, seconds = mlOne, rows_per_second = mlRate },
                ["mlnet_transform_cursor_per_core"] = new { cursors = cores, seconds = mlAll, rows_per_second = o.Rows / mlAll },
                ["mlnet_prediction_engine"] = new { rows = engineRows, seconds = engineSeconds, rows_per_second = engineRate },
                ["generate_seconds"] = generate,
                ["ratio_vs_transform"] = ratio,
                ["ratio_vs_transform_equal_cores"] = equalCoresRatio,
                ["target"] = Target,
                ["target_met"] = ratio >= Target,
                ["agreement"] = agreement.ToJson(),
                ["peak_rss_bytes"] = peak,
                ["allocated_bytes_total"] = totalAllocated,
                ["other_cpu_cores"] = otherCores,
            };
        }
        finally
        {
            engine.Dispose();
            foreach (var part in parts)
            {
                part.Dispose();
            }
        }
    }

    private static void Row(TextWriter output, string path, long rows, double seconds) =>
        output.WriteLine($"{path,-52} {rows,13:N0} {seconds,9:F2} {rows / seconds,13:N0}");

    /// <summary>Rows <paramref name="first"/>.. into the parts, in order.</summary>
    private static void Fill(ScoringData data, FeatureBatch[] parts, long first, int rows, int threads)
    {
        foreach (var part in parts)
        {
            var n = Math.Min(part.Capacity, rows);
            data.Fill(part, first, n, threads);
            first += n;
            rows -= n;
        }
    }

    private static void ScoreCompiled(CompiledTreeEnsemble compiled, FeatureBatch[] parts, float[] score, float[] probability, int threads)
    {
        var at = 0;
        foreach (var part in parts)
        {
            compiled.Score(part, score.AsSpan(at), probability.AsSpan(at), threads);
            at += part.RowCount;
        }
    }

    /// <summary>ML.NET's batch path: Transform over each part's view, then a cursor through Score and Probability (one part per thread when <paramref name="threads"/> > 1).</summary>
    private static void ScoreMlNet(LightGbmModel model, FeatureDataView[] views, FeatureBatch[] parts, float[] score, float[] probability, int threads)
    {
        var offsets = new int[parts.Length];
        for (var p = 1; p < parts.Length; p++)
        {
            offsets[p] = offsets[p - 1] + parts[p - 1].RowCount;
        }
        Parallel.For(0, parts.Length, new ParallelOptions { MaxDegreeOfParallelism = threads }, p =>
        {
            var scored = model.Transform(views[p]);
            var scoreColumn = scored.Schema["Score"];
            var probabilityColumn = scored.Schema["Probability"];
            using var cursor = scored.GetRowCursor([scoreColumn, probabilityColumn]);
            var getScore = cursor.GetGetter<float>(scoreColumn);
            var getProbability = cursor.GetGetter<float>(probabilityColumn);
            var row = offsets[p];
            while (cursor.MoveNext())
            {
                getScore(ref score[row]);
                getProbability(ref probability[row]);
                row++;
            }
        });
    }

    /// <summary>Row-by-row scoring through ML.NET's PredictionEngine, reusing one input and one output object.</summary>
    private sealed class PredictionEngineSide : IDisposable
    {
        private readonly PredictionEngine<ScoringInput, ScoringOutput> _engine;
        private readonly ScoringInput _input;
        private ScoringOutput _output = new();

        public PredictionEngineSide(MLContext ml, ITransformer model, int features)
        {
            var definition = SchemaDefinition.Create(typeof(ScoringInput));
            definition[nameof(ScoringInput.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, features);
            _engine = ml.Model.CreatePredictionEngine<ScoringInput, ScoringOutput>(model, inputSchemaDefinition: definition);
            _input = new ScoringInput { Features = new float[features] };
        }

        /// <summary>Rows 0.. of <paramref name="part"/>, probabilities written from <paramref name="at"/> on.</summary>
        public void Score(FeatureBatch part, int at, int rows, float[] probability)
        {
            for (var i = 0; i < rows; i++)
            {
                part.GetRow(i, _input.Features);
                _engine.Predict(_input, ref _output);
                probability[at + i] = _output.Probability;
            }
        }

        public void Dispose() => _engine.Dispose();
    }

    internal sealed class ScoringInput
    {
        public float[] Features { get; set; } = [];
    }

    internal sealed class ScoringOutput
    {
        public float Score { get; set; }

        public float Probability { get; set; }
    }

    /// <summary>Row-by-row comparison of the paths: the largest differences, rows equal bit for bit, rows beyond the tolerance.</summary>
    private sealed class Agreement
    {
        private readonly Dictionary<string, (long Rows, long Identical, double MaxScore, double MaxProbability)> _pairs = [];

        public long Failures { get; private set; }

        public string? FirstFailure { get; private set; }

        public bool Passed => Failures == 0;

        public void Compare(string pair, long first, int rows, float[] score, float[] probability, float[] expectedScore, float[] expectedProbability)
        {
            var (compared, identical, maxScore, maxProbability) = _pairs.GetValueOrDefault(pair);
            for (var i = 0; i < rows; i++)
            {
                var ds = Difference(score[i], expectedScore[i]);
                var dp = Difference(probability[i], expectedProbability[i]);
                maxScore = Math.Max(maxScore, ds);
                maxProbability = Math.Max(maxProbability, dp);
                identical += BitConverter.SingleToInt32Bits(score[i]) == BitConverter.SingleToInt32Bits(expectedScore[i])
                    && BitConverter.SingleToInt32Bits(probability[i]) == BitConverter.SingleToInt32Bits(expectedProbability[i]) ? 1 : 0;
                if (ds > Tolerance || dp > Tolerance)
                {
                    Fail($"{pair}, row {first + i}: score {score[i]:R} vs {expectedScore[i]:R}, probability {probability[i]:R} vs {expectedProbability[i]:R}");
                }
            }
            _pairs[pair] = (compared + rows, identical, maxScore, maxProbability);
        }

        public void CompareProbability(string pair, long first, int rows, float[] probability, float[] expected)
        {
            var (compared, identical, maxScore, maxProbability) = _pairs.GetValueOrDefault(pair);
            for (var i = 0; i < rows; i++)
            {
                var dp = Difference(probability[i], expected[i]);
                maxProbability = Math.Max(maxProbability, dp);
                identical += BitConverter.SingleToInt32Bits(probability[i]) == BitConverter.SingleToInt32Bits(expected[i]) ? 1 : 0;
                if (dp > Tolerance)
                {
                    Fail($"{pair}, row {first + i}: probability {probability[i]:R} vs {expected[i]:R}");
                }
            }
            _pairs[pair] = (compared + rows, identical, maxScore, maxProbability);
        }

        private void Fail(string what)
        {
            Failures++;
            FirstFailure ??= what;
        }

        // NaN against NaN agrees; NaN against a number is as far apart as it gets.
        private static double Difference(float a, float b) =>
            float.IsNaN(a) || float.IsNaN(b) ? (float.IsNaN(a) && float.IsNaN(b) ? 0 : double.PositiveInfinity) : Math.Abs((double)a - b);

        public string Summary() => string.Join("; ", _pairs.Select(p =>
            $"{p.Key}: {p.Value.Rows:N0} rows, max |diff| score {p.Value.MaxScore:G3} probability {p.Value.MaxProbability:G3}, {p.Value.Identical:N0} bit for bit"))
            + (Passed ? $"; every row within {Tolerance:0e0}" : $"; {Failures:N0} rows OUTSIDE {Tolerance:0e0}");

        public Dictionary<string, object> ToJson() => _pairs.ToDictionary(p => p.Key, p => (object)new
        {
            rows = p.Value.Rows,
            bit_identical_rows = p.Value.Identical,
            max_abs_diff_score = p.Value.MaxScore,
            max_abs_diff_probability = p.Value.MaxProbability,
        });
    }
}
