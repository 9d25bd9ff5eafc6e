using System.Text.Json;
using System.Text.Json.Serialization;

namespace Engine.Storage;

/// <summary>
/// <c>_dataset.json</c>: the list of files that make up a committed dataset. Writing it is the commit point on
/// object stores that cannot rename (S3); readers that find it read exactly these files and nothing else, so the
/// leftovers of a failed or concurrent write are never mixed in.
/// </summary>
public sealed class DatasetManifest
{
    /// <summary>The name of the manifest object inside a dataset's prefix.</summary>
    public const string FileName = "_dataset.json";

    /// <summary>The prefix of the marker an uncommitted write leaves on stores that cannot rename.</summary>
    public const string PendingMarkerPrefix = "_dataset.pending-";

    [JsonPropertyName("format")]
    public string Format { get; set; } = "parquet";

    [JsonPropertyName("files")]
    public List<DatasetManifestFile> Files { get; set; } = [];

    /// <summary>Total rows across files.</summary>
    [JsonPropertyName("rows")]
    public long Rows { get; set; }

    public byte[] ToUtf8Json() => JsonSerializer.SerializeToUtf8Bytes(this, ManifestJsonContext.Default.DatasetManifest);

    public static DatasetManifest Parse(ReadOnlySpan<byte> json, string location)
    {
        try
        {
            return JsonSerializer.Deserialize(json, ManifestJsonContext.Default.DatasetManifest)
                ?? throw new DataException(location, "empty dataset manifest");
        }
        catch (JsonException e)
        {
            throw new DataException(location, $"unreadable dataset manifest: {e.Message}", e);
        }
    }
}

/// <summary>One file of a dataset, relative to the dataset's prefix.</summary>
public sealed class DatasetManifestFile
{
    [JsonPropertyName("path")]
    public string Path { get; set; } = "";

    [JsonPropertyName("rows")]
    public long Rows { get; set; }

    [JsonPropertyName("bytes")]
    public long Bytes { get; set; }
}

[JsonSourceGenerationOptions(WriteIndented = true)]
[JsonSerializable(typeof(DatasetManifest))]
internal sealed partial class ManifestJsonContext : JsonSerializerContext;
