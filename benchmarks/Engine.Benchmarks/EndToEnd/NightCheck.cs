using System.Globalization;
using DuckDB.NET.Data;
using Engine.Benchmarks.Segments;
using Engine.TestKit;

namespace Engine.Benchmarks.EndToEnd;

/// <summary>
/// The two sides of a night must have computed the same thing before their times mean anything. Counts first (per
/// night): rows, NULLs per source column and the timestamp column's range found by ingest, identifiers, profiles, each
/// segment's members, entered and exited. Then, on the night given, the results themselves, in a DuckDB of this process after both sides finished:
/// the partitions (the engine's <c>identity/</c> and DuckDB's, joined on (type, value), must map profile ids one to
/// one), every profile column's non-NULL count and sum (profile ids differ between the sides; these do not depend on
/// them), and each segment's members and deltas as sets, the DuckDB ids mapped to the engine's through the partition.
/// </summary>
internal static class NightCheck
{
    public static List<string> Counts(EngineNight engine, DuckNightReport duck)
    {
        var failures = new List<string>();
        var night = $"night {engine.Night}";
        foreach (var (source, counts) in duck.Sources)
        {
            if (!engine.Sources.TryGetValue(source, out var mine))
            {
                failures.Add($"{night}: ingest: the engine read no source '{source}'");
                continue;
            }
            if (mine.Rows != counts.Rows)
            {
                failures.Add($"{night}: ingest: {source}: engine {mine.Rows:N0} rows, DuckDB {counts.Rows:N0}");
            }
            foreach (var (column, nulls) in counts.NullCounts)
            {
                if (mine.NullCounts.GetValueOrDefault(column) != nulls)
                {
                    failures.Add($"{night}: ingest: {source}.{column}: engine {mine.NullCounts.GetValueOrDefault(column):N0} NULLs, DuckDB {nulls:N0}");
                }
            }
            if (mine.MinMicros != counts.MinMicros || mine.MaxMicros != counts.MaxMicros)
            {
                failures.Add($"{night}: ingest: {source}: engine time range {mine.MinMicros}..{mine.MaxMicros} µs, DuckDB {counts.MinMicros}..{counts.MaxMicros}");
            }
        }
        if (engine.Identifiers != duck.Identifiers)
        {
            failures.Add($"{night}: identity: engine {engine.Identifiers:N0} identifiers, DuckDB {duck.Identifiers:N0}");
        }
        if (engine.Profiles != duck.Profiles)
        {
            failures.Add($"{night}: profiles: engine {engine.Profiles:N0}, DuckDB {duck.Profiles:N0}");
        }
        foreach (var (segment, members) in duck.Members)
        {
            void Compare(string what, Dictionary<string, long> mine, long theirs)
            {
                if (!mine.TryGetValue(segment, out var value) || value != theirs)
                {
                    failures.Add($"{night}: segment {segment}: {what}: engine {(mine.TryGetValue(segment, out var v) ? v.ToString("N0", CultureInfo.InvariantCulture) : "none")}, DuckDB {theirs:N0}");
                }
            }
            Compare("members", engine.Members, members);
            Compare("entered", engine.Entered, duck.Entered[segment]);
            Compare("exited", engine.Exited, duck.Exited[segment]);
        }
        return failures;
    }

