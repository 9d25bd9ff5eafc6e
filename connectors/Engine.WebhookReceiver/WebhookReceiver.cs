using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Engine.WebhookReceiver;

/// <summary>An answer to one call: the HTTP status and the JSON body.</summary>
public readonly record struct ReceiverAnswer(int Status, byte[] Body);

/// <summary>
/// The receiving end of the webhook contract (README, "Webhook destinations"), kept apart from HTTP so that it can be
/// read, and tested, as plain code:
/// <list type="bullet">
/// <item>the call is authentic: <c>X-Engine-Signature</c> is <c>sha256=</c> + hex HMAC-SHA256 of
/// <c>X-Engine-Timestamp + "." + body</c> under the shared secret (compared in constant time), and the timestamp is
/// within the tolerance of now (an old call replayed is refused): 401 otherwise;</item>
/// <item><c>Idempotency-Key</c> is required (400 without it); a key already applied gets its first answer again and
/// applies nothing, across restarts too (the keys and answers are kept in <c>batches.jsonl</c>);</item>
/// <item>each record is checked (key, segment, profile_id, change entered/exited) and answered in
/// <c>{"results": [{"key", "status": "ok" | "rejected", "reason"}]}</c>; an accepted record is appended to
/// <c>received.jsonl</c>, once per record key (a key already stored is acknowledged and not stored again).</item>
/// </list>
/// </summary>
public sealed class WebhookReceiver : IDisposable
{
    public const string RecordsFileName = "received.jsonl";
    public const string BatchesFileName = "batches.jsonl";

    private readonly byte[] _secret;
    private readonly TimeSpan _tolerance;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, byte[]> _answers = new(StringComparer.Ordinal);
    private readonly HashSet<string> _storedKeys = new(StringComparer.Ordinal);
    private readonly StreamWriter _records;
    private readonly StreamWriter _batches;
    private readonly SortedDictionary<string, (long Entered, long Exited)> _bySegment = new(StringComparer.Ordinal);
    private long _calls, _batchCount, _received, _replays, _duplicates, _rejected, _refused;

    public WebhookReceiver(string store, byte[] secret, TimeSpan tolerance, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(time);
        _secret = secret;
        _tolerance = tolerance;
        _time = time;
        Directory.CreateDirectory(store);
        RecordsFile = Path.Combine(store, RecordsFileName);
        var batchesFile = Path.Combine(store, BatchesFileName);
        // What earlier sessions received: their record keys and their batches' answers.
        if (File.Exists(RecordsFile))
        {
            foreach (var line in File.ReadLines(RecordsFile))
            {
                using var json = JsonDocument.Parse(line);
                _storedKeys.Add(json.RootElement.GetProperty("record").GetProperty("key").GetString()!);
            }
        }
        if (File.Exists(batchesFile))
        {
            foreach (var line in File.ReadLines(batchesFile))
            {
                using var json = JsonDocument.Parse(line);
                _answers[json.RootElement.GetProperty("idempotency_key").GetString()!] = Encoding.UTF8.GetBytes(json.RootElement.GetProperty("answer").GetRawText());
            }
        }
        StoredRecords = _storedKeys.Count;
        _records = new StreamWriter(new FileStream(RecordsFile, FileMode.Append, FileAccess.Write, FileShare.Read), new UTF8Encoding(false));
        _batches = new StreamWriter(new FileStream(batchesFile, FileMode.Append, FileAccess.Write, FileShare.Read), new UTF8Encoding(false));
    }

    /// <summary>Where accepted records go, one JSON object per line: <c>{"received_at", "batch_id", "run_id", "destination", "record": {…}}</c>.</summary>
    public string RecordsFile { get; }

    /// <summary>Records stored before this session.</summary>
    public long StoredRecords { get; }

