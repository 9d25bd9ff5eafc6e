using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Engine.Connectors.Destinations.Crm;

/// <summary>
/// A CRM in HubSpot's style: the CRM v3 batch upsert, <c>POST {url}/crm/v3/objects/{object}/batch/upsert</c> with
/// <c>Authorization: Bearer {access_token}</c> and
/// <c>{"inputs": [{"idProperty", "id", "properties", "objectWriteTraceId"}]}</c>, at most 100 inputs per request. Records are created when the id is new and updated otherwise.
/// <para><b>Keying.</b> <c>idProperty</c> is the first <c>identify_by</c> type (<c>email</c> for contacts; a custom
/// unique property of the same name otherwise) and <c>id</c> the profile's identifier of that type. The records of a
/// batch for the same id become one input: HubSpot refuses a batch that names an id twice.</para>
/// <para><b>Membership</b> is one boolean property per segment, <c>engine_segment_&lt;segment&gt;</c> (the segment's
/// name lower-cased, characters other than a-z, 0-9 and _ as _; see <see cref="SegmentProperty"/>): an entry sets it
/// to <c>"true"</c>, an exit to <c>"false"</c>. One property per segment rather than one multi-checkbox listing them
/// all, because a batch upsert replaces a property's whole value: writing only the record's own segment keeps
/// concurrent and repeated requests for different segments of one record from undoing each other. The properties
/// must exist in the CRM (single checkbox, boolean). Mapped fields go along as properties (null clears the value,
/// which HubSpot takes as an empty string).</para>
/// <para><b>Answers.</b> 200/201 with <c>results</c> acknowledges every input. Each input carries an
/// <c>objectWriteTraceId</c> (its position in the request), which turns on HubSpot's multi-status answers: a 207
/// lists failed inputs in <c>errors[]</c> (<c>category</c>, <c>message</c>, <c>context.objectWriteTraceId</c>); those
/// of a category about the moment (rate limits, conflicts with a concurrent write, server errors) are retried, the rest
/// rejected. A 400 (VALIDATION_ERROR for the whole request) is permanent; 401, 403 and 404 (not the API's base url)
/// are fatal. 429 is retried after <c>Retry-After</c> when given, otherwise after the rolling window HubSpot names in
/// <c>X-HubSpot-RateLimit-Interval-Milliseconds</c>; a 429 of the daily policy is fatal (retrying within minutes
/// cannot help; the records stay open for the next delivery).</para>
/// </summary>
public sealed class CrmDestination : HttpDestination
{
    /// <summary>The prefix of the per-segment membership properties.</summary>
    public const string SegmentPropertyPrefix = "engine_segment_";

    // Categories that describe the moment rather than the input: the same input may succeed on a later attempt.
    private static readonly HashSet<string> RetryCategories = new(StringComparer.Ordinal)
    {
        "RATE_LIMITS", "RATE_LIMIT", "CONFLICT", "LOCKED", "INTERNAL_ERROR", "SERVICE_UNAVAILABLE", "TIMEOUT",
    };

    private readonly Uri _endpoint;
    private readonly string _token;
    private readonly string _idProperty;

    public CrmDestination(DestinationDefinition definition, HttpMessageHandler? handler = null) : base(definition, handler)
    {
        var url = definition.Setting("url")!.TrimEnd('/');
        _endpoint = new Uri($"{url}/crm/v3/objects/{Uri.EscapeDataString(definition.Setting("object")!)}/batch/upsert");
        _idProperty = definition.IdentifyBy.Count > 0 ? definition.IdentifyBy[0]
            : throw new DestinationException("no_id_property", FailureKind.Fatal, $"destination '{definition.Name}' names no identify_by type to use as the CRM's idProperty");
        _token = Credential("access_token");
    }

    /// <summary>The membership property of <paramref name="segment"/>: <c>engine_segment_</c> and the segment's name as a HubSpot property name.</summary>
    public static string SegmentProperty(string segment)
    {
        ArgumentNullException.ThrowIfNull(segment);
        var name = new StringBuilder(SegmentPropertyPrefix.Length + segment.Length).Append(SegmentPropertyPrefix);
        foreach (var c in segment)
        {
            var lower = char.ToLowerInvariant(c);
            name.Append(lower is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '_' ? lower : '_');
        }
        return name.ToString();
    }

