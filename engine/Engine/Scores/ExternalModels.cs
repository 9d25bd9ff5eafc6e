using System.Security.Cryptography;
using Engine.Profiles;
using Engine.Workspaces;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;

namespace Engine.Scores;

/// <summary>
/// Models trained elsewhere: an ML.NET zip reading a <c>Features</c> vector, or an ONNX graph with one float input
/// tensor <c>[batch, features]</c>. The model file's <c>features</c> are the profile columns that make up the vector,
/// in order. A new file (its bytes changed) is checked against that declaration — the vector's length, the input and
/// output names — and registered as the next version; one that does not match is refused, naming the model and what
/// differs, and the version before keeps scoring.
/// </summary>
public static class ExternalModels
{
    /// <summary>
    /// Registers the model's file as a new version if it changed since the latest one (recording <paramref name="runId"/>,
    /// the run registering it); returns the error, or null.
    /// </summary>
    public static async Task<(ModelRecord? Added, string? Error)> RegisterIfChangedAsync(
        Workspace workspace, ModelDefinition model, ProfileTable table, ModelRegistry registry, string? runId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(workspace);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(registry);
        var external = model.External ?? throw new ArgumentException($"model '{model.Name}' is not external", nameof(model));
        var path = external.FullPath(workspace.Directory);
        if (!File.Exists(path))
        {
            return (null, $"model '{model.Name}': model file {path} does not exist ({model.File}:{external.Line})");
        }
        var bytes = await File.ReadAllBytesAsync(path, cancellationToken);
        var hash = $"{ModelTraining.DefinitionHash(workspace, model)}-{Convert.ToHexStringLower(SHA256.HashData(bytes))[..16]}";
        var versions = await registry.VersionsAsync(model.Name, cancellationToken);
        if (versions.Count > 0 && versions[^1].DefinitionHash == hash)
        {
            return (null, null);
        }
        var columns = new List<FeatureColumn>();
        var slots = new List<FeatureSlot>();
        foreach (var feature in model.Features)
        {
            var column = table.Find(feature.Column);
            if (column is null || column.Type == Storage.ColumnType.String)
            {
                return (null, $"model '{model.Name}': feature '{feature.Column}' is {(column is null ? "not a profile column" : "a string")}; an external model reads a vector of numbers");
            }
            columns.Add(new FeatureColumn(feature.Column, column.Type));
            slots.Add(new FeatureSlot(feature.Column, column.Type is Storage.ColumnType.Date or Storage.ColumnType.Timestamp ? FeatureKind.DaysBefore : FeatureKind.Number));
        }
        var features = new FeatureSchema(columns, slots);
        var ml = new MLContext(1);
        try
        {
            if (external.Format == ExternalFormat.Onnx)
            {
                LoadOnnx(ml, model.Name, bytes, external.Input, external.Output, features.Count);
            }
            else
            {
                LoadMlNet(ml, model.Name, bytes, path, out var inputSchema);
                CheckMlNetInput(model.Name, inputSchema, features.Count, model);
            }
        }
        catch (ModelException e)
        {
            return (null, e.Message);
        }
        var record = new ModelRecord
        {
            Model = model.Name,
            TrainedAt = File.GetLastWriteTimeUtc(path),
            RunId = runId,
            Algorithm = external.Format == ExternalFormat.Onnx ? "external ONNX" : "external ML.NET",
            Format = external.Format,
            OnnxInput = external.Format == ExternalFormat.Onnx ? external.Input : null,
            ProbabilityColumn = external.Output,
            Features = features,
            Population = model.Population?.Text.Trim(),
            Label = "trained elsewhere",
            Metrics = new ModelMetrics { Method = $"trained elsewhere ({external.Path})" },
            DefinitionHash = hash,
            Decision = $"registered: {external.Path} as given (an external model is not validated by the engine)",
        };
        return (await registry.AddExternalAsync(record, bytes, cancellationToken), null);
    }

