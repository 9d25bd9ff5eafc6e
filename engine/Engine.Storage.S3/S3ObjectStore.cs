using System.Runtime.InteropServices;
using Amazon;
using Amazon.Runtime;
using Amazon.Runtime.CredentialManagement;
using Amazon.S3;
using Amazon.S3.Model;

namespace Engine.Storage.S3;

/// <summary>
/// One bucket of an S3-compatible store (AWS S3, MinIO, R2, s3rver) as an <see cref="IObjectStore"/>.
/// Reads are ranged GETs behind a seekable stream with a small block cache; dataset writes upload files under
/// unique names and publish them by writing <c>_dataset.json</c> last (S3 cannot rename).
/// </summary>
/// <remarks>
/// The SDK is async-only on .NET; the synchronous stream methods block on it, which is safe here because the engine
/// has no synchronization context. Counters (<see cref="RequestCount"/>, <see cref="BytesFetched"/>) let tests and
/// benchmarks see how much a read really cost.
/// </remarks>
public sealed class S3ObjectStore : IObjectStore
{
    private readonly IAmazonS3 _client;
    private readonly bool _ownsClient;
    private readonly bool _compatibleMode;
    private long _requests;
    private long _gets;
    private long _bytesFetched;
    private long _bytesUploaded;

    /// <summary>A store over <paramref name="bucket"/> configured by <paramref name="options"/>.</summary>
    public S3ObjectStore(string bucket, S3StoreOptions options)
        : this(bucket, options, CreateClient(options), ownsClient: true)
    {
    }

    /// <summary>A store over <paramref name="bucket"/> using an existing client (which the store does not dispose).</summary>
    public S3ObjectStore(string bucket, IAmazonS3 client, S3StoreOptions? options = null)
        : this(bucket, options ?? new S3StoreOptions(), client, ownsClient: false)
    {
    }

    private S3ObjectStore(string bucket, S3StoreOptions options, IAmazonS3 client, bool ownsClient)
    {
        if (string.IsNullOrWhiteSpace(bucket))
        {
            throw new EngineException("an S3 location needs a bucket name (s3://bucket/prefix)");
        }
        if (options.ReadBlockSize <= 0 || options.DirectReadSize <= 0 || options.MultipartPartSize < 1024 * 1024 || options.MultipartThreshold < options.MultipartPartSize)
        {
            throw new ArgumentException("read block and direct read sizes must be positive, multipart part size at least 1 MiB and no larger than the multipart threshold", nameof(options));
        }
        Bucket = bucket;
        Options = options;
        _client = client;
        _ownsClient = ownsClient;
        // S3-compatible servers often lack the newest protocol features (aws-chunked bodies, trailing checksums).
        _compatibleMode = options.Endpoint is not null;
    }

    /// <summary>The bucket.</summary>
    public string Bucket { get; }

    /// <summary>The options the store was made with.</summary>
    public S3StoreOptions Options { get; }

    /// <summary>The SDK client (for tests and tools that need a raw request).</summary>
    public IAmazonS3 Client => _client;

    /// <summary>Requests sent so far (HEAD, GET, LIST, PUT, DELETE, multipart steps).</summary>
    public long RequestCount => Interlocked.Read(ref _requests);

    /// <summary>GET requests sent so far (whole and ranged).</summary>
    public long GetCount => Interlocked.Read(ref _gets);

    /// <summary>Object bytes received by GETs so far.</summary>
    public long BytesFetched => Interlocked.Read(ref _bytesFetched);

    /// <summary>Object bytes sent by PUTs and part uploads so far.</summary>
    public long BytesUploaded => Interlocked.Read(ref _bytesUploaded);

    /// <summary>Sets every counter back to zero.</summary>
    public void ResetCounters()
    {
        Interlocked.Exchange(ref _requests, 0);
        Interlocked.Exchange(ref _gets, 0);
        Interlocked.Exchange(ref _bytesFetched, 0);
        Interlocked.Exchange(ref _bytesUploaded, 0);
    }

    /// <summary>Keys per LIST page (S3's maximum is 1000); lowered by tests to exercise pagination.</summary>
    internal int ListPageSize { get; set; } = 1000;

    /// <summary>Keys per DeleteObjects request (S3's maximum is 1000).</summary>
    internal int DeleteBatchSize { get; set; } = 1000;

