using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Engine.Identity;

namespace Engine.Connectors.Destinations.Google;

/// <summary>
/// Google Ads Customer Match through the OfflineUserDataJobService (REST): per run, a job is created
/// (<c>customers/{customer_id}/offlineUserDataJobs:create</c>, type <c>CUSTOMER_MATCH_USER_LIST</c>, with the user
/// list and the consent), each batch adds its operations to it (<c>{job}:addOperations</c>,
/// <c>enablePartialFailure: true</c>), and <see cref="CompleteAsync"/> runs it once (<c>{job}:run</c>).
/// <para><b>Two jobs per run.</b> Google refuses to mix creations and removals in one job
/// (<c>CONFLICTING_OPERATION</c>), so a mirror destination's exits go to a removal job and its entries to an
/// addition job; the removal job is run first.</para>
/// <para><b>Restarts.</b> Each job's resource name is stored in the delivery ledger (<see cref="IDestinationState"/>)
/// the moment it is created, so a restarted worker adds to the same job; which job was run is stored after the run,
/// and a run whose answer was lost is recognised when Google answers <c>JOB_ALREADY_STARTED</c>, so each job runs
/// once. A job created whose name was never stored (a crash in between) is left pending: Google never processes it.</para>
/// <para><b>Operations.</b> One per profile: <c>{"create"|"remove": {"userIdentifiers": [{"hashedEmail"}, …,
/// {"hashedPhoneNumber"}, …]}}</c> with every email and phone of the profile, at most 20 identifiers per operation and
/// 100,000 per request, as Google documents; a batch with more identifiers goes out in several requests. Before
/// hashing: emails trimmed and lower-cased (Google does not require removing dots of gmail.com addresses, so they
/// stay); phones E.164 with '+'; SHA-256 as lower-case hex.</para>
/// <para><b>Consent.</b> The job says <c>adUserData</c> and <c>adPersonalization</c> are <c>GRANTED</c> only when the
/// destination requires a grant before sending (<see cref="ConsentRule.Required"/>): then every entry sent was checked
/// against one. Otherwise the job carries no consent, rather than a claim delivery did not check.</para>
/// <para><b>Errors</b> (<c>{"error": {"code", "message", "status", "details": [GoogleAdsFailure]}}</c>):
/// <c>RESOURCE_EXHAUSTED</c> (429) is transient, retried after the <c>retryDelay</c> Google gives;
/// <c>UNAUTHENTICATED</c> and <c>PERMISSION_DENIED</c> are fatal, as is any refusal to create the job (an unknown
/// user list, terms not accepted); <c>INVALID_ARGUMENT</c> for a whole request is permanent for its records; per
/// operation errors under partial failure reject only the operations they name, by index.</para>
/// </summary>
public sealed class GoogleCustomerMatchDestination : HttpDestination
{
    /// <summary>The Google Ads API base the destination calls unless <c>settings.url</c> says otherwise.</summary>
    public const string DefaultUrl = "https://googleads.googleapis.com/v26";

    /// <summary>User identifiers Google takes in one AddOfflineUserDataJobOperations request.</summary>
    public const int MaxIdentifiersPerRequest = 100_000;

    /// <summary>User identifiers Google takes in one operation (one user's UserData).</summary>
    public const int MaxIdentifiersPerOperation = 20;

    internal const string JobAlreadyStarted = "job_already_started";
    private const string JobNotFound = "job_not_found";

    private readonly string _base;
    private readonly string _customerId;
    private readonly string _userList;
    private readonly string? _loginCustomerId;
    private readonly string _token;
    private readonly string? _developerToken;
    private readonly bool _consentGranted;
    private readonly IReadOnlyDictionary<string, NormalizerKind> _kinds;
    private readonly IDestinationState _state;
    private readonly ConcurrentDictionary<(string RunId, RecordOperation Operation), string> _jobs = new();
    private readonly SemaphoreSlim _jobGate = new(1, 1);

