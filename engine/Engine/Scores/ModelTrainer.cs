using System.Text.Json.Serialization;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Trainers.FastTree;
using Microsoft.ML.Trainers.LightGbm;

namespace Engine.Scores;

/// <summary>One bin of a calibration table: examples whose predicted probability fell in [Low, High).</summary>
public sealed record CalibrationBin(
    [property: JsonPropertyName("low")] double Low,
    [property: JsonPropertyName("high")] double High,
    [property: JsonPropertyName("examples")] long Examples,
    [property: JsonPropertyName("mean_predicted")] double MeanPredicted,
    [property: JsonPropertyName("observed_rate")] double ObservedRate);

/// <summary>How much the validation ROC AUC falls when one feature slot is shuffled (permutation feature importance).</summary>
public sealed record FeatureImportance(
    [property: JsonPropertyName("feature")] string Feature,
    [property: JsonPropertyName("auc_drop")] double AucDrop);

/// <summary>One point of a ROC curve: at scores of <see cref="Threshold"/> and above predicted positive, the false and true positive rates.</summary>
public sealed record RocPoint(
    [property: JsonPropertyName("fpr")] double FalsePositiveRate,
    [property: JsonPropertyName("tpr")] double TruePositiveRate,
    [property: JsonPropertyName("threshold")] double Threshold);

/// <summary>A model's validation figures, as the registry stores them and <c>engine models evaluate</c> prints them.</summary>
public sealed class ModelMetrics
{
    /// <summary>How the figures were obtained: <c>time split</c> or <c>5-fold cross-validation</c>, with the windows.</summary>
    [JsonPropertyName("method")] public string Method { get; set; } = "";

    [JsonPropertyName("training_examples")] public long TrainingExamples { get; set; }
    [JsonPropertyName("training_positives")] public long TrainingPositives { get; set; }
    /// <summary>The training examples there were: more than <see cref="TrainingExamples"/> when the trainer's max_examples sampled them.</summary>
    [JsonPropertyName("training_examples_available")] public long TrainingExamplesAvailable { get; set; }
    [JsonPropertyName("validation_examples")] public long ValidationExamples { get; set; }
    [JsonPropertyName("validation_positives")] public long ValidationPositives { get; set; }

    [JsonPropertyName("roc_auc")] public double RocAuc { get; set; }
    [JsonPropertyName("pr_auc")] public double PrAuc { get; set; }
    /// <summary>Mean negative log-likelihood of the labels, natural log (nats).</summary>
    [JsonPropertyName("log_loss")] public double LogLoss { get; set; }

    /// <summary>Cross-validation only: the ROC AUC of each fold (<see cref="RocAuc"/> is their mean).</summary>
    [JsonPropertyName("fold_roc_auc")] public List<double> FoldRocAuc { get; set; } = [];

    /// <summary>Over the validation examples (cross-validation: every example, predicted by the fold's model that did not see it).</summary>
    [JsonPropertyName("calibration")] public List<CalibrationBin> Calibration { get; set; } = [];

    /// <summary>
    /// The ROC curve over the same validation predictions as <see cref="Calibration"/>, from (0, 0) to (1, 1), thinned
    /// to at most <see cref="ModelTrainer.RocCurvePoints"/> points for the run report. Absent from versions trained
    /// before it was stored.
    /// </summary>
    [JsonPropertyName("roc_curve")] public List<RocPoint> RocCurve { get; set; } = [];

    /// <summary>Largest first.</summary>
    [JsonPropertyName("feature_importance")] public List<FeatureImportance> FeatureImportance { get; set; } = [];
}

/// <summary>What training produced: the ML.NET model over the feature vector, the vector's schema and the validation figures.</summary>
public sealed record TrainedModel(ITransformer Model, DataViewSchema InputSchema, FeatureSchema Features, ModelMetrics Metrics);

