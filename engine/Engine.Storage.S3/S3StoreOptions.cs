using System.Text;
using Amazon.Runtime.CredentialManagement;

namespace Engine.Storage.S3;

/// <summary>How requests address a bucket.</summary>
public enum S3AddressingStyle
{
    /// <summary>Path style (<c>https://endpoint/bucket/key</c>) when a custom endpoint is set, virtual-hosted otherwise.</summary>
    Auto,
    /// <summary><c>https://endpoint/bucket/key</c>: what MinIO, s3rver and most S3-compatible servers expect.</summary>
    Path,
    /// <summary><c>https://bucket.endpoint/key</c>: what AWS S3 prefers.</summary>
    Virtual,
}

/// <summary>
/// Where an S3-compatible store is and how to sign requests to it. <see cref="FromEnvironment()"/> reads the
/// standard AWS variables; tests and hosts can also build one directly.
/// </summary>
/// <remarks>
/// <see cref="ToString"/> never prints the secret key or the session token: options may end up in logs.
/// </remarks>
public sealed record S3StoreOptions
{
    /// <summary>The default region when none is configured.</summary>
    public const string DefaultRegion = "us-east-1";

    /// <summary>A custom endpoint (MinIO, R2, s3rver); null for AWS S3 itself.</summary>
    public Uri? Endpoint { get; init; }

    /// <summary>The signing region (and, for AWS, the endpoint's region).</summary>
    public string Region { get; init; } = DefaultRegion;

    /// <summary>The access key id; with <see cref="SecretKey"/>, overrides every other credential source.</summary>
    public string? AccessKey { get; init; }

    /// <summary>The secret access key.</summary>
    public string? SecretKey { get; init; }

    /// <summary>A session token for temporary credentials.</summary>
    public string? SessionToken { get; init; }

    /// <summary>A named profile of the shared AWS files; when set (and no explicit key is), credentials come from it.</summary>
    public string? Profile { get; init; }

    /// <summary>How buckets are addressed.</summary>
    public S3AddressingStyle AddressingStyle { get; init; } = S3AddressingStyle.Auto;

    /// <summary>The least a ranged GET fetches when a reader asks for fewer bytes (read-ahead, cached).</summary>
    public int ReadBlockSize { get; init; } = 1024 * 1024;

    /// <summary>
    /// Reads at least this large are fetched exactly as asked, without read-ahead: they are pre-buffered column
    /// chunks whose extent the Parquet reader already knows, so reading past them would fetch other columns' bytes.
    /// </summary>
    public int DirectReadSize { get; init; } = 256 * 1024;

    /// <summary>Files larger than this are uploaded in parts (multipart upload) instead of one PUT.</summary>
    public long MultipartThreshold { get; init; } = 64L * 1024 * 1024;

    /// <summary>The size of each part of a multipart upload (S3 requires at least 5 MiB, except for the last).</summary>
    public long MultipartPartSize { get; init; } = 16L * 1024 * 1024;

    /// <summary>Retries of failed requests; null keeps the SDK's default.</summary>
    public int? MaxErrorRetry { get; init; }

    /// <summary>Whether requests use path-style addressing.</summary>
    public bool UsePathStyle => AddressingStyle switch
    {
        S3AddressingStyle.Path => true,
        S3AddressingStyle.Virtual => false,
        _ => Endpoint is not null,
    };

    /// <summary>Reads the standard AWS environment variables of this process (see <see cref="FromEnvironment(Func{string, string?}, Func{string, string?}?)"/>).</summary>
    public static S3StoreOptions FromEnvironment() => FromEnvironment(Environment.GetEnvironmentVariable);

    /// <summary>Resolves options from a set of environment variables (for tests and hosts that carry their own).</summary>
    public static S3StoreOptions FromEnvironment(IReadOnlyDictionary<string, string> variables, Func<string, string?>? profileRegion = null)
        => FromEnvironment(name => variables.TryGetValue(name, out var value) ? value : null, profileRegion ?? (_ => null));

