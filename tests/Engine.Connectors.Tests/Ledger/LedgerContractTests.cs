using Engine.Connectors.Ledger;
using Engine.TestKit;

namespace Engine.Connectors.Tests.Ledger;

/// <summary>
/// What every delivery ledger promises (<see cref="IDeliveryLedger"/>), run against each implementation: records under
/// idempotency keys, batches claimed under leases and reclaimed whole, outcomes final once. Each test gets a store of
/// its own.
/// </summary>
public abstract class LedgerContractTests : IAsyncLifetime
{
    protected const string Run = "run1";
    protected const string Meta = "meta";
    protected const string Braze = "braze";

    protected static readonly TimeSpan Live = TimeSpan.FromMinutes(10);
    protected static readonly TimeSpan Expired = TimeSpan.FromSeconds(-1);

    private readonly List<IDeliveryLedger> _opened = [];

    protected static CancellationToken Cancel => TestContext.Current.CancellationToken;

    /// <summary>The ledger the test works with.</summary>
    protected IDeliveryLedger Ledger { get; private set; } = null!;

    /// <summary>Creates the empty store this test's ledgers share.</summary>
    protected abstract ValueTask CreateStoreAsync();

    /// <summary>A new ledger over this test's store, as another worker process would open it (not initialised yet).</summary>
    protected abstract IDeliveryLedger NewLedger();

    protected abstract ValueTask DeleteStoreAsync();

    /// <summary>A new ledger over the store, initialised, disposed with the test.</summary>
    protected async Task<IDeliveryLedger> OpenAsync()
    {
        var ledger = NewLedger();
        lock (_opened)
        {
            _opened.Add(ledger);
        }
        await ledger.InitializeAsync(Cancel);
        return ledger;
    }

