using Engine.Diagnostics;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using DuckDB.NET.Data;
using Engine.Benchmarks.Infrastructure;
using Engine.Identity;

namespace Engine.Benchmarks.Identity;

/// <summary>How the DuckDB peer runs: every setting that changes its speed is explicit and printed.</summary>
/// <param name="Threads">DuckDB's <c>threads</c>.</param>
/// <param name="MemoryLimit">DuckDB's <c>memory_limit</c> (e.g. <c>16GB</c>); beyond it DuckDB spills to <paramref name="TempDirectory"/>.</param>
/// <param name="TempDirectory">DuckDB's <c>temp_directory</c> (spill files).</param>
/// <param name="IncludePhone">Read <c>profiles.phone</c> as the phone type; off for the partition check (SQL cannot reproduce libphonenumber).</param>
internal sealed record DuckDbPeerOptions(int Threads, string MemoryLimit, string TempDirectory, bool IncludePhone = true)
{
    /// <summary>threads = processor count, memory_limit = 75% of physical memory (DuckDB's own default is 80%).</summary>
    public static DuckDbPeerOptions Default(string tempDirectory) =>
        new(Environment.ProcessorCount, DefaultMemoryLimit(), tempDirectory);

    /// <summary>75% of MemTotal (from /proc/meminfo), in whole GB; 4GB when it cannot be read.</summary>
    public static string DefaultMemoryLimit()
    {
        var total = ProcessMemory.PhysicalBytes();
        return total > 0 ? $"{Math.Max(1, (long)(total * 0.75 / (1L << 30)))}GB" : "4GB";
    }
}

/// <summary>What one run of the DuckDB peer measured.</summary>
internal sealed class DuckDbIdentityResult
{
    public double ReadNormaliseSeconds { get; set; }
    public double IdsEdgesSeconds { get; set; }
    public double PropagationSeconds { get; set; }
    public double TotalSeconds => ReadNormaliseSeconds + IdsEdgesSeconds + PropagationSeconds;

    /// <summary>Distinct raw identifier tuples (events: user_id, email, anonymous_id; profiles: customer_id, email, phone) that kept an identifier after normalisation.</summary>
    public long DistinctRows { get; set; }
    public long Identifiers { get; set; }

    /// <summary>Distinct undirected edges (the table holds each in both directions, twice this many rows).</summary>
    public long Edges { get; set; }
    public long Clusters { get; set; }

    /// <summary>Propagation passes run, the last being the one in which no label changed.</summary>
    public int Iterations { get; set; }

    /// <summary>Per pass: seconds and labels changed.</summary>
    public List<(double Seconds, long Changed)> Passes { get; } = [];

    /// <summary>The settings DuckDB reported back (threads, memory_limit, temp_directory, version).</summary>
    public Dictionary<string, string> Settings { get; } = [];
}

/// <summary>
/// Identity resolution done in DuckDB SQL the way warehouse-native tools do it (RudderStack Profiles' id stitcher,
/// Hightouch's identity resolution, the dbt "identity graph" pattern): normalise the identifier columns in SQL, build
/// a table of distinct identifiers with dense integer ids and a table of edges, then run iterative label propagation
/// — every node starts with its own id as label and takes the smallest label among itself and its neighbours, one
/// <c>CREATE TABLE … AS</c> per pass, driven by a loop in the host language until no label changes. The result is
/// the connected components; there are no per-profile limits (warehouse tools mostly have none, or apply them
/// afterwards), so this is the engine's stitching without its limits.
/// </summary>
/// <remarks>
/// <para><b>Normalisation</b> mirrors the engine's as far as SQL allows:</para>
/// <list type="bullet">
/// <item>ids (<c>customer_id</c> = events.user_id and profiles.customer_id; <c>anonymous_id</c>): trimmed of the same
/// white space the engine trims (ASCII and Unicode white space, zero-width space, BOM); empty → dropped.</item>
/// <item><c>email</c>: trimmed and lower-cased (DuckDB's <c>lower</c> is Unicode-aware like .NET's ToLowerInvariant;
/// the generated data is ASCII); valid only with exactly one '@', text on both sides and no white space.</item>
/// <item><c>phone</c>: an <b>approximation</b> of libphonenumber's E.164 with default region US: keep the digits;
/// a value starting with '+' becomes '+' and its digits (8–15 digits); '011' (the US international prefix) becomes
/// '+'; 11 digits starting with 1 become '+' and the digits; 10 digits (and 7, libphonenumber's local-only length)
/// become '+1' and the digits; anything else is invalid. libphonenumber also strips a national prefix written after
/// a country code (<c>+44 (0)7700…</c>), knows each country's possible lengths and reads letters (1-800-FLOWERS);
/// this does none of that, so phone identifiers (and the links through them) differ slightly.</item>
/// <item>blocklists: the engine's <see cref="DefaultBlocklists"/> exact values (taken from the engine's lists, compared
/// lower-cased) and its patterns, translated by hand: RE2 has no back-references, so "one repeated character"
/// (<c>a@a.com</c>) and "one repeated digit" (<c>+15555555555</c>) are written as string tests.</item>
/// </list>
/// <para><b>Edges</b>: each distinct normalised row links its identifiers as a star to its highest-priority one
/// (customer_id &gt; email &gt; phone &gt; anonymous_id), exactly as the engine's graph builder does; distinct edges are
/// stored in both directions, as label propagation needs them.</para>
/// </remarks>
internal sealed class DuckDbIdentityPeer : IDisposable
{
    /// <summary>Type ids: the index in <see cref="IdentityRules.Default"/>, so keys hash the same on both sides.</summary>
    public static readonly string[] TypeNames = ["customer_id", "email", "phone", "anonymous_id"];