/// <summary>
/// Trains a declared model with ML.NET (LightGbm, or FastTree) over feature vectors the engine built
/// (<see cref="FeatureSchema"/>): the ML.NET pipeline is the trainer alone, so that scoring can evaluate the same
/// trees without ML.NET in the way. Validation is either a later window (forecast labels: trained on one cutoff,
/// validated on the next) or k-fold cross-validation (snapshot labels), and yields ROC AUC, PR AUC, log-loss, a
/// calibration table and permutation feature importance.
/// </summary>
public static class ModelTrainer
{
    /// <summary>The feature vector's column in every model's input.</summary>
    public const string FeaturesColumn = FeatureDataView.FeaturesColumn;

    /// <summary>The label's column in training data.</summary>
    public const string LabelColumn = FeatureDataView.LabelColumn;

    /// <summary>The most points a stored ROC curve keeps: enough to draw it, small enough for model.json.</summary>
    public const int RocCurvePoints = 101;

    /// <summary>Validation examples permutation importance is measured on (a sample beyond this).</summary>
    private const int ImportanceExamples = 20_000;

    /// <summary>
    /// Trains on <paramref name="training"/> and validates on <paramref name="validation"/> (the next window in time).
    /// <paramref name="plugin"/>, when given, builds the pipeline instead of the declared trainer. With
    /// <paramref name="timings"/>, the milliseconds of the fit and of the validation (importance included) are added.
    /// </summary>
    public static TrainedModel TrainAndValidate(
        ModelDefinition model, TrainingExamples training, TrainingExamples validation, int threads, IModelPlugin? plugin = null, IDictionary<string, long>? timings = null)
    {
        CheckTrainable(model, training, "training");
        CheckTrainable(model, validation, "validation");
        var ml = new MLContext(model.Trainer.Seed);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var trained = Fit(ml, model, training, threads, plugin);
        timings?.Add("fit", clock.ElapsedMilliseconds);
        clock.Restart();
        var metrics = Validate(ml, model, trained, validation, plugin, threads);
        timings?.Add("validate", clock.ElapsedMilliseconds);
        metrics.Method = $"time split: trained on {training.Description}, validated on {validation.Description}";
        metrics.TrainingExamples = training.Count;
        metrics.TrainingPositives = training.Positives;
        return new TrainedModel(trained, training.ToDataView().Schema, training.Schema, metrics);
    }

    /// <summary>
    /// K-fold cross-validation over <paramref name="examples"/> (folds by a hash of the profile id, so a profile
    /// stays in its fold from run to run), then the model trained on all of them.
    /// </summary>
    public static TrainedModel CrossValidate(ModelDefinition model, TrainingExamples examples, int threads, IModelPlugin? plugin = null)
    {
        CheckTrainable(model, examples, "training");
        var folds = model.Validation.Folds;
        var ml = new MLContext(model.Trainer.Seed);
        var members = new List<int>[folds];
        for (var f = 0; f < folds; f++)
        {
            members[f] = [];
        }
        for (var i = 0; i < examples.Count; i++)
        {
            members[Fold(examples.ProfileIds[i], model.Trainer.Seed, folds)].Add(i);
        }
        var metrics = new ModelMetrics { Method = $"{folds}-fold cross-validation over {examples.Description}" };
        ModelMetrics? first = null;
        double prAuc = 0, logLoss = 0;
        // Out-of-fold predictions: every example predicted once, by the model that did not see it.
        var outOfFold = new float[examples.Count];
        for (var f = 0; f < folds; f++)
        {
            var rest = new List<int>(examples.Count - members[f].Count);
            for (var g = 0; g < folds; g++)
            {
                if (g != f)
                {
                    rest.AddRange(members[g]);
                }
            }
            using var train = examples.Subset(rest, $"folds except {f + 1}");
            using var test = examples.Subset(members[f], $"fold {f + 1}");
            CheckTrainable(model, train, $"fold {f + 1}'s training");
            var fitted = Fit(ml, model, train, threads, plugin);
            // Importance from the first fold; the headline figures averaged over all folds.
            var foldMetrics = Validate(ml, model, fitted, test, plugin, threads, importance: f == 0, probabilities: outOfFold, at: members[f]);
            first ??= foldMetrics;
            metrics.FoldRocAuc.Add(foldMetrics.RocAuc);
            prAuc += foldMetrics.PrAuc;
            logLoss += foldMetrics.LogLoss;
        }
        metrics.RocAuc = metrics.FoldRocAuc.Average();
        metrics.PrAuc = prAuc / folds;
        metrics.LogLoss = logLoss / folds;
        metrics.Calibration = Calibration(outOfFold, examples.Labels);
        metrics.RocCurve = RocCurve(outOfFold, examples.Labels);
        metrics.FeatureImportance = first!.FeatureImportance;
        metrics.TrainingExamples = examples.Count;
        metrics.TrainingPositives = examples.Positives;
        metrics.ValidationExamples = examples.Count;
        metrics.ValidationPositives = examples.Positives;
        var final = Fit(ml, model, examples, threads, plugin);
        return new TrainedModel(final, examples.ToDataView().Schema, examples.Schema, metrics);
    }

