using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Engine.Connectors.Destinations.Webhook;

/// <summary>
/// A generic webhook: each batch is one <c>POST</c> of JSON to <c>settings.url</c>.
/// <para><b>The contract</b> (README, "Webhook destinations"). Body:
/// <c>{"batch_id", "run_id", "destination", "records": [{"key", "segment", "profile_id", "change", "identifiers": {type: [values]}, "fields": {…}}]}</c>.
/// Headers: <c>Idempotency-Key</c> (the batch id: a receiver that already applied it answers as it did the first
/// time), <c>X-Engine-Timestamp</c> (Unix seconds) and <c>X-Engine-Signature: sha256=&lt;hex&gt;</c>, the
/// HMAC-SHA256 of <c>timestamp + "." + body</c> under the shared secret, so the receiver can reject forged and
/// replayed calls. Answer: any 2xx acknowledges every record, unless its JSON body lists per-record
/// <c>{"results": [{"key", "status": "ok" | "rejected" | "retry", "reason"}]}</c>; a 400 with such results fails
/// only the records named; 429 with <c>Retry-After</c> and 5xx are retried.</para>
/// </summary>
public sealed class WebhookDestination : HttpDestination
{
    private readonly Uri _url;
    private readonly byte[] _secret;

    public WebhookDestination(DestinationDefinition definition, HttpMessageHandler? handler = null) : base(definition, handler)
    {
        _url = new Uri(definition.Setting("url")!);
        _secret = Encoding.UTF8.GetBytes(Credential("secret"));
    }

    public override async Task<IReadOnlyList<RecordResult>> SendAsync(DestinationBatch batch, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var body = Body(batch);
        var timestamp = DateTimeOffset.UtcNow.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
        using var request = new HttpRequestMessage(HttpMethod.Post, _url) { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        request.Headers.Add("Idempotency-Key", batch.BatchId);
        request.Headers.Add("X-Engine-Timestamp", timestamp);
        request.Headers.Add("X-Engine-Signature", "sha256=" + Sign(_secret, timestamp, body));
        var answer = await SendAsync(request, cancellationToken, status => status == HttpStatusCode.BadRequest);
        if (answer.Body.Length == 0 && answer.Status != HttpStatusCode.BadRequest)
        {
            return [.. batch.Records.Select(r => new RecordResult(r.Key, RecordStatus.Delivered))];
        }
        using var json = ParseJson(answer);
        if (!json.RootElement.TryGetProperty("results", out var results) || results.ValueKind != JsonValueKind.Array)
        {
            if (answer.Status == HttpStatusCode.BadRequest)
            {
                throw new DestinationException("http_400", FailureKind.Permanent, Trim(answer.Body));
            }
            return [.. batch.Records.Select(r => new RecordResult(r.Key, RecordStatus.Delivered))];
        }
        var byKey = new Dictionary<string, RecordResult>(StringComparer.Ordinal);
        foreach (var result in results.EnumerateArray())
        {
            var key = result.TryGetProperty("key", out var k) ? k.GetString() : null;
            var status = result.TryGetProperty("status", out var s) ? s.GetString() : null;
            var reason = result.TryGetProperty("reason", out var r) ? r.GetString() : null;
            if (key is null)
            {
                continue;
            }
            byKey[key] = status switch
            {
                "ok" => new RecordResult(key, RecordStatus.Delivered),
                "rejected" => new RecordResult(key, RecordStatus.Rejected, reason ?? "rejected"),
                _ => new RecordResult(key, RecordStatus.Retry, reason ?? $"status '{status}'"),
            };
        }
        // Records the answer does not name: acknowledged by a 2xx; after a 400 that names the records it refused, the
        // others were not applied and go again without them.
        return [.. batch.Records.Select(r => byKey.TryGetValue(r.Key, out var result) ? result
            : answer.Status == HttpStatusCode.BadRequest ? new RecordResult(r.Key, RecordStatus.Retry, "http_400: sent again without the refused records")
            : new RecordResult(r.Key, RecordStatus.Delivered))];
    }

    /// <summary>The signature of a call: hex HMAC-SHA256 of <c>timestamp.body</c> under <paramref name="secret"/>.</summary>
    public static string Sign(byte[] secret, string timestamp, ReadOnlySpan<byte> body)
    {
        using var hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, secret);
        hmac.AppendData(Encoding.UTF8.GetBytes(timestamp + "."));
        hmac.AppendData(body);
        return Convert.ToHexStringLower(hmac.GetHashAndReset());
    }

    private byte[] Body(DestinationBatch batch)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("batch_id", batch.BatchId);
            writer.WriteString("run_id", batch.RunId);
            writer.WriteString("destination", Definition.Name);
            writer.WriteStartArray("records");
            foreach (var record in batch.Records)
            {
                writer.WriteStartObject();
                writer.WriteString("key", record.Key);
                writer.WriteString("segment", record.Segment);
                writer.WriteNumber("profile_id", record.ProfileId);
                writer.WriteString("change", record.Operation == RecordOperation.Add ? Delivery.DeliveryKeys.Entered : Delivery.DeliveryKeys.Exited);
                writer.WriteStartObject("identifiers");
                foreach (var group in record.Identifiers.GroupBy(i => i.Type))
                {
                    writer.WriteStartArray(group.Key);
                    foreach (var identifier in group)
                    {
                        writer.WriteStringValue(identifier.Value);
                    }
                    writer.WriteEndArray();
                }
                writer.WriteEndObject();
                writer.WriteStartObject("fields");
                foreach (var (field, value) in record.Fields)
                {
                    JsonValues.Write(writer, field, value);
                }
                writer.WriteEndObject();
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
            writer.WriteEndObject();
        }
        return buffer.ToArray();
    }
}

/// <summary>Profile values in JSON: numbers and booleans as such, times in ISO 8601 UTC, dates as yyyy-MM-dd.</summary>
public static class JsonValues
{
    public static void Write(Utf8JsonWriter writer, string name, object? value)
    {
        ArgumentNullException.ThrowIfNull(writer);
        switch (value)
        {
            case null: writer.WriteNull(name); break;
            case string s: writer.WriteString(name, s); break;
            case long l: writer.WriteNumber(name, l); break;
            case double d when double.IsFinite(d): writer.WriteNumber(name, d); break;
            case double: writer.WriteNull(name); break;
            case bool b: writer.WriteBoolean(name, b); break;
            case DateTimeOffset t: writer.WriteString(name, t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture)); break;
            case DateOnly d: writer.WriteString(name, d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)); break;
            default: writer.WriteString(name, Convert.ToString(value, CultureInfo.InvariantCulture)); break;
        }
    }

    /// <summary>A value as text (CSV): invariant numbers, ISO 8601 times, empty for null.</summary>
    public static string Text(object? value) => value switch
    {
        null => "",
        string s => s,
        DateTimeOffset t => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture),
        DateOnly d => d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
        bool b => b ? "true" : "false",
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        _ => Convert.ToString(value, CultureInfo.InvariantCulture) ?? "",
    };
}
