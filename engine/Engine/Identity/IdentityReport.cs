using System.Text.Json.Serialization;

namespace Engine.Identity;

/// <summary>
/// What the identity stage did, as recorded under <c>identity</c> in the run's <c>manifest.json</c>: how it ran, the
/// size of the graph, the profiles and how their ids moved, the cluster-size histogram, and every link or value it
/// refused, by reason. Field names are part of the manifest's public contract.
/// </summary>
public sealed class IdentityReport
{
    /// <summary><c>full</c> (every file of every source read) or <c>incremental</c> (only files new since the previous run).</summary>
    [JsonPropertyName("mode")] public string Mode { get; set; } = IdentityModes.Full;

    /// <summary>Why this mode: first run, --full-refresh, rules changed, files changed, or new files only.</summary>
    [JsonPropertyName("mode_reason")] public string ModeReason { get; set; } = "";

    /// <summary>The run whose identity output this one continued or took its profile ids from.</summary>
    [JsonPropertyName("previous_run_id")] public string? PreviousRunId { get; set; }

    [JsonPropertyName("files_read")] public int FilesRead { get; set; }
    [JsonPropertyName("rows_read")] public long RowsRead { get; set; }

    /// <summary>Distinct identifiers in the graph (previous ones included in an incremental run).</summary>
    [JsonPropertyName("identifiers")] public long Identifiers { get; set; }

    /// <summary>Identifiers first seen in this run.</summary>
    [JsonPropertyName("identifiers_new")] public long NewIdentifiers { get; set; }

    [JsonPropertyName("identifiers_by_type")] public Dictionary<string, long> IdentifiersByType { get; set; } = [];

    /// <summary>Distinct links (edges) between identifiers.</summary>
    [JsonPropertyName("edges")] public long Edges { get; set; }

    /// <summary>Links that joined two clusters.</summary>
    [JsonPropertyName("unions")] public long Unions { get; set; }

    /// <summary>Profiles (clusters holding at least one identifier that is not a shared value).</summary>
    [JsonPropertyName("profiles")] public long Profiles { get; set; }

    [JsonPropertyName("profiles_kept")] public long ProfilesKept { get; set; }
    [JsonPropertyName("profiles_created")] public long ProfilesCreated { get; set; }
    [JsonPropertyName("profiles_merged")] public long ProfilesMerged { get; set; }
    [JsonPropertyName("profiles_split")] public long ProfilesSplit { get; set; }
    [JsonPropertyName("profiles_retired")] public long ProfilesRetired { get; set; }

    /// <summary>Identifiers in the largest profile.</summary>
    [JsonPropertyName("largest_profile")] public long LargestProfile { get; set; }

    /// <summary>Profiles by identifier count, in power-of-two buckets: 1, 2, 3-4, 5-8, …</summary>
    [JsonPropertyName("profile_sizes")] public List<SizeBucket> ProfileSizes { get; set; } = [];

    /// <summary>Links refused, by reason: <c>limit:&lt;type&gt;</c> (the union would break the type's per-profile limit) or <c>shared:&lt;type&gt;</c> (an endpoint is a shared value of that type).</summary>
    [JsonPropertyName("links_refused")] public Dictionary<string, long> LinksRefused { get; set; } = [];

    /// <summary>Values that linked nothing, per type and reason (<c>empty</c>, <c>invalid</c>, <c>too_long</c>, <c>blocked</c>); counted per occurrence.</summary>
    [JsonPropertyName("values_skipped")] public Dictionary<string, Dictionary<string, long>> ValuesSkipped { get; set; } = [];

    /// <summary>Distinct values found shared (linked to more than <c>shared_after</c> values of one higher-priority type), per type.</summary>
    [JsonPropertyName("shared_values")] public Dictionary<string, long> SharedValues { get; set; } = [];

    /// <summary>Milliseconds per step: read, stitch, assign, write.</summary>
    [JsonPropertyName("timings_ms")] public Dictionary<string, long> TimingsMs { get; set; } = [];
}

/// <summary>One bucket of the profile-size histogram: profiles with between <see cref="Min"/> and <see cref="Max"/> identifiers.</summary>
public sealed class SizeBucket
{
    [JsonPropertyName("min")] public long Min { get; set; }
    [JsonPropertyName("max")] public long Max { get; set; }
    [JsonPropertyName("profiles")] public long Profiles { get; set; }
}

/// <summary>The persisted values of <see cref="IdentityReport.Mode"/>.</summary>
public static class IdentityModes
{
    public const string Full = "full";
    public const string Incremental = "incremental";
}
