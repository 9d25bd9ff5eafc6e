using Engine.Diagnostics;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using DuckDB.NET.Data;
using Engine.Benchmarks.Infrastructure;
using Engine.Profiles;
using Engine.Segments;
using Engine.Storage;
using Engine.TestKit;

namespace Engine.Benchmarks.Segments;

/// <summary>
/// <c>--segments-scale --profiles N [--segments 100]</c>: evaluating a hundred segment conditions over N profiles and
/// computing their deltas, beside DuckDB doing the same over the same rows in the same process. Both sides start from
/// the table in memory (the engine's <see cref="ProfileTable"/>, DuckDB's own table loaded from the same Parquet),
/// so the comparison is of evaluation, not of reading. DuckDB gets the conditions both as one query (a boolean
/// column per segment) and as one query per segment, and is credited with the faster. Deltas: each segment's
/// members against a previous membership that differs by about 1% either way, by a merge of sorted ids (engine)
/// and by EXCEPT both ways (DuckDB). The member counts and delta sizes of the two sides must agree.
/// </summary>
internal static class SegmentScaleRun
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };
    private const double EvaluationTarget = 10;
    private const double DeltaTarget = 10;

    /// <summary>Conditions shaped like the audiences users describe; the rest of the hundred are random.</summary>
    private static readonly string[] Examples =
    [
        "tier = 'gold' AND ltv > 1000",
        "orders >= 2 AND opens >= 3 AND ltv > 500",
        "created_at >= now() - INTERVAL 7 DAY AND coalesce(orders, 0) = 0",
        "churn_score > 0.7 AND subscribed",
        "country IN ('DE', 'FR', 'ES') AND NOT subscribed",
        "email LIKE '%@example.com' AND ltv BETWEEN 100 AND 900",
        "ltv / nullif_orders > 100".Replace("nullif_orders", "coalesce(orders, 1)", StringComparison.Ordinal),
        "current_date - birthday > 365 * 40",
        "tier IS NULL OR tier NOT IN ('gold', 'platinum')",
        "lower(tier) = 'gold' AND created_at < now() - INTERVAL 1 YEAR",
    ];

    public static int Run(string[] args)
    {
        var profiles = (int)(LongOption(args, "--profiles") ?? throw new ArgumentException("--profiles N is required"));
        var count = (int)(LongOption(args, "--segments") ?? 100);
        // At 10M profiles a hundred random segments hold ~400M memberships: both sides' copies for the delta part do
        // not fit this machine's memory alongside DuckDB's tables, so the deltas can be left out (measure them at 1M).
        var deltas = !args.Contains("--no-deltas");
        var work = Path.Combine(BenchmarkData.RepositoryRoot, "artifacts", "bench-data", $"segments-scale-{profiles}-{Environment.ProcessId}");
        Directory.CreateDirectory(work);
        try
        {
            return Measure(profiles, count, work, deltas);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    private static int Measure(int profiles, int count, string work, bool withDeltas)
    {
        Console.WriteLine($"// segments scale run: {profiles:N0} profiles, {count} segments; {Environment.ProcessorCount} cores");
        var clock = Stopwatch.StartNew();
        ProfileTable table;
        var location = new StorageLocation(new LocalObjectStore(work), "profiles");
        using (var batch = RandomProfiles.Build(profiles, seed: 11))
        {
            TestTables.WriteDatasetAsync(location, batch).GetAwaiter().GetResult();
            table = ProfileTable.FromBatches(batch.Schema, [batch], "generated");
        }
        Console.WriteLine($"// generated and wrote the table in {clock.Elapsed.TotalSeconds:F1} s");

        var random = new Random(5);
        var generator = new RandomConditions(random);
        var conditions = Examples.Concat(Enumerable.Range(0, Math.Max(0, count - Examples.Length)).Select(_ => generator.Predicate(2))).Take(count).ToList();

        // Engine: compile once, evaluate every condition into a bitmap, then list the members' ids.
        clock.Restart();
        var compiler = new ConditionCompiler(table, RandomProfiles.AsOf);
        var compiled = conditions.Select(compiler.Compile).ToList();
        var compileSeconds = clock.Elapsed.TotalSeconds;
        // Twice: the first pass includes the JIT compiling each kernel; the second is the steady state both sides are
        // compared in (DuckDB's first query is also repeated below).
        clock.Restart();
        var bitmaps = compiled.Select(c => c.Evaluate(table)).ToList();
        var coldSeconds = clock.Elapsed.TotalSeconds;
        clock.Restart();
        bitmaps = [.. compiled.Select(c => c.Evaluate(table))];
        var evaluateSeconds = clock.Elapsed.TotalSeconds;
        clock.Restart();
        // Segments on every core, as the stage lists them.
        var members = new long[bitmaps.Count][];
        Parallel.For(0, bitmaps.Count, i => members[i] = SegmentMembers.ProfileIds(bitmaps[i], table.ProfileIds.Values));
        var idsSeconds = clock.Elapsed.TotalSeconds;
        var engineMembers = members.Sum(m => (long)m.Length);
        var memberLists = members.ToList();

        using var duck = new DuckDBConnection("Data Source=:memory:");
        duck.Open();
        Execute(duck, $"SET threads = {Environment.ProcessorCount}");
        var glob = Path.Combine(work, "profiles", "*.parquet").Replace("'", "''", StringComparison.Ordinal);
        Execute(duck, $"CREATE TABLE profiles AS SELECT * FROM read_parquet('{glob}')");

        // DuckDB, one query: a boolean column per segment (run once before timing, as the engine's kernels are).
        var columns = string.Join(", ", conditions.Select((c, i) => $"coalesce(({RandomProfiles.ForDuckDb(c)}), false) AS s{i}"));
        Execute(duck, $"CREATE TABLE membership AS SELECT profile_id, {columns} FROM profiles");
        Execute(duck, "DROP TABLE membership");
        clock.Restart();
        Execute(duck, $"CREATE TABLE membership AS SELECT profile_id, {columns} FROM profiles");
        var oneQuerySeconds = clock.Elapsed.TotalSeconds;
        var oneQueryMembers = 0L;
        for (var i = 0; i < conditions.Count; i++)
        {
            oneQueryMembers += Long(duck, $"SELECT count(*) FROM membership WHERE s{i}");
        }
        Execute(duck, "DROP TABLE membership");

        // DuckDB, a query per segment, each materialising its members.
        clock.Restart();
        for (var i = 0; i < conditions.Count; i++)
        {
            Execute(duck, $"CREATE TABLE s{i} AS SELECT profile_id FROM profiles WHERE {RandomProfiles.ForDuckDb(conditions[i])}");
        }
        var perQuerySeconds = clock.Elapsed.TotalSeconds;
        var perQueryMembers = 0L;
        var mismatches = new List<string>();
        for (var i = 0; i < conditions.Count; i++)
        {
            var n = Long(duck, $"SELECT count(*) FROM s{i}");
            perQueryMembers += n;
            if (n != members[i].Length)
            {
                mismatches.Add($"segment {i} ({conditions[i]}): engine {members[i].Length:N0}, DuckDB {n:N0}");
            }
            Execute(duck, $"DROP TABLE s{i}");
        }
        if (mismatches.Count > 0 || oneQueryMembers != engineMembers)
        {
            Console.Error.WriteLine($"member counts differ: {string.Join("; ", mismatches)}");
            return 1;
        }

        long entered = 0, exited = 0;
        double engineDeltaSeconds = double.NaN, duckDeltaSeconds = double.NaN;
        if (withDeltas)
        {
            // Deltas: a previous membership about 1% off either way.
            var previous = members.Select((m, i) => Perturb(m, profiles, new Random(100 + i))).ToList();
            clock.Restart();
            for (var i = 0; i < members.Length; i++)
            {
                var (e, x) = SegmentsStage.Difference(members[i], previous[i]);
                entered += e.Length;
                exited += x.Length;
            }
            engineDeltaSeconds = clock.Elapsed.TotalSeconds;
            // The two nights go to a database file of their own with a memory limit: at 10M profiles they are 800M
            // rows, which DuckDB pages to disk rather than holding beside the engine's copies. The evaluation
            // tables are dropped first; the engine's copies are released once loaded.
            Execute(duck, "DROP TABLE profiles");
            using var nights = new DuckDBConnection($"Data Source={Path.Combine(work, "nights.duckdb")}");
            nights.Open();
            Execute(nights, $"SET threads = {Environment.ProcessorCount}");
            Execute(nights, "SET memory_limit = '6GB'");
            Execute(nights, $"SET temp_directory = '{Path.Combine(work, "duckdb-tmp").Replace("'", "''", StringComparison.Ordinal)}'");
            LoadMembership(nights, "cur", memberLists);
            LoadMembership(nights, "prev", previous);
            memberLists.Clear();
            previous.Clear();
            members = [];
            GC.Collect();
            // The engine's copies are gone: DuckDB gets most of the machine for the EXCEPT itself.
            Execute(nights, $"SET memory_limit = '{Math.Max(6, ProcessMemory.PhysicalBytes() / (1L << 30) * 3 / 5)}GB'");
            clock.Restart();
            var (duckEntered, duckExited) = DuckDbSegmentSql.Deltas(nights, "cur", "prev");
            duckDeltaSeconds = clock.Elapsed.TotalSeconds;
            if (duckEntered != entered || duckExited != exited)
            {
                Console.Error.WriteLine($"deltas differ: engine {entered:N0} entered, {exited:N0} exited; DuckDB {duckEntered:N0}, {duckExited:N0}");
                return 1;
            }
        }

        // Like with like: DuckDB's boolean column per segment against the engine's bitmaps, its member tables against
        // the engine's bitmaps turned into id lists; DuckDB is credited with whichever form does better.
        var evaluationRatio = Math.Min(oneQuerySeconds / evaluateSeconds, perQuerySeconds / (evaluateSeconds + idsSeconds));
        var deltaRatio = duckDeltaSeconds / engineDeltaSeconds;
        Console.WriteLine();
        Console.WriteLine($"segments, {profiles:N0} profiles, {conditions.Count} conditions, {engineMembers:N0} memberships; DuckDB {DuckDb.Rows("SELECT version()")[0][0]} threads={Environment.ProcessorCount}");
        Console.WriteLine($"{"side",-7} {"part",-36} {"seconds",9}");
        Console.WriteLine($"{"engine",-7} {$"compile {conditions.Count} conditions",-36} {compileSeconds,9:F3}");
        Console.WriteLine($"{"engine",-7} {"evaluate, first pass (JIT)",-36} {coldSeconds,9:F3}");
        Console.WriteLine($"{"engine",-7} {"evaluate (bitmaps)",-36} {evaluateSeconds,9:F3}");
        Console.WriteLine($"{"engine",-7} {"members' ids from the bitmaps",-36} {idsSeconds,9:F3}");
        Console.WriteLine($"{"duckdb",-7} {"one query, a column per segment",-36} {oneQuerySeconds,9:F3}");
        Console.WriteLine($"{"duckdb",-7} {"a query per segment",-36} {perQuerySeconds,9:F3}");
        if (withDeltas)
        {
            Console.WriteLine($"{"engine",-7} {"deltas (merge of sorted ids)",-36} {engineDeltaSeconds,9:F3}");
            Console.WriteLine($"{"duckdb",-7} {"deltas (EXCEPT both ways)",-36} {duckDeltaSeconds,9:F3}");
        }
        Console.WriteLine($"evaluation: DuckDB / engine, the form better for DuckDB (columns vs bitmaps {oneQuerySeconds / evaluateSeconds:F1}x, member tables vs bitmaps and ids {perQuerySeconds / (evaluateSeconds + idsSeconds):F1}x) = {evaluationRatio:F1}x (target >= {EvaluationTarget:F0}x: {(evaluationRatio >= EvaluationTarget ? "met" : "NOT met")})");
        if (withDeltas)
        {
            Console.WriteLine($"deltas: DuckDB / engine = {deltaRatio:F1}x (target >= {DeltaTarget:F0}x: {(deltaRatio >= DeltaTarget ? "met" : "NOT met")}); {entered:N0} entered, {exited:N0} exited on both sides");
        }
        var json = Path.Combine(BenchmarkData.RepositoryRoot, "artifacts", "bench", $"segments-scale-{profiles}-{DateTime.UtcNow:yyyyMMdd'T'HHmmss'Z'}.json");
        Directory.CreateDirectory(Path.GetDirectoryName(json)!);
        File.WriteAllText(json, JsonSerializer.Serialize(new
        {
            benchmark = "segments-scale",
            profiles,
            processors = Environment.ProcessorCount,
            conditions,
            engine = new { compile_seconds = compileSeconds, first_pass_seconds = coldSeconds, evaluate_seconds = evaluateSeconds, ids_seconds = idsSeconds, deltas_seconds = engineDeltaSeconds },
            duckdb = new { one_query_seconds = oneQuerySeconds, per_query_seconds = perQuerySeconds, deltas_seconds = duckDeltaSeconds },
            memberships = engineMembers,
            entered,
            exited,
            evaluation_ratio = evaluationRatio,
            delta_ratio = deltaRatio,
        }, Json));
        Console.WriteLine($"// written: {Path.GetRelativePath(BenchmarkData.RepositoryRoot, json)}");
        return 0;
    }

    /// <summary>Drops about 1% of the members and adds about as many other ids: a plausible previous night.</summary>
    private static long[] Perturb(long[] members, int profiles, Random random)
    {
        var added = new long[members.Length / 100 + 1];
        for (var i = 0; i < added.Length; i++)
        {
            added[i] = random.NextInt64(1, profiles * 2L);
        }
        Array.Sort(added);
        // Merge the kept members with the added ids, both ascending, without repeats.
        var result = new List<long>(members.Length + added.Length);
        int m = 0, a = 0;
        while (m < members.Length || a < added.Length)
        {
            long next;
            if (a >= added.Length || (m < members.Length && members[m] <= added[a]))
            {
                next = members[m++];
                if (random.Next(100) == 0)
                {
                    continue;
                }
            }
            else
            {
                next = added[a++];
            }
            if (result.Count == 0 || result[^1] != next)
            {
                result.Add(next);
            }
        }
        return [.. result];
    }

    private static void LoadMembership(DuckDBConnection duck, string name, List<long[]> members)
    {
        // The segment as a small integer: at 10M profiles the two nights hold 800M rows, and a string per row would
        // not fit in memory beside the EXCEPT's hash tables.
        Execute(duck, $"CREATE TABLE {name} (segment SMALLINT, profile_id BIGINT)");
        using var appender = duck.CreateAppender(name);
        for (var i = 0; i < members.Count; i++)
        {
            var segment = (short)i;
            foreach (var id in members[i])
            {
                appender.CreateRow().AppendValue(segment).AppendValue(id).EndRow();
            }
        }
    }

    private static void Execute(DuckDBConnection duck, string sql) => DuckDb.Execute(duck, sql);

    private static long Long(DuckDBConnection duck, string sql) => DuckDb.Long(duck, sql);

    private static long? LongOption(string[] args, string name) => ChildSide.LongOption(args, name);
}
