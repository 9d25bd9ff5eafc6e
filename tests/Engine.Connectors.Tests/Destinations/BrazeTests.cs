using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Engine.Connectors.Delivery;
using Engine.Connectors.Destinations;
using Engine.Connectors.Destinations.Braze;
using Engine.Connectors.Ledger;
using Engine.Connectors.Matching;
using Engine.Connectors.Tests.ContractServers;
using Engine.TestKit;

namespace Engine.Connectors.Tests.Destinations;

public sealed class BrazeTests
{
    private const string Key = "braze-rest-key";
    private const string Segments = BrazeDestination.SegmentsAttribute;

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Entries_add_segments_with_one_object_per_user_and_the_mapped_fields()
    {
        await using var server = new BrazeServer(Key);
        await server.StartAsync();
        await using var braze = new BrazeDestination(Definition(server.BaseUrl));

        var results = await braze.SendAsync(Batch(RecordOperation.Add,
            Record("vip", 1, ("customer_id", "c1"), ("email", "ann@example.com")) with { Fields = Fields("Ann", "gold") },
            Record("churn", 1, ("customer_id", "c1"), ("email", "ann@example.com")) with { Fields = Fields("Ann", "gold") },
            Record("vip", 2, ("customer_id", "c2")) with { Fields = Fields(null, "silver") },
            Record("vip", 3, ("email", "eve@example.com"))), Cancel);

        Assert.All(results, r => Assert.Equal(RecordStatus.Delivered, r.Status));
        var request = Assert.Single(server.Received);
        Assert.Equal($"Bearer {Key}", request.Authorization);
        var objects = request.Body["attributes"]!.AsArray();
        Assert.Equal(3, objects.Count);
        Assert.Equal("c1", (string?)objects[0]!["external_id"]);
        Assert.Equal(["vip", "churn"], objects[0]![Segments]!["add"]!.AsArray().Select(v => (string?)v));
        Assert.Equal("Ann", (string?)objects[0]!["first_name"]);
        Assert.Null(objects[0]!["_update_existing_only"]);
        Assert.True(objects[1]!.AsObject().ContainsKey("first_name"));
        Assert.Null(objects[1]!["first_name"]);
        // A profile without the external id's type is keyed by its email, never by an email as external_id.
        Assert.Equal("eve@example.com", (string?)objects[2]!["email"]);
        Assert.False(objects[2]!.AsObject().ContainsKey("external_id"));

        Assert.Equal(["vip", "churn"], server.ArrayValues("external_id:c1", Segments));
        Assert.Equal("gold", (string?)server.User("external_id:c1")!["tier"]);
        Assert.False(server.User("external_id:c2")!.ContainsKey("first_name"));
        Assert.Equal(["vip"], server.ArrayValues("email:eve@example.com", Segments));
    }

    [Fact]
    public async Task Exits_remove_the_segment_never_create_a_user_and_can_be_repeated()
    {
        await using var server = new BrazeServer(Key);
        await server.StartAsync();
        server.Seed("external_id:c1", Segments, "vip", "churn");
        await using var braze = new BrazeDestination(Definition(server.BaseUrl));
        var batch = Batch(RecordOperation.Remove, Record("vip", 1, ("customer_id", "c1")), Record("vip", 9, ("customer_id", "c9")));

        var first = await braze.SendAsync(batch, Cancel);
        var again = await braze.SendAsync(batch, Cancel);

        Assert.All(first.Concat(again), r => Assert.Equal(RecordStatus.Delivered, r.Status));
        Assert.Equal(["churn"], server.ArrayValues("external_id:c1", Segments));
        Assert.DoesNotContain("external_id:c9", server.Users);
        Assert.All(server.Received.SelectMany(r => r.Body["attributes"]!.AsArray()), o =>
        {
            Assert.True((bool)o!["_update_existing_only"]!);
            Assert.Equal(["vip"], o[Segments]!["remove"]!.AsArray().Select(v => (string?)v));
        });
    }