    public async ValueTask InitializeAsync()
    {
        await CreateStoreAsync();
        Ledger = await OpenAsync();
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var ledger in _opened)
        {
            await ledger.DisposeAsync();
        }
        await DeleteStoreAsync();
        GC.SuppressFinalize(this);
    }

    /// <summary>A record keyed as delivery keys them (run/segment/destination/profile/change).</summary>
    protected static PlannedRecord Record(long profileId, string destination = Meta, string segment = "vip", string change = "entered",
        string? channel = "email", string run = Run) =>
        new($"{run}/{segment}/{destination}/{profileId}/{change}", run, destination, segment, profileId, change, channel);

    protected static PlannedRecord[] Records(IEnumerable<long> profileIds, string destination = Meta, string segment = "vip", string change = "entered",
        string run = Run) => [.. profileIds.Select(p => Record(p, destination, segment, change, run: run))];

    protected static string[] SortedKeys(IEnumerable<PlannedRecord> records) => [.. records.Select(r => r.Key).Order(StringComparer.Ordinal)];

    protected static string BatchOf(IReadOnlyList<string> keys) => $"batch:{keys[0]}:{keys.Count}";

    protected static FinalOutcome Delivered(string key, int attempts = 1) => new(key, Outcomes.Delivered, null, null, attempts);

    protected Task PlanAsync(IReadOnlyList<PlannedRecord> records, IReadOnlyList<FinalOutcome>? known = null, IReadOnlyList<string>? segments = null,
        string run = Run, string destination = Meta, IDeliveryLedger? ledger = null) =>
        (ledger ?? Ledger).PlanAsync(run, destination, records, known ?? [], segments ?? ["vip"], Cancel);

    protected Task<IReadOnlyList<LedgerRecord>> ClaimAsync(int limit, TimeSpan? lease = null, string change = "entered", string destination = Meta,
        Func<IReadOnlyList<string>, string>? newBatchId = null, IDeliveryLedger? ledger = null) =>
        (ledger ?? Ledger).ClaimAsync(Run, destination, change, limit, lease ?? Live, newBatchId ?? BatchOf, Cancel);

    protected async Task<Dictionary<string, LedgerRecord>> RecordsByKeyAsync(string run = Run) =>
        (await Ledger.RecordsAsync(run, Cancel)).ToDictionary(r => r.Key, StringComparer.Ordinal);

    private static string NoNewBatch(IReadOnlyList<string> keys) =>
        throw new InvalidOperationException($"a new batch was made of {keys.Count} pending records where an orphaned batch was due");

    [Fact]
    public async Task Planning_twice_keeps_the_records_and_their_states_and_adds_the_new_ones()
    {
        var first = Records([1, 2, 3, 4, 5]);
        var unmatched = new FinalOutcome(first[4].Key, Outcomes.Unmatched, "no_identifier", null, 0);
        Assert.False(await Ledger.IsPlannedAsync(Run, Meta, Cancel));
        await PlanAsync(first, [unmatched]);
        Assert.True(await Ledger.IsPlannedAsync(Run, Meta, Cancel));
        Assert.False(await Ledger.IsPlannedAsync(Run, Braze, Cancel));
        Assert.False(await Ledger.IsPlannedAsync("run2", Meta, Cancel));

        var planned = await RecordsByKeyAsync();
        Assert.Equal(5, planned.Count);
        Assert.Equal(("final", Outcomes.Unmatched, "no_identifier"), (planned[first[4].Key].State, planned[first[4].Key].Outcome, planned[first[4].Key].Reason));
        Assert.All(first[..4], r => Assert.Equal(("pending", (string?)null, 0), (planned[r.Key].State, planned[r.Key].Outcome, planned[r.Key].Attempts)));

        var claimed = await ClaimAsync(2);
        await Ledger.FinishAsync([Delivered(claimed[0].Key)], Cancel);

        // The same plan again, with two more records and outcomes that would contradict the first: nothing known changes.
        var second = Records([1, 2, 3, 4, 5, 6, 7]);
        await PlanAsync(second, [
            new FinalOutcome(first[4].Key, Outcomes.Failed, "other", null, 9),
            new FinalOutcome(claimed[0].Key, Outcomes.Unmatched, "no_identifier", null, 0),
            new FinalOutcome(second[6].Key, Outcomes.Unmatched, "no_identifier", null, 0),
        ]);
        var replanned = await RecordsByKeyAsync();
        Assert.Equal(7, replanned.Count);
        Assert.Equal((Outcomes.Unmatched, "no_identifier", 0), (replanned[first[4].Key].Outcome, replanned[first[4].Key].Reason, replanned[first[4].Key].Attempts));
        Assert.Equal(("final", Outcomes.Delivered), (replanned[claimed[0].Key].State, replanned[claimed[0].Key].Outcome));
        Assert.Equal(("in_flight", claimed[1].BatchId), (replanned[claimed[1].Key].State, replanned[claimed[1].Key].BatchId));
        Assert.Equal(planned[first[0].Key].PlannedAt, replanned[first[0].Key].PlannedAt);
        Assert.Equal("pending", replanned[second[5].Key].State);
        Assert.Equal(("final", Outcomes.Unmatched), (replanned[second[6].Key].State, replanned[second[6].Key].Outcome));
        // Open: the two untouched of the first plan, the one in flight, the new pending one.
        Assert.Equal(4, await Ledger.OpenCountAsync(Run, Meta, Cancel));
    }

    [Fact]
    public async Task A_large_plan_planned_again_with_overlap_keeps_one_record_per_key()
    {
        await PlanAsync(Records(Enumerable.Range(0, 6_000).Select(i => (long)i)));
        await PlanAsync(Records(Enumerable.Range(3_000, 6_000).Select(i => (long)i)));
        Assert.Equal(9_000, await Ledger.OpenCountAsync(Run, Meta, Cancel));
        var records = await Ledger.RecordsAsync(Run, Cancel);
        Assert.Equal(9_000, records.Select(r => r.Key).Distinct(StringComparer.Ordinal).Count());
        Assert.Equal(records.Select(r => r.Key).Order(StringComparer.Ordinal), records.Select(r => r.Key));
    }

    [Fact]
    public async Task A_claim_takes_pending_records_of_its_operation_in_key_order_up_to_the_limit()
    {
        // Profile 10 sorts before 2 in key order: the order is the keys', not the profiles'.
        var entered = Records(Enumerable.Range(1, 10).Select(i => (long)i));
        await PlanAsync([.. entered, .. Records([1, 2], change: "exited")]);
        await PlanAsync(Records([1, 2, 3], destination: Braze), destination: Braze);
        var order = SortedKeys(entered);

        var seen = new List<IReadOnlyList<string>>();
        string Batch(IReadOnlyList<string> keys)
        {
            seen.Add([.. keys]);
            return BatchOf(keys);
        }
        var first = await ClaimAsync(4, newBatchId: Batch);
        Assert.Equal(order[..4], first.Select(r => r.Key));
        Assert.Equal(order[..4], seen[0]);
        Assert.All(first, r => Assert.Equal(("in_flight", BatchOf(order[..4]), "entered", Meta), (r.State, r.BatchId, r.Change, r.Destination)));

        var second = await ClaimAsync(4, newBatchId: Batch);
        Assert.Equal(order[4..8], second.Select(r => r.Key));
        Assert.All(second, r => Assert.Equal(BatchOf(order[4..8]), r.BatchId));
        var third = await ClaimAsync(4, newBatchId: Batch);
        Assert.Equal(order[8..], third.Select(r => r.Key));
        Assert.Empty(await ClaimAsync(4, newBatchId: Batch));
        Assert.Equal(3, seen.Count);

        var stored = await RecordsByKeyAsync();
        Assert.All(order, key => Assert.Equal("in_flight", stored[key].State));
        Assert.Equal(2, (await ClaimAsync(10, change: "exited")).Count);
        Assert.Equal(3, (await ClaimAsync(10, destination: Braze)).Count);
        // In flight is still open.
        Assert.Equal(3, await Ledger.OpenCountAsync(Run, Braze, Cancel));
    }

    [Fact]
    public async Task Keys_are_claimed_and_listed_in_byte_order_whatever_the_database_collation()
    {
        // A natural-language collation puts these in another order (case folded, punctuation ignored).
        string[] segments = ["beta", "Zeta", "_x", "a-b", "ab", "alpha", "Beta", "a b", "B"];
        var records = segments.Select(s => Record(1, segment: s)).ToArray();
        await PlanAsync(records, segments: segments);
        var expected = SortedKeys(records);
        Assert.Equal(expected, (await ClaimAsync(segments.Length)).Select(r => r.Key));
        Assert.Equal(expected, (await Ledger.RecordsAsync(Run, Cancel)).Select(r => r.Key));
    }

    [Fact]
    public async Task An_orphaned_batch_is_claimed_again_whole_under_its_id_before_any_pending_record()
    {
        var records = Records([1, 2, 3, 4, 5, 6, 7]);
        var order = SortedKeys(records);
        await PlanAsync(records);
        // A worker claims two batches and dies: their leases run out.
        var orphanA = await ClaimAsync(2);
        var orphanB = await ClaimAsync(3);
        Assert.Equal(order[..2], orphanA.Select(r => r.Key));
        Assert.Equal(order[2..5], orphanB.Select(r => r.Key));
        await Ledger.RenewAsync(orphanA[0].BatchId!, Expired, Cancel);
        await Ledger.RenewAsync(orphanB[0].BatchId!, Expired, Cancel);

        var again = await ClaimAsync(1, Live, newBatchId: NoNewBatch);
        Assert.Equal(orphanA.Select(r => r.Key), again.Select(r => r.Key));
        Assert.All(again, r => Assert.Equal(("in_flight", orphanA[0].BatchId), (r.State, r.BatchId)));

        // Part of the second orphan was acknowledged before its worker died: the rest goes out, as the same batch.
        await Ledger.FinishAsync([Delivered(orphanB[0].Key)], Cancel);
        var rest = await ClaimAsync(5, Live, newBatchId: NoNewBatch);
        Assert.Equal(orphanB.Skip(1).Select(r => r.Key), rest.Select(r => r.Key));
        Assert.All(rest, r => Assert.Equal(orphanB[0].BatchId, r.BatchId));

        // Both leases are live again: the next claim takes pending records.
        var next = await ClaimAsync(5);
        Assert.Equal(order[5..], next.Select(r => r.Key));
        Assert.Empty(await ClaimAsync(5));
    }

    [Fact]
    public async Task A_batch_under_a_live_lease_is_not_claimed_again_and_renewing_keeps_it()
    {
        var records = Records([1, 2, 3, 4]);
        await PlanAsync(records);
        var first = await ClaimAsync(2, Live);
        var second = await ClaimAsync(2, Expired);
        Assert.Empty(first.Select(r => r.Key).Intersect(second.Select(r => r.Key)));

        // The second batch's lease ran out but its worker renews it before anyone claims it.
        await Ledger.RenewAsync(second[0].BatchId!, Live, Cancel);
        Assert.Empty(await ClaimAsync(2));
        Assert.Equal(4, await Ledger.OpenCountAsync(Run, Meta, Cancel));

        // A renewal that lets the lease lapse makes it claimable again.
        await Ledger.RenewAsync(first[0].BatchId!, Expired, Cancel);
        var reclaimed = await ClaimAsync(2, newBatchId: NoNewBatch);
        Assert.Equal(first.Select(r => r.Key), reclaimed.Select(r => r.Key));
    }

    [Fact]
    public async Task Finishing_makes_outcomes_final_and_a_later_outcome_never_overwrites_them()
    {
        var records = Records([1, 2, 3]);
        await PlanAsync(records);
        var batch = await ClaimAsync(3);
        var (a, b, c) = (batch[0].Key, batch[1].Key, batch[2].Key);
        await Ledger.FinishAsync([], Cancel);
        await Ledger.FinishAsync([Delivered(a), new FinalOutcome(b, Outcomes.Failed, "http_500", "server said no", 3)], Cancel);

        var stored = await RecordsByKeyAsync();
        Assert.Equal(("final", Outcomes.Delivered, (string?)null, (string?)null, 1), (stored[a].State, stored[a].Outcome, stored[a].Reason, stored[a].Error, stored[a].Attempts));
        Assert.Equal(("final", Outcomes.Failed, "http_500", "server said no", 3), (stored[b].State, stored[b].Outcome, stored[b].Reason, stored[b].Error, stored[b].Attempts));
        Assert.NotNull(stored[a].FinishedAt);
        Assert.Null(stored[c].FinishedAt);
        Assert.Equal(1, await Ledger.OpenCountAsync(Run, Meta, Cancel));

        // A second report of the same records (a retry after a crash, a late answer) changes nothing; within one
        // report, the first outcome given for a key is the one kept.
        await Ledger.FinishAsync([
            new FinalOutcome(a, Outcomes.Failed, "timeout", null, 5),
            new FinalOutcome(b, Outcomes.Delivered, null, null, 4),
            new FinalOutcome(c, Outcomes.Suppressed, "no_consent", null, 1),
            new FinalOutcome(c, Outcomes.Delivered, null, null, 2),
        ], Cancel);
        var after = await RecordsByKeyAsync();
        Assert.Equal((Outcomes.Delivered, 1, stored[a].FinishedAt), (after[a].Outcome, after[a].Attempts, after[a].FinishedAt));
        Assert.Equal((Outcomes.Failed, "http_500", 3), (after[b].Outcome, after[b].Reason, after[b].Attempts));
        Assert.Equal(("final", Outcomes.Suppressed, "no_consent", 1), (after[c].State, after[c].Outcome, after[c].Reason, after[c].Attempts));
        Assert.Equal(0, await Ledger.OpenCountAsync(Run, Meta, Cancel));

        // Final records are never claimed again, even when their batch's lease had run out.
        await Ledger.RenewAsync(batch[0].BatchId!, Expired, Cancel);
        Assert.Empty(await ClaimAsync(3, newBatchId: NoNewBatch));
    }

    [Fact]
    public async Task The_open_count_is_of_pending_and_in_flight_records_of_one_destination_in_one_run()
    {
        await PlanAsync(Records([1, 2, 3, 4, 5]));
        await PlanAsync(Records([1, 2, 3], destination: Braze), destination: Braze);
        await PlanAsync(Records([1, 2], run: "run2"), run: "run2");
        var claimed = await ClaimAsync(2);
        await Ledger.FinishAsync([Delivered(claimed[0].Key)], Cancel);

        Assert.Equal(4, await Ledger.OpenCountAsync(Run, Meta, Cancel));
        Assert.Equal(3, await Ledger.OpenCountAsync(Run, Braze, Cancel));
        Assert.Equal(2, await Ledger.OpenCountAsync("run2", Meta, Cancel));
        Assert.Equal(0, await Ledger.OpenCountAsync("run3", Meta, Cancel));
    }

    [Fact]
    public async Task The_records_of_a_run_are_every_destination_s_in_key_order_as_planned()
    {
        var meta = Records([3, 1, 2]);
        var braze = new[] { Record(7, Braze, "lapsed", "exited", channel: null), Record(8, Braze, "lapsed") };
        await PlanAsync(meta);
        await PlanAsync(braze, destination: Braze, segments: ["lapsed"]);
        await PlanAsync(Records([1], run: "run2"), run: "run2");

        var records = await Ledger.RecordsAsync(Run, Cancel);
        Assert.Equal(SortedKeys([.. meta, .. braze]), records.Select(r => r.Key));
        var byKey = records.ToDictionary(r => r.Key, StringComparer.Ordinal);
        foreach (var planned in meta.Concat(braze))
        {
            var record = byKey[planned.Key];
            Assert.Equal((planned.RunId, planned.Destination, planned.Segment, planned.ProfileId, planned.Change, planned.Channel),
                (record.RunId, record.Destination, record.Segment, record.ProfileId, record.Change, record.Channel));
            Assert.Equal(("pending", (string?)null, (string?)null, (string?)null, (string?)null, 0, (long?)null),
                (record.State, record.Outcome, record.Reason, record.Error, record.BatchId, record.Attempts, record.FinishedAt));
            Assert.True(record.PlannedAt > 0);
        }
        Assert.Empty(await Ledger.RecordsAsync("run3", Cancel));

        // Another worker opening the same store sees the same records.
        var other = await OpenAsync();
        Assert.Equal(records, await other.RecordsAsync(Run, Cancel));
    }

    [Fact]
    public async Task Delivered_since_counts_delivered_entries_on_the_channel_per_profile_from_the_given_time()
    {
        PlanRecord[] plan =
        [
            new(Record(1, segment: "a"), Outcomes.Delivered, Counted: true),
            new(Record(1, segment: "b"), Outcomes.Delivered, Counted: true),
            new(Record(2, segment: "a"), Outcomes.Delivered, Counted: true),
            new(Record(3, segment: "a", change: "exited"), Outcomes.Delivered, Counted: false),
            new(Record(4, segment: "a"), Outcomes.Failed, Counted: false),
            new(Record(5, segment: "a", channel: "sms"), Outcomes.Delivered, Counted: false),
            new(Record(6, segment: "c"), null, Counted: false),
        ];
        var early = Record(9, segment: "a");
        await PlanAsync([early, .. plan.Select(p => p.Record)], segments: ["a", "b", "c"]);
        await Ledger.FinishAsync([Delivered(early.Key)], Cancel);
        var earlyAt = (await RecordsByKeyAsync())[early.Key].FinishedAt!.Value;
        // Let the clock move past the early delivery, whichever clock the ledger keeps.
        await Task.Delay(20, Cancel);
        await Ledger.FinishAsync([.. plan.Where(p => p.Outcome is not null).Select(p => new FinalOutcome(p.Record.Key, p.Outcome!, null, null, 1))], Cancel);

        var expected = plan.Where(p => p.Counted).GroupBy(p => p.Record.ProfileId).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(new Dictionary<long, int> { [1] = 2, [2] = 1 }, expected);
        Assert.Equal(expected, await Ledger.DeliveredSinceAsync("email", earlyAt + 1, Cancel));
        Assert.Equal(new Dictionary<long, int>(expected) { [9] = 1 }, await Ledger.DeliveredSinceAsync("email", earlyAt, Cancel));
        Assert.Equal(new Dictionary<long, int> { [5] = 1 }, await Ledger.DeliveredSinceAsync("sms", earlyAt + 1, Cancel));
        Assert.Empty(await Ledger.DeliveredSinceAsync("push", 0, Cancel));
    }

    private sealed record PlanRecord(PlannedRecord Record, string? Outcome, bool Counted);

    [Fact]
    public async Task Synced_segments_are_kept_per_destination_across_runs()
    {
        await PlanAsync(Records([1]), segments: ["vip", "churn"]);
        await PlanAsync(Records([1], run: "run2"), segments: ["vip", "new"], run: "run2");
        await PlanAsync([], segments: ["lapsed"], destination: Braze);

        Assert.Equal(new HashSet<string>(["vip", "churn", "new"]), await Ledger.SyncedSegmentsAsync(Meta, Cancel));
        Assert.Equal(new HashSet<string>(["lapsed"]), await Ledger.SyncedSegmentsAsync(Braze, Cancel));
        Assert.Empty(await Ledger.SyncedSegmentsAsync("webhook", Cancel));
        // A plan without records is still a plan.
        Assert.True(await Ledger.IsPlannedAsync(Run, Braze, Cancel));
    }

    [Fact]
    public async Task Planned_runs_come_in_the_order_they_were_first_planned()
    {
        Assert.Empty(await Ledger.PlannedRunsAsync(Cancel));
        foreach (var (run, destination) in new[] { ("run-b", Meta), ("run-a", Meta), ("run-b", Braze), ("run-c", Meta), ("run-a", Braze) })
        {
            await PlanAsync(Records([1], destination: destination, run: run), run: run, destination: destination);
            // Distinct planning times whichever clock the ledger keeps (both count microseconds).
            await Task.Delay(2, Cancel);
        }
        Assert.Equal(["run-b", "run-a", "run-c"], await Ledger.PlannedRunsAsync(Cancel));
    }

    [Fact]
    public async Task A_destination_s_part_of_a_run_is_completed_once_marked()
    {
        Assert.False(await Ledger.IsCompletedAsync(Run, Meta, Cancel));
        await PlanAsync(Records([1]));
        await PlanAsync(Records([1], destination: Braze), destination: Braze);
        Assert.False(await Ledger.IsCompletedAsync(Run, Meta, Cancel));

        await Ledger.MarkCompletedAsync(Run, Meta, Cancel);
        Assert.True(await Ledger.IsCompletedAsync(Run, Meta, Cancel));
        Assert.False(await Ledger.IsCompletedAsync(Run, Braze, Cancel));
        // Only a planned part can be completed.
        await Ledger.MarkCompletedAsync("run2", Meta, Cancel);
        Assert.False(await Ledger.IsCompletedAsync("run2", Meta, Cancel));
    }

    [Fact]
    public async Task Destination_state_is_set_and_replaced_per_run_destination_and_name()
    {
        Assert.Null(await Ledger.GetStateAsync(Run, Meta, "upload_job", Cancel));
        await Ledger.SetStateAsync(Run, Meta, "upload_job", "job-1", Cancel);
        Assert.Equal("job-1", await Ledger.GetStateAsync(Run, Meta, "upload_job", Cancel));
        await Ledger.SetStateAsync(Run, Meta, "upload_job", "job-2", Cancel);
        Assert.Equal("job-2", await Ledger.GetStateAsync(Run, Meta, "upload_job", Cancel));

        Assert.Null(await Ledger.GetStateAsync("run2", Meta, "upload_job", Cancel));
        Assert.Null(await Ledger.GetStateAsync(Run, Braze, "upload_job", Cancel));
        Assert.Null(await Ledger.GetStateAsync(Run, Meta, "audience", Cancel));
    }
}

