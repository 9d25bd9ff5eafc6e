using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Engine.Connectors.Tests.ContractServers;

/// <summary>
/// The Google Ads API's OfflineUserDataJobService over REST, for Customer Match: <c>customers/{id}/offlineUserDataJobs:create</c>,
/// <c>{job}:addOperations</c> and <c>{job}:run</c>, as the reference documents them.
/// <list type="bullet">
/// <item>Every call needs <c>Authorization: Bearer</c> with a token in <see cref="AccessTokens"/> (else 401
/// <c>UNAUTHENTICATED</c>, <c>authenticationError: OAUTH_TOKEN_INVALID</c>). A customer reached through a manager needs
/// <c>login-customer-id</c> naming it (else 403 <c>PERMISSION_DENIED</c>, <c>USER_PERMISSION_DENIED</c>). The
/// <c>developer-token</c> header is recorded and otherwise ignored, as Google does since developer tokens were sunset.</item>
/// <item>A job is of type <c>CUSTOMER_MATCH_USER_LIST</c> with <c>customerMatchUserListMetadata.userList</c> naming a
/// list of the customer (else 400 <c>INVALID_USER_LIST_ID</c>) and consent values of the Consent enum.</item>
/// <item>Operations: each exactly one of <c>create</c>/<c>remove</c> holding 1–20 <c>userIdentifiers</c>, each one of
/// <c>hashedEmail</c>/<c>hashedPhoneNumber</c> as SHA-256 hex; at most 100,000 identifiers per request (else the whole
/// request fails with <c>TOO_MANY_USER_IDENTIFIERS</c>). Creations and removals never share a job
/// (<c>CONFLICTING_OPERATION</c>); a started job takes no more (<c>JOB_ALREADY_STARTED</c>). With
/// <c>enablePartialFailure</c> the valid operations are applied and the others reported in <c>partialFailureError</c>
/// by their <c>operations</c> index; without it any error fails the whole request. <see cref="RefusedValues"/> stand
/// for values Google refuses for its own reasons (<c>MISSING_USER_IDENTIFIER</c>, "missing valid data").</item>
/// <item><c>:run</c> starts a pending job (a started one answers <c>JOB_ALREADY_STARTED</c>) and applies it to the
/// list at once: membership is a set of hashes per list and identifier field.</item>
/// <item>Past <see cref="RequestsPerSecond"/>, 429 <c>RESOURCE_EXHAUSTED</c> with <c>quotaErrorDetails.retryDelay</c>.</item>
/// </list>
/// Identifiers received are counted, and those of requests whose answer the fault plan dropped after applying them
/// apart, as in <see cref="MetaServer"/>.
/// </summary>
public sealed partial class GoogleAdsServer : ContractServer
{
    /// <summary>The API version the server answers under.</summary>
    public const string Version = "v26";

    private readonly ConcurrentDictionary<string, Job> _jobs = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, ConcurrentDictionary<string, HashSet<string>>> _lists = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<DateTimeOffset> _recent = new();
    private readonly Lock _gate = new();
    private long _nextJob = 1000;
    private long _identifiersReceived;
    private long _identifiersInLostAnswers;
    private int _addRequests;

    public GoogleAdsServer(FaultPlan? faults = null) : base(faults)
    {
    }

    /// <summary>OAuth access tokens the server accepts.</summary>
    public ConcurrentDictionary<string, bool> AccessTokens { get; } = new(StringComparer.Ordinal);

    /// <summary>Customers reached through a manager: customer id → the manager's id, required as <c>login-customer-id</c>.</summary>
    public ConcurrentDictionary<string, string> Managers { get; } = new(StringComparer.Ordinal);

