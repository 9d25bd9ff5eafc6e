using Engine.Diagnostics;
using System.Diagnostics;
using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using Engine.Benchmarks.Identity;
using Engine.Benchmarks.Infrastructure;
using Engine.Datasets;
using Engine.Storage;
using Engine.Workspaces;
using Spectre.Console;

namespace Engine.Benchmarks.EndToEnd;

/// <summary>
/// <c>--e2e-scale --people N [--data DIR] [--keep] [--keep-work] [--duckdb-memory 17GB] [--engine PATH] [--incremental]</c>: the whole
/// nightly run on N generated people, twice (a first night and the next), by the engine and by DuckDB SQL over the same
/// Parquet, stage by stage, with each side's peak memory, compared before any ratio is printed (<see cref="NightCheck"/>);
/// a table on stdout and JSON under <c>artifacts/bench/</c>. Issue 7's goal: at 10M people the engine at least 5x faster
/// than DuckDB end to end, with a peak under 16 GiB.
/// </summary>
/// <remarks>
/// <para><b>Engine side</b>: the published command line, <c>engine run --workspace W --run-id night-K --as-of T</c>, a child
/// process each night, measured from outside (<see cref="MeasuredProcess"/>: wall time, VmHWM sampled, other processes'
/// CPU); per-stage times come from the run's manifest. Night 1 is as of 2026-10-31 on an empty output: it trains the
/// churn model (five 30-day windows) and every member enters. Night 2 is as of 2026-11-01 (the data's end): the model
/// only scores, and the deltas are against night 1's membership. The data does not change between the nights, so the
/// default incremental identity would read no new file; night 2 runs <c>--full-refresh</c> so that it rebuilds the graph
/// from every file as DuckDB does (<c>--incremental</c> measures the default instead, which then does less work than
/// its peer).</para>
/// <para><b>DuckDB side</b>: <see cref="DuckDbNight"/>, a child process of this executable per night, one side after the
/// other, never at once.</para>
/// <para><b>Workspace</b>: <see cref="E2eWorkspace"/>: the example workspace with identity rules DuckDB can reproduce.</para>
/// <para><b>Data and work folder.</b> Without <c>--data</c> the people are generated into (or reused from)
/// <c>artifacts/bench-data/people-N-seed-1</c> like the other scale runs; data this run generated is deleted afterwards
/// unless <c>--keep</c> is given. Both sides write under <c>artifacts/bench-e2e/work-N/</c> (the workspace, its runs,
/// DuckDB's results, the engine's logs), deleted afterwards unless <c>--keep-work</c> is given or a check failed.</para>
/// </remarks>
internal static class NightlyRunScale
{
    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>Issue 7's goal: DuckDB's time over the engine's, end to end, and the engine's peak memory.</summary>
    private const double TargetRatio = 5;
    private const long TargetPeakBytes = 16L << 30;

    /// <summary>The two nights' as-of instants: the day before the generated history's end, and its end.</summary>
    private static readonly DateTimeOffset[] AsOf = [GeneratorOptions.DefaultAsOf.AddDays(-1), GeneratorOptions.DefaultAsOf];

    private static readonly string[] StageNames = ["ingest", "identity", "profiles", "scores", "segments"];

    /// <summary><c>--e2e-workspace DIR --data DATA</c>: writes the benchmark's workspace over generated data and stops, for a run by hand (under a profiler, say).</summary>
    public static int WriteWorkspace(string[] args)
    {
        var folder = ChildSide.StringOption(args, "--e2e-workspace") ?? throw new ArgumentException("--e2e-workspace DIR");
        var data = ChildSide.StringOption(args, "--data") ?? throw new ArgumentException("--e2e-workspace needs --data DIR (generated people)");
        if (Directory.Exists(folder) && Directory.EnumerateFileSystemEntries(folder).Any())
        {
            Console.Error.WriteLine($"--e2e-workspace: {folder} is not empty");
            return 2;
        }
        E2eWorkspace.Write(Path.GetFullPath(folder), Path.GetFullPath(data));
        Console.WriteLine($"wrote the end-to-end benchmark's workspace to {folder}; run it with: engine run --workspace {folder} --as-of {AsOf[0]:yyyy-MM-dd}");
        return 0;
    }

