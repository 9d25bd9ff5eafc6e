using System.Globalization;
using Engine.Connectors.Destinations;
using Engine.Connectors.Destinations.Meta;
using Engine.Connectors.Ledger;
using Engine.Connectors.Tests.ContractServers;
using Engine.TestKit;
using static Engine.Connectors.Tests.Destinations.AdDelivery;

namespace Engine.Connectors.Tests.Destinations;

/// <summary>The Meta Custom Audiences destination against a server that follows the Custom Audience Users reference.</summary>
public sealed class MetaCustomAudiencesTests
{
    private const string Audience = "23851234567890123";
    private const string Token = "EAAB-test-token";

    // printf 'ann@example.com' | sha256sum ; printf '14155550100' | sha256sum
    private const string AnnEmailHash = "71d4f55f72fa128dfb468a1a3901507c804b74316488744d769d7f4b16696476";
    private const string PhoneHash = "5e7ec4c79ccac6e420876e65ad0e6b4b2ccf73ec3dccb50297bf2890a1ec73b9";

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    private static async Task<MetaServer> ServerAsync(FaultPlan? faults = null)
    {
        var server = new MetaServer(faults);
        server.AccessTokens[Token] = true;
        server.AddAudience(Audience);
        await server.StartAsync();
        return server;
    }

    private static DestinationDefinition Definition(MetaServer server, string token = Token, string audience = Audience, int batchSize = 100,
        IReadOnlyList<string>? identifyBy = null) => new()
        {
            Name = "meta",
            File = "destinations/meta.yaml",
            Type = DestinationType.MetaCustomAudiences,
            Segments = [Segment],
            Consent = ConsentRule.None,
            IdentifyBy = identifyBy ?? ["email", "phone"],
            BatchSize = batchSize,
            RateLimit = new RateLimit(1_000, 1, 1_000),
            Concurrency = 4,
            Retry = new RetrySettings(12, TimeSpan.FromMilliseconds(2), TimeSpan.FromMilliseconds(40)),
            Timeout = TimeSpan.FromSeconds(10),
            Settings = new Dictionary<string, string> { ["audience_id"] = audience, ["url"] = server.ApiUrl },
            Credentials = new Dictionary<string, string> { ["access_token"] = Variable(token) },
        };

    [Fact]
    public void Emails_and_phones_are_normalised_as_Meta_documents_before_hashing()
    {
        Assert.Equal("ann@example.com", HashedIdentifiers.NormalizeEmail("  Ann@Example.COM "));
        Assert.Equal(AnnEmailHash, EmailHash("  Ann@Example.COM "));
        // Digits only, country code kept, no '+', no leading zeros.
        Assert.Equal("14155550100", HashedIdentifiers.MetaPhone("+1 (415) 555-0100"));
        Assert.Equal("14155550100", HashedIdentifiers.MetaPhone("0014155550100"));
        Assert.Null(HashedIdentifiers.MetaPhone("+"));
        Assert.Equal(PhoneHash, HashedIdentifiers.Sha256Hex(HashedIdentifiers.MetaPhone("+14155550100")!));
        Assert.Matches("^[0-9a-f]{64}$", HashedIdentifiers.Sha256Hex("x"));
    }