    /// <param name="definition">The destination: settings <c>customer_id</c>, <c>user_list_id</c>, optional <c>url</c> and <c>login_customer_id</c>.</param>
    /// <param name="identifierKinds">The normaliser kind of each identifier type the destination matches on.</param>
    /// <param name="state">Where the run's job names are kept across restarts.</param>
    /// <param name="handler">The HTTP handler (tests); null for the default.</param>
    public GoogleCustomerMatchDestination(DestinationDefinition definition, IReadOnlyDictionary<string, NormalizerKind> identifierKinds,
        IDestinationState state, HttpMessageHandler? handler = null) : base(definition, handler)
    {
        ArgumentNullException.ThrowIfNull(identifierKinds);
        ArgumentNullException.ThrowIfNull(state);
        _customerId = CustomerId(definition, "customer_id") ?? throw Invalid(definition, "customer_id");
        var list = definition.Setting("user_list_id")?.Trim() ?? "";
        if (list.Length == 0 || !list.All(char.IsAsciiDigit))
        {
            throw Invalid(definition, "user_list_id");
        }
        _userList = $"customers/{_customerId}/userLists/{list}";
        _loginCustomerId = definition.Setting("login_customer_id") is null ? null : CustomerId(definition, "login_customer_id") ?? throw Invalid(definition, "login_customer_id");
        _base = (definition.Setting("url") ?? DefaultUrl).TrimEnd('/');
        _kinds = identifierKinds;
        _state = state;
        _consentGranted = definition.Consent == ConsentRule.Required;
        _token = Credential("access_token");
        _developerToken = definition.Credentials.ContainsKey("developer_token") ? Credential("developer_token") : null;
    }

    public override async Task<IReadOnlyList<RecordResult>> SendAsync(DestinationBatch batch, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var results = new Dictionary<string, RecordResult>(StringComparer.Ordinal);
        var operations = new List<(OutgoingRecord Record, List<(string Field, string Hash)> Identifiers)>(batch.Records.Count);
        foreach (var record in batch.Records)
        {
            var identifiers = Identifiers(record);
            if (identifiers.Count == 0)
            {
                results[record.Key] = new RecordResult(record.Key, RecordStatus.Rejected, "no email or phone Google can match on");
            }
            else
            {
                operations.Add((record, identifiers));
            }
        }
        if (operations.Count == 0)
        {
            return [.. results.Values];
        }

        var job = await JobAsync(batch.RunId, batch.Operation, cancellationToken);
        var chunks = Chunks(operations);
        for (var c = 0; c < chunks.Count; c++)
        {
            var chunk = chunks[c];
            try
            {
                var failed = await AddOperationsAsync(job, chunk, batch.Operation, cancellationToken);
                for (var i = 0; i < chunk.Count; i++)
                {
                    var key = chunk[i].Record.Key;
                    results[key] = failed.TryGetValue(i, out var reason)
                        ? new RecordResult(key, RecordStatus.Rejected, reason)
                        : new RecordResult(key, RecordStatus.Delivered);
                }
            }
            catch (DestinationException e)
            {
                if (e.Reason is JobAlreadyStarted or JobNotFound)
                {
                    await ForgetJobAsync(batch.RunId, batch.Operation, job, cancellationToken);
                }
                // Nothing applied yet, or the destination is unusable: the whole batch fails as the request did.
                if (c == 0 || e.Kind == FailureKind.Fatal)
                {
                    throw;
                }
                // Earlier requests were applied: only the records not applied are retried or dead-lettered.
                var status = e.Kind == FailureKind.Transient ? RecordStatus.Retry : RecordStatus.Rejected;
                foreach (var rest in chunks.Skip(c).SelectMany(x => x))
                {
                    results[rest.Record.Key] = new RecordResult(rest.Record.Key, status, e.Message);
                }
                break;
            }
        }
        return [.. batch.Records.Select(r => results[r.Key])];
    }

    /// <summary>Runs the run's removal job, then its addition job, each once (see the class remarks on restarts).</summary>
    public override async Task CompleteAsync(string runId, CancellationToken cancellationToken)
    {
        foreach (var operation in new[] { RecordOperation.Remove, RecordOperation.Add })
        {
            var job = await _state.GetAsync(runId, JobState(operation), cancellationToken);
            if (string.IsNullOrEmpty(job) || await _state.GetAsync(runId, RunState(operation), cancellationToken) == job)
            {
                continue;
            }
            try
            {
                using var request = Request($"{_base}/{job}:run", "{}"u8.ToArray());
                var answer = await SendAsync(request, cancellationToken, KeepErrors);
                if ((int)answer.Status >= 400)
                {
                    throw Failure(answer, creating: false);
                }
            }
            catch (DestinationException e) when (e.Reason == JobAlreadyStarted)
            {
                // Started by an earlier attempt whose answer was lost: it runs, and must not run twice.
            }
            await _state.SetAsync(runId, RunState(operation), job, cancellationToken);
        }
    }

    private static string JobState(RecordOperation operation) => operation == RecordOperation.Add ? "google.job.add" : "google.job.remove";

