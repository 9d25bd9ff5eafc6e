namespace Engine.Connectors.Ledger;

/// <summary>The final outcomes of a record (DESIGN.md: <c>deliveries/&lt;run_id&gt;/events/</c>).</summary>
public static class Outcomes
{
    public const string Delivered = "delivered";
    public const string Suppressed = "suppressed";
    public const string Unmatched = "unmatched";
    public const string Failed = "failed";

    /// <summary>In the activation's control group (its holdout): planned and recorded, never sent.</summary>
    public const string HeldOut = "held_out";
}

/// <summary>A delta record as planned for a destination.</summary>
public sealed record PlannedRecord(string Key, string RunId, string Destination, string Segment, long ProfileId, string Change, string? Channel);

/// <summary>A record the ledger holds, with where it stands.</summary>
public sealed record LedgerRecord(
    string Key, string RunId, string Destination, string Segment, long ProfileId, string Change, string? Channel,
    string State, string? Outcome, string? Reason, string? Error, string? BatchId, int Attempts, long PlannedAt, long? FinishedAt);

/// <summary>A record's final outcome, as a worker reports it.</summary>
public sealed record FinalOutcome(string Key, string Outcome, string? Reason, string? Error, int Attempts);

/// <summary>
/// What delivery remembers: every planned record under its idempotency key, which batch it went out in, and what the
/// destination answered. A record is <c>pending</c>, then <c>in_flight</c> (claimed into a batch, written before the
/// first attempt), then <c>final</c> with an outcome. A worker that dies leaves its batches in flight under a lease;
/// when the lease runs out they are claimed again, as the same batch with the same id. Nothing final is ever sent again.
/// </summary>
public interface IDeliveryLedger : IAsyncDisposable
{
    /// <summary>Creates the tables when missing.</summary>
    Task InitializeAsync(CancellationToken cancellationToken);

    /// <summary>Whether <paramref name="destination"/> has records of <paramref name="runId"/> planned (its plan is committed).</summary>
    Task<bool> IsPlannedAsync(string runId, string destination, CancellationToken cancellationToken);

    /// <summary>
    /// Records the plan of <paramref name="runId"/> for <paramref name="destination"/> in one transaction: the records
    /// (keys already present are left as they are), the outcomes known before sending (unmatched), and the segments
    /// now synced. Planning twice is harmless.
    /// </summary>
    Task PlanAsync(string runId, string destination, IReadOnlyList<PlannedRecord> records, IReadOnlyList<FinalOutcome> known,
        IReadOnlyList<string> segments, CancellationToken cancellationToken);

    /// <summary>The segments that <paramref name="destination"/> has received a full sync of (later runs send it deltas only).</summary>
    Task<IReadOnlySet<string>> SyncedSegmentsAsync(string destination, CancellationToken cancellationToken);

    /// <summary>The runs with records planned, with the earliest planning time.</summary>
    Task<IReadOnlyList<string>> PlannedRunsAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Claims records of one operation (<paramref name="change"/>) for a batch: first a whole batch left in flight by a
    /// worker whose lease ran out (same records, same batch id), otherwise up to <paramref name="limit"/> pending
    /// records (key order) under <paramref name="newBatchId"/>'s id (computed from their keys). Empty when none remain.
    /// </summary>
    Task<IReadOnlyList<LedgerRecord>> ClaimAsync(string runId, string destination, string change, int limit, TimeSpan lease,
        Func<IReadOnlyList<string>, string> newBatchId, CancellationToken cancellationToken);

    /// <summary>Extends the lease of a batch being retried.</summary>
    Task RenewAsync(string batchId, TimeSpan lease, CancellationToken cancellationToken);

    /// <summary>Makes outcomes final (one transaction).</summary>
    Task FinishAsync(IReadOnlyList<FinalOutcome> outcomes, CancellationToken cancellationToken);

    /// <summary>Records not final yet for the destination in the run (pending or in flight).</summary>
    Task<long> OpenCountAsync(string runId, string destination, CancellationToken cancellationToken);

    /// <summary>Every record of a run (all destinations), in key order.</summary>
    Task<IReadOnlyList<LedgerRecord>> RecordsAsync(string runId, CancellationToken cancellationToken);

    /// <summary>Per profile, the entries delivered on <paramref name="channel"/> since <paramref name="sinceMicros"/> (frequency caps).</summary>
    Task<Dictionary<long, int>> DeliveredSinceAsync(string channel, long sinceMicros, CancellationToken cancellationToken);

    /// <summary>Marks the destination's part of the run complete (its <see cref="Destinations.IDestination.CompleteAsync"/> succeeded).</summary>
    Task MarkCompletedAsync(string runId, string destination, CancellationToken cancellationToken);

    Task<bool> IsCompletedAsync(string runId, string destination, CancellationToken cancellationToken);

    /// <summary>A destination's own state for a run (an upload job's name…), or null.</summary>
    Task<string?> GetStateAsync(string runId, string destination, string name, CancellationToken cancellationToken);

    Task SetStateAsync(string runId, string destination, string name, string value, CancellationToken cancellationToken);
}
