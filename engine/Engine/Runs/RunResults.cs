using System.Text.Json;
using System.Text.Json.Serialization;
using Engine.Storage;

namespace Engine.Runs;

/// <summary>
/// <c>run_results.json</c> beside a run's manifest, in the manner of dbt's artifact of the same name: one entry per
/// stage with its status, timing, rows and message, for schedulers and dashboards that want the outcome without the
/// manifest's detail. Written when the run ends, whether it succeeded or failed; a delivery run after the stages
/// (<c>engine run --deliver</c>) adds its entry. Field names are a public contract.
/// </summary>
public sealed class RunResults
{
    public const string FileName = "run_results.json";

    [JsonPropertyName("run_id")] public string RunId { get; set; } = "";
    [JsonPropertyName("status")] public string Status { get; set; } = RunStatus.Succeeded;
    [JsonPropertyName("as_of")] public DateTimeOffset AsOf { get; set; }
    [JsonPropertyName("generated_at")] public DateTimeOffset GeneratedAt { get; set; }
    [JsonPropertyName("elapsed_seconds")] public double ElapsedSeconds { get; set; }
    [JsonPropertyName("results")] public List<StageResult> Results { get; set; } = [];

    /// <summary>The results of the stages recorded in <paramref name="manifest"/>.</summary>
    public static RunResults From(RunManifest manifest)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        var results = new RunResults
        {
            RunId = manifest.RunId,
            Status = manifest.Status,
            AsOf = manifest.AsOf,
            GeneratedAt = manifest.FinishedAt,
            ElapsedSeconds = Math.Round((manifest.FinishedAt - manifest.StartedAt).TotalSeconds, 3),
        };
        foreach (var stage in manifest.Stages)
        {
            results.Results.Add(new StageResult
            {
                Stage = stage.Name,
                Status = stage.Status,
                StartedAt = stage.StartedAt,
                DurationSeconds = stage.DurationMs / 1000.0,
                RowsIn = stage.RowsIn,
                RowsOut = stage.RowsOut,
                Message = stage.Message,
                PeakMemoryBytes = stage.PeakMemoryBytes,
            });
        }
        return results;
    }

    /// <summary>
    /// Adds a stage run after the run itself (delivery), updating the overall status and time. An entry of the same
    /// stage (a delivery resumed after a kill or a failure) is replaced: the stage's outcome is the latest attempt's.
    /// </summary>
    public void Add(StageResult result, DateTimeOffset finishedAt)
    {
        ArgumentNullException.ThrowIfNull(result);
        var elapsed = ElapsedSeconds;
        foreach (var earlier in Results.Where(r => r.Stage == result.Stage).ToList())
        {
            Results.Remove(earlier);
            elapsed -= earlier.DurationSeconds;
        }
        Results.Add(result);
        Status = Results.TrueForAll(r => r.Status == RunStatus.Succeeded) ? RunStatus.Succeeded : RunStatus.Failed;
        ElapsedSeconds = Math.Round(elapsed + result.DurationSeconds, 3);
        GeneratedAt = finishedAt;
    }

    public byte[] ToUtf8Json() => JsonSerializer.SerializeToUtf8Bytes(this, RunResultsJsonContext.Default.RunResults);

    public static RunResults Parse(ReadOnlySpan<byte> json) => JsonSerializer.Deserialize(json, RunResultsJsonContext.Default.RunResults)
        ?? throw new EngineException("empty run_results.json");

    /// <summary>Writes the file into the run's folder (atomically: the store writes whole objects).</summary>
    public Task WriteAsync(StorageLocation run, CancellationToken cancellationToken)
    {
        var location = run.Child(FileName);
        return location.Store.PutAsync(location.Key, ToUtf8Json(), cancellationToken);
    }
}

/// <summary>One stage's entry in <see cref="RunResults"/>.</summary>
public sealed class StageResult
{
    [JsonPropertyName("stage")] public string Stage { get; set; } = "";
    [JsonPropertyName("status")] public string Status { get; set; } = RunStatus.Succeeded;
    [JsonPropertyName("started_at")] public DateTimeOffset StartedAt { get; set; }
    [JsonPropertyName("duration_seconds")] public double DurationSeconds { get; set; }
    [JsonPropertyName("rows_in")] public long RowsIn { get; set; }
    [JsonPropertyName("rows_out")] public long RowsOut { get; set; }
    [JsonPropertyName("message")] public string? Message { get; set; }

    /// <summary>The process's peak resident set while the stage ran, in bytes; null where not measured.</summary>
    [JsonPropertyName("peak_memory_bytes")] public long? PeakMemoryBytes { get; set; }
}

[JsonSourceGenerationOptions(WriteIndented = true)]
[JsonSerializable(typeof(RunResults))]
internal sealed partial class RunResultsJsonContext : JsonSerializerContext;