    /// <summary>
    /// Resolves options from environment variables:
    /// <list type="bullet">
    /// <item><c>AWS_ENDPOINT_URL_S3</c>, then <c>AWS_ENDPOINT_URL</c>: a custom endpoint (none: AWS S3).</item>
    /// <item><c>AWS_REGION</c>, then <c>AWS_DEFAULT_REGION</c>, then the profile's region, then us-east-1.</item>
    /// <item><c>AWS_ACCESS_KEY_ID</c>, <c>AWS_SECRET_ACCESS_KEY</c>, <c>AWS_SESSION_TOKEN</c>: explicit credentials;
    /// otherwise <c>AWS_PROFILE</c> or the SDK's default chain (shared files, SSO, container and instance roles).</item>
    /// <item><c>AWS_S3_ADDRESSING_STYLE</c>: <c>path</c>, <c>virtual</c> or <c>auto</c> (path style when an endpoint is set).</item>
    /// </list>
    /// Throws <see cref="EngineException"/> naming the variable when a value is invalid.
    /// </summary>
    /// <param name="variable">Reads one variable; null or empty means unset.</param>
    /// <param name="profileRegion">The region of a named profile in the shared AWS files; by default read through the SDK.</param>
    public static S3StoreOptions FromEnvironment(Func<string, string?> variable, Func<string, string?>? profileRegion = null)
    {
        string? Get(string name) => variable(name)?.Trim() is { Length: > 0 } value ? value : null;

        Uri? endpoint = null;
        var endpointVariable = Get("AWS_ENDPOINT_URL_S3") is not null ? "AWS_ENDPOINT_URL_S3" : "AWS_ENDPOINT_URL";
        if (Get(endpointVariable) is { } endpointText)
        {
            if (!Uri.TryCreate(endpointText, UriKind.Absolute, out endpoint) || (endpoint.Scheme != Uri.UriSchemeHttp && endpoint.Scheme != Uri.UriSchemeHttps))
            {
                throw new EngineException($"{endpointVariable}: '{StripUserInfo(endpointText)}' is not an http:// or https:// URL");
            }
        }

        var style = S3AddressingStyle.Auto;
        if (Get("AWS_S3_ADDRESSING_STYLE") is { } styleText)
        {
            style = styleText.ToLowerInvariant() switch
            {
                "path" => S3AddressingStyle.Path,
                "virtual" => S3AddressingStyle.Virtual,
                "auto" => S3AddressingStyle.Auto,
                _ => throw new EngineException($"AWS_S3_ADDRESSING_STYLE: '{styleText}' is not one of path, virtual, auto"),
            };
        }

        var profile = Get("AWS_PROFILE");
        var region = Get("AWS_REGION") ?? Get("AWS_DEFAULT_REGION");
        if (region is null)
        {
            profileRegion ??= ReadProfileRegion;
            region = profileRegion(profile ?? "default");
        }

        var accessKey = Get("AWS_ACCESS_KEY_ID");
        var secretKey = Get("AWS_SECRET_ACCESS_KEY");
        if ((accessKey is null) != (secretKey is null))
        {
            throw new EngineException(accessKey is null
                ? "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not: set both, or neither"
                : "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not: set both, or neither");
        }

        return new S3StoreOptions
        {
            Endpoint = endpoint,
            Region = region ?? DefaultRegion,
            AccessKey = accessKey,
            SecretKey = secretKey,
            SessionToken = accessKey is null ? null : Get("AWS_SESSION_TOKEN"),
            Profile = profile,
            AddressingStyle = style,
        };
    }

    // The shared config files may name a region per profile; a broken file is the SDK's to report later, not ours.
    private static string? ReadProfileRegion(string profile)
    {
        try
        {
            return new CredentialProfileStoreChain().TryGetProfile(profile, out var found) ? found.Region?.SystemName : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or InvalidOperationException)
        {
            return null;
        }
    }

    /// <summary>The endpoint as it may be shown to a user: without any user:password part.</summary>
    public string DescribeEndpoint() => Endpoint is null ? $"AWS S3 ({Region})" : StripUserInfo(Endpoint.ToString());

    private static string StripUserInfo(string url)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.UserInfo.Length == 0)
        {
            return url;
        }
        return new UriBuilder(uri) { UserName = "", Password = "" }.Uri.ToString();
    }

    /// <summary>Endpoint, region, addressing and which credential source is used; never a secret.</summary>
    public override string ToString()
    {
        var text = new StringBuilder();
        text.Append("endpoint=").Append(DescribeEndpoint())
            .Append(", region=").Append(Region)
            .Append(", addressing=").Append(UsePathStyle ? "path" : "virtual")
            .Append(", credentials=");
        if (AccessKey is not null)
        {
            text.Append("access key ").Append(MaskKey(AccessKey)).Append(SessionToken is null ? "" : " with session token");
        }
        else if (Profile is not null)
        {
            text.Append("profile ").Append(Profile);
        }
        else
        {
            text.Append("default chain");
        }
        return text.ToString();
    }

    private static string MaskKey(string key) => key.Length <= 4 ? "****" : $"{key[..4]}****";
}