    /// <summary>How old another write's pending marker must be before a commit treats that write as abandoned.</summary>
    internal TimeSpan AbandonedWriteAge { get; set; } = TimeSpan.FromHours(24);

    public string Describe(string key) => key.Length == 0 ? $"s3://{Bucket}" : $"s3://{Bucket}/{key}";

    /// <summary>The SDK configuration for <paramref name="options"/>.</summary>
    internal static AmazonS3Config CreateConfig(S3StoreOptions options)
    {
        var config = new AmazonS3Config
        {
            ForcePathStyle = options.UsePathStyle,
            // The endpoint comes from the options alone, so the SDK must not pick up AWS_ENDPOINT_URL* by itself.
            IgnoreConfiguredEndpointUrls = true,
        };
        if (options.Endpoint is { } endpoint)
        {
            config.ServiceURL = endpoint.ToString();
            config.AuthenticationRegion = options.Region;
            // Checksums only where the API requires them (DeleteObjects): servers other than AWS (older MinIO, R2) have
            // rejected the CRC headers SDKs send by default since 2025. s3rver itself ignores them (measured).
            config.RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED;
            config.ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED;
        }
        else
        {
            config.RegionEndpoint = RegionEndpoint.GetBySystemName(options.Region);
        }
        if (options.MaxErrorRetry is { } retries)
        {
            config.MaxErrorRetry = retries;
        }
        return config;
    }

    private static AmazonS3Client CreateClient(S3StoreOptions options)
    {
        var config = CreateConfig(options);
        if (options.AccessKey is not null && options.SecretKey is not null)
        {
            AWSCredentials credentials = options.SessionToken is null
                ? new BasicAWSCredentials(options.AccessKey, options.SecretKey)
                : new SessionAWSCredentials(options.AccessKey, options.SecretKey, options.SessionToken);
            return new AmazonS3Client(credentials, config);
        }
        if (options.Profile is not null)
        {
            if (!new CredentialProfileStoreChain().TryGetAWSCredentials(options.Profile, out var credentials))
            {
                throw new EngineException($"AWS_PROFILE: profile '{options.Profile}' was not found in the shared AWS files, or has no usable credentials");
            }
            return new AmazonS3Client(credentials, config);
        }
        // The SDK's default chain: environment, shared files, SSO, container and instance roles.
        return new AmazonS3Client(config);
    }

    public async Task<IReadOnlyList<StoredObject>> ListAsync(string prefix, CancellationToken cancellationToken = default)
    {
        var objects = await ListDetailedAsync(prefix, cancellationToken);
        var result = new List<StoredObject>(objects.Count);
        foreach (var item in objects)
        {
            result.Add(new StoredObject(item.Key, item.Size ?? 0));
        }
        return result;
    }

    /// <summary>The raw listing (with modification times), ordered by key; folder placeholder objects are skipped.</summary>
    internal async Task<List<S3Object>> ListDetailedAsync(string prefix, CancellationToken cancellationToken)
    {
        var request = new ListObjectsV2Request
        {
            BucketName = Bucket,
            Prefix = DirectoryPrefix(prefix),
            MaxKeys = ListPageSize,
        };
        var result = new List<S3Object>();
        while (true)
        {
            var response = await CallAsync(prefix, (client, ct) => client.ListObjectsV2Async(request, ct), cancellationToken);
            foreach (var item in response.S3Objects ?? [])
            {
                // Consoles create zero-byte "folder" objects ending in '/'; they are not data.
                if (!item.Key.EndsWith('/'))
                {
                    result.Add(item);
                }
            }
            if (response.IsTruncated != true || string.IsNullOrEmpty(response.NextContinuationToken))
            {
                break;
            }
            request.ContinuationToken = response.NextContinuationToken;
        }
        // S3 orders by UTF-8 bytes; ordinal UTF-16 order is what the local store and the readers use.
        result.Sort(static (a, b) => string.CompareOrdinal(a.Key, b.Key));
        return result;
    }

    private static string DirectoryPrefix(string prefix)
    {
        var trimmed = prefix.Trim('/');
        return trimmed.Length == 0 ? "" : trimmed + "/";
    }

