using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Engine.Connectors.Delivery;
using Engine.Connectors.Destinations;
using Engine.Connectors.Destinations.Crm;
using Engine.Connectors.Ledger;
using Engine.Connectors.Matching;
using Engine.Connectors.Tests.ContractServers;
using Engine.TestKit;

namespace Engine.Connectors.Tests.Destinations;

public sealed class CrmTests
{
    private const string Token = "pat-na1-test-token";

    private static readonly Dictionary<string, CrmPropertyType> Properties = new(StringComparer.Ordinal)
    {
        ["email"] = CrmPropertyType.String,
        ["firstname"] = CrmPropertyType.String,
        ["loyalty_tier"] = CrmPropertyType.String,
        ["orders"] = CrmPropertyType.Number,
        ["engine_segment_vip"] = CrmPropertyType.Bool,
        ["engine_segment_churn_risk"] = CrmPropertyType.Bool,
    };

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Entries_upsert_one_input_per_id_with_a_true_property_per_segment_and_the_fields()
    {
        await using var server = new CrmServer(Token, Properties);
        await server.StartAsync();
        await using var crm = new CrmDestination(Definition(server.BaseUrl));

        var results = await crm.SendAsync(Batch(RecordOperation.Add,
            Record("vip", 1, "ann@example.com") with { Fields = Fields("Ann", "gold", 3L) },
            Record("churn-risk", 1, "ann@example.com") with { Fields = Fields("Ann", "gold", 3L) },
            Record("vip", 2, "bob@example.com") with { Fields = Fields(null, "silver", null) },
            Record("vip", 3, null)), Cancel);

        Assert.Equal([RecordStatus.Delivered, RecordStatus.Delivered, RecordStatus.Delivered, RecordStatus.Rejected], results.Select(r => r.Status));
        Assert.Equal("no email to use as the idProperty", results[3].Reason);
        var inputs = Assert.Single(server.Received)["inputs"]!.AsArray();
        Assert.Equal(2, inputs.Count);
        Assert.Equal("email", (string?)inputs[0]!["idProperty"]);
        Assert.Equal("ann@example.com", (string?)inputs[0]!["id"]);
        Assert.Equal(["0", "1"], inputs.Select(i => (string?)i!["objectWriteTraceId"]));
        var ann = inputs[0]!["properties"]!.AsObject();
        Assert.Equal("true", (string?)ann["engine_segment_vip"]);
        Assert.Equal("true", (string?)ann["engine_segment_churn_risk"]);
        Assert.Equal("Ann", (string?)ann["firstname"]);
        Assert.Equal(3, (long)ann["orders"]!);
        // HubSpot clears a property with an empty string, not null.
        Assert.Equal("", (string?)inputs[1]!["properties"]!["firstname"]);

        var record = server.Find("ann@example.com")!;
        Assert.Equal("true", record["engine_segment_vip"]);
        Assert.Equal("true", record["engine_segment_churn_risk"]);
        Assert.Equal("3", record["orders"]);
        Assert.False(server.Find("bob@example.com")!.ContainsKey("firstname"));
        Assert.Equal(["ann@example.com", "bob@example.com"], server.Ids);
    }

    [Fact]
    public async Task Exits_set_the_segment_property_false_and_leave_the_others()
    {
        await using var server = new CrmServer(Token, Properties);
        await server.StartAsync();
        server.Seed("ann@example.com", new Dictionary<string, string> { ["engine_segment_vip"] = "true", ["engine_segment_churn_risk"] = "true" });
        await using var crm = new CrmDestination(Definition(server.BaseUrl));

        var results = await crm.SendAsync(Batch(RecordOperation.Remove, Record("vip", 1, "ann@example.com")), Cancel);

        Assert.Equal(RecordStatus.Delivered, Assert.Single(results).Status);
        var record = server.Find("ann@example.com")!;
        Assert.Equal("false", record["engine_segment_vip"]);
        Assert.Equal("true", record["engine_segment_churn_risk"]);
        Assert.Equal("engine_segment_churn_risk", CrmDestination.SegmentProperty("Churn-Risk"));
    }