    /// <summary>The patterns of <see cref="DefaultBlocklists"/> this peer translates; a change there needs a change here.</summary>
    private const int TranslatedEmailPatterns = 4, TranslatedPhonePatterns = 2;

    private readonly DuckDBConnection _connection;
    private readonly DuckDbPeerOptions _options;

    public DuckDbIdentityPeer(DuckDbPeerOptions options)
    {
        _options = options;
        if (DefaultBlocklists.EmailPatterns.Count != TranslatedEmailPatterns || DefaultBlocklists.PhonePatterns.Count != TranslatedPhonePatterns)
        {
            Console.Error.WriteLine("// warning: the engine's default blocklist patterns changed; DuckDbIdentityPeer's SQL translation may be out of date");
        }
        Directory.CreateDirectory(options.TempDirectory);
        _connection = new DuckDBConnection("Data Source=:memory:");
        _connection.Open();
        Execute($"SET threads = {options.Threads.ToString(CultureInfo.InvariantCulture)}");
        Execute($"SET memory_limit = {Literal(options.MemoryLimit)}");
        Execute($"SET temp_directory = {Literal(options.TempDirectory)}");
        // Insertion order is meaningless here (every table is a set); keeping it costs memory on large CTAS.
        Execute("SET preserve_insertion_order = false");
        foreach (var macro in Macros())
        {
            Execute(macro);
        }
    }

    public DuckDbPeerOptions Options => _options;

    public void Dispose() => _connection.Dispose();

