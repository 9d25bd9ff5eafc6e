using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Engine.Connectors.Tests.ContractServers;

/// <summary>The type of a CRM property (HubSpot stores every value as a string; these are the ones it checks).</summary>
public enum CrmPropertyType
{
    String,
    Bool,
    Number,
}

/// <summary>
/// HubSpot's CRM v3 batch upsert as documented ("Upsert a batch of contacts", "Error handling", "API usage
/// guidelines"): <c>POST /crm/v3/objects/{objectType}/batch/upsert</c> with
/// <c>{"inputs": [{"idProperty", "id", "properties", "objectWriteTraceId"}]}</c>.
/// <list type="bullet">
/// <item><c>Authorization: Bearer &lt;access token&gt;</c>; otherwise 401 with category INVALID_AUTHENTICATION.</item>
/// <item>The burst limit: at most <see cref="BurstMax"/> requests in any rolling <see cref="BurstInterval"/> (HubSpot:
/// 100 per 10 seconds; configurable here), and optionally a daily limit. Every authorised answer carries
/// <c>X-HubSpot-RateLimit-Interval-Milliseconds</c>, <c>X-HubSpot-RateLimit-Max</c> and
/// <c>X-HubSpot-RateLimit-Remaining</c>; over the limit is 429 with <c>errorType: RATE_LIMIT</c> and the
/// <c>policyName</c> (TEN_SECONDLY_ROLLING or DAILY).</item>
/// <item>Whole-request 400 VALIDATION_ERROR: a body that is not JSON, no <c>inputs</c>, more than 100 inputs, an id
/// given twice, or any invalid input when the inputs carry no <c>objectWriteTraceId</c> (then nothing is applied).</item>
/// <item>Per input: <c>id</c> a non-empty string, <c>idProperty</c> one of the object's unique properties, every
/// property defined in the portal, values of the property's type (booleans "true"/"false", numbers), email ids that
/// look like addresses. With an <c>objectWriteTraceId</c> on every input (multi-status error handling), valid inputs
/// are applied and invalid ones listed in a 207's <c>errors</c> with <c>context.objectWriteTraceId</c>.</item>
/// <item>Records are created for new ids and updated otherwise; an empty string clears a property.</item>
/// </list>
/// </summary>
public sealed partial class CrmServer : ContractServer
{
    public const int MaxInputs = 100;

    private readonly string _token;
    private readonly IReadOnlyDictionary<string, CrmPropertyType> _properties;
    private readonly Dictionary<string, (long Id, Dictionary<string, string> Properties)> _records = new(StringComparer.Ordinal);
    private readonly Queue<long> _recent = new();
    private readonly Dictionary<string, int> _failNext = new(StringComparer.OrdinalIgnoreCase);
    private readonly Lock _gate = new();
    private long _nextId = 1000;
    private int _today;
    private int _rateLimited;

    /// <param name="accessToken">The only token the server accepts.</param>
    /// <param name="properties">The portal's properties of the object (name → type), the id property included.</param>
    /// <param name="faults">Faults injected before handlers run (see <see cref="FaultPlan"/>).</param>
    /// <param name="burstMax">Requests allowed in any rolling <paramref name="burstInterval"/>.</param>
    /// <param name="burstInterval">The rolling window; 10 seconds by default.</param>
    public CrmServer(string accessToken, IReadOnlyDictionary<string, CrmPropertyType> properties, FaultPlan? faults = null, int burstMax = 100,
        TimeSpan? burstInterval = null) : base(faults)
    {
        _token = accessToken;
        _properties = properties;
        BurstMax = burstMax;
        BurstInterval = burstInterval ?? TimeSpan.FromSeconds(10);
    }

    public int BurstMax { get; }

    public TimeSpan BurstInterval { get; }

    /// <summary>Requests allowed per day (the DAILY policy), or null for none.</summary>
    public int? DailyLimit { get; init; }

    /// <summary>The object type served (<c>contacts</c> unless set).</summary>
    public string ObjectType { get; init; } = "contacts";

    /// <summary>The object's unique properties, usable as <c>idProperty</c>.</summary>
    public IReadOnlyList<string> UniqueProperties { get; init; } = ["email"];

    /// <summary>Properties whose changes are counted in <see cref="Receipts"/> (membership, not the fields that ride along).</summary>
    public string CountedPrefix { get; init; } = "engine_segment_";

    /// <summary>Counted property changes applied (<c>id|property=value</c>), for duplicate checks.</summary>
    public ReceiptLog Receipts { get; } = new();

