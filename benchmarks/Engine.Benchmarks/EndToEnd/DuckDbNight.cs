using System.Diagnostics;
using System.Globalization;
using DuckDB.NET.Data;
using Engine.Benchmarks.Identity;
using Engine.Benchmarks.Infrastructure;
using Engine.Benchmarks.Profiles;
using Engine.Benchmarks.Segments;
using Engine.TestKit;
using Engine.Workspaces;

namespace Engine.Benchmarks.EndToEnd;

/// <summary>One stage of a night as a side timed it, with its parts.</summary>
internal sealed class StageTime
{
    public string Stage { get; set; } = "";
    public double Seconds { get; set; }
    public List<PartReport> Parts { get; set; } = [];
}

/// <summary>Rows, NULLs per column and the timestamp column's range (microseconds) of one source, as a side's ingest found them.</summary>
internal sealed class SourceCounts
{
    public long Rows { get; set; }
    public Dictionary<string, long> NullCounts { get; set; } = [];
    public long? MinMicros { get; set; }
    public long? MaxMicros { get; set; }
}

/// <summary>What the DuckDB side measured of one night, as its child process reports it.</summary>
internal sealed class DuckNightReport
{
    public int Night { get; set; }
    public DateTimeOffset AsOf { get; set; }
    public List<StageTime> Stages { get; set; } = [];
    public double WorkSeconds { get; set; }
    public long StartBytes { get; set; }
    public long PeakBytes { get; set; }
    public double OtherCpuCores { get; set; }
    public Dictionary<string, SourceCounts> Sources { get; set; } = [];
    public long Identifiers { get; set; }
    public long Edges { get; set; }
    public long Profiles { get; set; }
    public int PropagationPasses { get; set; }
    public Dictionary<string, long> Members { get; set; } = [];
    public Dictionary<string, long> Entered { get; set; } = [];
    public Dictionary<string, long> Exited { get; set; } = [];
    public string IdentityDir { get; set; } = "";
    public string ProfilesParquet { get; set; } = "";
    public string SegmentsParquet { get; set; } = "";
    public string DeltasParquet { get; set; } = "";
    public Dictionary<string, string> Settings { get; set; } = [];
}

