using Apache.Arrow;
using Apache.Arrow.Types;
using Engine.Profiles;
using Engine.Scores;
using Engine.Storage;
using Engine.TestKit;
using Engine.Workspaces;
using Microsoft.Extensions.Logging.Abstractions;

namespace Engine.Tests.Scores;

/// <summary>
/// Training and scoring over a profile table in memory (snapshot labels): bad input stops training with the model and
/// the column named, and the version that scored before keeps scoring — after a failed training and after a worse one.
/// </summary>
public sealed class ModelTrainingTests : IDisposable
{
    private static readonly DateTimeOffset AsOf = new(2026, 11, 1, 0, 0, 0, TimeSpan.Zero);

    private readonly TempDirectory _dir = new("model-training");

    public void Dispose() => _dir.Dispose();

    /// <summary>
    /// Profiles whose label (<c>left</c>) follows <c>signal</c> (P = 0.1 … 0.9), with <c>noise</c> unrelated to it, a
    /// category, and <paramref name="edit"/> to spoil a column.
    /// </summary>
    internal static ProfileTable Table(int rows = 4_000, Action<double[]>? edit = null, int categories = 3)
    {
        var random = new Random(7);
        var ids = new Int64Array.Builder();
        var signal = new double[rows];
        var noise = new DoubleArray.Builder();
        var left = new BooleanArray.Builder();
        var plan = new Int32Array.Builder();
        for (var i = 0; i < rows; i++)
        {
            ids.Append(1000 + i);
            signal[i] = random.NextDouble();
            noise.Append(random.NextDouble());
            left.Append(random.NextDouble() < 0.1 + 0.8 * signal[i]);
            plan.Append(random.Next(categories));
        }
        edit?.Invoke(signal);
        var dictionary = new StringArray.Builder();
        for (var c = 0; c < categories; c++)
        {
            dictionary.Append($"plan-{c}");
        }
        var plans = new DictionaryArray(new DictionaryType(Int32Type.Default, StringType.Default, false), plan.Build(), dictionary.Build());
        return new ProfileTable(ids.Build(),
        [
            new ProfileColumn("signal", ColumnType.Double, new DoubleArray.Builder().AppendRange(signal).Build()),
            new ProfileColumn("noise", ColumnType.Double, noise.Build()),
            new ProfileColumn("plan", ColumnType.String, plans),
            new ProfileColumn("left", ColumnType.Boolean, left.Build()),
        ]);
    }

    private (Workspace Workspace, ModelDefinition Model) Model(
        string label = "\"left\"", string features = "signal, noise, plan", int minimum = 50, TrainerAlgorithm algorithm = TrainerAlgorithm.LightGbm)
    {
        var root = _dir.Combine("ws");
        Directory.CreateDirectory(Path.Combine(root, ModelDefinition.Folder));
        var text = $"name: churn\nlabel: {{ condition: '{label}' }}\nfeatures: [{features}]\ntrainer: {{ algorithm: {algorithm}, trees: 50, leaves: 8 }}\nmin_positives: {minimum}\n";
        File.WriteAllText(Path.Combine(root, ModelDefinition.Folder, "churn.yaml"), text);
        var model = new ModelDefinition
        {
            Name = "churn",
            File = "models/churn.yaml",
            Label = new LabelDefinition { Condition = new ConditionText(label, TextPositions.At(2, 20)) },
            Features = features.Split(", ").Select((f, i) => new FeatureReference(f, 3, 12 + i)).ToList(),
            Trainer = new TrainerOptions { Algorithm = algorithm, Trees = 50, Leaves = 8 },
            MinimumPositives = minimum,
            ScoreColumn = "churn_score",
            DecileColumn = "churn_decile",
        };
        return (new Workspace(root, "training", Path.Combine(root, "output"), [], [], models: [model]), model);
    }

    private async Task<ModelException> TrainFailsAsync(ProfileTable table, (Workspace Workspace, ModelDefinition Model) definition)
    {
        using var storage = new StorageResolver();
        var registry = new ModelRegistry(storage.Resolve(_dir.Combine("registry")));
        return await Assert.ThrowsAsync<ModelException>(() => new ModelTraining(storage, NullLogger.Instance).TrainAsync(
            definition.Workspace, definition.Model, default, table, AsOf, registry, 2, null, TestContext.Current.CancellationToken));
    }