    [Fact]
    public async Task Entries_add_one_multi_key_row_per_profile_and_exits_remove_it()
    {
        await using var server = await ServerAsync();
        await using var client = new MetaCustomAudiencesDestination(Definition(server), Kinds);
        Assert.Equal(["EMAIL", "PHONE"], client.Schema);
        // Ann has two emails: the first in order goes out with her phone, as one row.
        var ann = Record("meta", RecordOperation.Add, 1, ("email", "ann@example.com"), ("email", "zed@example.com"), ("phone", "+14155550100"));
        var bob = Record("meta", RecordOperation.Add, 2, ("email", "bob@example.com"));
        var cid = Record("meta", RecordOperation.Add, 3, ("phone", "+442071838750"));

        var results = await client.SendAsync(Batch("meta", RecordOperation.Add, [ann, bob, cid]), Cancel);

        Assert.All(results, r => Assert.Equal(RecordStatus.Delivered, r.Status));
        Assert.Equal([ann.Key, bob.Key, cid.Key], results.Select(r => r.Key));
        Assert.Equal(["EMAIL,PHONE"], server.Schemas);
        var cidPhone = HashedIdentifiers.Sha256Hex("442071838750");
        Assert.Equal(new HashSet<string> { AnnEmailHash, EmailHash("bob@example.com") }, server.Members(Audience, "EMAIL"));
        Assert.Equal(new HashSet<string> { PhoneHash, cidPhone }, server.Members(Audience, "PHONE"));
        Assert.Equal(1, server.RowCounts[$"{AnnEmailHash}|{PhoneHash}"]);
        Assert.Equal(1, server.RowCounts[$"{EmailHash("bob@example.com")}|"]);
        Assert.Equal(1, server.RowCounts[$"|{cidPhone}"]);

        var leaving = new[] { ann with { Operation = RecordOperation.Remove, Key = ann.Key + "-x" }, cid with { Operation = RecordOperation.Remove, Key = cid.Key + "-x" } };
        results = await client.SendAsync(Batch("meta", RecordOperation.Remove, leaving), Cancel);

        Assert.All(results, r => Assert.Equal(RecordStatus.Delivered, r.Status));
        Assert.Equal(new HashSet<string> { EmailHash("bob@example.com") }, server.Members(Audience, "EMAIL"));
        Assert.Empty(server.Members(Audience, "PHONE"));
        Assert.Equal(2, server.RowCounts[$"{AnnEmailHash}|{PhoneHash}"]);
    }

    [Fact]
    public async Task An_email_only_destination_sends_an_email_schema_and_rejects_profiles_without_one_unsent()
    {
        await using var server = await ServerAsync();
        await using var client = new MetaCustomAudiencesDestination(Definition(server, identifyBy: ["email"]), Kinds);
        var phoneOnly = Record("meta", RecordOperation.Add, 1, ("phone", "+14155550100"));

        var results = await client.SendAsync(Batch("meta", RecordOperation.Add, [phoneOnly]), Cancel);

        Assert.Equal(RecordStatus.Rejected, Assert.Single(results).Status);
        Assert.Equal(0, server.RequestsApplied);
        results = await client.SendAsync(Batch("meta", RecordOperation.Add, [Record("meta", RecordOperation.Add, 2, ("email", "ann@example.com"))]), Cancel);
        Assert.Equal(RecordStatus.Delivered, Assert.Single(results).Status);
        Assert.Equal(["EMAIL"], server.Schemas);
        Assert.Equal(new HashSet<string> { AnnEmailHash }, server.Members(Audience, "EMAIL"));
    }

    [Fact]
    public async Task Invalid_entries_named_in_the_samples_are_rejected_and_the_rest_delivered()
    {
        await using var server = await ServerAsync();
        server.InvalidValues[EmailHash("bounce@example.com")] = "invalid email address";
        server.InvalidValues[EmailHash("spam@example.com")] = "invalid email address";
        server.MaxInvalidSamples = 1;
        await using var client = new MetaCustomAudiencesDestination(Definition(server), Kinds);
        var records = new[]
        {
            Record("meta", RecordOperation.Add, 1, ("email", "ann@example.com")),
            Record("meta", RecordOperation.Add, 2, ("email", "bounce@example.com")),
            Record("meta", RecordOperation.Add, 3, ("email", "spam@example.com")),
        };

        var results = await client.SendAsync(Batch("meta", RecordOperation.Add, records), Cancel);

        // Meta named one of the two invalid rows: that one is rejected with its reason; the other cannot be told
        // from the valid rows, so it counts as delivered and is reported as unattributed.
        Assert.Equal(RecordStatus.Delivered, results[0].Status);
        var rejected = Assert.Single(results, r => r.Status == RecordStatus.Rejected);
        Assert.Equal(records[1].Key, rejected.Key);
        Assert.Equal("invalid entry: invalid email address", rejected.Reason);
        Assert.Equal(RecordStatus.Delivered, results[2].Status);
        Assert.Equal(1, client.UnattributedInvalidEntries);
        Assert.Equal(new HashSet<string> { AnnEmailHash }, server.Members(Audience, "EMAIL"));
    }