    /// <summary>The fold of a profile: a hash of its id and the seed, so folds do not follow id order.</summary>
    internal static int Fold(long profileId, int seed, int folds)
    {
        var x = (ulong)profileId * 0x9E3779B97F4A7C15UL ^ (ulong)(uint)seed * 0xBF58476D1CE4E5B9UL;
        x ^= x >> 31;
        x *= 0x94D049BB133111EBUL;
        x ^= x >> 29;
        return (int)(x % (ulong)folds);
    }

    private static void CheckTrainable(ModelDefinition model, TrainingExamples examples, string what)
    {
        var positives = examples.Positives;
        var negatives = examples.Count - positives;
        if (positives == 0 || negatives == 0)
        {
            throw new ModelException(model.Name, $"the label has one class only in the {what} examples ({examples.Description}): "
                + $"{positives:N0} positive, {negatives:N0} negative of {examples.Count:N0}. Check the label condition ({model.File})");
        }
        var fewest = Math.Min(positives, negatives);
        if (fewest < model.MinimumPositives)
        {
            throw new ModelException(model.Name, $"too few {(positives <= negatives ? "positive" : "negative")} examples to train: {fewest:N0} in the {what} examples "
                + $"({examples.Description}; {examples.Count:N0} in all), fewer than min_positives ({model.MinimumPositives})");
        }
    }

    private static ITransformer Fit(MLContext ml, ModelDefinition model, TrainingExamples examples, int threads, IModelPlugin? plugin)
    {
        var data = examples.ToDataView();
        if (plugin is not null)
        {
            try
            {
                return plugin.BuildPipeline(ml, examples.Schema).Fit(data);
            }
            catch (Exception e) when (e is InvalidOperationException or ArgumentException or FormatException)
            {
                throw new ModelException(model.Name, $"plug-in {model.Plugin!.Type} failed to train: {e.Message}", e);
            }
        }
        var options = model.Trainer;
        IEstimator<ITransformer> trainer = options.Algorithm switch
        {
            TrainerAlgorithm.FastTree => ml.BinaryClassification.Trainers.FastTree(new FastTreeBinaryTrainer.Options
            {
                LabelColumnName = LabelColumn,
                FeatureColumnName = FeaturesColumn,
                NumberOfTrees = options.Trees,
                NumberOfLeaves = options.Leaves,
                LearningRate = options.LearningRate,
                MinimumExampleCountPerLeaf = options.MinimumExamplesPerLeaf,
                Seed = options.Seed,
                NumberOfThreads = threads,
            }),
            _ => ml.BinaryClassification.Trainers.LightGbm(new LightGbmBinaryTrainer.Options
            {
                LabelColumnName = LabelColumn,
                FeatureColumnName = FeaturesColumn,
                NumberOfIterations = options.Trees,
                NumberOfLeaves = options.Leaves,
                LearningRate = options.LearningRate,
                MinimumExampleCountPerLeaf = options.MinimumExamplesPerLeaf,
                Seed = options.Seed,
                NumberOfThreads = threads,
                // The engine one-hot-encodes categories itself; numeric splits only keep the trees simple to evaluate.
                UseCategoricalSplit = false,
                Verbose = false,
                Silent = true,
            }),
        };
        return trainer.Fit(data);
    }

