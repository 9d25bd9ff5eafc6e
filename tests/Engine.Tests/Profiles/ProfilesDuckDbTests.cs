using System.Globalization;
using Engine.Datasets;
using Engine.Runs;
using Engine.Storage;
using Engine.TestKit;
using Engine.Tests.Identity;
using Engine.Workspaces;
using Microsoft.Extensions.Logging.Abstractions;

namespace Engine.Tests.Profiles;

/// <summary>
/// The profiles stage against DuckDB on generated data (3,000 people, a year of events, with the generator's mess):
/// every trait equals the same aggregate written in SQL over the events joined to the run's <c>identity/</c> output —
/// DuckDB normalising the join keys itself (trim; email also lower-case), taking the profile of the row's
/// highest-priority identifier that has one — and every attribute equals a survivorship query over the CRM rows.
/// </summary>
public sealed class ProfilesDuckDbTests
{
    private static readonly DateTimeOffset AsOf = new(2026, 10, 1, 0, 0, 0, TimeSpan.Zero);

    // The identity normalisers trim Unicode white space (and U+200B, U+FEFF); DuckDB's trim() takes spaces only.
    private const string Space = @"[\s\x{0B}\x{85}\x{A0}\x{1680}\x{2000}-\x{200B}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}\x{FEFF}]";

    private static string Trim(string column) => $"regexp_replace({column}, '^{Space}+|{Space}+$', '', 'g')";

    private const string Rules = """
        identifier_types:
          customer_id: { normalizer: id, limit: 2 }
          name_postcode: { normalizer: composite, limit: 1 }
          email: { normalizer: email, limit: 5 }
          phone: { normalizer: phone, limit: 3, default_region: US }
          anonymous_id: { normalizer: id, shared_after: 1 }
        """;

    private const string ProfilesYaml = """
        attributes:
          - { source: profiles, updated_at: updated_at, columns: [loyalty_tier, subscription_status, country, created_at] }
        traits:
          - { name: orders, source: events, function: count, filter: { type: order_completed } }
          - { name: orders_90d, source: events, function: count, filter: { type: order_completed }, window: { last_days: 90 } }
          - { name: orders_prev_q, source: events, function: count, filter: { type: order_completed }, window: { from_days_ago: 180, to_days_ago: 90 } }
          - { name: ltv, source: events, function: sum, column: revenue, filter: { type: order_completed } }
          - { name: qty, source: events, function: sum, column: quantity, filter: { type: order_completed } }
          - { name: aov, source: events, function: avg, column: revenue, filter: { type: order_completed, where: [{ column: revenue, op: '>', value: 0 }] } }
          - { name: min_rev, source: events, function: min, column: revenue, filter: { type: order_completed } }
          - { name: max_rev, source: events, function: max, column: revenue }
          - { name: first_product, source: events, function: first, column: product_id, filter: { type: product_view } }
          - { name: last_product_30d, source: events, function: last, column: product_id, filter: { type: product_view }, window: { last_days: 30 } }
          - { name: first_rev, source: events, function: first, column: revenue }
          - { name: last_rev, source: events, function: last, column: revenue }
          - { name: products_30d, source: events, function: distinct_count, column: product_id, filter: { type: product_view }, window: { last_days: 30 } }
          - { name: devices, source: events, function: distinct_count, column: device }
          - { name: recency, source: events, function: recency_days }
          - { name: first_seen, source: events, function: first_seen }
          - { name: last_seen, source: events, function: last_seen }
          - { name: last_purchase, source: events, function: last_seen, filter: { type: order_completed } }
          - { name: first_open, source: events, function: min, column: ts, filter: { type: email_open } }
          - { name: opens_30d, source: events, function: count, filter: { type: email_open }, window: { last_days: 30 } }
          - { name: support, source: events, function: count, filter: { where: [{ column: type, op: in, value: [support_ticket_opened, support_ticket_resolved] }] } }
          - { name: opened_last_3, source: events, function: distinct_count, column: campaign_id, filter: { type: email_open, where: [{ column: campaign_id, op: in_latest, value: 3 }] } }
          - { name: opens_latest_5_30d, source: events, function: count, filter: { type: email_open, where: [{ column: campaign_id, op: in_latest, value: 5 }] }, window: { last_days: 30 } }
          - { name: orders_latest_2_quantities, source: events, function: count, filter: { type: order_completed, where: [{ column: quantity, op: in_latest, value: 2 }] } }
          - { name: other_with_product, source: events, function: count, filter: { where: [{ column: type, op: not_in, value: [page_view, product_view] }, { column: product_id, op: is_not_null }] } }
        """;