    /// <summary>Runs the three steps on the generated data under <paramref name="dataDir"/> and returns what they measured.</summary>
    public DuckDbIdentityResult Run(string dataDir, Action<string>? log = null)
    {
        var result = new DuckDbIdentityResult();
        foreach (var name in new[] { "threads", "memory_limit", "temp_directory", "preserve_insertion_order" })
        {
            result.Settings[name] = Scalar<string>($"SELECT current_setting('{name}')::VARCHAR");
        }
        result.Settings["version"] = Scalar<string>("SELECT version()");
        var events = Literal(Path.Combine(dataDir, "events", "**", "*.parquet"));
        var profiles = Literal(Path.Combine(dataDir, "profiles", "**", "*.parquet"));
        var phone = _options.IncludePhone ? "phone_ok(phone_e164(p, d))" : "NULL::VARCHAR";

        // 1. read + normalise: the identifier tuples of the source rows, normalised. The raw tuples are made distinct
        //    first (events repeat their person's identifiers on every row), so each is normalised once; a second
        //    DISTINCT after normalising would remove only ~1% more and cost more than it saves downstream. Trimmed
        //    values are materialised before the checks: the check macros name their argument several times, and DuckDB
        //    would otherwise evaluate the trim (a regular expression) once per mention (2x slower at 1M people).
        var clock = Stopwatch.StartNew();
        var profileColumns = _options.IncludePhone ? "customer_id, email, phone" : "customer_id, email, NULL::VARCHAR AS phone";
        Execute($"""
            CREATE OR REPLACE TABLE rows_t AS
            SELECT trim_ws(user_id) AS c, lower(trim_ws(email)) AS e, NULL::VARCHAR AS p, NULL::VARCHAR AS d, trim_ws(anonymous_id) AS a
            FROM (SELECT DISTINCT user_id, email, anonymous_id FROM read_parquet({events}))
            UNION ALL
            SELECT trim_ws(customer_id), lower(trim_ws(email)), trim_ws(phone), regexp_replace(phone, '[^0-9]', '', 'g'), NULL::VARCHAR
            FROM (SELECT DISTINCT {profileColumns} FROM read_parquet({profiles}))
            """);
        Execute($"""
            CREATE OR REPLACE TABLE rows_n AS
            SELECT id_ok(c) AS c, email_ok(e) AS e, {phone} AS p, id_ok(a) AS a FROM rows_t
            """);
        Execute("DROP TABLE rows_t");
        result.ReadNormaliseSeconds = clock.Elapsed.TotalSeconds;
        result.DistinctRows = Scalar<long>("SELECT count(*) FROM rows_n WHERE c IS NOT NULL OR e IS NOT NULL OR p IS NOT NULL OR a IS NOT NULL");
        log?.Invoke($"duckdb read+normalise {result.ReadNormaliseSeconds,8:F2} s  {result.DistinctRows:N0} distinct raw identifier tuples");

        // 2. distinct identifiers with dense ids; each row's star to its highest-priority identifier, both directions.
        clock.Restart();
        Execute("""
            CREATE OR REPLACE TABLE ids AS
            SELECT (row_number() OVER () - 1)::INTEGER AS id, t, v FROM (
                SELECT DISTINCT t, v FROM (
                    SELECT 0::UTINYINT AS t, c AS v FROM rows_n WHERE c IS NOT NULL
                    UNION ALL SELECT 1::UTINYINT, e FROM rows_n WHERE e IS NOT NULL
                    UNION ALL SELECT 2::UTINYINT, p FROM rows_n WHERE p IS NOT NULL
                    UNION ALL SELECT 3::UTINYINT, a FROM rows_n WHERE a IS NOT NULL))
            """);
        Execute("""
            CREATE OR REPLACE TABLE row_ids AS
            SELECT ic.id AS c, ie.id AS e, ip.id AS p, ia.id AS a
            FROM rows_n r
            LEFT JOIN (SELECT id, v FROM ids WHERE t = 0) ic ON ic.v = r.c
            LEFT JOIN (SELECT id, v FROM ids WHERE t = 1) ie ON ie.v = r.e
            LEFT JOIN (SELECT id, v FROM ids WHERE t = 2) ip ON ip.v = r.p
            LEFT JOIN (SELECT id, v FROM ids WHERE t = 3) ia ON ia.v = r.a
            """);
        Execute("DROP TABLE rows_n");
        Execute("""
            CREATE OR REPLACE TABLE edges AS
            WITH star AS (
                -- an identifier links to the row's hub, the first non-null of c, e, p, a, unless it is the hub
                SELECT c AS hub, e AS other FROM row_ids WHERE c IS NOT NULL AND e IS NOT NULL
                UNION ALL SELECT coalesce(c, e), p FROM row_ids WHERE coalesce(c, e) IS NOT NULL AND p IS NOT NULL
                UNION ALL SELECT coalesce(c, e, p), a FROM row_ids WHERE coalesce(c, e, p) IS NOT NULL AND a IS NOT NULL),
            undirected AS (SELECT DISTINCT least(hub, other) AS x, greatest(hub, other) AS y FROM star)
            SELECT x AS src, y AS dst FROM undirected
            UNION ALL SELECT y, x FROM undirected
            """);
        Execute("DROP TABLE row_ids");
        result.IdsEdgesSeconds = clock.Elapsed.TotalSeconds;
        result.Identifiers = Scalar<long>("SELECT count(*) FROM ids");
        result.Edges = Scalar<long>("SELECT count(*) FROM edges") / 2;
        log?.Invoke($"duckdb ids+edges      {result.IdsEdgesSeconds,8:F2} s  {result.Identifiers:N0} identifiers, {result.Edges:N0} edges");

        // 3. label propagation over the nodes that have an edge (a node without one is its own cluster), until no
        //    label changes; then the clusters are counted.
        clock.Restart();
        Execute("CREATE OR REPLACE TABLE labels AS SELECT DISTINCT src AS id, src AS label FROM edges");
        var pass = Stopwatch.StartNew();
        while (true)
        {
            pass.Restart();
            Execute("""
                CREATE OR REPLACE TABLE labels_next AS
                SELECT l.id, least(l.label, m.label) AS label, l.label AS old
                FROM labels l
                JOIN (SELECT e.src AS id, min(n.label) AS label FROM edges e JOIN labels n ON n.id = e.dst GROUP BY e.src) m
                  ON m.id = l.id
                """);
            var changed = Scalar<long>("SELECT count(*) FROM labels_next WHERE label <> old");
            Execute("DROP TABLE labels");
            Execute("ALTER TABLE labels_next RENAME TO labels");
            result.Iterations++;
            result.Passes.Add((pass.Elapsed.TotalSeconds, changed));
            log?.Invoke($"duckdb pass {result.Iterations,3}        {pass.Elapsed.TotalSeconds,8:F2} s  {changed:N0} labels changed");
            if (changed == 0)
            {
                break;
            }
        }
        var linked = Scalar<long>("SELECT count(*) FROM labels");
        result.Clusters = Scalar<long>("SELECT count(DISTINCT label) FROM labels") + (result.Identifiers - linked);
        result.PropagationSeconds = clock.Elapsed.TotalSeconds;
        log?.Invoke($"duckdb propagation    {result.PropagationSeconds,8:F2} s  {result.Iterations} passes, {result.Clusters:N0} clusters");
        return result;
    }