    public async Task<long?> GetSizeAsync(string key, CancellationToken cancellationToken = default)
    {
        try
        {
            var response = await CallAsync(key, (client, ct) => client.GetObjectMetadataAsync(Bucket, key, ct), cancellationToken, translateNotFound: false);
            return response.ContentLength;
        }
        catch (AmazonS3Exception e) when (S3Errors.IsNotFound(e))
        {
            return null;
        }
    }

    public Stream OpenRead(string key)
    {
        var size = GetSizeAsync(key).GetAwaiter().GetResult()
            ?? throw new DataException(Describe(key), "object not found");
        return new S3ReadStream(this, key, size, Options.ReadBlockSize, Math.Min(Options.DirectReadSize, Options.ReadBlockSize));
    }

    public bool TryGetLocalPath(string key, out string path)
    {
        path = "";
        return false;
    }

    public async Task PutAsync(string key, ReadOnlyMemory<byte> content, CancellationToken cancellationToken = default)
    {
        var bytes = MemoryMarshal.TryGetArray(content, out var segment) && segment.Array is not null
            ? new MemoryStream(segment.Array, segment.Offset, segment.Count, writable: false)
            : new MemoryStream(content.ToArray(), writable: false);
        using (bytes)
        {
            await PutStreamAsync(key, bytes, cancellationToken);
        }
    }

    /// <summary>Uploads a seekable stream in one PUT (S3 replaces an existing object atomically).</summary>
    internal async Task PutStreamAsync(string key, Stream content, CancellationToken cancellationToken)
    {
        var length = content.Length - content.Position;
        var request = new PutObjectRequest
        {
            BucketName = Bucket,
            Key = key,
            InputStream = content,
            AutoCloseStream = false,
        };
        if (_compatibleMode)
        {
            // Plain signed bodies: s3rver stores aws-chunked framing ("3;chunk-signature=…") verbatim as the object's
            // content instead of decoding it (measured: every object came back larger and unreadable).
            request.UseChunkEncoding = false;
        }
        await CallAsync(key, (client, ct) => client.PutObjectAsync(request, ct), cancellationToken);
        Interlocked.Add(ref _bytesUploaded, length);
    }

    /// <summary>Uploads a local file in parts (multipart upload); an upload that fails is aborted.</summary>
    internal async Task PutMultipartAsync(string key, string path, CancellationToken cancellationToken)
    {
        var created = await CallAsync(key, (client, ct) => client.InitiateMultipartUploadAsync(new InitiateMultipartUploadRequest { BucketName = Bucket, Key = key }, ct), cancellationToken);
        var uploadId = created.UploadId;
        try
        {
            var length = new FileInfo(path).Length;
            var parts = new List<PartETag>();
            var partNumber = 1;
            for (long position = 0; position < length; position += Options.MultipartPartSize, partNumber++)
            {
                var size = Math.Min(Options.MultipartPartSize, length - position);
                var request = new UploadPartRequest
                {
                    BucketName = Bucket,
                    Key = key,
                    UploadId = uploadId,
                    PartNumber = partNumber,
                    FilePath = path,
                    FilePosition = position,
                    PartSize = size,
                    IsLastPart = position + size >= length,
                };
                if (_compatibleMode)
                {
                    request.UseChunkEncoding = false;
                }
                var response = await CallAsync(key, (client, ct) => client.UploadPartAsync(request, ct), cancellationToken);
                parts.Add(new PartETag(partNumber, response.ETag));
                Interlocked.Add(ref _bytesUploaded, size);
            }
            await CallAsync(key, (client, ct) => client.CompleteMultipartUploadAsync(new CompleteMultipartUploadRequest
            {
                BucketName = Bucket,
                Key = key,
                UploadId = uploadId,
                PartETags = parts,
            }, ct), cancellationToken);
        }
        catch
        {
            try
            {
                await _client.AbortMultipartUploadAsync(new AbortMultipartUploadRequest { BucketName = Bucket, Key = key, UploadId = uploadId }, CancellationToken.None);
            }
            catch (Exception e) when (S3Errors.IsTranslatable(e))
            {
                // The original failure is what the user needs; a lifecycle rule cleans up parts that could not be aborted.
            }
            throw;
        }
    }

