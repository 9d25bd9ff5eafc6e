using System.Globalization;
using System.Text.Json.Nodes;
using Engine.Connectors.Destinations;
using Engine.Connectors.Destinations.Google;
using Engine.Connectors.Destinations.Meta;
using Engine.Connectors.Ledger;
using Engine.Connectors.Tests.ContractServers;
using Engine.Storage;
using Engine.TestKit;
using Engine.Workspaces;
using static Engine.Connectors.Tests.Destinations.AdDelivery;

namespace Engine.Connectors.Tests.Destinations;

/// <summary>The Google Ads Customer Match destination against a server that follows the OfflineUserDataJobService reference.</summary>
public sealed class GoogleCustomerMatchTests
{
    private const string Customer = "1234567890";
    private const string UserList = "5551234";
    private const string Token = "ya29.test-token";

    // printf '+14155550100' | sha256sum
    private const string PhoneHash = "40d3f4e02db27d66cf4cfdda506c2c945f115a7955cc8491dda98ce5beabcda0";

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    private static async Task<GoogleAdsServer> ServerAsync(FaultPlan? faults = null)
    {
        var server = new GoogleAdsServer(faults);
        server.AccessTokens[Token] = true;
        server.AddUserList(Customer, UserList);
        await server.StartAsync();
        return server;
    }

    private static DestinationDefinition Definition(GoogleAdsServer server, string token = Token, string userList = UserList,
        ConsentRule consent = ConsentRule.None, string? developerToken = null, string? loginCustomerId = null, int concurrency = 4)
    {
        var settings = new Dictionary<string, string> { ["customer_id"] = "123-456-7890", ["user_list_id"] = userList, ["url"] = server.ApiUrl };
        if (loginCustomerId is not null)
        {
            settings["login_customer_id"] = loginCustomerId;
        }
        var credentials = new Dictionary<string, string> { ["access_token"] = Variable(token) };
        if (developerToken is not null)
        {
            credentials["developer_token"] = Variable(developerToken);
        }
        return new DestinationDefinition
        {
            Name = "google",
            File = "destinations/google.yaml",
            Type = DestinationType.GoogleCustomerMatch,
            Segments = [Segment],
            Consent = consent,
            Channel = consent == ConsentRule.None ? null : "ads",
            IdentifyBy = ["email", "phone"],
            BatchSize = 40,
            RateLimit = new RateLimit(1_000, 1, 1_000),
            Concurrency = concurrency,
            Retry = new RetrySettings(12, TimeSpan.FromMilliseconds(2), TimeSpan.FromMilliseconds(40)),
            Timeout = TimeSpan.FromSeconds(10),
            Settings = settings,
            Credentials = credentials,
        };
    }

    private static string Email(long p) => EmailHash($"user{p}@example.com");

    private static string Phone(long p) => HashedIdentifiers.Sha256Hex(string.Create(CultureInfo.InvariantCulture, $"+1415555{p:0000}"));

    [Fact]
    public void Emails_and_phones_are_normalised_as_Google_documents_before_hashing()
    {
        // E.164 with its '+'.
        Assert.Equal("+14155550100", HashedIdentifiers.E164Phone("+1 (415) 555-0100"));
        Assert.Equal("+442071838750", HashedIdentifiers.E164Phone("0044 20 7183 8750"));
        Assert.Equal(PhoneHash, HashedIdentifiers.Sha256Hex(HashedIdentifiers.E164Phone("+14155550100")!));
        // Trimmed and lower-cased; Google does not require dropping the dots of gmail.com addresses, so they stay.
        Assert.Equal("john.doe@gmail.com", HashedIdentifiers.NormalizeEmail(" John.Doe@Gmail.com "));
    }