    [Theory]
    [InlineData(TrainerAlgorithm.LightGbm)]
    [InlineData(TrainerAlgorithm.FastTree)]
    public async Task Either_trainer_learns_the_signal_and_scores_through_the_compiled_trees(TrainerAlgorithm algorithm)
    {
        using var storage = new StorageResolver();
        var definition = Model(algorithm: algorithm);
        var result = await new ScoresStage(storage, NullLogger.Instance).RunAsync(definition.Workspace, Table(), default, AsOf,
            new ModelRegistry(storage.Resolve(_dir.Combine("registry"))), null, null, 2, null, TestContext.Current.CancellationToken);
        var entry = result.Report.Models["churn"];
        Assert.True(entry.Error is null, entry.Error);
        Assert.Equal("compiled", entry.Scorer);
        Assert.True(entry.ValidationRocAuc > 0.75, $"{algorithm}: ROC AUC {entry.ValidationRocAuc}");
        var record = (await new ModelRegistry(storage.Resolve(_dir.Combine("registry"))).CurrentAsync("churn", TestContext.Current.CancellationToken))!;
        Assert.Equal(algorithm.ToString().ToLowerInvariant(), record.Algorithm);
        // The permutation importance ranks the feature the label follows first, and the noise below it.
        Assert.Equal("signal", record.Metrics.FeatureImportance[0].Feature);
        // The stored ROC curve (pooled out-of-fold predictions) runs from (0, 0) to (1, 1), never turns back, and its
        // area is the ROC AUC's (the mean of the folds' AUCs: close to the pooled one, not equal).
        var curve = record.Metrics.RocCurve;
        Assert.InRange(curve.Count, 10, ModelTrainer.RocCurvePoints);
        Assert.Equal((0.0, 0.0), (curve[0].FalsePositiveRate, curve[0].TruePositiveRate));
        Assert.Equal((1.0, 1.0), (curve[^1].FalsePositiveRate, curve[^1].TruePositiveRate));
        for (var i = 1; i < curve.Count; i++)
        {
            Assert.True(curve[i].FalsePositiveRate >= curve[i - 1].FalsePositiveRate && curve[i].TruePositiveRate >= curve[i - 1].TruePositiveRate
                && curve[i].Threshold < curve[i - 1].Threshold, $"point {i} turns back");
        }
        Assert.InRange(Area(curve), record.Metrics.RocAuc - 0.02, record.Metrics.RocAuc + 0.02);
    }

    private static double Area(List<RocPoint> curve)
    {
        var area = 0.0;
        for (var i = 1; i < curve.Count; i++)
        {
            area += (curve[i].FalsePositiveRate - curve[i - 1].FalsePositiveRate) * (curve[i].TruePositiveRate + curve[i - 1].TruePositiveRate) / 2;
        }
        return area;
    }

    [Theory]
    [InlineData(TrainerAlgorithm.LightGbm)]
    [InlineData(TrainerAlgorithm.FastTree)]
    public void Validation_through_the_compiled_trees_gives_the_figures_of_ML_NETs_own_scoring(TrainerAlgorithm algorithm)
    {
        var (_, model) = Model(algorithm: algorithm);
        var table = Table(6_000);
        var all = Enumerable.Range(0, table.Count).ToArray();
        var left = (BooleanArray)table.Find("left")!.Values;
        var labels = all.Select(i => left.GetValue(i) == true).ToArray();
        var schema = FeatureSchema.Learn(model.Name, model.Features.Select(f => f.Column).ToList(), table, all);
        using var examples = TrainingExamples.From(schema, table, all, labels, AsOf, "all");
        using var training = examples.Subset([.. Enumerable.Range(0, 4_000)], "first 4,000");
        using var validation = examples.Subset([.. Enumerable.Range(4_000, 2_000)], "last 2,000");
        var trained = ModelTrainer.TrainAndValidate(model, training, validation, 2).Model;

        var ml = new Microsoft.ML.MLContext(model.Trainer.Seed);
        var expected = ModelTrainer.Validate(ml, model, trained, validation, null, 2, compiled: false);
        var actual = ModelTrainer.Validate(ml, model, trained, validation, null, 2, compiled: true);

        Assert.Equal(expected.RocAuc, actual.RocAuc);
        Assert.Equal(expected.PrAuc, actual.PrAuc);
        Assert.Equal(expected.LogLoss, actual.LogLoss);
        Assert.Equal(expected.Calibration, actual.Calibration);
        Assert.Equal(expected.RocCurve, actual.RocCurve);
        // Importance is measured on other permutations (the model's seed, not ML.NET's), so its figures differ a little;
        // it covers every slot, and the signal comes first either way.
        Assert.Equal(expected.FeatureImportance.Select(f => f.Feature).Order(), actual.FeatureImportance.Select(f => f.Feature).Order());
        Assert.Equal("signal", expected.FeatureImportance[0].Feature);
        Assert.Equal("signal", actual.FeatureImportance[0].Feature);
        var signal = actual.FeatureImportance[0].AucDrop;
        Assert.InRange(signal, expected.FeatureImportance[0].AucDrop * 0.8, expected.FeatureImportance[0].AucDrop * 1.2);
        Assert.True(actual.FeatureImportance.Skip(1).All(f => f.AucDrop < signal / 4), "the other slots matter far less than the signal");
    }

