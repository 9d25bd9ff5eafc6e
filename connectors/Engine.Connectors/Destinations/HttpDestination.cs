using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;

namespace Engine.Connectors.Destinations;

/// <summary>One HTTP answer, read whole.</summary>
public sealed record HttpAnswer(HttpStatusCode Status, string Body, HttpResponseHeaders Headers);

/// <summary>
/// The HTTP half every API destination shares: one pooled client per destination, each request under the
/// destination's time limit, and every failure turned into a <see cref="DestinationException"/> of the right kind —
/// 429 (with <c>Retry-After</c> in seconds or as a date) and 5xx, time-outs and dropped connections transient;
/// 401 and 403 fatal (retrying with refused credentials only burns the rate limit); other 4xx permanent unless the
/// destination reads per-record errors from the body itself.
/// </summary>
public abstract class HttpDestination : IDestination
{
    private readonly HttpClient _client;
    private readonly TimeSpan _timeout;

    protected HttpDestination(DestinationDefinition definition, HttpMessageHandler? handler = null)
    {
        ArgumentNullException.ThrowIfNull(definition);
        Definition = definition;
        _timeout = definition.Timeout;
        _client = new HttpClient(handler ?? new SocketsHttpHandler
        {
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            MaxConnectionsPerServer = Math.Max(1, definition.Concurrency),
            ConnectTimeout = definition.Timeout,
        }, disposeHandler: true)
        {
            // Each request gets its own limit below; the client's would be shared by every attempt.
            Timeout = Timeout.InfiniteTimeSpan,
        };
    }

    protected DestinationDefinition Definition { get; }

    public abstract Task<IReadOnlyList<RecordResult>> SendAsync(DestinationBatch batch, CancellationToken cancellationToken);

    public virtual Task CompleteAsync(string runId, CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Sends <paramref name="request"/>; returns 2xx answers and the 4xx ones <paramref name="keepStatus"/> accepts, throws for the rest.</summary>
    protected async Task<HttpAnswer> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken, Func<HttpStatusCode, bool>? keepStatus = null)
    {
        ArgumentNullException.ThrowIfNull(request);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(_timeout);
        HttpResponseMessage response;
        string body;
        try
        {
            response = await _client.SendAsync(request, HttpCompletionOption.ResponseContentRead, limit.Token);
            body = await response.Content.ReadAsStringAsync(limit.Token);
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new DestinationException("timeout", FailureKind.Transient, $"no answer within {_timeout.TotalSeconds:0.#} s", inner: e);
        }
        catch (HttpRequestException e)
        {
            throw new DestinationException("connection_failed", FailureKind.Transient, e.HttpRequestError.ToString(), inner: e);
        }
        catch (IOException e)
        {
            throw new DestinationException("connection_failed", FailureKind.Transient, e.Message, inner: e);
        }
        using (response)
        {
            var status = response.StatusCode;
            var code = (int)status;
            if (code is >= 200 and < 300 || keepStatus?.Invoke(status) == true)
            {
                return new HttpAnswer(status, body, response.Headers);
            }
            var detail = Trim(body);
            if (status == HttpStatusCode.TooManyRequests)
            {
                throw new DestinationException("http_429", FailureKind.Transient, detail, RetryAfter(response));
            }
            if (code >= 500 || status == HttpStatusCode.RequestTimeout)
            {
                throw new DestinationException($"http_{code}", FailureKind.Transient, detail, RetryAfter(response));
            }
            if (status is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
            {
                throw new DestinationException($"http_{code}", FailureKind.Fatal, detail);
            }
            throw new DestinationException($"http_{code}", FailureKind.Permanent, detail);
        }
    }

    /// <summary>Parses a JSON answer; an answer that is not JSON is a transient failure (a proxy's error page, a torn body).</summary>
    protected static JsonDocument ParseJson(HttpAnswer answer)
    {
        ArgumentNullException.ThrowIfNull(answer);
        try
        {
            return JsonDocument.Parse(answer.Body);
        }
        catch (JsonException e)
        {
            throw new DestinationException("invalid_response", FailureKind.Transient, $"HTTP {(int)answer.Status} with a body that is not JSON: {Trim(answer.Body)}", inner: e);
        }
    }

    /// <summary>The value of a credential, from the environment variable the destination file names.</summary>
    protected string Credential(string name) => DestinationCredentials.Read(Definition, name);

    private static TimeSpan? RetryAfter(HttpResponseMessage response)
    {
        var header = response.Headers.RetryAfter;
        if (header?.Delta is { } delta)
        {
            return delta;
        }
        if (header?.Date is { } date)
        {
            var wait = date - DateTimeOffset.UtcNow;
            return wait > TimeSpan.Zero ? wait : TimeSpan.Zero;
        }
        // Some APIs send fractional seconds, which the typed header rejects.
        if (response.Headers.TryGetValues("Retry-After", out var values)
            && double.TryParse(values.FirstOrDefault(), NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) && seconds >= 0)
        {
            return TimeSpan.FromSeconds(seconds);
        }
        return null;
    }

    /// <summary>A destination's error text, short enough for a report line.</summary>
    protected static string Trim(string body)
    {
        ArgumentNullException.ThrowIfNull(body);
        var text = body.ReplaceLineEndings(" ").Trim();
        return text.Length <= 300 ? text : text[..300] + "…";
    }

    public async ValueTask DisposeAsync()
    {
        await DisposeAsyncCore();
        _client.Dispose();
        GC.SuppressFinalize(this);
    }

    protected virtual ValueTask DisposeAsyncCore() => ValueTask.CompletedTask;
}
