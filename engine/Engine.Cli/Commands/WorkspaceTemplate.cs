using System.Text;
using Engine.Datasets;
using Engine.Storage;

namespace Engine.Cli.Commands;

/// <summary>
/// The example workspace <c>engine init</c> writes: sources mapped to what <c>engine generate</c> writes (the
/// contract in DESIGN.md), identifier columns typed as email, phone, customer_id and anonymous_id plus a name and
/// postcode composite, the identity rules that reach the accuracy targets on the generator's data, explained, the
/// profile attributes and traits, and the segments users ask for first.
/// </summary>
internal static class WorkspaceTemplate
{
    /// <summary>The destination <c>engine init --webhook</c> adds.</summary>
    public const string WebhookDestination = "messaging_webhook";

    /// <summary>The environment variable its shared secret is read from.</summary>
    public const string WebhookSecretVariable = "MESSAGING_WEBHOOK_SECRET";

    /// <summary>
    /// The files of the workspace, relative path → content; with <paramref name="webhookUrl"/>, a webhook destination
    /// posting there too (left out otherwise: a webhook without a receiver only fails).
    /// </summary>
    public static IReadOnlyList<(string Path, string Content)> Files(string name, string dataLocation, string? webhookUrl = null)
    {
        var files = Files(name, dataLocation).ToList();
        if (webhookUrl is not null)
        {
            files.Add(($"destinations/{WebhookDestination}.yaml", $$"""
                # A webhook: signed JSON POSTs to a service of your own, here the company's messaging service, which
                # writes to people as they enter and leave these audiences. The contract (README, "Webhook
                # destinations"): up to 1,000 records per POST, an Idempotency-Key per batch (a batch sent again is
                # applied once) and an HMAC-SHA256 signature under a shared secret, read from the environment variable
                # named below, never written here. `make run` starts a local receiver for it
                # (connectors/Engine.WebhookReceiver) and sets the variable.
                name: {{WebhookDestination}}
                description: Cart abandoners and at-risk subscribers to the messaging service, as they enter and leave.
                type: webhook
                segments: [cart_abandoners, at_risk]
                mode: mirror
                channel: email
                consent: required
                identify_by: [customer_id, email]
                fields: { tier: loyalty_tier, churn_score: churn_score, last_cart_at: last_cart_at }
                settings: { url: "{{webhookUrl}}" }
                credentials: { secret: {{WebhookSecretVariable}} }

                """));
        }
        return files;
    }

