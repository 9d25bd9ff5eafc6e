using Apache.Arrow;
using DuckDB.NET.Data;
using Engine.Storage;
using Engine.TestKit;

namespace Engine.Tests.Storage;

/// <summary>The parallel scanner gives the same answer in every execution mode, and the same as DuckDB.</summary>
public class DatasetScanTests
{
    private static readonly ColumnSpec[] Columns =
    [
        new("event_id", ColumnType.String, true),
        new("ts", ColumnType.Timestamp, true),
        new("revenue", ColumnType.Double),
        new("email", ColumnType.String),
    ];

    private sealed class Totals
    {
        public long Rows;
        public long Nulls;
        public long IdBytes;
        public double Revenue;
        public readonly List<(int File, long Offset, int Length)> Batches = [];
    }

    private static Totals Scan(Dataset dataset, int parallelism)
    {
        var states = DatasetScan.Run(dataset, Columns, () => new Totals(), (t, scan) =>
        {
            t.Rows += scan.Batch.Length;
            var ids = (StringArray)scan.Batch.Column(0);
            t.IdBytes += ids.ValueOffsets[ids.Length] - ids.ValueOffsets[0];
            foreach (var value in ((DoubleArray)scan.Batch.Column(2)).Values)
            {
                t.Revenue += value;
            }
            t.Nulls += scan.Batch.Column(3).NullCount;
            t.Batches.Add((scan.FileIndex, scan.FileRowOffset, scan.Batch.Length));
        }, new ScanOptions { Parallelism = parallelism, Parquet = ParquetReadOptions.Default with { BatchSize = 700 } });
        var total = new Totals();
        foreach (var s in states)
        {
            total.Rows += s.Rows;
            total.Nulls += s.Nulls;
            total.IdBytes += s.IdBytes;
            total.Revenue += s.Revenue;
            total.Batches.AddRange(s.Batches);
        }
        total.Batches.Sort();
        return total;
    }

    [Fact]
    public async Task Single_threaded_and_parallel_scans_agree_with_each_other_and_with_DuckDB()
    {
        using var dir = new TempDirectory("scan");
        // Three files of several row groups each: the unit of parallel work is the row group.
        for (var f = 0; f < 3; f++)
        {
            await SmallDatasets.WriteEventsAsync(dir.Combine("events", $"day={f}"), rows: 4000 + f * 1000, rowGroupRows: 1500);
        }
        var dataset = await Dataset.OpenAsync(new StorageLocation(new LocalObjectStore(dir.Path), "events"), cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(3, dataset.Files.Count);
        Assert.Equal("day", dataset.Files[0].Partitions[0].Key);

        var one = Scan(dataset, 1);
        var two = Scan(dataset, 2);
        Assert.Equal(one.Rows, two.Rows);
        Assert.Equal(one.Nulls, two.Nulls);
        Assert.Equal(one.IdBytes, two.IdBytes);
        Assert.Equal(one.Revenue, two.Revenue, 6);
        Assert.Equal(one.Batches, two.Batches);
        // Batches tile each file exactly: offsets run from 0 without gaps or overlaps.
        foreach (var file in one.Batches.GroupBy(b => b.File))
        {
            long next = 0;
            foreach (var batch in file)
            {
                Assert.Equal(next, batch.Offset);
                next += batch.Length;
            }
        }

        using var duck = new DuckDBConnection("Data Source=:memory:");
        duck.Open();
        using var command = duck.CreateCommand();
        command.CommandText = $"SELECT count(*), count(*) - count(email), sum(strlen(event_id))::BIGINT, sum(revenue) FROM read_parquet('{dir.Path}/events/**/*.parquet')";
        using var reader = command.ExecuteReader();
        Assert.True(reader.Read());
        Assert.Equal(reader.GetInt64(0), one.Rows);
        Assert.Equal(reader.GetInt64(1), one.Nulls);
        Assert.Equal(reader.GetInt64(2), one.IdBytes);
        Assert.Equal(reader.GetDouble(3), one.Revenue, 6);
    }

    [Fact]
    public async Task A_bad_file_fails_the_scan_naming_the_first_bad_file()
    {
        using var dir = new TempDirectory("scan");
        await SmallDatasets.WriteEventsAsync(dir.Combine("events", "a"), rows: 100);
        await SmallDatasets.WriteEventsAsync(dir.Combine("events", "b"), rows: 100, dropEmail: true);
        await SmallDatasets.WriteEventsAsync(dir.Combine("events", "c"), rows: 100, revenueAsString: true);
        var dataset = await Dataset.OpenAsync(new StorageLocation(new LocalObjectStore(dir.Path), "events"), cancellationToken: TestContext.Current.CancellationToken);
        for (var run = 0; run < 3; run++)
        {
            var error = Assert.Throws<DataException>(() => DatasetScan.Run(dataset, Columns, () => 0, (_, _) => { }, cancellationToken: TestContext.Current.CancellationToken));
            Assert.Contains("/events/b/part-00000.parquet: missing column 'email'", error.Message, StringComparison.Ordinal);
        }
    }
}
