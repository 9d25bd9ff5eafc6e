using System.Globalization;
using System.Net;
using System.Text.Json;
using Engine.Identity;

namespace Engine.Connectors.Destinations.Meta;

/// <summary>
/// Meta (Facebook) Custom Audiences from customer data, through the Marketing API's
/// <c>/{audience_id}/users</c> edge: <c>POST</c> adds, <c>DELETE</c> removes.
/// <para><b>The request.</b> Form parameters <c>access_token</c> and <c>payload</c>, the latter
/// <c>{"schema": ["EMAIL", "PHONE"], "data": [[sha256(email), sha256(phone)], …]}</c>: the schema lists the key
/// types the destination's <c>identify_by</c> holds (emails and phones, by their identity normaliser), each row one
/// profile, a key the profile lacks sent as <c>""</c>. At most 10,000 rows per request, as Meta documents (a batch is
/// one request; the type's maximum batch size says so). Before hashing: emails trimmed and lower-cased; phones digits
/// only with the country code, no '+', no leading zeros; SHA-256 as lower-case hex.</para>
/// <para><b>A profile with several emails or phones</b> goes out as one row with its first email and first phone in
/// the destination's order (values sorted within a type), so a record is exactly one row: a batch never exceeds the
/// 10,000-row limit, an invalid entry names one record, and a later removal sends the same row as the addition did.</para>
/// <para><b>The answer.</b> <c>{"audience_id", "session_id", "num_received", "num_invalid_entries",
/// "invalid_entry_samples": {value: reason}}</c>. Meta counts invalid rows but names only samples of them; a record
/// whose hashed value is among the samples is rejected with Meta's reason, every other record is delivered. Invalid
/// entries beyond the samples cannot be told apart and count in <see cref="UnattributedInvalidEntries"/>. Fewer rows
/// received than sent is a transient failure (the batch is sent again; adding and removing are idempotent).</para>
/// <para><b>Errors</b> (<c>{"error": {"message", "type", "code", "error_subcode", "is_transient", "fbtrace_id"}}</c>,
/// usually HTTP 400): throttling (codes 4, 17, 32, 341, 613 and the business-use-case codes 80000–80014) is
/// transient, retried after <c>estimated_time_to_regain_access</c> of the <c>X-Business-Use-Case-Usage</c> header
/// when it gives one; an invalid or expired token (190), missing permissions (10, 102, 200–299), an audience that does
/// not exist or cannot be reached (100 with subcode 33) or is blocked (100/1713230, 368) is fatal; any other error is
/// permanent for the batch. 429 and 5xx are transient, as for every HTTP destination.</para>
/// </summary>
public sealed class MetaCustomAudiencesDestination : HttpDestination
{
    /// <summary>The Graph API base the destination calls unless <c>settings.url</c> says otherwise.</summary>
    public const string DefaultUrl = "https://graph.facebook.com/v25.0";

    /// <summary>Rows Meta takes in one request.</summary>
    public const int MaxUsersPerRequest = 10_000;

    private static readonly int[] ThrottleCodes = [4, 17, 32, 341, 613];

    private readonly Uri _users;
    private readonly string _token;
    private readonly IReadOnlyDictionary<string, NormalizerKind> _kinds;
    private readonly bool _sendEmail;
    private readonly bool _sendPhone;
    private long _unattributed;

    /// <param name="definition">The destination; <c>settings.audience_id</c> is required, <c>settings.url</c> optional.</param>
    /// <param name="identifierKinds">The normaliser kind of each identifier type the destination matches on.</param>
    /// <param name="handler">The HTTP handler (tests); null for the default.</param>
    public MetaCustomAudiencesDestination(DestinationDefinition definition, IReadOnlyDictionary<string, NormalizerKind> identifierKinds,
        HttpMessageHandler? handler = null) : base(definition, handler)
    {
        ArgumentNullException.ThrowIfNull(identifierKinds);
        var audience = definition.Setting("audience_id")?.Trim() ?? "";
        if (audience.Length == 0 || !audience.All(char.IsAsciiDigit))
        {
            throw new DestinationException("invalid_setting", FailureKind.Fatal,
                $"destination '{definition.Name}': audience_id '{audience}' is not a Custom Audience id (digits)");
        }
        var url = (definition.Setting("url") ?? DefaultUrl).TrimEnd('/');
        _users = new Uri($"{url}/{audience}/users");
        _kinds = identifierKinds;
        _sendEmail = definition.IdentifyBy.Any(t => identifierKinds.GetValueOrDefault(t, NormalizerKind.Id) == NormalizerKind.Email);
        _sendPhone = definition.IdentifyBy.Any(t => identifierKinds.GetValueOrDefault(t, NormalizerKind.Id) == NormalizerKind.Phone);
        if (!_sendEmail && !_sendPhone)
        {
            throw new DestinationException("invalid_setting", FailureKind.Fatal,
                $"destination '{definition.Name}' matches on no email or phone type, and Meta matches on nothing else here");
        }
        _token = Credential("access_token");
    }