    [Fact]
    public async Task Per_object_errors_reject_only_the_records_of_the_objects_they_name()
    {
        await using var server = new BrazeServer(Key);
        server.BlockedExternalIds.Add("c2");
        await server.StartAsync();
        await using var braze = new BrazeDestination(Definition(server.BaseUrl));

        var mixed = await braze.SendAsync(Batch(RecordOperation.Add,
            Record("vip", 1, ("customer_id", "c1")), Record("vip", 2, ("customer_id", "c2")), Record("churn", 2, ("customer_id", "c2")),
            Record("vip", 3, ("customer_id", "c3"))), Cancel);
        // Every object refused: Braze answers 400 with the errors by index, and nothing else is left to retry.
        var refused = await braze.SendAsync(Batch(RecordOperation.Add, Record("vip", 2, ("customer_id", "c2"))), Cancel);

        Assert.Equal([RecordStatus.Delivered, RecordStatus.Rejected, RecordStatus.Rejected, RecordStatus.Delivered], mixed.Select(r => r.Status));
        Assert.Equal("provided external_id is blacklisted and disallowed", mixed[1].Reason);
        Assert.Equal(RecordStatus.Rejected, Assert.Single(refused).Status);
        Assert.Equal(["external_id:c1", "external_id:c3"], server.Users);
    }

    [Fact]
    public async Task A_refused_key_is_fatal()
    {
        await using var server = new BrazeServer(Key);
        await server.StartAsync();
        await using var braze = new BrazeDestination(Definition(server.BaseUrl, key: "not-the-key"));

        var e = await Assert.ThrowsAsync<DestinationException>(() => braze.SendAsync(Batch(RecordOperation.Add, Record("vip", 1, ("customer_id", "c1"))), Cancel));

        Assert.Equal(FailureKind.Fatal, e.Kind);
        Assert.Equal("http_401", e.Reason);
        Assert.Empty(server.Users);
    }

    [Fact]
    public async Task A_url_that_is_not_the_REST_endpoint_is_fatal()
    {
        await using var server = new BrazeServer(Key);
        await server.StartAsync();
        await using var braze = new BrazeDestination(Definition(new Uri(server.BaseUrl, "dashboard/")));

        var e = await Assert.ThrowsAsync<DestinationException>(() => braze.SendAsync(Batch(RecordOperation.Add, Record("vip", 1, ("customer_id", "c1"))), Cancel));

        Assert.Equal(FailureKind.Fatal, e.Kind);
        Assert.Equal("http_404", e.Reason);
    }

    [Fact]
    public async Task Over_the_rate_limit_is_transient_and_waits_for_the_window_to_reset()
    {
        await using var server = new BrazeServer(Key, requestsPerWindow: 1, window: TimeSpan.FromSeconds(1));
        await server.StartAsync();
        await using var braze = new BrazeDestination(Definition(server.BaseUrl));
        var batch = Batch(RecordOperation.Add, Record("vip", 1, ("customer_id", "c1")));

        // One request per window: of several in a row, some fall in the same window.
        DestinationException? limited = null;
        for (var i = 0; i < 5 && limited is null; i++)
        {
            try
            {
                await braze.SendAsync(batch, Cancel);
            }
            catch (DestinationException e)
            {
                limited = e;
            }
        }

        Assert.NotNull(limited);
        Assert.Equal(FailureKind.Transient, limited.Kind);
        Assert.Equal("http_429", limited.Reason);
        // No Retry-After from Braze: the delay is what is left of the window (X-RateLimit-Reset).
        Assert.InRange(limited.RetryAfter!.Value, TimeSpan.Zero, TimeSpan.FromSeconds(1));
        await Task.Delay(limited.RetryAfter.Value + TimeSpan.FromMilliseconds(20), Cancel);
        Assert.Equal(RecordStatus.Delivered, Assert.Single(await braze.SendAsync(batch, Cancel)).Status);
    }

