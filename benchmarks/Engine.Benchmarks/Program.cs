using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using Engine.Benchmarks;
using Engine.Benchmarks.Identity;
using Engine.Benchmarks.Infrastructure;

// `--check` runs every case once and verifies its answer (cheap enough for CI); anything else goes to
// BenchmarkDotNet (e.g. `--filter '*Read*'`). With no arguments every benchmark runs.
// `--identity-scale --people N`: the identity stage at scale beside DuckDB (each side in a child process started
// with `--identity-side`); see Identity/IdentityScaleRun.cs. `--segments-scale --profiles N`: a hundred segments and
// their deltas beside DuckDB; see Segments/SegmentScaleRun.cs. `--traits-scale --people N`: the profiles stage
// (attributes and traits) beside DuckDB's GROUP BY (children started with `--traits-side`); see Profiles/TraitScaleRun.cs.
// `--scoring-scale --rows N`: batch scoring with the compiled tree evaluator beside ML.NET's Transform and
// PredictionEngine; see Scores/ScoringScaleRun.cs. `--e2e-scale --people N`: the whole nightly run (`engine run`, two
// nights) beside the same work in DuckDB SQL (its nights started with `--e2e-side`); see EndToEnd/NightlyRunScale.cs.
// `--e2e-workspace DIR --data DATA` only writes that run's workspace, to run `engine run` on by hand or under a profiler.
if (args.Contains("--identity-side"))
{
    return IdentityScaleRun.RunSide(args);
}
if (args.Contains("--identity-scale"))
{
    return IdentityScaleRun.Run(args);
}
if (args.Contains("--traits-side"))
{
    return Engine.Benchmarks.Profiles.TraitScaleRun.RunSide(args);
}
if (args.Contains("--traits-scale"))
{
    return Engine.Benchmarks.Profiles.TraitScaleRun.Run(args);
}
if (args.Contains("--e2e-side"))
{
    return Engine.Benchmarks.EndToEnd.NightlyRunScale.RunSide(args);
}
if (args.Contains("--e2e-workspace"))
{
    return Engine.Benchmarks.EndToEnd.NightlyRunScale.WriteWorkspace(args);
}
if (args.Contains("--e2e-scale"))
{
    return Engine.Benchmarks.EndToEnd.NightlyRunScale.Run(args);
}
if (args.Contains("--scoring-scale"))
{
    return Engine.Benchmarks.Scores.ScoringScaleRun.Run(args);
}
if (args.Contains("--segments-scale"))
{
    return Engine.Benchmarks.Segments.SegmentScaleRun.Run(args);
}
if (args.Contains("--delivery-throughput"))
{
    return Engine.Benchmarks.Delivery.DeliveryThroughputRun.Run(args);
}
if (args.Contains("--check"))
{
    return await CheckMode.RunAsync(args);
}
var config = DefaultConfig.Instance
    .AddJob(Job.Default.WithWarmupCount(2).WithIterationCount(8).WithLaunchCount(1))
    .AddColumn(ThroughputColumn.RowsPerSecond, ThroughputColumn.MegabytesPerSecond)
    .WithOption(ConfigOptions.JoinSummary, false);
var switcher = BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly);
var summaries = switcher.Run(args.Length == 0 ? ["--filter", "*"] : args, config);
return summaries.Any(s => s.HasCriticalValidationErrors || s.Reports.Any(r => !r.Success)) ? 1 : 0;