    [Fact]
    public async Task A_batch_goes_into_the_runs_job_which_runs_once_at_completion()
    {
        await using var server = await ServerAsync();
        server.Managers[Customer] = "9876543210";
        var definition = Definition(server, consent: ConsentRule.Required, developerToken: "dev-token-22-characters", loginCustomerId: "987-654-3210");
        await using var client = new GoogleCustomerMatchDestination(definition, Kinds, new MemoryState());
        var ann = Record("google", RecordOperation.Add, 1, ("email", "ann@example.com"), ("email", "ann.work@example.com"), ("phone", "+14155550100"));
        var bob = Record("google", RecordOperation.Add, 2, ("email", "Bob@Example.com "));

        var results = await client.SendAsync(Batch("google", RecordOperation.Add, [ann, bob]), Cancel);

        Assert.All(results, r => Assert.Equal(RecordStatus.Delivered, r.Status));
        var job = Assert.Single(server.Jobs.Values);
        Assert.Equal($"customers/{Customer}/userLists/{UserList}", job.UserList);
        Assert.Equal(("GRANTED", "GRANTED"), (job.AdUserData, job.AdPersonalization));
        Assert.Equal("dev-token-22-characters", server.LastDeveloperToken);
        // One operation per profile with all its identifiers: emails, then phones.
        Assert.Equal(2, job.Operations.Count);
        Assert.Equal([("hashedEmail", EmailHash("ann@example.com")), ("hashedEmail", EmailHash("ann.work@example.com")), ("hashedPhoneNumber", PhoneHash)],
            job.Operations[0].Identifiers);
        Assert.Equal([("hashedEmail", EmailHash("bob@example.com"))], job.Operations[1].Identifiers);
        Assert.Equal("PENDING", job.Status);
        Assert.Empty(server.Members(Customer, UserList, "hashedEmail"));

        await client.CompleteAsync(RunId, Cancel);
        await client.CompleteAsync(RunId, Cancel);

        Assert.Equal(("SUCCESS", 1), (job.Status, job.Runs));
        Assert.Equal(new HashSet<string> { EmailHash("ann@example.com"), EmailHash("ann.work@example.com"), EmailHash("bob@example.com") },
            server.Members(Customer, UserList, "hashedEmail"));
        Assert.Equal(new HashSet<string> { PhoneHash }, server.Members(Customer, UserList, "hashedPhoneNumber"));
    }

    [Fact]
    public async Task Without_a_consent_check_the_job_claims_no_consent_and_no_developer_token_is_sent()
    {
        await using var server = await ServerAsync();
        await using var client = new GoogleCustomerMatchDestination(Definition(server), Kinds, new MemoryState());

        await client.SendAsync(Batch("google", RecordOperation.Add, [Record("google", RecordOperation.Add, 1, ("email", "ann@example.com"))]), Cancel);

        var job = Assert.Single(server.Jobs.Values);
        Assert.Equal(((string?)null, (string?)null), (job.AdUserData, job.AdPersonalization));
        Assert.Null(server.LastDeveloperToken);
    }

    [Fact]
    public async Task Exits_and_entries_go_to_separate_jobs_and_the_removal_job_runs_too()
    {
        await using var server = await ServerAsync();
        server.Seed(Customer, UserList, "hashedEmail", [EmailHash("old@example.com")]);
        await using var client = new GoogleCustomerMatchDestination(Definition(server), Kinds, new MemoryState());

        await client.SendAsync(Batch("google", RecordOperation.Remove, [Record("google", RecordOperation.Remove, 1, ("email", "old@example.com"))]), Cancel);
        await client.SendAsync(Batch("google", RecordOperation.Add, [Record("google", RecordOperation.Add, 2, ("email", "new@example.com"))]), Cancel);
        await client.CompleteAsync(RunId, Cancel);

        Assert.Equal(2, server.Jobs.Count);
        Assert.Single(server.Jobs.Values, j => j.HasRemoves && !j.HasCreates);
        Assert.Single(server.Jobs.Values, j => j.HasCreates && !j.HasRemoves);
        Assert.All(server.Jobs.Values, j => Assert.Equal(1, j.Runs));
        Assert.Equal(new HashSet<string> { EmailHash("new@example.com") }, server.Members(Customer, UserList, "hashedEmail"));
    }

    [Fact]
    public async Task A_partial_failure_rejects_only_the_operation_it_names()
    {
        await using var server = await ServerAsync();
        server.RefusedValues[EmailHash("bob@example.com")] = true;
        await using var client = new GoogleCustomerMatchDestination(Definition(server), Kinds, new MemoryState());
        var records = new[] { 1, 2, 3 }.Select(p => Record("google", RecordOperation.Add, p, ("email", new[] { "", "ann@example.com", "bob@example.com", "cid@example.com" }[p]))).ToList();

        var results = await client.SendAsync(Batch("google", RecordOperation.Add, records), Cancel);
        await client.CompleteAsync(RunId, Cancel);

        Assert.Equal([RecordStatus.Delivered, RecordStatus.Rejected, RecordStatus.Delivered], results.Select(r => r.Status));
        Assert.StartsWith("offlineUserDataJobError.MISSING_USER_IDENTIFIER", results[1].Reason, StringComparison.Ordinal);
        Assert.Equal(new HashSet<string> { EmailHash("ann@example.com"), EmailHash("cid@example.com") }, server.Members(Customer, UserList, "hashedEmail"));
    }

