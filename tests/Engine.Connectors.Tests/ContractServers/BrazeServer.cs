using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Engine.Connectors.Tests.ContractServers;

/// <summary>
/// Braze's <c>POST /users/track</c> as documented (API reference "Track users", "User attributes object", "API
/// errors and responses", "Rate limits"), for the attributes array:
/// <list type="bullet">
/// <item><c>Authorization: Bearer &lt;REST API key&gt;</c>; an unknown or missing key is 401.</item>
/// <item>A fixed-window rate limit per endpoint (Braze: 3,000 requests per 3 seconds; configurable here), windows
/// aligned to the epoch; every answer to a known key carries <c>X-RateLimit-Limit</c>, <c>X-RateLimit-Remaining</c>
/// and <c>X-RateLimit-Reset</c> (UTC epoch seconds); over the limit is 429 (no <c>Retry-After</c>: Braze does not
/// document one).</item>
/// <item>400 for a body that is not JSON, holds no attributes, or more than 75 objects ("Max Input Length
/// Exceeded").</item>
/// <item>Each attributes object needs one identifier (<c>external_id</c>, <c>user_alias</c>, <c>braze_id</c>,
/// <c>email</c>, <c>phone</c>; external_id and user_alias exclusive); custom attribute keys and string values at most
/// 255 characters; arrays set whole, or changed with <c>{"add": [...]}</c> / <c>{"remove": [...]}</c> (values unique,
/// an added value moves to the end); <c>{"inc": n}</c>; null removes an attribute; <c>_update_existing_only</c> keeps
/// an unknown user from being created. Invalid objects are named in <c>errors</c> by <c>index</c> with
/// <c>input_array: "attributes"</c> beside 201 <c>{"message": "success"}</c>; when no object is valid the answer is
/// 400 and nothing is applied.</item>
/// </list>
/// Events and purchases are not implemented: a request with them is refused with 400, so a client that sent them
/// would notice.
/// </summary>
public sealed class BrazeServer : ContractServer
{
    public const int MaxObjects = 75;
    private const int MaxLength = 255;
    private static readonly string[] IdentifierKeys = ["external_id", "user_alias", "braze_id", "email", "phone"];

    private readonly string _apiKey;
    private readonly Dictionary<string, Dictionary<string, JsonNode?>> _users = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private long _window = -1;
    private int _windowCount;
    private int _rateLimited;