/// <summary>
/// The DuckDB side of one night, in its own child process: the work of <c>engine run</c> done in DuckDB SQL over the same
/// Parquet, stage by stage, each stage's result written to Parquet as the engine writes its own:
/// <list type="bullet">
/// <item><b>ingest</b>: per source, the figures the engine's ingest takes, from the same place, the files' footers
/// (<c>parquet_metadata</c>): rows from the row groups, NULLs per column from the chunks' null counts, the timestamp
/// column's range from their min/max; a scan of the declared columns only where a chunk has no null count.</item>
/// <item><b>identity</b>: <see cref="DuckDbIdentityPeer"/> (normalise, dense ids, star edges, label propagation until
/// no label changes), phones left out as in the workspace, written as (identifier_type, identifier_value, profile_id)
/// with a profile id stable across nights (<see cref="DuckDbIdentityPeer.WriteProfileIdentity"/>).</item>
/// <item><b>profiles</b>: <see cref="DuckDbTraitsPeer"/>'s distinct-keys form (its fastest in the traits scale run):
/// attributes by survivorship and the example's traits in one GROUP BY, kept as a table and written.</item>
/// <item><b>scores</b>: nothing. DuckDB has no model training or scoring; the engine's scores stage has no peer, and the
/// segments that use a score column are left out of DuckDB's segments.</item>
/// <item><b>segments + deltas</b>: <see cref="DuckDbSegmentSql"/>: one WHERE per segment over the profile table (a
/// UNION ALL, written), then EXCEPT both ways against the previous night's written membership (none on the first
/// night: every member enters, as in the engine), written.</item>
/// </list>
/// </summary>
internal static class DuckDbNight
{
    public static DuckNightReport Run(Workspace workspace, string dataDir, string nightDir, DateTimeOffset asOf, int night, string? previousSegments, DuckDbPeerOptions options)
    {
        Directory.CreateDirectory(nightDir);
        var report = new DuckNightReport { Night = night, AsOf = asOf };
        var total = Stopwatch.StartNew();

        // ingest
        var clock = Stopwatch.StartNew();
        var ingest = new StageTime { Stage = "ingest" };
        using (var duck = Open(options))
        {
            foreach (var source in workspace.Sources)
            {
                var part = Stopwatch.StartNew();
                report.Sources[source.Name] = Ingest(duck, source);
                ingest.Parts.Add(new(source.Name, part.Elapsed.TotalSeconds));
            }
            foreach (var name in new[] { "threads", "memory_limit", "temp_directory", "preserve_insertion_order" })
            {
                report.Settings[name] = DuckDb.Strings(duck, $"SELECT current_setting('{name}')::VARCHAR")[0] ?? "";
            }
            report.Settings["version"] = DuckDb.Strings(duck, "SELECT version()")[0] ?? "";
        }
        ingest.Seconds = clock.Elapsed.TotalSeconds;
        report.Stages.Add(ingest);
        Console.WriteLine($"duckdb night {night}: ingest {ingest.Seconds:F2} s");

        // identity
        clock.Restart();
        var identityDir = Path.Combine(nightDir, "identity");
        var identity = new StageTime { Stage = "identity" };
        using (var peer = new DuckDbIdentityPeer(options with { IncludePhone = false }))
        {
            var result = peer.Run(dataDir, line => Console.WriteLine($"night {night}: {line}"));
            var write = peer.WriteProfileIdentity(identityDir);
            identity.Parts = [new("read+normalise", result.ReadNormaliseSeconds), new("ids+edges", result.IdsEdgesSeconds),
                new($"propagation ({result.Iterations} passes)", result.PropagationSeconds), new("profile ids+write", write)];
            report.Identifiers = result.Identifiers;
            report.Edges = result.Edges;
            report.PropagationPasses = result.Iterations;
            peer.DropTables();
        }
        identity.Seconds = clock.Elapsed.TotalSeconds;
        report.Stages.Add(identity);
        report.IdentityDir = identityDir;
        Console.WriteLine($"duckdb night {night}: identity {identity.Seconds:F2} s");

        // profiles (attributes + traits), kept as the table segments read
        clock.Restart();
        using var traits = new DuckDbTraitsPeer(options, dataDir, identityDir, asOf);
        var profilesParquet = Path.Combine(nightDir, "profiles.parquet");
        var steps = traits.RunDistinctKeys(profilesParquet, keepTable: "profiles");
        traits.DropIdentity();
        var profiles = new StageTime { Stage = "profiles", Seconds = clock.Elapsed.TotalSeconds, Parts = steps.Select(s => new PartReport(s.Name, s.Seconds)).ToList() };
        report.Stages.Add(profiles);
        report.ProfilesParquet = profilesParquet;
        Console.WriteLine($"duckdb night {night}: profiles {profiles.Seconds:F2} s");

        report.Stages.Add(new StageTime { Stage = "scores" });

        // segments + deltas
        var db = traits.Connection;
        var (compared, _) = E2eWorkspace.SplitSegments(workspace);
        var conditions = workspace.Segments.ToDictionary(s => s.Name, s => s.Condition, StringComparer.Ordinal);
        clock.Restart();
        var segments = new StageTime { Stage = "segments" };
        var part2 = Stopwatch.StartNew();
        DuckDbSegmentSql.Members(db, "profiles", compared.Select(s => (s.Name, DuckDbSegmentSql.Translate(s.Condition, conditions, asOf))), "members");
        var segmentsParquet = Path.Combine(nightDir, "segments.parquet");
        DuckDb.Execute(db, $"COPY members TO {DuckDbSegmentSql.Literal(segmentsParquet)} (FORMAT parquet)");
        segments.Parts.Add(new("members (WHERE)+write", part2.Elapsed.TotalSeconds));
        part2.Restart();
        var previous = previousSegments is null
            ? "(SELECT segment, profile_id FROM members WHERE false)"
            : $"read_parquet({DuckDbSegmentSql.Literal(previousSegments)})";
        DuckDbSegmentSql.Deltas(db, "members", previous);
        var deltasParquet = Path.Combine(nightDir, "deltas.parquet");
        DuckDb.Execute(db, $"""
            COPY (SELECT segment, profile_id, 'entered' AS change FROM entered UNION ALL SELECT segment, profile_id, 'exited' FROM exited)
            TO {DuckDbSegmentSql.Literal(deltasParquet)} (FORMAT parquet)
            """);
        segments.Parts.Add(new(previousSegments is null ? "deltas (no previous night)+write" : "deltas (EXCEPT)+write", part2.Elapsed.TotalSeconds));
        segments.Seconds = clock.Elapsed.TotalSeconds;
        report.Stages.Add(segments);
        report.WorkSeconds = total.Elapsed.TotalSeconds;
        report.SegmentsParquet = segmentsParquet;
        report.DeltasParquet = deltasParquet;
        Console.WriteLine($"duckdb night {night}: segments+deltas {segments.Seconds:F2} s; work {report.WorkSeconds:F2} s");

        // Counts for the comparison, not timed.
        report.Profiles = DuckDb.Long(db, "SELECT count(*) FROM profiles");
        foreach (var segment in compared)
        {
            var name = DuckDbSegmentSql.Literal(segment.Name);
            report.Members[segment.Name] = DuckDb.Long(db, $"SELECT count(*) FROM members WHERE segment = {name}");
            report.Entered[segment.Name] = DuckDb.Long(db, $"SELECT count(*) FROM entered WHERE segment = {name}");
            report.Exited[segment.Name] = DuckDb.Long(db, $"SELECT count(*) FROM exited WHERE segment = {name}");
        }
        return report;
    }