    /// <summary>Handles one POST.</summary>
    public ReceiverAnswer Receive(byte[] body, string timestamp, string signature, string idempotencyKey)
    {
        ArgumentNullException.ThrowIfNull(body);
        lock (_gate)
        {
            _calls++;
            if (!long.TryParse(timestamp, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds)
                || (_time.GetUtcNow() - DateTimeOffset.FromUnixTimeSeconds(Math.Min(seconds, 253402300799))).Duration() > _tolerance)
            {
                _refused++;
                return Error(401, "X-Engine-Timestamp is missing or too far from now");
            }
            if (!SignatureMatches(timestamp, body, signature))
            {
                _refused++;
                return Error(401, "bad signature");
            }
            if (string.IsNullOrEmpty(idempotencyKey))
            {
                return Error(400, "Idempotency-Key is required");
            }
            if (_answers.TryGetValue(idempotencyKey, out var stored))
            {
                _replays++;
                return new ReceiverAnswer(200, stored);
            }
            JsonDocument json;
            try
            {
                json = JsonDocument.Parse(body);
            }
            catch (JsonException e)
            {
                return Error(400, $"the body is not JSON: {e.Message}");
            }
            using (json)
            {
                var root = json.RootElement;
                if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("records", out var records) || records.ValueKind != JsonValueKind.Array)
                {
                    return Error(400, "the body has no records array");
                }
                foreach (var record in records.EnumerateArray())
                {
                    if (record.ValueKind != JsonValueKind.Object || !record.TryGetProperty("key", out var key) || key.ValueKind != JsonValueKind.String)
                    {
                        // Nothing to answer it by: the whole call is malformed, and nothing of it is applied.
                        return Error(400, "a record has no key");
                    }
                }
                var answer = Apply(root, records);
                WriteBatch(idempotencyKey, root, records.GetArrayLength(), answer);
                _answers[idempotencyKey] = answer;
                _batchCount++;
                return new ReceiverAnswer(200, answer);
            }
        }
    }

    private bool SignatureMatches(string timestamp, byte[] body, string signature)
    {
        if (!signature.StartsWith("sha256=", StringComparison.Ordinal))
        {
            return false;
        }
        using var hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, _secret);
        hmac.AppendData(Encoding.UTF8.GetBytes(timestamp + "."));
        hmac.AppendData(body);
        var expected = Encoding.ASCII.GetBytes(Convert.ToHexStringLower(hmac.GetHashAndReset()));
        return CryptographicOperations.FixedTimeEquals(expected, Encoding.ASCII.GetBytes(signature[7..]));
    }

    private byte[] Apply(JsonElement root, JsonElement records)
    {
        var receivedAt = _time.GetUtcNow().UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);
        using var output = new MemoryStream();
        using (var writer = new Utf8JsonWriter(output))
        {
            writer.WriteStartObject();
            writer.WriteStartArray("results");
            foreach (var record in records.EnumerateArray())
            {
                var key = record.GetProperty("key").GetString()!;
                writer.WriteStartObject();
                writer.WriteString("key", key);
                if (Invalid(record) is { } reason)
                {
                    _rejected++;
                    writer.WriteString("status", "rejected");
                    writer.WriteString("reason", reason);
                }
                else
                {
                    if (_storedKeys.Add(key))
                    {
                        WriteRecord(receivedAt, root, record);
                    }
                    else
                    {
                        _duplicates++;
                    }
                    writer.WriteString("status", "ok");
                }
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
            writer.WriteEndObject();
        }
        _records.Flush();
        return output.ToArray();
    }

    private static string? Invalid(JsonElement record)
    {
        if (!record.TryGetProperty("segment", out var segment) || segment.ValueKind != JsonValueKind.String || segment.GetString()!.Length == 0)
        {
            return "invalid record: no segment";
        }
        if (!record.TryGetProperty("profile_id", out var profile) || !profile.TryGetInt64(out _))
        {
            return "invalid record: no profile_id";
        }
        if (!record.TryGetProperty("change", out var change) || change.GetString() is not ("entered" or "exited"))
        {
            return "invalid record: change is not entered or exited";
        }
        return null;
    }

    private void WriteRecord(string receivedAt, JsonElement root, JsonElement record)
    {
        var segment = record.GetProperty("segment").GetString()!;
        var entered = record.GetProperty("change").GetString() == "entered";
        _bySegment[segment] = _bySegment.TryGetValue(segment, out var counts)
            ? (counts.Entered + (entered ? 1 : 0), counts.Exited + (entered ? 0 : 1))
            : (entered ? 1 : 0, entered ? 0 : 1);
        _received++;
        using var line = new MemoryStream();
        using (var writer = new Utf8JsonWriter(line))
        {
            writer.WriteStartObject();
            writer.WriteString("received_at", receivedAt);
            CopyString(writer, root, "batch_id");
            CopyString(writer, root, "run_id");
            CopyString(writer, root, "destination");
            writer.WritePropertyName("record");
            record.WriteTo(writer);
            writer.WriteEndObject();
        }
        _records.WriteLine(Encoding.UTF8.GetString(line.ToArray()));
    }

    private void WriteBatch(string idempotencyKey, JsonElement root, int records, byte[] answer)
    {
        using var line = new MemoryStream();
        using (var writer = new Utf8JsonWriter(line))
        {
            writer.WriteStartObject();
            writer.WriteString("idempotency_key", idempotencyKey);
            CopyString(writer, root, "batch_id");
            CopyString(writer, root, "run_id");
            writer.WriteNumber("records", records);
            writer.WritePropertyName("answer");
            using (var parsed = JsonDocument.Parse(answer))
            {
                parsed.RootElement.WriteTo(writer);
            }
            writer.WriteEndObject();
        }
        // The answer is kept only after the records it acknowledges are written.
        _batches.WriteLine(Encoding.UTF8.GetString(line.ToArray()));
        _batches.Flush();
    }

    private static void CopyString(Utf8JsonWriter writer, JsonElement root, string name)
    {
        if (root.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String)
        {
            writer.WriteString(name, value.GetString());
        }
        else
        {
            writer.WriteNull(name);
        }
    }

    private static ReceiverAnswer Error(int status, string message)
    {
        using var output = new MemoryStream();
        using (var writer = new Utf8JsonWriter(output))
        {
            writer.WriteStartObject();
            writer.WriteString("error", message);
            writer.WriteEndObject();
        }
        return new ReceiverAnswer(status, output.ToArray());
    }

    /// <summary>This session's counts as JSON (the GET answer).</summary>
    public string StatsJson()
    {
        lock (_gate)
        {
            using var output = new MemoryStream();
            using (var writer = new Utf8JsonWriter(output))
            {
                writer.WriteStartObject();
                writer.WriteNumber("calls", _calls);
                writer.WriteNumber("batches", _batchCount);
                writer.WriteNumber("records", _received);
                writer.WriteNumber("repeated_batches", _replays);
                writer.WriteNumber("duplicate_records", _duplicates);
                writer.WriteNumber("rejected_records", _rejected);
                writer.WriteNumber("refused_calls", _refused);
                writer.WriteNumber("stored_records", _storedKeys.Count);
                writer.WriteStartObject("segments");
                foreach (var (segment, (entered, exited)) in _bySegment)
                {
                    writer.WriteStartObject(segment);
                    writer.WriteNumber("entered", entered);
                    writer.WriteNumber("exited", exited);
                    writer.WriteEndObject();
                }
                writer.WriteEndObject();
                writer.WriteEndObject();
            }
            return Encoding.UTF8.GetString(output.ToArray());
        }
    }

    /// <summary>One line on what this session received.</summary>
    public string Summary()
    {
        lock (_gate)
        {
            static string N(long n) => n.ToString("N0", CultureInfo.InvariantCulture);
            var segments = _bySegment.Count == 0 ? "" : " — " + string.Join(", ", _bySegment.Select(s => $"{s.Key} +{N(s.Value.Entered)} -{N(s.Value.Exited)}"));
            return $"webhook receiver: {N(_received)} records in {N(_batchCount)} {(_batchCount == 1 ? "batch" : "batches")}{segments}; "
                + $"{N(_replays)} repeated batches answered from the idempotency store, {N(_duplicates)} duplicate records, {N(_rejected)} rejected, "
                + $"{N(_refused)} calls refused (signature or timestamp); {N(_storedKeys.Count)} records in all in {RecordsFile}";
        }
    }

    public void Dispose()
    {
        _records.Dispose();
        _batches.Dispose();
    }
}
