using BenchmarkDotNet.Attributes;
using Engine.Benchmarks.Infrastructure;
using Engine.Datasets;
using Engine.Storage;

namespace Engine.Benchmarks.Generation;

/// <summary>Generating a synthetic customer base to Parquet on local disk: the events/s column is the rate.</summary>
[MemoryDiagnoser]
public class GenerationBenchmarks
{
    private string _output = "";

    [Params(50_000)]
    public int People { get; set; }

    [GlobalSetup]
    public void Setup() => BenchmarkData.Ensure(People); // so the host can read the event count for events/s

    [IterationSetup]
    public void CreateOutput() => _output = Path.Combine(Path.GetTempPath(), $"engine-bench-gen-{Guid.NewGuid():N}");

    [IterationCleanup]
    public void DeleteOutput() => Directory.Delete(_output, recursive: true);

    [Benchmark(Description = "engine generate")]
    public GenerationSummary Generate()
        => new SyntheticGenerator(new GeneratorOptions { People = People, Seed = 1 })
            .GenerateAsync(new StorageLocation(new LocalObjectStore(_output), "")).GetAwaiter().GetResult();
}
