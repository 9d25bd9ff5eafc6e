using System.Globalization;
using System.Text;

namespace Engine.Storage.S3;

/// <summary>
/// The commit protocol for a dataset on S3, which cannot rename:
/// <list type="number">
/// <item>Begin: PUT <c>&lt;prefix&gt;/_dataset.pending-&lt;writeId&gt;</c>, so readers that find files but no manifest know
/// a write is under way (or died) instead of reading half a dataset.</item>
/// <item>Each file is staged in a local temporary file and uploaded when its stream is closed, under a name that
/// carries the write id (<c>part-00000-&lt;writeId&gt;.parquet</c>), so it never overwrites a file of the committed version.</item>
/// <item>Commit: PUT <c>&lt;prefix&gt;/_dataset.json</c> listing exactly the uploaded files. This single PUT is the commit
/// point: readers trust the manifest and read nothing else, so before it they see the old version, after it the new.</item>
/// <item>Clean-up: delete what the new manifest does not list (older versions' files, this write's marker). Files of
/// other writes still in progress are kept; the next commit retries whatever could not be deleted.</item>
/// </list>
/// Disposing an uncommitted write deletes what it uploaded and its marker.
/// </summary>
internal sealed class S3DatasetWrite : IDatasetWrite
{
    private readonly S3ObjectStore _store;
    private readonly Dictionary<string, string> _uploaded = new(StringComparer.Ordinal);
    private readonly HashSet<string> _created = new(StringComparer.Ordinal);
    private readonly List<S3UploadStream> _open = [];
    private readonly Lock _lock = new();
    private bool _committed;
    private bool _disposed;

    public S3DatasetWrite(S3ObjectStore store, string prefix)
    {
        if (prefix.Length == 0)
        {
            // The commit deletes every object under the prefix that the manifest does not list: never a whole bucket.
            throw new EngineException($"{store.Describe("")}: a dataset cannot be written at the root of a bucket; name a prefix (s3://{store.Bucket}/name)");
        }
        _store = store;
        Prefix = prefix;
        WriteId = Guid.NewGuid().ToString("N")[..16];
        MarkerKey = $"{prefix}/{DatasetManifest.PendingMarkerPrefix}{WriteId}";
    }

    public string Prefix { get; }

    /// <summary>The id inserted into the names of this write's files and its pending marker.</summary>
    public string WriteId { get; }

    /// <summary>The key of this write's pending marker.</summary>
    public string MarkerKey { get; }

    internal S3ObjectStore Store => _store;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var marker = Encoding.UTF8.GetBytes($"{{\"started\":\"{DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture)}\"}}");
        await _store.PutAsync(MarkerKey, marker, cancellationToken);
    }

    public Stream CreateFile(string relativePath)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed || _committed, this);
            ValidateRelativePath(relativePath);
            if (!_created.Add(relativePath))
            {
                throw new InvalidOperationException($"{_store.Describe(Prefix)}: file '{relativePath}' was already created in this write");
            }
            var stream = new S3UploadStream(this, relativePath, $"{Prefix}/{UniqueName(relativePath, WriteId)}");
            _open.Add(stream);
            return stream;
        }
    }

    private void ValidateRelativePath(string relativePath)
    {
        var segments = relativePath.Split('/');
        foreach (var segment in segments)
        {
            if (segment.Length == 0 || segment == "." || segment == "..")
            {
                throw new ArgumentException($"{_store.Describe(Prefix)}: '{relativePath}' is not a relative file path inside the dataset", nameof(relativePath));
            }
        }
    }

    /// <summary>Inserts the write id before the file name's first extension: <c>a=1/part-00000.parquet</c> → <c>a=1/part-00000-id.parquet</c>.</summary>
    internal static string UniqueName(string relativePath, string writeId)
    {
        var slash = relativePath.LastIndexOf('/');
        var folder = relativePath[..(slash + 1)];
        var name = relativePath[(slash + 1)..];
        var dot = name.IndexOf('.', 1);
        return dot < 0 ? $"{folder}{name}-{writeId}" : $"{folder}{name[..dot]}-{writeId}{name[dot..]}";
    }

    /// <summary>Called by a file's stream once its upload has finished.</summary>
    internal void Uploaded(S3UploadStream stream)
    {
        lock (_lock)
        {
            _uploaded[stream.RelativePath] = stream.Key;
            _open.Remove(stream);
        }
    }

    /// <summary>Called by a file's stream when it was discarded without upload.</summary>
    internal void Discarded(S3UploadStream stream)
    {
        lock (_lock)
        {
            _open.Remove(stream);
        }
    }

    public async Task CommitAsync(DatasetManifest manifest, CancellationToken cancellationToken = default)
    {
        DatasetManifest committed;
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed || _committed, this);
            if (_open.Count > 0)
            {
                throw new InvalidOperationException($"{_store.Describe(Prefix)}: file '{_open[0].RelativePath}' is still open; close every file before committing");
            }
            committed = new DatasetManifest { Format = manifest.Format, Rows = manifest.Rows };
            foreach (var file in manifest.Files)
            {
                if (!_uploaded.TryGetValue(file.Path, out var key))
                {
                    throw new InvalidOperationException($"{_store.Describe(Prefix)}: the manifest lists '{file.Path}', which this write did not create");
                }
                committed.Files.Add(new DatasetManifestFile { Path = key[(Prefix.Length + 1)..], Rows = file.Rows, Bytes = file.Bytes });
            }
        }

        // The commit point.
        await _store.PutAsync($"{Prefix}/{DatasetManifest.FileName}", committed.ToUtf8Json(), cancellationToken);
        _committed = true;

        await RemoveUnlistedAsync(committed, cancellationToken);
    }

    private async Task RemoveUnlistedAsync(DatasetManifest committed, CancellationToken cancellationToken)
    {
        try
        {
            var keep = new HashSet<string>(StringComparer.Ordinal) { $"{Prefix}/{DatasetManifest.FileName}" };
            foreach (var file in committed.Files)
            {
                keep.Add($"{Prefix}/{file.Path}");
            }
            var objects = await _store.ListDetailedAsync(Prefix, cancellationToken);

            // Writes that started recently may still be running: their marker and files stay.
            var markerPrefix = $"{Prefix}/{DatasetManifest.PendingMarkerPrefix}";
            var active = new List<string>();
            var cutoff = DateTime.UtcNow - _store.AbandonedWriteAge;
            foreach (var item in objects)
            {
                if (item.Key.StartsWith(markerPrefix, StringComparison.Ordinal) && item.Key != MarkerKey
                    && (item.LastModified is not { } modified || modified.ToUniversalTime() > cutoff))
                {
                    keep.Add(item.Key);
                    active.Add("-" + item.Key[markerPrefix.Length..]);
                }
            }

            var remove = new List<string>();
            foreach (var item in objects)
            {
                if (!keep.Contains(item.Key) && !BelongsToActiveWrite(item.Key, active))
                {
                    remove.Add(item.Key);
                }
            }
            if (remove.Count > 0)
            {
                await _store.DeleteAsync(remove, cancellationToken);
            }
        }
        catch (DataException)
        {
            // Committed already: readers follow the manifest, so leftovers are invisible; the next commit removes them.
        }
    }

    private static bool BelongsToActiveWrite(string key, List<string> activeIds)
    {
        var name = key[(key.LastIndexOf('/') + 1)..];
        foreach (var id in activeIds)
        {
            if (name.Contains(id, StringComparison.Ordinal))
            {
                return true;
            }
        }
        return false;
    }

    public async ValueTask DisposeAsync()
    {
        S3UploadStream[] open;
        List<string> uploaded;
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }
            _disposed = true;
            open = [.. _open];
            uploaded = [.. _uploaded.Values];
        }
        foreach (var stream in open)
        {
            stream.Discard();
        }
        if (_committed)
        {
            return;
        }
        uploaded.Add(MarkerKey);
        try
        {
            await _store.DeleteAsync(uploaded);
        }
        catch (DataException)
        {
            // Best effort: the marker (if it survived) tells readers this write did not commit.
        }
    }
}