    [Fact]
    public async Task More_than_10000_users_in_a_request_is_refused_whole_as_Meta_documents()
    {
        await using var server = await ServerAsync();
        await using var client = new MetaCustomAudiencesDestination(Definition(server, batchSize: 10_001), Kinds);
        var records = Enumerable.Range(0, MetaCustomAudiencesDestination.MaxUsersPerRequest + 1)
            .Select(i => Record("meta", RecordOperation.Add, i, ("email", $"user{i}@example.com")))
            .ToList();

        var failure = await Assert.ThrowsAsync<DestinationException>(() => client.SendAsync(Batch("meta", RecordOperation.Add, records), Cancel));

        Assert.Equal(FailureKind.Permanent, failure.Kind);
        Assert.Equal("meta_error_105", failure.Reason);
        Assert.Empty(server.Members(Audience, "EMAIL"));

        // The documented maximum itself goes through.
        var results = await client.SendAsync(Batch("meta", RecordOperation.Add, records[..^1]), Cancel);
        Assert.All(results, r => Assert.Equal(RecordStatus.Delivered, r.Status));
        Assert.Equal(MetaCustomAudiencesDestination.MaxUsersPerRequest, server.Members(Audience, "EMAIL").Count);
    }

    [Fact]
    public async Task A_refused_or_expired_token_and_an_unknown_audience_are_fatal()
    {
        await using var server = await ServerAsync();
        server.ExpiredTokens["EAAB-expired"] = true;
        var batch = Batch("meta", RecordOperation.Add, [Record("meta", RecordOperation.Add, 1, ("email", "ann@example.com"))]);

        await using (var client = new MetaCustomAudiencesDestination(Definition(server, token: "EAAB-wrong"), Kinds))
        {
            var failure = await Assert.ThrowsAsync<DestinationException>(() => client.SendAsync(batch, Cancel));
            Assert.Equal((FailureKind.Fatal, "invalid_token"), (failure.Kind, failure.Reason));
        }
        await using (var client = new MetaCustomAudiencesDestination(Definition(server, token: "EAAB-expired"), Kinds))
        {
            var failure = await Assert.ThrowsAsync<DestinationException>(() => client.SendAsync(batch, Cancel));
            Assert.Equal((FailureKind.Fatal, "invalid_token"), (failure.Kind, failure.Reason));
            Assert.Contains("190/463", failure.Detail, StringComparison.Ordinal);
        }
        await using (var client = new MetaCustomAudiencesDestination(Definition(server, audience: "999"), Kinds))
        {
            var failure = await Assert.ThrowsAsync<DestinationException>(() => client.SendAsync(batch, Cancel));
            Assert.Equal((FailureKind.Fatal, "audience_not_found"), (failure.Kind, failure.Reason));
        }
        Assert.Equal(0, server.RequestsApplied);
    }

    [Fact]
    public void A_missing_token_or_a_malformed_audience_id_stops_the_destination_before_any_request()
    {
        var definition = Definition(new MetaServer());
        var noToken = new DestinationDefinition
        {
            Name = definition.Name, File = definition.File, Type = definition.Type, Segments = definition.Segments, IdentifyBy = definition.IdentifyBy,
            BatchSize = 10, RateLimit = definition.RateLimit, Settings = definition.Settings,
            Credentials = new Dictionary<string, string> { ["access_token"] = "ENGINE_TEST_UNSET_" + Guid.NewGuid().ToString("N").ToUpperInvariant() },
        };
        Assert.Equal("missing_credential", Assert.Throws<DestinationException>(() => new MetaCustomAudiencesDestination(noToken, Kinds)).Reason);
        var badAudience = Definition(new MetaServer(), audience: "act_123");
        Assert.Equal(FailureKind.Fatal, Assert.Throws<DestinationException>(() => new MetaCustomAudiencesDestination(badAudience, Kinds)).Kind);
    }

    [Fact]
    public async Task Throttling_is_transient_and_waits_as_long_as_the_usage_header_says()
    {
        await using var server = await ServerAsync();
        server.RequestsPerSecond = 1;
        server.RegainAccessMinutes = 2;
        await using var client = new MetaCustomAudiencesDestination(Definition(server), Kinds);
        var batch = Batch("meta", RecordOperation.Add, [Record("meta", RecordOperation.Add, 1, ("email", "ann@example.com"))]);
        await client.SendAsync(batch, Cancel);

        var failure = await Assert.ThrowsAsync<DestinationException>(() => client.SendAsync(batch, Cancel));

        Assert.Equal((FailureKind.Transient, "rate_limited"), (failure.Kind, failure.Reason));
        Assert.Equal(TimeSpan.FromMinutes(2), failure.RetryAfter);
        Assert.Contains("80003", failure.Detail, StringComparison.Ordinal);

        // Under a minute to go: no wait of its own, so the worker's backoff applies.
        server.RegainAccessMinutes = 0;
        failure = await Assert.ThrowsAsync<DestinationException>(() => client.SendAsync(batch, Cancel));
        Assert.Equal(FailureKind.Transient, failure.Kind);
        Assert.Null(failure.RetryAfter);
    }