    [Fact]
    public async Task A_multi_status_answer_rejects_invalid_inputs_and_retries_conflicts()
    {
        await using var server = new CrmServer(Token, Properties);
        await server.StartAsync();
        server.FailNext("cat@example.com", 1);
        await using var crm = new CrmDestination(Definition(server.BaseUrl));
        var batch = Batch(RecordOperation.Add, Record("vip", 1, "ann@example.com"), Record("vip", 2, "not-an-email"), Record("vip", 3, "cat@example.com"));

        var results = await crm.SendAsync(batch, Cancel);
        var retried = await crm.SendAsync(Batch(RecordOperation.Add, batch.Records[2]), Cancel);

        Assert.Equal([RecordStatus.Delivered, RecordStatus.Rejected, RecordStatus.Retry], results.Select(r => r.Status));
        Assert.StartsWith("VALIDATION_ERROR: Email address <id> is invalid", results[1].Reason, StringComparison.Ordinal);
        Assert.DoesNotContain("not-an-email", results[1].Reason, StringComparison.Ordinal);
        Assert.StartsWith("CONFLICT", results[2].Reason, StringComparison.Ordinal);
        Assert.Equal(RecordStatus.Delivered, Assert.Single(retried).Status);
        Assert.Equal(["ann@example.com", "cat@example.com"], server.Ids);
    }

