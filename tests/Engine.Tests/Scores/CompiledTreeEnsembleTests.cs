using Engine.Scores;
using Microsoft.ML;
using Microsoft.ML.Calibrators;
using Microsoft.ML.Data;
using Microsoft.ML.Trainers.FastTree;
using Microsoft.ML.Trainers.LightGbm;
using static Engine.Tests.Scores.ScoringTestModels;

namespace Engine.Tests.Scores;

/// <summary>
/// The compiled tree evaluator against ML.NET's own <c>Transform</c> on models trained here: every row's Score and
/// Probability, NaN features in training and scoring, constant features, values exactly on thresholds, infinities,
/// every kernel (QuickScorer on 16 and 8 rows, node descent) and one thread or two.
/// </summary>
public sealed class CompiledTreeEnsembleTests
{
    private static BinaryPredictionTransformer<CalibratedModelParametersBase<LightGbmBinaryModelParameters, PlattCalibrator>> TrainLightGbm(Action<LightGbmBinaryTrainer.Options>? configure = null, int rows = 4000, int trees = 40, int leaves = 15)
    {
        var ml = new MLContext(seed: 1);
        var options = new LightGbmBinaryTrainer.Options
        {
            NumberOfIterations = trees,
            NumberOfLeaves = leaves,
            MinimumExampleCountPerLeaf = 10,
            LearningRate = 0.1,
            NumberOfThreads = 1,
            Seed = 1,
        };
        configure?.Invoke(options);
        using var training = TrainingBatch(rows);
        return ml.BinaryClassification.Trainers.LightGbm(options).Fit(new FeatureDataView(training));
    }

    private static BinaryPredictionTransformer<CalibratedModelParametersBase<FastTreeBinaryModelParameters, PlattCalibrator>> TrainFastTree(int leaves = 20, int trees = 30)
    {
        var ml = new MLContext(seed: 1);
        using var training = TrainingBatch(4000);
        var trainer = ml.BinaryClassification.Trainers.FastTree(new FastTreeBinaryTrainer.Options
        {
            NumberOfLeaves = leaves,
            NumberOfTrees = trees,
            MinimumExampleCountPerLeaf = 10,
            NumberOfThreads = 1,
        });
        return trainer.Fit(new FeatureDataView(training));
    }

    /// <summary>Every kernel this machine runs, one thread and two: each must give ML.NET's values.</summary>
    private static void AssertEveryKernelMatches(ITransformer model, FeatureBatch batch, bool expectVector = true)
    {
        var kernels = new List<string>();
        foreach (var widest in Enum.GetValues<CompiledTreeEnsemble.ScoringKernel>())
        {
            var compiled = CompiledTreeEnsemble.FromModel(model, widest);
            kernels.Add(compiled.Kernel);
            AssertMatchesMlNet(model, compiled, batch, maxDegreeOfParallelism: 1);
            AssertMatchesMlNet(model, compiled, batch, maxDegreeOfParallelism: 2);
        }
        Assert.Equal("node-descent", kernels[0]);
        if (expectVector && System.Runtime.Intrinsics.X86.Avx2.IsSupported)
        {
            Assert.Equal("quickscorer-avx2", kernels[1]);
            Assert.Equal(System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated ? "quickscorer-avx512" : "quickscorer-avx2", kernels[2]);
        }
    }

    [Fact]
    public void LightGbm_scores_equal_MLNET_on_every_row_with_missing_and_constant_features()
    {
        var model = TrainLightGbm();
        var compiled = CompiledTreeEnsemble.FromModel(model);
        Assert.Equal(Features, compiled.FeatureCount);
        Assert.Equal(40, compiled.TreeCount);
        Assert.Equal(nameof(LightGbmBinaryModelParameters), compiled.ModelKind);
        // ML.NET's LightGbm calibrator: slope -sigmoid (0.5 by default), offset 0.
        Assert.Equal(-0.5, compiled.PlattSlope);
        Assert.Equal(0, compiled.PlattOffset);
        using var batch = ScoringBatch(5003);
        AssertEveryKernelMatches(model, batch);
    }

    [Fact]
    public void LightGbm_model_routes_missing_values_through_node_defaults()
    {
        // The training data's NaNs make LightGbm learn a direction for missing values at many splits; the test is
        // only meaningful if such splits exist, so check that the trees send NaN left somewhere and right elsewhere.
        var model = TrainLightGbm();
        var (splits, missingLeft) = CompiledTreeEnsemble.FromModel(model).SplitCounts;
        Assert.InRange(missingLeft, 1, splits - 1);
        using var batch = new FeatureBatch(Features, 64);
        batch.RowCount = 64;
        var random = new Random(7);
        for (var row = 0; row < batch.RowCount; row++)
        {
            for (var f = 0; f < Features; f++)
            {
                // Each row misses a different subset of features, some rows all of them.
                batch[row, f] = row % 8 == 0 || random.Next(3) == 0 ? float.NaN : (float)(random.NextDouble() * 6 - 3);
            }
        }
        AssertEveryKernelMatches(model, batch);
        var all = MlNetScores(model, AllMissing(1)).Score[0];
        var none = MlNetScores(model, AllZero(1)).Score[0];
        Assert.NotEqual(all, none);
    }