    /// <summary>An in-memory database with the peer's settings (the identity and traits peers set the same).</summary>
    private static DuckDBConnection Open(DuckDbPeerOptions options)
    {
        Directory.CreateDirectory(options.TempDirectory);
        var duck = DuckDb.Open();
        DuckDb.Execute(duck, $"SET threads = {options.Threads.ToString(CultureInfo.InvariantCulture)}");
        DuckDb.Execute(duck, $"SET memory_limit = {DuckDbSegmentSql.Literal(options.MemoryLimit)}");
        DuckDb.Execute(duck, $"SET temp_directory = {DuckDbSegmentSql.Literal(options.TempDirectory)}");
        DuckDb.Execute(duck, "SET preserve_insertion_order = false");
        return duck;
    }

    /// <summary>
    /// A source's figures from its files' footers, as the engine's ingest takes them: rows as the sum of the row groups'
    /// sizes (once per row group), NULLs per column as the sum of its chunks' null counts, the timestamp column's range
    /// from its chunks' min/max, in one pass of <c>parquet_metadata</c>. When a chunk has no null count the footers
    /// cannot say, and the source is scanned instead (<see cref="Scan"/>), as the engine scans such a file.
    /// </summary>
    private static SourceCounts Ingest(DuckDBConnection duck, SourceDefinition source)
    {
        var columns = source.Schema.Columns.Select(c => c.Name).ToList();
        // sum() of BIGINT is a HUGEINT in DuckDB: cast back.
        var select = new List<string> { "coalesce(sum(row_group_num_rows) FILTER (WHERE column_id = 0), 0)::BIGINT" };
        foreach (var column in columns)
        {
            var path = DuckDbSegmentSql.Literal(column);
            select.Add($"coalesce(sum(stats_null_count) FILTER (WHERE path_in_schema = {path}), 0)::BIGINT");
            select.Add($"count(*) FILTER (WHERE path_in_schema = {path} AND stats_null_count IS NULL)");
        }
        if (source.TimestampColumn is { } ts)
        {
            // The statistics come as text ('2026-01-01 00:00:00+00' for UTC timestamps): cast each before comparing.
            var path = DuckDbSegmentSql.Literal(ts);
            select.Add($"epoch_us(min(TRY_CAST(stats_min_value AS TIMESTAMP)) FILTER (WHERE path_in_schema = {path}))");
            select.Add($"epoch_us(max(TRY_CAST(stats_max_value AS TIMESTAMP)) FILTER (WHERE path_in_schema = {path}))");
            // Chunks holding values without a usable min/max: the footers cannot bound the range.
            select.Add($"count(*) FILTER (WHERE path_in_schema = {path} AND stats_null_count < num_values AND (TRY_CAST(stats_min_value AS TIMESTAMP) IS NULL OR TRY_CAST(stats_max_value AS TIMESTAMP) IS NULL))");
        }
        using var command = duck.CreateCommand();
        command.CommandText = $"SELECT {string.Join(", ", select)} FROM parquet_metadata({Glob(source)})";
        using var reader = command.ExecuteReader();
        reader.Read();
        var counts = new SourceCounts { Rows = Convert.ToInt64(reader.GetValue(0), CultureInfo.InvariantCulture) };
        for (var i = 0; i < columns.Count; i++)
        {
            if (Convert.ToInt64(reader.GetValue(2 + 2 * i), CultureInfo.InvariantCulture) > 0)
            {
                return Scan(duck, source);
            }
            counts.NullCounts[columns[i]] = Convert.ToInt64(reader.GetValue(1 + 2 * i), CultureInfo.InvariantCulture);
        }
        if (source.TimestampColumn is not null)
        {
            if (Convert.ToInt64(reader.GetValue(3 + 2 * columns.Count), CultureInfo.InvariantCulture) > 0)
            {
                return Scan(duck, source);
            }
            counts.MinMicros = reader.IsDBNull(1 + 2 * columns.Count) ? null : Convert.ToInt64(reader.GetValue(1 + 2 * columns.Count), CultureInfo.InvariantCulture);
            counts.MaxMicros = reader.IsDBNull(2 + 2 * columns.Count) ? null : Convert.ToInt64(reader.GetValue(2 + 2 * columns.Count), CultureInfo.InvariantCulture);
        }
        return counts;
    }

