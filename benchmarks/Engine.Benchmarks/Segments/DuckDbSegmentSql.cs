using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using DuckDB.NET.Data;
using Engine.TestKit;

namespace Engine.Benchmarks.Segments;

/// <summary>
/// Segments and their deltas done the SQL way, shared by the segments scale run and the end-to-end run: members by one
/// <c>WHERE</c> per segment over a profile table, deltas by <c>EXCEPT</c> both ways against the previous night's
/// membership. Conditions are SQL boolean expressions with DuckDB's meaning (DESIGN.md); only the engine's functions
/// that name the run's context are rewritten (<see cref="Translate"/>).
/// </summary>
internal static partial class DuckDbSegmentSql
{
    /// <summary>
    /// A workspace condition for DuckDB as of <paramref name="asOf"/>: <c>now()</c> / <c>current_timestamp</c> become the
    /// as-of instant (a <c>TIMESTAMPTZ</c> literal; profile timestamps are UTC), <c>current_date</c> its UTC date, and
    /// <c>in_segment('x')</c> the other segment's condition, as membership: <c>coalesce((x), false)</c> (a profile whose
    /// condition is NULL is not a member, so <c>NOT in_segment('x')</c> holds for it).
    /// </summary>
    public static string Translate(string condition, IReadOnlyDictionary<string, string> conditions, DateTimeOffset asOf, int depth = 0)
    {
        if (depth > conditions.Count)
        {
            throw new ArgumentException("in_segment() references form a cycle");
        }
        var instant = $"TIMESTAMPTZ '{asOf.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss.ffffff", CultureInfo.InvariantCulture)}+00'";
        var text = NowPattern().Replace(condition, instant);
        text = CurrentDatePattern().Replace(text, $"DATE '{asOf.UtcDateTime.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)}'");
        return InSegmentPattern().Replace(text, m =>
            $"coalesce(({Translate(conditions[m.Groups[1].Value], conditions, asOf, depth + 1)}), false)");
    }

    /// <summary>The segments <paramref name="condition"/> names with <c>in_segment</c>.</summary>
    public static IEnumerable<string> References(string condition) => InSegmentPattern().Matches(condition).Select(m => m.Groups[1].Value);

    /// <summary>
    /// <c>CREATE TABLE <paramref name="table"/> (segment, profile_id)</c> holding every segment's members: one
    /// <c>SELECT profile_id FROM <paramref name="profiles"/> WHERE condition</c> per segment, as one UNION ALL.
    /// </summary>
    public static void Members(DuckDBConnection duck, string profiles, IEnumerable<(string Name, string Sql)> segments, string table)
    {
        var union = new StringBuilder();
        foreach (var (name, sql) in segments)
        {
            union.Append(union.Length == 0 ? "" : "\nUNION ALL\n")
                .Append(CultureInfo.InvariantCulture, $"SELECT {Literal(name)} AS segment, profile_id FROM {profiles} WHERE {sql}");
        }
        DuckDb.Execute(duck, union.Length == 0
            ? $"CREATE OR REPLACE TABLE {table} (segment VARCHAR, profile_id BIGINT)"
            : $"CREATE OR REPLACE TABLE {table} AS {union}");
    }

    /// <summary>
    /// Deltas by <c>EXCEPT</c> both ways: <paramref name="entered"/> = current minus previous, <paramref name="exited"/> =
    /// previous minus current, each a (segment, profile_id) table; returns their sizes.
    /// </summary>
    public static (long Entered, long Exited) Deltas(DuckDBConnection duck, string current, string previous, string entered = "entered", string exited = "exited")
    {
        DuckDb.Execute(duck, $"CREATE OR REPLACE TABLE {entered} AS SELECT segment, profile_id FROM {current} EXCEPT SELECT segment, profile_id FROM {previous}");
        DuckDb.Execute(duck, $"CREATE OR REPLACE TABLE {exited} AS SELECT segment, profile_id FROM {previous} EXCEPT SELECT segment, profile_id FROM {current}");
        return (DuckDb.Long(duck, $"SELECT count(*) FROM {entered}"), DuckDb.Long(duck, $"SELECT count(*) FROM {exited}"));
    }

    public static string Literal(string text) => $"'{text.Replace("'", "''", StringComparison.Ordinal)}'";

    [GeneratedRegex(@"\bnow\s*\(\s*\)|\bcurrent_timestamp(\s*\(\s*\))?", RegexOptions.IgnoreCase)]
    private static partial Regex NowPattern();

    [GeneratedRegex(@"\bcurrent_date\s*\(\s*\)|\bcurrent_date\b", RegexOptions.IgnoreCase)]
    private static partial Regex CurrentDatePattern();

    [GeneratedRegex(@"\bin_segment\s*\(\s*'([^']*)'\s*\)", RegexOptions.IgnoreCase)]
    private static partial Regex InSegmentPattern();
}