/// <summary>
/// A file of a dataset write: written to a local temporary file, uploaded to its final key when closed (one PUT, or a
/// multipart upload above the store's threshold). Closing it is where an upload failure surfaces.
/// </summary>
internal sealed class S3UploadStream : Stream
{
    private readonly S3DatasetWrite _write;
    private readonly string _tempPath;
    private readonly FileStream _file;
    private bool _closed;

    public S3UploadStream(S3DatasetWrite write, string relativePath, string key)
    {
        _write = write;
        RelativePath = relativePath;
        Key = key;
        _tempPath = Path.Combine(Path.GetTempPath(), $"engine-s3-{write.WriteId}-{Guid.NewGuid():N}.part");
        _file = new FileStream(_tempPath, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.Read, 1 << 16);
    }

    /// <summary>The path the dataset writer asked for.</summary>
    public string RelativePath { get; }

    /// <summary>The key the file is uploaded to.</summary>
    public string Key { get; }

    public override bool CanRead => false;

    public override bool CanSeek => !_closed;

    public override bool CanWrite => !_closed;

    public override long Length => _file.Length;

    public override long Position
    {
        get => _file.Position;
        set => _file.Position = value;
    }

    public override void Flush() => _file.Flush();

    public override long Seek(long offset, SeekOrigin origin) => _file.Seek(offset, origin);

    public override void SetLength(long value) => _file.SetLength(value);

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("a dataset file being written cannot be read");

    public override void Write(byte[] buffer, int offset, int count) => _file.Write(buffer, offset, count);

    public override void Write(ReadOnlySpan<byte> buffer) => _file.Write(buffer);

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => _file.WriteAsync(buffer, offset, count, cancellationToken);

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        => _file.WriteAsync(buffer, cancellationToken);

    /// <summary>Closes and deletes the temporary file without uploading it.</summary>
    public void Discard()
    {
        if (_closed)
        {
            return;
        }
        _closed = true;
        _file.Dispose();
        DeleteTemp();
        _write.Discarded(this);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing && !_closed)
        {
            // Stream.Dispose is synchronous; blocking on the upload is safe without a synchronization context.
            UploadAsync().GetAwaiter().GetResult();
        }
        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        if (!_closed)
        {
            await UploadAsync();
        }
        await base.DisposeAsync();
    }

    private async Task UploadAsync()
    {
        _closed = true;
        var succeeded = false;
        try
        {
            await _file.FlushAsync();
            var store = _write.Store;
            if (_file.Length > store.Options.MultipartThreshold)
            {
                await _file.DisposeAsync();
                await store.PutMultipartAsync(Key, _tempPath, CancellationToken.None);
            }
            else
            {
                _file.Position = 0;
                await store.PutStreamAsync(Key, _file, CancellationToken.None);
                await _file.DisposeAsync();
            }
            succeeded = true;
        }
        finally
        {
            await _file.DisposeAsync();
            DeleteTemp();
            if (succeeded)
            {
                _write.Uploaded(this);
            }
            else
            {
                _write.Discarded(this);
            }
        }
    }

    private void DeleteTemp()
    {
        try
        {
            File.Delete(_tempPath);
        }
        catch (IOException)
        {
            // A temp file that cannot be deleted now is left to the OS's temp clean-up.
        }
    }
}