    [Fact]
    public async Task A_batch_over_100000_identifiers_goes_out_in_requests_within_the_limit()
    {
        await using var server = await ServerAsync();
        await using var client = new GoogleCustomerMatchDestination(Definition(server), Kinds, new MemoryState());
        var records = Enumerable.Range(0, 50_001)
            .Select(p => Record("google", RecordOperation.Add, p, ("email", $"user{p}@example.com"), ("phone", string.Create(CultureInfo.InvariantCulture, $"+1{2000000000 + p}"))))
            .ToList();

        var results = await client.SendAsync(Batch("google", RecordOperation.Add, records), Cancel);

        Assert.All(results, r => Assert.Equal(RecordStatus.Delivered, r.Status));
        Assert.Equal([100_000, 2], server.RequestSizes);
        Assert.Equal(100_002, server.IdentifiersReceived);
        Assert.Single(server.Jobs);
    }

    [Fact]
    public async Task Refused_credentials_and_permissions_are_fatal_and_quota_exhaustion_is_transient_with_the_retry_delay()
    {
        await using var server = await ServerAsync();
        var batch = Batch("google", RecordOperation.Add, [Record("google", RecordOperation.Add, 1, ("email", "ann@example.com"))]);

        await using (var client = new GoogleCustomerMatchDestination(Definition(server, token: "ya29.revoked"), Kinds, new MemoryState()))
        {
            var failure = await Assert.ThrowsAsync<DestinationException>(() => client.SendAsync(batch, Cancel));
            Assert.Equal((FailureKind.Fatal, "unauthenticated"), (failure.Kind, failure.Reason));
            Assert.Contains("OAUTH_TOKEN_INVALID", failure.Detail, StringComparison.Ordinal);
        }
        server.Managers[Customer] = "9876543210";
        await using (var client = new GoogleCustomerMatchDestination(Definition(server), Kinds, new MemoryState()))
        {
            var failure = await Assert.ThrowsAsync<DestinationException>(() => client.SendAsync(batch, Cancel));
            Assert.Equal((FailureKind.Fatal, "permission_denied"), (failure.Kind, failure.Reason));
            Assert.Contains("USER_PERMISSION_DENIED", failure.Detail, StringComparison.Ordinal);
        }
        Assert.True(server.Managers.TryRemove(Customer, out _));
        await using (var client = new GoogleCustomerMatchDestination(Definition(server, userList: "404"), Kinds, new MemoryState()))
        {
            // Without a job nothing can be sent: a refused creation stops the destination.
            var failure = await Assert.ThrowsAsync<DestinationException>(() => client.SendAsync(batch, Cancel));
            Assert.Equal(FailureKind.Fatal, failure.Kind);
            Assert.Contains("INVALID_USER_LIST_ID", failure.Detail, StringComparison.Ordinal);
        }
        server.RequestsPerSecond = 1;
        server.RetryDelay = TimeSpan.FromMilliseconds(50);
        await Task.Delay(TimeSpan.FromSeconds(1.1), Cancel);
        await using (var client = new GoogleCustomerMatchDestination(Definition(server), Kinds, new MemoryState()))
        {
            // The job's creation takes the second's only request; its operations are refused for now.
            var failure = await Assert.ThrowsAsync<DestinationException>(() => client.SendAsync(batch, Cancel));
            Assert.Equal((FailureKind.Transient, "rate_limited"), (failure.Kind, failure.Reason));
            Assert.Equal(TimeSpan.FromMilliseconds(50), failure.RetryAfter);
            Assert.Contains("RESOURCE_TEMPORARILY_EXHAUSTED", failure.Detail, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_whole_request_refused_as_invalid_is_permanent_for_its_records()
    {
        await using var server = await ServerAsync();
        await using var client = new GoogleCustomerMatchDestination(Definition(server), Kinds, new MemoryState());
        server.NextAddErrors.Enqueue((400, GoogleAdsServer.ErrorBody(400, "INVALID_ARGUMENT", "Request contains an invalid argument.",
            [GoogleAdsServer.Error("requestError", "REQUIRED_FIELD_MISSING", "Required field is missing.", ("operations", null))])));
        var batch = Batch("google", RecordOperation.Add, [Record("google", RecordOperation.Add, 1, ("email", "ann@example.com"))]);

        var failure = await Assert.ThrowsAsync<DestinationException>(() => client.SendAsync(batch, Cancel));

        Assert.Equal((FailureKind.Permanent, "invalid_argument"), (failure.Kind, failure.Reason));
        Assert.Contains("requestError.REQUIRED_FIELD_MISSING", failure.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_job_started_by_a_run_whose_answer_was_lost_is_not_run_again_after_a_restart()
    {
        await using var server = await ServerAsync();
        var state = new MemoryState();
        var definition = Definition(server);
        await using (var first = new GoogleCustomerMatchDestination(definition, Kinds, state))
        {
            await first.SendAsync(Batch("google", RecordOperation.Add, [Record("google", RecordOperation.Add, 1, ("email", "ann@example.com"))]), Cancel);
        }
        // A restarted client (new instance, same ledger state) adds to the same job.
        await using (var second = new GoogleCustomerMatchDestination(definition, Kinds, state))
        {
            await second.SendAsync(Batch("google", RecordOperation.Add, [Record("google", RecordOperation.Add, 2, ("email", "bob@example.com"))]), Cancel);
            server.LoseRunAnswers = true;
            var failure = await Assert.ThrowsAsync<DestinationException>(() => second.CompleteAsync(RunId, Cancel));
            Assert.Equal(FailureKind.Transient, failure.Kind);
        }
        server.LoseRunAnswers = false;
        var job = Assert.Single(server.Jobs.Values);
        Assert.Equal((2, 1), (job.Operations.Count, job.Runs));

        await using (var third = new GoogleCustomerMatchDestination(definition, Kinds, state))
        {
            await third.CompleteAsync(RunId, Cancel);
        }
        Assert.Equal(1, job.Runs);
        Assert.Equal(job.Name, await state.GetAsync(RunId, "google.run.add", Cancel));
        Assert.Equal(2, server.Members(Customer, UserList, "hashedEmail").Count);
    }

    [Fact]
    public async Task A_worker_stopped_by_a_revoked_token_resumes_the_same_jobs_from_the_ledger_and_runs_each_once()
    {
        var faults = new FaultPlan(seed: 5)
        {
            RateLimited = 0.05, ServerErrors = 0.08, DropsBefore = 0.05, DropsAfter = 0.1, RetryAfter = TimeSpan.FromMilliseconds(5),
        };
        await using var server = await ServerAsync(faults);
        server.RequestsPerSecond = 80;
        server.RetryDelay = TimeSpan.FromMilliseconds(20);
        // Besides the plan's random drops, the answer to the second applied request is lost: one request at a time, the
        // first creates a job and the second adds a batch's operations to it, so those identifiers arrive twice.
        server.DropAnswersOf = new HashSet<int> { 2 };
        using var dir = new TempDirectory("google-worker");
        await using var ledger = new SqliteLedger(dir.Combine("ledger.db"));
        await ledger.InitializeAsync(Cancel);
        var profiles = new Dictionary<long, IReadOnlyList<ProfileIdentifier>>();
        for (long p = 1; p <= 340; p++)
        {
            profiles[p] = p % 4 == 0
                ? [new("email", $"user{p}@example.com"), new("phone", string.Create(CultureInfo.InvariantCulture, $"+1415555{p:0000}"))]
                : [new("email", $"user{p}@example.com")];
        }
        var entering = Enumerable.Range(1, 300).Select(i => (long)i).ToList();
        var leaving = Enumerable.Range(301, 40).Select(i => (long)i).ToList();
        server.Seed(Customer, UserList, "hashedEmail", leaving.Select(Email));
        server.Seed(Customer, UserList, "hashedPhoneNumber", leaving.Where(p => p % 4 == 0).Select(Phone));
        // One request at a time, so that every repeat the server sees is one the fault plan caused.
        var definition = Definition(server, concurrency: 1);
        await PlanAsync(ledger, "google", entering, leaving);

        // The grant is revoked after four requests of operations: the worker stops, its records stay open.
        server.RevokeTokensAfterAddRequests = 4;
        await using (var client = new GoogleCustomerMatchDestination(definition, Kinds, new LedgerDestinationState(ledger, "google")))
        {
            var stopped = await DeliverAsync(definition, client, ledger, profiles);
            Assert.Contains("unauthenticated", stopped.StoppedBy, StringComparison.Ordinal);
        }
        var open = (await ledger.RecordsAsync(RunId, Cancel)).Count(r => r.State != "final");
        Assert.InRange(open, 1, 339);
        Assert.DoesNotContain(server.Jobs.Values, j => j.Runs > 0);

        // A new grant, a restarted worker: it adds to the jobs the ledger names and runs them once.
        server.RevokeTokensAfterAddRequests = null;
        // A lost answer to a run stops a delivery at completion; the next delivery completes it without running twice.
        for (var delivery = 0; delivery < 4 && !await ledger.IsCompletedAsync(RunId, "google", Cancel); delivery++)
        {
            await using var client = new GoogleCustomerMatchDestination(definition, Kinds, new LedgerDestinationState(ledger, "google"));
            var finished = await DeliverAsync(definition, client, ledger, profiles);
            Assert.True(finished.StoppedBy is null || finished.StoppedBy.StartsWith("completing the run", StringComparison.Ordinal), finished.StoppedBy);
        }

        var records = await ledger.RecordsAsync(RunId, Cancel);
        Assert.Equal(340, records.Count);
        Assert.All(records, r => Assert.Equal("final", r.State));
        Assert.All(records, r => Assert.Equal(Outcomes.Delivered, r.Outcome));
        Assert.True(await ledger.IsCompletedAsync(RunId, "google", Cancel));
        // Jobs whose creation answer was lost were never used; of the others, one per operation, each run once.
        var used = server.Jobs.Values.Where(j => j.Operations.Count > 0).ToList();
        Assert.Equal(2, used.Count);
        var adds = Assert.Single(used, j => j.HasCreates);
        var removes = Assert.Single(used, j => j.HasRemoves);
        Assert.Equal((1, 1), (adds.Runs, removes.Runs));
        Assert.All(server.Jobs.Values.Except(used), j => Assert.Equal(0, j.Runs));
        Assert.Equal(adds.Name, await ledger.GetStateAsync(RunId, "google", "google.job.add", Cancel));
        Assert.Equal(removes.Name, await ledger.GetStateAsync(RunId, "google", "google.job.remove", Cancel));

        Assert.Equal(entering.Select(Email).ToHashSet(), server.Members(Customer, UserList, "hashedEmail"));
        Assert.Equal(entering.Where(p => p % 4 == 0).Select(Phone).ToHashSet(), server.Members(Customer, UserList, "hashedPhoneNumber"));
        // Each identifier arrived once, and again only when the answer to the request that applied it was lost.
        Assert.True(server.IdentifiersInLostAnswers > 0 && faults.Injected429 + faults.Injected5xx > 0, "answers were lost and requests refused");
        Assert.Equal(340 + 85, server.IdentifierCounts.Count);
        Assert.Equal(server.IdentifiersReceived, server.IdentifierCounts.Values.Sum());
        Assert.Equal(server.IdentifierCounts.Count + server.IdentifiersInLostAnswers, server.IdentifiersReceived);
    }

    [Fact]
    public async Task The_factory_builds_both_ad_destinations_and_Google_needs_the_ledger_for_its_jobs()
    {
        using var dir = new TempDirectory("ad-factory");
        using var storage = new StorageResolver();
        var workspace = new Workspace(dir.Path, "ws", "output", [], []);
        await using var server = await ServerAsync();
        var google = Definition(server);
        var meta = new DestinationDefinition
        {
            Name = "meta", File = "destinations/meta.yaml", Type = DestinationType.MetaCustomAudiences, Segments = [Segment], IdentifyBy = ["email"],
            BatchSize = 100, RateLimit = new RateLimit(5, 1, 5),
            Settings = new Dictionary<string, string> { ["audience_id"] = "123" },
            Credentials = new Dictionary<string, string> { ["access_token"] = Variable("t") },
        };
        await using var ledger = new SqliteLedger(dir.Combine("ledger.db"));
        await ledger.InitializeAsync(Cancel);
        var context = new DestinationContext(workspace, storage, storage.Resolve(dir.Path)) { Ledger = ledger };

        await using (var client = DestinationFactory.Create(meta, context))
        {
            Assert.IsType<MetaCustomAudiencesDestination>(client);
        }
        await using (var client = DestinationFactory.Create(google, context))
        {
            Assert.IsType<GoogleCustomerMatchDestination>(client);
            await client.SendAsync(Batch("google", RecordOperation.Add, [Record("google", RecordOperation.Add, 1, ("email", "ann@example.com"))]), Cancel);
        }
        Assert.Equal(Assert.Single(server.Jobs.Keys), await ledger.GetStateAsync(RunId, "google", "google.job.add", Cancel));
        var failure = Assert.Throws<DestinationException>(() => DestinationFactory.Create(google, context with { Ledger = null }));
        Assert.Equal((FailureKind.Fatal, "no_state"), (failure.Kind, failure.Reason));
    }
}