    [Fact]
    public async Task Delivery_through_the_worker_under_faults_accounts_for_every_record_once_and_leaves_the_expected_audience()
    {
        var faults = new FaultPlan(seed: 11)
        {
            RateLimited = 0.08, ServerErrors = 0.08, DropsBefore = 0.05, DropsAfter = 0.1, RetryAfter = TimeSpan.FromMilliseconds(5),
        };
        await using var server = await ServerAsync(faults);
        server.RequestsPerSecond = 60;
        // Besides the plan's random drops (which requests they hit depends on arrival order), two fixed lost answers.
        server.DropAnswersOf = new HashSet<int> { 2, 5 };
        using var dir = new TempDirectory("meta-worker");
        await using var ledger = new SqliteLedger(dir.Combine("ledger.db"));
        await ledger.InitializeAsync(Cancel);

        // 500 profiles enter, 100 that were members leave; every third has a phone too; one email Meta refuses.
        var profiles = new Dictionary<long, IReadOnlyList<ProfileIdentifier>>();
        for (long p = 1; p <= 600; p++)
        {
            var ids = new List<ProfileIdentifier> { new("email", $"user{p}@example.com") };
            if (p % 3 == 0)
            {
                ids.Add(new("phone", string.Create(CultureInfo.InvariantCulture, $"+1415555{p:0000}")));
            }
            profiles[p] = ids;
        }
        string Email(long p) => EmailHash($"user{p}@example.com");
        string Phone(long p) => HashedIdentifiers.Sha256Hex(string.Create(CultureInfo.InvariantCulture, $"1415555{p:0000}"));
        var entering = Enumerable.Range(1, 500).Select(i => (long)i).ToList();
        var leaving = Enumerable.Range(501, 100).Select(i => (long)i).ToList();
        server.Seed(Audience, "EMAIL", leaving.Select(Email));
        server.Seed(Audience, "PHONE", leaving.Where(p => p % 3 == 0).Select(Phone));
        server.InvalidValues[Email(7)] = "invalid email address";
        var definition = Definition(server, batchSize: 25);
        await PlanAsync(ledger, "meta", entering, leaving);

        await using var client = new MetaCustomAudiencesDestination(definition, Kinds);
        var result = await DeliverAsync(definition, client, ledger, profiles);

        Assert.Null(result.StoppedBy);
        Assert.True(result.Retries > 0 && faults.Injected429 + faults.Injected5xx + faults.InjectedDrops > 0, "faults were injected and retried");
        var records = await ledger.RecordsAsync(RunId, Cancel);
        Assert.Equal(600, records.Count);
        Assert.All(records, r => Assert.Equal("final", r.State));
        var failed = Assert.Single(records, r => r.Outcome == Outcomes.Failed);
        Assert.Equal(7, failed.ProfileId);
        Assert.Equal("rejected", failed.Reason);
        Assert.Equal(599, records.Count(r => r.Outcome == Outcomes.Delivered));

        // The audience holds exactly the entered profiles Meta accepted.
        Assert.Equal(entering.Where(p => p != 7).Select(Email).ToHashSet(), server.Members(Audience, "EMAIL"));
        Assert.Equal(entering.Where(p => p % 3 == 0).Select(Phone).ToHashSet(), server.Members(Audience, "PHONE"));
        // Every record arrived as one row; a row arrived again only when the answer to a request that applied it was lost.
        Assert.True(server.RowsInLostAnswers > 0, "answers to applied requests were lost");
        Assert.Equal(600, server.RowCounts.Count);
        Assert.Equal(server.RowsReceived, server.RowCounts.Values.Sum());
        Assert.Equal(server.RowCounts.Count + server.RowsInLostAnswers, server.RowsReceived);
        // The ledger's delivered records are the rows the server applied.
        Assert.Equal(records.Count(r => r.Outcome == Outcomes.Delivered), server.RowCounts.Count - 1);

        // A second delivery finds nothing open and sends nothing.
        var applied = server.RequestsApplied;
        await using var again = new MetaCustomAudiencesDestination(definition, Kinds);
        Assert.Equal(0, (await DeliverAsync(definition, again, ledger, profiles)).Requests);
        Assert.Equal(applied, server.RequestsApplied);
    }
}
