using System.Globalization;
using DuckDB.NET.Data;
using Engine.TestKit;

namespace Engine.Benchmarks.Profiles;

/// <summary>
/// The two sides of the traits scale run must have computed the same thing: the engine's <c>profiles/</c> and DuckDB's
/// Parquet hold the same profile ids and, row by row, the same value in every column (doubles to 1e-9 relative: the
/// engine adds exactly, DuckDB in floating point; timestamps as UTC microseconds). Per column, the non-NULL counts and
/// sums are printed too, so that a check passing on empty columns would show.
/// </summary>
internal static class TraitCheck
{
    /// <summary>The differences found (empty: the results agree), and one summary line per column.</summary>
    public static (List<string> Mismatches, List<string> Summary) Compare(string engineProfilesDir, string duckdbParquet)
    {
        using var db = new DuckDBConnection("Data Source=:memory:");
        db.Open();
        Execute(db, $"""
            CREATE TABLE eng AS SELECT * FROM read_parquet({Literal(Path.Combine(engineProfilesDir, "*.parquet"))});
            CREATE TABLE duck AS SELECT * FROM read_parquet({Literal(duckdbParquet)});
            """);
        var mismatches = new List<string>();
        var summary = new List<string>();
        var engineRows = Long(db, "SELECT count(*) FROM eng");
        var duckRows = Long(db, "SELECT count(*) FROM duck");
        var unmatched = Long(db, "SELECT count(*) FROM eng FULL JOIN duck USING (profile_id) WHERE eng.profile_id IS NULL OR duck.profile_id IS NULL");
        if (engineRows != duckRows || unmatched != 0)
        {
            mismatches.Add($"profiles: engine {engineRows:N0} rows, DuckDB {duckRows:N0}, {unmatched:N0} profile ids on one side only");
        }
        var engineColumns = Columns(db, "eng");
        var duckColumns = Columns(db, "duck");
        if (!engineColumns.Select(c => c.Name).SequenceEqual(duckColumns.Select(c => c.Name)))
        {
            mismatches.Add($"columns: engine [{string.Join(", ", engineColumns.Select(c => c.Name))}], DuckDB [{string.Join(", ", duckColumns.Select(c => c.Name))}]");
            return (mismatches, summary);
        }
        foreach (var (name, type) in engineColumns)
        {
            if (name == "profile_id")
            {
                continue;
            }
            string Value(string table) => type.StartsWith("TIMESTAMP", StringComparison.Ordinal) ? $"epoch_us({table}.{name})" : $"{table}.{name}";
            var differs = type == "DOUBLE"
                ? $"(e.{name} IS NULL) <> (d.{name} IS NULL) OR abs(e.{name} - d.{name}) > 1e-9 * greatest(1, abs(d.{name}))"
                : $"{Value("e")} IS DISTINCT FROM {Value("d")}";
            var bad = Long(db, $"SELECT count(*) FROM eng e JOIN duck d USING (profile_id) WHERE {differs}");
            if (bad > 0)
            {
                var examples = Rows(db, $"SELECT profile_id, CAST(e.{name} AS VARCHAR), CAST(d.{name} AS VARCHAR) FROM eng e JOIN duck d USING (profile_id) WHERE {differs} ORDER BY profile_id LIMIT 3");
                mismatches.Add($"{name}: {bad:N0} profiles differ ({string.Join("; ", examples.Select(r => $"profile {r[0]}: engine {r[1] ?? "NULL"}, DuckDB {r[2] ?? "NULL"}"))})");
            }
            // Non-NULL counts and a sum (strings: their lengths) on each side.
            var measure = type switch
            {
                "VARCHAR" => $"sum(length({name}))",
                _ when type.StartsWith("TIMESTAMP", StringComparison.Ordinal) => $"sum(epoch_us({name}))::DOUBLE",
                _ => $"sum({name})::DOUBLE",
            };
            var e = Rows(db, $"SELECT count({name}), {measure} FROM eng")[0];
            var d = Rows(db, $"SELECT count({name}), {measure} FROM duck")[0];
            summary.Add($"{name,-24} {type,-26} non-NULL engine {e[0],10} DuckDB {d[0],10}   sum engine {e[1] ?? "NULL",24} DuckDB {d[1] ?? "NULL",24}");
            if (Convert.ToInt64(e[0], CultureInfo.InvariantCulture) == 0)
            {
                mismatches.Add($"{name}: NULL for every profile on the engine side (a check over an empty column proves nothing)");
            }
        }
        return (mismatches, summary);
    }

    private static List<(string Name, string Type)> Columns(DuckDBConnection db, string table) =>
        Rows(db, $"SELECT column_name, data_type FROM information_schema.columns WHERE table_name = '{table}' ORDER BY ordinal_position")
            .Select(r => (r[0]!, r[1]!)).ToList();

    private static List<string?[]> Rows(DuckDBConnection db, string sql)
    {
        using var command = db.CreateCommand();
        command.CommandText = sql;
        using var reader = command.ExecuteReader();
        var rows = new List<string?[]>();
        while (reader.Read())
        {
            var row = new string?[reader.FieldCount];
            for (var i = 0; i < row.Length; i++)
            {
                row[i] = reader.IsDBNull(i) ? null : Convert.ToString(reader.GetValue(i), CultureInfo.InvariantCulture);
            }
            rows.Add(row);
        }
        return rows;
    }

    private static void Execute(DuckDBConnection db, string sql) => DuckDb.Execute(db, sql);

    private static long Long(DuckDBConnection db, string sql) => DuckDb.Long(db, sql);

    private static string Literal(string text) => $"'{text.Replace("'", "''", StringComparison.Ordinal)}'";
}
