using Apache.Arrow;
using Apache.Arrow.Types;
using CsCheck;
using Engine.Ingest;
using Engine.Runs;
using Engine.Storage;
using Engine.Tests.Identity;
using Engine.TestKit;
using Engine.Workspaces;
using TimeUnit = Apache.Arrow.Types.TimeUnit;
using Microsoft.Extensions.Logging.Abstractions;
using ParquetSharp;
using ParquetSharp.Arrow;

namespace Engine.Tests.Ingest;

/// <summary>
/// Ingest takes a Parquet file's figures (rows, NULLs per column, the timestamp column's range) from its footer: they
/// must equal a full scan's, file by file, whatever the row groups, NULLs and time unit; a file whose footer cannot
/// say is scanned and counted as such; a NULL in a required column is still named at its exact row; a cut file fails
/// at its footer, named; and a corrupt page, which ingest no longer decodes, fails the stage that does, named.
/// </summary>
public sealed class IngestStageTests
{
    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    private static SourceDefinition Source(string location, params ColumnSpec[] columns) => new()
    {
        Name = "events",
        File = "sources/events.yaml",
        Location = location,
        Schema = new DataSchema(columns),
        TimestampColumn = columns.Any(c => c.Name == "ts") ? "ts" : null,
    };

    private static Workspace WorkspaceOf(string directory, params SourceDefinition[] sources)
        => new(directory, "ingest", Path.Combine(directory, "output"), sources, []);

    private static async Task<IngestResult> Ingest(Workspace workspace, bool footers = true, int parallelism = 2)
    {
        using var storage = new StorageResolver();
        return await new IngestStage(storage, NullLogger.Instance) { ReadFooters = footers, Parallelism = parallelism }.RunAsync(workspace, cancellationToken: Cancel);
    }

    /// <summary>Every figure of every source and file equal (how they were found aside).</summary>
    private static void AssertSameFigures(IngestResult expected, IngestResult actual)
    {
        Assert.Equal(expected.Sources.Count, actual.Sources.Count);
        foreach (var (e, a) in expected.Sources.Zip(actual.Sources))
        {
            Assert.Equal(e.Name, a.Name);
            Assert.Equal(e.Rows, a.Rows);
            Assert.Equal(e.Bytes, a.Bytes);
            Assert.Equal(e.NullCounts.OrderBy(p => p.Key), a.NullCounts.OrderBy(p => p.Key));
            Assert.Equal(e.MinTimestamp, a.MinTimestamp);
            Assert.Equal(e.MaxTimestamp, a.MaxTimestamp);
            Assert.Equal(e.Files.Select(f => f.Location), a.Files.Select(f => f.Location));
            foreach (var (ef, af) in e.Files.Zip(a.Files))
            {
                Assert.Equal(ef.Rows, af.Rows);
                Assert.Equal(ef.NullCounts, af.NullCounts);
                Assert.Equal(ef.MinMicros, af.MinMicros);
                Assert.Equal(ef.MaxMicros, af.MaxMicros);
            }
        }
    }