    private static IReadOnlyList<(string Path, string Content)> Files(string name, string dataLocation)
    {
        string At(string folder) => $"{dataLocation.TrimEnd('/')}/{folder}";

        return
        [
            ("workspace.yaml", $"""
                # An activation engine workspace. Keep this folder under version control, like a dbt project:
                # sources/ says where the data is, segments/ the audiences. Secrets never go here; destinations
                # read credentials from environment variables.
                name: {name}
                version: 1
                # Where runs are written: a folder relative to this one, an absolute path, or s3://bucket/prefix.
                output: output

                """),
            ("identity.yaml", """
                # Identity rules: which identifier types link records into one person, and how.
                # Types are listed in priority order, highest first. Links are stitched in that order (a link ranks
                # as its less trusted end), so when two links contradict each other the less trusted one loses.
                # Sources map their columns to these names.
                identifier_types:
                  # The CRM's key (the events' user_id too). Two: a customer may have a duplicate CRM record (a store
                  # sign-up, a re-registration); the name below decides whether two records are one person.
                  customer_id: { normalizer: id, limit: 2 }
                  # Given name + surname + postcode from the CRM (sources/profiles.yaml, composite_identifiers), letters
                  # and digits only, lower-cased. One per profile: this is what keeps two family members who share an
                  # email address apart (their names differ), while a duplicate record with the same name joins. It
                  # comes before email so that the names are in place when the email links are judged.
                  name_postcode: { normalizer: composite, limit: 1 }
                  # Trimmed and lower-cased. strip_plus_tags (ann+news@x.com -> ann@x.com) and gmail_dots
                  # (a.nn@gmail.com -> ann@gmail.com) link more addresses, but also some that are not the same
                  # person; they are off here. A person rarely has more than a few addresses.
                  email: { normalizer: email, limit: 5, strip_plus_tags: false, gmail_dots: false }
                  # E.164 through libphonenumber; numbers written without a country code are read in default_region.
                  phone: { normalizer: phone, limit: 3, default_region: US }
                  # Cookies and device ids: many per person. One seen with the identifiers of more than one person
                  # (more than 1 profile formed by the types above: a family tablet, a shop kiosk) is shared:
                  # reported, and not used to link.
                  anonymous_id: { normalizer: id, shared_after: 1 }
                blocklist:
                  # Built-in placeholders never link anything: null, unknown, n/a, test@test.com, 0000000000,
                  # the all-zero UUID and similar. Add your own values (exact, case-insensitive) or
                  # regular-expression patterns per type, e.g. your company's own addresses.
                  defaults: true
                  # email: ["orders@example-shop.com"]
                  # patterns: { email: ["@example-shop\\.com$"] }

                """),
            ("profiles.yaml", """
                # The profile table: one row per person (profile_id), with CRM attributes and computed traits.
                # Segments are conditions over these columns. Only data before the run's as-of time counts, and
                # windows are half-open, counted back from as-of: last_days: 90 is as_of - 90 days <= ts < as_of,
                # { from_days_ago: 180, to_days_ago: 90 } is as_of - 180 days <= ts < as_of - 90 days.
                #
                # Attributes: per column, the most recently updated non-null value among the person's CRM rows wins
                # (ties: the larger value). With several sources, `survivorship: priority` prefers them in list order.
                attributes:
                  - source: profiles
                    updated_at: updated_at
                    columns: [loyalty_tier, subscription_status, country, created_at]

                # Traits: function over the matching events of a source, per person. Functions: count, sum, min, max,
                # avg, first, last, distinct_count (need a column except count), recency_days, first_seen, last_seen.
                # count and distinct_count are 0 without matching events; the others are NULL.
                # filter: column: value (or [values]), and `where:` comparisons { column, op, value } with op one of
                # = != < <= > >= in not_in is_null is_not_null, or in_latest N: among the column's N latest values
                # (ranked by the first matching event that carries each, before as-of).
                traits:
                  - name: lifetime_value
                    description: Revenue of every completed order.
                    source: events
                    function: sum
                    column: revenue
                    filter: { type: order_completed }
                  - name: orders_90d
                    source: events
                    function: count
                    filter: { type: order_completed }
                    window: { last_days: 90 }
                  - name: orders_previous_quarter
                    description: Orders 90 to 180 days ago; with orders_90d, a falling-off signal.
                    source: events
                    function: count
                    filter: { type: order_completed }
                    window: { from_days_ago: 180, to_days_ago: 90 }
                  - name: average_order_value
                    source: events
                    function: avg
                    column: revenue
                    filter: { type: order_completed, where: [{ column: revenue, op: '>', value: 0 }] }
                  - name: product_views_7d
                    source: events
                    function: count
                    filter: { type: product_view }
                    window: { last_days: 7 }
                  - name: products_viewed_30d
                    source: events
                    function: distinct_count
                    column: product_id
                    filter: { type: product_view }
                    window: { last_days: 30 }
                  - name: last_product_viewed
                    source: events
                    function: last
                    column: product_id
                    filter: { type: product_view }
                  - name: last_purchase_at
                    source: events
                    function: last_seen
                    filter: { type: order_completed }
                  - name: last_cart_at
                    description: The last add to cart, for abandoned-cart audiences (compare with last_purchase_at).
                    source: events
                    function: last_seen
                    filter: { type: add_to_cart }
                  - name: email_opens_30d
                    source: events
                    function: count
                    filter: { type: email_open }
                    window: { last_days: 30 }
                  - name: email_opens_previous_30d
                    source: events
                    function: count
                    filter: { type: email_open }
                    window: { from_days_ago: 60, to_days_ago: 30 }
                  - name: opened_last_3_campaigns
                    description: How many of the three latest email campaigns (by first open) the person opened; 3 is all of them.
                    source: events
                    function: distinct_count
                    column: campaign_id
                    filter: { type: email_open, where: [{ column: campaign_id, op: in_latest, value: 3 }] }
                  - name: page_views_14d
                    source: events
                    function: count
                    filter: { type: page_view }
                    window: { last_days: 14 }
                  - name: page_views_30d
                    source: events
                    function: count
                    filter: { type: page_view }
                    window: { last_days: 30 }
                  - name: page_views_180d
                    description: A person's usual level of activity, against which the last weeks are judged.
                    source: events
                    function: count
                    filter: { type: page_view }
                    window: { last_days: 180 }
                  - name: page_views_previous_30d
                    description: Page views 30 to 60 days ago; with page_views_30d, whether activity is falling.
                    source: events
                    function: count
                    filter: { type: page_view }
                    window: { from_days_ago: 60, to_days_ago: 30 }
                  - name: support_tickets_90d
                    source: events
                    function: count
                    filter: { type: support_ticket_opened }
                    window: { last_days: 90 }
                  - name: tickets_resolved_90d
                    description: With support_tickets_90d, tickets left unresolved (which drive churn).
                    source: events
                    function: count
                    filter: { type: support_ticket_resolved }
                    window: { last_days: 90 }
                  - name: days_since_last_seen
                    source: events
                    function: recency_days
                  - name: first_seen_at
                    source: events
                    function: first_seen
                  - name: last_seen_at
                    source: events
                    function: last_seen

                """),
            (".gitignore", "output/\ndata/\n"),
            ("sources/events.yaml", Source(
                "events", "Web and app events: page and product views, carts, orders, email engagement, support tickets.",
                At(GeneratedDatasets.EventsFolder), GeneratedDatasets.Events, "ts",
                [("anonymous_id", "anonymous_id"), ("user_id", "customer_id"), ("email", "email")])),
            ("sources/profiles.yaml", Source(
                "profiles", "CRM customer records; a customer may have several rows over time (the newest updated_at wins).",
                At(GeneratedDatasets.ProfilesFolder), GeneratedDatasets.Profiles, "updated_at",
                [("customer_id", "customer_id"), ("email", "email"), ("phone", "{ type: phone, region_column: country }")],
                [("name_postcode", ["first_name", "last_name", "postcode"])])),
            ("sources/consent.yaml", Source(
                "consent", "Consent granted and revoked per identifier and channel; the latest record per identifier and channel holds.",
                At(GeneratedDatasets.ConsentFolder), GeneratedDatasets.Consent, "ts", [])),
            ("segments/existing_customers.yaml", """
                name: existing_customers
                description: Everyone who has bought; suppress them from acquisition campaigns.
                condition: last_purchase_at IS NOT NULL

                """),
            ("segments/browsed_not_bought.yaml", """
                name: browsed_not_bought
                description: Viewed products in the last 7 days and bought nothing in that time.
                condition: |
                  product_views_7d > 0
                  AND (last_purchase_at IS NULL OR last_purchase_at < now() - INTERVAL 7 DAY)

                """),
            ("segments/vip.yaml", """
                name: vip
                description: Gold-tier customers with a lifetime value over 500.
                condition: loyalty_tier = 'gold' AND lifetime_value > 500

                """),
            ("segments/cart_abandoners.yaml", """
                name: cart_abandoners
                description: Put something in the cart in the last 24 hours and have not bought since.
                condition: |
                  last_cart_at >= now() - INTERVAL 24 HOUR
                  AND (last_purchase_at IS NULL OR last_purchase_at < last_cart_at)

                """),
            ("segments/engaged_repeat_buyers.yaml", """
                name: engaged_repeat_buyers
                description: Bought at least twice in the last 90 days, opened each of the last three email campaigns, lifetime value over 300.
                condition: orders_90d >= 2 AND opened_last_3_campaigns = 3 AND lifetime_value > 300

                """),
            ("segments/win_back.yaml", """
                name: win_back
                description: Customers not seen for 60 days, VIPs left to their account managers.
                condition: in_segment('existing_customers') AND days_since_last_seen > 60 AND NOT in_segment('vip')

                """),
            ("segments/loyal_members.yaml", """
                name: loyal_members
                description: Members of the two top loyalty tiers whose subscription is active.
                condition: loyalty_tier IN ('gold', 'platinum') AND subscription_status = 'active'

                """),
            ("segments/lapsed_subscribers.yaml", """
                name: lapsed_subscribers
                description: Customers whose subscription was cancelled; a win-back audience.
                condition: subscription_status = 'cancelled'

                """),
            ("segments/at_risk.yaml", """
                name: at_risk
                description: Active subscribers in the top tenth of churn scores (likeliest to cancel in the next 30 days); for a save offer.
                # churn_score is a calibrated probability (a few percent for most subscribers); the decile ranks it
                # among tonight's scored profiles, so the audience keeps its size as the base rate moves.
                condition: subscription_status = 'active' AND churn_decile = 10

                """),
            ("destinations/email_audiences.yaml", """
                # A destination: which segments go where, and how. This one exports email audiences as CSV files
                # (output/exports/email_audiences/<run_id>/part-*.csv), one part per batch, for an email tool's upload.
                # `engine deliver` sends each run's changes: the first delivery of a segment sends all its members,
                # later ones what entered and exited. Consent is checked when each batch is sent, from the consent
                # source's latest rows: without a grant for the channel (or with a revocation) a member is
                # suppressed, and the report says so.
                name: email_audiences
                description: Email audiences for the weekly campaigns, as CSV uploads.
                type: file
                segments: [cart_abandoners, browsed_not_bought, at_risk, engaged_repeat_buyers]
                mode: mirror
                channel: email
                consent: required
                identify_by: [email]
                fields: { first_seen: first_seen_at, tier: loyalty_tier, churn_decile: churn_decile }
                batch_size: 5000
                frequency_cap: { sends: 3, per_days: 7 }
                settings: { path: exports/email_audiences, format: csv }

                """),
            ("destinations/crm_export.yaml", """
                # First-party export of loyalty audiences with profile fields, as Parquet (no consent check: the data
                # stays in the company's own systems).
                name: crm_export
                type: file
                segments: [vip, loyal_members, win_back]
                mode: upsert
                consent: none
                identify_by: [customer_id]
                fields: { lifetime_value: lifetime_value, orders_90d: orders_90d, tier: loyalty_tier, last_seen_at: last_seen_at }
                settings: { path: exports/crm, format: parquet }

                """),
            ("models/churn.yaml", """
                # A churn model, declared without C#. The run trains it when it has no version yet (or this file or
                # profiles.yaml changed), validates it, and scores every profile in the population each night; its
                # score and decile become the profile columns churn_score and churn_decile, which segments use.
                name: churn
                description: Probability that an active subscriber cancels in the next 30 days.
                # Who is trained on and scored: a condition over the profile columns (as of the cutoff in training).
                population: subscription_status = 'active'
                label:
                  # A forecast label: true when the condition holds of the profile 30 days after a cutoff. Training
                  # takes features as of a cutoff and labels 30 days later (at five cutoffs, see validation), and
                  # validates on the last 30 days (features as of as-of minus 30, labels at as-of): point in time,
                  # nothing from after a cutoff.
                  horizon_days: 30
                  condition: subscription_status = 'cancelled'
                # Profile columns: numbers as they are, dates and times as days before the cutoff, strings one-hot.
                features: [orders_90d, orders_previous_quarter, lifetime_value, average_order_value, page_views_14d, page_views_30d,
                           page_views_previous_30d, page_views_180d, email_opens_30d, email_opens_previous_30d, support_tickets_90d,
                           tickets_resolved_90d, days_since_last_seen, last_purchase_at, first_seen_at, created_at,
                           loyalty_tier, country]
                # Beyond a million training examples, a uniform sample of about that many (at 10M people there are 7.4M:
                # the fit takes 15 s instead of 117 s, for a validation ROC AUC 0.001 lower).
                trainer: { algorithm: lightgbm, trees: 300, leaves: 8, learning_rate: 0.03, min_examples_per_leaf: 50, max_examples: 1000000 }
                # Train on the five 30-day windows before the validation window (five times the examples).
                validation: { training_windows: 5 }
                # A new version replaces the one scoring only if its validation ROC AUC is not worse by more than this.
                promotion: { auc_tolerance: 0.01 }
                outputs: { score: churn_score, decile: churn_decile }

                """),
        ];
    }

