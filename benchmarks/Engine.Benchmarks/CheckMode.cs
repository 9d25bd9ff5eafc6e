using System.Diagnostics;
using System.Globalization;
using DuckDB.NET.Data;
using Engine.Benchmarks.Identity;
using Engine.Benchmarks.Infrastructure;
using Engine.Benchmarks.Storage;
using Engine.Datasets;
using Engine.Storage;

namespace Engine.Benchmarks;

/// <summary>
/// <c>--check</c>: every benchmark case once, on a small input, with its answer verified against the peer
/// (DuckDB) — so CI proves the benchmarks still measure correct work without paying for a full run.
/// </summary>
internal static class CheckMode
{
    public static async Task<int> RunAsync(string[] args)
    {
        var people = 20_000;
        var index = Array.IndexOf(args, "--people");
        if (index >= 0 && index + 1 < args.Length)
        {
            people = int.Parse(args[index + 1], CultureInfo.InvariantCulture);
        }
        var failures = 0;
        if (args.Contains("--scoring-only"))
        {
            failures += Scores.ScoringScaleRun.Check();
            Console.WriteLine(failures == 0 ? "check passed" : $"check FAILED: {failures} case(s) gave a wrong answer");
            return failures == 0 ? 0 : 1;
        }
        if (args.Contains("--e2e-only"))
        {
            failures += await EndToEnd.NightlyRunScale.CheckAsync(2_000);
            Console.WriteLine(failures == 0 ? "check passed" : $"check FAILED: {failures} case(s) gave a wrong answer");
            return failures == 0 ? 0 : 1;
        }
        var graphNodes = 1_000_000;
        index = Array.IndexOf(args, "--graph-nodes");
        if (index >= 0 && index + 1 < args.Length)
        {
            graphNodes = int.Parse(args[index + 1], CultureInfo.InvariantCulture);
        }
        failures += IdentityCheck.Run(graphNodes);
        // The identity scale run's DuckDB peer finds the engine's partition (limits off, phones left out).
        failures += await IdentityPeerCheck.RunAsync(5_000);
        if (args.Contains("--identity-only"))
        {
            Console.WriteLine(failures == 0 ? "check passed" : $"check FAILED: {failures} case(s) gave a wrong answer");
            return failures == 0 ? 0 : 1;
        }
        // End to end: both nights of `engine run` and of the DuckDB peer agree (counts, partition, columns, member sets).
        failures += await EndToEnd.NightlyRunScale.CheckAsync(2_000);
        // Scoring: the compiled tree evaluator, ML.NET's Transform and PredictionEngine agree on every row.
        failures += Scores.ScoringScaleRun.Check();
        var output = Path.Combine(Path.GetTempPath(), $"engine-bench-check-{Guid.NewGuid():N}");
        try
        {
            var clock = Stopwatch.StartNew();
            var summary = await new SyntheticGenerator(new GeneratorOptions { People = people, Seed = 1 })
                .GenerateAsync(new StorageLocation(new LocalObjectStore(output), ""));
            var generateSeconds = clock.Elapsed.TotalSeconds;
            Console.WriteLine($"generate      {people,10:N0} people  {summary.Events,12:N0} events  {generateSeconds,8:F2} s  {summary.Events / generateSeconds,14:N0} events/s");

            var dataset = await Dataset.OpenAsync(new StorageLocation(new LocalObjectStore(output), "events"));
            using var duck = new DuckDBConnection("Data Source=:memory:");
            duck.Open();
            var glob = Path.Combine(output, "events", "**", "*.parquet");
            // Once each to warm caches, then timed.
            ParquetReadBenchmarks.ReadWithDuckDb(duck, glob);
            ParquetReadBenchmarks.ReadWithEngine(dataset);
            clock.Restart();
            var expected = ParquetReadBenchmarks.ReadWithDuckDb(duck, glob);
            var duckSeconds = clock.Elapsed.TotalSeconds;
            clock.Restart();
            var actual = ParquetReadBenchmarks.ReadWithEngine(dataset);
            var engineSeconds = clock.Elapsed.TotalSeconds;
            var same = expected.Equals(actual);
            failures += same ? 0 : 1;
            Console.WriteLine($"read DuckDB   {expected.Rows,10:N0} rows    {duckSeconds,8:F3} s");
            Console.WriteLine($"read engine   {actual.Rows,10:N0} rows    {engineSeconds,8:F3} s  ratio {engineSeconds / duckSeconds:F2}x  {(same ? "answers equal" : "ANSWERS DIFFER")}");
            if (!same)
            {
                Console.WriteLine($"  DuckDB: {expected}");
                Console.WriteLine($"  engine: {actual}");
            }

            await using var s3 = await S3Copy.CreateAsync(Path.Combine(output, "events"));
            ParquetReadBenchmarks.ReadWithEngine(s3.Dataset);
            s3.Store.ResetCounters();
            clock.Restart();
            var fromS3 = ParquetReadBenchmarks.ReadWithEngine(s3.Dataset);
            var s3Seconds = clock.Elapsed.TotalSeconds;
            var sameS3 = expected.Equals(fromS3);
            failures += sameS3 ? 0 : 1;
            Console.WriteLine($"read engine S3 {fromS3.Rows,9:N0} rows    {s3Seconds,8:F3} s  ratio {s3Seconds / duckSeconds:F2}x (vs DuckDB local)  {s3.Store.GetCount} GETs, {s3.Store.BytesFetched / 1048576.0:F1} of {s3.Dataset.TotalBytes / 1048576.0:F1} MB  {(sameS3 ? "answers equal" : "ANSWERS DIFFER")}");
        }
        finally
        {
            if (Directory.Exists(output))
            {
                Directory.Delete(output, recursive: true);
            }
        }
        Console.WriteLine(failures == 0 ? "check passed" : $"check FAILED: {failures} case(s) gave a wrong answer");
        return failures == 0 ? 0 : 1;
    }
}