    [Fact]
    public void LightGbm_without_missing_value_handling_sends_NaN_right_as_MLNET_does()
    {
        // HandleMissingValue = false: no split has a missing direction, ML.NET drops the all-zero defaults, and NaN
        // fails `value <= threshold` at every split.
        var model = TrainLightGbm(o => o.HandleMissingValue = false);
        Assert.Equal(0, CompiledTreeEnsemble.FromModel(model).SplitCounts.MissingLeft);
        using var batch = ScoringBatch(3001);
        AssertEveryKernelMatches(model, batch);
    }

    [Fact]
    public void LightGbm_with_zero_as_missing_matches_MLNET()
    {
        var model = TrainLightGbm(o => o.UseZeroAsMissingValue = true);
        var (splits, missingLeft) = CompiledTreeEnsemble.FromModel(model).SplitCounts;
        Assert.InRange(missingLeft, 1, splits - 1);
        using var batch = ScoringBatch(3001);
        AssertEveryKernelMatches(model, batch);
    }

    [Fact]
    public void FastTree_scores_equal_MLNET_on_every_row()
    {
        var model = TrainFastTree();
        var compiled = CompiledTreeEnsemble.FromModel(model);
        Assert.Equal(nameof(FastTreeBinaryModelParameters), compiled.ModelKind);
        // FastTree keeps no defaults for missing values: NaN goes right at every split.
        Assert.Equal(0, compiled.SplitCounts.MissingLeft);
        using var batch = ScoringBatch(4099);
        AssertEveryKernelMatches(model, batch);
    }

    [Fact]
    public void Values_exactly_on_a_threshold_go_left_and_the_next_float_goes_right_as_in_MLNET()
    {
        var model = TrainLightGbm();
        var trees = model.Model.SubModel.TrainedTreeEnsemble.Trees;
        // For the splits of the first trees: rows holding the threshold itself, the float below and the float above,
        // in the split's feature, other features ordinary.
        var splits = new List<(int Feature, float Threshold)>();
        foreach (var tree in trees.Take(10))
        {
            for (var n = 0; n < tree.NumberOfNodes; n++)
            {
                splits.Add((tree.NumericalSplitFeatureIndexes[n], tree.NumericalSplitThresholds[n]));
            }
        }
        using var batch = ScoringBatch(splits.Count * 3);
        for (var i = 0; i < splits.Count; i++)
        {
            var (feature, threshold) = splits[i];
            batch[3 * i, feature] = threshold;
            batch[3 * i + 1, feature] = MathF.BitDecrement(threshold);
            batch[3 * i + 2, feature] = MathF.BitIncrement(threshold);
        }
        AssertEveryKernelMatches(model, batch);
    }

    [Fact]
    public void Infinities_negative_zero_and_whole_rows_missing_match_MLNET()
    {
        foreach (var model in new ITransformer[] { TrainLightGbm(), TrainFastTree() })
        {
            float[] specials = [float.NaN, float.PositiveInfinity, float.NegativeInfinity, -0f, 0f, float.MaxValue, float.MinValue, float.Epsilon];
            using var batch = new FeatureBatch(Features, specials.Length * 2);
            batch.RowCount = specials.Length * 2;
            var random = new Random(3);
            for (var i = 0; i < specials.Length; i++)
            {
                for (var f = 0; f < Features; f++)
                {
                    // A row of the special value alone, and a row mixing it with ordinary values.
                    batch[2 * i, f] = specials[i];
                    batch[2 * i + 1, f] = f % 2 == 0 ? specials[i] : (float)(random.NextDouble() * 4 - 2);
                }
            }
            AssertEveryKernelMatches(model, batch);
        }
    }

    [Fact]
    public void Trees_with_more_than_32_leaves_fall_back_to_node_descent_with_the_same_scores()
    {
        var model = TrainLightGbm(rows: 6000, trees: 10, leaves: 48);
        var compiled = CompiledTreeEnsemble.FromModel(model);
        Assert.Equal("node-descent", compiled.Kernel);
        using var batch = ScoringBatch(2000);
        AssertEveryKernelMatches(model, batch, expectVector: false);
    }

    [Fact]
    public void Every_degree_of_parallelism_and_every_kernel_give_the_same_bytes()
    {
        var model = TrainLightGbm();
        using var batch = ScoringBatch(20_000);
        var reference = new float[batch.RowCount];
        var referenceProbability = new float[batch.RowCount];
        CompiledTreeEnsemble.FromModel(model, CompiledTreeEnsemble.ScoringKernel.NodeDescent).Score(batch, reference, referenceProbability, 1);
        foreach (var kernel in Enum.GetValues<CompiledTreeEnsemble.ScoringKernel>())
        {
            var compiled = CompiledTreeEnsemble.FromModel(model, kernel);
            foreach (var threads in new[] { 1, 2, 3, 8 })
            {
                var score = new float[batch.RowCount];
                var probability = new float[batch.RowCount];
                compiled.Score(batch, score, probability, threads);
                Assert.Equal(reference, score);
                Assert.Equal(referenceProbability, probability);
            }
        }
    }