    public static int Run(string[] args)
    {
        try
        {
            var people = ChildSide.LongOption(args, "--people") ?? throw new ArgumentException("--people N is required");
            var dataDir = Path.GetFullPath(ChildSide.StringOption(args, "--data")
                ?? Path.Combine(BenchmarkData.RepositoryRoot, "artifacts", "bench-data", $"people-{people}-seed-1"));
            var generated = IdentityScaleRun.EnsureData(dataDir, people);
            var work = Path.Combine(BenchmarkData.RepositoryRoot, "artifacts", "bench-e2e", $"work-{people}");
            var keepWork = args.Contains("--keep-work");
            try
            {
                var outcome = Measure(people, dataDir, work, args);
                if (outcome.Failures.Count > 0)
                {
                    keepWork = true;
                    return 1;
                }
                var json = Path.Combine(BenchmarkData.RepositoryRoot, "artifacts", "bench", $"e2e-{people}-{DateTime.UtcNow:yyyyMMdd'T'HHmmss'Z'}.json");
                Directory.CreateDirectory(Path.GetDirectoryName(json)!);
                File.WriteAllText(json, JsonSerializer.Serialize(outcome.Report, Json));
                Console.WriteLine($"// written: {Path.GetRelativePath(BenchmarkData.RepositoryRoot, json)}");
                return 0;
            }
            finally
            {
                if (keepWork)
                {
                    Console.Error.WriteLine($"// kept: the workspace, both sides' runs and logs in {work}");
                }
                else if (Directory.Exists(work))
                {
                    Directory.Delete(work, recursive: true);
                }
                if (generated && !args.Contains("--keep"))
                {
                    Console.Error.WriteLine($"// deleting the generated data {dataDir} (--keep keeps it)");
                    Directory.Delete(dataDir, recursive: true);
                }
            }
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"--e2e-scale: {e.Message}");
            return 2;
        }
    }

    /// <summary>
    /// CheckMode's form: both nights on <paramref name="people"/> freshly generated people, every agreement check, no
    /// timing judged. Returns the number of failures (0 or 1).
    /// </summary>
    public static async Task<int> CheckAsync(long people)
    {
        var folder = Path.Combine(Path.GetTempPath(), $"engine-e2e-check-{Guid.NewGuid():N}");
        try
        {
            var data = Path.Combine(folder, "data");
            await new SyntheticGenerator(new GeneratorOptions { People = people, Seed = 1 }).GenerateAsync(new StorageLocation(new LocalObjectStore(data), ""));
            var outcome = Measure(people, data, Path.Combine(folder, "work"), ["--duckdb-memory", "2GB"], quiet: true);
            var n2 = outcome.Engine[1];
            Console.WriteLine($"end to end vs DuckDB {people,6:N0} people  two nights  {n2.Profiles:N0} profiles  {n2.Members.Values.Sum():N0} memberships, "
                + $"{n2.Entered.Values.Sum():N0} entered, {n2.Exited.Values.Sum():N0} exited on night 2  {(outcome.Failures.Count == 0 ? "sides agree" : "SIDES DIFFER")}");
            foreach (var failure in outcome.Failures)
            {
                Console.WriteLine($"  {failure}");
            }
            return outcome.Failures.Count == 0 ? 0 : 1;
        }
        catch (InvalidOperationException e)
        {
            Console.WriteLine($"end to end vs DuckDB: FAILED: {e.Message}");
            return 1;
        }
        finally
        {
            if (Directory.Exists(folder))
            {
                Directory.Delete(folder, recursive: true);
            }
        }
    }

    private sealed record Outcome(List<EngineNight> Engine, List<DuckNightReport> Duck, List<string> Failures, object? Report);

    private static Outcome Measure(long people, string dataDir, string work, string[] args, bool quiet = false)
    {
        if (Directory.Exists(work))
        {
            // A previous run's output would make night 1 a continuation (no training, deltas against it).
            Directory.Delete(work, recursive: true);
        }
        var engine = FindEngine(ChildSide.StringOption(args, "--engine"));
        var memoryLimit = ChildSide.StringOption(args, "--duckdb-memory") ?? DuckDbPeerOptions.DefaultMemoryLimit();
        var incremental = args.Contains("--incremental");
        var workspaceDir = Path.Combine(work, "workspace");
        var workspace = E2eWorkspace.Write(workspaceDir, dataDir);
        var runsDir = Path.Combine(workspaceDir, workspace.Output, "runs");
        var (compared, engineOnly) = E2eWorkspace.SplitSegments(workspace);
        if (!quiet)
        {
            Console.WriteLine($"// end-to-end scale run: {people:N0} people in {dataDir}; {Environment.ProcessorCount} cores, {ProcessMemory.PhysicalBytes() / (double)(1L << 30):F1} GiB memory");
            Console.WriteLine($"// engine: {engine}; identity rules: {E2eWorkspace.Describe(workspace.Identity)}; segments compared: {string.Join(", ", compared.Select(s => s.Name))}; engine only (score columns): {string.Join(", ", engineOnly.Select(s => s.Name))}");
        }

        // The sides one after the other, never at once: the engine's two nights, then DuckDB's.
        var engineNights = new List<EngineNight>();
        for (var night = 1; night <= 2; night++)
        {
            engineNights.Add(EngineNight.Run(engine, workspaceDir, runsDir, night, AsOf[night - 1], fullRefresh: night > 1 && !incremental, Path.Combine(work, $"engine-night-{night}.log")));
        }
        var duckNights = new List<DuckNightReport>();
        for (var night = 1; night <= 2; night++)
        {
            var sideArgs = new List<string>
            {
                "--night", night.ToString(CultureInfo.InvariantCulture), "--data", dataDir, "--work", work, "--workspace", workspaceDir,
                "--as-of", AsOf[night - 1].ToString("O", CultureInfo.InvariantCulture), "--duckdb-memory", memoryLimit,
            };
            if (night > 1)
            {
                sideArgs.AddRange(["--previous", duckNights[^1].SegmentsParquet]);
            }
            var clock = Stopwatch.StartNew();
            var report = ChildSide.Run<DuckNightReport>("--e2e-side", "duckdb", sideArgs, Path.Combine(work, $"duckdb-night-{night}.json"), Json);
            // The child's own wall time as the parent sees it, process start included, as for the engine.
            report.Settings["wall_seconds"] = clock.Elapsed.TotalSeconds.ToString("F3", CultureInfo.InvariantCulture);
            duckNights.Add(report);
        }

        // A benchmark whose sides compute different things measures nothing: compare before reporting.
        var failures = new List<string>();
        var summary = new List<string>();
        for (var i = 0; i < 2; i++)
        {
            failures.AddRange(NightCheck.Counts(engineNights[i], duckNights[i]));
        }
        if (failures.Count == 0)
        {
            failures.AddRange(NightCheck.Results(engineNights[1], duckNights[1], memoryLimit, Path.Combine(work, "check-tmp"), summary));
        }
        if (!quiet)
        {
            Console.WriteLine();
            Console.WriteLine("check, night 2: engine against DuckDB (profile columns: non-NULL values and their sum; strings: total length):");
            foreach (var line in summary)
            {
                Console.WriteLine($"  {line}");
            }
        }
        if (failures.Count > 0 && !quiet)
        {
            Console.Error.WriteLine($"check FAILED: the two sides computed different results:\n  {string.Join("\n  ", failures)}");
        }
        if (failures.Count > 0)
        {
            return new Outcome(engineNights, duckNights, failures, null);
        }
        if (!quiet)
        {
            var n2 = engineNights[1];
            Console.WriteLine($"check passed: both nights, {n2.Profiles:N0} profiles, {n2.Identifiers:N0} identifiers; night 2: {n2.Members.Where(m => duckNights[1].Members.ContainsKey(m.Key)).Sum(m => m.Value):N0} memberships, "
                + $"{n2.Entered.Where(m => duckNights[1].Members.ContainsKey(m.Key)).Sum(m => m.Value):N0} entered, {n2.Exited.Where(m => duckNights[1].Members.ContainsKey(m.Key)).Sum(m => m.Value):N0} exited in {compared.Count} segments on both sides");
        }
        var result = quiet ? null : Report(people, dataDir, workspace, engineNights, duckNights, compared.Count, engineOnly.Select(s => s.Name).ToList(), incremental);
        return new Outcome(engineNights, duckNights, failures, result);
    }

    /// <summary><c>--e2e-side duckdb --night K …</c>: one DuckDB night in this (child) process.</summary>
    public static int RunSide(string[] args)
    {
        var startBytes = ProcessMemory.CurrentBytes();
        var others = new OtherCpu();
        string Need(string name) => ChildSide.StringOption(args, name) ?? throw new ArgumentException($"--e2e-side needs {name}");
        var night = int.Parse(Need("--night"), CultureInfo.InvariantCulture);
        var work = Need("--work");
        var workspace = WorkspaceLoader.Load(Need("--workspace"));
        var options = new DuckDbPeerOptions(Environment.ProcessorCount, Need("--duckdb-memory"), Path.Combine(work, "duckdb-tmp"));
        var report = DuckDbNight.Run(workspace, Need("--data"), Path.Combine(work, $"duckdb-night-{night}"),
            DateTimeOffset.Parse(Need("--as-of"), CultureInfo.InvariantCulture), night, ChildSide.StringOption(args, "--previous"), options);
        report.StartBytes = startBytes;
        report.PeakBytes = ProcessMemory.PeakBytes();
        report.OtherCpuCores = others.Cores();
        File.WriteAllText(Path.Combine(work, $"duckdb-night-{night}.json"), JsonSerializer.Serialize(report, Json));
        return 0;
    }

    /// <summary>
    /// The engine command line: <c>--engine PATH</c>, else the one built beside this executable (same configuration),
    /// else the one <c>make build</c> publishes to <c>artifacts/engine/</c>.
    /// </summary>
    private static string FindEngine(string? option)
    {
        if (option is not null)
        {
            return File.Exists(option) ? Path.GetFullPath(option) : throw new ArgumentException($"--engine {option}: no such file");
        }
        var root = BenchmarkData.RepositoryRoot;
        var candidates = new List<string>();
        // This executable lives in benchmarks/Engine.Benchmarks/bin/<configuration>/<tfm>/<rid>/: the CLI's build output has the same tail.
        var own = Path.GetFullPath(AppContext.BaseDirectory);
        var marker = $"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}";
        var at = own.LastIndexOf(marker, StringComparison.Ordinal);
        if (at >= 0)
        {
            candidates.Add(Path.Combine(root, "engine", "Engine.Cli", "bin", own[(at + marker.Length)..], "Engine.Cli"));
        }
        candidates.Add(Path.Combine(root, "artifacts", "engine", "Engine.Cli"));
        return candidates.FirstOrDefault(File.Exists)
            ?? throw new ArgumentException($"no engine command line at {string.Join(" or ", candidates)}: build it (make build) or give --engine PATH");
    }

    /// <summary>One line of the table (and of the JSON's <c>table</c>): a stage, or a part of one, on a night.</summary>
    private sealed record TableRow(int Night, string Stage, string? Part, double? EngineSeconds, double? DuckdbSeconds, double? Ratio);

    private static object Report(long people, string dataDir, Workspace workspace, List<EngineNight> engine, List<DuckNightReport> duck, int compared, List<string> engineOnly, bool incremental)
    {
        var rows = new List<TableRow>();
        var table = new Table().Border(TableBorder.Rounded)
            .Title($"nightly run, {people:N0} people: engine beside DuckDB SQL over the same Parquet ({Environment.ProcessorCount} cores)")
            .AddColumn("night").AddColumn("stage")
            .AddColumn(new TableColumn("engine s").RightAligned()).AddColumn(new TableColumn("DuckDB s").RightAligned())
            .AddColumn(new TableColumn("DuckDB / engine").RightAligned());
        static string S(double? seconds) => seconds is { } s ? s.ToString("F2", CultureInfo.InvariantCulture) : "—";
        static string X(double? ratio) => ratio is { } r && double.IsFinite(r) ? $"{r:F2}x" : "—";
        for (var i = 0; i < 2; i++)
        {
            var (e, d) = (engine[i], duck[i]);
            var night = i + 1;
            foreach (var stage in StageNames)
            {
                var es = e.Stages.First(s => s.Stage == stage);
                var ds = d.Stages.First(s => s.Stage == stage);
                double? duckSeconds = stage == "scores" ? null : ds.Seconds;
                var ratio = duckSeconds / es.Seconds;
                rows.Add(new(night, stage, null, es.Seconds, duckSeconds, ratio));
                table.AddRow(night.ToString(CultureInfo.InvariantCulture), $"[bold]{stage}[/]", S(es.Seconds), stage == "scores" ? "no peer" : S(duckSeconds), X(ratio));
                foreach (var part in es.Parts)
                {
                    rows.Add(new(night, stage, part.Name, part.Seconds, null, null));
                    table.AddRow("", Markup.Escape($"  engine: {part.Name}"), S(part.Seconds), "", "");
                }
                foreach (var part in ds.Parts)
                {
                    rows.Add(new(night, stage, part.Name, null, part.Seconds, null));
                    table.AddRow("", Markup.Escape($"  DuckDB: {part.Name}"), "", S(part.Seconds), "");
                }
            }
            var duckWork = d.Stages.Sum(s => s.Seconds);
            var engineComparable = e.Stages.Where(s => s.Stage != "scores").Sum(s => s.Seconds);
            var duckWall = double.Parse(d.Settings["wall_seconds"], CultureInfo.InvariantCulture);
            rows.Add(new(night, "stages, scores left out", null, engineComparable, duckWork, duckWork / engineComparable));
            rows.Add(new(night, "stages", null, e.StageSeconds, duckWork, duckWork / e.StageSeconds));
            rows.Add(new(night, "end to end (process wall time)", null, e.WallSeconds, duckWall, duckWall / e.WallSeconds));
            table.AddRow(night.ToString(CultureInfo.InvariantCulture), "stages, scores left out", S(engineComparable), S(duckWork), X(duckWork / engineComparable));
            table.AddRow(night.ToString(CultureInfo.InvariantCulture), "[bold]end to end[/] (process wall time)", $"[bold]{S(e.WallSeconds)}[/]", $"[bold]{S(duckWall)}[/]", $"[bold]{X(duckWall / e.WallSeconds)}[/]");
            table.AddRow(night.ToString(CultureInfo.InvariantCulture), "peak memory (VmHWM)", Gb(e.PeakBytes), Gb(d.PeakBytes), "");
            foreach (var (stage, stagePeak) in e.StagePeakBytes)
            {
                table.AddRow("", Markup.Escape($"  engine: {stage}'s own peak"), Gb(stagePeak), "", "");
            }
            table.AddRow(night.ToString(CultureInfo.InvariantCulture), "other processes' CPU (cores)", e.OtherCpuCores.ToString("F2", CultureInfo.InvariantCulture), d.OtherCpuCores.ToString("F2", CultureInfo.InvariantCulture), "");
            if (i == 0)
            {
                table.AddEmptyRow();
            }
        }
        Console.WriteLine();
        if (Console.IsOutputRedirected)
        {
            // Not a terminal (a log file, CI): Spectre would wrap the table at 80 columns.
            AnsiConsole.Profile.Width = 150;
        }
        AnsiConsole.Write(table);

        var n2 = (engine[1], duck[1]);
        var ratio2 = double.Parse(n2.Item2.Settings["wall_seconds"], CultureInfo.InvariantCulture) / n2.Item1.WallSeconds;
        var bothEngine = engine.Sum(e => e.WallSeconds);
        var bothDuck = duck.Sum(d => double.Parse(d.Settings["wall_seconds"], CultureInfo.InvariantCulture));
        var peak = engine.Max(e => e.PeakBytes);
        var others = Math.Max(engine.Max(e => e.OtherCpuCores), duck.Max(d => d.OtherCpuCores));
        Console.WriteLine($"DuckDB {duck[0].Settings["version"]} threads={duck[0].Settings["threads"]} memory_limit={duck[0].Settings["memory_limit"]}; its profiles stage is the traits peer's distinct-keys form; {duck[0].PropagationPasses}/{duck[1].PropagationPasses} label propagation passes");
        Console.WriteLine($"engine identity on night 2: {engine[1].IdentityMode}{(incremental ? " (--incremental: the data did not change, so it read no source file; DuckDB rebuilt from every file)" : " (--full-refresh: every file re-read, as DuckDB does)")}");
        foreach (var (name, model) in engine[0].Models)
        {
            Console.WriteLine($"model {name}: night 1 {model}; night 2 {engine[1].Models.GetValueOrDefault(name)}");
        }
        Console.WriteLine($"scores: no DuckDB peer (no model training or scoring in SQL); the engine's time is in its totals, DuckDB's totals have nothing for it; segments using score columns ({string.Join(", ", engineOnly)}) are the engine's alone, {compared} segments compared");
        Console.WriteLine($"other processes' CPU while each side ran: at most {others:F2} cores{(others > 0.25 ? "  (the machine was shared: these timings are not reliable)" : "")}");
        Console.WriteLine($"end to end, night 2: DuckDB / engine = {ratio2:F2}x (goal >= {TargetRatio:F0}x at 10M people: {(ratio2 >= TargetRatio ? "met" : "NOT met")} at {people:N0}); both nights {bothDuck / bothEngine:F2}x");
        Console.WriteLine($"engine peak memory: {Gb(peak)} (goal < 16 GiB at 10M people: {(peak < TargetPeakBytes ? "met" : "NOT met")} at {people:N0})");
        return new
        {
            Benchmark = "e2e-scale",
            People = people,
            Data = dataDir,
            Utc = DateTime.UtcNow,
            Processors = Environment.ProcessorCount,
            PhysicalMemoryBytes = ProcessMemory.PhysicalBytes(),
            IdentityRules = E2eWorkspace.Describe(workspace.Identity),
            MemoryMeasure = "VmHWM of each side's own child process (engine: sampled every 50 ms from outside; DuckDB: read by the child at its end), .NET runtime included",
            Incremental = incremental,
            Table = rows,
            RatioNight2 = ratio2,
            RatioBothNights = bothDuck / bothEngine,
            TargetRatio,
            EnginePeakBytes = peak,
            TargetPeakBytes,
            Engine = engine,
            Duckdb = duck,
        };
    }

    private static string Gb(long bytes) => bytes < 0 ? "n/a" : $"{bytes / (double)(1L << 30):F2} GiB";
}
