namespace Engine.Connectors.Destinations;

/// <summary>
/// What each destination type documents and needs: its name in YAML, the largest request it accepts, its rate limit,
/// what it matches on, whether it takes messages (quiet hours, frequency caps), and its settings and credentials.
/// A destination file may lower the batch size and rate; it cannot raise the batch size past the documented maximum.
/// </summary>
public sealed record DestinationTypeInfo(
    DestinationType Type,
    string Name,
    int MaxBatchSize,
    RateLimit DefaultRateLimit,
    IReadOnlyList<string> DefaultIdentifyBy,
    ConsentRule DefaultConsent,
    string? DefaultChannel,
    IReadOnlyList<string> RequiredSettings,
    IReadOnlyList<string> OptionalSettings,
    IReadOnlyList<string> RequiredCredentials,
    IReadOnlyList<SyncMode> Modes)
{
    public static IReadOnlyList<DestinationTypeInfo> All { get; } =
    [
        // Files: no remote limit; a "request" is a chunk of rows appended to the run's file.
        new(DestinationType.File, "file", 100_000, new(1_000, 1, 1_000), ["customer_id", "email"], ConsentRule.None, null,
            ["path"], ["format"], [], [SyncMode.Mirror, SyncMode.AddOnly, SyncMode.Upsert]),
        // The webhook contract is ours (README): up to 1,000 records per POST.
        new(DestinationType.Webhook, "webhook", 1_000, new(10, 1, 10), ["customer_id", "email"], ConsentRule.Required, null,
            ["url"], [], ["secret"], [SyncMode.Mirror, SyncMode.AddOnly, SyncMode.Upsert]),
        // Meta: POST/DELETE /{audience_id}/users, at most 10,000 users per request; hashed email and phone.
        new(DestinationType.MetaCustomAudiences, "meta_custom_audiences", 10_000, new(5, 1, 5), ["email", "phone"], ConsentRule.Required, "ads",
            ["audience_id"], ["url"], ["access_token"], [SyncMode.Mirror, SyncMode.AddOnly]),
        // Google Ads: offline user data jobs, up to 100,000 identifiers per AddOperations request. Developer tokens were
        // sunset on 2026-09-09 (the header is optional and ignored since), so the token is optional here.
        new(DestinationType.GoogleCustomerMatch, "google_customer_match", 100_000, new(5, 1, 5), ["email", "phone"], ConsentRule.Required, "ads",
            ["customer_id", "user_list_id"], ["url", "login_customer_id"], ["access_token"], [SyncMode.Mirror, SyncMode.AddOnly])
        {
            OptionalCredentials = ["developer_token"],
        },
        // Braze /users/track: 75 attribute objects per request; 3,000 requests per 3 seconds.
        new(DestinationType.Braze, "braze", 75, new(1_000, 1, 1_000), ["customer_id"], ConsentRule.Required, "email",
            ["url"], [], ["api_key"], [SyncMode.Mirror, SyncMode.AddOnly, SyncMode.Upsert]),
        // HubSpot-style batch upsert: 100 records per request, 100 requests per 10 seconds (burst).
        new(DestinationType.Crm, "crm", 100, new(100, 10, 100), ["email"], ConsentRule.None, null,
            ["url", "object"], [], ["access_token"], [SyncMode.Mirror, SyncMode.AddOnly, SyncMode.Upsert]),
        new(DestinationType.Postgres, "postgres", 5_000, new(1_000, 1, 1_000), [], ConsentRule.None, null,
            ["table"], [], ["connection"], [SyncMode.Mirror, SyncMode.AddOnly, SyncMode.Upsert]),
    ];

    /// <summary>Credentials a destination file may name but need not.</summary>
    public IReadOnlyList<string> OptionalCredentials { get; init; } = [];

    public static DestinationTypeInfo Of(DestinationType type) => All.First(t => t.Type == type);

    public static DestinationTypeInfo? Find(string name) => All.FirstOrDefault(t => t.Name == name);
}