    /// <summary>Each trait's SQL over <c>w</c> (events with a profile, before as-of; <c>t</c> = ts in UTC microseconds), and how it is compared.</summary>
    private static readonly (string Name, string Sql, string Kind)[] Expected =
    [
        ("orders", "count(*) FILTER (WHERE type = 'order_completed')", "exact"),
        ("orders_90d", $"count(*) FILTER (WHERE type = 'order_completed' AND t >= {Ago(90)})", "exact"),
        ("orders_prev_q", $"count(*) FILTER (WHERE type = 'order_completed' AND t >= {Ago(180)} AND t < {Ago(90)})", "exact"),
        ("ltv", "sum(revenue) FILTER (WHERE type = 'order_completed')", "double"),
        ("qty", "sum(quantity) FILTER (WHERE type = 'order_completed')", "exact"),
        ("aov", "avg(revenue) FILTER (WHERE type = 'order_completed' AND revenue > 0)", "double"),
        ("min_rev", "min(revenue) FILTER (WHERE type = 'order_completed')", "exact"),
        ("max_rev", "max(revenue)", "exact"),
        ("first_product", "first(product_id ORDER BY t, product_id) FILTER (WHERE type = 'product_view' AND product_id IS NOT NULL)", "exact"),
        ("last_product_30d", $"first(product_id ORDER BY t DESC, product_id DESC) FILTER (WHERE type = 'product_view' AND product_id IS NOT NULL AND t >= {Ago(30)})", "exact"),
        ("first_rev", "first(revenue ORDER BY t, revenue) FILTER (WHERE revenue IS NOT NULL)", "exact"),
        ("last_rev", "first(revenue ORDER BY t DESC, revenue DESC) FILTER (WHERE revenue IS NOT NULL)", "exact"),
        ("products_30d", $"count(DISTINCT product_id) FILTER (WHERE type = 'product_view' AND t >= {Ago(30)})", "exact"),
        ("devices", "count(DISTINCT device)", "exact"),
        ("recency", $"({Micros(AsOf)} - max(t)) // 86400000000", "exact"),
        ("first_seen", "min(t)", "micros"),
        ("last_seen", "max(t)", "micros"),
        ("last_purchase", "max(t) FILTER (WHERE type = 'order_completed')", "micros"),
        ("first_open", "min(t) FILTER (WHERE type = 'email_open')", "micros"),
        ("opens_30d", $"count(*) FILTER (WHERE type = 'email_open' AND t >= {Ago(30)})", "exact"),
        ("support", "count(*) FILTER (WHERE type IN ('support_ticket_opened', 'support_ticket_resolved'))", "exact"),
        // in_latest: the N values first seen latest among the events passing the other conditions (all events before
        // as-of, with a profile or not; the window does not narrow the ranking), newest first, ties by the larger value.
        ("opened_last_3", "count(DISTINCT campaign_id) FILTER (WHERE type = 'email_open' AND campaign_id IN (SELECT v FROM latest_campaigns_3))", "exact"),
        ("opens_latest_5_30d", $"count(*) FILTER (WHERE type = 'email_open' AND t >= {Ago(30)} AND campaign_id IN (SELECT v FROM latest_campaigns_5))", "exact"),
        ("orders_latest_2_quantities", "count(*) FILTER (WHERE type = 'order_completed' AND quantity IN (SELECT v FROM latest_quantities_2))", "exact"),
        ("other_with_product", "count(*) FILTER (WHERE type NOT IN ('page_view', 'product_view') AND product_id IS NOT NULL)", "exact"),
    ];

    private static long Micros(DateTimeOffset time) => (time - DateTimeOffset.UnixEpoch).Ticks / 10;

    private static string Ago(int days) => (Micros(AsOf) - days * 86_400_000_000L).ToString(CultureInfo.InvariantCulture);