    /// <summary>Writes <paramref name="batch"/> as one Parquet file through Arrow, in row groups of <paramref name="rowGroupRows"/>.</summary>
    private static void WriteParquet(string path, RecordBatch batch, long rowGroupRows, bool statistics = true)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var builder = new WriterPropertiesBuilder().MaxRowGroupLength(rowGroupRows);
        if (!statistics)
        {
            builder.DisableStatistics();
        }
        using var properties = builder.Build();
        using var arrowProperties = new ArrowWriterPropertiesBuilder().Build();
        using var writer = new ParquetSharp.Arrow.FileWriter(path, batch.Schema, properties, arrowProperties);
        writer.WriteRecordBatch(batch, rowGroupRows);
        writer.Close();
    }

    [Fact]
    public async Task Footer_figures_equal_a_full_scan_on_generated_data()
    {
        using var dir = new TempDirectory("ingest-generated");
        await GeneratedWorkspace.GenerateAsync(dir.Combine("data"), people: 300, seed: 7);
        var workspace = new GeneratedWorkspace(dir.Combine("ws"), dir.Combine("data")).Workspace;

        var footers = await Ingest(workspace);
        var scan = await Ingest(workspace, footers: false);

        AssertSameFigures(scan, footers);
        Assert.All(footers.Sources, s => Assert.Equal((s.Files.Count, 0), (s.FilesFromFooter, s.FilesScanned)));
        Assert.All(scan.Sources, s => Assert.Equal((0, s.Files.Count), (s.FilesFromFooter, s.FilesScanned)));
        Assert.True(footers.Sources[0].MinTimestamp < footers.Sources[0].MaxTimestamp);
    }

    /// <summary>One random file: its rows, row group size, time unit, how many NULLs each column holds, and whether statistics are written.</summary>
    private sealed record RandomFile(int Rows, int RowGroupRows, TimeUnit Unit, int[] NullModes, bool Statistics, int Seed)
    {
        public override string ToString() => $"{Rows} rows in groups of {RowGroupRows}, ts in {Unit}, nulls [{string.Join(", ", NullModes)}], statistics {Statistics}, seed {Seed}";
    }

    private static readonly Gen<RandomFile> GenFile = Gen.Select(Gen.Int[0, 2500], Gen.Int[40, 900], Gen.OneOf(TimeUnit.Second, TimeUnit.Millisecond, TimeUnit.Microsecond, TimeUnit.Nanosecond),
        Gen.Int[0, 3].Array[4], Gen.Int[0, 3], Gen.Int, (rows, group, unit, nulls, stats, seed) => new RandomFile(rows, group, unit, nulls, stats != 0, seed));

    private static readonly string[] Names = ["id", "n", "x", "ts"];

    /// <summary>A batch of id (string), n (int64), x (double) and ts, NULLs by mode: none, a tenth, nine tenths, all.</summary>
    private static RecordBatch Batch(RandomFile file)
    {
        var random = new Random(file.Seed);
        bool IsNull(int column) => file.NullModes[column] switch
        {
            0 => false,
            1 => random.Next(10) == 0,
            2 => random.Next(10) != 0,
            _ => true,
        };
        var ids = new StringArray.Builder();
        var ns = new Int64Array.Builder();
        var xs = new DoubleArray.Builder();
        var type = new TimestampType(file.Unit, "UTC");
        // Raw values in the unit (the builder takes DateTimeOffsets, which stop at ticks).
        var ts = new ArrowBuffer.Builder<long>(file.Rows);
        var valid = new ArrowBuffer.BitmapBuilder(file.Rows);
        var perSecond = file.Unit switch
        {
            TimeUnit.Second => 1L,
            TimeUnit.Millisecond => 1_000L,
            TimeUnit.Microsecond => 1_000_000L,
            _ => 1_000_000_000L,
        };
        for (var i = 0; i < file.Rows; i++)
        {
            if (IsNull(0)) ids.AppendNull(); else ids.Append($"id{random.Next()}");
            if (IsNull(1)) ns.AppendNull(); else ns.Append(random.NextInt64(long.MinValue, long.MaxValue));
            if (IsNull(2)) xs.AppendNull(); else xs.Append(random.NextDouble());
            var isNull = IsNull(3);
            // Before and after 1970, with sub-second parts where the unit has them (nanoseconds truncate to micros).
            var seconds = random.NextInt64(-2_000_000_000L, 2_000_000_000L);
            ts.Append(isNull ? 0 : seconds * perSecond + random.NextInt64(perSecond));
            valid.Append(!isNull);
        }
        var fields = new[]
        {
            new Field("id", StringType.Default, true),
            new Field("n", Int64Type.Default, true),
            new Field("x", DoubleType.Default, true),
            new Field("ts", type, true),
        };
        var timestamps = new TimestampArray(type, ts.Build(), valid.Build(), file.Rows, valid.UnsetBitCount, 0);
        return new RecordBatch(new Apache.Arrow.Schema(fields, null), [ids.Build(), ns.Build(), xs.Build(), timestamps], file.Rows);
    }

    [Fact]
    public async Task Footer_figures_equal_a_full_scan_whatever_the_row_groups_nulls_and_time_unit()
    {
        await GenFile.Array[1, 3].SampleAsync(async files =>
        {
            using var dir = new TempDirectory("ingest-prop");
            for (var f = 0; f < files.Length; f++)
            {
                using var batch = Batch(files[f]);
                WriteParquet(dir.Combine("events", $"part-{f}.parquet"), batch, files[f].RowGroupRows, files[f].Statistics);
            }
            // A required column that holds no NULL keeps the required check in play without failing it.
            var columns = Names.Select((name, c) => new ColumnSpec(name, c == 3 ? ColumnType.Timestamp : c switch
            {
                0 => ColumnType.String,
                1 => ColumnType.Int64,
                _ => ColumnType.Double,
            }, Required: files.All(f => f.NullModes[c] == 0 || f.Rows == 0))).ToArray();
            var workspace = WorkspaceOf(dir.Path, Source(dir.Combine("events"), columns));

            var footers = await Ingest(workspace);
            var scan = await Ingest(workspace, footers: false, parallelism: 1);

            AssertSameFigures(scan, footers);
            // Arrow writes a null count with every chunk's statistics, and min/max wherever the chunk has values; an
            // empty file needs neither.
            Assert.Equal(files.Count(f => f.Statistics || f.Rows == 0), footers.Sources[0].FilesFromFooter);
        }, iter: 40);
    }

    [Fact]
    public async Task An_empty_file_is_taken_from_its_footer_though_its_empty_row_group_has_no_statistics()
    {
        // Found by the property above: Arrow writes a 0-row file as one empty row group whose chunks carry no null count.
        using var dir = new TempDirectory("ingest-empty");
        var files = new[] { new RandomFile(0, 100, TimeUnit.Nanosecond, [2, 3, 3, 1], Statistics: true, Seed: 1), new RandomFile(500, 120, TimeUnit.Second, [0, 1, 0, 0], Statistics: true, Seed: 2) };
        for (var f = 0; f < files.Length; f++)
        {
            using var batch = Batch(files[f]);
            WriteParquet(dir.Combine("events", $"part-{f}.parquet"), batch, files[f].RowGroupRows);
        }
        using (var reader = new ParquetFileReader(dir.Combine("events", "part-0.parquet")))
        {
            Assert.Equal(0, reader.FileMetaData.NumRows);
        }
        var columns = new ColumnSpec[] { new("id", ColumnType.String, Required: true), new("n", ColumnType.Int64), new("x", ColumnType.Double), new("ts", ColumnType.Timestamp, Required: true) };
        var workspace = WorkspaceOf(dir.Path, Source(dir.Combine("events"), columns));

        var footers = await Ingest(workspace);

        AssertSameFigures(await Ingest(workspace, footers: false), footers);
        Assert.Equal((2, 0), (footers.Sources[0].FilesFromFooter, footers.Sources[0].FilesScanned));
        Assert.Equal((0L, 500L), (footers.Sources[0].Files[0].Rows, footers.Sources[0].Rows));
        Assert.Equal(0, footers.Sources[0].Files[0].NullCounts.Sum());
    }

    [Fact]
    public async Task A_file_written_without_statistics_is_scanned_and_gives_the_same_figures()
    {
        using var dir = new TempDirectory("ingest-nostats");
        var file = new RandomFile(3000, 700, TimeUnit.Microsecond, [1, 2, 0, 1], Statistics: true, Seed: 11);
        using (var batch = Batch(file))
        {
            WriteParquet(dir.Combine("with", "part-0.parquet"), batch, file.RowGroupRows, statistics: true);
            WriteParquet(dir.Combine("without", "part-0.parquet"), batch, file.RowGroupRows, statistics: false);
        }
        var columns = new ColumnSpec[] { new("id", ColumnType.String), new("n", ColumnType.Int64), new("x", ColumnType.Double, Required: true), new("ts", ColumnType.Timestamp) };
        var with = (await Ingest(WorkspaceOf(dir.Path, Source(dir.Combine("with"), columns)))).Sources[0];
        var without = (await Ingest(WorkspaceOf(dir.Path, Source(dir.Combine("without"), columns)))).Sources[0];

        Assert.Equal((1, 0), (with.FilesFromFooter, with.FilesScanned));
        Assert.Equal((0, 1), (without.FilesFromFooter, without.FilesScanned));
        Assert.Equal(3000, without.Rows);
        Assert.Equal(with.NullCounts.OrderBy(p => p.Key), without.NullCounts.OrderBy(p => p.Key));
        Assert.Equal(with.MinTimestamp, without.MinTimestamp);
        Assert.Equal(with.MaxTimestamp, without.MaxTimestamp);
        Assert.True(without.NullCounts["n"] > 2000);
    }

    [Fact]
    public async Task A_source_mixing_footers_and_scans_counts_each_kind()
    {
        using var dir = new TempDirectory("ingest-mixed");
        await SmallDatasets.WriteEventsAsync(dir.Combine("events", "day=1"), rows: 2000, rowGroupRows: 500);
        // The same events again, statistics off.
        await CopyWithoutStatisticsAsync(Directory.GetFiles(dir.Combine("events", "day=1"), "*.parquet").Single(), dir.Combine("events", "day=2", "part-0.parquet"), 300);
        var workspace = WorkspaceOf(dir.Path, Source(dir.Combine("events"), SmallColumns));

        var footers = await Ingest(workspace);

        AssertSameFigures(await Ingest(workspace, footers: false), footers);
        Assert.Equal((1, 1), (footers.Sources[0].FilesFromFooter, footers.Sources[0].FilesScanned));
        Assert.Equal(4000, footers.Sources[0].Rows);
    }

    /// <summary>Writes <paramref name="source"/>'s rows again without statistics.</summary>
    private static async Task CopyWithoutStatisticsAsync(string source, string target, long rowGroupRows)
    {
        using var reader = new ParquetSharp.Arrow.FileReader(source);
        using var stream = reader.GetRecordBatchReader();
        var batches = new List<RecordBatch>();
        while (await stream.ReadNextRecordBatchAsync(Cancel) is { } batch)
        {
            batches.Add(batch);
        }
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        using var properties = new WriterPropertiesBuilder().MaxRowGroupLength(rowGroupRows).DisableStatistics().Build();
        using var arrowProperties = new ArrowWriterPropertiesBuilder().Build();
        using var writer = new ParquetSharp.Arrow.FileWriter(target, stream.Schema, properties, arrowProperties);
        foreach (var batch in batches)
        {
            writer.WriteRecordBatch(batch, rowGroupRows);
            batch.Dispose();
        }
        writer.Close();
    }

    private static readonly ColumnSpec[] SmallColumns =
    [
        new("event_id", ColumnType.String, Required: true),
        new("ts", ColumnType.Timestamp, Required: true),
        new("type", ColumnType.String),
        new("email", ColumnType.String),
        new("revenue", ColumnType.Double),
    ];

    [Fact]
    public async Task Partition_columns_from_the_path_count_as_the_scan_counts_them()
    {
        using var dir = new TempDirectory("ingest-hive");
        await SmallDatasets.WriteEventsAsync(dir.Combine("events", "country=DE"), rows: 1500, rowGroupRows: 400);
        await SmallDatasets.WriteEventsAsync(dir.Combine("events", "country=" + PartitionColumns.NullValue), rows: 700, rowGroupRows: 400);
        var workspace = WorkspaceOf(dir.Path, Source(dir.Combine("events"), [.. SmallColumns, new ColumnSpec("country", ColumnType.String)]));

        var footers = await Ingest(workspace);
        AssertSameFigures(await Ingest(workspace, footers: false), footers);
        Assert.Equal(700, footers.Sources[0].NullCounts["country"]);
        Assert.Equal((2, 0), (footers.Sources[0].FilesFromFooter, footers.Sources[0].FilesScanned));
    }

    [Fact]
    public async Task A_null_in_a_required_column_in_the_third_row_group_is_named_at_its_row()
    {
        using var dir = new TempDirectory("ingest-required");
        // Row groups of 1000: row 2345 is in the third, 345 rows into it.
        await SmallDatasets.WriteEventsAsync(dir.Combine("events"), rows: 5000, nullEventIdAt: 2345, rowGroupRows: 1000);
        var workspace = WorkspaceOf(dir.Path, Source(dir.Combine("events"), SmallColumns));
        var file = Directory.GetFiles(dir.Combine("events"), "*.parquet").Single();

        var footers = await Assert.ThrowsAsync<DataException>(() => Ingest(workspace));
        var scan = await Assert.ThrowsAsync<DataException>(() => Ingest(workspace, footers: false));

        Assert.Equal($"{file}: row index 2345: required column 'event_id' is null (source 'events')", footers.Message);
        Assert.Equal(scan.Message, footers.Message);
    }

    [Fact]
    public async Task The_first_bad_file_in_key_order_is_reported_whether_its_footer_or_its_scan_finds_it()
    {
        using var dir = new TempDirectory("ingest-order");
        // part 0 has no statistics (scanned) and a NULL event id; part 1's footer shows one too.
        await SmallDatasets.WriteEventsAsync(dir.Combine("b"), rows: 3000, nullEventIdAt: 10, rowGroupRows: 1000);
        await SmallDatasets.WriteEventsAsync(dir.Combine("events", "part=1"), rows: 3000, nullEventIdAt: 2999, rowGroupRows: 1000);
        await CopyWithoutStatisticsAsync(Directory.GetFiles(dir.Combine("b"), "*.parquet").Single(), dir.Combine("events", "part=0", "part-0.parquet"), 1000);
        var workspace = WorkspaceOf(dir.Path, Source(dir.Combine("events"), SmallColumns));

        var error = await Assert.ThrowsAsync<DataException>(() => Ingest(workspace));

        Assert.Equal($"{dir.Combine("events", "part=0", "part-0.parquet")}: row index 10: required column 'event_id' is null (source 'events')", error.Message);
    }

    [Theory]
    [InlineData("type", ColumnType.Int64)]
    [InlineData("revenue", ColumnType.String)]
    [InlineData("missing", ColumnType.String)]
    public async Task A_schema_error_reads_as_the_scan_reports_it(string column, ColumnType type)
    {
        using var dir = new TempDirectory("ingest-schema");
        await SmallDatasets.WriteEventsAsync(dir.Combine("events"), rows: 2000, rowGroupRows: 1000);
        // "type" is a dictionary-encoded string (two values), read as a dictionary: its message says so.
        var workspace = WorkspaceOf(dir.Path, Source(dir.Combine("events"), [.. SmallColumns.Where(c => c.Name != column), new ColumnSpec(column, type)]));

        var footers = await Assert.ThrowsAsync<DataException>(() => Ingest(workspace));
        var scan = await Assert.ThrowsAsync<DataException>(() => Ingest(workspace, footers: false));

        Assert.Equal(scan.Message, footers.Message);
        Assert.Contains($"'{column}'", footers.Message, StringComparison.Ordinal);
        Assert.Equal(column == "type", footers.Message.Contains("dictionary<utf8>", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(1, false)]
    [InlineData(200, false)]
    [InlineData(40, true)]
    public async Task A_file_whose_footer_is_cut_short_fails_naming_it(int cut, bool keepTail)
    {
        using var dir = new TempDirectory("ingest-cut");
        await SmallDatasets.WriteEventsAsync(dir.Combine("events"), rows: 3000, rowGroupRows: 1000);
        var file = Directory.GetFiles(dir.Combine("events"), "*.parquet").Single();
        var bytes = await File.ReadAllBytesAsync(file, Cancel);
        // Cut from the end (the magic goes), or from inside the footer, its length and magic kept.
        byte[] cutShort = keepTail ? [.. bytes[..^(cut + 8)], .. bytes[^8..]] : bytes[..^cut];
        await File.WriteAllBytesAsync(file, cutShort, Cancel);
        var workspace = WorkspaceOf(dir.Path, Source(dir.Combine("events"), SmallColumns));

        var error = await Assert.ThrowsAsync<DataException>(() => Ingest(workspace));

        Assert.StartsWith($"{file}: ", error.Message, StringComparison.Ordinal);
        Assert.Contains("truncated", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_INT96_timestamp_column_is_scanned()
    {
        using var dir = new TempDirectory("ingest-int96");
        Directory.CreateDirectory(dir.Combine("events"));
        var path = dir.Combine("events", "part-0.parquet");
        // Julian day and nanoseconds of the day, as Impala and old Spark write timestamps.
        static Int96? At(DateTime utc)
        {
            var nanos = (utc.Ticks - DateTime.UnixEpoch.Ticks) * 100;
            var day = Math.DivRem(nanos, 86_400_000_000_000L, out var ofDay);
            return new Int96((int)(ofDay & 0xFFFFFFFF), (int)(ofDay >> 32), (int)(day + 2_440_588));
        }
        var times = new[] { new DateTime(2026, 3, 1, 12, 0, 0, DateTimeKind.Utc), new DateTime(2025, 12, 31, 23, 59, 59, 999, DateTimeKind.Utc), new DateTime(2026, 1, 2, 0, 0, 0, DateTimeKind.Utc) };
        using (var writer = new ParquetFileWriter(path, [new Column<string>("event_id"), new Column<Int96?>("ts")]))
        {
            using var group = writer.AppendRowGroup();
            using (var ids = group.NextColumn().LogicalWriter<string>())
            {
                ids.WriteBatch(["a", "b", "c", "d"]);
            }
            using (var ts = group.NextColumn().LogicalWriter<Int96?>())
            {
                ts.WriteBatch([At(times[0]), null, At(times[1]), At(times[2])]);
            }
            writer.Close();
        }
        var workspace = WorkspaceOf(dir.Path, Source(dir.Combine("events"), new ColumnSpec("event_id", ColumnType.String, true), new ColumnSpec("ts", ColumnType.Timestamp)));

        var events = (await Ingest(workspace)).Sources[0];

        Assert.Equal((0, 1), (events.FilesFromFooter, events.FilesScanned));
        Assert.Equal(4, events.Rows);
        Assert.Equal(1, events.NullCounts["ts"]);
        Assert.Equal(new DateTimeOffset(times[1]), events.MinTimestamp);
        Assert.Equal(new DateTimeOffset(times[0]), events.MaxTimestamp);
    }

    [Fact]
    public async Task A_corrupt_page_passes_ingest_and_fails_the_stage_that_decodes_it_naming_the_file()
    {
        using var dir = new TempDirectory("ingest-page");
        File.WriteAllText(dir.Combine("workspace.yaml"), "name: small\nversion: 1\noutput: output\n");
        Directory.CreateDirectory(dir.Combine("sources"));
        File.WriteAllText(dir.Combine("sources", "events.yaml"), SmallDatasets.EventsSourceYaml);
        await SmallDatasets.WriteEventsAsync(dir.Combine("data", "events"), rows: 3000, rowGroupRows: 1000);
        var file = Directory.GetFiles(dir.Combine("data", "events"), "*.parquet").Single();
        // Overwrite the header of the email column's first page in row group 1: the footer stays intact. Arrow writes
        // the chunks one after the other from byte 4 (after the magic), so each starts where the ones before end.
        long offset = 4;
        using (var reader = new ParquetFileReader(file))
        {
            var email = Enumerable.Range(0, reader.FileMetaData.NumColumns).Single(c => reader.FileMetaData.Schema.Column(c).Name == "email");
            for (var g = 0; g <= 1; g++)
            {
                using var group = reader.RowGroup(g);
                for (var c = 0; c < (g == 1 ? email : reader.FileMetaData.NumColumns); c++)
                {
                    using var chunk = group.MetaData.GetColumnChunkMetaData(c);
                    offset += chunk.TotalCompressedSize;
                }
            }
        }
        using (var stream = new FileStream(file, FileMode.Open, FileAccess.Write))
        {
            stream.Position = offset;
            stream.Write(Enumerable.Repeat((byte)0xFF, 64).ToArray());
        }
        var workspace = WorkspaceLoader.Load(dir.Path);

        Assert.Equal(3000, (await Ingest(workspace)).Rows);

        using var storage = new StorageResolver();
        var error = await Assert.ThrowsAsync<DataException>(() => new RunExecutor(storage, NullLogger.Instance).ExecuteAsync(workspace, new RunOptions { RunId = "r1" }, cancellationToken: Cancel));
        Assert.StartsWith($"{file}: ", error.Message, StringComparison.Ordinal);
        Assert.Contains("row group 1", error.Message, StringComparison.Ordinal);
        var manifest = RunManifest.Parse(await File.ReadAllBytesAsync(dir.Combine("output", "runs", "r1", RunManifest.FileName), Cancel));
        Assert.Equal(RunStatus.Failed, manifest.Status);
        Assert.Equal(["ingest:succeeded", "identity:failed"], manifest.Stages.Select(s => $"{s.Name}:{s.Status}"));
        Assert.Equal("events: 1 file(s) checked at their footers, 0 scanned", manifest.Stages[0].Message);
        Assert.False(Directory.Exists(dir.Combine("output", "runs", "r1", "identity")));
    }

    [Fact]
    public void The_footer_reader_tells_a_missing_null_count_from_a_zero()
    {
        // FileMetaData { 4: row_groups [ RowGroup { 1: columns [ chunk (statistics with null_count 5), chunk (statistics
        // with min and max only, as parquet-mr writes for values too long), chunk (no statistics), chunk (null_count 0) ] } ] },
        // with other fields of every kind around them to skip.
        var footer = new CompactWriter();
        footer.Field(1, I32).Int(2);                            // version
        footer.Field(3, I64).Int(4000);                         // num_rows
        footer.Field(4, List).ListOf(1, Struct);                // row_groups
        footer.Field(1, List).ListOf(4, Struct);                // columns
        foreach (var statistics in new Action<CompactWriter>?[]
        {
            s => s.Field(3, I64).Int(5),
            s => s.Field(1, Binary).Bytes([1, 2]).Field(2, Binary).Bytes([0]),
            null,
            s => s.Field(2, Binary).Bytes([7]).Field(3, I64).Int(0).Field(7, True),
        })
        {
            footer.Field(2, I64).Int(4);                        // file_offset
            footer.Field(3, Struct);                            // meta_data
            footer.Field(1, I32).Int(6);                        // type
            footer.Field(2, List).ListOf(20, I32);              // encodings: a list too long for the short header
            for (var i = 0; i < 20; i++)
            {
                footer.Int(i);
            }
            footer.Field(5, I64).Int(4000);                     // num_values
            footer.Field(8, List).ListOf(0, Struct);            // key_value_metadata, empty
            if (statistics is not null)
            {
                footer.Field(12, Struct);
                statistics(footer);
                footer.Stop();
            }
            footer.Field(16, Struct).Field(1, I64).Int(3).Stop(); // size_statistics
            footer.Stop();                                      // meta_data
            footer.Stop();                                      // the column chunk
        }
        footer.Field(3, I64).Int(4000);                         // num_rows
        footer.Stop();                                          // the row group
        footer.Field(5, List).ListOf(1, Struct).Field(1, Binary).Bytes("k"u8.ToArray()).Stop(); // key_value_metadata
        footer.Field(6, Binary).Bytes("writer"u8.ToArray());    // created_by
        footer.Field(7, List).ListOf(2, True).Int(1).Int(1);    // a list of booleans, a byte each
        footer.Stop();

        var counts = ParquetFooter.NullCounts(footer.ToArray());

        Assert.NotNull(counts);
        Assert.Equal([5L, null, null, 0L], Assert.Single(counts));
        Assert.Null(ParquetFooter.NullCounts(footer.ToArray().AsSpan()[..^3]));
    }

    [Fact]
    public async Task The_footer_reader_agrees_with_ParquetSharp_on_a_written_file()
    {
        using var dir = new TempDirectory("ingest-footer");
        await SmallDatasets.WriteEventsAsync(dir.Path, rows: 2500, rowGroupRows: 1000);
        var file = Directory.GetFiles(dir.Path, "*.parquet").Single();
        using var reader = new ParquetFileReader(file);
        using var stream = File.OpenRead(file);

        var counts = ParquetFooter.NullCounts(stream);

        Assert.NotNull(counts);
        Assert.Equal(reader.FileMetaData.NumRowGroups, counts.Length);
        for (var g = 0; g < counts.Length; g++)
        {
            using var group = reader.RowGroup(g);
            for (var c = 0; c < counts[g].Length; c++)
            {
                using var chunk = group.MetaData.GetColumnChunkMetaData(c);
                using var statistics = chunk.Statistics;
                Assert.NotNull(statistics);
                Assert.Equal(statistics.NullCount, counts[g][c]);
            }
        }
        Assert.Equal([0L, 0L, 0L], counts.Select(g => g[0]!.Value));
        Assert.Equal(834L, counts.Sum(g => g[3]!.Value)); // email: every third row of 2,500
    }

    private const byte True = 1, I32 = 5, I64 = 6, Binary = 8, List = 9, Struct = 12;

    /// <summary>
    /// Thrift compact protocol, just enough to write a footer by hand. Field headers take the long form (type, then
    /// the id), which readers must accept beside the short delta form Arrow writes (read in the test above).
    /// </summary>
    private sealed class CompactWriter
    {
        private readonly List<byte> _bytes = [];

        public CompactWriter Field(short id, byte type)
        {
            _bytes.Add(type);
            return Int(id);
        }

        public CompactWriter ListOf(int count, byte element)
        {
            if (count < 15)
            {
                _bytes.Add((byte)((count << 4) | element));
                return this;
            }
            _bytes.Add((byte)(0xF0 | element));
            return Varint((ulong)count);
        }

        public CompactWriter Int(long value) => Varint((ulong)((value << 1) ^ (value >> 63)));

        public CompactWriter Bytes(byte[] value)
        {
            Varint((ulong)value.Length);
            _bytes.AddRange(value);
            return this;
        }

        public CompactWriter Stop()
        {
            _bytes.Add(0);
            return this;
        }

        private CompactWriter Varint(ulong value)
        {
            while (value >= 0x80)
            {
                _bytes.Add((byte)(value | 0x80));
                value >>= 7;
            }
            _bytes.Add((byte)value);
            return this;
        }

        public byte[] ToArray() => [.. _bytes];
    }
}