    /// <summary>The result of the last <see cref="Run"/> as (identifier_type, identifier_value, cluster) rows.</summary>
    private const string ClustersQuery = """
        SELECT CASE i.t WHEN 0 THEN 'customer_id' WHEN 1 THEN 'email' WHEN 2 THEN 'phone' ELSE 'anonymous_id' END AS identifier_type,
               i.v AS identifier_value, coalesce(l.label, i.id)::BIGINT AS cluster
        FROM ids i LEFT JOIN labels l ON l.id = i.id
        """;

    /// <summary>Writes the last run's (identifier_type, identifier_value, cluster) to one Parquet file; returns the seconds taken.</summary>
    public double WriteClusters(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var clock = Stopwatch.StartNew();
        Execute($"COPY ({ClustersQuery}) TO {Literal(path)} (FORMAT parquet)");
        return clock.Elapsed.TotalSeconds;
    }

    /// <summary>
    /// Writes the last run's result the way the engine's <c>identity/</c> is read downstream: (identifier_type,
    /// identifier_value, profile_id) to <c><paramref name="folder"/>/part-0.parquet</c>, where a cluster's profile id is
    /// stable from night to night as long as its members are: the smallest hash of its (type, value) pairs (shifted to a
    /// positive BIGINT), not the dense id, which depends on the order the rows were read in. A hash collision between two
    /// clusters would give them one id; the end-to-end run's profile count check would catch it. Returns the seconds taken.
    /// </summary>
    public double WriteProfileIdentity(string folder)
    {
        Directory.CreateDirectory(folder);
        var clock = Stopwatch.StartNew();
        Execute($"""
            COPY (
                WITH c AS (
                    SELECT i.t, i.v, coalesce(l.label, i.id) AS cluster, hash(i.t, i.v) AS h
                    FROM ids i LEFT JOIN labels l ON l.id = i.id),
                k AS (SELECT cluster, (min(h) >> 1)::BIGINT AS profile_id FROM c GROUP BY cluster)
                SELECT CASE c.t WHEN 0 THEN 'customer_id' WHEN 1 THEN 'email' WHEN 2 THEN 'phone' ELSE 'anonymous_id' END AS identifier_type,
                       c.v AS identifier_value, k.profile_id
                FROM c JOIN k USING (cluster)
            ) TO {Literal(Path.Combine(folder, "part-0.parquet"))} (FORMAT parquet)
            """);
        return clock.Elapsed.TotalSeconds;
    }

    /// <summary>Drops the last run's tables (identifiers, edges, labels), releasing their memory.</summary>
    public void DropTables() => Execute("DROP TABLE IF EXISTS ids; DROP TABLE IF EXISTS edges; DROP TABLE IF EXISTS labels");