    /// <summary>Counted property changes in inputs refused in a 207.</summary>
    public ReceiptLog Refusals { get; } = new();

    /// <summary>The bodies the handler saw (authorised, within the rate limit), in arrival order.</summary>
    public ConcurrentQueue<JsonObject> Received { get; } = new();

    /// <summary>429 answers of the rate limiter (the fault plan's are counted by the plan).</summary>
    public int RateLimited => Volatile.Read(ref _rateLimited);

    /// <summary>The next <paramref name="times"/> inputs for <paramref name="id"/> fail with category CONFLICT (a concurrent write), in multi-status mode.</summary>
    public void FailNext(string id, int times)
    {
        lock (_gate)
        {
            _failNext[id] = times;
        }
    }

    /// <summary>Creates or updates a record as if it were there before the test.</summary>
    public void Seed(string id, IReadOnlyDictionary<string, string> properties)
    {
        lock (_gate)
        {
            var record = Record(id);
            foreach (var (name, value) in properties)
            {
                record[name] = value;
            }
        }
    }

    /// <summary>A record's properties (a copy), or null.</summary>
    public IReadOnlyDictionary<string, string>? Find(string id)
    {
        lock (_gate)
        {
            return _records.TryGetValue(Normalise(id), out var record) ? new Dictionary<string, string>(record.Properties, StringComparer.Ordinal) : null;
        }
    }

    /// <summary>Every record's id value, sorted.</summary>
    public IReadOnlyList<string> Ids
    {
        get
        {
            lock (_gate)
            {
                return [.. _records.Keys.Order(StringComparer.Ordinal)];
            }
        }
    }

    protected override void Map(WebApplication app) => app.MapPost("/crm/v3/objects/{objectType}/batch/upsert", UpsertAsync);

    private async Task UpsertAsync(HttpContext context)
    {
        if (context.Request.Headers.Authorization.ToString() != $"Bearer {_token}")
        {
            await AnswerAsync(context, 401, Error("INVALID_AUTHENTICATION",
                "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"));
            return;
        }
        if (Admit(context) is { } policy)
        {
            Interlocked.Increment(ref _rateLimited);
            var body = new JsonObject
            {
                ["status"] = "error",
                ["message"] = policy == "DAILY" ? "You have reached your daily limit." : "You have reached your ten_secondly_rolling limit.",
                ["errorType"] = "RATE_LIMIT",
                ["correlationId"] = Guid.NewGuid().ToString(),
                ["policyName"] = policy,
            };
            await AnswerAsync(context, 429, body);
            return;
        }
        var objectType = (string)context.Request.RouteValues["objectType"]!;
        if (objectType != ObjectType)
        {
            await AnswerAsync(context, 400, Error("VALIDATION_ERROR", $"Unable to infer object type from: {objectType}"));
            return;
        }
        JsonNode? root;
        try
        {
            root = await JsonNode.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted);
        }
        catch (JsonException e)
        {
            await AnswerAsync(context, 400, Error("VALIDATION_ERROR", $"Invalid input JSON: {e.Message}"));
            return;
        }
        if (root is not JsonObject request || request["inputs"] is not JsonArray inputs || inputs.Count == 0)
        {
            await AnswerAsync(context, 400, Error("VALIDATION_ERROR", "Invalid input JSON: 'inputs' must be a non-empty array"));
            return;
        }
        Received.Enqueue(request.DeepClone().AsObject());
        if (inputs.Count > MaxInputs)
        {
            await AnswerAsync(context, 400, Error("VALIDATION_ERROR", $"Batch input size {inputs.Count} is larger than the maximum of {MaxInputs}"));
            return;
        }
        var ids = inputs.Select(i => i is JsonObject o && Text(o["id"]) is { } id ? Normalise(id) : null).Where(id => id is not null).ToList();
        var duplicates = ids.GroupBy(id => id).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        if (duplicates.Count > 0)
        {
            await AnswerAsync(context, 400, Error("VALIDATION_ERROR", $"Duplicate IDs found in batch input: [{string.Join(", ", duplicates)}]. IDs must be unique"));
            return;
        }
        var traceIds = inputs.Select(i => i is JsonObject o ? Text(o["objectWriteTraceId"]) : null).ToList();
        var multiStatus = traceIds.All(t => t is not null) && traceIds.Distinct().Count() == traceIds.Count;

