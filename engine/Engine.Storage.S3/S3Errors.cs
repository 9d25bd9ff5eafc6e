using System.Net;
using System.Net.Sockets;
using Amazon.Runtime;
using Amazon.S3;

namespace Engine.Storage.S3;

/// <summary>
/// Turns SDK and network failures into one-line <see cref="DataException"/>s that name the s3:// location and say
/// what to check. Messages are built from error codes, never from request details, so no secret can leak into them.
/// </summary>
internal static class S3Errors
{
    /// <summary>Whether <paramref name="e"/> is a failure this class explains (and so should be translated).</summary>
    public static bool IsTranslatable(Exception e)
        => e is AmazonServiceException or AmazonClientException or HttpRequestException or SocketException or TimeoutException
            || (e is TaskCanceledException && e.InnerException is TimeoutException);

    /// <summary>Whether the request failed because the object (or bucket, for HEAD) does not exist.</summary>
    public static bool IsNotFound(Exception e)
        => e is AmazonS3Exception s3 && (s3.StatusCode == HttpStatusCode.NotFound || s3.ErrorCode is "NoSuchKey" or "NotFound")
            && s3.ErrorCode != "NoSuchBucket";

    public static DataException Translate(Exception e, string location, string bucket, S3StoreOptions options)
        => new(location, Describe(e, bucket, options), e);

    internal static string Describe(Exception e, string bucket, S3StoreOptions options)
    {
        var endpoint = options.DescribeEndpoint();
        switch (e)
        {
            case AmazonS3Exception s3:
                return s3.ErrorCode switch
                {
                    "NoSuchKey" => "object not found",
                    "NoSuchBucket" => $"bucket '{bucket}' does not exist at {endpoint}",
                    "InvalidAccessKeyId" => $"the access key is not known to {endpoint} (check AWS_ACCESS_KEY_ID, AWS_PROFILE or the endpoint)",
                    "SignatureDoesNotMatch" => $"{endpoint} rejected the request signature: the secret key does not match the access key (check AWS_SECRET_ACCESS_KEY), or the region is wrong (check AWS_REGION)",
                    "AccessDenied" or "AllAccessDisabled" => $"access denied by {endpoint} (the credentials lack permission for bucket '{bucket}')",
                    "ExpiredToken" or "TokenRefreshRequired" or "InvalidToken" => "the session token is expired or invalid (refresh the credentials; check AWS_SESSION_TOKEN)",
                    "RequestTimeTooSkewed" => "the request time differs too much from the server's: check this machine's clock",
                    "InvalidRange" => "the requested byte range is outside the object (it changed while being read?)",
                    "PermanentRedirect" or "AuthorizationHeaderMalformed" => $"bucket '{bucket}' is in another region than {options.Region} (set AWS_REGION)",
                    _ when s3.StatusCode == HttpStatusCode.NotFound => "object not found",
                    _ when s3.StatusCode == HttpStatusCode.Forbidden => $"access denied by {endpoint} (HTTP 403{Code(s3)})",
                    _ => $"S3 request failed at {endpoint} (HTTP {(int)s3.StatusCode}{Code(s3)})",
                };
            case AmazonServiceException service:
                return $"S3 request failed at {endpoint} (HTTP {(int)service.StatusCode}{(service.ErrorCode is { Length: > 0 } code ? ", " + code : "")})";
            case AmazonClientException client when IsCredentialFailure(client):
                return "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or configure the shared AWS files";
            default:
                if (FindInner<SocketException>(e) is { } socket)
                {
                    return socket.SocketErrorCode switch
                    {
                        SocketError.ConnectionRefused => $"cannot connect to {endpoint}: connection refused (is the server running? check AWS_ENDPOINT_URL)",
                        SocketError.HostNotFound or SocketError.TryAgain or SocketError.NoData => $"cannot resolve the host of {endpoint} (check AWS_ENDPOINT_URL and the network)",
                        SocketError.TimedOut => $"cannot connect to {endpoint}: timed out",
                        _ => $"cannot connect to {endpoint} ({socket.SocketErrorCode})",
                    };
                }
                if (FindInner<TimeoutException>(e) is not null)
                {
                    return $"the request to {endpoint} timed out";
                }
                if (FindInner<HttpRequestException>(e) is { } http)
                {
                    return $"cannot reach {endpoint} ({http.HttpRequestError})";
                }
                return $"S3 request failed at {endpoint} ({e.GetType().Name})";
        }
    }

    private static string Code(AmazonS3Exception e) => e.ErrorCode is { Length: > 0 } code ? ", " + code : "";

    private static bool IsCredentialFailure(AmazonClientException e)
        => e.Message.Contains("credentials", StringComparison.OrdinalIgnoreCase);

    private static T? FindInner<T>(Exception e) where T : Exception
    {
        for (Exception? current = e; current is not null; current = current.InnerException)
        {
            if (current is T found)
            {
                return found;
            }
        }
        return null;
    }
}