    public async Task<byte[]?> GetAsync(string key, CancellationToken cancellationToken = default)
    {
        try
        {
            using var response = await CallAsync(key, (client, ct) => client.GetObjectAsync(Bucket, key, ct), cancellationToken, translateNotFound: false, isGet: true);
            var length = response.ContentLength;
            var buffer = new MemoryStream(length > 0 ? (int)Math.Min(length, int.MaxValue) : 0);
            try
            {
                await response.ResponseStream.CopyToAsync(buffer, cancellationToken);
            }
            catch (Exception e) when (S3Errors.IsTranslatable(e) || e is IOException)
            {
                throw new DataException(Describe(key), $"the download was interrupted ({e.GetType().Name})", e);
            }
            Interlocked.Add(ref _bytesFetched, buffer.Length);
            return buffer.ToArray();
        }
        catch (AmazonS3Exception e) when (S3Errors.IsNotFound(e))
        {
            return null;
        }
    }

    /// <summary>
    /// Fills <paramref name="destination"/> from <paramref name="offset"/> with one ranged GET into
    /// it; returns the bytes read (fewer only at the end of the object).
    /// </summary>
    internal int ReadRange(string key, long offset, Span<byte> destination)
    {
        if (destination.IsEmpty)
        {
            return 0;
        }
        var request = new GetObjectRequest
        {
            BucketName = Bucket,
            Key = key,
            ByteRange = new ByteRange(offset, offset + destination.Length - 1),
        };
        using var response = CallAsync(key, (client, ct) => client.GetObjectAsync(request, ct), CancellationToken.None, isGet: true).GetAwaiter().GetResult();
        var total = 0;
        try
        {
            var body = response.ResponseStream;
            while (total < destination.Length)
            {
                var read = body.Read(destination[total..]);
                if (read == 0)
                {
                    break;
                }
                total += read;
            }
        }
        catch (Exception e) when (S3Errors.IsTranslatable(e) || e is IOException)
        {
            throw new DataException(Describe(key), $"the download of bytes {offset}-{offset + destination.Length - 1} was interrupted ({e.GetType().Name})", e);
        }
        finally
        {
            Interlocked.Add(ref _bytesFetched, total);
        }
        return total;
    }

    public async Task DeleteAsync(IReadOnlyList<string> keys, CancellationToken cancellationToken = default)
    {
        for (var start = 0; start < keys.Count; start += DeleteBatchSize)
        {
            var batch = new List<KeyVersion>(Math.Min(DeleteBatchSize, keys.Count - start));
            for (var i = start; i < keys.Count && i < start + DeleteBatchSize; i++)
            {
                batch.Add(new KeyVersion { Key = keys[i] });
            }
            var request = new DeleteObjectsRequest { BucketName = Bucket, Objects = batch, Quiet = true };
            var response = await CallAsync(batch[0].Key, (client, ct) => client.DeleteObjectsAsync(request, ct), cancellationToken);
            // Deleting a missing key succeeds in S3; anything reported here is a real failure (permissions, locks).
            if (response.DeleteErrors is { Count: > 0 } errors)
            {
                var first = errors[0];
                throw new DataException(Describe(first.Key), $"could not delete {errors.Count} object(s): {first.Code}");
            }
        }
    }

    public async Task<IDatasetWrite> BeginWriteAsync(string prefix, CancellationToken cancellationToken = default)
    {
        var write = new S3DatasetWrite(this, prefix.Trim('/'));
        await write.StartAsync(cancellationToken);
        return write;
    }

    /// <summary>Sends one request, counting it and turning SDK failures into <see cref="DataException"/>s.</summary>
    internal async Task<T> CallAsync<T>(string key, Func<IAmazonS3, CancellationToken, Task<T>> call, CancellationToken cancellationToken, bool translateNotFound = true, bool isGet = false)
    {
        Interlocked.Increment(ref _requests);
        if (isGet)
        {
            Interlocked.Increment(ref _gets);
        }
        try
        {
            return await call(_client, cancellationToken);
        }
        catch (Exception e) when (S3Errors.IsTranslatable(e) && (translateNotFound || !S3Errors.IsNotFound(e)))
        {
            throw S3Errors.Translate(e, Describe(key), Bucket, Options);
        }
    }

    public void Dispose()
    {
        if (_ownsClient)
        {
            _client.Dispose();
        }
    }
}
