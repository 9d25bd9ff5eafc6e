using Apache.Arrow;
using Engine.Scores;
using Engine.Storage;
using Engine.TestKit;
using Engine.Tests.Storage;
using Engine.Workspaces;
using Microsoft.Extensions.Logging.Abstractions;

namespace Engine.Tests.Scores;

/// <summary>
/// A model written in C# (<see cref="IModelPlugin"/>), loaded from its assembly's path as a workspace names it: the
/// engine trains it with its own examples and validation, registers it and scores through ML.NET's Transform. The
/// plug-in is <c>tests/Engine.ExamplePlugin</c>, the README's worked example.
/// </summary>
public sealed class PluginModelTests : IDisposable
{
    private static readonly DateTimeOffset AsOf = new(2026, 11, 1, 0, 0, 0, TimeSpan.Zero);

    private readonly TempDirectory _dir = new("plugin-model");

    public void Dispose() => _dir.Dispose();

    /// <summary>The example plug-in's build output.</summary>
    private static string ExamplePlugin()
    {
        var root = SharedData.RepositoryRoot()!.FullName;
        var bin = Path.Combine(root, "tests", "Engine.ExamplePlugin", "bin");
        var dll = Directory.EnumerateFiles(bin, "Engine.ExamplePlugin.dll", SearchOption.AllDirectories)
            .OrderByDescending(File.GetLastWriteTimeUtc).FirstOrDefault();
        Assert.True(dll is not null, $"the example plug-in is not built under {bin}");
        return dll;
    }

    private (Workspace Workspace, ModelDefinition Model) Model(string assembly, string type)
    {
        var root = _dir.Combine("ws");
        Directory.CreateDirectory(Path.Combine(root, ModelDefinition.Folder));
        File.WriteAllText(Path.Combine(root, ModelDefinition.Folder, "churn.yaml"), $"plugin: {{ assembly: '{assembly}', type: {type} }}\n");
        var model = new ModelDefinition
        {
            Name = "churn",
            File = "models/churn.yaml",
            Label = new LabelDefinition { Condition = new ConditionText("\"left\"", TextPositions.At(2, 20)) },
            Features = [new FeatureReference("signal", 3, 12), new FeatureReference("noise", 3, 20), new FeatureReference("plan", 3, 27)],
            Plugin = new PluginReference(assembly, type, 1, 22),
            ScoreColumn = "churn_score",
            DecileColumn = "churn_decile",
        };
        return (new Workspace(root, "plugin", Path.Combine(root, "output"), [], [], models: [model]), model);
    }

    [Fact]
    public async Task A_plugin_model_is_trained_validated_registered_and_scores_every_profile()
    {
        var (workspace, model) = Model(ExamplePlugin(), "Engine.ExamplePlugin.ChurnLogisticRegression");
        using var storage = new StorageResolver();
        var registry = new ModelRegistry(storage.Resolve(_dir.Combine("registry")));
        var table = ModelTrainingTests.Table();
        var result = await new ScoresStage(storage, NullLogger.Instance).RunAsync(
            workspace, table, default, AsOf, registry, null, null, 2, null, TestContext.Current.CancellationToken);

        var entry = result.Report.Models["churn"];
        Assert.Null(entry.Error);
        Assert.Equal((1, 1), (entry.TrainedVersion, entry.Version));
        Assert.Equal("ML.NET Transform", entry.Scorer);
        Assert.True(entry.ValidationRocAuc > 0.75, $"ROC AUC {entry.ValidationRocAuc}");
        var record = (await registry.CurrentAsync("churn", TestContext.Current.CancellationToken))!;
        Assert.Equal("plug-in Engine.ExamplePlugin.ChurnLogisticRegression", record.Algorithm);
        Assert.Equal(5, record.Metrics.FoldRocAuc.Count);
        var scores = (DoubleArray)result.Table.Find("churn_score")!.Values;
        Assert.Equal(0, scores.NullCount);
        Assert.All(scores.Values.ToArray(), p => Assert.InRange(p, 0.0, 1.0));
    }

    [Fact]
    public async Task A_missing_assembly_or_type_is_named()
    {
        using var storage = new StorageResolver();
        var registry = new ModelRegistry(storage.Resolve(_dir.Combine("registry")));
        var table = ModelTrainingTests.Table();
        async Task<string> Error((Workspace Workspace, ModelDefinition Model) definition) =>
            (await new ScoresStage(storage, NullLogger.Instance).RunAsync(
                definition.Workspace, table, default, AsOf, registry, null, null, 2, null, TestContext.Current.CancellationToken)).Report.Models["churn"].Error!;

        Assert.Matches(@"^model 'churn': plug-in assembly .*nowhere\.dll does not exist \(models/churn\.yaml:1\)", await Error(Model("plugins/nowhere.dll", "X")));
        Assert.Equal("model 'churn': plug-in assembly Engine.ExamplePlugin.dll has no type 'Engine.ExamplePlugin.Churn' "
            + "(classes implementing IModelPlugin there: Engine.ExamplePlugin.ChurnLogisticRegression)",
            await Error(Model(ExamplePlugin(), "Engine.ExamplePlugin.Churn")));
    }
}