    public override async Task<IReadOnlyList<RecordResult>> SendAsync(DestinationBatch batch, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var results = new Dictionary<string, RecordResult>(StringComparer.Ordinal);
        var inputs = new List<Input>();
        var byId = new Dictionary<string, Input>(StringComparer.Ordinal);
        foreach (var record in batch.Records)
        {
            var id = record.Identifiers.FirstOrDefault(i => i.Type == _idProperty).Value;
            if (string.IsNullOrEmpty(id))
            {
                results[record.Key] = new RecordResult(record.Key, RecordStatus.Rejected, $"no {_idProperty} to use as the idProperty");
                continue;
            }
            if (!byId.TryGetValue(id, out var input))
            {
                byId[id] = input = new Input(id, []);
                inputs.Add(input);
            }
            input.Records.Add(record);
        }
        if (inputs.Count == 0)
        {
            return [.. batch.Records.Select(r => results[r.Key])];
        }

        using var request = new HttpRequestMessage(HttpMethod.Post, _endpoint) { Content = new ByteArrayContent(Body(batch.Operation, _idProperty, inputs)) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _token);
        var answer = await SendAsync(request, cancellationToken, status => status is HttpStatusCode.TooManyRequests or HttpStatusCode.NotFound);
        if (answer.Status == HttpStatusCode.TooManyRequests)
        {
            throw RateLimited(answer);
        }
        if (answer.Status == HttpStatusCode.NotFound)
        {
            // The url is not the API's base: no request can succeed, and the records must not be dead-lettered for it.
            throw new DestinationException("http_404", FailureKind.Fatal, Trim(answer.Body));
        }

        var failed = new Dictionary<int, RecordResult>();
        var unattributed = (string?)null;
        if (answer.Status == HttpStatusCode.MultiStatus || answer.Body.Length > 0)
        {
            using var json = ParseJson(answer);
            if (json.RootElement.ValueKind == JsonValueKind.Object && json.RootElement.TryGetProperty("errors", out var errors) && errors.ValueKind == JsonValueKind.Array)
            {
                foreach (var error in errors.EnumerateArray())
                {
                    var category = String(error, "category") ?? "UNKNOWN";
                    var indexes = Inputs(error, inputs);
                    if (indexes.Count == 0)
                    {
                        unattributed ??= $"{category}: {String(error, "message")}";
                        continue;
                    }
                    foreach (var i in indexes)
                    {
                        var reason = Mask($"{category}: {String(error, "message") ?? "failed"}", inputs[i].Id);
                        failed.TryAdd(i, new RecordResult("", RetryCategories.Contains(category) ? RecordStatus.Retry : RecordStatus.Rejected, reason));
                    }
                }
            }
        }
        for (var i = 0; i < inputs.Count; i++)
        {
            foreach (var record in inputs[i].Records)
            {
                results[record.Key] = failed.TryGetValue(i, out var result) ? result with { Key = record.Key }
                    // An error that names no input leaves the others in doubt: sending them again is harmless (upsert).
                    : unattributed is not null ? new RecordResult(record.Key, RecordStatus.Retry, Mask(unattributed, inputs[i].Id))
                    : new RecordResult(record.Key, RecordStatus.Delivered);
            }
        }
        return [.. batch.Records.Select(r => results[r.Key])];
    }

    /// <summary>The failure of a 429: fatal for the daily policy, otherwise transient with HubSpot's delay.</summary>
    private static DestinationException RateLimited(HttpAnswer answer)
    {
        string? policy = null;
        try
        {
            using var json = JsonDocument.Parse(answer.Body);
            policy = String(json.RootElement, "policyName");
        }
        catch (JsonException)
        {
            // A 429 without HubSpot's body (a proxy's) is a plain rate limit.
        }
        if (string.Equals(policy, "DAILY", StringComparison.OrdinalIgnoreCase))
        {
            return new DestinationException("daily_limit", FailureKind.Fatal, Trim(answer.Body));
        }
        return new DestinationException("http_429", FailureKind.Transient, Trim(answer.Body), RetryDelay(answer.Headers, DateTimeOffset.UtcNow));
    }