    /// <summary>
    /// The model's figures on <paramref name="examples"/>; with <paramref name="probabilities"/>, each example's
    /// predicted probability is also put there, at its index in <paramref name="at"/> (cross-validation's pooled predictions).
    /// </summary>
    /// <remarks>
    /// A LightGbm or FastTree model is scored by its compiled ensemble (<see cref="CompiledTreeEnsemble"/>: ML.NET's
    /// scores, bit for bit, on every core), and ML.NET's evaluator reads those scores: the same figures, without
    /// ML.NET's row-at-a-time <c>Transform</c>, three passes of which (and a permutation importance of its own) were
    /// most of the validation. A plug-in's pipeline goes through ML.NET.
    /// </remarks>
    internal static ModelMetrics Validate(
        MLContext ml, ModelDefinition model, ITransformer trained, TrainingExamples examples, IModelPlugin? plugin, int threads, bool importance = true,
        float[]? probabilities = null, List<int>? at = null, bool compiled = true)
    {
        var ensemble = compiled && plugin is null ? TryCompile(trained) : null;
        CalibratedBinaryClassificationMetrics evaluated;
        float[] predicted;
        if (ensemble is not null)
        {
            var score = new float[examples.Count];
            predicted = new float[examples.Count];
            ensemble.Score(examples.Batch, score, predicted, Math.Max(1, threads));
            var scored = ml.Data.LoadFromEnumerable(Scored(examples.Labels.ToArray(), score, predicted));
            evaluated = ml.BinaryClassification.Evaluate(scored, LabelColumn, nameof(ScoredExample.Score), nameof(ScoredExample.Probability), nameof(ScoredExample.PredictedLabel));
        }
        else
        {
            var predictions = trained.Transform(examples.ToDataView());
            var probability = plugin?.ProbabilityColumn ?? "Probability";
            if (predictions.Schema.GetColumnOrNull(probability) is not { Type: NumberDataViewType { RawType: var raw } } || raw != typeof(float))
            {
                throw new ModelException(model.Name, $"the model's output has no float column '{probability}' (a calibrated binary classifier's probability); "
                    + $"its columns: {string.Join(", ", predictions.Schema.Select(c => c.Name))}");
            }
            evaluated = ml.BinaryClassification.Evaluate(predictions, LabelColumn, probabilityColumnName: probability);
            predicted = predictions.GetColumn<float>(probability).ToArray();
        }
        var metrics = new ModelMetrics
        {
            RocAuc = evaluated.AreaUnderRocCurve,
            PrAuc = evaluated.AreaUnderPrecisionRecallCurve,
            // ML.NET reports log-loss in bits; the table gives it in nats, as scikit-learn and LightGBM do.
            LogLoss = evaluated.LogLoss * Math.Log(2),
            ValidationExamples = examples.Count,
            ValidationPositives = examples.Positives,
        };
        metrics.Calibration = Calibration(predicted, examples.Labels);
        metrics.RocCurve = RocCurve(predicted, examples.Labels);
        if (probabilities is not null && at is not null)
        {
            for (var i = 0; i < predicted.Length; i++)
            {
                probabilities[at[i]] = predicted[i];
            }
        }
        if (importance)
        {
            metrics.FeatureImportance = ensemble is not null
                ? Importance(ensemble, examples, model.Trainer.Seed, threads)
                : Importance(ml, trained, examples.ToDataView(), examples);
        }
        return metrics;
    }