/// <summary>The contract on the embedded default: a SQLite file in a temporary folder.</summary>
public sealed class SqliteLedgerContractTests : LedgerContractTests
{
    private readonly TempDirectory _directory = new("ledger");

    protected override ValueTask CreateStoreAsync() => ValueTask.CompletedTask;

    protected override IDeliveryLedger NewLedger() => new SqliteLedger(_directory.Combine("ledger.db"));

    protected override ValueTask DeleteStoreAsync()
    {
        // Pooling is off in the ledger, so the file is closed once the ledgers are disposed.
        _directory.Dispose();
        return ValueTask.CompletedTask;
    }
}

/// <summary>One PostgreSQL server for the tests that need one; each test gets a schema of its own on it.</summary>
[CollectionDefinition(Name)]
public sealed class SharedPostgres : ICollectionFixture<PostgresServer>
{
    public const string Name = "postgres";
}

/// <summary>
/// The contract on PostgreSQL, where several worker processes share one ledger: also claims from several ledgers at
/// once (each with its own connections, as separate processes have).
/// </summary>
[Collection(SharedPostgres.Name)]
public sealed class PostgresLedgerContractTests(PostgresServer server) : LedgerContractTests
{
    private const int Workers = 4;

    private string _connectionString = "";

    protected override async ValueTask CreateStoreAsync() => _connectionString = await server.CreateSchemaAsync("ledger");

