using BenchmarkDotNet.Attributes;
using DuckDB.NET.Data;
using Engine.Benchmarks.Infrastructure;
using Engine.Storage;

namespace Engine.Benchmarks.Storage;

/// <summary>
/// Reading the events' contract columns of a generated customer base into Arrow buffers with the engine's parallel
/// row-group scanner, beside DuckDB reading the same columns of the same files in the same process. Both compute
/// the same checksums (<see cref="EventChecksums"/>), so neither can skip decoding and the answers are compared.
/// Target: the engine at most 1.5x DuckDB's time.
/// </summary>
[MemoryDiagnoser]
public class ParquetReadBenchmarks
{
    private DuckDBConnection? _duck;
    private Dataset? _dataset;
    private string _glob = "";

    [Params(200_000)]
    public int People { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var folder = BenchmarkData.Ensure(People);
        _dataset = Dataset.OpenAsync(new StorageLocation(new LocalObjectStore(folder), "events")).GetAwaiter().GetResult();
        _glob = Path.Combine(folder, "events", "**", "*.parquet");
        _duck = new DuckDBConnection("Data Source=:memory:");
        _duck.Open();
    }

    [GlobalCleanup]
    public void Cleanup() => _duck?.Dispose();

    [Benchmark(Baseline = true, Description = "DuckDB read_parquet")]
    public EventChecksums DuckDb() => ReadWithDuckDb(_duck!, _glob);

    [Benchmark(Description = "Engine scan (local)")]
    public EventChecksums EngineLocal() => ReadWithEngine(_dataset!);

    internal static EventChecksums ReadWithDuckDb(DuckDBConnection connection, string glob)
    {
        using var command = connection.CreateCommand();
        command.CommandText = EventChecksums.DuckDbQuery(glob);
        using var reader = command.ExecuteReader();
        reader.Read();
        return EventChecksums.FromDuckDb(reader);
    }

    internal static EventChecksums ReadWithEngine(Dataset dataset)
    {
        var parts = DatasetScan.Run(dataset, EventChecksums.Columns, () => new EventChecksums(), static (sums, scan) => sums.Add(scan.Batch));
        var total = new EventChecksums();
        foreach (var part in parts)
        {
            total.Merge(part);
        }
        return total;
    }
}
