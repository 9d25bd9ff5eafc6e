using System.Text.Json;
using System.Text.Json.Serialization;

namespace Engine.Runs;

/// <summary>
/// <c>manifest.json</c>, written last under <c>&lt;output&gt;/runs/&lt;run_id&gt;/</c>: a run exists for readers
/// only once its manifest does, and the manifest never claims a stage that did not finish. Its field names are a
/// public contract (DESIGN.md); fields may be added, none renamed.
/// </summary>
public sealed class RunManifest
{
    public const string FileName = "manifest.json";

    [JsonPropertyName("run_id")] public string RunId { get; set; } = "";
    [JsonPropertyName("workspace")] public string Workspace { get; set; } = "";
    [JsonPropertyName("as_of")] public DateTimeOffset AsOf { get; set; }
    [JsonPropertyName("status")] public string Status { get; set; } = RunStatus.Succeeded;
    [JsonPropertyName("error")] public string? Error { get; set; }
    [JsonPropertyName("started_at")] public DateTimeOffset StartedAt { get; set; }
    [JsonPropertyName("finished_at")] public DateTimeOffset FinishedAt { get; set; }
    [JsonPropertyName("engine_version")] public string EngineVersion { get; set; } = "";

    /// <summary>How many times the run was started: more than 1 when it was resumed after a kill or a failure.</summary>
    [JsonPropertyName("attempts")] public int Attempts { get; set; } = 1;
    [JsonPropertyName("inputs")] public List<RunInput> Inputs { get; set; } = [];
    [JsonPropertyName("stages")] public List<StageRecord> Stages { get; set; } = [];

    /// <summary>The identity stage's figures (graph, profiles, refusals, histogram); absent when the stage did not run.</summary>
    [JsonPropertyName("identity")] public Identity.IdentityReport? Identity { get; set; }

    /// <summary>The training stage: per model it trained tonight (or tried to), why, the version and its decision.</summary>
    [JsonPropertyName("training")] public Scores.TrainingReport? Training { get; set; }

    /// <summary>The profiles stage's figures (rows read, rows without a profile, timings); absent when the stage did not run.</summary>
    [JsonPropertyName("profiles")] public Profiles.ProfilesReport? Profiles { get; set; }

    /// <summary>The scores stage: per model, the version that scored, training tonight, the distribution and its drift.</summary>
    [JsonPropertyName("scores")] public Scores.ScoresReport? Scores { get; set; }

    /// <summary>The segments stage: members and deltas per segment.</summary>
    [JsonPropertyName("segments")] public Segments.SegmentsReport? Segments { get; set; }

    public byte[] ToUtf8Json() => JsonSerializer.SerializeToUtf8Bytes(this, RunJsonContext.Default.RunManifest);

    public static RunManifest Parse(ReadOnlySpan<byte> json) => JsonSerializer.Deserialize(json, RunJsonContext.Default.RunManifest)
        ?? throw new EngineException("empty run manifest");
}

/// <summary>The persisted values of <see cref="RunManifest.Status"/> and <see cref="StageRecord.Status"/>.</summary>
public static class RunStatus
{
    public const string Succeeded = "succeeded";
    public const string Failed = "failed";
}

/// <summary>One source as the run read it.</summary>
public sealed class RunInput
{
    [JsonPropertyName("source")] public string Source { get; set; } = "";
    [JsonPropertyName("location")] public string Location { get; set; } = "";
    [JsonPropertyName("format")] public string Format { get; set; } = "";
    [JsonPropertyName("files")] public int Files { get; set; }
    [JsonPropertyName("rows")] public long Rows { get; set; }
    [JsonPropertyName("bytes")] public long Bytes { get; set; }
    [JsonPropertyName("min_ts")] public DateTimeOffset? MinTimestamp { get; set; }
    [JsonPropertyName("max_ts")] public DateTimeOffset? MaxTimestamp { get; set; }
    [JsonPropertyName("null_counts")] public Dictionary<string, long> NullCounts { get; set; } = [];
}

/// <summary>One stage's outcome: status, timing and counts.</summary>
public sealed class StageRecord
{
    [JsonPropertyName("name")] public string Name { get; set; } = "";
    [JsonPropertyName("status")] public string Status { get; set; } = RunStatus.Succeeded;
    [JsonPropertyName("started_at")] public DateTimeOffset StartedAt { get; set; }
    [JsonPropertyName("duration_ms")] public long DurationMs { get; set; }

    /// <summary>The attempt of the run that ran the stage (a resumed run keeps the records of the stages it reused).</summary>
    [JsonPropertyName("attempt")] public int Attempt { get; set; } = 1;
    [JsonPropertyName("rows_in")] public long RowsIn { get; set; }
    [JsonPropertyName("rows_out")] public long RowsOut { get; set; }
    [JsonPropertyName("counts")] public Dictionary<string, long> Counts { get; set; } = [];
    [JsonPropertyName("message")] public string? Message { get; set; }

    /// <summary>The process's peak resident set while the stage ran, in bytes (null where Linux's /proc is not there to tell).</summary>
    [JsonPropertyName("peak_memory_bytes")] public long? PeakMemoryBytes { get; set; }
}

[JsonSourceGenerationOptions(WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(RunManifest))]
internal sealed partial class RunJsonContext : JsonSerializerContext;