    private static CompiledTreeEnsemble? TryCompile(ITransformer trained)
    {
        try
        {
            return CompiledTreeEnsemble.FromModel(trained);
        }
        catch (NotSupportedException)
        {
            return null;
        }
    }

    /// <summary>One scored example, as ML.NET's evaluator reads it (the columns a binary classifier's <c>Transform</c> adds).</summary>
    private sealed class ScoredExample
    {
        public bool Label { get; set; }
        public float Score { get; set; }
        public float Probability { get; set; }
        public bool PredictedLabel { get; set; }
    }

    private static IEnumerable<ScoredExample> Scored(bool[] labels, float[] scores, float[] probabilities)
    {
        for (var i = 0; i < labels.Length; i++)
        {
            // ML.NET's binary scorer predicts positive above a score of 0.
            yield return new ScoredExample { Label = labels[i], Score = scores[i], Probability = probabilities[i], PredictedLabel = scores[i] > 0 };
        }
    }

    /// <summary>Ten bins of predicted probability, each with its examples' mean prediction and observed positive rate.</summary>
    internal static List<CalibrationBin> Calibration(ReadOnlySpan<float> probabilities, ReadOnlySpan<bool> labels)
    {
        const int bins = 10;
        var count = new long[bins];
        var predicted = new double[bins];
        var positive = new long[bins];
        for (var i = 0; i < probabilities.Length; i++)
        {
            var p = probabilities[i];
            var b = Math.Clamp((int)(p * bins), 0, bins - 1);
            count[b]++;
            predicted[b] += p;
            positive[b] += labels[i] ? 1 : 0;
        }
        var table = new List<CalibrationBin>(bins);
        for (var b = 0; b < bins; b++)
        {
            table.Add(new CalibrationBin((double)b / bins, (double)(b + 1) / bins, count[b],
                count[b] > 0 ? predicted[b] / count[b] : double.NaN, count[b] > 0 ? (double)positive[b] / count[b] : double.NaN));
        }
        return table;
    }

    /// <summary>
    /// The ROC curve of <paramref name="probabilities"/> against <paramref name="labels"/>: one point per distinct
    /// score (ties move both rates at once, as ROC AUC counts them), from (0, 0) to (1, 1). When there are more than
    /// <paramref name="maxPoints"/>, evenly spaced ones are kept, the ends always.
    /// </summary>
    internal static List<RocPoint> RocCurve(ReadOnlySpan<float> probabilities, ReadOnlySpan<bool> labels, int maxPoints = RocCurvePoints)
    {
        long positives = 0;
        foreach (var label in labels)
        {
            positives += label ? 1 : 0;
        }
        var negatives = labels.Length - positives;
        if (positives == 0 || negatives == 0)
        {
            return [];
        }
        var order = new int[probabilities.Length];
        for (var i = 0; i < order.Length; i++)
        {
            order[i] = i;
        }
        var scores = probabilities.ToArray();
        // Highest score first: lowering the threshold admits them in this order.
        Array.Sort(order, (a, b) => scores[b].CompareTo(scores[a]));
        // The first point's threshold is just above the highest score: nothing is predicted positive yet.
        var curve = new List<RocPoint> { new(0, 0, Math.BitIncrement(scores[order[0]])) };
        long truePositives = 0, falsePositives = 0;
        for (var i = 0; i < order.Length; i++)
        {
            if (labels[order[i]])
            {
                truePositives++;
            }
            else
            {
                falsePositives++;
            }
            if (i + 1 == order.Length || scores[order[i + 1]] != scores[order[i]])
            {
                curve.Add(new RocPoint((double)falsePositives / negatives, (double)truePositives / positives, scores[order[i]]));
            }
        }
        if (curve.Count <= maxPoints)
        {
            return curve;
        }
        var thinned = new List<RocPoint>(maxPoints);
        for (var k = 0; k < maxPoints; k++)
        {
            thinned.Add(curve[(int)Math.Round((double)k * (curve.Count - 1) / (maxPoints - 1))]);
        }
        return thinned;
    }