    private static string Source(
        string name, string description, string location, DataSchema schema, string timestamp, (string Column, string Type)[] identifiers,
        (string Type, string[] Columns)[]? composites = null)
    {
        var text = new StringBuilder();
        text.Append("name: ").Append(name).Append('\n');
        text.Append("description: \"").Append(description).Append("\"\n");
        text.Append("# A folder (hive-style partitions allowed) or s3://bucket/prefix; relative paths are taken from the workspace folder.\n");
        text.Append("location: ").Append(location).Append('\n');
        text.Append("format: parquet\n");
        text.Append("timestamp: ").Append(timestamp).Append('\n');
        text.Append("columns:\n");
        foreach (var column in schema.Columns)
        {
            var type = DataSchema.Describe(column.Type);
            text.Append("  ").Append(column.Name).Append(": ")
                .Append(column.Required ? $"{{ type: {type}, required: true }}" : type).Append('\n');
        }
        if (identifiers.Length > 0)
        {
            text.Append("# Columns that identify a person, and the identifier type each carries.\n");
            if (identifiers.Any(i => i.Type.Contains("region_column", StringComparison.Ordinal)))
            {
                text.Append("# A phone's region_column names the column whose country (ISO 3166) reads numbers written without a\n");
                text.Append("# country code; without it, identity.yaml's default_region does.\n");
            }
            text.Append("identifiers:\n");
            foreach (var (column, type) in identifiers)
            {
                text.Append("  ").Append(column).Append(": ").Append(type).Append('\n');
            }
        }
        if (composites is { Length: > 0 })
        {
            text.Append("# Identifier types built from several columns, in order (defined in identity.yaml).\n");
            text.Append("composite_identifiers:\n");
            foreach (var (type, columns) in composites)
            {
                text.Append("  ").Append(type).Append(": [").Append(string.Join(", ", columns)).Append("]\n");
            }
        }
        return text.ToString();
    }
}