    [Fact]
    public async Task Retry_After_when_given_wins_over_the_reset_header()
    {
        var faults = new FaultPlan(3) { RateLimited = 1.0, RetryAfter = TimeSpan.FromMilliseconds(250) };
        await using var server = new BrazeServer(Key, faults);
        await server.StartAsync();
        await using var braze = new BrazeDestination(Definition(server.BaseUrl));

        var e = await Assert.ThrowsAsync<DestinationException>(() => braze.SendAsync(Batch(RecordOperation.Add, Record("vip", 1, ("customer_id", "c1"))), Cancel));

        Assert.Equal(FailureKind.Transient, e.Kind);
        Assert.Equal(TimeSpan.FromMilliseconds(250), e.RetryAfter);
    }

    [Fact]
    public async Task More_objects_than_Braze_takes_is_a_permanent_failure()
    {
        await using var server = new BrazeServer(Key);
        await server.StartAsync();
        await using var braze = new BrazeDestination(Definition(server.BaseUrl));
        var records = Enumerable.Range(1, BrazeServer.MaxObjects + 1).Select(p => Record("vip", p, ("customer_id", $"c{p}"))).ToArray();

        var e = await Assert.ThrowsAsync<DestinationException>(() => braze.SendAsync(Batch(RecordOperation.Add, records), Cancel));
        var atLimit = await braze.SendAsync(Batch(RecordOperation.Add, records[..BrazeServer.MaxObjects]), Cancel);

        Assert.Equal(FailureKind.Permanent, e.Kind);
        Assert.Equal("Max Input Length Exceeded", e.Detail);
        Assert.All(atLimit, r => Assert.Equal(RecordStatus.Delivered, r.Status));
        Assert.Equal(75, DestinationTypeInfo.Of(DestinationType.Braze).MaxBatchSize);
    }

    [Fact]
    public async Task The_server_answers_as_Braze_documents()
    {
        await using var server = new BrazeServer(Key, requestsPerWindow: 100, window: TimeSpan.FromSeconds(3));
        await server.StartAsync();
        using var http = new HttpClient { BaseAddress = server.BaseUrl };

        var noKey = await PostAsync(http, """{"attributes": [{"external_id": "c1"}]}""", key: null);
        var notJson = await PostAsync(http, "{attributes", Key);
        var nothing = await PostAsync(http, """{"attributes": []}""", Key);
        var tooMany = await PostAsync(http, $$"""{"attributes": [{{string.Join(",", Enumerable.Range(0, 76).Select(i => $$"""{"external_id": "c{{i}}"}"""))}}]}""", Key);
        var noIdentifier = await PostAsync(http, """{"attributes": [{"first_name": "Ann"}]}""", Key);
        var mixed = await PostAsync(http, """{"attributes": [{"external_id": "c1", "tier": "gold"}, {"tier": "gold"}, {"external_id": "c2", "s": {"add": ["a"], "pop": 1}}]}""", Key);

        Assert.Equal(HttpStatusCode.Unauthorized, noKey.Status);
        Assert.Equal("Unknown or missing REST API Key", (string?)noKey.Body["message"]);
        Assert.Equal(HttpStatusCode.BadRequest, notJson.Status);
        Assert.Equal(HttpStatusCode.BadRequest, nothing.Status);
        Assert.Equal("Max Input Length Exceeded", (string?)tooMany.Body["message"]);
        Assert.Equal(HttpStatusCode.BadRequest, noIdentifier.Status);
        Assert.Equal(0, (int)noIdentifier.Body["errors"]![0]!["index"]!);
        Assert.Equal(HttpStatusCode.Created, mixed.Status);
        Assert.Equal("success", (string?)mixed.Body["message"]);
        Assert.Equal(1, (int)mixed.Body["attributes_processed"]!);
        Assert.Equal([1, 2], mixed.Body["errors"]!.AsArray().Select(e => (int)e!["index"]!));
        Assert.All(mixed.Body["errors"]!.AsArray(), e => Assert.Equal("attributes", (string?)e!["input_array"]));
        Assert.Equal("100", mixed.Headers["X-RateLimit-Limit"]);
        Assert.InRange(int.Parse(mixed.Headers["X-RateLimit-Remaining"], System.Globalization.CultureInfo.InvariantCulture), 0, 99);
        Assert.True(long.Parse(mixed.Headers["X-RateLimit-Reset"], System.Globalization.CultureInfo.InvariantCulture) > DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 1);
        Assert.Equal(["external_id:c1"], server.Users);
    }

