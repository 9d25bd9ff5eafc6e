using System.Diagnostics;
using Engine.Storage;
using Engine.TestKit;

namespace Engine.Datasets.Tests;

/// <summary>
/// Throughput at a realistic size, run on demand only (tests check behaviour, not time):
/// <c>dotnet build -c Release tests/Engine.Datasets.Tests</c>, then <c>tests/Engine.Datasets.Tests/bin/Release/net10.0/linux-x64/Engine.Datasets.Tests -method "*Generates_100k_people*" -explicit only -diagnostics</c>.
/// </summary>
public sealed class ScaleTests
{
    [Fact(Explicit = true)]
    public async Task Generates_100k_people()
    {
        using var directory = new TempDirectory("gen-scale");
        using var resolver = new StorageResolver();
        var clock = Stopwatch.StartNew();
        var summary = await new SyntheticGenerator(new GeneratorOptions { People = 100_000, Seed = 1 })
            .GenerateAsync(resolver.Resolve(directory.Path), null, TestContext.Current.CancellationToken);
        var seconds = clock.Elapsed.TotalSeconds;
        long bytes = 0;
        foreach (var file in Directory.GetFiles(directory.Path, "*.parquet", SearchOption.AllDirectories))
        {
            bytes += new FileInfo(file).Length;
        }
        TestContext.Current.SendDiagnosticMessage(
            $"{summary.Events:N0} events in {seconds:F1} s: {summary.Events / seconds:N0} events/s; {bytes / 1e6:F0} MB of Parquet; peak working set {Process.GetCurrentProcess().PeakWorkingSet64 / 1e6:F0} MB");
        Assert.True(summary.Events > 2_000_000);
    }
}
