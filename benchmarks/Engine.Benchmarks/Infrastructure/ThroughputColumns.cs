using System.Globalization;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using Engine.Storage;

namespace Engine.Benchmarks.Infrastructure;

/// <summary>
/// Throughput columns computed in the host process from the mean time and the size of the dataset a case reads or
/// writes (BenchmarkDotNet runs cases in child processes, so sizes are read from the datasets' _dataset.json).
/// </summary>
internal sealed class ThroughputColumn(string name, string dataset, bool megabytes) : IColumn
{
    public static readonly IColumn RowsPerSecond = new ThroughputColumn("rows/s", "events", megabytes: false);
    public static readonly IColumn MegabytesPerSecond = new ThroughputColumn("MB/s", "events", megabytes: true);

    public string Id => $"{nameof(ThroughputColumn)}.{name}";
    public string ColumnName => name;
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => megabytes ? "Parquet bytes of the dataset read per second" : $"Rows of {dataset} per second";

    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public bool IsAvailable(Summary summary) => true;

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var report = summary[benchmarkCase];
        if (report?.ResultStatistics is not { } statistics || benchmarkCase.Parameters["People"] is not int people)
        {
            return "-";
        }
        var manifestPath = Path.Combine(BenchmarkData.RepositoryRoot, "artifacts", "bench-data", $"people-{people}-seed-1", dataset, DatasetManifest.FileName);
        if (!File.Exists(manifestPath))
        {
            return "?";
        }
        var manifest = DatasetManifest.Parse(File.ReadAllBytes(manifestPath), manifestPath);
        var seconds = statistics.Mean / 1e9;
        var amount = megabytes ? manifest.Files.Sum(f => f.Bytes) / 1048576.0 : manifest.Rows;
        return (amount / seconds).ToString(megabytes ? "N1" : "N0", CultureInfo.InvariantCulture);
    }
}