    [Fact]
    public void ROC_AUC_by_ranks_counts_a_tie_as_half()
    {
        float[] scores = [0.9f, 0.8f, 0.8f, 0.6f, 0.4f, 0.4f, 0.2f];
        bool[] labels = [true, true, false, true, false, true, false];
        // 4 positives x 3 negatives = 12 pairs: the positive above each negative counts 1, a tie 1/2.
        // 0.9: above 3; 0.8: above 2 (0.4, 0.2), tied with 1; 0.6: above 2; 0.4: above 1 (0.2), tied with 1.
        Assert.Equal((3 + 2.5 + 2 + 1.5) / 12, ModelTrainer.RocAuc(scores, labels), 12);
        Assert.True(double.IsNaN(ModelTrainer.RocAuc(scores, [true, true, true, true, true, true, true])));
    }

    [Fact]
    public void The_ROC_curve_has_one_point_per_distinct_score_and_the_area_of_ROC_AUC()
    {
        float[] scores = [0.9f, 0.8f, 0.8f, 0.6f, 0.4f, 0.4f, 0.2f];
        bool[] labels = [true, true, false, true, false, true, false];
        var curve = ModelTrainer.RocCurve(scores, labels);
        // 4 positives, 3 negatives; the tie at 0.8 (one of each) and at 0.4 move both rates in one step.
        Assert.Equal(
            [(0.0, 0.0), (0.0, 0.25), (1 / 3.0, 0.5), (1 / 3.0, 0.75), (2 / 3.0, 1.0), (1.0, 1.0)],
            curve.Select(p => (p.FalsePositiveRate, p.TruePositiveRate)));
        Assert.Equal([0.9f, 0.8f, 0.6f, 0.4f, 0.2f], curve.Skip(1).Select(p => (float)p.Threshold));
        Assert.True(curve[0].Threshold > 0.9f);
        // The area equals the probability that a positive outscores a negative (ties count half): the Mann-Whitney AUC.
        double wins = 0;
        for (var p = 0; p < scores.Length; p++)
        {
            for (var n = 0; n < scores.Length; n++)
            {
                if (labels[p] && !labels[n])
                {
                    wins += scores[p] > scores[n] ? 1 : scores[p] == scores[n] ? 0.5 : 0;
                }
            }
        }
        Assert.Equal(wins / 12, Area(curve), 12);
        // One class only: no curve.
        Assert.Empty(ModelTrainer.RocCurve(scores, [true, true, true, true, true, true, true]));
    }

    [Fact]
    public void A_long_ROC_curve_is_thinned_keeping_both_ends()
    {
        var random = new Random(3);
        var scores = new float[10_000];
        var labels = new bool[scores.Length];
        for (var i = 0; i < scores.Length; i++)
        {
            scores[i] = (float)random.NextDouble();
            labels[i] = random.NextDouble() < scores[i];
        }
        var full = ModelTrainer.RocCurve(scores, labels, int.MaxValue);
        var thinned = ModelTrainer.RocCurve(scores, labels);
        Assert.True(full.Count > 5_000);
        Assert.Equal(ModelTrainer.RocCurvePoints, thinned.Count);
        Assert.Equal(full[0], thinned[0]);
        Assert.Equal(full[^1], thinned[^1]);
        Assert.All(thinned, p => Assert.Contains(p, full));
        Assert.Equal(Area(full), Area(thinned), 2);
    }