    [Fact]
    public void A_refilled_batch_and_a_skipped_probability_are_scored_correctly()
    {
        var model = TrainLightGbm();
        var compiled = CompiledTreeEnsemble.FromModel(model);
        var data = new TestKit.ScoringData(Features, 3);
        using var batch = new FeatureBatch(Features, 1000);
        foreach (var rows in new[] { 1000, 7, 1, 513 })
        {
            data.Fill(batch, rows * 10_000L, rows);
            var expected = MlNetScores(model, batch).Score;
            var score = new float[rows];
            compiled.Score(batch, score, Span<float>.Empty);
            AssertSame(expected, score, $"Score of {rows} rows");
        }
        batch.RowCount = 0;
        compiled.Score(batch, [], []);
    }

    [Fact]
    public void A_batch_of_the_wrong_width_is_refused()
    {
        var compiled = CompiledTreeEnsemble.FromModel(TrainLightGbm());
        using var batch = new FeatureBatch(Features + 1, 10) { RowCount = 10 };
        var error = Assert.Throws<ArgumentException>(() => compiled.Score(batch, new float[10], new float[10]));
        Assert.Contains($"trained on {Features}", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Categorical_splits_are_refused_with_a_clear_error()
    {
        var ml = new MLContext(seed: 1);
        var random = new Random(5);
        string[] colors = ["red", "green", "blue", "black", "white"];
        var rows = Enumerable.Range(0, 2000).Select(_ =>
        {
            var color = colors[random.Next(colors.Length)];
            var amount = (float)random.NextDouble();
            return new CategoricalRow { Color = color, Amount = amount, Label = (color is "red" or "blue") ^ (random.NextDouble() < 0.1) };
        }).ToList();
        var data = ml.Data.LoadFromEnumerable(rows);
        var pipeline = ml.Transforms.Categorical.OneHotEncoding("ColorVector", nameof(CategoricalRow.Color))
            .Append(ml.Transforms.Concatenate("Features", "ColorVector", nameof(CategoricalRow.Amount)))
            .Append(ml.BinaryClassification.Trainers.LightGbm(new LightGbmBinaryTrainer.Options
            {
                UseCategoricalSplit = true,
                NumberOfIterations = 5,
                MinimumExampleCountPerLeaf = 5,
                MinimumExampleCountPerGroup = 5,
                NumberOfThreads = 1,
            }));
        var model = pipeline.Fit(data);

        // The whole pipeline: refused for its featurizing transforms.
        var pipelineError = Assert.Throws<NotSupportedException>(() => CompiledTreeEnsemble.FromModel(model));
        Assert.Contains("pipeline of 3 transformers", pipelineError.Message, StringComparison.Ordinal);
        Assert.Contains("OneHotEncodingTransformer", pipelineError.Message, StringComparison.Ordinal);

        // The trainer alone: refused for its categorical splits.
        var splitError = Assert.Throws<NotSupportedException>(() => CompiledTreeEnsemble.FromModel(model.LastTransformer));
        Assert.Contains("categorical", splitError.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Other_trainers_are_refused_naming_the_model_type()
    {
        var ml = new MLContext(seed: 1);
        using var training = TrainingBatch(2000);
        var view = new FeatureDataView(training);
        var forest = ml.BinaryClassification.Trainers.FastForest(numberOfTrees: 5).Fit(view);
        var forestError = Assert.Throws<NotSupportedException>(() => CompiledTreeEnsemble.FromModel(forest));
        Assert.Contains("FastForestBinaryModelParameters", forestError.Message, StringComparison.Ordinal);

        // A linear model over the same features (NaN-free rows: SDCA does not take missing values).
        using var clean = TrainingBatch(2000);
        for (var f = 0; f < Features; f++)
        {
            foreach (ref var value in clean.Feature(f))
            {
                value = float.IsNaN(value) ? 0 : value;
            }
        }
        var linear = ml.BinaryClassification.Trainers.SdcaLogisticRegression(maximumNumberOfIterations: 5).Fit(new FeatureDataView(clean));
        var linearError = Assert.Throws<NotSupportedException>(() => CompiledTreeEnsemble.FromModel(linear));
        Assert.Contains("LinearBinaryModelParameters", linearError.Message, StringComparison.Ordinal);
    }

    private static FeatureBatch AllMissing(int rows) => Filled(rows, float.NaN);

    private static FeatureBatch AllZero(int rows) => Filled(rows, 0f);

    private static FeatureBatch Filled(int rows, float value)
    {
        var batch = new FeatureBatch(Features, rows) { RowCount = rows };
        for (var f = 0; f < Features; f++)
        {
            batch.Feature(f).Fill(value);
        }
        return batch;
    }

    private sealed class CategoricalRow
    {
        public string Color { get; set; } = "";
        public float Amount { get; set; }
        public bool Label { get; set; }
    }
}
