using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Engine.Connectors.Destinations.Webhook;

namespace Engine.Connectors.Destinations.Braze;

/// <summary>
/// Braze's <c>POST {url}/users/track</c> (REST API key as <c>Authorization: Bearer</c>, the <c>users.track</c>
/// permission), one request per batch: <c>{"attributes": [...]}</c> with one user attributes object per profile.
/// <para><b>Keying.</b> Each object names one user: <c>external_id</c> from the profile's identifier of the first
/// <c>identify_by</c> type (typically customer_id); identifier types named <c>email</c> or <c>phone</c> become Braze's
/// <c>email</c> / <c>phone</c> identifiers. The records of a batch that name the same user become one object, since
/// an object per record would only repeat the user.</para>
/// <para><b>Membership</b> is the array custom attribute <see cref="SegmentsAttribute"/>, changed with Braze's array
/// syntax: an entry sends <c>{"engine_segments": {"add": ["vip"]}}</c>, an exit <c>{"remove": ["vip"]}</c>. Both are
/// idempotent (Braze keeps array values unique), so a repeated request does no harm. An exit also sends
/// <c>"_update_existing_only": true</c>: removing someone from a segment must not create a Braze user. The mapped
/// fields go with either as custom attributes (null removes the attribute, times are ISO 8601).</para>
/// <para><b>Answers.</b> 201 <c>{"message": "success", "attributes_processed": n}</c> acknowledges every object
/// (as does 202 <c>{"message": "queued"}</c> during Braze's maintenance); <c>"errors": [{"type", "input_array":
/// "attributes", "index"}]</c> beside it rejects the objects named by index (the rest were processed). A 400 whose
/// errors name objects by index (Braze refuses the request when no object is valid) rejects those and retries the
/// others, which were not applied; any other 400 is permanent. 401 (unknown or missing key), 403 and 404 (unknown
/// key, or not the REST endpoint) are fatal. 429 is retried after <c>Retry-After</c> when given, otherwise at
/// <c>X-RateLimit-Reset</c> (UTC epoch seconds, when Braze's fixed window restarts); 5xx with backoff.</para>
/// <para>Limits (Braze's rate-limit page): at most 75 attribute objects per request, 3,000 requests per 3 seconds
/// per workspace.</para>
/// </summary>
public sealed class BrazeDestination : HttpDestination
{
    /// <summary>The array custom attribute that lists the engine segments a user belongs to.</summary>
    public const string SegmentsAttribute = "engine_segments";

    private readonly Uri _endpoint;
    private readonly string _apiKey;

    public BrazeDestination(DestinationDefinition definition, HttpMessageHandler? handler = null) : base(definition, handler)
    {
        _endpoint = new Uri(definition.Setting("url")!.TrimEnd('/') + "/users/track");
        _apiKey = Credential("api_key");
    }

    public override async Task<IReadOnlyList<RecordResult>> SendAsync(DestinationBatch batch, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var results = new Dictionary<string, RecordResult>(StringComparer.Ordinal);
        var users = Users(batch, results);
        if (users.Count == 0)
        {
            return [.. batch.Records.Select(r => results[r.Key])];
        }
        using var request = new HttpRequestMessage(HttpMethod.Post, _endpoint) { Content = new ByteArrayContent(Body(batch.Operation, users)) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _apiKey);
        var answer = await SendAsync(request, cancellationToken, status => status is HttpStatusCode.BadRequest or HttpStatusCode.TooManyRequests or HttpStatusCode.NotFound);
        if (answer.Status == HttpStatusCode.TooManyRequests)
        {
            throw new DestinationException("http_429", FailureKind.Transient, Trim(answer.Body), RetryDelay(answer.Headers, DateTimeOffset.UtcNow));
        }
        if (answer.Status == HttpStatusCode.NotFound)
        {
            // Braze's "unknown REST API key", or a url that is not the instance's REST endpoint: no request can succeed.
            throw new DestinationException("http_404", FailureKind.Fatal, Trim(answer.Body));
        }

        using var json = ParseJson(answer);
        var rejected = new Dictionary<int, string>();
        if (json.RootElement.ValueKind == JsonValueKind.Object && json.RootElement.TryGetProperty("errors", out var errors) && errors.ValueKind == JsonValueKind.Array)
        {
            foreach (var error in errors.EnumerateArray())
            {
                // Minor errors about events or purchases, or without an index, name no object of ours.
                if (error.ValueKind == JsonValueKind.Object
                    && error.TryGetProperty("index", out var index) && index.TryGetInt32(out var i) && i >= 0 && i < users.Count
                    && (!error.TryGetProperty("input_array", out var array) || array.ValueEquals("attributes")))
                {
                    var type = error.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()! : "invalid attributes object";
                    rejected.TryAdd(i, Mask(type, users[i].Value));
                }
            }
        }
        if (answer.Status == HttpStatusCode.BadRequest && rejected.Count == 0)
        {
            var message = json.RootElement.ValueKind == JsonValueKind.Object && json.RootElement.TryGetProperty("message", out var m) && m.ValueKind == JsonValueKind.String
                ? m.GetString()!
                : Trim(answer.Body);
            throw new DestinationException("http_400", FailureKind.Permanent, message);
        }
        for (var i = 0; i < users.Count; i++)
        {
            foreach (var record in users[i].Records)
            {
                results[record.Key] = rejected.TryGetValue(i, out var reason) ? new RecordResult(record.Key, RecordStatus.Rejected, reason)
                    // A 400 applied nothing: the objects it did not name go again, without the refused ones.
                    : answer.Status == HttpStatusCode.BadRequest ? new RecordResult(record.Key, RecordStatus.Retry, "not applied: another object of the request was refused")
                    : new RecordResult(record.Key, RecordStatus.Delivered);
            }
        }
        return [.. batch.Records.Select(r => results[r.Key])];
    }