    [Fact]
    public async Task A_label_with_one_class_is_named()
    {
        var e = await TrainFailsAsync(Table(), Model(label: "signal > 2"));
        Assert.StartsWith("model 'churn': the label has one class only in the training examples", e.Message, StringComparison.Ordinal);
        Assert.Contains("0 positive, 4,000 negative", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Too_few_positives_are_named_with_the_count()
    {
        var e = await TrainFailsAsync(Table(), Model(label: "signal > 0.997"));
        Assert.Matches(@"^model 'churn': too few positive examples to train: \d+ in the training examples .*fewer than min_positives \(50\)$", e.Message);
    }

    [Fact]
    public async Task Infinite_and_NaN_feature_values_are_named_with_the_column_and_a_profile()
    {
        var e = await TrainFailsAsync(Table(edit: s => { s[10] = double.PositiveInfinity; s[20] = double.NaN; }), Model());
        Assert.StartsWith("model 'churn': feature 'signal' holds 2 infinite or NaN value(s) as of 2026-11-01 (the first in profile 1010)", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_string_feature_with_too_many_values_is_not_a_category()
    {
        var e = await TrainFailsAsync(Table(categories: 150), Model());
        Assert.StartsWith("model 'churn': feature 'plan' is a string with 150 distinct values in training", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_stored_model_whose_feature_changed_type_is_named()
    {
        var schema = new FeatureSchema([new FeatureColumn("signal", ColumnType.Int64)], [new FeatureSlot("signal", FeatureKind.Number)]);
        var e = Assert.Throws<ModelException>(() => schema.Check("churn", Table()));
        Assert.Equal("model 'churn': feature 'signal' was int64 in training but is double now", e.Message);
        var missing = new FeatureSchema([new FeatureColumn("tenure", ColumnType.Int64)], [new FeatureSlot("tenure", FeatureKind.Number)]);
        Assert.Equal("model 'churn': feature 'tenure' is not a column of tonight's profile table", Assert.Throws<ModelException>(() => missing.Check("churn", Table())).Message);
    }

    [Fact]
    public async Task The_version_that_scored_keeps_scoring_after_a_failed_and_after_a_worse_training()
    {
        using var storage = new StorageResolver();
        var registry = new ModelRegistry(storage.Resolve(_dir.Combine("registry")));
        var table = Table();
        async Task<ScoresResult> Night((Workspace Workspace, ModelDefinition Model) definition) =>
            await new ScoresStage(storage, NullLogger.Instance).RunAsync(
                definition.Workspace, table, default, AsOf, registry, null, null, 2, null, TestContext.Current.CancellationToken);

        // Night 1: the first version is trained and promoted; every profile gets a score and a decile.
        var first = await Night(Model());
        var entry = first.Report.Models["churn"];
        Assert.Equal((1, 1), (entry.TrainedVersion, entry.Version));
        Assert.True(entry.ValidationRocAuc > 0.75, $"ROC AUC {entry.ValidationRocAuc}");
        var scores = (DoubleArray)first.Table.Find("churn_score")!.Values;
        var deciles = (Int64Array)first.Table.Find("churn_decile")!.Values;
        Assert.Equal(0, scores.NullCount);
        Assert.Equal(4_000, entry.Scored);
        Assert.Equal(Enumerable.Range(1, 10).Select(d => (long)d), deciles.Values.ToArray().Distinct().Order());

        // Night 2: the definition changed and can no longer train (one class): reported, version 1 scores.
        var second = await Night(Model(label: "signal > 2"));
        entry = second.Report.Models["churn"];
        Assert.Contains("one class only", entry.Error, StringComparison.Ordinal);
        Assert.Equal(1, entry.Version);
        Assert.Equal(scores.Values.ToArray(), ((DoubleArray)second.Table.Find("churn_score")!.Values).Values.ToArray());

        // Night 3: a version from noise alone trains but validates far worse: kept, not promoted; version 1 scores.
        var third = await Night(Model(features: "noise"));
        entry = third.Report.Models["churn"];
        Assert.Equal((2, 1), (entry.TrainedVersion, entry.Version));
        Assert.StartsWith("not promoted: validation ROC AUC 0.", entry.Decision, StringComparison.Ordinal);
        Assert.Equal(1, (await registry.CurrentAsync("churn", TestContext.Current.CancellationToken))!.Version);
        Assert.Equal(2, (await registry.VersionsAsync("churn", TestContext.Current.CancellationToken)).Count);
        Assert.Equal(scores.Values.ToArray(), ((DoubleArray)third.Table.Find("churn_score")!.Values).Values.ToArray());
        Assert.Equal(0.0, ScoresStage.Psi(first.Report.Models["churn"].Histogram, third.Report.Models["churn"].Histogram), 12);
    }
}