    /// <summary>One scan of a source's declared columns: rows, NULLs per column, and the timestamp column's range.</summary>
    private static SourceCounts Scan(DuckDBConnection duck, SourceDefinition source)
    {
        var columns = source.Schema.Columns.Select(c => c.Name).ToList();
        var select = new List<string> { "count(*)" };
        select.AddRange(columns.Select(c => $"count(\"{c}\")"));
        if (source.TimestampColumn is { } ts)
        {
            select.Add($"epoch_us(min(\"{ts}\"))");
            select.Add($"epoch_us(max(\"{ts}\"))");
        }
        using var command = duck.CreateCommand();
        command.CommandText = $"SELECT {string.Join(", ", select)} FROM read_parquet({Glob(source)})";
        using var reader = command.ExecuteReader();
        reader.Read();
        var counts = new SourceCounts { Rows = Convert.ToInt64(reader.GetValue(0), CultureInfo.InvariantCulture) };
        for (var i = 0; i < columns.Count; i++)
        {
            counts.NullCounts[columns[i]] = counts.Rows - Convert.ToInt64(reader.GetValue(i + 1), CultureInfo.InvariantCulture);
        }
        if (source.TimestampColumn is not null)
        {
            counts.MinMicros = reader.IsDBNull(1 + columns.Count) ? null : Convert.ToInt64(reader.GetValue(1 + columns.Count), CultureInfo.InvariantCulture);
            counts.MaxMicros = reader.IsDBNull(2 + columns.Count) ? null : Convert.ToInt64(reader.GetValue(2 + columns.Count), CultureInfo.InvariantCulture);
        }
        return counts;
    }

    private static string Glob(SourceDefinition source) => DuckDbSegmentSql.Literal(Path.Combine(source.Location, "**", "*.parquet"));
}