    /// <summary>
    /// Permutation importance with the compiled ensemble, as ML.NET's <c>PermutationFeatureImportance</c> defines it
    /// (one permutation, the first <see cref="ImportanceExamples"/> examples): per slot, the drop in ROC AUC when that
    /// slot's values are shuffled among the examples, the others left as they are. Shuffled with the model's seed.
    /// </summary>
    private static List<FeatureImportance> Importance(CompiledTreeEnsemble ensemble, TrainingExamples examples, int seed, int threads)
    {
        var n = Math.Min(examples.Count, ImportanceExamples);
        var features = examples.Batch.FeatureCount;
        using var sample = new FeatureBatch(features, n);
        sample.RowCount = n;
        for (var f = 0; f < features; f++)
        {
            examples.Batch.Feature(f)[..n].CopyTo(sample.Feature(f));
        }
        var labels = examples.Labels[..n].ToArray();
        var score = new float[n];
        ensemble.Score(sample, score, [], Math.Max(1, threads));
        var baseline = RocAuc(score, labels);
        var random = new Random(seed);
        var saved = new float[n];
        var result = new List<FeatureImportance>(features);
        for (var f = 0; f < features; f++)
        {
            var column = sample.Feature(f);
            column.CopyTo(saved);
            random.Shuffle(column);
            ensemble.Score(sample, score, [], Math.Max(1, threads));
            result.Add(new FeatureImportance(examples.Schema.Slots[f].Name, baseline - RocAuc(score, labels)));
            saved.CopyTo(column);
        }
        result.Sort((a, b) => b.AucDrop.CompareTo(a.AucDrop));
        return result;
    }

    /// <summary>ROC AUC by ranks (Mann-Whitney): tied scores share their mean rank. NaN with one class only.</summary>
    internal static double RocAuc(ReadOnlySpan<float> scores, ReadOnlySpan<bool> labels)
    {
        var keys = scores.ToArray();
        var order = new int[keys.Length];
        for (var i = 0; i < order.Length; i++)
        {
            order[i] = i;
        }
        Array.Sort(keys, order);
        double positiveRanks = 0;
        long positives = 0;
        for (var i = 0; i < keys.Length;)
        {
            var j = i;
            while (j + 1 < keys.Length && keys[j + 1] == keys[i])
            {
                j++;
            }
            var rank = ((i + j) / 2.0) + 1;
            for (var k = i; k <= j; k++)
            {
                if (labels[order[k]])
                {
                    positiveRanks += rank;
                    positives++;
                }
            }
            i = j + 1;
        }
        var negatives = keys.Length - positives;
        return positives == 0 || negatives == 0 ? double.NaN : (positiveRanks - (positives * (positives + 1) / 2.0)) / ((double)positives * negatives);
    }

    private static List<FeatureImportance> Importance(MLContext ml, ITransformer model, IDataView data, TrainingExamples examples)
    {
        if (model is not ISingleFeaturePredictionTransformer<object> prediction)
        {
            return [];
        }
        var statistics = ml.BinaryClassification.PermutationFeatureImportance(
            prediction, data, LabelColumn, useFeatureWeightFilter: false, numberOfExamplesToUse: Math.Min(examples.Count, ImportanceExamples), permutationCount: 1);
        var result = new List<FeatureImportance>(statistics.Length);
        for (var s = 0; s < statistics.Length; s++)
        {
            // ML.NET reports the change in AUC (negative when the feature mattered); the table shows the drop.
            result.Add(new FeatureImportance(examples.Schema.Slots[s].Name, -statistics[s].AreaUnderRocCurve.Mean));
        }
        result.Sort((a, b) => b.AucDrop.CompareTo(a.AucDrop));
        return result;
    }
}
