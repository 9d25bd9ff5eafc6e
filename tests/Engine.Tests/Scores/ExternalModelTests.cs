using Apache.Arrow;
using Engine.Profiles;
using Engine.Scores;
using Engine.Storage;
using Engine.TestKit;
using Engine.Workspaces;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Trainers.LightGbm;

namespace Engine.Tests.Scores;

/// <summary>
/// Models trained elsewhere — an ML.NET zip, an ONNX file — named in a model file with the profile columns that make
/// up their input: registered when the file changes, checked against the declaration, and scoring every profile
/// with the scores the model itself gives. A file that does not match is refused and the version before keeps scoring.
/// </summary>
public sealed class ExternalModelTests : IDisposable
{
    private static readonly DateTimeOffset AsOf = new(2026, 11, 1, 0, 0, 0, TimeSpan.Zero);

    private readonly TempDirectory _dir = new("external-model");

    public void Dispose() => _dir.Dispose();

    /// <summary>A LightGbm model trained "elsewhere" on (signal, noise) of the test table, and its probabilities for every row.</summary>
    private static (MLContext Ml, ITransformer Model, IDataView Data, float[] Probabilities) TrainElsewhere(ProfileTable table)
    {
        var schema = new FeatureSchema(
            [new FeatureColumn("signal", ColumnType.Double), new FeatureColumn("noise", ColumnType.Double)],
            [new FeatureSlot("signal", FeatureKind.Number), new FeatureSlot("noise", FeatureKind.Number)]);
        var rows = Enumerable.Range(0, table.Count).ToArray();
        var labels = ((BooleanArray)table.Find("left")!.Values) is var left ? rows.Select(r => left.GetValue(r) == true).ToArray() : [];
        using var examples = TrainingExamples.From(schema, table, rows, labels, AsOf, "elsewhere");
        var ml = new MLContext(3);
        var data = examples.ToDataView();
        var model = ml.BinaryClassification.Trainers.LightGbm(new LightGbmBinaryTrainer.Options { NumberOfIterations = 40, NumberOfLeaves = 8 }).Fit(data);
        var probabilities = model.Transform(data).GetColumn<float>("Probability").ToArray();
        // The view reads the batch in place: keep a copy of the data the ONNX export needs.
        // The ONNX graph is exported from the features alone, as a model handed over for scoring would be.
        var copy = ml.Data.CreateEnumerable<Row>(data, reuseRowObject: false).ToList();
        var definition = SchemaDefinition.Create(typeof(Row));
        definition["Features"].ColumnType = new VectorDataViewType(NumberDataViewType.Single, 2);
        return (ml, model, ml.Data.LoadFromEnumerable(copy, definition), probabilities);
    }

    private sealed class Row
    {
        public float[] Features { get; set; } = [];
    }

    private (Workspace Workspace, ModelDefinition Model) Model(string path, string features = "signal, noise", string? output = null)
    {
        var root = _dir.Combine("ws");
        Directory.CreateDirectory(Path.Combine(root, ModelDefinition.Folder));
        File.WriteAllText(Path.Combine(root, ModelDefinition.Folder, "churn.yaml"), $"model: {{ path: {path}{(output is null ? "" : $", output: {output}")} }}\nfeatures: [{features}]\n");
        var format = path.EndsWith(".onnx", StringComparison.Ordinal) ? ExternalFormat.Onnx : ExternalFormat.MlNet;
        var model = new ModelDefinition
        {
            Name = "churn",
            File = "models/churn.yaml",
            Features = features.Split(", ").Select((f, i) => new FeatureReference(f, 2, 12 + i)).ToList(),
            External = new ExternalModel(path, format, "Features", output ?? (format == ExternalFormat.Onnx ? "Probability.output" : "Probability"), 1, 16),
            ScoreColumn = "churn_score",
            DecileColumn = "churn_decile",
        };
        return (new Workspace(root, "external", Path.Combine(root, "output"), [], [], models: [model]), model);
    }

    private async Task<ScoresResult> NightAsync(StorageResolver storage, (Workspace Workspace, ModelDefinition Model) definition, ProfileTable table) =>
        await new ScoresStage(storage, NullLogger.Instance).RunAsync(definition.Workspace, table, default, AsOf,
            new ModelRegistry(storage.Resolve(_dir.Combine("registry"))), null, null, 2, null, TestContext.Current.CancellationToken);

    [Fact]
    public async Task An_ML_NET_zip_scores_as_it_does_itself_and_a_mismatched_replacement_is_refused()
    {
        var table = ModelTrainingTests.Table();
        var (ml, model, data, expected) = TrainElsewhere(table);
        var file = _dir.Combine("ws", "external", "churn.zip");
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        ml.Model.Save(model, data.Schema, file);
        using var storage = new StorageResolver();

        var first = await NightAsync(storage, Model("external/churn.zip"), table);
        var entry = first.Report.Models["churn"];
        Assert.Null(entry.Error);
        Assert.Equal((1, 1), (entry.TrainedVersion, entry.Version));
        Assert.Equal("compiled", entry.Scorer);
        Assert.Null(entry.ValidationRocAuc);
        var scores = ((DoubleArray)first.Table.Find("churn_score")!.Values).Values.ToArray();
        Assert.Equal(expected.Select(p => (double)p), scores);

        // The same file again: nothing registered. A file whose vector is longer than the declared features: refused.
        Assert.Null((await NightAsync(storage, Model("external/churn.zip"), table)).Report.Models["churn"].TrainedVersion);
        var second = await NightAsync(storage, Model("external/churn.zip", features: "signal"), table);
        entry = second.Report.Models["churn"];
        Assert.Equal("model 'churn': the ML.NET model reads a vector of 2 values, but the model file lists 1 features (signal)", entry.Error);
        Assert.Equal(1, entry.Version);
        Assert.Equal(scores, ((DoubleArray)second.Table.Find("churn_score")!.Values).Values.ToArray());
    }

    [Fact]
    public async Task An_ONNX_file_scores_within_1e_5_of_the_model_it_was_exported_from()
    {
        var table = ModelTrainingTests.Table(rows: 1_000);
        var (ml, model, data, expected) = TrainElsewhere(table);
        var file = _dir.Combine("ws", "external", "churn.onnx");
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        using (var stream = File.Create(file))
        {
            ml.Model.ConvertToOnnx(model, data, stream);
        }
        using var storage = new StorageResolver();
        var night = await NightAsync(storage, Model("external/churn.onnx"), table);
        var entry = night.Report.Models["churn"];
        Assert.True(entry.Error is null, entry.Error);
        Assert.Equal("ML.NET Transform", entry.Scorer);
        var scores = ((DoubleArray)night.Table.Find("churn_score")!.Values).Values.ToArray();
        for (var i = 0; i < scores.Length; i++)
        {
            Assert.True(Math.Abs(scores[i] - expected[i]) <= 1e-5, $"row {i}: ONNX {scores[i]}, ML.NET {expected[i]}");
        }

        var wrong = await NightAsync(storage, Model("external/churn.onnx", output: "probability"), table);
        Assert.StartsWith("model 'churn': the ONNX model has no output 'probability' (its outputs: ", wrong.Report.Models["churn"].Error, StringComparison.Ordinal);
        Assert.Equal(1, wrong.Report.Models["churn"].Version);
    }
}