    /// <summary>Invalid entries Meta counted but did not name among its samples, since this client was built.</summary>
    public long UnattributedInvalidEntries => Interlocked.Read(ref _unattributed);

    /// <summary>The payload's schema: the key types sent, in column order.</summary>
    public IReadOnlyList<string> Schema => [.. (_sendEmail ? ["EMAIL"] : Array.Empty<string>()), .. (_sendPhone ? ["PHONE"] : Array.Empty<string>())];

    public override async Task<IReadOnlyList<RecordResult>> SendAsync(DestinationBatch batch, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var results = new Dictionary<string, RecordResult>(StringComparer.Ordinal);
        var rows = new List<(OutgoingRecord Record, string[] Values)>(batch.Records.Count);
        foreach (var record in batch.Records)
        {
            if (Row(record) is { } values)
            {
                rows.Add((record, values));
            }
            else
            {
                results[record.Key] = new RecordResult(record.Key, RecordStatus.Rejected, "no email or phone Meta can match on");
            }
        }
        if (rows.Count == 0)
        {
            return [.. results.Values];
        }

        var form = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["payload"] = Payload(rows),
            ["access_token"] = _token,
        };
        using var request = new HttpRequestMessage(batch.Operation == RecordOperation.Add ? HttpMethod.Post : HttpMethod.Delete, _users)
        {
            Content = new FormUrlEncodedContent(form),
        };
        // Meta's errors come as JSON with 4xx; 429 and 5xx are left to the shared handling (transient, Retry-After).
        var answer = await SendAsync(request, cancellationToken, status => (int)status is >= 400 and < 500 && status != HttpStatusCode.TooManyRequests);
        if ((int)answer.Status >= 400)
        {
            throw Failure(answer);
        }