    [Fact]
    public async Task A_delivery_under_rate_limits_and_faults_accounts_for_every_record_once()
    {
        const int People = 400;
        // Every 40th profile has no customer id and is keyed by its email.
        static string User(long p) => p % 40 == 0 ? $"email:p{p}@example.com" : $"external_id:c{p}";
        var faults = new FaultPlan(11) { RateLimited = 0.05, ServerErrors = 0.05, DropsBefore = 0.05, DropsAfter = 0.08, RetryAfter = TimeSpan.FromMilliseconds(50) };
        // Three requests per second against four in flight: the limit is hit however fast the machine is.
        await using var server = new BrazeServer(Key, faults, requestsPerWindow: 3, window: TimeSpan.FromSeconds(1)) { DropAnswersOf = new HashSet<int> { 2, 5 } };
        server.BlockedExternalIds.UnionWith(["c7", "c77"]);
        await server.StartAsync();
        // Leavers were synced before: Braze holds them in both segments.
        for (var p = 351; p <= People; p++)
        {
            server.Seed(User(p), Segments, "vip", "churn");
        }
        var identifiers = new Dictionary<long, IReadOnlyList<ProfileIdentifier>>();
        var fields = new Dictionary<long, IReadOnlyDictionary<string, object?>>();
        for (var p = 1; p <= People; p++)
        {
            identifiers[p] = p % 40 == 0 ? [new("email", $"p{p}@example.com")] : [new("customer_id", $"c{p}"), new("email", $"p{p}@example.com")];
            fields[p] = new Dictionary<string, object?> { ["first_name"] = $"name{p}", ["loyalty_tier"] = p % 3 == 0 ? null : "gold" };
        }
        var deltas = new List<Delta>();
        deltas.AddRange(Enumerable.Range(1, 300).Select(p => new Delta("vip", p, DeliveryKeys.Entered)));
        deltas.AddRange(Enumerable.Range(200, 150).Select(p => new Delta("churn", p, DeliveryKeys.Entered)));
        deltas.AddRange(Enumerable.Range(351, 50).Select(p => new Delta("vip", p, DeliveryKeys.Exited)));
        var definition = Definition(server.BaseUrl);
        await using var braze = new BrazeDestination(definition);
        using var folder = new TempDirectory("braze");

        var result = await LedgerDelivery.RunAsync(definition, braze, ProfileDirectory.FromMemory(identifiers, fields), deltas, folder.Combine("ledger.db"), Cancel);

        Assert.Null(result.Worker.StoppedBy);
        Assert.Equal(deltas.Count, result.Records.Count);
        Assert.All(result.Records, r => Assert.Equal("final", r.State));
        var rejected = result.Records.Where(r => r.Outcome == Outcomes.Failed).ToList();
        Assert.Equal([7, 77], rejected.Select(r => r.ProfileId).Distinct().Order());
        Assert.All(rejected, r => Assert.Equal("rejected", r.Reason));
        var delivered = result.Records.Where(r => r.Outcome == Outcomes.Delivered).ToList();
        Assert.Equal(deltas.Count - rejected.Count, delivered.Count);

        // The server saw each delivered change acknowledged exactly once; a repeat only ever followed a lost answer.
        string Item(LedgerRecord r) => $"{User(r.ProfileId)}|{Segments}|{(r.Change == DeliveryKeys.Entered ? "add" : "remove")}|{r.Segment}";
        Assert.All(delivered, r => Assert.Equal(1, server.Receipts.Acknowledged(Item(r))));
        Assert.Equal(delivered.Select(Item).Order(StringComparer.Ordinal), server.Receipts.Items);
        Assert.Equal(rejected.Select(Item).Order(StringComparer.Ordinal), server.Refusals.Items);
        Assert.Equal(delivered.Count(r => r.Change == DeliveryKeys.Entered), result.Report.Added);
        Assert.Equal(delivered.Count(r => r.Change == DeliveryKeys.Exited), result.Report.Removed);
        Assert.Equal(rejected.Count, result.Report.Failed["rejected"]);
        Assert.True(result.Report.Completed);
        // The limits and faults did happen.
        Assert.True(server.RateLimited > 0, "the rate limiter never answered 429");
        Assert.True(server.Receipts.Total > server.Receipts.Items.Count, "no answer was lost after applying");

        for (var p = 1; p <= People; p++)
        {
            var expected = new List<string>();
            if (p is 7 or 77)
            {
                Assert.Null(server.User(User(p)));
                continue;
            }
            if (p <= 300 || p > 350)
            {
                expected.Add(p <= 300 ? "vip" : "churn");
            }
            if (p is >= 200 and <= 349)
            {
                expected.Add("churn");
            }
            Assert.Equal(expected.Order(StringComparer.Ordinal), server.ArrayValues(User(p), Segments).Order(StringComparer.Ordinal));
        }
    }