    /// <summary>Calls <paramref name="row"/> with (type id, canonical value, cluster) for every identifier of the last run.</summary>
    public void ReadClusters(Action<byte, string, long> row)
    {
        using var command = _connection.CreateCommand();
        command.CommandText = "SELECT i.t, i.v, coalesce(l.label, i.id)::BIGINT FROM ids i LEFT JOIN labels l ON l.id = i.id";
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            row(reader.GetByte(0), reader.GetString(1), reader.GetInt64(2));
        }
    }

    private void Execute(string sql)
    {
        using var command = _connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private T Scalar<T>(string sql)
    {
        using var command = _connection.CreateCommand();
        command.CommandText = sql;
        return (T)Convert.ChangeType(command.ExecuteScalar()!, typeof(T), CultureInfo.InvariantCulture);
    }

    private static string Literal(string text) => "'" + text.Replace("'", "''", StringComparison.Ordinal) + "'";

    private static string List(IEnumerable<string> values)
    {
        var builder = new StringBuilder();
        foreach (var value in values)
        {
            builder.Append(builder.Length == 0 ? "" : ", ").Append(Literal(value.ToLowerInvariant()));
        }
        return builder.ToString();
    }

    /// <summary>
    /// The characters the engine trims (IdentifierNormalizers.Trim), as an RE2 class: ASCII white space,
    /// Unicode white space (Rune.IsWhiteSpace: categories Zs/Zl/Zp and U+0085), the zero-width space and the
    /// byte-order mark. (A regular expression, because DuckDB's <c>trim(s, characters)</c> with a long character
    /// set is several times slower than RE2 here.)
    /// </summary>
    private const string WhiteSpaceClass = @"[\t-\r \x{85}\p{Z}\x{200B}\x{FEFF}]";

    /// <summary>White space an email may not contain (the engine: ASCII white space, or char.IsWhiteSpace for non-ASCII text).</summary>
    private const string InnerWhiteSpaceClass = @"[\t-\r \x{85}\p{Z}]";

    private static IEnumerable<string> Macros()
    {
        var idBlocked = List(DefaultBlocklists.Placeholders.Concat(DefaultBlocklists.IdValues));
        var emailBlocked = List(DefaultBlocklists.Placeholders.Concat(DefaultBlocklists.EmailValues));
        yield return $"CREATE OR REPLACE MACRO trim_ws(s) AS regexp_replace(s, '^{WhiteSpaceClass}+|{WhiteSpaceClass}+$', '', 'g')";
        // id: already trimmed; blocked values compare ignoring case.
        yield return $"CREATE OR REPLACE MACRO id_ok(v) AS CASE WHEN v <> '' AND lower(v) NOT IN ({idBlocked}) THEN v END";
        // email: already trimmed and lower-cased. The engine's patterns, the last one (back-reference) as string tests.
        yield return $$"""
            CREATE OR REPLACE MACRO email_ok(e) AS CASE WHEN
                e <> ''
                AND strlen(e) - strlen(replace(e, '@', '')) = 1 AND NOT starts_with(e, '@') AND NOT ends_with(e, '@')
                AND NOT regexp_matches(e, '{{InnerWhiteSpaceClass}}')
                AND e NOT IN ({{emailBlocked}})
                AND NOT regexp_matches(e, '^(test|noemail|no-email|nomail|none|no|null|nil|unknown|invalid|na|n/a)@|^(no-?reply|do-?not-?reply)@|@(example|test|invalid)\.(com|org|net)$')
                AND NOT (regexp_matches(e, '^[a-z0-9]+@[a-z0-9]+\.[a-z]+$')
                         AND ltrim(split_part(e, '@', 1), e[1]) = ''
                         AND ltrim(split_part(split_part(e, '@', 2), '.', 1), e[1]) = '')
            THEN e END
            """;
        // phone: p trimmed, d its digits; the E.164 approximation (see the class remarks).
        yield return """
            CREATE OR REPLACE MACRO phone_e164(p, d) AS CASE
                WHEN p = '' OR d = '' THEN NULL
                WHEN starts_with(p, '+') THEN CASE WHEN strlen(d) BETWEEN 8 AND 15 THEN '+' || d END
                WHEN starts_with(p, '011') THEN CASE WHEN strlen(d) BETWEEN 11 AND 18 THEN '+' || d[4:] END
                WHEN strlen(d) = 11 AND starts_with(d, '1') THEN '+' || d
                WHEN strlen(d) = 10 OR strlen(d) = 7 THEN '+1' || d
            END
            """;
        // The engine's phone patterns on the E.164 form: ^\+\d{1,3}?(\d)\1{6,}$ (after a 1-3 digit prefix, one digit
        // repeated 7+ times; RE2 has no back-reference) and the counting sequences (RE2 as is).
        yield return """
            CREATE OR REPLACE MACRO phone_repeated(x, k) AS
                strlen(x) - 1 - k >= 7 AND ltrim(x[k + 2:], x[k + 2]) = ''
            """;
        yield return """
            CREATE OR REPLACE MACRO phone_ok(x) AS CASE WHEN x IS NOT NULL
                AND NOT (phone_repeated(x, 1) OR phone_repeated(x, 2) OR phone_repeated(x, 3))
                AND NOT regexp_matches(x, '^\+\d{1,3}?(0?123456789|1234567890?|9876543210?)$')
            THEN x END
            """;
    }
}
