using System.Globalization;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Serialization;
using Engine.Storage;
using Microsoft.ML;

namespace Engine.Scores;

/// <summary>
/// What the registry keeps about one trained model version (<c>model.json</c> beside its <c>model.zip</c>): the
/// features and their schema, the label, the training windows, the validation metrics, the library versions, and
/// whether it was promoted to score.
/// </summary>
public sealed class ModelRecord
{
    [JsonPropertyName("model")] public string Model { get; set; } = "";
    [JsonPropertyName("version")] public int Version { get; set; }
    [JsonPropertyName("trained_at")] public DateTimeOffset TrainedAt { get; set; }

    /// <summary>The run that trained (or registered) the version; a resumed run finds its own and does not train twice.</summary>
    [JsonPropertyName("run_id")] public string? RunId { get; set; }

    /// <summary>The as-of time the training windows were counted back from.</summary>
    [JsonPropertyName("as_of")] public DateTimeOffset AsOf { get; set; }

    /// <summary>Forecast labels: the cutoffs of the training and validation windows.</summary>
    [JsonPropertyName("training_cutoff")] public DateTimeOffset? TrainingCutoff { get; set; }
    [JsonPropertyName("validation_cutoff")] public DateTimeOffset? ValidationCutoff { get; set; }

    [JsonPropertyName("label")] public string Label { get; set; } = "";
    [JsonPropertyName("horizon_days")] public int? HorizonDays { get; set; }
    [JsonPropertyName("population")] public string? Population { get; set; }
    [JsonPropertyName("algorithm")] public string Algorithm { get; set; } = "";

    /// <summary>A model trained elsewhere (its file registered as it was given); it has no metrics of the engine's.</summary>
    [JsonPropertyName("external")] public bool External { get; set; }

    /// <summary>The stored model's format: <c>mlnet</c> (<c>model.zip</c>) or <c>onnx</c> (<c>model.onnx</c>).</summary>
    [JsonPropertyName("format")] public ExternalFormat Format { get; set; } = ExternalFormat.MlNet;

    /// <summary>ONNX: the input tensor the feature vector is given as.</summary>
    [JsonPropertyName("onnx_input")] public string? OnnxInput { get; set; }

    /// <summary>The output column holding the probability (a plug-in or an external model may name another).</summary>
    [JsonPropertyName("probability_column")] public string ProbabilityColumn { get; set; } = "Probability";
    [JsonPropertyName("trainer")] public TrainerOptions Trainer { get; set; } = new();
    [JsonPropertyName("features")] public FeatureSchema Features { get; set; } = new([], []);
    [JsonPropertyName("metrics")] public ModelMetrics Metrics { get; set; } = new();

    /// <summary>A hash of the model file it was trained from: a changed definition is retrained by the next run.</summary>
    [JsonPropertyName("definition_hash")] public string DefinitionHash { get; set; } = "";

    [JsonPropertyName("promoted")] public bool Promoted { get; set; }

    /// <summary>Why the version was or was not promoted, in a sentence.</summary>
    [JsonPropertyName("decision")] public string Decision { get; set; } = "";

    [JsonPropertyName("libraries")] public Dictionary<string, string> Libraries { get; set; } = [];
}

/// <summary>
/// The trained models of a workspace, under <c>&lt;output&gt;/models/&lt;name&gt;/</c>: one folder per version
/// (<c>1/</c>, <c>2/</c>, …) holding <c>model.zip</c> (ML.NET) and <c>model.json</c> (<see cref="ModelRecord"/>),
/// and <c>current.json</c> naming the version that scores. A version is complete once its <c>model.json</c> is
/// written (after the zip), and it scores once <c>current.json</c> names it (written last), so a crash in between
/// leaves the previous model scoring.
/// </summary>
public sealed class ModelRegistry
{
    /// <summary>The registry's folder under a workspace's output.</summary>
    public const string Folder = "models";

    private const string ModelFile = "model.zip";
    private const string OnnxFile = "model.onnx";
    private const string RecordFile = "model.json";
    private const string CurrentFile = "current.json";

    internal static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    private readonly StorageLocation _root;

    public ModelRegistry(StorageLocation root) => _root = root;

    /// <summary>Every complete version of <paramref name="model"/>, oldest first.</summary>
    public async Task<IReadOnlyList<ModelRecord>> VersionsAsync(string model, CancellationToken cancellationToken = default)
    {
        var folder = _root.Child(model);
        var records = new List<ModelRecord>();
        foreach (var item in await folder.Store.ListAsync(folder.Key.TrimEnd('/') + "/", cancellationToken))
        {
            if (!item.Key.EndsWith("/" + RecordFile, StringComparison.Ordinal))
            {
                continue;
            }
            var bytes = await folder.Store.GetAsync(item.Key, cancellationToken);
            if (bytes is not null && JsonSerializer.Deserialize<ModelRecord>(bytes, Json) is { } record)
            {
                records.Add(record);
            }
        }
        records.Sort((a, b) => a.Version.CompareTo(b.Version));
        return records;
    }

    /// <summary>The models that have a folder in the registry.</summary>
    public async Task<IReadOnlyList<string>> ModelsAsync(CancellationToken cancellationToken = default)
    {
        var names = new SortedSet<string>(StringComparer.Ordinal);
        var prefix = _root.Key.Length == 0 ? "" : _root.Key.TrimEnd('/') + "/";
        foreach (var item in await _root.Store.ListAsync(prefix, cancellationToken))
        {
            var rest = item.Key[prefix.Length..];
            var slash = rest.IndexOf('/', StringComparison.Ordinal);
            if (slash > 0)
            {
                names.Add(rest[..slash]);
            }
        }
        return [.. names];
    }

