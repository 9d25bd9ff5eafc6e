using System.Diagnostics;
using System.Globalization;
using DuckDB.NET.Data;
using Engine.Benchmarks.Identity;
using Engine.Datasets;

namespace Engine.Benchmarks.Profiles;

/// <summary>One timed step of the DuckDB side.</summary>
internal sealed record DuckDbStep(string Name, double Seconds);

/// <summary>
/// The profiles stage of <c>engine init</c>'s example workspace written in DuckDB SQL, the way a warehouse-native tool
/// computes traits: every event mapped to a profile by joining its identifier columns (normalised in SQL) to the run's
/// <c>identity/</c> output, then one <c>GROUP BY profile_id</c> computing every trait with <c>FILTER</c>, plus the
/// attribute survivorship query over the CRM rows, joined to every profile id and written to Parquet.
/// </summary>
/// <remarks>
/// <para><b>Mapping.</b> As <c>ProfilesDuckDbTests</c> does it: the engine's normalisers trim Unicode white space
/// (DuckDB's <c>trim()</c> takes spaces only, hence the regular expression) and lower-case emails; an event belongs to
/// the profile of its highest-priority identifier that has one: customer_id (user_id), then email, then anonymous_id
/// (<c>coalesce</c> in that order). A CRM row belongs to its customer_id's profile: in generated data every customer id
/// has one (the check compares the rows without a profile with the engine's count, and every attribute).</para>
/// <para><b>Ties.</b> <c>last</c> takes the value at the latest event, the larger value at the same instant; an
/// attribute the most recently updated non-NULL value, a NULL <c>updated_at</c> older than any, the larger value on a
/// tie: <c>arg_max</c> over a (time, value) struct, which orders lexicographically.</para>
/// <para><b>Three forms.</b> One statement (<c>COPY (… GROUP BY …) TO</c>: DuckDB pipelines read, join and
/// aggregate); the same after mapping each distinct identifier tuple once; and a staged form (each step a temp table)
/// that separates the GROUP BY from the read and the mapping. The scale run credits DuckDB with the fastest.</para>
/// </remarks>
internal sealed class DuckDbTraitsPeer : IDisposable
{
    private const long MicrosPerDay = 86_400_000_000L;

    // The identity normalisers trim Unicode white space (and U+200B, U+FEFF); DuckDB's trim() takes spaces only.
    // trim(x, characters) with these characters listed gives the same keys but mapped the events about 8x slower (20,000 people).
    private const string Space = @"[\s\x{0B}\x{85}\x{A0}\x{1680}\x{2000}-\x{200B}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}\x{FEFF}]";

    private readonly DuckDBConnection _connection;
    private readonly long _asOf;
    private readonly string _events;
    private readonly string _crm;
    private readonly string _identity;

    /// <summary>The three latest email campaigns as a SQL list, found by <see cref="RankLatestCampaigns"/> before the traits.</summary>
    private string _latestCampaigns = "NULL";

    public DuckDbTraitsPeer(DuckDbPeerOptions options, string dataDir, string identityDir, DateTimeOffset asOf)
    {
        Directory.CreateDirectory(options.TempDirectory);
        _connection = new DuckDBConnection("Data Source=:memory:");
        _connection.Open();
        Execute($"SET threads = {options.Threads.ToString(CultureInfo.InvariantCulture)}");
        Execute($"SET memory_limit = {Literal(options.MemoryLimit)}");
        Execute($"SET temp_directory = {Literal(options.TempDirectory)}");
        // The output is sorted explicitly; the order of intermediate rows means nothing.
        Execute("SET preserve_insertion_order = false");
        _asOf = (asOf.ToUniversalTime() - DateTimeOffset.UnixEpoch).Ticks / 10;
        _events = Literal(Path.Combine(dataDir, GeneratedDatasets.EventsFolder, "**", "*.parquet"));
        _crm = Literal(Path.Combine(dataDir, GeneratedDatasets.ProfilesFolder, "**", "*.parquet"));
        _identity = Literal(Path.Combine(identityDir, "*.parquet"));
    }

    public void Dispose() => _connection.Dispose();

    /// <summary>The peer's database, for work that continues on its tables (the end-to-end run's segments).</summary>
    public DuckDBConnection Connection => _connection;

    /// <summary>Drops the identity table the traits were mapped with, releasing its memory.</summary>
    public void DropIdentity() => Execute("DROP TABLE IF EXISTS ident");

    /// <summary>threads, memory_limit, temp_directory and version as DuckDB reports them.</summary>
    public Dictionary<string, string> Settings()
    {
        var settings = new Dictionary<string, string>();
        foreach (var name in new[] { "threads", "memory_limit", "temp_directory", "preserve_insertion_order" })
        {
            settings[name] = Scalar($"SELECT current_setting('{name}')::VARCHAR");
        }
        settings["version"] = Scalar("SELECT version()");
        return settings;
    }

