using Engine.Diagnostics;
using System.Diagnostics;
using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using DuckDB.NET.Data;
using Engine.Benchmarks.Infrastructure;
using Engine.Datasets;
using Engine.Identity;
using Engine.Storage;
using Engine.Workspaces;
using Microsoft.Extensions.Logging.Abstractions;

namespace Engine.Benchmarks.Identity;

/// <summary>One timed part of a side's identity stage.</summary>
internal sealed record PartReport(string Name, double Seconds);

/// <summary>What one side (engine or DuckDB) of the scale run measured, as its child process reports it.</summary>
internal sealed class SideReport
{
    public string Side { get; set; } = "";
    public List<PartReport> Parts { get; set; } = [];
    public double TotalSeconds { get; set; }
    public long Identifiers { get; set; }
    public long Edges { get; set; }
    public long Clusters { get; set; }

    /// <summary>Resident set when the child started, before any work (the .NET runtime and loaded libraries).</summary>
    public long StartBytes { get; set; }

    /// <summary>Peak resident set of the child (VmHWM) at the end of the side.</summary>
    public long PeakBytes { get; set; }

    /// <summary>Average cores' worth of CPU other processes used while the side ran (see <see cref="OtherCpu"/>).</summary>
    public double OtherCpuCores { get; set; }
    public Dictionary<string, string> Details { get; set; } = [];
}

/// <summary>
/// <c>--identity-scale --people N [--data DIR] [--keep] [--duckdb-memory 16GB] [--write-clusters] [--engine-scan-threads 1]</c>:
/// the identity stage on N generated people, the engine beside DuckDB doing the same stitching the warehouse-native way
/// (<see cref="DuckDbIdentityPeer"/>), on the same files, reporting identifiers/s, edges/s and peak memory per
/// identifier, and the ratio of DuckDB's time to the engine's (target: at least 20x). The table is printed and
/// written as JSON under <c>artifacts/bench/</c>. <c>--write-clusters</c> also writes DuckDB's (identifier_type,
/// identifier_value, cluster) to <c>artifacts/bench-data/identity-scale-N-duckdb-clusters.parquet</c>.
/// </summary>
/// <remarks>
/// <para><b>Memory, honestly.</b> The engine's arrays and DuckDB's native buffers would overlap or mask each other in
/// one process, freed managed memory is not always returned to the system at once, and a reset peak would not undo that. So each side runs in a child process
/// of its own (this same executable with <c>--identity-side engine|duckdb</c>), one after the other, never at the
/// same time; each reports its own VmHWM, which includes the .NET runtime it starts with (reported as the start
/// resident set: tens of MB on both sides). Timings do not include process start.</para>
/// <para><b>Data.</b> Without <c>--data</c> the people are generated (seed 1) into
/// <c>artifacts/bench-data/people-N-seed-1</c>, the folder the other benchmarks cache. A folder that already holds a
/// generated set is reused when its size is N (checked from the truth dataset: person ids run 1 … N). Data this run
/// generated is deleted afterwards unless <c>--keep</c> is given (10M people take about 19 GB); a reused folder is
/// never deleted.</para>
/// </remarks>
internal static class IdentityScaleRun
{
    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>
    /// Row groups the engine side reads and normalises at once: every core by default (the result does not depend on
    /// it); <c>--engine-scan-threads N</c> overrides it.
    /// </summary>
    private static int EngineScanParallelism { get; set; } = Environment.ProcessorCount;

    /// <summary>The DuckDB / engine ratio the identity issue asks for.</summary>
    private const double TargetRatio = 20;