    internal static ITransformer LoadMlNet(MLContext ml, string model, byte[] bytes, string location, out DataViewSchema inputSchema)
    {
        using var stream = new MemoryStream(bytes, writable: false);
        try
        {
            return ml.Model.Load(stream, out inputSchema);
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or InvalidDataException or ArgumentException)
        {
            throw new ModelException(model, $"{location} cannot be read as an ML.NET model: {e.Message}", e);
        }
    }

    private static void CheckMlNetInput(string name, DataViewSchema input, int features, ModelDefinition model)
    {
        var column = input.GetColumnOrNull(FeatureDataView.FeaturesColumn);
        if (column is null)
        {
            throw new ModelException(name, $"the ML.NET model reads no '{FeatureDataView.FeaturesColumn}' column (it reads {string.Join(", ", input.Select(c => $"{c.Name} ({c.Type})"))}); "
                + "an external ML.NET model must read one float vector, the features in the model file's order");
        }
        if (column.Value.Type is not VectorDataViewType { ItemType: NumberDataViewType { RawType: var raw }, Size: var size } || raw != typeof(float))
        {
            throw new ModelException(name, $"the ML.NET model's '{FeatureDataView.FeaturesColumn}' column is {column.Value.Type}, not a vector of Single");
        }
        if (size != features)
        {
            throw new ModelException(name, $"the ML.NET model reads a vector of {size} values, but the model file lists {features} features "
                + $"({string.Join(", ", model.Features.Select(f => f.Column))})");
        }
    }

    /// <summary>An ONNX graph applied to the feature vector, its input and output checked against the declaration.</summary>
    internal static ITransformer LoadOnnx(MLContext ml, string model, byte[] bytes, string input, string output, int features)
    {
        try
        {
            using var session = new InferenceSession(bytes);
            if (!session.InputMetadata.TryGetValue(input, out var inputMeta))
            {
                throw new ModelException(model, $"the ONNX model has no input '{input}' (its inputs: {string.Join(", ", session.InputMetadata.Keys)})");
            }
            if (session.InputMetadata.Count > 1)
            {
                throw new ModelException(model, $"the ONNX model has {session.InputMetadata.Count} inputs ({string.Join(", ", session.InputMetadata.Keys)}); "
                    + $"an external model takes one, the feature vector '{input}'");
            }
            if (inputMeta.ElementType != typeof(float))
            {
                throw new ModelException(model, $"the ONNX model's input '{input}' holds {inputMeta.ElementType.Name}, not float");
            }
            var width = inputMeta.Dimensions.Length == 0 ? -1 : inputMeta.Dimensions[^1];
            if (width > 0 && width != features)
            {
                throw new ModelException(model, $"the ONNX model's input '{input}' takes {width} values per row, but the model file lists {features} features");
            }
            if (!session.OutputMetadata.ContainsKey(output))
            {
                throw new ModelException(model, $"the ONNX model has no output '{output}' (its outputs: {string.Join(", ", session.OutputMetadata.Keys)})");
            }
        }
        catch (OnnxRuntimeException e)
        {
            throw new ModelException(model, $"the file cannot be read as an ONNX model: {e.Message}", e);
        }
        // ML.NET's ONNX transform reads the graph from a file.
        var file = Path.Combine(Path.GetTempPath(), $"engine-model-{Guid.NewGuid():N}.onnx");
        File.WriteAllBytes(file, bytes);
        try
        {
            var onnx = ml.Transforms.ApplyOnnxModel(
                outputColumnNames: [output], inputColumnNames: [input], modelFile: file,
                shapeDictionary: new Dictionary<string, int[]> { [input] = [1, features] }, gpuDeviceId: null, fallbackToCpu: false, recursionLimit: 100);
            using var empty = new FeatureBatch(features, 1);
            var view = new FeatureDataView(empty);
            return input == FeatureDataView.FeaturesColumn
                ? onnx.Fit(view)
                : ml.Transforms.CopyColumns(input, FeatureDataView.FeaturesColumn).Append(onnx).Fit(view);
        }
        finally
        {
            File.Delete(file);
        }
    }
}