    [Fact]
    public async Task A_refused_token_is_fatal()
    {
        await using var server = new CrmServer(Token, Properties);
        await server.StartAsync();
        await using var crm = new CrmDestination(Definition(server.BaseUrl, token: "expired"));

        var e = await Assert.ThrowsAsync<DestinationException>(() => crm.SendAsync(Batch(RecordOperation.Add, Record("vip", 1, "ann@example.com")), Cancel));

        Assert.Equal(FailureKind.Fatal, e.Kind);
        Assert.Equal("http_401", e.Reason);
        Assert.Contains("INVALID_AUTHENTICATION", e.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_url_that_is_not_the_API_base_is_fatal()
    {
        await using var server = new CrmServer(Token, Properties);
        await server.StartAsync();
        await using var crm = new CrmDestination(Definition(new Uri(server.BaseUrl, "api/")));

        var e = await Assert.ThrowsAsync<DestinationException>(() => crm.SendAsync(Batch(RecordOperation.Add, Record("vip", 1, "ann@example.com")), Cancel));

        Assert.Equal(FailureKind.Fatal, e.Kind);
        Assert.Equal("http_404", e.Reason);
    }

    [Fact]
    public async Task The_burst_limit_is_transient_with_the_rolling_window_as_delay()
    {
        await using var server = new CrmServer(Token, Properties, burstMax: 2);
        await server.StartAsync();
        await using var crm = new CrmDestination(Definition(server.BaseUrl));
        var batch = Batch(RecordOperation.Add, Record("vip", 1, "ann@example.com"));

        await crm.SendAsync(batch, Cancel);
        await crm.SendAsync(batch, Cancel);
        var e = await Assert.ThrowsAsync<DestinationException>(() => crm.SendAsync(batch, Cancel));

        Assert.Equal(FailureKind.Transient, e.Kind);
        Assert.Equal("http_429", e.Reason);
        Assert.Contains("TEN_SECONDLY_ROLLING", e.Detail, StringComparison.Ordinal);
        // No Retry-After: one whole rolling window, as X-HubSpot-RateLimit-Interval-Milliseconds says.
        Assert.Equal(TimeSpan.FromSeconds(10), e.RetryAfter);
        Assert.Equal(1, server.RateLimited);
    }

    [Fact]
    public async Task The_daily_limit_is_fatal_so_records_wait_for_the_next_delivery()
    {
        await using var server = new CrmServer(Token, Properties) { DailyLimit = 1 };
        await server.StartAsync();
        await using var crm = new CrmDestination(Definition(server.BaseUrl));
        var batch = Batch(RecordOperation.Add, Record("vip", 1, "ann@example.com"));

        await crm.SendAsync(batch, Cancel);
        var e = await Assert.ThrowsAsync<DestinationException>(() => crm.SendAsync(batch, Cancel));

        Assert.Equal(FailureKind.Fatal, e.Kind);
        Assert.Equal("daily_limit", e.Reason);
        Assert.Equal(1, server.RateLimited);
    }

    [Fact]
    public async Task A_whole_request_validation_error_is_permanent()
    {
        await using var server = new CrmServer(Token, Properties);
        await server.StartAsync();
        await using var crm = new CrmDestination(Definition(server.BaseUrl));
        var records = Enumerable.Range(1, CrmServer.MaxInputs + 1).Select(p => Record("vip", p, $"p{p}@example.com")).ToArray();

        var e = await Assert.ThrowsAsync<DestinationException>(() => crm.SendAsync(Batch(RecordOperation.Add, records), Cancel));
        var atLimit = await crm.SendAsync(Batch(RecordOperation.Add, records[..CrmServer.MaxInputs]), Cancel);

        Assert.Equal(FailureKind.Permanent, e.Kind);
        Assert.Equal("http_400", e.Reason);
        Assert.Contains("VALIDATION_ERROR", e.Detail, StringComparison.Ordinal);
        Assert.All(atLimit, r => Assert.Equal(RecordStatus.Delivered, r.Status));
        Assert.Equal(100, DestinationTypeInfo.Of(DestinationType.Crm).MaxBatchSize);
        Assert.Equal(new RateLimit(100, 10, 100), DestinationTypeInfo.Of(DestinationType.Crm).DefaultRateLimit);
    }

    [Fact]
    public async Task The_server_answers_as_HubSpot_documents()
    {
        await using var server = new CrmServer(Token, Properties, burstMax: 50);
        await server.StartAsync();
        using var http = new HttpClient { BaseAddress = server.BaseUrl };
        const string Path = "crm/v3/objects/contacts/batch/upsert";

        var noToken = await PostAsync(http, Path, """{"inputs": [{"idProperty": "email", "id": "a@b.co", "properties": {}}]}""", token: null);
        var notJson = await PostAsync(http, Path, "{inputs", Token);
        var unknownObject = await PostAsync(http, "crm/v3/objects/unicorns/batch/upsert", """{"inputs": [{"idProperty": "email", "id": "a@b.co", "properties": {}}]}""", Token);
        var tooMany = await PostAsync(http, Path, $$"""{"inputs": [{{string.Join(",", Enumerable.Range(0, 101).Select(i => $$"""{"idProperty": "email", "id": "p{{i}}@b.co", "properties": {} }"""))}}]}""", Token);
        var twice = await PostAsync(http, Path, """{"inputs": [{"idProperty": "email", "id": "a@b.co", "properties": {}}, {"idProperty": "email", "id": "A@b.co", "properties": {}}]}""", Token);
        // Without objectWriteTraceIds one bad input fails the whole request and nothing is written.
        var whole = await PostAsync(http, Path, """{"inputs": [{"idProperty": "email", "id": "a@b.co", "properties": {"firstname": "A"}}, {"idProperty": "email", "id": "b@b.co", "properties": {"shoe_size": "9"}}]}""", Token);
        var multi = await PostAsync(http, Path, """
            {"inputs": [
              {"idProperty": "email", "id": "a@b.co", "objectWriteTraceId": "t1", "properties": {"engine_segment_vip": "true"}},
              {"idProperty": "email", "id": "b@b.co", "objectWriteTraceId": "t2", "properties": {"engine_segment_vip": "yes"}}]}
            """, Token);

        Assert.Equal(HttpStatusCode.Unauthorized, noToken.Status);
        Assert.Equal("INVALID_AUTHENTICATION", (string?)noToken.Body["category"]);
        Assert.Equal("error", (string?)noToken.Body["status"]);
        Assert.All([notJson, unknownObject, tooMany, twice, whole], a =>
        {
            Assert.Equal(HttpStatusCode.BadRequest, a.Status);
            Assert.Equal("VALIDATION_ERROR", (string?)a.Body["category"]);
        });
        Assert.Contains("Duplicate IDs", (string?)twice.Body["message"], StringComparison.Ordinal);
        Assert.Equal("Property \"shoe_size\" does not exist", (string?)whole.Body["message"]);
        Assert.Equal((HttpStatusCode)207, multi.Status);
        Assert.Equal(1, (int)multi.Body["numErrors"]!);
        var error = multi.Body["errors"]![0]!;
        Assert.Equal("VALIDATION_ERROR", (string?)error["category"]);
        Assert.Equal("t2", (string?)error["context"]!["objectWriteTraceId"]![0]);
        Assert.Equal("INVALID_BOOLEAN", (string?)error["errors"]![0]!["code"]);
        Assert.Equal("true", (string?)multi.Body["results"]![0]!["properties"]!["engine_segment_vip"]);
        Assert.Equal("10000", multi.Headers["X-HubSpot-RateLimit-Interval-Milliseconds"]);
        Assert.Equal("50", multi.Headers["X-HubSpot-RateLimit-Max"]);
        Assert.Equal(50 - 6, int.Parse(multi.Headers["X-HubSpot-RateLimit-Remaining"], CultureInfo.InvariantCulture));
        Assert.Equal(["a@b.co"], server.Ids);
    }

    [Fact]
    public async Task A_delivery_under_the_burst_limit_and_faults_accounts_for_every_record_once()
    {
        const int People = 400;
        var faults = new FaultPlan(5) { RateLimited = 0.05, ServerErrors = 0.05, DropsBefore = 0.05, DropsAfter = 0.08, RetryAfter = TimeSpan.FromMilliseconds(50) };
        // Two requests per 300 ms against four in flight: the limit is hit however fast the machine is.
        await using var server = new CrmServer(Token, Properties, faults, burstMax: 2, burstInterval: TimeSpan.FromMilliseconds(300))
        {
            DropAnswersOf = new HashSet<int> { 2, 5 },
        };
        await server.StartAsync();
        server.FailNext("p120@example.com", 2);
        server.FailNext("p360@example.com", 1);
        // Leavers were synced before: the CRM has them in both segments.
        for (var p = 351; p <= People; p++)
        {
            server.Seed(Email(p), new Dictionary<string, string> { ["engine_segment_vip"] = "true", ["engine_segment_churn_risk"] = "true" });
        }
        var identifiers = new Dictionary<long, IReadOnlyList<ProfileIdentifier>>();
        var fields = new Dictionary<long, IReadOnlyDictionary<string, object?>>();
        for (var p = 1; p <= People; p++)
        {
            // Two profiles hold an address the CRM refuses.
            identifiers[p] = [new("customer_id", $"c{p}"), new("email", p is 7 or 77 ? $"p{p}-at-example.com" : Email(p))];
            fields[p] = new Dictionary<string, object?> { ["first_name"] = $"name{p}", ["loyalty_tier"] = p % 3 == 0 ? null : "gold", ["orders"] = (long)p };
        }
        var deltas = new List<Delta>();
        deltas.AddRange(Enumerable.Range(1, 300).Select(p => new Delta("vip", p, DeliveryKeys.Entered)));
        deltas.AddRange(Enumerable.Range(200, 150).Select(p => new Delta("churn-risk", p, DeliveryKeys.Entered)));
        deltas.AddRange(Enumerable.Range(351, 50).Select(p => new Delta("vip", p, DeliveryKeys.Exited)));
        var definition = Definition(server.BaseUrl);
        await using var crm = new CrmDestination(definition);
        using var folder = new TempDirectory("crm");

        var result = await LedgerDelivery.RunAsync(definition, crm, ProfileDirectory.FromMemory(identifiers, fields), deltas, folder.Combine("ledger.db"), Cancel);

        Assert.Null(result.Worker.StoppedBy);
        Assert.Equal(deltas.Count, result.Records.Count);
        Assert.All(result.Records, r => Assert.Equal("final", r.State));
        var rejected = result.Records.Where(r => r.Outcome == Outcomes.Failed).ToList();
        Assert.Equal([7, 77], rejected.Select(r => r.ProfileId).Order());
        Assert.All(rejected, r => Assert.Equal("rejected", r.Reason));
        Assert.All(rejected, r => Assert.DoesNotContain("-at-example.com", r.Error, StringComparison.Ordinal));
        var delivered = result.Records.Where(r => r.Outcome == Outcomes.Delivered).ToList();
        Assert.Equal(deltas.Count - rejected.Count, delivered.Count);

        // Each delivered change acknowledged exactly once; a repeat only ever followed a lost answer.
        string Item(LedgerRecord r) => $"{(r.ProfileId is 7 or 77 ? $"p{r.ProfileId}-at-example.com" : Email(r.ProfileId))}|{CrmDestination.SegmentProperty(r.Segment)}={(r.Change == DeliveryKeys.Entered ? "true" : "false")}";
        Assert.All(delivered, r => Assert.Equal(1, server.Receipts.Acknowledged(Item(r))));
        Assert.Equal(delivered.Select(Item).Order(StringComparer.Ordinal), server.Receipts.Items);
        Assert.Equal(rejected.Select(Item).Order(StringComparer.Ordinal), server.Refusals.Items.Where(i => !i.StartsWith("p120@", StringComparison.Ordinal) && !i.StartsWith("p360@", StringComparison.Ordinal)));
        Assert.Equal(delivered.Count(r => r.Change == DeliveryKeys.Entered), result.Report.Added);
        Assert.Equal(delivered.Count(r => r.Change == DeliveryKeys.Exited), result.Report.Removed);
        Assert.Equal(rejected.Count, result.Report.Failed["rejected"]);
        Assert.True(result.Report.Completed);
        // The limits, conflicts and lost answers did happen.
        Assert.True(server.RateLimited > 0, "the burst limit never answered 429");
        Assert.True(result.Records.Single(r => r.ProfileId == 120 && r.Segment == "vip").Attempts >= 3);
        Assert.True(server.Receipts.Total > server.Receipts.Items.Count, "no answer was lost after applying");

        for (var p = 1; p <= People; p++)
        {
            var record = server.Find(Email(p));
            if (p is 7 or 77 or 350)
            {
                Assert.Null(record);
                continue;
            }
            Assert.NotNull(record);
            Assert.Equal(p <= 300 ? "true" : p > 350 ? "false" : null, record.GetValueOrDefault("engine_segment_vip"));
            Assert.Equal(p is >= 200 and <= 349 || p > 350 ? "true" : null, record.GetValueOrDefault("engine_segment_churn_risk"));
            Assert.Equal($"name{p}", record.GetValueOrDefault("firstname"));
            Assert.Equal(p.ToString(CultureInfo.InvariantCulture), record.GetValueOrDefault("orders"));
        }
    }

    private static string Email(long p) => $"p{p}@example.com";

    private static DestinationDefinition Definition(Uri url, string token = Token)
    {
        var variable = $"CRM_TEST_TOKEN_{Guid.NewGuid():N}".ToUpperInvariant();
        Environment.SetEnvironmentVariable(variable, token);
        return new DestinationDefinition
        {
            Name = "crm",
            File = "destinations/crm.yaml",
            Type = DestinationType.Crm,
            Segments = ["vip", "churn-risk"],
            Mode = SyncMode.Upsert,
            Consent = ConsentRule.None,
            IdentifyBy = ["email"],
            Fields = [("firstname", "first_name"), ("loyalty_tier", "loyalty_tier"), ("orders", "orders")],
            BatchSize = DestinationTypeInfo.Of(DestinationType.Crm).MaxBatchSize,
            // The server's limit is the one under test: the client's own bucket stays out of the way.
            RateLimit = new RateLimit(10_000, 1, 10_000),
            Concurrency = 4,
            Retry = new RetrySettings(30, TimeSpan.FromMilliseconds(10), TimeSpan.FromMilliseconds(200)),
            Timeout = TimeSpan.FromSeconds(10),
            Settings = new Dictionary<string, string> { ["url"] = url.ToString(), ["object"] = "contacts" },
            Credentials = new Dictionary<string, string> { ["access_token"] = variable },
        };
    }

    private static OutgoingRecord Record(string segment, long profile, string? email)
        => new($"run-1/{segment}/crm/{profile}/entered", segment, profile, RecordOperation.Add,
            email is null ? [new ProfileIdentifier("customer_id", $"c{profile}")] : [new ProfileIdentifier("email", email)], new Dictionary<string, object?>());

    private static Dictionary<string, object?> Fields(string? firstName, string? tier, long? orders)
        => new() { ["firstname"] = firstName, ["loyalty_tier"] = tier, ["orders"] = orders };

    private static DestinationBatch Batch(RecordOperation operation, params OutgoingRecord[] records)
        => new("batch-1", "run-1", operation, [.. records.Select(r => r with { Operation = operation })]);

    private static async Task<(HttpStatusCode Status, JsonNode Body, Dictionary<string, string> Headers)> PostAsync(HttpClient http, string path, string body, string? token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        if (token is not null)
        {
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        }
        using var response = await http.SendAsync(request, Cancel);
        var text = await response.Content.ReadAsStringAsync(Cancel);
        return (response.StatusCode, JsonNode.Parse(text)!, response.Headers.ToDictionary(h => h.Key, h => string.Join(",", h.Value), StringComparer.OrdinalIgnoreCase));
    }
}