    /// <summary>
    /// When to try again after a 429: <c>Retry-After</c> if the answer has one, otherwise until <c>X-RateLimit-Reset</c>
    /// (UTC epoch seconds), or null (the worker's backoff) when neither is there.
    /// </summary>
    internal static TimeSpan? RetryDelay(HttpResponseHeaders headers, DateTimeOffset now)
    {
        if (RateLimitHeaders.RetryAfter(headers, now) is { } wait)
        {
            return wait;
        }
        if (RateLimitHeaders.Number(headers, "X-RateLimit-Reset") is { } reset)
        {
            var until = DateTimeOffset.FromUnixTimeMilliseconds((long)Math.Ceiling(reset * 1000)) - now;
            return until > TimeSpan.Zero ? until : TimeSpan.Zero;
        }
        return null;
    }

    /// <summary>The users of a batch, each with its records; records naming no usable identifier are rejected into <paramref name="results"/>.</summary>
    private List<User> Users(DestinationBatch batch, Dictionary<string, RecordResult> results)
    {
        var users = new List<User>();
        var byIdentifier = new Dictionary<(string, string), User>();
        foreach (var record in batch.Records)
        {
            if (Identifier(record) is not { } identifier)
            {
                results[record.Key] = new RecordResult(record.Key, RecordStatus.Rejected,
                    $"no identifier Braze can key on (external_id from {Definition.IdentifyBy[0]}, email or phone)");
                continue;
            }
            if (!byIdentifier.TryGetValue(identifier, out var user))
            {
                byIdentifier[identifier] = user = new User(identifier.Item1, identifier.Item2, []);
                users.Add(user);
            }
            user.Records.Add(record);
        }
        return users;
    }

    /// <summary>The Braze identifier of a record: its first identifier (most trusted type first) that Braze can key on.</summary>
    private (string, string)? Identifier(OutgoingRecord record)
    {
        foreach (var identifier in record.Identifiers)
        {
            var key = identifier.Type switch
            {
                "email" => "email",
                "phone" => "phone",
                _ when identifier.Type == Definition.IdentifyBy[0] => "external_id",
                _ => null,
            };
            if (key is not null && identifier.Value.Length > 0)
            {
                return (key, identifier.Value);
            }
        }
        return null;
    }

    private static byte[] Body(RecordOperation operation, List<User> users)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteStartArray("attributes");
            foreach (var user in users)
            {
                writer.WriteStartObject();
                writer.WriteString(user.Key, user.Value);
                if (operation == RecordOperation.Remove)
                {
                    writer.WriteBoolean("_update_existing_only", true);
                }
                // Fields are the profile's, the same in each of its records; the segments are the records' own.
                foreach (var (field, value) in user.Records[0].Fields)
                {
                    if (field != SegmentsAttribute && field != user.Key)
                    {
                        JsonValues.Write(writer, field, value);
                    }
                }
                writer.WriteStartObject(SegmentsAttribute);
                writer.WriteStartArray(operation == RecordOperation.Add ? "add" : "remove");
                foreach (var segment in user.Records.Select(r => r.Segment).Distinct(StringComparer.Ordinal))
                {
                    writer.WriteStringValue(segment);
                }
                writer.WriteEndArray();
                writer.WriteEndObject();
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
            writer.WriteEndObject();
        }
        return buffer.ToArray();
    }

    /// <summary>Braze's error text with the user's identifier taken out: reasons end up in reports, identifiers must not.</summary>
    private static string Mask(string text, string identifier)
        => identifier.Length == 0 ? text : text.Replace(identifier, "<identifier>", StringComparison.Ordinal);

    private sealed record User(string Key, string Value, List<OutgoingRecord> Records);
}