        using var json = ParseJson(answer);
        var root = json.RootElement;
        var received = root.TryGetProperty("num_received", out var r) && r.TryGetInt64(out var n) ? n : -1;
        if (received < rows.Count)
        {
            throw new DestinationException("incomplete_receipt", FailureKind.Transient,
                $"Meta received {received} of {rows.Count} rows: {Trim(answer.Body)}");
        }
        var invalid = root.TryGetProperty("num_invalid_entries", out var i) && i.TryGetInt64(out var count) ? count : 0;
        var samples = Samples(root);
        var rejected = 0L;
        foreach (var (record, values) in rows)
        {
            var sample = values.FirstOrDefault(v => v.Length > 0 && samples.ContainsKey(v));
            if (sample is not null)
            {
                rejected++;
                results[record.Key] = new RecordResult(record.Key, RecordStatus.Rejected, $"invalid entry: {samples[sample]}");
            }
            else
            {
                results[record.Key] = new RecordResult(record.Key, RecordStatus.Delivered);
            }
        }
        if (invalid > rejected)
        {
            Interlocked.Add(ref _unattributed, invalid - rejected);
        }
        return [.. batch.Records.Select(rec => results[rec.Key])];
    }

    /// <summary>A record's row (hashed values in schema order, "" for a key it lacks), or null when it has no key at all.</summary>
    private string[]? Row(OutgoingRecord record)
    {
        var (emails, phones) = HashedIdentifiers.Split(record, _kinds);
        var email = emails.Select(HashedIdentifiers.NormalizeEmail).FirstOrDefault(e => e is not null);
        var phone = phones.Select(HashedIdentifiers.MetaPhone).FirstOrDefault(p => p is not null);
        if ((email is null || !_sendEmail) && (phone is null || !_sendPhone))
        {
            return null;
        }
        var values = new List<string>(2);
        if (_sendEmail)
        {
            values.Add(email is null ? "" : HashedIdentifiers.Sha256Hex(email));
        }
        if (_sendPhone)
        {
            values.Add(phone is null ? "" : HashedIdentifiers.Sha256Hex(phone));
        }
        return [.. values];
    }

    private string Payload(List<(OutgoingRecord Record, string[] Values)> rows)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteStartArray("schema");
            foreach (var key in Schema)
            {
                writer.WriteStringValue(key);
            }
            writer.WriteEndArray();
            writer.WriteStartArray("data");
            foreach (var (_, values) in rows)
            {
                writer.WriteStartArray();
                foreach (var value in values)
                {
                    writer.WriteStringValue(value);
                }
                writer.WriteEndArray();
            }
            writer.WriteEndArray();
            writer.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }

    /// <summary>The invalid entries Meta named: value → reason (a list of values is read too, with no reason).</summary>
    private static Dictionary<string, string> Samples(JsonElement root)
    {
        var samples = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        if (!root.TryGetProperty("invalid_entry_samples", out var element))
        {
            return samples;
        }
        if (element.ValueKind == JsonValueKind.Object)
        {
            foreach (var property in element.EnumerateObject())
            {
                samples[property.Name] = property.Value.ValueKind == JsonValueKind.String ? property.Value.GetString() ?? "invalid" : property.Value.GetRawText();
            }
        }
        else if (element.ValueKind == JsonValueKind.Array)
        {
            foreach (var item in element.EnumerateArray())
            {
                if (item.ValueKind == JsonValueKind.String && item.GetString() is { } value)
                {
                    samples[value] = "invalid";
                }
            }
        }
        return samples;
    }

    /// <summary>Meta's error answer as a failure of the right kind (see the class remarks).</summary>
    private static DestinationException Failure(HttpAnswer answer)
    {
        var status = (int)answer.Status;
        JsonElement error;
        try
        {
            using var json = JsonDocument.Parse(answer.Body);
            if (!json.RootElement.TryGetProperty("error", out var e) || e.ValueKind != JsonValueKind.Object)
            {
                throw new JsonException("no error object");
            }
            error = e.Clone();
        }
        catch (JsonException)
        {
            return new DestinationException($"http_{status}", status is 401 or 403 ? FailureKind.Fatal : FailureKind.Permanent, Trim(answer.Body));
        }
        var code = Int(error, "code");
        var subcode = Int(error, "error_subcode");
        var detail = Trim(string.Create(CultureInfo.InvariantCulture,
            $"{Text(error, "type") ?? "error"} {code}{(subcode is null ? "" : $"/{subcode}")}: {Text(error, "message")}{(Text(error, "fbtrace_id") is { } trace ? $" (fbtrace_id {trace})" : "")}"));
        if (code is { } c && (ThrottleCodes.Contains(c) || c is >= 80000 and <= 80014))
        {
            return new DestinationException("rate_limited", FailureKind.Transient, detail, RegainAccess(answer));
        }
        switch (code)
        {
            case 190:
                return new DestinationException("invalid_token", FailureKind.Fatal, detail);
            case 10 or 102 or (>= 200 and <= 299):
                return new DestinationException("permission_denied", FailureKind.Fatal, detail);
            case 100 when subcode == 33:
                return new DestinationException("audience_not_found", FailureKind.Fatal, detail);
            case 100 when subcode == 1713230:
            case 368:
                return new DestinationException("audience_blocked", FailureKind.Fatal, detail);
        }
        if (code is 1 or 2 || (error.TryGetProperty("is_transient", out var transient) && transient.ValueKind == JsonValueKind.True))
        {
            return new DestinationException(code is null ? "meta_error" : $"meta_error_{code}", FailureKind.Transient, detail);
        }
        return new DestinationException(code is null ? $"http_{status}" : $"meta_error_{code}",
            code is null && status is 401 or 403 ? FailureKind.Fatal : FailureKind.Permanent, detail);
    }

    /// <summary>
    /// When the throttle lifts: the largest <c>estimated_time_to_regain_access</c> (minutes) of the
    /// <c>X-Business-Use-Case-Usage</c> header; null when it is absent or zero (under a minute: back off as usual).
    /// </summary>
    private static TimeSpan? RegainAccess(HttpAnswer answer)
    {
        if (!answer.Headers.TryGetValues("X-Business-Use-Case-Usage", out var values))
        {
            return null;
        }
        var minutes = 0L;
        foreach (var value in values)
        {
            try
            {
                using var json = JsonDocument.Parse(value);
                if (json.RootElement.ValueKind != JsonValueKind.Object)
                {
                    continue;
                }
                foreach (var business in json.RootElement.EnumerateObject())
                {
                    if (business.Value.ValueKind != JsonValueKind.Array)
                    {
                        continue;
                    }
                    foreach (var usage in business.Value.EnumerateArray())
                    {
                        if (usage.ValueKind == JsonValueKind.Object && usage.TryGetProperty("estimated_time_to_regain_access", out var regain)
                            && regain.TryGetInt64(out var m))
                        {
                            minutes = Math.Max(minutes, m);
                        }
                    }
                }
            }
            catch (JsonException)
            {
                // A header we cannot read says nothing about the wait: back off as usual.
            }
        }
        return minutes > 0 ? TimeSpan.FromMinutes(minutes) : null;
    }

    private static int? Int(JsonElement element, string name)
        => element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var i) ? i : null;

    private static string? Text(JsonElement element, string name)
        => element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
}