    public static int Run(string[] args)
    {
        try
        {
            return RunScale(args);
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"--identity-scale: {e.Message}");
            return 2;
        }
    }

    private static int RunScale(string[] args)
    {
        var people = LongOption(args, "--people") ?? throw new ArgumentException("--people N is required");
        var keep = args.Contains("--keep");
        var dataOption = StringOption(args, "--data");
        var dataDir = Path.GetFullPath(dataOption ?? Path.Combine(BenchmarkData.RepositoryRoot, "artifacts", "bench-data", $"people-{people}-seed-1"));
        var memoryLimit = StringOption(args, "--duckdb-memory") ?? DuckDbPeerOptions.DefaultMemoryLimit();

        var generated = EnsureData(dataDir, people);
        var work = Path.Combine(BenchmarkData.RepositoryRoot, "artifacts", "bench-data", $"identity-scale-work-{people}-{Environment.ProcessId}");
        Directory.CreateDirectory(work);
        try
        {
            Console.WriteLine($"// identity scale run: {people:N0} people in {dataDir}; {Environment.ProcessorCount} cores, {ProcessMemory.PhysicalBytes() / (double)(1L << 30):F1} GiB memory");
            var sideArgs = new List<string> { "--data", dataDir, "--work", work, "--duckdb-memory", memoryLimit };
            if (args.Contains("--write-clusters"))
            {
                // Outside the work folder, so that it stays for comparing with an engine run's output.
                var clusters = Path.Combine(BenchmarkData.RepositoryRoot, "artifacts", "bench-data", $"identity-scale-{people}-duckdb-clusters.parquet");
                sideArgs.AddRange(["--write-clusters", clusters]);
            }
            if (StringOption(args, "--engine-scan-threads") is { } scanThreads)
            {
                sideArgs.AddRange(["--engine-scan-threads", scanThreads]);
            }
            var engine = RunChild("engine", sideArgs, work);
            var floor = RunChild("floor", sideArgs, work);
            var duck = RunChild("duckdb", sideArgs, work);
            var report = Report(people, dataDir, engine, floor, duck);
            var json = Path.Combine(BenchmarkData.RepositoryRoot, "artifacts", "bench", $"identity-scale-{people}-{DateTime.UtcNow:yyyyMMdd'T'HHmmss'Z'}.json");
            Directory.CreateDirectory(Path.GetDirectoryName(json)!);
            File.WriteAllText(json, JsonSerializer.Serialize(report, Json));
            Console.WriteLine($"// written: {Path.GetRelativePath(BenchmarkData.RepositoryRoot, json)}");
            return 0;
        }
        finally
        {
            if (keep)
            {
                Console.Error.WriteLine($"// kept: the data in {dataDir} and each side's report in {work}");
            }
            else
            {
                Directory.Delete(work, recursive: true);
                if (generated)
                {
                    Console.Error.WriteLine($"// deleting the generated data {dataDir} (--keep keeps it)");
                    Directory.Delete(dataDir, recursive: true);
                }
            }
        }
    }

    /// <summary>
    /// The engine side: the identity stage itself (<see cref="IdentityStage"/>), as <c>engine run</c> runs it — read every
    /// identifier column, guard shared values, stitch with limits, assign profile ids, write <c>identity/</c>,
    /// <c>identity/merges</c>, <c>identity/links</c> — with the built-in rules over the generator's events (user_id,
    /// email, anonymous_id) and profiles (customer_id, email, phone), the columns the DuckDB side reads.
    /// </summary>
    public static SideReport RunEngineIdentity(string dataDir, string work)
    {
        var workspace = Workspace(dataDir, work);
        using var storage = new StorageResolver();
        var output = storage.Resolve(Path.Combine(work, "engine-output", "runs", "bench", IdentityStage.Folder));
        var clock = Stopwatch.StartNew();
        var result = new IdentityStage(storage, NullLogger.Instance)
            .RunAsync(workspace, "bench", output, null, new IdentityOptions { Parallelism = EngineScanParallelism, ScratchDirectory = work })
            .GetAwaiter().GetResult();
        var total = clock.Elapsed.TotalSeconds;
        var report = result.Report;
        double Part(string name) => report.TimingsMs.GetValueOrDefault(name) / 1000.0;
        Console.WriteLine($"engine: {report.RowsRead:N0} rows, {report.Identifiers:N0} identifiers, {report.Edges:N0} links, {report.Profiles:N0} profiles in {total:F2} s");
        return new SideReport
        {
            Side = "engine",
            Parts = [new("read+hash", Part("read")), new("stitch", Part("stitch")), new("profile ids", Part("assign")), new("write", Part("write"))],
            TotalSeconds = total,
            Identifiers = report.Identifiers,
            Edges = report.Edges,
            Clusters = report.Profiles,
            Details =
            {
                ["rows"] = report.RowsRead.ToString(CultureInfo.InvariantCulture),
                ["links_refused"] = string.Join(" ", report.LinksRefused.Select(p => $"{p.Key}={p.Value}")),
                ["shared_values"] = string.Join(" ", report.SharedValues.Select(p => $"{p.Key}={p.Value}")),
                ["scan_parallelism"] = EngineScanParallelism.ToString(CultureInfo.InvariantCulture),
                ["rules"] = "IdentityRules.Default (customer_id limit 1, email 5, phone 3, anonymous_id shared after 1)",
            },
        };
    }

    /// <summary>The engine side's workspace: the generator's events and profiles with their identifier columns.</summary>
    private static Workspace Workspace(string dataDir, string work) => new(work, "identity-scale", Path.Combine(work, "engine-output"),
    [
        new SourceDefinition
        {
            Name = "events", File = "sources/events.yaml", Location = Path.Combine(dataDir, GeneratedDatasets.EventsFolder), Schema = GeneratedDatasets.Events,
            Identifiers = new Dictionary<string, string> { ["user_id"] = "customer_id", ["email"] = "email", ["anonymous_id"] = "anonymous_id" },
        },
        new SourceDefinition
        {
            Name = "profiles", File = "sources/profiles.yaml", Location = Path.Combine(dataDir, GeneratedDatasets.ProfilesFolder), Schema = GeneratedDatasets.Profiles,
            Identifiers = new Dictionary<string, string> { ["customer_id"] = "customer_id", ["email"] = "email", ["phone"] = "phone" },
        },
    ], []);

    /// <summary>
    /// The floor under the engine side: the same identifier columns decoded by the same reader on as many workers,
    /// and nothing done with them. No identity stage that reads its input can finish faster than this.
    /// </summary>
    public static SideReport RunDecodeFloor(string dataDir, string work)
    {
        var workspace = Workspace(dataDir, work);
        using var storage = new StorageResolver();
        var clock = Stopwatch.StartNew();
        long rows = 0;
        foreach (var source in workspace.Sources)
        {
            var dataset = Dataset.OpenAsync(storage.Resolve(source.Location, work), source.Format).GetAwaiter().GetResult();
            var columns = source.Identifiers.Keys.Select(c => source.Schema.Find(c)!).ToList();
            var counts = DatasetScan.Run(dataset, columns, () => new long[1], (count, scan) => count[0] += scan.Batch.Length,
                source.ScanOptions(EngineScanParallelism));
            rows += counts.Sum(c => c[0]);
        }
        var seconds = clock.Elapsed.TotalSeconds;
        Console.WriteLine($"decode floor: {rows:N0} rows of identifier columns decoded in {seconds:F2} s");
        return new SideReport
        {
            Side = "floor",
            Parts = [new("decode only", seconds)],
            TotalSeconds = seconds,
            Details = { ["rows"] = rows.ToString(CultureInfo.InvariantCulture) },
        };
    }

    /// <summary>The DuckDB side: <see cref="DuckDbIdentityPeer"/> with explicit threads and memory limit.</summary>
    private static SideReport RunDuckDb(string dataDir, string work, string memoryLimit, string? clustersPath)
    {
        var options = new DuckDbPeerOptions(Environment.ProcessorCount, memoryLimit, Path.Combine(work, "duckdb-tmp"));
        using var peer = new DuckDbIdentityPeer(options);
        var result = peer.Run(dataDir, Console.WriteLine);
        var report = new SideReport
        {
            Side = "duckdb",
            Parts = [new("read+normalise", result.ReadNormaliseSeconds), new("ids+edges", result.IdsEdgesSeconds), new("propagation", result.PropagationSeconds)],
            TotalSeconds = result.TotalSeconds,
            Identifiers = result.Identifiers,
            Edges = result.Edges,
            Clusters = result.Clusters,
            Details =
            {
                ["distinct_identifier_rows"] = result.DistinctRows.ToString(CultureInfo.InvariantCulture),
                ["iterations"] = result.Iterations.ToString(CultureInfo.InvariantCulture),
                ["pass_seconds"] = string.Join(" ", result.Passes.Select(p => p.Seconds.ToString("F2", CultureInfo.InvariantCulture))),
                ["pass_labels_changed"] = string.Join(" ", result.Passes.Select(p => p.Changed.ToString(CultureInfo.InvariantCulture))),
            },
        };
        foreach (var (name, value) in result.Settings)
        {
            report.Details[name] = value;
        }
        // The engine's stage writes its result; so does this side, or the comparison would leave out a step.
        var path = clustersPath ?? Path.Combine(work, "duckdb-clusters.parquet");
        var seconds = peer.WriteClusters(path);
        report.Parts = [.. report.Parts, new("write", seconds)];
        report.TotalSeconds += seconds;
        report.Details["clusters_parquet"] = path;
        Console.WriteLine($"duckdb clusters written to {path} in {seconds:F2} s");
        return report;
    }

    /// <summary><c>--identity-side engine|duckdb --data DIR --work DIR --duckdb-memory X</c>: one side, in this (child) process.</summary>
    public static int RunSide(string[] args)
    {
        var startBytes = ProcessMemory.CurrentBytes();
        var others = new OtherCpu();
        var side = StringOption(args, "--identity-side") ?? throw new ArgumentException("--identity-side engine|floor|duckdb");
        EngineScanParallelism = (int)(LongOption(args, "--engine-scan-threads") ?? Environment.ProcessorCount);
        var dataDir = StringOption(args, "--data") ?? throw new ArgumentException("--identity-side needs --data DIR");
        var work = StringOption(args, "--work") ?? throw new ArgumentException("--identity-side needs --work DIR");
        var report = side switch
        {
            "engine" => RunEngineIdentity(dataDir, work),
            "floor" => RunDecodeFloor(dataDir, work),
            "duckdb" => RunDuckDb(dataDir, work, StringOption(args, "--duckdb-memory") ?? DuckDbPeerOptions.DefaultMemoryLimit(), StringOption(args, "--write-clusters")),
            _ => throw new ArgumentException($"unknown side '{side}' (engine or duckdb)"),
        };
        report.StartBytes = startBytes;
        report.PeakBytes = ProcessMemory.PeakBytes();
        report.OtherCpuCores = others.Cores();
        File.WriteAllText(Path.Combine(work, $"{side}.json"), JsonSerializer.Serialize(report, Json));
        return 0;
    }


    /// <summary>Generates <paramref name="people"/> people into <paramref name="dataDir"/> unless it holds them already; true when it generated.</summary>
    internal static bool EnsureData(string dataDir, long people)
    {
        if (File.Exists(Path.Combine(dataDir, GeneratedDatasets.TruthFolder, DatasetManifest.FileName)))
        {
            var size = GeneratedPeople(dataDir);
            if (size != people)
            {
                throw new ArgumentException($"{dataDir} holds a generated set of {size:N0} people, not {people:N0}: give another --data folder");
            }
            Console.Error.WriteLine($"// reusing {people:N0} generated people in {dataDir}");
            return false;
        }
        if (Directory.Exists(dataDir) && Directory.EnumerateFileSystemEntries(dataDir).Any())
        {
            throw new ArgumentException($"{dataDir} is not empty and holds no generated data set: give an empty or new --data folder");
        }
        Console.Error.WriteLine($"// generating {people:N0} people (seed 1) into {dataDir}");
        var clock = Stopwatch.StartNew();
        var summary = new SyntheticGenerator(new GeneratorOptions { People = people, Seed = 1 })
            .GenerateAsync(new StorageLocation(new LocalObjectStore(dataDir), "")).GetAwaiter().GetResult();
        Console.Error.WriteLine($"// generated {summary.Events:N0} events in {clock.Elapsed.TotalSeconds:F1} s");
        return true;
    }

    /// <summary>The number of people of a generated set: person ids run 1 … N (DuckDB answers the max from the Parquet statistics).</summary>
    private static long GeneratedPeople(string dataDir)
    {
        using var duck = new DuckDBConnection("Data Source=:memory:");
        duck.Open();
        using var command = duck.CreateCommand();
        command.CommandText = $"SELECT max(person_id) FROM read_parquet('{Path.Combine(dataDir, GeneratedDatasets.TruthFolder, "**", "*.parquet").Replace("'", "''", StringComparison.Ordinal)}')";
        return Convert.ToInt64(command.ExecuteScalar(), CultureInfo.InvariantCulture);
    }

    /// <summary>One line of the printed table (and of the JSON's <c>table</c>).</summary>
    private sealed record TableRow(string Side, string Part, double Seconds, double IdentifiersPerSecond, double EdgesPerSecond, long? PeakBytes, double? BytesPerIdentifier);

    private static object Report(long people, string dataDir, SideReport engine, SideReport floor, SideReport duck)
    {
        var ratio = duck.TotalSeconds / engine.TotalSeconds;
        var rows = new List<TableRow>();
        foreach (var side in new[] { engine, duck })
        {
            foreach (var part in side.Parts)
            {
                rows.Add(new(side.Side, part.Name, part.Seconds, side.Identifiers / part.Seconds, side.Edges / part.Seconds, null, null));
            }
            rows.Add(new(side.Side, "total", side.TotalSeconds, side.Identifiers / side.TotalSeconds, side.Edges / side.TotalSeconds,
                side.PeakBytes, (double)side.PeakBytes / side.Identifiers));
        }
        Console.WriteLine();
        Console.WriteLine($"identity stage, {people:N0} people ({long.Parse(engine.Details["rows"], CultureInfo.InvariantCulture):N0} source rows), {Environment.ProcessorCount} cores; "
            + $"engine and DuckDB each in a child process of its own; DuckDB {duck.Details["version"]} threads={duck.Details["threads"]} memory_limit={duck.Details["memory_limit"]}");
        Console.WriteLine($"{"side",-7} {"part",-15} {"seconds",9} {"identifiers/s",14} {"edges/s",13} {"peak RSS",10} {"bytes/identifier",17}");
        foreach (var row in rows)
        {
            Console.WriteLine($"{row.Side,-7} {row.Part,-15} {row.Seconds,9:F2} {row.IdentifiersPerSecond,14:N0} {row.EdgesPerSecond,13:N0} "
                + $"{(row.PeakBytes is { } peak ? Mb(peak) : ""),10} {(row.BytesPerIdentifier is { } bytes ? bytes.ToString("F0", CultureInfo.InvariantCulture) : ""),17}");
        }
        Console.WriteLine($"identifiers: engine {engine.Identifiers:N0}, DuckDB {duck.Identifiers:N0}; edges: engine {engine.Edges:N0}, DuckDB {duck.Edges:N0}; "
            + $"clusters: engine {engine.Clusters:N0} (default rules, limits on), DuckDB {duck.Clusters:N0} (connected components)");
        Console.WriteLine($"DuckDB label propagation: {duck.Details["iterations"]} passes; seconds per pass {duck.Details["pass_seconds"]}");
        Console.WriteLine($"peak RSS includes the runtime each child starts with: engine {Mb(engine.StartBytes)}, DuckDB {Mb(duck.StartBytes)}");
        Console.WriteLine($"other processes' CPU while each side ran: engine {engine.OtherCpuCores:F2} cores, DuckDB {duck.OtherCpuCores:F2} cores"
            + (engine.OtherCpuCores > 0.25 || duck.OtherCpuCores > 0.25 ? "  (the machine was shared: these timings are not reliable)" : ""));
        Console.WriteLine($"ratio DuckDB / engine: {ratio:F1}x (target >= {TargetRatio:F0}x: {(ratio >= TargetRatio ? "met" : "NOT met")})");
        var budget = duck.TotalSeconds / TargetRatio;
        Console.WriteLine($"decode floor: the engine's reader decodes the identifier columns alone, doing nothing with them, in {floor.TotalSeconds:F2} s; "
            + $"the target leaves the whole stage {budget:F2} s, {budget / floor.TotalSeconds:F2}x the floor; DuckDB / floor: {duck.TotalSeconds / floor.TotalSeconds:F1}x");
        return new
        {
            Benchmark = "identity-scale",
            People = people,
            Data = dataDir,
            Utc = DateTime.UtcNow,
            Processors = Environment.ProcessorCount,
            PhysicalMemoryBytes = ProcessMemory.PhysicalBytes(),
            MemoryMeasure = "VmHWM (peak resident set) of each side's own child process, .NET runtime included",
            Table = rows,
            RatioDuckdbToEngine = ratio,
            TargetRatio,
            DecodeFloorSeconds = floor.TotalSeconds,
            RatioDuckdbToDecodeFloor = duck.TotalSeconds / floor.TotalSeconds,
            Engine = engine,
            Duckdb = duck,
        };
    }

    private static string Mb(long bytes) => bytes < 0 ? "n/a" : $"{bytes / 1048576.0:N0} MB";

    private static SideReport RunChild(string side, List<string> sideArgs, string work) =>
        ChildSide.Run<SideReport>("--identity-side", side, sideArgs, Path.Combine(work, $"{side}.json"), Json);

    private static string? StringOption(string[] args, string name) => ChildSide.StringOption(args, name);

    private static long? LongOption(string[] args, string name) => ChildSide.LongOption(args, name);
}
