using System.Diagnostics;
using System.Text.Json.Serialization;
using Engine.Diagnostics;
using Engine.Storage;
using Engine.Workspaces;
using Microsoft.Extensions.Logging;

namespace Engine.Scores;

/// <summary>The training stage's figures in <c>manifest.json</c> (under <c>training</c>): one entry per model it trained or tried to.</summary>
public sealed class TrainingReport
{
    [JsonPropertyName("models")] public Dictionary<string, ModelTrainingReport> Models { get; set; } = [];
}

/// <summary>One model the training stage trained tonight, or tried to.</summary>
public sealed class ModelTrainingReport
{
    /// <summary>Why it trained: it had no version yet, or its definition changed.</summary>
    [JsonPropertyName("reason")] public string Reason { get; set; } = "";

    /// <summary>The version trained, promoted or not (null when training failed).</summary>
    [JsonPropertyName("trained_version")] public int? TrainedVersion { get; set; }

    [JsonPropertyName("decision")] public string? Decision { get; set; }

    [JsonPropertyName("validation_roc_auc")] public double? ValidationRocAuc { get; set; }

    /// <summary>Why it could not train (the version before, if any, goes on scoring).</summary>
    [JsonPropertyName("error")] public string? Error { get; set; }

    [JsonPropertyName("seconds")] public double Seconds { get; set; }

    /// <summary>Where the time went: building the examples, fitting, validating (importance included), and so on.</summary>
    [JsonPropertyName("timings_ms")] public Dictionary<string, long> TimingsMs { get; set; } = [];
}

/// <summary>
/// The training stage, after identity and before profiles: trains each model with a forecast label that has no
/// version yet, or whose definition changed since its latest version (<see cref="ModelTraining"/>). Such a model
/// builds its own profiles as of past cutoffs from the run's identity output and never reads tonight's profile
/// table, so it trains before that table exists: the two are never in memory together (at 10M people tonight's
/// table alone is several GiB). A model with a snapshot label trains on tonight's table and is left to the scores
/// stage. A model that cannot train is reported, and the scores stage does not try it again.
/// </summary>
public sealed class TrainingStage
{
    private readonly StorageResolver _storage;
    private readonly ILogger _logger;

    public TrainingStage(StorageResolver storage, ILogger logger)
    {
        _storage = storage;
        _logger = logger;
    }

    /// <summary>
    /// The run training. A version this run registered in an earlier attempt (it was killed before the stage was
    /// recorded) is reported as trained tonight and not trained again.
    /// </summary>
    public string? RunId { get; init; }

    /// <summary>The run's identity output already in memory (the identity stage ran in this process); null: read from <c>identity/</c>.</summary>
    internal Engine.Profiles.ProfileLookup? Lookup { get; init; }

    public async Task<TrainingReport> RunAsync(
        Workspace workspace, StorageLocation identity, DateTimeOffset asOf, ModelRegistry registry, int parallelism,
        IProgress<string>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(workspace);
        ArgumentNullException.ThrowIfNull(registry);
        var report = new TrainingReport();
        foreach (var model in workspace.Models.Where(m => m.Label?.HorizonDays is not null))
        {
            var versions = await registry.VersionsAsync(model.Name, cancellationToken);
            if (RunId is not null && versions is [.., var latest] && latest.RunId == RunId)
            {
                report.Models[model.Name] = new ModelTrainingReport
                {
                    Reason = "trained by an earlier attempt of this run",
                    TrainedVersion = latest.Version,
                    Decision = latest.Decision,
                    ValidationRocAuc = latest.Metrics.RocAuc,
                };
                continue;
            }
            if (ModelTraining.WhyTrain(workspace, model, versions) is not { } reason)
            {
                continue;
            }
            var clock = Stopwatch.StartNew();
            var entry = new ModelTrainingReport { Reason = reason };
            report.Models[model.Name] = entry;
            try
            {
                progress?.Report($"{model.Name}: training ({reason})");
                var outcome = await new ModelTraining(_storage, _logger) { RunId = RunId, Lookup = Lookup }.TrainAsync(
                    workspace, model, identity, null, asOf, registry, parallelism, progress, cancellationToken);
                entry.TrainedVersion = outcome.Record.Version;
                entry.Decision = outcome.Record.Decision;
                entry.ValidationRocAuc = outcome.Record.Metrics.RocAuc;
                entry.TimingsMs = outcome.TimingsMs;
            }
            catch (ModelException e)
            {
                entry.Error = e.Message;
                Log.ModelFailed(_logger, e.Message);
            }
            entry.Seconds = clock.Elapsed.TotalSeconds;
        }
        return report;
    }
}