    /// <summary>The traits of the example workspace, in profiles.yaml's order: name, SQL over the mapped events, and whether no event means 0.</summary>
    private IEnumerable<(string Name, string Sql, bool Count)> Traits()
    {
        string Ago(int days) => (_asOf - days * MicrosPerDay).ToString(CultureInfo.InvariantCulture);
        var asOf = _asOf.ToString(CultureInfo.InvariantCulture);
        yield return ("lifetime_value", "sum(revenue) FILTER (WHERE type = 'order_completed')", false);
        yield return ("orders_90d", $"count(*) FILTER (WHERE type = 'order_completed' AND t >= {Ago(90)})", true);
        yield return ("orders_previous_quarter", $"count(*) FILTER (WHERE type = 'order_completed' AND t >= {Ago(180)} AND t < {Ago(90)})", true);
        yield return ("average_order_value", "avg(revenue) FILTER (WHERE type = 'order_completed' AND revenue > 0)", false);
        yield return ("product_views_7d", $"count(*) FILTER (WHERE type = 'product_view' AND t >= {Ago(7)})", true);
        yield return ("products_viewed_30d", $"count(DISTINCT product_id) FILTER (WHERE type = 'product_view' AND t >= {Ago(30)})", true);
        yield return ("last_product_viewed", "arg_max(product_id, struct_pack(t := t, v := product_id)) FILTER (WHERE type = 'product_view' AND product_id IS NOT NULL)", false);
        yield return ("last_purchase_at", "max(ts) FILTER (WHERE type = 'order_completed')", false);
        yield return ("last_cart_at", "max(ts) FILTER (WHERE type = 'add_to_cart')", false);
        yield return ("email_opens_30d", $"count(*) FILTER (WHERE type = 'email_open' AND t >= {Ago(30)})", true);
        yield return ("email_opens_previous_30d", $"count(*) FILTER (WHERE type = 'email_open' AND t >= {Ago(60)} AND t < {Ago(30)})", true);
        yield return ("opened_last_3_campaigns", $"count(DISTINCT campaign_id) FILTER (WHERE type = 'email_open' AND campaign_id IN ({_latestCampaigns}))", true);
        yield return ("page_views_14d", $"count(*) FILTER (WHERE type = 'page_view' AND t >= {Ago(14)})", true);
        yield return ("page_views_30d", $"count(*) FILTER (WHERE type = 'page_view' AND t >= {Ago(30)})", true);
        yield return ("page_views_180d", $"count(*) FILTER (WHERE type = 'page_view' AND t >= {Ago(180)})", true);
        yield return ("page_views_previous_30d", $"count(*) FILTER (WHERE type = 'page_view' AND t >= {Ago(60)} AND t < {Ago(30)})", true);
        yield return ("support_tickets_90d", $"count(*) FILTER (WHERE type = 'support_ticket_opened' AND t >= {Ago(90)})", true);
        yield return ("tickets_resolved_90d", $"count(*) FILTER (WHERE type = 'support_ticket_resolved' AND t >= {Ago(90)})", true);
        yield return ("days_since_last_seen", $"({asOf} - max(t)) // {MicrosPerDay}", false);
        yield return ("first_seen_at", "min(ts)", false);
        yield return ("last_seen_at", "max(ts)", false);
    }

    private static readonly string[] AttributeColumns = ["loyalty_tier", "subscription_status", "country", "created_at"];

    private static string Trim(string column) => $"regexp_replace({column}, '^{Space}+|{Space}+$', '', 'g')";

    /// <summary>Every event with its time in UTC microseconds and its profile (NULL: none).</summary>
    private string MappedEvents() => $"""
        SELECT e.ts, epoch_us(e.ts) AS t, e.type, e.product_id, e.revenue, e.campaign_id, coalesce(c.p, m.p, a.p) AS pid
        FROM read_parquet({_events}) e
        LEFT JOIN ident c ON c.it = 'customer_id' AND c.iv = {Trim("e.user_id")}
        LEFT JOIN ident m ON m.it = 'email' AND m.iv = lower({Trim("e.email")})
        LEFT JOIN ident a ON a.it = 'anonymous_id' AND a.iv = {Trim("e.anonymous_id")}
        """;

    /// <summary>Every CRM row with its update time in microseconds and its customer id's profile.</summary>
    private string MappedCrm() => $"""
        SELECT r.loyalty_tier, r.subscription_status, r.country, r.created_at, epoch_us(r.updated_at) AS u, c.p AS pid
        FROM read_parquet({_crm}) r
        LEFT JOIN ident c ON c.it = 'customer_id' AND c.iv = {Trim("r.customer_id")}
        """;