    private static string RunState(RecordOperation operation) => operation == RecordOperation.Add ? "google.run.add" : "google.run.remove";

    private static bool KeepErrors(HttpStatusCode status) => (int)status is >= 400 and < 500;

    /// <summary>The run's job for <paramref name="operation"/>: the one this client or an earlier worker created, or a new one.</summary>
    private async Task<string> JobAsync(string runId, RecordOperation operation, CancellationToken cancellationToken)
    {
        if (_jobs.TryGetValue((runId, operation), out var cached))
        {
            return cached;
        }
        // One creation at a time: concurrent batches of a run must share its job, not make one each.
        await _jobGate.WaitAsync(cancellationToken);
        try
        {
            if (_jobs.TryGetValue((runId, operation), out cached))
            {
                return cached;
            }
            var job = await _state.GetAsync(runId, JobState(operation), cancellationToken);
            if (string.IsNullOrEmpty(job))
            {
                job = await CreateJobAsync(cancellationToken);
                await _state.SetAsync(runId, JobState(operation), job, CancellationToken.None);
            }
            _jobs[(runId, operation)] = job;
            return job;
        }
        finally
        {
            _jobGate.Release();
        }
    }

    /// <summary>Drops a job that can take no more operations (started, or gone), so the next attempt creates another.</summary>
    private async Task ForgetJobAsync(string runId, RecordOperation operation, string job, CancellationToken cancellationToken)
    {
        await _jobGate.WaitAsync(cancellationToken);
        try
        {
            _jobs.TryRemove(new KeyValuePair<(string, RecordOperation), string>((runId, operation), job));
            if (await _state.GetAsync(runId, JobState(operation), cancellationToken) == job)
            {
                await _state.SetAsync(runId, JobState(operation), "", CancellationToken.None);
            }
        }
        finally
        {
            _jobGate.Release();
        }
    }