    private static DestinationDefinition Definition(Uri url, string key = Key)
    {
        var variable = $"BRAZE_TEST_KEY_{Guid.NewGuid():N}".ToUpperInvariant();
        Environment.SetEnvironmentVariable(variable, key);
        return new DestinationDefinition
        {
            Name = "braze",
            File = "destinations/braze.yaml",
            Type = DestinationType.Braze,
            Segments = ["vip", "churn"],
            Consent = ConsentRule.None,
            IdentifyBy = ["customer_id", "email"],
            Fields = [("first_name", "first_name"), ("tier", "loyalty_tier")],
            BatchSize = DestinationTypeInfo.Of(DestinationType.Braze).MaxBatchSize,
            // The server's limit is the one under test: the client's own bucket stays out of the way.
            RateLimit = new RateLimit(10_000, 1, 10_000),
            Concurrency = 4,
            Retry = new RetrySettings(30, TimeSpan.FromMilliseconds(10), TimeSpan.FromMilliseconds(200)),
            Timeout = TimeSpan.FromSeconds(10),
            Settings = new Dictionary<string, string> { ["url"] = url.ToString() },
            Credentials = new Dictionary<string, string> { ["api_key"] = variable },
        };
    }

    private static OutgoingRecord Record(string segment, long profile, params (string Type, string Value)[] identifiers)
        => new($"run-1/{segment}/braze/{profile}/entered", segment, profile, RecordOperation.Add,
            [.. identifiers.Select(i => new ProfileIdentifier(i.Type, i.Value))], new Dictionary<string, object?>());

    private static Dictionary<string, object?> Fields(string? firstName, string? tier) => new() { ["first_name"] = firstName, ["tier"] = tier };

    private static DestinationBatch Batch(RecordOperation operation, params OutgoingRecord[] records)
        => new("batch-1", "run-1", operation, [.. records.Select(r => r with { Operation = operation })]);

    private static async Task<(HttpStatusCode Status, JsonNode Body, Dictionary<string, string> Headers)> PostAsync(HttpClient http, string body, string? key)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "users/track") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        if (key is not null)
        {
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", key);
        }
        using var response = await http.SendAsync(request, Cancel);
        var text = await response.Content.ReadAsStringAsync(Cancel);
        return (response.StatusCode, JsonNode.Parse(text)!, response.Headers.ToDictionary(h => h.Key, h => string.Join(",", h.Value), StringComparer.OrdinalIgnoreCase));
    }
}
