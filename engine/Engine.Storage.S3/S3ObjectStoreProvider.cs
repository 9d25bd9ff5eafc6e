namespace Engine.Storage.S3;

/// <summary>
/// Serves <c>s3://bucket/prefix</c> locations for a <see cref="StorageResolver"/>. Options are read from the
/// environment (<see cref="S3StoreOptions.FromEnvironment()"/>) when the first bucket is opened, unless given.
/// </summary>
public sealed class S3ObjectStoreProvider : IObjectStoreProvider
{
    private readonly Lazy<S3StoreOptions> _options;

    /// <summary>A provider configured from the standard AWS environment variables and shared files.</summary>
    public S3ObjectStoreProvider()
        => _options = new Lazy<S3StoreOptions>(S3StoreOptions.FromEnvironment);

    /// <summary>A provider with explicit options (tests, hosts with their own configuration).</summary>
    public S3ObjectStoreProvider(S3StoreOptions options)
        => _options = new Lazy<S3StoreOptions>(options);

    public string Scheme => "s3";

    /// <summary>The options stores are opened with.</summary>
    public S3StoreOptions Options => _options.Value;

    public IObjectStore Open(string bucketOrAuthority) => new S3ObjectStore(bucketOrAuthority, _options.Value);
}