    private async Task<string> CreateJobAsync(CancellationToken cancellationToken)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteStartObject("job");
            writer.WriteString("type", "CUSTOMER_MATCH_USER_LIST");
            writer.WriteStartObject("customerMatchUserListMetadata");
            writer.WriteString("userList", _userList);
            if (_consentGranted)
            {
                writer.WriteStartObject("consent");
                writer.WriteString("adUserData", "GRANTED");
                writer.WriteString("adPersonalization", "GRANTED");
                writer.WriteEndObject();
            }
            writer.WriteEndObject();
            writer.WriteEndObject();
            writer.WriteEndObject();
        }
        using var request = Request($"{_base}/customers/{_customerId}/offlineUserDataJobs:create", buffer.ToArray());
        var answer = await SendAsync(request, cancellationToken, KeepErrors);
        if ((int)answer.Status >= 400)
        {
            throw Failure(answer, creating: true);
        }
        using var json = ParseJson(answer);
        return json.RootElement.TryGetProperty("resourceName", out var name) && name.GetString() is { Length: > 0 } resource
            ? resource
            : throw new DestinationException("invalid_response", FailureKind.Transient, $"the created job has no resourceName: {Trim(answer.Body)}");
    }

    /// <summary>Adds one request's operations; returns the reason of each operation refused, by its index in <paramref name="chunk"/>.</summary>
    private async Task<Dictionary<int, string>> AddOperationsAsync(string job, List<(OutgoingRecord Record, List<(string Field, string Hash)> Identifiers)> chunk,
        RecordOperation operation, CancellationToken cancellationToken)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteBoolean("enablePartialFailure", true);
            writer.WriteStartArray("operations");
            foreach (var (_, identifiers) in chunk)
            {
                writer.WriteStartObject();
                writer.WriteStartObject(operation == RecordOperation.Add ? "create" : "remove");
                writer.WriteStartArray("userIdentifiers");
                foreach (var (field, hash) in identifiers)
                {
                    writer.WriteStartObject();
                    writer.WriteString(field, hash);
                    writer.WriteEndObject();
                }
                writer.WriteEndArray();
                writer.WriteEndObject();
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
            writer.WriteEndObject();
        }
        using var request = Request($"{_base}/{job}:addOperations", buffer.ToArray());
        var answer = await SendAsync(request, cancellationToken, KeepErrors);
        if ((int)answer.Status >= 400)
        {
            throw Failure(answer, creating: false);
        }
        var failed = new Dictionary<int, string>();
        if (answer.Body.Length == 0)
        {
            return failed;
        }
        using var json = ParseJson(answer);
        if (!json.RootElement.TryGetProperty("partialFailureError", out var partial) || partial.ValueKind != JsonValueKind.Object)
        {
            return failed;
        }
        foreach (var error in Errors(partial))
        {
            if (OperationIndex(error) is { } index && index >= 0 && index < chunk.Count)
            {
                var reason = Describe(error);
                failed[index] = failed.TryGetValue(index, out var earlier) ? $"{earlier}; {reason}" : reason;
            }
        }
        return failed;
    }

    private HttpRequestMessage Request(string url, byte[] body)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _token);
        if (_developerToken is not null)
        {
            request.Headers.Add("developer-token", _developerToken);
        }
        if (_loginCustomerId is not null)
        {
            request.Headers.Add("login-customer-id", _loginCustomerId);
        }
        return request;
    }

    /// <summary>A record's identifiers: hashed emails, then hashed phones, at most <see cref="MaxIdentifiersPerOperation"/>.</summary>
    private List<(string Field, string Hash)> Identifiers(OutgoingRecord record)
    {
        var (emails, phones) = HashedIdentifiers.Split(record, _kinds);
        var identifiers = new List<(string, string)>();
        foreach (var email in emails.Select(HashedIdentifiers.NormalizeEmail).OfType<string>().Distinct(StringComparer.Ordinal))
        {
            identifiers.Add(("hashedEmail", HashedIdentifiers.Sha256Hex(email)));
        }
        foreach (var phone in phones.Select(HashedIdentifiers.E164Phone).OfType<string>().Distinct(StringComparer.Ordinal))
        {
            identifiers.Add(("hashedPhoneNumber", HashedIdentifiers.Sha256Hex(phone)));
        }
        return identifiers.Count > MaxIdentifiersPerOperation ? identifiers.GetRange(0, MaxIdentifiersPerOperation) : identifiers;
    }

    /// <summary>Operations split into requests of at most <see cref="MaxIdentifiersPerRequest"/> identifiers, in order.</summary>
    private static List<List<(OutgoingRecord Record, List<(string Field, string Hash)> Identifiers)>> Chunks(
        List<(OutgoingRecord Record, List<(string Field, string Hash)> Identifiers)> operations)
    {
        var chunks = new List<List<(OutgoingRecord, List<(string, string)>)>>();
        var current = new List<(OutgoingRecord, List<(string, string)>)>();
        var count = 0;
        foreach (var operation in operations)
        {
            if (count + operation.Identifiers.Count > MaxIdentifiersPerRequest && current.Count > 0)
            {
                chunks.Add(current);
                current = [];
                count = 0;
            }
            current.Add(operation);
            count += operation.Identifiers.Count;
        }
        chunks.Add(current);
        return chunks;
    }

    /// <summary>Google's error answer as a failure of the right kind (see the class remarks).</summary>
    private static DestinationException Failure(HttpAnswer answer, bool creating)
    {
        var code = (int)answer.Status;
        string? status = null;
        string? message = null;
        List<JsonElement> errors = [];
        try
        {
            using var json = JsonDocument.Parse(answer.Body);
            if (json.RootElement.TryGetProperty("error", out var error) && error.ValueKind == JsonValueKind.Object)
            {
                status = error.TryGetProperty("status", out var s) ? s.GetString() : null;
                message = error.TryGetProperty("message", out var m) ? m.GetString() : null;
                errors = [.. Errors(error).Select(e => e.Clone())];
            }
        }
        catch (JsonException)
        {
            // Not Google's JSON (a proxy's page): the HTTP status alone decides.
        }
        var detail = Trim(errors.Count > 0 ? string.Join("; ", errors.Select(Describe)) : message ?? answer.Body);
        var codes = errors.Select(ErrorCode).ToList();
        if (code == 429 || status == "RESOURCE_EXHAUSTED")
        {
            return new DestinationException("rate_limited", FailureKind.Transient, detail, RetryDelay(errors) ?? answer.Headers.RetryAfter?.Delta);
        }
        if (code == 401 || status == "UNAUTHENTICATED")
        {
            return new DestinationException("unauthenticated", FailureKind.Fatal, detail);
        }
        if (code == 403 || status == "PERMISSION_DENIED")
        {
            return new DestinationException("permission_denied", FailureKind.Fatal, detail);
        }
        if (codes.Contains("JOB_ALREADY_STARTED"))
        {
            return new DestinationException(JobAlreadyStarted, FailureKind.Transient, detail);
        }
        if (!creating && codes.Contains("RESOURCE_NOT_FOUND"))
        {
            return new DestinationException(JobNotFound, FailureKind.Transient, detail);
        }
        if (status is "ABORTED" or "UNAVAILABLE" or "DEADLINE_EXCEEDED" or "INTERNAL")
        {
            return new DestinationException(status.ToLowerInvariant(), FailureKind.Transient, detail);
        }
        // The job cannot be created (unknown user list, terms not accepted…): no batch can go anywhere.
        var kind = creating || code == 404 ? FailureKind.Fatal : FailureKind.Permanent;
        return new DestinationException(status?.ToLowerInvariant() ?? $"http_{code}", kind, detail);
    }

    /// <summary>The GoogleAdsError entries of a <c>google.rpc.Status</c> (its details' <c>errors</c>).</summary>
    private static IEnumerable<JsonElement> Errors(JsonElement status)
    {
        if (!status.TryGetProperty("details", out var details) || details.ValueKind != JsonValueKind.Array)
        {
            yield break;
        }
        foreach (var detail in details.EnumerateArray())
        {
            if (detail.ValueKind == JsonValueKind.Object && detail.TryGetProperty("errors", out var errors) && errors.ValueKind == JsonValueKind.Array)
            {
                foreach (var error in errors.EnumerateArray())
                {
                    yield return error;
                }
            }
        }
    }

    /// <summary>An error's code value (<c>{"errorCode": {"offlineUserDataJobError": "JOB_ALREADY_STARTED"}}</c> → the value).</summary>
    private static string? ErrorCode(JsonElement error)
        => error.TryGetProperty("errorCode", out var code) && code.ValueKind == JsonValueKind.Object
            ? code.EnumerateObject().Select(p => p.Value.GetString()).FirstOrDefault()
            : null;

    /// <summary>An error for a report line: <c>offlineUserDataJobError.X: message</c>.</summary>
    private static string Describe(JsonElement error)
    {
        var name = error.TryGetProperty("errorCode", out var code) && code.ValueKind == JsonValueKind.Object
            ? string.Join(",", code.EnumerateObject().Select(p => $"{p.Name}.{p.Value.GetString()}"))
            : "error";
        var message = error.TryGetProperty("message", out var m) ? m.GetString() : null;
        return message is null ? name : $"{name}: {message}";
    }

    /// <summary>The operation an error is about: the index of its location's <c>operations</c> element.</summary>
    private static int? OperationIndex(JsonElement error)
    {
        if (!error.TryGetProperty("location", out var location) || !location.TryGetProperty("fieldPathElements", out var path)
            || path.ValueKind != JsonValueKind.Array)
        {
            return null;
        }
        foreach (var element in path.EnumerateArray())
        {
            if (element.TryGetProperty("fieldName", out var field) && field.GetString() == "operations"
                && element.TryGetProperty("index", out var index) && index.TryGetInt32(out var i))
            {
                return i;
            }
        }
        return null;
    }

    /// <summary>The longest <c>quotaErrorDetails.retryDelay</c> (a protobuf Duration such as <c>"30s"</c>), or null.</summary>
    private static TimeSpan? RetryDelay(List<JsonElement> errors)
    {
        TimeSpan? longest = null;
        foreach (var error in errors)
        {
            if (error.TryGetProperty("details", out var details) && details.TryGetProperty("quotaErrorDetails", out var quota)
                && quota.TryGetProperty("retryDelay", out var delay) && delay.GetString() is { } text && text.EndsWith('s')
                && double.TryParse(text[..^1], NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) && seconds >= 0)
            {
                var wait = TimeSpan.FromSeconds(seconds);
                longest = longest is null || wait > longest ? wait : longest;
            }
        }
        return longest;
    }

    private static string? CustomerId(DestinationDefinition definition, string setting)
    {
        // Customer ids are often written 123-456-7890, as the Google Ads UI shows them; the API takes the digits.
        var digits = (definition.Setting(setting) ?? "").Trim().Replace("-", "", StringComparison.Ordinal);
        return digits.Length > 0 && digits.All(char.IsAsciiDigit) ? digits : null;
    }

    private static DestinationException Invalid(DestinationDefinition definition, string setting)
        => new("invalid_setting", FailureKind.Fatal, $"destination '{definition.Name}': {setting} '{definition.Setting(setting)}' is not a Google Ads id (digits, such as 123-456-7890)");

    protected override async ValueTask DisposeAsyncCore()
    {
        _jobGate.Dispose();
        await base.DisposeAsyncCore();
    }
}