    [Fact]
    public async Task Traits_and_attributes_equal_DuckDB_over_the_identity_output()
    {
        using var dir = new TempDirectory("profiles-duckdb");
        var data = dir.Combine("data");
        await GeneratedWorkspace.GenerateAsync(data, 3_000, seed: 11);
        var root = dir.Combine("ws");
        void Write(string path, string text)
        {
            var full = Path.Combine(root, path);
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            File.WriteAllText(full, text);
        }
        Write("workspace.yaml", "name: generated\nversion: 1\noutput: output\n");
        Write("identity.yaml", Rules);
        Write("profiles.yaml", ProfilesYaml);
        Write("sources/events.yaml", Source("events", Path.Combine(data, GeneratedDatasets.EventsFolder), GeneratedDatasets.Events, "ts",
            "identifiers:\n  anonymous_id: anonymous_id\n  user_id: customer_id\n  email: email\n"));
        Write("sources/profiles.yaml", Source("profiles", Path.Combine(data, GeneratedDatasets.ProfilesFolder), GeneratedDatasets.Profiles, "updated_at",
            "identifiers:\n  customer_id: customer_id\n  email: email\n  phone: { type: phone, region_column: country }\ncomposite_identifiers:\n  name_postcode: [first_name, last_name, postcode]\n"));

        using var storage = new StorageResolver();
        var result = await new RunExecutor(storage, NullLogger.Instance).ExecuteAsync(WorkspaceLoader.Load(root),
            new RunOptions { RunId = "r1", AsOf = AsOf }, cancellationToken: TestContext.Current.CancellationToken);
        var run = Path.Combine(root, "output", "runs", "r1");
        var report = result.Manifest.Profiles!;

        using var db = DuckDb.Open();
        DuckDb.Execute(db, $"""
            CREATE TABLE ident AS SELECT identifier_type AS it, identifier_value AS iv, profile_id AS p
              FROM read_parquet('{Path.Combine(run, "identity", "*.parquet")}');
            CREATE TABLE ev AS
              SELECT e.*, epoch_us(e.ts) AS t, coalesce(c.p, m.p, a.p) AS pid
              FROM read_parquet('{Path.Combine(data, GeneratedDatasets.EventsFolder, "**", "*.parquet")}') e
              LEFT JOIN ident c ON c.it = 'customer_id' AND c.iv = {Trim("e.user_id")}
              LEFT JOIN ident m ON m.it = 'email' AND m.iv = lower({Trim("e.email")})
              LEFT JOIN ident a ON a.it = 'anonymous_id' AND a.iv = {Trim("e.anonymous_id")};
            CREATE TABLE w AS SELECT * FROM ev WHERE pid IS NOT NULL AND t < {Micros(AsOf)};
            CREATE TABLE crm AS
              SELECT r.*, epoch_us(r.updated_at) AS u, c.p AS pid
              FROM read_parquet('{Path.Combine(data, GeneratedDatasets.ProfilesFolder, "**", "*.parquet")}') r
              LEFT JOIN ident c ON c.it = 'customer_id' AND c.iv = {Trim("r.customer_id")};
            CREATE TABLE eng AS SELECT * FROM read_parquet('{Path.Combine(run, "profiles", "*.parquet")}');
            """);

        // The same rows read, and the same rows without a profile.
        Assert.Equal(DuckDb.Long(db, "SELECT count(*) FROM ev"), report.EventsRead);
        Assert.Equal(DuckDb.Long(db, "SELECT count(*) FROM ev WHERE pid IS NULL"), report.EventsWithoutProfile);
        Assert.True(report.EventsWithoutProfile > 0, "the generator's shared and junk values leave some events without a profile");
        // Every CRM row's customer id (its highest-priority identifier) has a profile, so joining on it alone is the rule.
        Assert.Equal(0, DuckDb.Long(db, "SELECT count(*) FROM crm WHERE pid IS NULL"));
        Assert.Equal(0, report.AttributeRowsWithoutProfile);

        // One row per non-null profile id.
        Assert.Equal(DuckDb.Long(db, "SELECT count(DISTINCT p) FROM ident WHERE p IS NOT NULL"), DuckDb.Long(db, "SELECT count(*) FROM eng"));
        Assert.Equal(0, DuckDb.Long(db, "SELECT count(*) FROM (SELECT DISTINCT p FROM ident WHERE p IS NOT NULL) i FULL JOIN eng ON eng.profile_id = i.p WHERE eng.profile_id IS NULL OR i.p IS NULL"));

        var traits = string.Join(",\n", Expected.Select(e => $"{e.Sql} AS {e.Name}"));
        string Latest(string column, string type, int n) => $"SELECT {column} AS v FROM ev WHERE type = '{type}' AND {column} IS NOT NULL AND t < {Micros(AsOf)} GROUP BY {column} ORDER BY min(t) DESC, {column} DESC LIMIT {n}";
        DuckDb.Execute(db, $"""
            CREATE TABLE latest_campaigns_3 AS {Latest("campaign_id", "email_open", 3)};
            CREATE TABLE latest_campaigns_5 AS {Latest("campaign_id", "email_open", 5)};
            CREATE TABLE latest_quantities_2 AS {Latest("quantity", "order_completed", 2)};
            CREATE TABLE expected AS
              SELECT i.p AS profile_id, {traits}
              FROM (SELECT DISTINCT p FROM ident WHERE p IS NOT NULL) i LEFT JOIN w ON w.pid = i.p
              GROUP BY i.p;
            CREATE TABLE crm_before AS SELECT * FROM crm WHERE u IS NULL OR u < {Micros(AsOf)};
            CREATE TABLE expected_attributes AS
              SELECT i.p AS profile_id,
                first(loyalty_tier ORDER BY u DESC NULLS LAST, loyalty_tier DESC) FILTER (WHERE loyalty_tier IS NOT NULL) AS loyalty_tier,
                first(subscription_status ORDER BY u DESC NULLS LAST, subscription_status DESC) FILTER (WHERE subscription_status IS NOT NULL) AS subscription_status,
                first(country ORDER BY u DESC NULLS LAST, country DESC) FILTER (WHERE country IS NOT NULL) AS country,
                first(epoch_us(created_at) ORDER BY u DESC NULLS LAST, created_at DESC) FILTER (WHERE created_at IS NOT NULL) AS created_at
              FROM (SELECT DISTINCT p FROM ident WHERE p IS NOT NULL) i LEFT JOIN crm_before c ON c.pid = i.p
              GROUP BY i.p;
            """);

        var mismatches = new List<string>();
        foreach (var (name, _, kind) in Expected)
        {
            var differs = kind switch
            {
                "double" => $"(e.{name} IS NULL) <> (x.{name} IS NULL) OR abs(e.{name} - x.{name}) > 1e-9 * greatest(1, abs(x.{name}))",
                "micros" => $"epoch_us(e.{name}) IS DISTINCT FROM x.{name}",
                _ => $"e.{name} IS DISTINCT FROM x.{name}",
            };
            Check(name, "expected", differs);
        }
        foreach (var attribute in new[] { "loyalty_tier", "subscription_status", "country" })
        {
            Check(attribute, "expected_attributes", $"e.{attribute} IS DISTINCT FROM x.{attribute}");
        }
        Check("created_at", "expected_attributes", "epoch_us(e.created_at) IS DISTINCT FROM x.created_at");
        Assert.True(mismatches.Count == 0, string.Join("\n", mismatches));

        // The manifest names the values each in_latest filter resolved to, newest first, as DuckDB ranks them.
        Assert.Equal<string?>(DuckDb.Strings(db, Latest("campaign_id", "email_open", 3)), report.LatestValues!["opened_last_3"]);
        Assert.Equal<string?>(DuckDb.Strings(db, Latest("quantity", "order_completed", 2)), report.LatestValues["orders_latest_2_quantities"]);

        // Not vacuous: the traits and attributes hold values.
        Assert.True(DuckDb.Long(db, "SELECT count(*) FROM eng WHERE orders_90d > 0") > 100);
        Assert.True(DuckDb.Long(db, "SELECT count(*) FROM eng WHERE orders_prev_q > 0") > 100);
        Assert.True(DuckDb.Long(db, "SELECT count(*) FROM eng WHERE loyalty_tier IS NOT NULL") > 1000);
        Assert.True(DuckDb.Long(db, "SELECT count(*) FROM eng WHERE opened_last_3 = 3") > 10);
        Assert.True(DuckDb.Long(db, "SELECT count(*) FROM eng WHERE opened_last_3 BETWEEN 1 AND 2") > 10);
        Assert.True(report.RowsAfterAsOf > 0);

        void Check(string name, string table, string differs)
        {
            var bad = DuckDb.Long(db, $"SELECT count(*) FROM eng e JOIN {table} x USING (profile_id) WHERE {differs}");
            if (bad > 0)
            {
                using var command = db.CreateCommand();
                command.CommandText = $"SELECT profile_id, CAST(e.{name} AS VARCHAR), CAST(x.{name} AS VARCHAR) FROM eng e JOIN {table} x USING (profile_id) WHERE {differs} LIMIT 3";
                using var reader = command.ExecuteReader();
                var examples = new List<string>();
                while (reader.Read())
                {
                    examples.Add($"profile {reader.GetValue(0)}: engine {reader.GetValue(1)}, DuckDB {reader.GetValue(2)}");
                }
                mismatches.Add($"{name}: {bad} profiles differ ({string.Join("; ", examples)})");
            }
        }
    }

    private static string Source(string name, string location, DataSchema schema, string timestamp, string identifiers)
    {
        var text = new System.Text.StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"name: {name}\nlocation: {location}\nformat: parquet\ntimestamp: {timestamp}\ncolumns:\n");
        foreach (var column in schema.Columns)
        {
            text.Append(CultureInfo.InvariantCulture, $"  {column.Name}: {DataSchema.Describe(column.Type)}\n");
        }
        return text.Append(identifiers).ToString();
    }
}
