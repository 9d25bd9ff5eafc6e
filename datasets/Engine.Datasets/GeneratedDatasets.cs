using Engine.Storage;

namespace Engine.Datasets;

/// <summary>
/// The contract of what <see cref="SyntheticGenerator"/> writes: four Parquet datasets under one folder. Column
/// names and types are a public interface (DESIGN.md, "Data contracts"); columns may be added, never renamed.
/// </summary>
/// <remarks>
/// <para><b>Canonical identifier forms</b>, used by <see cref="Truth"/>:</para>
/// <list type="bullet">
/// <item><c>email</c>: trimmed and lower-cased (invariant). Plus-addressed and different addresses stay distinct identifiers.</item>
/// <item><c>phone</c>: E.164 as libphonenumber formats it when the value is parsed with the customer's country as the
/// default region (consent rows store phones in international form, so they parse without one); a value
/// libphonenumber cannot parse at all (<c>n/a</c>) keeps its trimmed text.</item>
/// <item><c>customer_id</c> (the profiles' <c>customer_id</c> and the events' <c>user_id</c>) and <c>anonymous_id</c>: trimmed.</item>
/// </list>
/// Empty (or whitespace-only) values are not identifiers and are absent from <see cref="Truth"/>.
/// </remarks>
public static class GeneratedDatasets
{
    /// <summary>Folder of <see cref="Events"/> under the output location.</summary>
    public const string EventsFolder = "events";

    /// <summary>Folder of <see cref="Profiles"/> under the output location.</summary>
    public const string ProfilesFolder = "profiles";

    /// <summary>Folder of <see cref="Consent"/> under the output location.</summary>
    public const string ConsentFolder = "consent";

    /// <summary>Folder of <see cref="Truth"/> under the output location.</summary>
    public const string TruthFolder = "truth";

    /// <summary>
    /// Web, app, email and support events, one row each. <c>user_id</c> is the CRM <c>customer_id</c> once the visitor
    /// has logged in; <c>email</c> appears on identify-type events (signup, login, guest checkout, email engagement,
    /// support). Rows are grouped by person, not sorted by time.
    /// </summary>
    public static DataSchema Events { get; } = new(
    [
        new("event_id", ColumnType.String, Required: true),
        new("ts", ColumnType.Timestamp, Required: true),
        new("type", ColumnType.String, Required: true),
        new("anonymous_id", ColumnType.String),
        new("user_id", ColumnType.String),
        new("email", ColumnType.String),
        new("product_id", ColumnType.String),
        new("revenue", ColumnType.Double),
        new("order_id", ColumnType.String),
        new("quantity", ColumnType.Int64),
        new("campaign_id", ColumnType.String),
        new("ticket_id", ColumnType.String),
        new("device", ColumnType.String),
        new("detail", ColumnType.String),
    ]);

    /// <summary>
    /// CRM customer records. A customer has one row per change (<c>updated_at</c> = history); the same person may
    /// also exist under a second <c>customer_id</c> with small differences (a duplicate record).
    /// </summary>
    public static DataSchema Profiles { get; } = new(
    [
        new("customer_id", ColumnType.String, Required: true),
        new("email", ColumnType.String),
        new("phone", ColumnType.String),
        new("loyalty_tier", ColumnType.String),
        new("subscription_status", ColumnType.String),
        new("country", ColumnType.String),
        new("created_at", ColumnType.Timestamp),
        new("updated_at", ColumnType.Timestamp),
        new("first_name", ColumnType.String),
        new("last_name", ColumnType.String),
        new("postcode", ColumnType.String),
    ]);

    /// <summary>
    /// Consent granted and revoked per identifier and channel (<c>email</c>, <c>sms</c>, <c>ads</c>) over time;
    /// <c>identifier_value</c> is stored as the capturing system received it (untrimmed, mixed case, formatted phones).
    /// </summary>
    public static DataSchema Consent { get; } = new(
    [
        new("identifier_type", ColumnType.String, Required: true),
        new("identifier_value", ColumnType.String),
        new("channel", ColumnType.String, Required: true),
        new("status", ColumnType.String, Required: true),
        new("ts", ColumnType.Timestamp, Required: true),
        new("source", ColumnType.String),
    ]);

    /// <summary>
    /// Ground truth, one row per distinct (<c>identifier_type</c>, canonical <c>identifier_value</c>) found anywhere in
    /// the other three datasets. <c>person_id</c> is the simulated person it belongs to (NULL for junk values and for
    /// values shared by several people); <c>linkable_id</c> (unique across the data set, NULL where
    /// <c>person_id</c> is) names the connected component of the identifier within its person's own co-occurrence
    /// graph: two identifiers are linked when they appear on the same event or profile row, junk and shared values
    /// left out (a consent row carries a single identifier, so it adds identifiers but no links). It is what a perfect resolver could merge; <c>person_id</c> is what is true.
    /// <c>kind</c> is <c>person</c>, <c>bot</c> (crawlers: they have their own <c>person_id</c>, and since each
    /// crawler session drops its cookie their anonymous ids are mostly singletons), <c>shared</c> or <c>junk</c>.
    /// </summary>
    public static DataSchema Truth { get; } = new(
    [
        new("identifier_type", ColumnType.String, Required: true),
        new("identifier_value", ColumnType.String, Required: true),
        new("person_id", ColumnType.Int64),
        new("linkable_id", ColumnType.Int64),
        new("kind", ColumnType.String, Required: true),
    ]);

    /// <summary>High-cardinality columns per dataset: written without dictionary encoding (see <see cref="ParquetWriteOptions.PlainColumns"/>).</summary>
    internal static ParquetWriteOptions EventsWriteOptions { get; } = Plain("event_id", "anonymous_id", "user_id", "email", "order_id", "ticket_id");

    internal static ParquetWriteOptions ProfilesWriteOptions { get; } = Plain("customer_id", "email", "phone", "postcode");

    internal static ParquetWriteOptions ConsentWriteOptions { get; } = Plain("identifier_value");

    internal static ParquetWriteOptions TruthWriteOptions { get; } = Plain("identifier_value", "person_id", "linkable_id");

    private static ParquetWriteOptions Plain(params string[] columns) => new() { PlainColumns = new HashSet<string>(columns, StringComparer.Ordinal) };
}

/// <summary>Column ordinals of <see cref="GeneratedDatasets.Events"/>.</summary>
internal static class EventColumns
{
    public const int EventId = 0, Ts = 1, Type = 2, AnonymousId = 3, UserId = 4, Email = 5, ProductId = 6, Revenue = 7,
        OrderId = 8, Quantity = 9, CampaignId = 10, TicketId = 11, Device = 12, Detail = 13;
}

/// <summary>Column ordinals of <see cref="GeneratedDatasets.Profiles"/>.</summary>
internal static class ProfileColumns
{
    public const int CustomerId = 0, Email = 1, Phone = 2, LoyaltyTier = 3, SubscriptionStatus = 4, Country = 5,
        CreatedAt = 6, UpdatedAt = 7, FirstName = 8, LastName = 9, Postcode = 10;
}

/// <summary>Column ordinals of <see cref="GeneratedDatasets.Consent"/>.</summary>
internal static class ConsentColumns
{
    public const int IdentifierType = 0, IdentifierValue = 1, Channel = 2, Status = 3, Ts = 4, Source = 5;
}

/// <summary>Column ordinals of <see cref="GeneratedDatasets.Truth"/>.</summary>
internal static class TruthColumns
{
    public const int IdentifierType = 0, IdentifierValue = 1, PersonId = 2, LinkableId = 3, Kind = 4;
}