    private string TraitAggregate(string events)
    {
        var traits = string.Join(",\n  ", Traits().Select(t => $"{t.Sql} AS {t.Name}"));
        return $"SELECT pid,\n  {traits}\nFROM {events} WHERE pid IS NOT NULL AND t < {_asOf.ToString(CultureInfo.InvariantCulture)} GROUP BY pid";
    }

    private string AttributeAggregate(string crm)
    {
        // A NULL updated_at is older than any dated row: the smallest key.
        var attributes = string.Join(",\n  ", AttributeColumns.Select(c =>
            $"arg_max({c}, struct_pack(u := coalesce(u, -9223372036854775807), v := {c})) FILTER (WHERE {c} IS NOT NULL) AS {c}"));
        return $"SELECT pid,\n  {attributes}\nFROM {crm} WHERE pid IS NOT NULL AND (u IS NULL OR u < {_asOf.ToString(CultureInfo.InvariantCulture)}) GROUP BY pid";
    }

    /// <summary>Every profile id of identity/ (ascending, as the engine writes them), its attributes, then its traits (counts 0 without events).</summary>
    private string Final(string attributes, string traits)
    {
        var columns = new List<string> { "i.p AS profile_id" };
        columns.AddRange(AttributeColumns.Select(c => $"a.{c}"));
        columns.AddRange(Traits().Select(t => t.Count ? $"coalesce(x.{t.Name}, 0) AS {t.Name}" : $"x.{t.Name}"));
        return $"""
            SELECT {string.Join(", ", columns)}
            FROM (SELECT DISTINCT p FROM ident WHERE p IS NOT NULL) i
            LEFT JOIN {attributes} a ON a.pid = i.p
            LEFT JOIN {traits} x ON x.pid = i.p
            ORDER BY i.p
            """;
    }