        var problems = new List<(int Index, string Category, string Message, string Code)>();
        var valid = new List<JsonObject>();
        lock (_gate)
        {
            for (var i = 0; i < inputs.Count; i++)
            {
                if (Validate(inputs[i]) is { } problem)
                {
                    problems.Add((i, "VALIDATION_ERROR", problem.Message, problem.Code));
                }
                else if (multiStatus && _failNext.TryGetValue(Normalise(Text(inputs[i]!["id"])!), out var left) && left > 0)
                {
                    _failNext[Normalise(Text(inputs[i]!["id"])!)] = left - 1;
                    problems.Add((i, "CONFLICT", "A concurrent write to this record was in progress; retry the request", "CONFLICT"));
                }
                else
                {
                    valid.Add(inputs[i]!.AsObject());
                }
            }
        }
        if (problems.Count > 0 && !multiStatus)
        {
            var error = Error("VALIDATION_ERROR", problems[0].Message);
            error["errors"] = new JsonArray([.. problems.Select(p => (JsonNode)new JsonObject { ["message"] = p.Message, ["code"] = p.Code, ["in"] = p.Index.ToString(CultureInfo.InvariantCulture) })]);
            await AnswerAsync(context, 400, error);
            return;
        }

        var started = DateTimeOffset.UtcNow;
        var results = new JsonArray();
        var applied = new List<string>();
        lock (_gate)
        {
            foreach (var input in valid)
            {
                var id = Text(input["id"])!;
                var isNew = !_records.ContainsKey(Normalise(id));
                var record = Record(id);
                if (input["properties"] is JsonObject properties)
                {
                    foreach (var (name, value) in properties)
                    {
                        var text = Stored(value);
                        if (text.Length == 0)
                        {
                            record.Remove(name);
                        }
                        else
                        {
                            record[name] = text;
                        }
                        if (name.StartsWith(CountedPrefix, StringComparison.Ordinal))
                        {
                            applied.Add($"{Normalise(id)}|{name}={text}");
                        }
                    }
                }
                results.Add(new JsonObject
                {
                    ["id"] = _records[Normalise(id)].Id.ToString(CultureInfo.InvariantCulture),
                    ["properties"] = new JsonObject([.. record.Select(p => KeyValuePair.Create(p.Key, (JsonNode?)p.Value))]),
                    ["createdAt"] = started.ToString("O", CultureInfo.InvariantCulture),
                    ["updatedAt"] = started.ToString("O", CultureInfo.InvariantCulture),
                    ["archived"] = false,
                    ["new"] = isNew,
                });
            }
        }
        var refused = problems.SelectMany(p => Counted(inputs[p.Index])).ToList();
        var lost = LoseAnswer(context);
        Receipts.Record(applied, lost);
        Refusals.Record(refused, lost);
        if (lost)
        {
            return;
        }
        var answer = new JsonObject
        {
            ["status"] = "COMPLETE",
            ["results"] = results,
            ["startedAt"] = started.ToString("O", CultureInfo.InvariantCulture),
            ["completedAt"] = DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture),
        };
        if (problems.Count > 0)
        {
            answer["numErrors"] = problems.Count;
            answer["errors"] = new JsonArray([.. problems.Select(p => (JsonNode)new JsonObject
            {
                ["status"] = "error",
                ["category"] = p.Category,
                ["message"] = p.Message,
                ["context"] = new JsonObject { ["objectWriteTraceId"] = new JsonArray(traceIds[p.Index]) },
                ["errors"] = new JsonArray(new JsonObject { ["message"] = p.Message, ["code"] = p.Code }),
            })]);
        }
        await AnswerAsync(context, problems.Count > 0 ? 207 : 200, answer);
    }

    /// <summary>Counts the request against the burst and daily limits and writes HubSpot's headers; the policy hit, or null.</summary>
    private string? Admit(HttpContext context)
    {
        var now = Environment.TickCount64;
        var interval = (long)BurstInterval.TotalMilliseconds;
        string? policy = null;
        int remaining;
        int today;
        lock (_gate)
        {
            while (_recent.Count > 0 && _recent.Peek() <= now - interval)
            {
                _recent.Dequeue();
            }
            if (DailyLimit is { } daily && _today >= daily)
            {
                policy = "DAILY";
            }
            else if (_recent.Count >= BurstMax)
            {
                policy = "TEN_SECONDLY_ROLLING";
            }
            else
            {
                _recent.Enqueue(now);
                _today++;
            }
            remaining = BurstMax - _recent.Count;
            today = _today;
        }
        var headers = context.Response.Headers;
        headers["X-HubSpot-RateLimit-Interval-Milliseconds"] = interval.ToString(CultureInfo.InvariantCulture);
        headers["X-HubSpot-RateLimit-Max"] = BurstMax.ToString(CultureInfo.InvariantCulture);
        headers["X-HubSpot-RateLimit-Remaining"] = remaining.ToString(CultureInfo.InvariantCulture);
        if (DailyLimit is { } limit)
        {
            headers["X-HubSpot-RateLimit-Daily"] = limit.ToString(CultureInfo.InvariantCulture);
            headers["X-HubSpot-RateLimit-Daily-Remaining"] = Math.Max(0, limit - today).ToString(CultureInfo.InvariantCulture);
        }
        return policy;
    }

    private (string Message, string Code)? Validate(JsonNode? node)
    {
        if (node is not JsonObject input)
        {
            return ("Each input must be an object", "INVALID_INPUT");
        }
        if (Text(input["id"]) is not { Length: > 0 } id)
        {
            return ("'id' must be a non-empty string", "INVALID_ID");
        }
        if (Text(input["idProperty"]) is not { } idProperty || !UniqueProperties.Contains(idProperty))
        {
            return ($"'idProperty' must be one of the unique properties of {ObjectType}: {string.Join(", ", UniqueProperties)}", "INVALID_ID_PROPERTY");
        }
        if (idProperty == "email" && !EmailPattern().IsMatch(id))
        {
            return ($"Email address {id} is invalid", "INVALID_EMAIL");
        }
        if (input["properties"] is not JsonObject properties)
        {
            return ("'properties' must be an object", "INVALID_INPUT");
        }
        foreach (var (name, value) in properties)
        {
            if (!_properties.TryGetValue(name, out var type))
            {
                return ($"Property \"{name}\" does not exist", "PROPERTY_DOESNT_EXIST");
            }
            if (value is not (null or JsonValue))
            {
                return ($"Property \"{name}\" takes a single value", "INVALID_PROPERTY_VALUE");
            }
            var text = Stored(value);
            if (text.Length == 0)
            {
                continue;
            }
            if (type == CrmPropertyType.Bool && text is not ("true" or "false"))
            {
                return ($"{text} was not a valid boolean option for \"{name}\". Valid options are true or false", "INVALID_BOOLEAN");
            }
            if (type == CrmPropertyType.Number && !double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out _))
            {
                return ($"{text} was not a valid number for \"{name}\"", "INVALID_INTEGER");
            }
        }
        return null;
    }

    private List<string> Counted(JsonNode? input)
    {
        var items = new List<string>();
        if (input is JsonObject o && Text(o["id"]) is { } id && o["properties"] is JsonObject properties)
        {
            items.AddRange(properties.Where(p => p.Key.StartsWith(CountedPrefix, StringComparison.Ordinal)).Select(p => $"{Normalise(id)}|{p.Key}={Stored(p.Value)}"));
        }
        return items;
    }

    private Dictionary<string, string> Record(string id)
    {
        var key = Normalise(id);
        if (!_records.TryGetValue(key, out var record))
        {
            _records[key] = record = (_nextId++, new Dictionary<string, string>(StringComparer.Ordinal) { [UniqueProperties[0]] = id });
        }
        return record.Properties;
    }

    /// <summary>A value as HubSpot stores it: text, booleans "true"/"false", numbers invariant; null as empty.</summary>
    private static string Stored(JsonNode? value) => value switch
    {
        null => "",
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        JsonValue v when v.GetValueKind() is JsonValueKind.True or JsonValueKind.False => v.GetValue<bool>() ? "true" : "false",
        _ => value.ToJsonString(),
    };

    /// <summary>Unique values are matched without regard to case (emails).</summary>
    private static string Normalise(string id) => id.ToLowerInvariant();

    private static string? Text(JsonNode? node) => node is JsonValue value && value.GetValueKind() == JsonValueKind.String ? value.GetValue<string>() : null;

    private static JsonObject Error(string category, string message) => new()
    {
        ["status"] = "error",
        ["message"] = message,
        ["correlationId"] = Guid.NewGuid().ToString(),
        ["category"] = category,
    };

    private static async Task AnswerAsync(HttpContext context, int status, JsonObject body)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(body.ToJsonString(), context.RequestAborted);
    }

    [GeneratedRegex(@"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
    private static partial Regex EmailPattern();
}
