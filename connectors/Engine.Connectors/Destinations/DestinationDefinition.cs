namespace Engine.Connectors.Destinations;

/// <summary>The kinds of destination a workspace can declare (<c>type:</c> in <c>destinations/&lt;name&gt;.yaml</c>).</summary>
public enum DestinationType
{
    /// <summary>CSV or Parquet files per run, on the local file system or S3.</summary>
    File,

    /// <summary>JSON POSTs, HMAC-signed, with an idempotency key per request.</summary>
    Webhook,

    /// <summary>Meta Marketing API: Custom Audience users (hashed identifiers, 10,000 per request).</summary>
    MetaCustomAudiences,

    /// <summary>Google Ads Customer Match through offline user data jobs (hashed identifiers, consent fields).</summary>
    GoogleCustomerMatch,

    /// <summary>Braze <c>/users/track</c> (75 attribute objects per request).</summary>
    Braze,

    /// <summary>A CRM batch upsert in HubSpot's style (100 records per request, a burst limit per 10 seconds).</summary>
    Crm,

    /// <summary>Rows upserted into a PostgreSQL table.</summary>
    Postgres,
}

/// <summary>How membership changes reach the destination.</summary>
public enum SyncMode
{
    /// <summary>Entries are added and exits removed: the destination mirrors the segment.</summary>
    Mirror,

    /// <summary>Entries are added; exits are left alone (recorded as skipped, not sent).</summary>
    AddOnly,

    /// <summary>Entries upsert the profile's mapped fields (with the segments it belongs to); exits upsert the removal.</summary>
    Upsert,
}

/// <summary>Whether consent is needed to send (entries; exits and removals are always sent).</summary>
public enum ConsentRule
{
    /// <summary>Sent only when an identifier of the profile holds a grant for the channel and none a revocation.</summary>
    Required,

    /// <summary>Sent unless an identifier of the profile holds a revocation for the channel.</summary>
    RevocationOnly,

    /// <summary>No consent check (first-party systems such as a warehouse table).</summary>
    None,
}

/// <summary>A token bucket: <see cref="Requests"/> per <see cref="PerSeconds"/>, bursts up to <see cref="Burst"/>.</summary>
public sealed record RateLimit(int Requests, double PerSeconds, int Burst)
{
    public double PerSecond => Requests / PerSeconds;
}

/// <summary>Retries of transient failures: exponential backoff with jitter, <c>Retry-After</c> honoured.</summary>
public sealed record RetrySettings(int Attempts, TimeSpan BaseDelay, TimeSpan MaxDelay)
{
    public static RetrySettings Default { get; } = new(8, TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(60));
}

/// <summary>At most <see cref="Sends"/> deliveries per profile and channel in any <see cref="Window"/>.</summary>
public sealed record FrequencyCap(int Sends, TimeSpan Window);

/// <summary>No sends between <see cref="Start"/> and <see cref="End"/> in the profile's time zone (the span may cross midnight).</summary>
public sealed record QuietHours(TimeOnly Start, TimeOnly End)
{
    public bool Contains(TimeOnly local) => Start <= End ? local >= Start && local < End : local >= Start || local < End;
}

/// <summary>One destination of a workspace: <c>destinations/&lt;name&gt;.yaml</c>.</summary>
public sealed class DestinationDefinition
{
    public required string Name { get; init; }

    /// <summary>The file, relative to the workspace (for messages).</summary>
    public required string File { get; init; }

    public string Description { get; init; } = "";

    public required DestinationType Type { get; init; }

    /// <summary>The segments whose members this destination receives.</summary>
    public required IReadOnlyList<string> Segments { get; init; }

    public SyncMode Mode { get; init; } = SyncMode.Mirror;

    /// <summary>The consent channel (<c>email</c>, <c>sms</c>, <c>ads</c>…); null when <see cref="Consent"/> is none.</summary>
    public string? Channel { get; init; }

    public ConsentRule Consent { get; init; } = ConsentRule.Required;

    /// <summary>The identifier types (of the identity rules) the destination matches profiles on, most trusted first.</summary>
    public required IReadOnlyList<string> IdentifyBy { get; init; }

    /// <summary>Destination field → profile column, in file order.</summary>
    public IReadOnlyList<(string Field, string Column)> Fields { get; init; } = [];

    /// <summary>Records per request (at most the destination's documented maximum).</summary>
    public required int BatchSize { get; init; }

    public required RateLimit RateLimit { get; init; }

    /// <summary>Requests in flight at once.</summary>
    public int Concurrency { get; init; } = 4;

    public RetrySettings Retry { get; init; } = RetrySettings.Default;

    /// <summary>One request's time limit; a request that takes longer is a transient failure.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(30);

    public FrequencyCap? FrequencyCap { get; init; }

    public QuietHours? QuietHours { get; init; }

    /// <summary>The control group held out of every segment of this destination (never sent), and the outcomes it is measured on; null: none.</summary>
    public Holdouts.HoldoutSettings? Holdout { get; init; }

    /// <summary>Type-specific settings (<c>url</c>, <c>audience_id</c>, <c>format</c>…), as written.</summary>
    public IReadOnlyDictionary<string, string> Settings { get; init; } = new Dictionary<string, string>();

    /// <summary>Credential name → the environment variable holding it (values are never in the file).</summary>
    public IReadOnlyDictionary<string, string> Credentials { get; init; } = new Dictionary<string, string>();

    public string? Setting(string name) => Settings.TryGetValue(name, out var value) ? value : null;
}