    /// <summary>The results compared (see the class remarks); <paramref name="summary"/> gets one line per profile column.</summary>
    public static List<string> Results(EngineNight engine, DuckNightReport duck, string memoryLimit, string tempDirectory, List<string> summary)
    {
        var failures = new List<string>();
        var night = $"night {engine.Night}";
        using var db = DuckDb.Open();
        DuckDb.Execute(db, $"SET memory_limit = {DuckDbSegmentSql.Literal(memoryLimit)}");
        DuckDb.Execute(db, $"SET temp_directory = {DuckDbSegmentSql.Literal(tempDirectory)}");
        DuckDb.Execute(db, "SET preserve_insertion_order = false");
        string Parquet(string path) => $"read_parquet({DuckDbSegmentSql.Literal(path)})";
        var engineIdentity = Parquet(Path.Combine(engine.RunDir, "identity", "*.parquet"));
        var duckIdentity = Parquet(Path.Combine(duck.IdentityDir, "*.parquet"));

        // Partitions: (engine profile, DuckDB profile) pairs over the identifiers both hold.
        DuckDb.Execute(db, $"""
            CREATE TABLE pairs AS
            SELECT e.profile_id AS ep, d.profile_id AS dp, count(*) AS n
            FROM (SELECT identifier_type, identifier_value, profile_id FROM {engineIdentity}) e
            FULL JOIN (SELECT identifier_type, identifier_value, profile_id FROM {duckIdentity}) d USING (identifier_type, identifier_value)
            GROUP BY ALL
            """);
        var onlyEngine = DuckDb.Long(db, "SELECT coalesce(sum(n), 0) FROM pairs WHERE dp IS NULL");
        var onlyDuck = DuckDb.Long(db, "SELECT coalesce(sum(n), 0) FROM pairs WHERE ep IS NULL");
        var pairs = DuckDb.Long(db, "SELECT count(*) FROM pairs WHERE ep IS NOT NULL AND dp IS NOT NULL");
        var engineProfiles = DuckDb.Long(db, "SELECT count(DISTINCT ep) FROM pairs WHERE ep IS NOT NULL AND dp IS NOT NULL");
        var duckProfiles = DuckDb.Long(db, "SELECT count(DISTINCT dp) FROM pairs WHERE ep IS NOT NULL AND dp IS NOT NULL");
        if (onlyEngine != 0 || onlyDuck != 0 || pairs != engineProfiles || pairs != duckProfiles)
        {
            failures.Add($"{night}: identity: partitions differ: identifiers only in the engine {onlyEngine:N0}, only in DuckDB {onlyDuck:N0}; "
                + $"{pairs:N0} (engine, DuckDB) profile pairs over {engineProfiles:N0} engine and {duckProfiles:N0} DuckDB profiles");
            return failures;
        }
        summary.Add($"identity: the same partition: {engineProfiles:N0} profiles map one to one over {DuckDb.Long(db, "SELECT sum(n) FROM pairs"):N0} identifiers");
        DuckDb.Execute(db, "CREATE TABLE map AS SELECT ep, dp FROM pairs; DROP TABLE pairs");

        // Profile columns: non-NULL counts and sums, which do not depend on the profile ids.
        var engineProfilesGlob = Parquet(Path.Combine(engine.RunDir, "profiles", "*.parquet"));
        var duckProfilesFile = Parquet(duck.ProfilesParquet);
        var columns = Columns(db, duckProfilesFile);
        var engineColumns = Columns(db, engineProfilesGlob).ToDictionary(c => c.Name, c => c.Type, StringComparer.Ordinal);
        foreach (var (name, type) in columns)
        {
            if (name == "profile_id")
            {
                continue;
            }
            if (!engineColumns.ContainsKey(name))
            {
                failures.Add($"{night}: profiles: column {name} is missing from the engine's profiles/");
                continue;
            }
            var exact = !type.StartsWith("DOUBLE", StringComparison.Ordinal) && !type.StartsWith("FLOAT", StringComparison.Ordinal);
            var measure = type switch
            {
                "VARCHAR" => $"sum(length(\"{name}\"))::VARCHAR",
                "BOOLEAN" => $"count(*) FILTER (WHERE \"{name}\")::VARCHAR",
                _ when type.StartsWith("TIMESTAMP", StringComparison.Ordinal) => $"sum(epoch_us(\"{name}\"))::VARCHAR",
                _ when type == "DATE" => $"sum(\"{name}\" - DATE '1970-01-01')::VARCHAR",
                _ when exact => $"sum(\"{name}\")::VARCHAR",
                _ => $"sum(\"{name}\")",
            };
            var e = Row(db, $"SELECT count(\"{name}\"), {measure} FROM {engineProfilesGlob}");
            var d = Row(db, $"SELECT count(\"{name}\"), {measure} FROM {duckProfilesFile}");
            var same = e[0] == d[0] && (exact
                ? e[1] == d[1]
                : Math.Abs(double.Parse(e[1] ?? "0", CultureInfo.InvariantCulture) - double.Parse(d[1] ?? "0", CultureInfo.InvariantCulture))
                    <= 1e-9 * Math.Max(1, Math.Abs(double.Parse(d[1] ?? "0", CultureInfo.InvariantCulture))));
            summary.Add($"{name,-26} non-NULL engine {e[0],10} DuckDB {d[0],10}   sum engine {e[1] ?? "NULL",24} DuckDB {d[1] ?? "NULL",24}{(same ? "" : "  DIFFERENT")}");
            if (!same)
            {
                failures.Add($"{night}: profiles: column {name}: engine {e[0]} non-NULL, sum {e[1] ?? "NULL"}; DuckDB {d[0]}, sum {d[1] ?? "NULL"}");
            }
        }

        // Members and deltas as sets, DuckDB's ids mapped to the engine's.
        var segments = string.Join(", ", duck.Members.Keys.Select(DuckDbSegmentSql.Literal));
        if (segments.Length > 0)
        {
            void Sets(string what, string engineRows, string duckRows, string columnsSql)
            {
                var mapped = $"SELECT {columnsSql.Replace("profile_id", "m.ep", StringComparison.Ordinal)} FROM {duckRows} x JOIN map m ON m.dp = x.profile_id";
                var mine = $"SELECT {columnsSql} FROM {engineRows} WHERE segment IN ({segments})";
                var missing = DuckDb.Long(db, $"SELECT count(*) FROM ({mine} EXCEPT ALL {mapped})");
                var extra = DuckDb.Long(db, $"SELECT count(*) FROM ({mapped} EXCEPT ALL {mine})");
                if (missing != 0 || extra != 0)
                {
                    failures.Add($"{night}: {what}: {missing:N0} rows only in the engine's, {extra:N0} only in DuckDB's (ids mapped through the partition)");
                }
            }
            Sets("segments", Parquet(Path.Combine(engine.RunDir, "segments", "*.parquet")), Parquet(duck.SegmentsParquet), "segment, profile_id");
            Sets("deltas", Parquet(Path.Combine(engine.RunDir, "deltas", "*.parquet")), Parquet(duck.DeltasParquet), "segment, profile_id, change");
            summary.Add($"segments and deltas: the same (segment, profile) rows on both sides for {duck.Members.Count} segments (DuckDB's ids mapped to the engine's)");
        }
        return failures;
    }

    private static List<(string Name, string Type)> Columns(DuckDBConnection db, string relation)
    {
        using var command = db.CreateCommand();
        command.CommandText = $"DESCRIBE SELECT * FROM {relation}";
        using var reader = command.ExecuteReader();
        var columns = new List<(string, string)>();
        while (reader.Read())
        {
            columns.Add((reader.GetString(0), reader.GetString(1)));
        }
        return columns;
    }

    private static string?[] Row(DuckDBConnection db, string sql)
    {
        using var command = db.CreateCommand();
        command.CommandText = sql;
        using var reader = command.ExecuteReader();
        reader.Read();
        var row = new string?[reader.FieldCount];
        for (var i = 0; i < row.Length; i++)
        {
            row[i] = reader.IsDBNull(i) ? null : Convert.ToString(reader.GetValue(i), CultureInfo.InvariantCulture);
        }
        return row;
    }
}
