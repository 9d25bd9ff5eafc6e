namespace Engine.Connectors.Destinations;

/// <summary>What a record asks of its destination.</summary>
public enum RecordOperation
{
    /// <summary>Add the profile to the segment's audience (or upsert its fields with the segment).</summary>
    Add,

    /// <summary>Remove the profile from the segment's audience (or upsert its fields without the segment).</summary>
    Remove,
}

/// <summary>One identifier of a profile, canonical as the identity stage wrote it (emails lower-case, phones E.164).</summary>
public readonly record struct ProfileIdentifier(string Type, string Value);

/// <summary>One delta record on its way to a destination.</summary>
/// <param name="Key">The idempotency key: run, segment, destination, profile and change (<see cref="Delivery.DeliveryKeys"/>).</param>
/// <param name="Segment">The segment whose membership changed.</param>
/// <param name="ProfileId">The profile.</param>
/// <param name="Operation">Add (entered) or remove (exited).</param>
/// <param name="Identifiers">The profile's identifiers of the types the destination matches on, most trusted type first.</param>
/// <param name="Fields">The mapped profile fields (destination field → value: string, long, double, bool, DateTimeOffset or null).</param>
public sealed record OutgoingRecord(
    string Key, string Segment, long ProfileId, RecordOperation Operation, IReadOnlyList<ProfileIdentifier> Identifiers,
    IReadOnlyDictionary<string, object?> Fields);

/// <summary>
/// One request's worth of records, all with the same operation. <see cref="BatchId"/> is stable across retries and
/// restarts (the ledger keeps it with the records before the first attempt), so a destination that takes an
/// idempotency key can drop a repeat of a request it already applied.
/// </summary>
public sealed record DestinationBatch(string BatchId, string RunId, RecordOperation Operation, IReadOnlyList<OutgoingRecord> Records);

/// <summary>How one record of a batch fared.</summary>
public enum RecordStatus
{
    /// <summary>The destination acknowledged it.</summary>
    Delivered,

    /// <summary>Refused for good (invalid identifier, unknown record…): dead-lettered with the reason, never retried.</summary>
    Rejected,

    /// <summary>Failed for now (the destination said to try again): retried with the records still open.</summary>
    Retry,
}

/// <summary>One record's result, by its key.</summary>
public readonly record struct RecordResult(string Key, RecordStatus Status, string? Reason = null);

/// <summary>How a failed request is treated.</summary>
public enum FailureKind
{
    /// <summary>429, 5xx, a timeout, a dropped connection, an answer that cannot be read: retried with backoff.</summary>
    Transient,

    /// <summary>The request itself is refused (400 without per-record detail): its records are dead-lettered.</summary>
    Permanent,

    /// <summary>
    /// The destination cannot be used at all (credentials refused, audience missing): the worker stops for this
    /// destination and its records stay open for the next delivery, rather than dead-lettering everything.
    /// </summary>
    Fatal,
}

/// <summary>
/// A whole request failed. <see cref="FailureKind.Transient"/> failures are retried with backoff, after
/// <see cref="RetryAfter"/> when the destination said how long to wait; see <see cref="FailureKind"/> for the others.
/// </summary>
public sealed class DestinationException : Exception
{
    public DestinationException(string reason, FailureKind kind, string? detail = null, TimeSpan? retryAfter = null, Exception? inner = null)
        : base(detail is null ? reason : $"{reason}: {detail}", inner)
    {
        Reason = reason;
        Kind = kind;
        Detail = detail;
        RetryAfter = retryAfter;
    }

    public DestinationException(string reason, bool transient, TimeSpan? retryAfter = null, Exception? inner = null)
        : this(reason, transient ? FailureKind.Transient : FailureKind.Permanent, null, retryAfter, inner)
    {
    }

    public DestinationException() : this("destination failed", true) { }

    public DestinationException(string message) : this(message, true) { }

    public DestinationException(string message, Exception innerException) : this(message, true, null, innerException) { }

    /// <summary>A short, stable reason for reports (<c>http_429</c>, <c>http_503</c>, <c>timeout</c>, <c>invalid_token</c>…).</summary>
    public string Reason { get; }

    public FailureKind Kind { get; }

    public bool Transient => Kind == FailureKind.Transient;

    /// <summary>What the destination said (its error message, trimmed), for the dead-letter and the report.</summary>
    public string? Detail { get; }

    public TimeSpan? RetryAfter { get; }
}

/// <summary>
/// A destination's client: sends one batch and says what happened to each record. Implementations are thread-safe
/// (the worker sends several batches at once) and hold no delivery state of their own: the ledger does.
/// </summary>
public interface IDestination : IAsyncDisposable
{
    /// <summary>
    /// Sends <paramref name="batch"/>. Returns one result per record (a record missing from the results counts as
    /// <see cref="RecordStatus.Retry"/>), or throws <see cref="DestinationException"/> when the whole request failed.
    /// </summary>
    Task<IReadOnlyList<RecordResult>> SendAsync(DestinationBatch batch, CancellationToken cancellationToken);

    /// <summary>
    /// Called once every record of the run is final for this destination: a file export commits its file, an upload
    /// job starts. Throws like <see cref="SendAsync"/>; called again after a restart until it succeeds.
    /// </summary>
    Task CompleteAsync(string runId, CancellationToken cancellationToken);
}
