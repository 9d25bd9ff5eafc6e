namespace Engine.Storage;

/// <summary>
/// A flat key space of immutable objects: a local directory or an S3 bucket. Keys use '/' separators and are
/// relative to the store's root. Datasets (folders of Parquet or CSV files) are built on top of it.
/// </summary>
/// <remarks>
/// Reads are random access (Parquet footers first, then column chunks), so <see cref="OpenRead"/> returns a
/// seekable stream; on S3 it turns each read into a ranged GET rather than downloading the object.
/// Writes go through <see cref="BeginWriteAsync"/>, which publishes a whole dataset at once or not at all.
/// </remarks>
public interface IObjectStore : IDisposable
{
    /// <summary>How a user would write <paramref name="key"/> on the command line (a path or an s3:// URI).</summary>
    string Describe(string key);

    /// <summary>Every object whose key starts with <paramref name="prefix"/> + '/', recursively, ordered by key.</summary>
    Task<IReadOnlyList<StoredObject>> ListAsync(string prefix, CancellationToken cancellationToken = default);

    /// <summary>The object's size, or null when it does not exist.</summary>
    Task<long?> GetSizeAsync(string key, CancellationToken cancellationToken = default);

    /// <summary>A seekable read-only stream over the object. Throws <see cref="DataException"/> when it is missing.</summary>
    Stream OpenRead(string key);

    /// <summary>The object as a local file, when the store is a local directory (native readers open it directly).</summary>
    bool TryGetLocalPath(string key, out string path);

    /// <summary>Writes a small object in one request (a manifest, a marker). Replaces an existing object atomically.</summary>
    Task PutAsync(string key, ReadOnlyMemory<byte> content, CancellationToken cancellationToken = default);

    /// <summary>Reads a small object whole; null when it does not exist.</summary>
    Task<byte[]?> GetAsync(string key, CancellationToken cancellationToken = default);

    /// <summary>Deletes the objects (missing ones are ignored).</summary>
    Task DeleteAsync(IReadOnlyList<string> keys, CancellationToken cancellationToken = default);

    /// <summary>
    /// Starts writing the files of the dataset at <paramref name="prefix"/>. Nothing becomes visible to readers
    /// until <see cref="IDatasetWrite.CommitAsync"/>; disposing an uncommitted write discards it.
    /// </summary>
    Task<IDatasetWrite> BeginWriteAsync(string prefix, CancellationToken cancellationToken = default);
}

/// <summary>One object in a store.</summary>
/// <param name="Key">The key, relative to the store's root.</param>
/// <param name="Size">The size in bytes.</param>
public readonly record struct StoredObject(string Key, long Size);

/// <summary>
/// The files of one dataset being written. Files are staged where readers cannot see them; <see cref="CommitAsync"/>
/// publishes all of them (replacing the previous version of the dataset) as one step.
/// </summary>
public interface IDatasetWrite : IAsyncDisposable
{
    /// <summary>The dataset's prefix in its store.</summary>
    string Prefix { get; }

    /// <summary>Creates a file of the dataset; <paramref name="relativePath"/> may contain '/' (partitions).</summary>
    Stream CreateFile(string relativePath);

    /// <summary>Publishes every file created so far, with <paramref name="manifest"/> written as <c>_dataset.json</c>.</summary>
    Task CommitAsync(DatasetManifest manifest, CancellationToken cancellationToken = default);
}
