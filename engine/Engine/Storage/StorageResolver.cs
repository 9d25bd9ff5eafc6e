namespace Engine.Storage;

/// <summary>A location a user typed (a local path or <c>s3://bucket/prefix</c>), resolved to a store and a key.</summary>
/// <param name="Store">The object store holding the location.</param>
/// <param name="Key">The key (or key prefix) inside the store.</param>
public readonly record struct StorageLocation(IObjectStore Store, string Key)
{
    /// <summary>The location as the user would write it.</summary>
    public override string ToString() => Store.Describe(Key);

    /// <summary>A location below this one.</summary>
    public StorageLocation Child(string relative)
        => new(Store, Key.Length == 0 ? relative : $"{Key.TrimEnd('/')}/{relative}");
}

/// <summary>Creates the store for one URI scheme (e.g. <c>s3</c>).</summary>
public interface IObjectStoreProvider
{
    /// <summary>The URI scheme this provider serves, without "://".</summary>
    string Scheme { get; }

    /// <summary>The store for <paramref name="bucketOrAuthority"/> (an S3 bucket).</summary>
    IObjectStore Open(string bucketOrAuthority);
}

/// <summary>
/// Turns user-written locations into stores. Local paths are always understood; other schemes are added by the
/// host (the command line adds <c>s3://</c>), so the core carries no cloud SDK. Stores are cached per bucket.
/// </summary>
public sealed class StorageResolver : IDisposable
{
    private readonly Dictionary<string, IObjectStoreProvider> _providers = new(StringComparer.OrdinalIgnoreCase);
    private readonly Dictionary<string, IObjectStore> _open = new(StringComparer.Ordinal);
    private readonly LocalObjectStore _fileSystem = new("/");
    private readonly Lock _lock = new();

    /// <summary>Adds a scheme.</summary>
    public StorageResolver Add(IObjectStoreProvider provider)
    {
        _providers[provider.Scheme] = provider;
        return this;
    }

    /// <summary>True when <paramref name="location"/> names a URI (scheme://…) rather than a local path.</summary>
    public static bool IsUri(string location) => location.Contains("://", StringComparison.Ordinal);

    /// <summary>
    /// Resolves <paramref name="location"/>; a relative local path is taken against <paramref name="baseDirectory"/>
    /// (the workspace folder) or the current directory.
    /// </summary>
    public StorageLocation Resolve(string location, string? baseDirectory = null)
    {
        if (string.IsNullOrWhiteSpace(location))
        {
            throw new EngineException("an empty storage location was given");
        }
        var separator = location.IndexOf("://", StringComparison.Ordinal);
        if (separator < 0 || location.StartsWith("file://", StringComparison.OrdinalIgnoreCase))
        {
            var path = separator < 0 ? location : location[(separator + 3)..];
            var full = Path.GetFullPath(path, baseDirectory ?? Directory.GetCurrentDirectory());
            return new StorageLocation(_fileSystem, full.TrimStart('/').TrimEnd('/'));
        }
        var scheme = location[..separator];
        if (!_providers.TryGetValue(scheme, out var provider))
        {
            throw new EngineException($"{location}: unsupported storage scheme '{scheme}://' (supported: local paths{string.Concat(_providers.Keys.Select(k => $", {k}://"))})");
        }
        var rest = location[(separator + 3)..];
        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        var bucket = slash < 0 ? rest : rest[..slash];
        var key = slash < 0 ? "" : rest[(slash + 1)..].Trim('/');
        if (bucket.Length == 0)
        {
            throw new EngineException($"{location}: no bucket named in the location");
        }
        lock (_lock)
        {
            var id = $"{scheme}://{bucket}";
            if (!_open.TryGetValue(id, out var store))
            {
                store = provider.Open(bucket);
                _open[id] = store;
            }
            return new StorageLocation(store, key);
        }
    }

    public void Dispose()
    {
        foreach (var store in _open.Values)
        {
            store.Dispose();
        }
        _open.Clear();
        _fileSystem.Dispose();
    }
}