    protected override IDeliveryLedger NewLedger() => new PostgresLedger(_connectionString);

    // The schema goes with the server's test database.
    protected override ValueTask DeleteStoreAsync() => ValueTask.CompletedTask;

    [Fact]
    public async Task Workers_claiming_together_never_get_the_same_record_and_together_get_them_all()
    {
        var records = Records(Enumerable.Range(1, 2_000).Select(i => (long)i));
        await PlanAsync(records);
        var ledgers = new IDeliveryLedger[Workers];
        for (var i = 0; i < Workers; i++)
        {
            ledgers[i] = await OpenAsync();
        }

        var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var running = ledgers.Select(ledger => Task.Run(async () =>
        {
            var batches = new List<IReadOnlyList<LedgerRecord>>();
            await start.Task;
            while (await ClaimAsync(50, ledger: ledger) is { Count: > 0 } batch)
            {
                batches.Add(batch);
            }
            return batches;
        }, Cancel)).ToArray();
        start.SetResult();
        var claims = await Task.WhenAll(running);

        var batches = claims.SelectMany(b => b).ToList();
        var claimed = batches.SelectMany(b => b).Select(r => r.Key).ToList();
        Assert.Equal(records.Length, claimed.Count);
        Assert.Equal(SortedKeys(records), claimed.Order(StringComparer.Ordinal));
        Assert.All(batches, batch =>
        {
            Assert.Equal(batch.Select(r => r.Key).Order(StringComparer.Ordinal), batch.Select(r => r.Key));
            Assert.All(batch, r => Assert.Equal(("in_flight", BatchOf([.. batch.Select(b => b.Key)])), (r.State, r.BatchId)));
        });
        Assert.Equal(batches.Count, batches.Select(b => b[0].BatchId).Distinct(StringComparer.Ordinal).Count());
        // The claims did run side by side: more than one worker got work.
        Assert.True(claims.Count(c => c.Count > 0) > 1, "one worker took every batch");
    }

