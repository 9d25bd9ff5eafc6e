using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Engine.Connectors.Tests.ContractServers;

/// <summary>
/// Meta's Marketing API, the part Custom Audiences from customer data use: <c>POST</c> and <c>DELETE</c>
/// <c>/{version}/{audience_id}/users</c> with the parameters <c>access_token</c> and <c>payload</c> (form, query or JSON
/// body), as the Custom Audience Users reference documents.
/// <list type="bullet">
/// <item>The payload is <c>{"schema": key | [keys], "data": [...]}</c>; a multi-key schema takes rows of as many values.
/// At most 10,000 rows, else the whole request is refused (code 105, "the number of parameters exceeded the maximum").</item>
/// <item>Each value of a hashed key is a SHA-256 hex string (64 characters) or "" for a key the row lacks; a row with
/// a malformed value, or no value at all, is an invalid entry: counted in <c>num_invalid_entries</c>, named in
/// <c>invalid_entry_samples</c> (value → reason, at most <see cref="MaxInvalidSamples"/>), not applied.
/// <see cref="InvalidValues"/> stands for values Meta refuses for its own reasons.</item>
/// <item>Errors are <c>{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}</c> with HTTP 400: an
/// unknown or expired token is code 190 (subcode 463 when expired), an unknown audience 100/33, a malformed payload 100;
/// past <see cref="RequestsPerSecond"/> the answer is the custom-audience throttle (80003, <c>is_transient</c>) with the
/// <c>X-Business-Use-Case-Usage</c> header whose <c>estimated_time_to_regain_access</c> is <see cref="RegainAccessMinutes"/>.</item>
/// </list>
/// Membership is kept as a set of hashes per audience and key type; every row received is counted, and the rows of
/// requests whose answer the fault plan dropped after applying them are counted apart, so a test can tell a repeat the
/// client could not avoid from one it should not have sent.
/// </summary>
public sealed partial class MetaServer : ContractServer
{
    /// <summary>The Graph API version the server answers under.</summary>
    public const string Version = "v25.0";

    private static readonly HashSet<string> HashedKeys = new(StringComparer.Ordinal)
    {
        "EMAIL", "PHONE", "EMAIL_SHA256", "PHONE_SHA256", "FN", "LN", "FI", "CT", "ST", "ZIP", "COUNTRY", "DOBY", "DOBM", "DOBD", "GEN",
    };

    private static readonly HashSet<string> PlainKeys = new(StringComparer.Ordinal) { "MADID", "EXTERN_ID", "PAGEUID", "LOOKALIKE_VALUE" };

    private readonly ConcurrentDictionary<string, ConcurrentDictionary<string, HashSet<string>>> _audiences = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<DateTimeOffset> _recent = new();
    private readonly Lock _gate = new();
    private long _rowsReceived;
    private long _rowsInLostAnswers;
    private long _requestsApplied;

    public MetaServer(FaultPlan? faults = null) : base(faults)
    {
    }

    /// <summary>Tokens the server accepts.</summary>
    public ConcurrentDictionary<string, bool> AccessTokens { get; } = new(StringComparer.Ordinal);

    /// <summary>Tokens that were valid and have expired (code 190, subcode 463).</summary>
    public ConcurrentDictionary<string, bool> ExpiredTokens { get; } = new(StringComparer.Ordinal);

