using Apache.Arrow;
using Engine.Storage;
using Engine.TestKit;

namespace Engine.Tests.Storage;

/// <summary>Hive-style partition keys in the path become the declared columns they name.</summary>
public class PartitionColumnTests
{
    private static readonly ColumnSpec[] Columns =
    [
        new("event_id", ColumnType.String, true),
        new("country", ColumnType.String),
        new("day", ColumnType.Date),
        new("revenue", ColumnType.Double),
    ];

    private sealed class Seen
    {
        public readonly Dictionary<string, long> RowsByCountry = [];
        public long NullDays;
        public long Rows;
        public readonly HashSet<DateOnly> Days = [];
    }

    private static Seen Scan(Dataset dataset, IReadOnlyList<ColumnSpec> columns)
    {
        var total = new Seen();
        foreach (var part in DatasetScan.Run(dataset, columns, () => new Seen(), (seen, scan) =>
        {
            Assert.Equal(columns.Select(c => c.Name), scan.Batch.Schema.FieldsList.Select(f => f.Name));
            var countries = (StringArray)scan.Batch.Column(1);
            var days = (Date32Array)scan.Batch.Column(2);
            for (var i = 0; i < scan.Batch.Length; i++)
            {
                var country = countries.GetString(i) ?? "(null)";
                seen.RowsByCountry[country] = seen.RowsByCountry.GetValueOrDefault(country) + 1;
                if (days.GetDateOnly(i) is { } day)
                {
                    seen.Days.Add(day);
                }
                else
                {
                    seen.NullDays++;
                }
            }
            seen.Rows += scan.Batch.Length;
        }, cancellationToken: TestContext.Current.CancellationToken))
        {
            foreach (var (country, rows) in part.RowsByCountry)
            {
                total.RowsByCountry[country] = total.RowsByCountry.GetValueOrDefault(country) + rows;
            }
            total.NullDays += part.NullDays;
            total.Rows += part.Rows;
            total.Days.UnionWith(part.Days);
        }
        return total;
    }

    [Fact]
    public async Task Parquet_partition_keys_become_typed_columns_with_the_hive_null_marker()
    {
        using var dir = new TempDirectory("hive");
        await SmallDatasets.WriteEventsAsync(dir.Combine("events", "country=DE", "day=2026-01-01"), rows: 3000, rowGroupRows: 1000);
        await SmallDatasets.WriteEventsAsync(dir.Combine("events", "country=FR", "day=__HIVE_DEFAULT_PARTITION__"), rows: 500);
        var dataset = await Dataset.OpenAsync(new StorageLocation(new LocalObjectStore(dir.Path), "events"), cancellationToken: TestContext.Current.CancellationToken);

        var seen = Scan(dataset, Columns);
        Assert.Equal(3500, seen.Rows);
        Assert.Equal(3000, seen.RowsByCountry["DE"]);
        Assert.Equal(500, seen.RowsByCountry["FR"]);
        Assert.Equal([new DateOnly(2026, 1, 1)], seen.Days);
        Assert.Equal(500, seen.NullDays);
    }

    [Fact]
    public async Task Csv_partition_keys_become_columns_too()
    {
        using var dir = new TempDirectory("hive");
        foreach (var (country, rows) in new[] { ("NL", 3), ("US", 2) })
        {
            var folder = dir.Combine("crm", $"country={country}", "day=2026-02-03");
            Directory.CreateDirectory(folder);
            var lines = Enumerable.Range(0, rows).Select(i => $"{country}{i},{i}.5");
            await File.WriteAllTextAsync(Path.Combine(folder, "export.csv"), "event_id,revenue\n" + string.Join('\n', lines) + "\n", TestContext.Current.CancellationToken);
        }
        var dataset = await Dataset.OpenAsync(new StorageLocation(new LocalObjectStore(dir.Path), "crm"), DataFormat.Csv, TestContext.Current.CancellationToken);
        var seen = Scan(dataset, Columns);
        Assert.Equal(5, seen.Rows);
        Assert.Equal(3, seen.RowsByCountry["NL"]);
        Assert.Equal(2, seen.RowsByCountry["US"]);
        Assert.Equal([new DateOnly(2026, 2, 3)], seen.Days);
    }

    [Fact]
    public async Task Headerless_csv_field_names_leave_out_the_partition_keys_of_each_file()
    {
        using var dir = new TempDirectory("hive");
        var folder = dir.Combine("crm", "country=NL");
        Directory.CreateDirectory(folder);
        await File.WriteAllTextAsync(Path.Combine(folder, "export.csv"), "e1,2026-02-03,1.5\ne2,,2.5\n", TestContext.Current.CancellationToken);
        var dataset = await Dataset.OpenAsync(new StorageLocation(new LocalObjectStore(dir.Path), "crm"), DataFormat.Csv, TestContext.Current.CancellationToken);
        // The declared columns name the fields in order; country is in the path, not in the file.
        var csv = new CsvReadOptions { HasHeader = false, ColumnNames = [.. Columns.Select(c => c.Name)] };
        var revenue = new List<object?>();
        DatasetScan.Run(dataset, [Columns[3], Columns[1]], () => revenue, (values, scan) =>
        {
            values.AddRange(CsvRead.Column([scan.Batch], 0));
            values.AddRange(CsvRead.Column([scan.Batch], 1));
        }, new ScanOptions { Parallelism = 1, Csv = csv }, TestContext.Current.CancellationToken);
        Assert.Equal([1.5, 2.5, "NL", "NL"], revenue);
    }

    [Fact]
    public async Task A_partition_value_of_the_wrong_type_names_the_file_and_the_key()
    {
        using var dir = new TempDirectory("hive");
        await SmallDatasets.WriteEventsAsync(dir.Combine("events", "country=DE", "day=yesterday"), rows: 10);
        var dataset = await Dataset.OpenAsync(new StorageLocation(new LocalObjectStore(dir.Path), "events"), cancellationToken: TestContext.Current.CancellationToken);
        var error = Assert.Throws<DataException>(() => Scan(dataset, Columns));
        Assert.Contains("/events/country=DE/day=yesterday/part-00000.parquet: partition 'day=yesterday' is not a valid date", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Columns_that_are_not_partition_keys_must_still_be_in_the_file()
    {
        using var dir = new TempDirectory("hive");
        await SmallDatasets.WriteEventsAsync(dir.Combine("events", "day=2026-01-01"), rows: 10);
        var dataset = await Dataset.OpenAsync(new StorageLocation(new LocalObjectStore(dir.Path), "events"), cancellationToken: TestContext.Current.CancellationToken);
        var error = Assert.Throws<DataException>(() => Scan(dataset, Columns));
        Assert.Contains("missing column 'country'", error.Message, StringComparison.Ordinal);
    }
}