    /// <summary>The version that scores, or null when none was ever promoted.</summary>
    public async Task<ModelRecord?> CurrentAsync(string model, CancellationToken cancellationToken = default)
    {
        var folder = _root.Child(model);
        var pointer = await folder.Store.GetAsync(folder.Child(CurrentFile).Key, cancellationToken);
        if (pointer is null)
        {
            return null;
        }
        var version = JsonSerializer.Deserialize<CurrentPointer>(pointer, Json)?.Version ?? 0;
        var bytes = await folder.Store.GetAsync(folder.Child(Version(version)).Child(RecordFile).Key, cancellationToken)
            ?? throw new EngineException($"{folder.Child(CurrentFile)}: names version {version}, which has no {RecordFile}");
        return JsonSerializer.Deserialize<ModelRecord>(bytes, Json);
    }

    /// <summary>Loads a version's model as an ML.NET transformer over a <see cref="FeatureDataView"/>.</summary>
    public async Task<ITransformer> LoadAsync(MLContext ml, ModelRecord record, CancellationToken cancellationToken = default)
    {
        var location = _root.Child(record.Model).Child(Version(record.Version)).Child(FileOf(record.Format));
        var bytes = await location.Store.GetAsync(location.Key, cancellationToken)
            ?? throw new EngineException($"{location}: missing: model '{record.Model}' version {record.Version} cannot be loaded");
        return record.Format == ExternalFormat.Onnx
            ? ExternalModels.LoadOnnx(ml, record.Model, bytes, record.OnnxInput ?? FeatureDataView.FeaturesColumn, record.ProbabilityColumn, record.Features.Count)
            : ExternalModels.LoadMlNet(ml, record.Model, bytes, location.ToString(), out _);
    }

    /// <summary>Stores a model file trained elsewhere as the next version, promoted (it was checked before).</summary>
    public async Task<ModelRecord> AddExternalAsync(ModelRecord record, byte[] model, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(record);
        record.External = true;
        return await StoreAsync(record, model, promote: true, cancellationToken);
    }

    private static string FileOf(ExternalFormat format) => format == ExternalFormat.Onnx ? OnnxFile : ModelFile;

    /// <summary>
    /// Stores a trained model as the next version. <paramref name="promote"/> decides whether it becomes the one that
    /// scores (<c>current.json</c> is rewritten last).
    /// </summary>
    public async Task<ModelRecord> AddAsync(MLContext ml, TrainedModel trained, ModelRecord record, bool promote, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(ml);
        ArgumentNullException.ThrowIfNull(trained);
        using var stream = new MemoryStream();
        ml.Model.Save(trained.Model, trained.InputSchema, stream);
        return await StoreAsync(record, stream.ToArray(), promote, cancellationToken);
    }

    /// <summary>
    /// Writes <paramref name="model"/> (in <see cref="ModelRecord.Format"/>) as the next version, then its record,
    /// then, when promoted, <c>current.json</c>: the order that keeps a half-written version from ever scoring.
    /// </summary>
    private async Task<ModelRecord> StoreAsync(ModelRecord record, byte[] model, bool promote, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(record);
        var versions = await VersionsAsync(record.Model, cancellationToken);
        record.Version = versions.Count == 0 ? 1 : versions[^1].Version + 1;
        record.Promoted = promote;
        record.Libraries = Libraries();
        var folder = _root.Child(record.Model).Child(Version(record.Version));
        await folder.Store.PutAsync(folder.Child(FileOf(record.Format)).Key, model, cancellationToken);
        await folder.Store.PutAsync(folder.Child(RecordFile).Key, JsonSerializer.SerializeToUtf8Bytes(record, Json), cancellationToken);
        if (promote)
        {
            await PointCurrentAtAsync(record, cancellationToken);
        }
        return record;
    }

    /// <summary>
    /// Makes a promoted version the one that scores, when <c>current.json</c> does not already name it: a run killed
    /// between storing a promoted version and rewriting the pointer finishes the job when it resumes.
    /// </summary>
    public async Task PointCurrentAtAsync(ModelRecord record, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(record);
        if (!record.Promoted)
        {
            throw new EngineException($"model '{record.Model}' version {record.Version} was not promoted; only a promoted version scores");
        }
        var pointer = _root.Child(record.Model).Child(CurrentFile);
        await pointer.Store.PutAsync(pointer.Key, JsonSerializer.SerializeToUtf8Bytes(new CurrentPointer(record.Version), Json), cancellationToken);
    }

    private static string Version(int version) => version.ToString(CultureInfo.InvariantCulture);

    /// <summary>The versions of the libraries a model was trained with.</summary>
    internal static Dictionary<string, string> Libraries()
    {
        static string Of(Assembly assembly) =>
            assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? assembly.GetName().Version?.ToString() ?? "";
        return new Dictionary<string, string>
        {
            ["engine"] = Of(typeof(ModelRegistry).Assembly),
            ["Microsoft.ML"] = Of(typeof(MLContext).Assembly),
            ["Microsoft.ML.LightGbm"] = Of(typeof(Microsoft.ML.Trainers.LightGbm.LightGbmBinaryTrainer).Assembly),
            ["Microsoft.ML.FastTree"] = Of(typeof(Microsoft.ML.Trainers.FastTree.FastTreeBinaryTrainer).Assembly),
            [".NET"] = Environment.Version.ToString(),
        };
    }

    private sealed record CurrentPointer([property: JsonPropertyName("version")] int Version);
}