    /// <summary>Well-formed values Meta nevertheless counts as invalid entries (its own checks, which a hash hides).</summary>
    public ConcurrentDictionary<string, string> InvalidValues { get; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>How many invalid entries an answer names at most.</summary>
    public int MaxInvalidSamples { get; set; } = 10;

    /// <summary>Requests per second before the throttle answers; null for none.</summary>
    public int? RequestsPerSecond { get; set; }

    /// <summary>The <c>estimated_time_to_regain_access</c> (minutes) a throttled answer reports.</summary>
    public int RegainAccessMinutes { get; set; }

    /// <summary>Every row applied or counted invalid, by its values joined with '|': how many times it arrived.</summary>
    public ConcurrentDictionary<string, int> RowCounts { get; } = new(StringComparer.Ordinal);

    /// <summary>Rows received in requests that were applied (valid or not).</summary>
    public long RowsReceived => Interlocked.Read(ref _rowsReceived);

    /// <summary>Rows of applied requests whose answer was then lost (the client could not know they arrived).</summary>
    public long RowsInLostAnswers => Interlocked.Read(ref _rowsInLostAnswers);

    /// <summary>Requests applied (answered 200, or lost after applying).</summary>
    public long RequestsApplied => Interlocked.Read(ref _requestsApplied);

    /// <summary>The schemas of the applied requests, as sent.</summary>
    public ConcurrentQueue<string> Schemas { get; } = new();

    /// <summary>The <c>url</c> setting a destination needs to call this server.</summary>
    public string ApiUrl => new Uri(BaseUrl, Version).ToString();

    /// <summary>Creates an empty audience.</summary>
    public void AddAudience(string audienceId) => _audiences.TryAdd(audienceId, new ConcurrentDictionary<string, HashSet<string>>(StringComparer.Ordinal));

    /// <summary>Puts hashes into an audience (members from before the test).</summary>
    public void Seed(string audienceId, string key, IEnumerable<string> hashes)
    {
        lock (_gate)
        {
            var set = _audiences[audienceId].GetOrAdd(key, _ => new HashSet<string>(StringComparer.Ordinal));
            set.UnionWith(hashes);
        }
    }

    /// <summary>The hashes of <paramref name="key"/> type in the audience.</summary>
    public IReadOnlySet<string> Members(string audienceId, string key)
    {
        lock (_gate)
        {
            return _audiences[audienceId].TryGetValue(key, out var set) ? new HashSet<string>(set, StringComparer.Ordinal) : new HashSet<string>();
        }
    }

    protected override void Map(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.Run(HandleAsync);
    }

    private async Task HandleAsync(HttpContext context)
    {
        var match = UsersPath().Match(context.Request.Path.Value ?? "");
        var method = context.Request.Method;
        if (!match.Success || (method != "POST" && method != "DELETE"))
        {
            await ErrorAsync(context, 400, "GraphMethodException", 100, 33, $"Unsupported {method.ToLowerInvariant()} request.");
            return;
        }
        var audienceId = match.Groups["audience"].Value;
        var parameters = await ParametersAsync(context);
        if (parameters is null)
        {
            await ErrorAsync(context, 400, "OAuthException", 100, null, "(#100) Invalid parameter");
            return;
        }

        var token = parameters.GetValueOrDefault("access_token");
        if (token is not null && ExpiredTokens.ContainsKey(token))
        {
            await ErrorAsync(context, 400, "OAuthException", 190, 463, "Error validating access token: Session has expired.");
            return;
        }
        if (token is null || !AccessTokens.ContainsKey(token))
        {
            await ErrorAsync(context, 400, "OAuthException", 190, null, "Invalid OAuth access token - Cannot parse access token");
            return;
        }
        if (Throttled())
        {
            context.Response.Headers["X-Business-Use-Case-Usage"] = JsonSerializer.Serialize(new Dictionary<string, object[]>
            {
                ["1234567890"] = [new Dictionary<string, object>
                {
                    ["type"] = "custom_audience", ["call_count"] = 100, ["total_cputime"] = 12, ["total_time"] = 15,
                    ["estimated_time_to_regain_access"] = RegainAccessMinutes,
                }],
            });
            await ErrorAsync(context, 400, "OAuthException", 80003, 2446079, "There have been too many calls to this ad-account. Wait a bit and try again.", transient: true);
            return;
        }
        if (!_audiences.TryGetValue(audienceId, out var audience))
        {
            await ErrorAsync(context, 400, "GraphMethodException", 100, 33,
                $"Unsupported {method.ToLowerInvariant()} request. Object with ID '{audienceId}' does not exist, cannot be loaded due to missing permissions, or does not support this operation.");
            return;
        }
        if (parameters.GetValueOrDefault("payload") is not { } payloadText)
        {
            await ErrorAsync(context, 400, "OAuthException", 100, null, "(#100) The parameter payload is required");
            return;
        }
        JsonNode? payload;
        try
        {
            payload = JsonNode.Parse(payloadText);
        }
        catch (JsonException)
        {
            payload = null;
        }
        if (Parse(payload) is not ({ } schema, { } data))
        {
            await ErrorAsync(context, 400, "OAuthException", 100, null, "(#100) Invalid parameter: payload must hold a schema and data");
            return;
        }
        if (data.Count > 10_000)
        {
            await ErrorAsync(context, 400, "OAuthException", 105, null, "(#105) The number of parameters exceeded the maximum for this operation");
            return;
        }

        var samples = new Dictionary<string, string>(StringComparer.Ordinal);
        var invalid = 0;
        lock (_gate)
        {
            foreach (var row in data)
            {
                var reason = Invalid(schema, row, out var bad);
                RowCounts.AddOrUpdate(string.Join('|', row), 1, (_, n) => n + 1);
                if (reason is not null)
                {
                    invalid++;
                    if (samples.Count < MaxInvalidSamples)
                    {
                        samples[bad] = reason;
                    }
                    continue;
                }
                for (var k = 0; k < schema.Count; k++)
                {
                    if (row[k].Length == 0)
                    {
                        continue;
                    }
                    var set = audience.GetOrAdd(schema[k], _ => new HashSet<string>(StringComparer.Ordinal));
                    if (method == "POST")
                    {
                        set.Add(row[k]);
                    }
                    else
                    {
                        set.Remove(row[k]);
                    }
                }
            }
        }
        Interlocked.Add(ref _rowsReceived, data.Count);
        Interlocked.Increment(ref _requestsApplied);
        Schemas.Enqueue(string.Join(',', schema));
        if (LoseAnswer(context))
        {
            Interlocked.Add(ref _rowsInLostAnswers, data.Count);
            return;
        }
        await JsonAsync(context, 200, new JsonObject
        {
            ["audience_id"] = audienceId,
            ["session_id"] = Random.Shared.NextInt64(1, long.MaxValue).ToString(CultureInfo.InvariantCulture),
            ["num_received"] = data.Count,
            ["num_invalid_entries"] = invalid,
            ["invalid_entry_samples"] = new JsonObject(samples.Select(s => KeyValuePair.Create(s.Key, (JsonNode?)JsonValue.Create(s.Value)))),
        });
    }

    /// <summary>Why a row is an invalid entry (and the value named as the sample), or null when it is valid.</summary>
    private string? Invalid(List<string> schema, string[] row, out string sample)
    {
        sample = string.Join(',', row);
        if (row.Length != schema.Count)
        {
            return $"the row has {row.Length} values for a schema of {schema.Count}";
        }
        if (row.All(v => v.Length == 0))
        {
            return "the row has no value";
        }
        for (var k = 0; k < schema.Count; k++)
        {
            var value = row[k];
            if (value.Length == 0)
            {
                continue;
            }
            if (HashedKeys.Contains(schema[k]) && !Sha256().IsMatch(value))
            {
                sample = value;
                return $"{schema[k]} is not a SHA-256 hex hash";
            }
            if (InvalidValues.TryGetValue(value, out var reason))
            {
                sample = value;
                return reason;
            }
        }
        return null;
    }

    /// <summary>The schema (keys) and rows of a payload, or nulls when it is malformed as a whole.</summary>
    private static (List<string>? Schema, List<string[]>? Data) Parse(JsonNode? payload)
    {
        if (payload is not JsonObject obj || obj["data"] is not JsonArray data)
        {
            return (null, null);
        }
        List<string> schema;
        var multiKey = obj["schema"] is JsonArray;
        if (obj["schema"] is JsonArray keys)
        {
            schema = [.. keys.Select(k => k is JsonValue v && v.TryGetValue<string>(out var s) ? s : "")];
        }
        else if (obj["schema"] is JsonValue single && single.TryGetValue<string>(out var key))
        {
            schema = [key];
        }
        else
        {
            return (null, null);
        }
        if (schema.Count == 0 || schema.Any(k => !HashedKeys.Contains(k) && !PlainKeys.Contains(k)) || schema.Distinct().Count() != schema.Count)
        {
            return (null, null);
        }
        var rows = new List<string[]>(data.Count);
        foreach (var item in data)
        {
            if (multiKey && item is JsonArray values)
            {
                rows.Add([.. values.Select(v => v is JsonValue jv && jv.TryGetValue<string>(out var s) ? s : v?.ToJsonString() ?? "")]);
            }
            else if (!multiKey && item is JsonValue value && value.TryGetValue<string>(out var s))
            {
                rows.Add([s]);
            }
            else
            {
                return (null, null);
            }
        }
        return (schema, rows);
    }

    /// <summary>The request's parameters: the query string, then a form or JSON body.</summary>
    private static async Task<Dictionary<string, string>?> ParametersAsync(HttpContext context)
    {
        var parameters = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in context.Request.Query)
        {
            parameters[key] = value.ToString();
        }
        if (context.Request.HasFormContentType)
        {
            var form = await context.Request.ReadFormAsync(context.RequestAborted);
            foreach (var (key, value) in form)
            {
                parameters[key] = value.ToString();
            }
        }
        else if (context.Request.ContentType?.StartsWith("application/json", StringComparison.OrdinalIgnoreCase) == true)
        {
            try
            {
                if (await JsonNode.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted) is not JsonObject body)
                {
                    return null;
                }
                foreach (var (key, value) in body)
                {
                    parameters[key] = value is JsonValue v && v.TryGetValue<string>(out var s) ? s : value?.ToJsonString() ?? "";
                }
            }
            catch (JsonException)
            {
                return null;
            }
        }
        return parameters;
    }

    private bool Throttled()
    {
        if (RequestsPerSecond is not { } limit)
        {
            return false;
        }
        lock (_gate)
        {
            var now = DateTimeOffset.UtcNow;
            while (_recent.TryPeek(out var oldest) && now - oldest > TimeSpan.FromSeconds(1))
            {
                _recent.TryDequeue(out _);
            }
            if (_recent.Count >= limit)
            {
                return true;
            }
            _recent.Enqueue(now);
            return false;
        }
    }

    private static Task ErrorAsync(HttpContext context, int status, string type, int code, int? subcode, string message, bool transient = false)
    {
        var error = new JsonObject
        {
            ["message"] = message,
            ["type"] = type,
            ["code"] = code,
        };
        if (subcode is not null)
        {
            error["error_subcode"] = subcode;
        }
        if (transient)
        {
            error["is_transient"] = true;
        }
        error["fbtrace_id"] = Convert.ToHexString(Guid.NewGuid().ToByteArray())[..11];
        return JsonAsync(context, status, new JsonObject { ["error"] = error });
    }

    private static async Task JsonAsync(HttpContext context, int status, JsonNode body)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(body.ToJsonString(), context.RequestAborted);
    }

    [GeneratedRegex(@"^/v\d+\.\d+/(?<audience>[^/]+)/users/?$")]
    private static partial Regex UsersPath();

    [GeneratedRegex("^[0-9a-fA-F]{64}$")]
    private static partial Regex Sha256();
}
