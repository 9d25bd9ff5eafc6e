using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Engine.Workspaces;

namespace Engine.Identity;

/// <summary>
/// <c>identity/_state.json</c>: what a later run needs to continue from this one's identity output without re-reading
/// history — the fingerprint of the rules that produced it, the next free profile id, and every source file the graph
/// has taken in. Written after the identity datasets, so a run that has it has them.
/// </summary>
public sealed class IdentityState
{
    public const string FileName = "_state.json";

    /// <summary>The layout version of the identity output; a run refuses to continue from another.</summary>
    public const int CurrentFormat = 1;

    [JsonPropertyName("format")] public int Format { get; set; } = CurrentFormat;
    [JsonPropertyName("run_id")] public string RunId { get; set; } = "";
    [JsonPropertyName("rules_fingerprint")] public string RulesFingerprint { get; set; } = "";
    [JsonPropertyName("next_profile_id")] public long NextProfileId { get; set; } = 1;
    [JsonPropertyName("identifiers")] public long Identifiers { get; set; }
    [JsonPropertyName("links")] public long Links { get; set; }
    [JsonPropertyName("sources")] public List<IdentitySourceState> Sources { get; set; } = [];

    public byte[] ToUtf8Json() => JsonSerializer.SerializeToUtf8Bytes(this, IdentityJsonContext.Default.IdentityState);

    public static IdentityState Parse(ReadOnlySpan<byte> json, string location)
    {
        try
        {
            return JsonSerializer.Deserialize(json, IdentityJsonContext.Default.IdentityState)
                ?? throw new DataException(location, "empty identity state");
        }
        catch (JsonException e)
        {
            throw new DataException(location, $"not a valid identity state: {e.Message}", e);
        }
    }

    /// <summary>
    /// A fingerprint of everything that decides which identifiers exist and how they link: every type's name, order,
    /// normaliser and options, limit, shared-value threshold and blocklist (the built-in defaults included, so a new
    /// engine version with a longer default list counts as a change), and which source columns carry which type.
    /// Comments and layout of the YAML do not count. A run whose fingerprint differs from the previous run's cannot
    /// continue that run's graph and rebuilds it from all history.
    /// </summary>
    public static string Fingerprint(IdentityRules rules, IEnumerable<SourceDefinition> sources)
    {
        ArgumentNullException.ThrowIfNull(rules);
        ArgumentNullException.ThrowIfNull(sources);
        var text = new StringBuilder();
        text.Append("format ").Append(CurrentFormat).Append('\n');
        foreach (var type in rules.Types)
        {
            text.Append("type ").Append(type.Name).Append(' ').Append(type.Kind)
                .Append(" limit ").Append(type.Limit?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "-")
                .Append(" shared_after ").Append(type.SharedAfter?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "-");
            switch (type.Normalizer)
            {
                case EmailNormalizer email:
                    text.Append(" plus ").Append(email.StripPlusTags).Append(" dots ").Append(email.GmailDots);
                    break;
                case PhoneNormalizer phone:
                    text.Append(" region ").Append(phone.DefaultRegion);
                    break;
            }
            text.Append('\n');
            foreach (var value in type.Blocklist.Values.Order(StringComparer.Ordinal))
            {
                text.Append(" block ").Append(value).Append('\n');
            }
            foreach (var pattern in type.Blocklist.Patterns.Order(StringComparer.Ordinal))
            {
                text.Append(" pattern ").Append(pattern).Append('\n');
            }
        }
        foreach (var source in sources.OrderBy(s => s.Name, StringComparer.Ordinal))
        {
            text.Append("source ").Append(source.Name).Append('\n');
            foreach (var (column, type) in source.Identifiers.OrderBy(p => p.Key, StringComparer.Ordinal))
            {
                text.Append(" column ").Append(column).Append(" -> ").Append(type);
                if (source.PhoneRegionColumns.TryGetValue(column, out var region))
                {
                    text.Append(" region ").Append(region);
                }
                text.Append('\n');
            }
            foreach (var (type, columns) in source.CompositeIdentifiers.OrderBy(p => p.Key, StringComparer.Ordinal))
            {
                text.Append(" composite ").Append(type).Append(" <- ").Append(string.Join(",", columns)).Append('\n');
            }
        }
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
    }
}

/// <summary>One source as the identity graph has taken it in: its location and the files read so far.</summary>
public sealed class IdentitySourceState
{
    [JsonPropertyName("name")] public string Name { get; set; } = "";
    [JsonPropertyName("location")] public string Location { get; set; } = "";
    [JsonPropertyName("files")] public List<IdentityFileState> Files { get; set; } = [];
}

/// <summary>A file the graph has read, by key and size (a file whose size changed has changed).</summary>
public sealed class IdentityFileState
{
    [JsonPropertyName("key")] public string Key { get; set; } = "";
    [JsonPropertyName("size")] public long Size { get; set; }
}

[JsonSourceGenerationOptions(WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(IdentityState))]
internal sealed partial class IdentityJsonContext : JsonSerializerContext;