    /// <summary>
    /// opened_last_3_campaigns' in_latest filter: the three campaigns whose first open before as-of is latest (ties:
    /// the larger id), over every event. Run once and inlined into the GROUP BY as a constant list, the cheapest form
    /// for DuckDB (the engine ranks them in a scan of its own too).
    /// </summary>
    private DuckDbStep RankLatestCampaigns()
    {
        var clock = Stopwatch.StartNew();
        var campaigns = new List<string>();
        using (var command = _connection.CreateCommand())
        {
            command.CommandText = $"""
                SELECT campaign_id FROM read_parquet({_events})
                WHERE type = 'email_open' AND campaign_id IS NOT NULL AND epoch_us(ts) < {_asOf.ToString(CultureInfo.InvariantCulture)}
                GROUP BY campaign_id ORDER BY min(ts) DESC, campaign_id DESC LIMIT 3
                """;
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                campaigns.Add(Literal(reader.GetString(0)));
            }
        }
        _latestCampaigns = campaigns.Count == 0 ? "NULL" : string.Join(", ", campaigns);
        return new("rank latest campaigns", clock.Elapsed.TotalSeconds);
    }

    private double ReadIdentity()
    {
        Execute("DROP TABLE IF EXISTS ident");
        var clock = Stopwatch.StartNew();
        Execute($"CREATE TEMP TABLE ident AS SELECT identifier_type AS it, identifier_value AS iv, profile_id AS p FROM read_parquet({_identity})");
        return clock.Elapsed.TotalSeconds;
    }

    /// <summary>DuckDB's best form: the identity output read into a table, then one statement from the Parquet sources to the written result.</summary>
    public List<DuckDbStep> RunOneStatement(string outputPath)
    {
        var steps = new List<DuckDbStep> { new("read identity", ReadIdentity()), RankLatestCampaigns() };
        var clock = Stopwatch.StartNew();
        Execute($"""
            COPY (
            WITH ev AS ({MappedEvents()}),
                 crm AS ({MappedCrm()}),
                 tr AS ({TraitAggregate("ev")}),
                 attrs AS ({AttributeAggregate("crm")})
            {Final("attrs", "tr")}
            ) TO {Literal(outputPath)} (FORMAT parquet)
            """);
        steps.Add(new("read+map+GROUP BY+write", clock.Elapsed.TotalSeconds));
        return steps;
    }

    /// <summary>
    /// As <see cref="RunOneStatement"/>, but each distinct raw (user_id, email, anonymous_id) tuple is normalised and
    /// mapped once (events repeat their person's identifiers; the identity peer does the same), then the events are
    /// joined to those keys on the raw values: a second scan of three columns instead of a regular expression per row.
    /// </summary>
    /// <param name="outputPath">The Parquet file the profiles are written to.</param>
    /// <param name="keepTable">When given, the profiles are also kept as this table (in <see cref="Connection"/>), for
    /// segments to be evaluated over, as the engine keeps its profile table in memory for its segments stage.</param>
    public List<DuckDbStep> RunDistinctKeys(string outputPath, string? keepTable = null)
    {
        var steps = new List<DuckDbStep> { new("read identity", ReadIdentity()), RankLatestCampaigns() };
        var clock = Stopwatch.StartNew();
        // The events join the keys on a 64-bit hash of the raw tuple, not on its three strings: at 10M people the keys
        // are 100M tuples, a build side that spilled over 40 GB to disk as strings and is 1.6 GB as (hash, pid). A
        // collision would give an event two profiles, and the night's check (same members, same sums) would fail.
        Execute($"""
            CREATE OR REPLACE TEMP TABLE keys AS
            SELECT hash(k.user_id, k.email, k.anonymous_id) AS h, coalesce(c.p, m.p, a.p) AS pid
            FROM (SELECT DISTINCT user_id, email, anonymous_id FROM read_parquet({_events})) k
            LEFT JOIN ident c ON c.it = 'customer_id' AND c.iv = {Trim("k.user_id")}
            LEFT JOIN ident m ON m.it = 'email' AND m.iv = lower({Trim("k.email")})
            LEFT JOIN ident a ON a.it = 'anonymous_id' AND a.iv = {Trim("k.anonymous_id")}
            """);
        steps.Add(new("map distinct keys", clock.Elapsed.TotalSeconds));
        clock.Restart();
        var query = $"""
            WITH ev AS (
                SELECT e.ts, epoch_us(e.ts) AS t, e.type, e.product_id, e.revenue, e.campaign_id, k.pid
                FROM read_parquet({_events}) e
                LEFT JOIN keys k ON hash(e.user_id, e.email, e.anonymous_id) = k.h),
                 crm AS ({MappedCrm()}),
                 tr AS ({TraitAggregate("ev")}),
                 attrs AS ({AttributeAggregate("crm")})
            {Final("attrs", "tr")}
            """;
        if (keepTable is null)
        {
            Execute($"COPY ({query}) TO {Literal(outputPath)} (FORMAT parquet)");
            steps.Add(new("read+join keys+GROUP BY+write", clock.Elapsed.TotalSeconds));
        }
        else
        {
            Execute($"CREATE OR REPLACE TABLE {keepTable} AS {query}");
            steps.Add(new("read+join keys+GROUP BY", clock.Elapsed.TotalSeconds));
            clock.Restart();
            Execute($"COPY {keepTable} TO {Literal(outputPath)} (FORMAT parquet)");
            steps.Add(new("write", clock.Elapsed.TotalSeconds));
        }
        Execute("DROP TABLE keys");
        return steps;
    }

    /// <summary>The same work a step at a time (temp tables), to time the GROUP BY apart from reading and mapping; also counts the rows read.</summary>
    public (List<DuckDbStep> Steps, long Events, long EventsWithoutProfile, long CrmRows, long CrmWithoutProfile) RunStaged(string outputPath)
    {
        var steps = new List<DuckDbStep> { new("read identity", ReadIdentity()), RankLatestCampaigns() };
        void Step(string name, string sql)
        {
            var clock = Stopwatch.StartNew();
            Execute(sql);
            steps.Add(new(name, clock.Elapsed.TotalSeconds));
        }
        Step("read+map events", $"CREATE OR REPLACE TEMP TABLE ev AS {MappedEvents()}");
        Step("read+map CRM", $"CREATE OR REPLACE TEMP TABLE crm AS {MappedCrm()}");
        Step("GROUP BY traits", $"CREATE OR REPLACE TEMP TABLE tr AS {TraitAggregate("ev")}");
        Step("GROUP BY attributes", $"CREATE OR REPLACE TEMP TABLE attrs AS {AttributeAggregate("crm")}");
        Step("join+sort+write", $"COPY ({Final("attrs", "tr")}) TO {Literal(outputPath)} (FORMAT parquet)");
        var events = Long("SELECT count(*) FROM ev");
        var eventsWithout = Long("SELECT count(*) FROM ev WHERE pid IS NULL");
        var crm = Long("SELECT count(*) FROM crm");
        var crmWithout = Long("SELECT count(*) FROM crm WHERE pid IS NULL");
        Execute("DROP TABLE ev; DROP TABLE crm; DROP TABLE tr; DROP TABLE attrs");
        return (steps, events, eventsWithout, crm, crmWithout);
    }

    private void Execute(string sql)
    {
        using var command = _connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private string Scalar(string sql)
    {
        using var command = _connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToString(command.ExecuteScalar(), CultureInfo.InvariantCulture) ?? "";
    }

    private long Long(string sql) => long.Parse(Scalar(sql), CultureInfo.InvariantCulture);

    private static string Literal(string text) => $"'{text.Replace("'", "''", StringComparison.Ordinal)}'";
}
