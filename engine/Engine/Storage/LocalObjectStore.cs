namespace Engine.Storage;

/// <summary>
/// A directory on the local file system as an object store: the embedded default. Dataset writes are staged in a
/// hidden sibling directory and published with a directory rename, which is atomic on one file system.
/// </summary>
public sealed class LocalObjectStore : IObjectStore
{
    private readonly string _root;

    /// <summary>A store rooted at <paramref name="root"/>; keys may also be absolute paths when the root is "/".</summary>
    public LocalObjectStore(string root) => _root = Path.GetFullPath(root);

    /// <summary>The directory every key is relative to.</summary>
    public string Root => _root;

    public string Describe(string key) => FullPath(key);

    private string FullPath(string key) => key.Length == 0 ? _root : Path.Combine(_root, key);

    public Task<IReadOnlyList<StoredObject>> ListAsync(string prefix, CancellationToken cancellationToken = default)
    {
        var dir = FullPath(prefix);
        var result = new List<StoredObject>();
        if (Directory.Exists(dir))
        {
            foreach (var file in Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories))
            {
                var key = Path.GetRelativePath(_root, file).Replace('\\', '/');
                result.Add(new StoredObject(key, new FileInfo(file).Length));
            }
        }
        result.Sort(static (a, b) => string.CompareOrdinal(a.Key, b.Key));
        return Task.FromResult<IReadOnlyList<StoredObject>>(result);
    }

    public Task<long?> GetSizeAsync(string key, CancellationToken cancellationToken = default)
    {
        var info = new FileInfo(FullPath(key));
        return Task.FromResult(info.Exists ? info.Length : (long?)null);
    }

    public Stream OpenRead(string key)
    {
        var path = FullPath(key);
        try
        {
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.RandomAccess);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new DataException(path, "file not found", e);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new DataException(path, "permission denied", e);
        }
    }

    public bool TryGetLocalPath(string key, out string path)
    {
        path = FullPath(key);
        return true;
    }

    public async Task PutAsync(string key, ReadOnlyMemory<byte> content, CancellationToken cancellationToken = default)
    {
        // Write beside, then rename over: a reader sees the old object or the new one, never a torn one.
        var path = FullPath(key);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temp = Path.Combine(Path.GetDirectoryName(path)!, $".{Path.GetFileName(path)}{TempMarker}{Guid.NewGuid():N}");
        try
        {
            await using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 4096, FileOptions.WriteThrough))
            {
                await stream.WriteAsync(content, cancellationToken);
            }
            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp))
            {
                File.Delete(temp);
            }
        }
    }

    public async Task<byte[]?> GetAsync(string key, CancellationToken cancellationToken = default)
    {
        var path = FullPath(key);
        return File.Exists(path) ? await File.ReadAllBytesAsync(path, cancellationToken) : null;
    }

    public Task DeleteAsync(IReadOnlyList<string> keys, CancellationToken cancellationToken = default)
    {
        foreach (var key in keys)
        {
            try
            {
                File.Delete(FullPath(key));
            }
            catch (DirectoryNotFoundException)
            {
                // File.Delete ignores a missing file but not a missing folder; both mean "already gone".
            }
        }
        return Task.CompletedTask;
    }

    // The hidden names of writes in progress: a temporary object, a dataset's staging folder, a replaced version.
    private const string TempMarker = ".tmp-";
    private const string StagingMarker = ".staging-";
    private const string OldMarker = ".old-";

    /// <summary>
    /// Removes under <paramref name="prefix"/> what writers killed mid-write left behind (temporary objects, staging
    /// folders, replaced versions), all hidden from readers. Only for a caller that knows no live writer owns them.
    /// </summary>
    public void RemoveAbandonedWrites(string prefix)
    {
        var folder = FullPath(prefix);
        if (Directory.Exists(folder))
        {
            Remove(folder);
        }

        static void Remove(string folder)
        {
            foreach (var entry in Directory.GetFileSystemEntries(folder))
            {
                var name = Path.GetFileName(entry);
                var abandoned = name.StartsWith('.') && (name.Contains(StagingMarker, StringComparison.Ordinal) || name.Contains(OldMarker, StringComparison.Ordinal) || name.Contains(TempMarker, StringComparison.Ordinal));
                if (Directory.Exists(entry))
                {
                    if (abandoned)
                    {
                        Directory.Delete(entry, recursive: true);
                    }
                    else
                    {
                        Remove(entry);
                    }
                }
                else if (abandoned)
                {
                    File.Delete(entry);
                }
            }
        }
    }

    public Task<IDatasetWrite> BeginWriteAsync(string prefix, CancellationToken cancellationToken = default)
        => Task.FromResult<IDatasetWrite>(new LocalDatasetWrite(prefix, FullPath(prefix)));

    public void Dispose() { }

    private sealed class LocalDatasetWrite : IDatasetWrite
    {
        private readonly string _target;
        private readonly string _staging;
        private bool _committed;

        public LocalDatasetWrite(string prefix, string target)
        {
            Prefix = prefix;
            _target = Path.TrimEndingDirectorySeparator(target);
            var parent = Path.GetDirectoryName(_target)!;
            Directory.CreateDirectory(parent);
            // Hidden (dot) sibling on the same file system, so the final rename is atomic and readers skip it.
            _staging = Path.Combine(parent, $".{Path.GetFileName(_target)}{StagingMarker}{Guid.NewGuid():N}");
            Directory.CreateDirectory(_staging);
        }

        public string Prefix { get; }

        public Stream CreateFile(string relativePath)
        {
            var path = Path.Combine(_staging, relativePath);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            return new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
        }

        public async Task CommitAsync(DatasetManifest manifest, CancellationToken cancellationToken = default)
        {
            await File.WriteAllBytesAsync(Path.Combine(_staging, DatasetManifest.FileName), manifest.ToUtf8Json(), cancellationToken);
            string? old = null;
            if (Directory.Exists(_target))
            {
                old = Path.Combine(Path.GetDirectoryName(_target)!, $".{Path.GetFileName(_target)}{OldMarker}{Guid.NewGuid():N}");
                Directory.Move(_target, old);
            }
            else if (File.Exists(_target))
            {
                throw new DataException(_target, "a file is in the way of the dataset folder");
            }
            Directory.Move(_staging, _target);
            _committed = true;
            if (old is not null)
            {
                Directory.Delete(old, recursive: true);
            }
        }

        public ValueTask DisposeAsync()
        {
            if (!_committed && Directory.Exists(_staging))
            {
                Directory.Delete(_staging, recursive: true);
            }
            return ValueTask.CompletedTask;
        }
    }
}