    /// <summary>Hashes Google refuses with a per-operation error, as for a value it cannot use.</summary>
    public ConcurrentDictionary<string, bool> RefusedValues { get; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Requests per second before 429; null for none.</summary>
    public int? RequestsPerSecond { get; set; }

    /// <summary>The <c>retryDelay</c> a 429 answer gives.</summary>
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>After this many applied addOperations requests every token is refused (a revoked grant); null for never.</summary>
    public int? RevokeTokensAfterAddRequests { get; set; }

    /// <summary>Errors to answer the next addOperations requests with, before anything is applied: HTTP status and body.</summary>
    public ConcurrentQueue<(int Status, JsonObject Body)> NextAddErrors { get; } = new();

    /// <summary>Drops the connection of every <c>:run</c> call (after starting a pending job), so the client never learns it started.</summary>
    public bool LoseRunAnswers { get; set; }

    /// <summary>The value of <c>developer-token</c> on the last request, if any.</summary>
    public string? LastDeveloperToken { get; private set; }

    /// <summary>Every identifier applied to a job, by <c>field:hash</c>: how many times it arrived.</summary>
    public ConcurrentDictionary<string, int> IdentifierCounts { get; } = new(StringComparer.Ordinal);

    public long IdentifiersReceived => Interlocked.Read(ref _identifiersReceived);

    public long IdentifiersInLostAnswers => Interlocked.Read(ref _identifiersInLostAnswers);

    /// <summary>Identifiers per applied addOperations request.</summary>
    public ConcurrentQueue<int> RequestSizes { get; } = new();

    /// <summary>The jobs created, by resource name.</summary>
    public IReadOnlyDictionary<string, Job> Jobs => _jobs;

    /// <summary>The <c>url</c> setting a destination needs to call this server.</summary>
    public string ApiUrl => new Uri(BaseUrl, Version).ToString();

    /// <summary>Creates an empty Customer Match list.</summary>
    public void AddUserList(string customerId, string userListId)
        => _lists.TryAdd($"customers/{customerId}/userLists/{userListId}", new ConcurrentDictionary<string, HashSet<string>>(StringComparer.Ordinal));

    /// <summary>Puts hashes into a list (members from before the test).</summary>
    public void Seed(string customerId, string userListId, string field, IEnumerable<string> hashes)
    {
        lock (_gate)
        {
            _lists[$"customers/{customerId}/userLists/{userListId}"].GetOrAdd(field, _ => new HashSet<string>(StringComparer.Ordinal)).UnionWith(hashes);
        }
    }

    /// <summary>The hashes of <paramref name="field"/> (<c>hashedEmail</c>, <c>hashedPhoneNumber</c>) in the list.</summary>
    public IReadOnlySet<string> Members(string customerId, string userListId, string field)
    {
        lock (_gate)
        {
            return _lists[$"customers/{customerId}/userLists/{userListId}"].TryGetValue(field, out var set)
                ? new HashSet<string>(set, StringComparer.Ordinal) : new HashSet<string>();
        }
    }

    protected override void Map(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.Run(HandleAsync);
    }

    private async Task HandleAsync(HttpContext context)
    {
        var path = context.Request.Path.Value ?? "";
        if (context.Request.Method != "POST" || JobsPath().Match(path) is not { Success: true } match)
        {
            await ErrorAsync(context, 404, "NOT_FOUND", "The requested URL was not found on this server.", []);
            return;
        }
        if (context.Request.Headers.TryGetValue("developer-token", out var developerToken))
        {
            LastDeveloperToken = developerToken.ToString();
        }
        var authorization = context.Request.Headers.Authorization.ToString();
        var token = authorization.StartsWith("Bearer ", StringComparison.Ordinal) ? authorization[7..] : null;
        var revoked = RevokeTokensAfterAddRequests is { } after && Volatile.Read(ref _addRequests) >= after;
        if (token is null || revoked || !AccessTokens.ContainsKey(token))
        {
            await ErrorAsync(context, 401, "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
                [Error("authenticationError", "OAUTH_TOKEN_INVALID", "Oauth token in the header is not valid.")]);
            return;
        }
        var customerId = match.Groups["customer"].Value;
        if (Managers.TryGetValue(customerId, out var manager) && context.Request.Headers["login-customer-id"].ToString() != manager)
        {
            await ErrorAsync(context, 403, "PERMISSION_DENIED", "The caller does not have permission",
                [Error("authorizationError", "USER_PERMISSION_DENIED",
                    "User doesn't have permission to access customer. Note: If you're accessing a client customer, the manager's customer ID must be set in the 'login-customer-id' header.")]);
            return;
        }
        if (Throttled())
        {
            var delay = RetryDelay.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture) + "s";
            var error = Error("quotaError", "RESOURCE_TEMPORARILY_EXHAUSTED", $"Too many requests. Retry in {delay}.");
            error["details"] = new JsonObject
            {
                ["quotaErrorDetails"] = new JsonObject { ["rateScope"] = "ACCOUNT", ["rateName"] = "Requests per service per method", ["retryDelay"] = delay },
            };
            await ErrorAsync(context, 429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).", [error]);
            return;
        }
        JsonObject? body;
        try
        {
            body = await JsonNode.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted) as JsonObject;
        }
        catch (JsonException)
        {
            body = null;
        }
        if (body is null)
        {
            await ErrorAsync(context, 400, "INVALID_ARGUMENT", "Invalid JSON payload received.", []);
            return;
        }
        var jobId = match.Groups["job"].Success ? match.Groups["job"].Value : null;
        switch (match.Groups["method"].Value)
        {
            case "create" when jobId is null:
                await CreateAsync(context, customerId, body);
                break;
            case "addOperations" when jobId is not null:
                await AddOperationsAsync(context, $"customers/{customerId}/offlineUserDataJobs/{jobId}", body);
                break;
            case "run" when jobId is not null:
                await RunAsync(context, $"customers/{customerId}/offlineUserDataJobs/{jobId}");
                break;
            default:
                await ErrorAsync(context, 404, "NOT_FOUND", "The requested URL was not found on this server.", []);
                break;
        }
    }

    private async Task CreateAsync(HttpContext context, string customerId, JsonObject body)
    {
        var job = body["job"] as JsonObject;
        if (job?["type"]?.GetValue<string>() != "CUSTOMER_MATCH_USER_LIST")
        {
            await ErrorAsync(context, 400, "INVALID_ARGUMENT", "Request contains an invalid argument.",
                [Error("offlineUserDataJobError", "INVALID_USER_LIST_TYPE", "Type of the user list is not applicable for the job.", ("job", null), ("type", null))]);
            return;
        }
        var metadata = job["customerMatchUserListMetadata"] as JsonObject;
        var userList = metadata?["userList"] is JsonValue u && u.TryGetValue<string>(out var list) ? list : null;
        if (userList is null || !userList.StartsWith($"customers/{customerId}/", StringComparison.Ordinal) || !_lists.ContainsKey(userList))
        {
            await ErrorAsync(context, 400, "INVALID_ARGUMENT", "Request contains an invalid argument.",
                [Error("offlineUserDataJobError", "INVALID_USER_LIST_ID", "The user list ID provided for the job is invalid.",
                    ("job", null), ("customer_match_user_list_metadata", null), ("user_list", null))]);
            return;
        }
        string[] consentValues = ["UNSPECIFIED", "UNKNOWN", "GRANTED", "DENIED"];
        var consent = metadata!["consent"] as JsonObject;
        foreach (var field in new[] { "adUserData", "adPersonalization" })
        {
            if (consent?[field] is { } value && (value is not JsonValue v || !v.TryGetValue<string>(out var s) || !consentValues.Contains(s)))
            {
                await ErrorAsync(context, 400, "INVALID_ARGUMENT", $"Invalid value at 'job.customer_match_user_list_metadata.consent.{field}'", []);
                return;
            }
        }
        var name = $"customers/{customerId}/offlineUserDataJobs/{Interlocked.Increment(ref _nextJob)}";
        _jobs[name] = new Job(name, userList, consent?["adUserData"]?.GetValue<string>(), consent?["adPersonalization"]?.GetValue<string>());
        if (LoseAnswer(context))
        {
            return;
        }
        await JsonAsync(context, 200, new JsonObject { ["resourceName"] = name });
    }

    private async Task AddOperationsAsync(HttpContext context, string name, JsonObject body)
    {
        if (NextAddErrors.TryDequeue(out var injected))
        {
            await JsonAsync(context, injected.Status, injected.Body);
            return;
        }
        if (!_jobs.TryGetValue(name, out var job))
        {
            await ErrorAsync(context, 404, "NOT_FOUND", "Requested entity was not found.",
                [Error("requestError", "RESOURCE_NOT_FOUND", "Requested resource not found.", ("resource_name", null))]);
            return;
        }
        if (body["operations"] is not JsonArray operations || operations.Count == 0)
        {
            await ErrorAsync(context, 400, "INVALID_ARGUMENT", "Request contains an invalid argument.",
                [Error("fieldError", "REQUIRED", "The required field was not present.", ("operations", null))]);
            return;
        }
        var total = operations.Sum(o => ((o as JsonObject)?["create"] ?? (o as JsonObject)?["remove"])?["userIdentifiers"] is JsonArray ids ? ids.Count : 0);
        if (total > 100_000)
        {
            await ErrorAsync(context, 400, "INVALID_ARGUMENT", "Request contains an invalid argument.",
                [Error("offlineUserDataJobError", "TOO_MANY_USER_IDENTIFIERS", "Maximum number of user identifiers allowed per request is 100,000 and per operation is 20.", ("operations", null))]);
            return;
        }
        var partialFailure = body["enablePartialFailure"] is JsonValue p && p.TryGetValue<bool>(out var enabled) && enabled;
        var errors = new List<JsonObject>();
        var valid = new List<(bool Create, List<(string Field, string Hash)> Identifiers)>();
        lock (_gate)
        {
            if (job.Status != "PENDING")
            {
                errors.Add(Error("offlineUserDataJobError", "JOB_ALREADY_STARTED", "Once the upload job is started, new operations cannot be added."));
            }
            else
            {
                // Creations and removals may not share a job, nor a request.
                var (creates, removes) = (job.HasCreates, job.HasRemoves);
                for (var i = 0; i < operations.Count; i++)
                {
                    if (Check(operations[i] as JsonObject, i, creates, removes, out var operation) is { } error)
                    {
                        errors.Add(error);
                    }
                    else
                    {
                        valid.Add(operation);
                        creates |= operation.Create;
                        removes |= !operation.Create;
                    }
                }
            }
            if (errors.Count > 0 && (!partialFailure || job.Status != "PENDING"))
            {
                valid.Clear();
            }
            else
            {
                foreach (var operation in valid)
                {
                    job.Operations.Add(operation);
                    job.HasCreates |= operation.Create;
                    job.HasRemoves |= !operation.Create;
                    foreach (var (field, hash) in operation.Identifiers)
                    {
                        IdentifierCounts.AddOrUpdate($"{field}:{hash}", 1, (_, n) => n + 1);
                    }
                }
            }
        }
        if (valid.Count == 0 && errors.Count > 0)
        {
            await ErrorAsync(context, 400, "INVALID_ARGUMENT", "Request contains an invalid argument.", errors);
            return;
        }
        var applied = valid.Sum(o => o.Identifiers.Count);
        Interlocked.Add(ref _identifiersReceived, applied);
        Interlocked.Increment(ref _addRequests);
        RequestSizes.Enqueue(total);
        if (LoseAnswer(context))
        {
            Interlocked.Add(ref _identifiersInLostAnswers, applied);
            return;
        }
        var answer = new JsonObject();
        if (errors.Count > 0)
        {
            answer["partialFailureError"] = Status(3, $"Multiple errors in 'details'. First error: {errors[0]["message"]}", errors);
        }
        await JsonAsync(context, 200, answer);
    }

    /// <summary>Checks one operation; returns its error (located at <c>operations[index]</c>) or null.</summary>
    private JsonObject? Check(JsonObject? operation, int index, bool creates, bool removes, out (bool Create, List<(string Field, string Hash)> Identifiers) parsed)
    {
        parsed = default;
        var create = operation?["create"] as JsonObject;
        var remove = operation?["remove"] as JsonObject;
        if ((create is null) == (remove is null))
        {
            return Error("requestError", "OPERATION_REQUIRED", "Mutate operation should have either create, update, or remove specified.", ("operations", index));
        }
        var isCreate = create is not null;
        if (isCreate ? removes : creates)
        {
            return Error("offlineUserDataJobError", "CONFLICTING_OPERATION", "Mixing creation and removal of offline data in the same job is not allowed.", ("operations", index));
        }
        var verb = isCreate ? "create" : "remove";
        if ((create ?? remove)!["userIdentifiers"] is not JsonArray identifiers || identifiers.Count == 0)
        {
            return Error("offlineUserDataJobError", "MISSING_USER_IDENTIFIER", "The user identifier is missing valid data.", ("operations", index), (verb, null));
        }
        if (identifiers.Count > 20)
        {
            return Error("offlineUserDataJobError", "TOO_MANY_USER_IDENTIFIERS",
                "Maximum number of user identifiers allowed per request is 100,000 and per operation is 20.", ("operations", index), (verb, null), ("user_identifiers", null));
        }
        var list = new List<(string, string)>();
        for (var k = 0; k < identifiers.Count; k++)
        {
            var identifier = identifiers[k] as JsonObject;
            var fields = identifier?.Select(p => p.Key).ToList() ?? [];
            if (fields.Count != 1 || fields[0] is not ("hashedEmail" or "hashedPhoneNumber"))
            {
                return Error("offlineUserDataJobError", "MISSING_USER_IDENTIFIER", "The user identifier is missing valid data.",
                    ("operations", index), (verb, null), ("user_identifiers", k));
            }
            var value = identifier![fields[0]] is JsonValue v && v.TryGetValue<string>(out var s) ? s : "";
            if (!Sha256().IsMatch(value))
            {
                return Error("offlineUserDataJobError", "INVALID_SHA256_FORMAT", "The SHA256 encoded value is malformed.",
                    ("operations", index), (verb, null), ("user_identifiers", k), (fields[0] == "hashedEmail" ? "hashed_email" : "hashed_phone_number", null));
            }
            if (RefusedValues.ContainsKey(value))
            {
                return Error("offlineUserDataJobError", "MISSING_USER_IDENTIFIER", "The user identifier is missing valid data.",
                    ("operations", index), (verb, null), ("user_identifiers", k));
            }
            list.Add((fields[0], value));
        }
        parsed = (isCreate, list);
        return null;
    }

    private async Task RunAsync(HttpContext context, string name)
    {
        if (!_jobs.TryGetValue(name, out var job))
        {
            await ErrorAsync(context, 404, "NOT_FOUND", "Requested entity was not found.",
                [Error("requestError", "RESOURCE_NOT_FOUND", "Requested resource not found.", ("resource_name", null))]);
            return;
        }
        var started = false;
        lock (_gate)
        {
            if (job.Status != "PENDING")
            {
                started = true;
            }
            else
            {
                job.Status = "RUNNING";
                job.Runs++;
                var members = _lists[job.UserList];
                foreach (var (create, identifiers) in job.Operations)
                {
                    foreach (var (field, hash) in identifiers)
                    {
                        var set = members.GetOrAdd(field, _ => new HashSet<string>(StringComparer.Ordinal));
                        if (create)
                        {
                            set.Add(hash);
                        }
                        else
                        {
                            set.Remove(hash);
                        }
                    }
                }
                job.Status = "SUCCESS";
            }
        }
        if (LoseRunAnswers)
        {
            // Every answer is lost, so the client's own reconnect-and-resend cannot learn the outcome either.
            context.Abort();
            return;
        }
        if (started)
        {
            await ErrorAsync(context, 400, "INVALID_ARGUMENT", "Request contains an invalid argument.",
                [Error("offlineUserDataJobError", "JOB_ALREADY_STARTED", "Once the upload job is started, new operations cannot be added.")]);
            return;
        }
        if (LoseAnswer(context))
        {
            return;
        }
        var customer = name.Split('/')[1];
        await JsonAsync(context, 200, new JsonObject
        {
            ["name"] = $"customers/{customer}/operations/{name.Split('/')[^1]}.run",
        });
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

    /// <summary>A GoogleAdsError: <c>{"errorCode": {family: code}, "message", "location": {"fieldPathElements": […]}}</c>.</summary>
    public static JsonObject Error(string family, string code, string message, params (string Field, int? Index)[] path)
    {
        var error = new JsonObject
        {
            ["errorCode"] = new JsonObject { [family] = code },
            ["message"] = message,
        };
        if (path.Length > 0)
        {
            error["location"] = new JsonObject
            {
                ["fieldPathElements"] = new JsonArray([.. path.Select(p => (JsonNode)(p.Index is { } i
                    ? new JsonObject { ["fieldName"] = p.Field, ["index"] = i }
                    : new JsonObject { ["fieldName"] = p.Field }))]),
            };
        }
        return error;
    }

    /// <summary>A <c>google.rpc.Status</c> whose details hold one GoogleAdsFailure with <paramref name="errors"/>.</summary>
    public static JsonObject Status(int code, string message, IEnumerable<JsonObject> errors)
    {
        var result = new JsonObject
        {
            ["code"] = code,
            ["message"] = message,
        };
        result["details"] = new JsonArray(new JsonObject
        {
            ["@type"] = $"type.googleapis.com/google.ads.googleads.{Version}.errors.GoogleAdsFailure",
            ["errors"] = new JsonArray([.. errors.Select(e => (JsonNode)e.DeepClone())]),
            ["requestId"] = Guid.NewGuid().ToString("N")[..22],
        });
        return result;
    }

    /// <summary>An error answer: <c>{"error": Status}</c> with the HTTP status that goes with it.</summary>
    public static JsonObject ErrorBody(int httpStatus, string status, string message, IEnumerable<JsonObject> errors)
    {
        var error = Status(httpStatus, message, errors);
        error["status"] = status;
        return new JsonObject { ["error"] = error };
    }

    private static Task ErrorAsync(HttpContext context, int httpStatus, string status, string message, IEnumerable<JsonObject> errors)
        => JsonAsync(context, httpStatus, ErrorBody(httpStatus, status, message, errors));

    private static async Task JsonAsync(HttpContext context, int status, JsonNode body)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json; charset=UTF-8";
        await context.Response.WriteAsync(body.ToJsonString(), context.RequestAborted);
    }

    [GeneratedRegex(@"^/v\d+/customers/(?<customer>\d+)/offlineUserDataJobs(?:/(?<job>\d+))?:(?<method>create|addOperations|run)$")]
    private static partial Regex JobsPath();

    [GeneratedRegex("^[0-9a-fA-F]{64}$")]
    private static partial Regex Sha256();

    /// <summary>An offline user data job and what it holds.</summary>
    public sealed class Job(string name, string userList, string? adUserData, string? adPersonalization)
    {
        public string Name { get; } = name;

        public string UserList { get; } = userList;

        /// <summary>The consent the job was created with (null when not given).</summary>
        public string? AdUserData { get; } = adUserData;

        public string? AdPersonalization { get; } = adPersonalization;

        /// <summary>PENDING, RUNNING or SUCCESS.</summary>
        public string Status { get; set; } = "PENDING";

        /// <summary>How many times <c>:run</c> started it (at most once, by the contract).</summary>
        public int Runs { get; set; }

        public List<(bool Create, List<(string Field, string Hash)> Identifiers)> Operations { get; } = [];

        public bool HasCreates { get; set; }

        public bool HasRemoves { get; set; }
    }
}