    [Fact]
    public async Task Workers_claiming_orphaned_batches_together_take_each_one_once_and_whole()
    {
        var records = Records(Enumerable.Range(1, 400).Select(i => (long)i));
        await PlanAsync(records);
        // A worker claimed eight batches and died: every lease has run out.
        var orphans = new List<IReadOnlyList<LedgerRecord>>();
        for (var i = 0; i < 8; i++)
        {
            orphans.Add(await ClaimAsync(50));
        }
        foreach (var orphan in orphans)
        {
            await Ledger.RenewAsync(orphan[0].BatchId!, Expired, Cancel);
        }
        var ledgers = new IDeliveryLedger[Workers];
        for (var i = 0; i < Workers; i++)
        {
            ledgers[i] = await OpenAsync();
        }

        var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var running = ledgers.Select(ledger => Task.Run(async () =>
        {
            var batches = new List<IReadOnlyList<LedgerRecord>>();
            await start.Task;
            while (await ClaimAsync(50, ledger: ledger, newBatchId: keys => throw new InvalidOperationException("no pending record is left")) is { Count: > 0 } batch)
            {
                batches.Add(batch);
            }
            return batches;
        }, Cancel)).ToArray();
        start.SetResult();
        var claims = await Task.WhenAll(running);

        var reclaimed = claims.SelectMany(b => b).OrderBy(b => b[0].BatchId, StringComparer.Ordinal).ToList();
        var expected = orphans.OrderBy(b => b[0].BatchId, StringComparer.Ordinal).ToList();
        Assert.Equal(expected.Select(b => b[0].BatchId), reclaimed.Select(b => b[0].BatchId));
        for (var i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected[i].Select(r => r.Key), reclaimed[i].Select(r => r.Key));
            Assert.All(reclaimed[i], r => Assert.Equal(expected[i][0].BatchId, r.BatchId));
        }
        Assert.Equal(400, await Ledger.OpenCountAsync(Run, Meta, Cancel));
    }

    [Fact]
    public async Task Workers_starting_together_on_an_empty_schema_create_the_tables_once_and_plan_once()
    {
        var fresh = await server.CreateSchemaAsync("fresh");
        var ledgers = Enumerable.Range(0, Workers).Select(_ => new PostgresLedger(fresh)).ToArray();
        try
        {
            await Task.WhenAll(ledgers.Select(l => Task.Run(() => l.InitializeAsync(Cancel), Cancel)));
            var records = Records(Enumerable.Range(1, 1_000).Select(i => (long)i));
            await Task.WhenAll(ledgers.Select(l => Task.Run(() => PlanAsync(records, ledger: l), Cancel)));
            Assert.Equal(1_000, (await ledgers[0].RecordsAsync(Run, Cancel)).Count);
            Assert.Equal([Run], await ledgers[0].PlannedRunsAsync(Cancel));
        }
        finally
        {
            foreach (var ledger in ledgers)
            {
                await ledger.DisposeAsync();
            }
        }
    }
}
