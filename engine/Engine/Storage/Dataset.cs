namespace Engine.Storage;

/// <summary>The file format of a dataset.</summary>
public enum DataFormat
{
    /// <summary>Apache Parquet (the default).</summary>
    Parquet,
    /// <summary>RFC 4180 CSV with a header row, typed by the workspace's declared columns.</summary>
    Csv,
}

/// <summary>One data file of a dataset, with the hive-style partition values (<c>key=value</c> folders) above it.</summary>
/// <param name="Key">The key in the store.</param>
/// <param name="Size">The size in bytes.</param>
/// <param name="Partitions">Partition column values from the path, outermost first.</param>
public sealed record DataFile(string Key, long Size, IReadOnlyList<KeyValuePair<string, string>> Partitions);

/// <summary>
/// A dataset: a folder (or prefix) of Parquet or CSV files, hive-style partition folders allowed, or a single file.
/// When a committed <c>_dataset.json</c> is present its file list is authoritative; otherwise every visible data file
/// of the format counts. Names starting with '_' or '.' are hidden, as in Hive, Spark and Arrow.
/// </summary>
public sealed class Dataset
{
    private Dataset(StorageLocation location, DataFormat format, IReadOnlyList<DataFile> files)
    {
        Location = location;
        Format = format;
        Files = files;
    }

    /// <summary>Where the dataset lives.</summary>
    public StorageLocation Location { get; }

    /// <summary>The format of its files.</summary>
    public DataFormat Format { get; }

    /// <summary>Its files, ordered by key (so reads are deterministic).</summary>
    public IReadOnlyList<DataFile> Files { get; }

    /// <summary>Total bytes of its files.</summary>
    public long TotalBytes => Files.Sum(f => f.Size);

    /// <summary>The same dataset restricted to <paramref name="files"/> (a subset of <see cref="Files"/>), e.g. the files new since a previous read.</summary>
    public Dataset WithFiles(IReadOnlyList<DataFile> files) => new(Location, Format, files);

    /// <summary>The file extension of a format.</summary>
    public static string Extension(DataFormat format) => format == DataFormat.Csv ? ".csv" : ".parquet";

    /// <summary>Lists the dataset; throws <see cref="DataException"/> naming the location when there is nothing to read.</summary>
    public static async Task<Dataset> OpenAsync(StorageLocation location, DataFormat format = DataFormat.Parquet, CancellationToken cancellationToken = default)
    {
        var store = location.Store;
        var prefix = location.Key.TrimEnd('/');
        var extension = Extension(format);

        // A single file named directly.
        if (prefix.EndsWith(extension, StringComparison.OrdinalIgnoreCase) && await store.GetSizeAsync(prefix, cancellationToken) is { } size)
        {
            return new Dataset(location, format, [new DataFile(prefix, size, [])]);
        }

        var objects = await store.ListAsync(prefix, cancellationToken);
        // A dataset may sit at the store's root (prefix ""): its keys then have no leading folder.
        var folder = prefix.Length == 0 ? "" : prefix + "/";
        var manifestKey = folder + DatasetManifest.FileName;
        var manifestBytes = objects.Any(o => o.Key == manifestKey) ? await store.GetAsync(manifestKey, cancellationToken) : null;
        if (manifestBytes is not null)
        {
            var manifest = DatasetManifest.Parse(manifestBytes, store.Describe(manifestKey));
            var sizes = objects.ToDictionary(o => o.Key, o => o.Size, StringComparer.Ordinal);
            var listed = new List<DataFile>(manifest.Files.Count);
            foreach (var file in manifest.Files)
            {
                var key = folder + file.Path;
                if (!sizes.TryGetValue(key, out var fileSize))
                {
                    throw new DataException(store.Describe(key), $"listed in {DatasetManifest.FileName} but missing: the dataset is damaged; write it again");
                }
                listed.Add(new DataFile(key, fileSize, ParsePartitions(file.Path)));
            }
            return new Dataset(location, format, listed);
        }

        var files = new List<DataFile>();
        var pending = false;
        foreach (var item in objects)
        {
            var relative = item.Key[folder.Length..];
            if (relative.StartsWith(DatasetManifest.PendingMarkerPrefix, StringComparison.Ordinal))
            {
                pending = true;
            }
            if (IsHidden(relative) || !relative.EndsWith(extension, StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }
            files.Add(new DataFile(item.Key, item.Size, ParsePartitions(relative)));
        }
        if (pending)
        {
            throw new DataException(location.ToString(), "a write of this dataset has not committed (a pending marker is present and no _dataset.json): it is being written, or its writer failed; write it again");
        }
        if (files.Count == 0)
        {
            var what = objects.Count == 0 ? "dataset not found (no files at this location)" : $"no {extension} files found in the dataset";
            throw new DataException(location.ToString(), what);
        }
        return new Dataset(location, format, files);
    }

    private static bool IsHidden(string relativePath)
    {
        foreach (var segment in relativePath.Split('/'))
        {
            if (segment.StartsWith('_') || segment.StartsWith('.'))
            {
                return true;
            }
        }
        return false;
    }

    private static List<KeyValuePair<string, string>> ParsePartitions(string relativePath)
    {
        var result = new List<KeyValuePair<string, string>>();
        var segments = relativePath.Split('/');
        for (var i = 0; i < segments.Length - 1; i++)
        {
            var eq = segments[i].IndexOf('=', StringComparison.Ordinal);
            if (eq > 0)
            {
                result.Add(new(segments[i][..eq], Uri.UnescapeDataString(segments[i][(eq + 1)..])));
            }
        }
        return result;
    }
}