    /// <param name="apiKey">The only REST API key the server knows.</param>
    /// <param name="faults">Faults injected before handlers run (see <see cref="FaultPlan"/>).</param>
    /// <param name="requestsPerWindow">Requests accepted per window.</param>
    /// <param name="window">The window, in whole seconds (Braze's reset header has one-second resolution); 3 s by default.</param>
    public BrazeServer(string apiKey, FaultPlan? faults = null, int requestsPerWindow = 3_000, TimeSpan? window = null) : base(faults)
    {
        _apiKey = apiKey;
        RequestsPerWindow = requestsPerWindow;
        Window = window ?? TimeSpan.FromSeconds(3);
        if (Window < TimeSpan.FromSeconds(1) || Window.Ticks % TimeSpan.TicksPerSecond != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(window), "Braze's windows are whole seconds");
        }
    }

    public int RequestsPerWindow { get; }

    public TimeSpan Window { get; }

    /// <summary>External ids Braze refuses ("provided external_id is blacklisted and disallowed"): set before requests arrive.</summary>
    public HashSet<string> BlockedExternalIds { get; } = new(StringComparer.Ordinal);

    /// <summary>Array changes applied (<c>user|attribute|add|value</c>), for duplicate checks.</summary>
    public ReceiptLog Receipts { get; } = new();

    /// <summary>Array changes in objects refused by index.</summary>
    public ReceiptLog Refusals { get; } = new();

    /// <summary>The requests the handler saw (authorised, within the rate limit), in arrival order.</summary>
    public ConcurrentQueue<BrazeRequest> Received { get; } = new();

    /// <summary>429 answers of the rate limiter (the fault plan's are counted by the plan).</summary>
    public int RateLimited => Volatile.Read(ref _rateLimited);

    /// <summary>Creates a user with an array attribute, as if an earlier sync had set it; <paramref name="user"/> is <c>external_id:42</c>, <c>email:a@b.c</c>…</summary>
    public void Seed(string user, string attribute, params string[] values)
    {
        lock (_gate)
        {
            User(user, create: true)![attribute] = new JsonArray([.. values.Select(v => (JsonNode?)JsonValue.Create(v))]);
        }
    }

    /// <summary>The user's attributes (a copy), or null when Braze has no such user; <paramref name="user"/> is <c>external_id:42</c>, <c>email:a@b.c</c>…</summary>
    public IReadOnlyDictionary<string, JsonNode?>? User(string user)
    {
        lock (_gate)
        {
            return _users.TryGetValue(user, out var attributes)
                ? attributes.ToDictionary(a => a.Key, a => a.Value?.DeepClone(), StringComparer.Ordinal)
                : null;
        }
    }

    /// <summary>The values of an array attribute of a user (empty when the user or attribute is missing).</summary>
    public IReadOnlyList<string> ArrayValues(string user, string attribute)
        => User(user)?.GetValueOrDefault(attribute) is JsonArray array ? [.. array.Select(v => v!.GetValue<string>())] : [];

    /// <summary>Every user key (<c>external_id:42</c>…).</summary>
    public IReadOnlyList<string> Users
    {
        get
        {
            lock (_gate)
            {
                return [.. _users.Keys.Order(StringComparer.Ordinal)];
            }
        }
    }

    protected override void Map(WebApplication app) => app.MapPost("/users/track", TrackAsync);

    private async Task TrackAsync(HttpContext context)
    {
        if (context.Request.Headers.Authorization.ToString() != $"Bearer {_apiKey}")
        {
            await AnswerAsync(context, 401, new JsonObject { ["message"] = "Unknown or missing REST API Key" });
            return;
        }
        if (!Admit(context))
        {
            Interlocked.Increment(ref _rateLimited);
            await AnswerAsync(context, 429, new JsonObject { ["message"] = "Over rate limit" });
            return;
        }
        if (context.Request.ContentType?.StartsWith("application/json", StringComparison.OrdinalIgnoreCase) != true)
        {
            await AnswerAsync(context, 400, new JsonObject { ["message"] = "Bad syntax: Content-Type must be application/json" });
            return;
        }
        JsonNode? root;
        try
        {
            root = await JsonNode.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted);
        }
        catch (JsonException)
        {
            await AnswerAsync(context, 400, new JsonObject { ["message"] = "Bad syntax: the body is not JSON" });
            return;
        }
        if (root is not JsonObject body)
        {
            await AnswerAsync(context, 400, new JsonObject { ["message"] = NoData });
            return;
        }
        Received.Enqueue(new BrazeRequest(context.Request.Headers.Authorization.ToString(), body.DeepClone().AsObject()));
        if (body.ContainsKey("events") || body.ContainsKey("purchases"))
        {
            await AnswerAsync(context, 400, new JsonObject { ["message"] = "this contract server implements the attributes array only" });
            return;
        }
        if (body["attributes"] is not JsonArray attributes || attributes.Count == 0)
        {
            await AnswerAsync(context, 400, new JsonObject { ["message"] = NoData });
            return;
        }
        if (attributes.Count > MaxObjects)
        {
            await AnswerAsync(context, 400, new JsonObject { ["message"] = "Max Input Length Exceeded", ["errors"] = new JsonArray() });
            return;
        }

        var errors = new JsonArray();
        var valid = new List<(string User, JsonObject Attributes)>();
        var refused = new List<string>();
        for (var i = 0; i < attributes.Count; i++)
        {
            var (user, error) = Validate(attributes[i]);
            if (error is null)
            {
                valid.Add((user!, attributes[i]!.AsObject()));
                continue;
            }
            errors.Add(new JsonObject { ["type"] = error, ["input_array"] = "attributes", ["index"] = i });
            if (user is not null && attributes[i] is JsonObject o)
            {
                refused.AddRange(Changes(user, o));
            }
        }
        if (valid.Count == 0)
        {
            Refusals.Record(refused, answerLost: false);
            await AnswerAsync(context, 400, new JsonObject { ["message"] = NoData, ["errors"] = errors });
            return;
        }

        var applied = new List<string>();
        lock (_gate)
        {
            foreach (var (user, attributesObject) in valid)
            {
                applied.AddRange(Apply(user, attributesObject));
            }
        }
        var lost = LoseAnswer(context);
        Receipts.Record(applied, lost);
        Refusals.Record(refused, lost);
        if (lost)
        {
            return;
        }
        var answer = new JsonObject { ["message"] = "success", ["attributes_processed"] = valid.Count };
        if (errors.Count > 0)
        {
            answer["errors"] = errors;
        }
        await AnswerAsync(context, 201, answer);
    }

    private const string NoData = "Valid data must be provided in the 'attributes', 'events', or 'purchases' fields.";

    /// <summary>Counts the request in its fixed window and writes the rate-limit headers; false when over the limit.</summary>
    private bool Admit(HttpContext context)
    {
        var windowMs = (long)Window.TotalMilliseconds;
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        int remaining;
        bool admitted;
        long window;
        lock (_gate)
        {
            window = now / windowMs;
            if (window != _window)
            {
                _window = window;
                _windowCount = 0;
            }
            admitted = _windowCount < RequestsPerWindow;
            if (admitted)
            {
                _windowCount++;
            }
            remaining = RequestsPerWindow - _windowCount;
        }
        var headers = context.Response.Headers;
        headers["X-RateLimit-Limit"] = RequestsPerWindow.ToString(CultureInfo.InvariantCulture);
        headers["X-RateLimit-Remaining"] = remaining.ToString(CultureInfo.InvariantCulture);
        headers["X-RateLimit-Reset"] = ((window + 1) * windowMs / 1000).ToString(CultureInfo.InvariantCulture);
        return admitted;
    }

    /// <summary>The user an attributes object names and, when the object is invalid, Braze's error type.</summary>
    private (string? User, string? Error) Validate(JsonNode? node)
    {
        if (node is not JsonObject o)
        {
            return (null, "attributes object must be a JSON object");
        }
        var present = IdentifierKeys.Where(o.ContainsKey).ToList();
        if (present.Count == 0)
        {
            return (null, "'external_id', 'braze_id', 'user_alias', 'email' or 'phone' is required");
        }
        if (present.Contains("external_id") && present.Contains("user_alias"))
        {
            return (null, "'external_id' and 'user_alias' cannot both be given");
        }
        // Braze's precedence: external_id, then braze_id, then email over phone.
        var key = present.Contains("external_id") ? "external_id" : present.Contains("user_alias") ? "user_alias"
            : present.Contains("braze_id") ? "braze_id" : present.Contains("email") ? "email" : "phone";
        string user;
        if (key == "user_alias")
        {
            if (o["user_alias"] is not JsonObject alias || Text(alias["alias_name"]) is not { Length: > 0 } name || Text(alias["alias_label"]) is not { Length: > 0 } label)
            {
                return (null, "'user_alias' must have 'alias_name' and 'alias_label'");
            }
            user = $"user_alias:{name}/{label}";
        }
        else if (Text(o[key]) is { Length: > 0 } value)
        {
            user = $"{key}:{value}";
        }
        else
        {
            return (null, $"'{key}' must be a non-empty string");
        }
        if (key == "external_id" && BlockedExternalIds.Contains(Text(o[key])!))
        {
            return (user, "provided external_id is blacklisted and disallowed");
        }
        if (o.ContainsKey("_update_existing_only") && o["_update_existing_only"]?.GetValueKind() is not (JsonValueKind.True or JsonValueKind.False))
        {
            return (user, "'_update_existing_only' must be a boolean");
        }
        foreach (var (name, value) in o)
        {
            if (IdentifierKeys.Contains(name) || name == "_update_existing_only")
            {
                continue;
            }
            if (name.Length > MaxLength)
            {
                return (user, "custom attribute keys must be at most 255 characters");
            }
            if (Problem(name, value) is { } problem)
            {
                return (user, problem);
            }
        }
        return (user, null);
    }

    private static string? Problem(string name, JsonNode? value)
    {
        switch (value)
        {
            case null:
                return null;
            case JsonValue scalar:
                return scalar.GetValueKind() == JsonValueKind.String && scalar.GetValue<string>().Length > MaxLength
                    ? $"'{name}': custom attribute values must be at most 255 characters"
                    : null;
            case JsonArray array:
                return array.Any(v => v is not JsonValue) && array.Any(v => v is not JsonObject) ? $"'{name}': an array holds scalars or objects" : null;
            case JsonObject o when o.ContainsKey("add") || o.ContainsKey("remove"):
                foreach (var (op, list) in o)
                {
                    if (op is not ("add" or "remove") || list is not JsonArray values || values.Any(v => v is not JsonValue))
                    {
                        return $"'{name}': array changes are {{\"add\": [values]}} or {{\"remove\": [values]}}";
                    }
                }
                return null;
            case JsonObject o when o.ContainsKey("inc"):
                return o.Count == 1 && o["inc"] is JsonValue inc && inc.TryGetValue<long>(out _) ? null : $"'{name}': 'inc' takes an integer";
            default:
                // A nested custom attribute: kept as given.
                return null;
        }
    }

    /// <summary>Applies a valid attributes object (under the lock); returns its array changes.</summary>
    private List<string> Apply(string userKey, JsonObject o)
    {
        var changes = Changes(userKey, o);
        var updateOnly = o["_update_existing_only"]?.GetValue<bool>() ?? userKey.StartsWith("user_alias:", StringComparison.Ordinal);
        if (User(userKey, create: !updateOnly) is not { } user)
        {
            return changes;
        }
        foreach (var (name, value) in o)
        {
            if (IdentifierKeys.Contains(name) || name == "_update_existing_only")
            {
                continue;
            }
            switch (value)
            {
                case null:
                    user.Remove(name);
                    break;
                case JsonArray array:
                    user[name] = new JsonArray([.. array.Select(v => v?.ToJsonString()).Distinct().Select(v => v is null ? null : JsonNode.Parse(v))]);
                    break;
                case JsonObject change when change.ContainsKey("add") || change.ContainsKey("remove"):
                    var current = user.TryGetValue(name, out var existing) && existing is JsonArray a
                        ? a.Select(v => v!.ToJsonString()).ToList()
                        : [];
                    foreach (var added in (change["add"] as JsonArray ?? []).Select(v => v!.ToJsonString()))
                    {
                        // Unique values; an added value that is already there moves to the end.
                        current.Remove(added);
                        current.Add(added);
                    }
                    foreach (var removed in (change["remove"] as JsonArray ?? []).Select(v => v!.ToJsonString()))
                    {
                        current.Remove(removed);
                    }
                    user[name] = new JsonArray([.. current.Select(v => JsonNode.Parse(v))]);
                    break;
                case JsonObject inc when inc.ContainsKey("inc"):
                    var before = user.TryGetValue(name, out var n) && n is JsonValue number && number.TryGetValue<long>(out var l) ? l : 0;
                    user[name] = JsonValue.Create(before + inc["inc"]!.GetValue<long>());
                    break;
                default:
                    user[name] = value.DeepClone();
                    break;
            }
        }
        return changes;
    }

    /// <summary>The array changes an object asks for, one item per value: <c>user|attribute|add|value</c>.</summary>
    private static List<string> Changes(string user, JsonObject o)
    {
        var items = new List<string>();
        foreach (var (name, value) in o)
        {
            if (value is JsonObject change)
            {
                foreach (var op in new[] { "add", "remove" })
                {
                    if (change[op] is JsonArray values)
                    {
                        items.AddRange(values.Select(v => $"{user}|{name}|{op}|{(v is JsonValue s && s.GetValueKind() == JsonValueKind.String ? s.GetValue<string>() : v?.ToJsonString())}"));
                    }
                }
            }
        }
        return items;
    }

    private Dictionary<string, JsonNode?>? User(string key, bool create)
    {
        if (!_users.TryGetValue(key, out var user) && create)
        {
            _users[key] = user = new Dictionary<string, JsonNode?>(StringComparer.Ordinal);
        }
        return user;
    }

    private static string? Text(JsonNode? node) => node is JsonValue value && value.GetValueKind() == JsonValueKind.String ? value.GetValue<string>() : null;

    private static async Task AnswerAsync(HttpContext context, int status, JsonObject body)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(body.ToJsonString(), context.RequestAborted);
    }
}

/// <summary>One request the Braze server's handler saw: its <c>Authorization</c> header and JSON body.</summary>
public sealed record BrazeRequest(string Authorization, JsonObject Body);
