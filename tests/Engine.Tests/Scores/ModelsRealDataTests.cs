using Engine.Tests.Identity;
using Engine.Scores;
using Engine.Storage;

namespace Engine.Tests.Scores;

/// <summary>
/// The declared-model path (a model file, no C#) on real public churn data: the example workspaces
/// <c>datasets/workspaces/telco-churn</c> and <c>bank-churn</c> run through every stage, the run trains the churn
/// model (5-fold cross-validation, LightGbm), scores every customer and evaluates the at-risk audience over the
/// score. Skipped where the shared data sets are missing.
/// </summary>
public sealed class ModelsRealDataTests
{
    [Theory]
    [InlineData("telco-churn", 7_043, 0.84)]
    [InlineData("bank-churn", 10_000, 0.86)]
    public async Task The_declared_churn_model_reaches_its_cross_validated_roc_auc(string workspaceName, long customers, double floor)
    {
        using var ws = new RealWorkspace(workspaceName);
        var (_, result) = await ws.RunAllAsync("night-1");

        var scores = result.Manifest.Scores!.Models["churn"];
        Assert.Null(scores.Error);
        Assert.Equal(1, scores.TrainedVersion);
        Assert.Equal(1, scores.Version);
        Assert.Equal(customers, scores.Scored);
        Assert.Equal(customers, scores.Histogram.Sum());

        using var storage = new StorageResolver();
        var registry = new ModelRegistry(storage.Resolve(Path.Combine(ws.Output, ModelRegistry.Folder)));
        var record = (await registry.CurrentAsync("churn", TestContext.Current.CancellationToken))!;
        var metrics = record.Metrics;
        TestContext.Current.SendDiagnosticMessage(
            $"{workspaceName}: {metrics.Method}; ROC AUC {metrics.RocAuc:F4} (folds {string.Join(", ", metrics.FoldRocAuc.Select(a => a.ToString("F4", System.Globalization.CultureInfo.InvariantCulture)))}), "
            + $"PR AUC {metrics.PrAuc:F4}, log-loss {metrics.LogLoss:F4}; top features {string.Join(", ", metrics.FeatureImportance.Take(5).Select(f => $"{f.Feature} {f.AucDrop:F4}"))}");
        Assert.Equal(5, metrics.FoldRocAuc.Count);
        Assert.True(metrics.RocAuc >= floor, $"{workspaceName}: 5-fold ROC AUC {metrics.RocAuc:F4} < {floor}");
        Assert.True(metrics.PrAuc > 0.5 && metrics.LogLoss < 0.45, $"PR AUC {metrics.PrAuc:F4}, log-loss {metrics.LogLoss:F4}");
        Assert.Equal(metrics.TrainingExamples, metrics.Calibration.Sum(b => b.Examples));
        Assert.NotEmpty(metrics.FeatureImportance);
        Assert.Equal(record.Features.Count, metrics.FeatureImportance.Count);

        // The at-risk audience is evaluated over the score columns, and re-running gives the same version (no retraining).
        Assert.True(result.Manifest.Segments!.Segments.Single(s => s.Name == "at_risk").Members > 0);
        var (_, again) = await ws.RunAllAsync("night-2");
        Assert.Null(again.Manifest.Scores!.Models["churn"].TrainedVersion);
        Assert.Equal(1, again.Manifest.Scores.Models["churn"].Version);
        Assert.Equal(0.0, again.Manifest.Scores.Models["churn"].Psi!.Value, 12);
    }

    /// <summary>
    /// With <c>max_examples</c> below the customers, the model trains on a sample near that size (a hash of profile
    /// and as-of picks it, the same on every run), cross-validates over it, records how many there were, and still
    /// scores every customer.
    /// </summary>
    [Fact]
    public async Task A_model_with_more_examples_than_its_limit_trains_on_a_sample_and_scores_everyone()
    {
        using var ws = new RealWorkspace("telco-churn");
        var file = Path.Combine(ws.Folder, "models", "churn.yaml");
        File.WriteAllText(file, File.ReadAllText(file).Replace("  min_examples_per_leaf: 50\n", "  min_examples_per_leaf: 50\n  max_examples: 3000\n", StringComparison.Ordinal));
        var (_, result) = await ws.RunAllAsync("night-1");

        var scores = result.Manifest.Scores!.Models["churn"];
        Assert.Null(scores.Error);
        Assert.Equal(7_043, scores.Scored);
        using var storage = new StorageResolver();
        var registry = new ModelRegistry(storage.Resolve(Path.Combine(ws.Output, ModelRegistry.Folder)));
        var metrics = (await registry.CurrentAsync("churn", TestContext.Current.CancellationToken))!.Metrics;
        TestContext.Current.SendDiagnosticMessage($"telco-churn, max_examples 3000: {metrics.TrainingExamples} of {metrics.TrainingExamplesAvailable} examples, ROC AUC {metrics.RocAuc:F4}");
        Assert.Equal(7_043, metrics.TrainingExamplesAvailable);
        Assert.InRange(metrics.TrainingExamples, 2_700, 3_300);
        Assert.Equal(metrics.TrainingExamples, metrics.Calibration.Sum(b => b.Examples));
        Assert.True(metrics.RocAuc >= 0.8, $"ROC AUC {metrics.RocAuc:F4} on a sample of {metrics.TrainingExamples}");
    }
}