    /// <summary>
    /// When to try again after a 429: <c>Retry-After</c> if given, otherwise one whole rolling window
    /// (<c>X-HubSpot-RateLimit-Interval-Milliseconds</c>): the client cannot see when the oldest request of the
    /// window leaves it, but after a whole window every request that filled it has.
    /// </summary>
    internal static TimeSpan? RetryDelay(HttpResponseHeaders headers, DateTimeOffset now)
    {
        if (RateLimitHeaders.RetryAfter(headers, now) is { } wait)
        {
            return wait;
        }
        return RateLimitHeaders.Number(headers, "X-HubSpot-RateLimit-Interval-Milliseconds") is { } interval && interval >= 0
            ? TimeSpan.FromMilliseconds(interval)
            : null;
    }

    private static byte[] Body(RecordOperation operation, string idProperty, List<Input> inputs)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteStartArray("inputs");
            for (var i = 0; i < inputs.Count; i++)
            {
                var input = inputs[i];
                writer.WriteStartObject();
                writer.WriteString("idProperty", idProperty);
                writer.WriteString("id", input.Id);
                writer.WriteString("objectWriteTraceId", i.ToString(CultureInfo.InvariantCulture));
                writer.WriteStartObject("properties");
                var membership = operation == RecordOperation.Add ? "true" : "false";
                var written = new HashSet<string>(StringComparer.Ordinal);
                foreach (var record in input.Records)
                {
                    var property = SegmentProperty(record.Segment);
                    if (written.Add(property))
                    {
                        writer.WriteString(property, membership);
                    }
                }
                // Fields are the profile's, the same in each of its records.
                foreach (var (field, value) in input.Records[0].Fields)
                {
                    if (written.Add(field))
                    {
                        if (value is null)
                        {
                            writer.WriteString(field, "");
                        }
                        else
                        {
                            Webhook.JsonValues.Write(writer, field, value);
                        }
                    }
                }
                writer.WriteEndObject();
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
            writer.WriteEndObject();
        }
        return buffer.ToArray();
    }

    /// <summary>The inputs an error names: by <c>context.objectWriteTraceId</c>, or else by <c>context.id</c> / <c>context.ids</c>.</summary>
    private static List<int> Inputs(JsonElement error, List<Input> inputs)
    {
        var found = new List<int>();
        if (error.ValueKind != JsonValueKind.Object || !error.TryGetProperty("context", out var context) || context.ValueKind != JsonValueKind.Object)
        {
            return found;
        }
        foreach (var value in Values(context, "objectWriteTraceId"))
        {
            if (int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var i) && i < inputs.Count)
            {
                found.Add(i);
            }
        }
        if (found.Count == 0)
        {
            foreach (var value in Values(context, "id").Concat(Values(context, "ids")))
            {
                var i = inputs.FindIndex(x => string.Equals(x.Id, value, StringComparison.OrdinalIgnoreCase));
                if (i >= 0)
                {
                    found.Add(i);
                }
            }
        }
        return found;
    }

    private static IEnumerable<string> Values(JsonElement context, string name)
    {
        if (!context.TryGetProperty(name, out var value))
        {
            yield break;
        }
        if (value.ValueKind == JsonValueKind.String)
        {
            yield return value.GetString()!;
        }
        else if (value.ValueKind == JsonValueKind.Array)
        {
            foreach (var item in value.EnumerateArray())
            {
                if (item.ValueKind == JsonValueKind.String)
                {
                    yield return item.GetString()!;
                }
            }
        }
    }

    private static string? String(JsonElement element, string name)
        => element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    /// <summary>The CRM's error text with the record's id (an email, usually) taken out: reasons end up in reports.</summary>
    private static string Mask(string text, string id) => text.Replace(id, "<id>", StringComparison.OrdinalIgnoreCase);

    private sealed record Input(string Id, List<OutgoingRecord> Records);
}
