using System.Text;
using Engine.Storage;
using Xunit;

namespace Engine.TestKit;

/// <summary>
/// What every <see cref="IObjectStore"/> must do, run once per store (local directory, S3): objects, seekable reads,
/// the dataset commit protocol, Parquet round trips, partitions and the errors a user sees. A subclass says how to
/// make the store; each test gets a fresh store and a fresh root prefix, cleaned up afterwards.
/// </summary>
public abstract class ObjectStoreConformanceTests : IAsyncLifetime
{
    /// <summary>The store under test.</summary>
    protected IObjectStore Store { get; private set; } = null!;

    /// <summary>The prefix this test works below ("" for the store's root).</summary>
    protected string Root { get; private set; } = "";

    /// <summary>Creates the store under test and a root prefix no other test uses.</summary>
    protected abstract (IObjectStore Store, string Root) CreateStore();

    /// <summary>The read-ahead block size of the store's read stream, so reads can straddle block boundaries.</summary>
    protected virtual int ReadBlockSize => 1024 * 1024;

    public ValueTask InitializeAsync()
    {
        (Store, Root) = CreateStore();
        return ValueTask.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            var left = await Store.ListAsync(Root);
            if (left.Count > 0)
            {
                await Store.DeleteAsync([.. left.Select(o => o.Key)]);
            }
        }
        finally
        {
            Store.Dispose();
        }
        GC.SuppressFinalize(this);
    }

    /// <summary>The key of <paramref name="relative"/> below <see cref="Root"/>.</summary>
    protected string Key(string relative) => Root.Length == 0 ? relative : $"{Root}/{relative}";

    /// <summary>The location of <paramref name="relative"/> below <see cref="Root"/>.</summary>
    protected StorageLocation At(string relative) => new(Store, Key(relative));

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    // ---- objects ---------------------------------------------------------------------------------------------

    [Fact]
    public async Task Put_get_size_list_and_delete_objects()
    {
        await Store.PutAsync(Key("a/one.bin"), Encoding.UTF8.GetBytes("one"), Cancel);
        await Store.PutAsync(Key("a/nested/two.bin"), Encoding.UTF8.GetBytes("two!"), Cancel);
        await Store.PutAsync(Key("ab/three.bin"), Encoding.UTF8.GetBytes("three"), Cancel);
        await Store.PutAsync(Key("a/empty.bin"), ReadOnlyMemory<byte>.Empty, Cancel);

        Assert.Equal("one", Encoding.UTF8.GetString((await Store.GetAsync(Key("a/one.bin"), Cancel))!));
        Assert.Empty((await Store.GetAsync(Key("a/empty.bin"), Cancel))!);
        Assert.Equal(4, await Store.GetSizeAsync(Key("a/nested/two.bin"), Cancel));
        Assert.Equal(0, await Store.GetSizeAsync(Key("a/empty.bin"), Cancel));
        Assert.Null(await Store.GetSizeAsync(Key("a/missing.bin"), Cancel));
        Assert.Null(await Store.GetAsync(Key("a/missing.bin"), Cancel));

        // A prefix lists what is below it as a folder, recursively and ordered by key, not its siblings ("ab").
        var listed = await Store.ListAsync(Key("a"), Cancel);
        Assert.Equal([Key("a/empty.bin"), Key("a/nested/two.bin"), Key("a/one.bin")], listed.Select(o => o.Key));
        Assert.Equal([0L, 4L, 3L], listed.Select(o => o.Size));
        Assert.Empty(await Store.ListAsync(Key("nothing-here"), Cancel));

        // Put replaces.
        await Store.PutAsync(Key("a/one.bin"), Encoding.UTF8.GetBytes("uno!!"), Cancel);
        Assert.Equal("uno!!", Encoding.UTF8.GetString((await Store.GetAsync(Key("a/one.bin"), Cancel))!));

        // Delete ignores missing keys.
        await Store.DeleteAsync([Key("a/one.bin"), Key("a/nested/two.bin"), Key("a/never-existed.bin"), Key("no-such-folder/x.bin")], Cancel);
        Assert.Equal([Key("a/empty.bin")], (await Store.ListAsync(Key("a"), Cancel)).Select(o => o.Key));
        Assert.Single(await Store.ListAsync(Key("ab"), Cancel));
        await Store.DeleteAsync([], Cancel);
    }

    [Fact]
    public void Describe_names_the_key_as_a_user_would_write_it()
    {
        var described = Store.Describe(Key("data/events/part-0.parquet"));
        Assert.EndsWith("data/events/part-0.parquet", described, StringComparison.Ordinal);
    }

    // ---- seekable reads --------------------------------------------------------------------------------------

    [Fact]
    public async Task OpenRead_seeks_and_reads_exact_bytes_at_any_offset()
    {
        var block = ReadBlockSize;
        var content = new byte[3 * block + 12_345];
        new Random(7).NextBytes(content);
        await Store.PutAsync(Key("blob.bin"), content, Cancel);

        using var stream = Store.OpenRead(Key("blob.bin"));
        Assert.True(stream.CanSeek);
        Assert.True(stream.CanRead);
        Assert.False(stream.CanWrite);
        Assert.Equal(content.Length, stream.Length);

        // The tail first (as a Parquet reader does), then the start, a block boundary, a large read spanning blocks.
        AssertReadAt(stream, content, content.Length - 8, 8);
        AssertReadAt(stream, content, content.Length - 70_000, 70_000 - 8);
        AssertReadAt(stream, content, 0, 4);
        AssertReadAt(stream, content, 1, 100);
        AssertReadAt(stream, content, block - 5, 10);
        AssertReadAt(stream, content, 2 * block - 1, 2);
        AssertReadAt(stream, content, 100, 2 * block + 17);
        AssertReadAt(stream, content, block / 2, block);
        AssertReadAt(stream, content, 3, 3);

        // Past the end: a short read, then nothing.
        var buffer = new byte[1000];
        stream.Position = content.Length - 100;
        Assert.Equal(100, ReadFully(stream, buffer));
        Assert.Equal(content.AsSpan(content.Length - 100).ToArray(), buffer.AsSpan(0, 100).ToArray());
        Assert.Equal(content.Length, stream.Position);
        Assert.Equal(0, stream.Read(buffer, 0, buffer.Length));
        Assert.Equal(-1, stream.ReadByte());
        stream.Position = content.Length + 10;
        Assert.Equal(0, stream.Read(buffer, 0, buffer.Length));

        // Zero bytes asked, zero read, position unchanged.
        stream.Position = 10;
        Assert.Equal(0, stream.Read(buffer, 0, 0));
        Assert.Equal(10, stream.Position);

        // Seek from every origin.
        Assert.Equal(content.Length - 10, stream.Seek(-10, SeekOrigin.End));
        Assert.Equal(content[^10], (byte)stream.ReadByte());
        Assert.Equal(content.Length - 4, stream.Seek(5, SeekOrigin.Current));
        Assert.Equal(content[^4], (byte)stream.ReadByte());
        Assert.Equal(block, stream.Seek(block, SeekOrigin.Begin));
        Assert.Equal(content[block], (byte)stream.ReadByte());
        Assert.Throws<NotSupportedException>(() => stream.Write([1], 0, 1));
    }

    [Fact]
    public async Task OpenRead_of_an_empty_object_reads_nothing()
    {
        await Store.PutAsync(Key("empty.bin"), ReadOnlyMemory<byte>.Empty, Cancel);
        using var stream = Store.OpenRead(Key("empty.bin"));
        Assert.Equal(0, stream.Length);
        Assert.Equal(0, stream.Read(new byte[10], 0, 10));
    }

    [Fact]
    public void OpenRead_of_a_missing_object_names_it()
    {
        var error = Assert.Throws<DataException>(() => Store.OpenRead(Key("missing.bin")));
        Assert.Contains(Store.Describe(Key("missing.bin")), error.Message, StringComparison.Ordinal);
        Assert.Contains("not found", error.Message, StringComparison.Ordinal);
    }

    private static void AssertReadAt(Stream stream, byte[] content, long offset, int count)
    {
        stream.Position = offset;
        var buffer = new byte[count];
        Assert.Equal(count, ReadFully(stream, buffer));
        Assert.True(content.AsSpan((int)offset, count).SequenceEqual(buffer), $"bytes differ at offset {offset}, count {count}");
        Assert.Equal(offset + count, stream.Position);
    }

    private static int ReadFully(Stream stream, byte[] buffer)
    {
        var total = 0;
        while (total < buffer.Length)
        {
            var read = stream.Read(buffer, total, buffer.Length - total);
            if (read == 0)
            {
                break;
            }
            total += read;
        }
        return total;
    }

    // ---- the dataset write protocol --------------------------------------------------------------------------

    [Fact]
    public async Task Uncommitted_write_is_invisible_and_commit_publishes_it()
    {
        var location = At("ds");
        await using (var writer = await ParquetDatasetWriter.CreateAsync(location, TestTables.MixedSchema, cancellationToken: Cancel))
        {
            using var batch = TestTables.Mixed(50);
            writer.Write(batch);
            // Data is written (and, on S3, a file may already be uploaded) but nothing is committed yet.
            var before = await Assert.ThrowsAsync<DataException>(() => Dataset.OpenAsync(location, cancellationToken: Cancel));
            Assert.Contains(location.ToString(), before.Message, StringComparison.Ordinal);

            await writer.CommitAsync(Cancel);
        }

        var dataset = await Dataset.OpenAsync(location, cancellationToken: Cancel);
        var file = Assert.Single(dataset.Files);
        Assert.EndsWith(".parquet", file.Key, StringComparison.Ordinal);
        Assert.Equal(TestTables.MixedRows(50), await TestTables.ReadRowsAsync(location));

        var manifest = DatasetManifest.Parse((await Store.GetAsync(Key($"ds/{DatasetManifest.FileName}"), Cancel))!, "manifest");
        Assert.Equal(50, manifest.Rows);
        Assert.Equal(file.Key, Key($"ds/{Assert.Single(manifest.Files).Path}"));
        Assert.Equal(file.Size, manifest.Files[0].Bytes);
    }

    [Fact]
    public async Task A_second_commit_replaces_the_first_entirely()
    {
        var location = At("ds");
        using (var first = TestTables.Mixed(250))
        {
            await TestTables.WriteDatasetAsync(location, first, new ParquetWriteOptions { RowGroupRows = 40, FileRows = 100 });
        }
        Assert.Equal(3, (await Dataset.OpenAsync(location, cancellationToken: Cancel)).Files.Count);

        using (var second = TestTables.Mixed(30, firstId: 1000))
        {
            await TestTables.WriteDatasetAsync(location, second);
        }

        var dataset = await Dataset.OpenAsync(location, cancellationToken: Cancel);
        Assert.Single(dataset.Files);
        Assert.Equal(TestTables.MixedRows(30, firstId: 1000), await TestTables.ReadRowsAsync(location));

        // Nothing of the first version is left: only the manifest and the files it lists.
        var expected = dataset.Files.Select(f => f.Key).Append(Key($"ds/{DatasetManifest.FileName}")).Order(StringComparer.Ordinal);
        Assert.Equal(expected, (await Store.ListAsync(location.Key, Cancel)).Select(o => o.Key));
    }

    [Fact]
    public async Task A_disposed_uncommitted_write_leaves_nothing_behind()
    {
        var location = At("ds");
        await using (var writer = await ParquetDatasetWriter.CreateAsync(location, TestTables.MixedSchema, new ParquetWriteOptions { FileRows = 10 }, Cancel))
        {
            using var batch = TestTables.Mixed(35);
            writer.Write(batch);
        }
        Assert.Empty(await Store.ListAsync(Root, Cancel));
        await Assert.ThrowsAsync<DataException>(() => Dataset.OpenAsync(location, cancellationToken: Cancel));
    }

    [Fact]
    public async Task An_abandoned_write_leaves_the_committed_version_intact()
    {
        var location = At("ds");
        using (var first = TestTables.Mixed(20))
        {
            await TestTables.WriteDatasetAsync(location, first);
        }
        var before = (await Store.ListAsync(location.Key, Cancel)).Select(o => o.Key).ToList();

        await using (var write = await Store.BeginWriteAsync(location.Key, Cancel))
        {
            await using var file = write.CreateFile("part-00000.parquet");
            using var batch = TestTables.Mixed(5, firstId: 500);
            TestTables.WriteParquet(file, batch);
        }

        Assert.Equal(TestTables.MixedRows(20), await TestTables.ReadRowsAsync(location));
        Assert.Equal(before, (await Store.ListAsync(location.Key, Cancel)).Select(o => o.Key));
    }

    [Fact]
    public async Task A_pending_marker_without_a_manifest_is_an_error()
    {
        using (var batch = TestTables.Mixed(3))
        {
            await Store.PutAsync(Key("ds/part-00000.parquet"), TestTables.ParquetBytes(batch), Cancel);
        }
        await Store.PutAsync(Key($"ds/{DatasetManifest.PendingMarkerPrefix}abc"), ReadOnlyMemory<byte>.Empty, Cancel);

        var error = await Assert.ThrowsAsync<DataException>(() => Dataset.OpenAsync(At("ds"), cancellationToken: Cancel));
        Assert.Contains(At("ds").ToString(), error.Message, StringComparison.Ordinal);
        Assert.Contains("not committed", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_manifest_listing_a_missing_file_is_an_error()
    {
        var manifest = new DatasetManifest { Rows = 1, Files = [new DatasetManifestFile { Path = "part-00000.parquet", Rows = 1 }] };
        await Store.PutAsync(Key($"ds/{DatasetManifest.FileName}"), manifest.ToUtf8Json(), Cancel);
        var error = await Assert.ThrowsAsync<DataException>(() => Dataset.OpenAsync(At("ds"), cancellationToken: Cancel));
        Assert.Contains(Store.Describe(Key("ds/part-00000.parquet")), error.Message, StringComparison.Ordinal);
        Assert.Contains("missing", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_dataset_without_a_manifest_reads_its_visible_files()
    {
        using var batch = TestTables.Mixed(4);
        var bytes = TestTables.ParquetBytes(batch);
        await Store.PutAsync(Key("ds/b.parquet"), bytes, Cancel);
        await Store.PutAsync(Key("ds/a.parquet"), bytes, Cancel);
        await Store.PutAsync(Key("ds/_SUCCESS"), ReadOnlyMemory<byte>.Empty, Cancel);
        await Store.PutAsync(Key("ds/.hidden.parquet"), bytes, Cancel);
        await Store.PutAsync(Key("ds/_tmp/c.parquet"), bytes, Cancel);
        await Store.PutAsync(Key("ds/notes.txt"), Encoding.UTF8.GetBytes("not data"), Cancel);

        var dataset = await Dataset.OpenAsync(At("ds"), cancellationToken: Cancel);
        Assert.Equal([Key("ds/a.parquet"), Key("ds/b.parquet")], dataset.Files.Select(f => f.Key));
        Assert.Equal(2L * bytes.Length, dataset.TotalBytes);

        // A single file named directly is a dataset of one file.
        var single = await Dataset.OpenAsync(At("ds/b.parquet"), cancellationToken: Cancel);
        Assert.Equal(Key("ds/b.parquet"), Assert.Single(single.Files).Key);
    }

    // ---- Parquet round trips ---------------------------------------------------------------------------------

    [Fact]
    public async Task Parquet_round_trip_keeps_types_nulls_and_microseconds_across_files_and_row_groups()
    {
        var location = At("ds");
        using (var batch = TestTables.Mixed(1000))
        {
            await TestTables.WriteDatasetAsync(location, batch, new ParquetWriteOptions { RowGroupRows = 100, FileRows = 300 });
        }

        var dataset = await Dataset.OpenAsync(location, cancellationToken: Cancel);
        Assert.Equal(4, dataset.Files.Count);
        var expectedGroups = new[] { 3, 3, 3, 1 };
        for (var i = 0; i < dataset.Files.Count; i++)
        {
            using var file = ParquetDataFile.Open(Store, dataset.Files[i].Key);
            Assert.Equal(expectedGroups[i], file.RowGroupCount);
            Assert.Equal(i < 3 ? 300 : 100, file.RowCount);
            file.ResolveColumns(TestTables.MixedColumns);
            var ts = file.Schema.GetFieldByName("ts").DataType;
            Assert.Equal("timestamp[microsecond, UTC]", DataSchema.DescribeArrow(ts));
        }
        Assert.Equal(TestTables.MixedRows(1000), await TestTables.ReadRowsAsync(location));
    }

    [Fact]
    public async Task A_dataset_written_as_ranges_in_parallel_reads_back_in_row_order()
    {
        var location = At("ds");
        var options = new ParquetWriteOptions { RowGroupRows = 100, FileRows = 300 };
        // Each range in batches of 70 rows, so batches straddle row groups; four files, encoded two at a time.
        await ParquetDatasetWriter.WriteRangesAsync(location, TestTables.MixedSchema, 1000, (first, count, write) =>
        {
            for (var at = first; at < first + count; at += 70)
            {
                using var batch = TestTables.Mixed((int)Math.Min(70, first + count - at), at);
                write(batch);
            }
        }, parallelism: 2, options, Cancel);

        var dataset = await Dataset.OpenAsync(location, cancellationToken: Cancel);
        Assert.Equal(4, dataset.Files.Count);
        for (var i = 0; i < dataset.Files.Count; i++)
        {
            using var file = ParquetDataFile.Open(Store, dataset.Files[i].Key);
            Assert.Equal(i < 3 ? 3 : 1, file.RowGroupCount);
            Assert.Equal(i < 3 ? 300 : 100, file.RowCount);
        }
        Assert.Equal(TestTables.MixedRows(1000), await TestTables.ReadRowsAsync(location));
    }

    [Fact]
    public async Task A_range_handing_the_wrong_rows_fails_the_write_and_leaves_nothing_behind()
    {
        var location = At("ds");
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => ParquetDatasetWriter.WriteRangesAsync(location, TestTables.MixedSchema, 1000, (first, count, write) =>
        {
            // The last range hands one row short.
            using var batch = TestTables.Mixed((int)(first == 900 ? count - 1 : count), first);
            write(batch);
        }, parallelism: 2, new ParquetWriteOptions { FileRows = 300 }, Cancel));
        Assert.Contains("rows 900 to 1000", error.Message, StringComparison.Ordinal);
        Assert.Empty(await Store.ListAsync(Root, Cancel));
    }

    [Fact]
    public async Task Projection_reads_only_the_requested_columns()
    {
        var location = At("ds");
        using (var batch = TestTables.Mixed(120))
        {
            await TestTables.WriteDatasetAsync(location, batch, new ParquetWriteOptions { RowGroupRows = 50 });
        }
        var dataset = await Dataset.OpenAsync(location, cancellationToken: Cancel);
        using var file = ParquetDataFile.Open(Store, Assert.Single(dataset.Files).Key);
        var columns = file.ResolveColumns([new ColumnSpec("ts", ColumnType.Timestamp), new ColumnSpec("id", ColumnType.Int64)]);

        var rows = new List<object?[]>();
        foreach (var batch in file.ReadAll(columns))
        {
            using (batch)
            {
                // Projected columns come back in the order asked for, not the file's order.
                Assert.Equal(["ts", "id"], batch.Schema.FieldsList.Select(f => f.Name));
                rows.AddRange(TestTables.Rows(batch));
            }
        }
        Assert.Equal(TestTables.Project(TestTables.MixedRows(120), 4, 0), rows);
    }

    [Fact]
    public async Task Row_groups_stream_one_at_a_time()
    {
        var location = At("ds");
        using (var batch = TestTables.Mixed(230))
        {
            await TestTables.WriteDatasetAsync(location, batch, new ParquetWriteOptions { RowGroupRows = 100 });
        }
        var dataset = await Dataset.OpenAsync(location, cancellationToken: Cancel);
        using var file = ParquetDataFile.Open(Store, Assert.Single(dataset.Files).Key, new ParquetReadOptions { BatchSize = 64 });
        Assert.Equal(3, file.RowGroupCount);
        var all = TestTables.MixedRows(230);
        var start = 0;
        for (var group = 0; group < file.RowGroupCount; group++)
        {
            var expected = (int)file.RowGroupRows(group);
            Assert.Equal(group < 2 ? 100 : 30, expected);
            var rows = new List<object?[]>();
            foreach (var batch in file.ReadRowGroup(group))
            {
                using (batch)
                {
                    Assert.True(batch.Length <= 64);
                    rows.AddRange(TestTables.Rows(batch));
                }
            }
            Assert.Equal(all.GetRange(start, expected), rows);
            start += expected;
        }
    }

    [Fact]
    public async Task Hive_partition_folders_become_partition_values()
    {
        var location = At("ds");
        var countries = new[] { "DE", "FR", "United States" };
        var manifest = new DatasetManifest();
        await using (var write = await Store.BeginWriteAsync(location.Key, Cancel))
        {
            for (var i = 0; i < countries.Length; i++)
            {
                var path = $"country={Uri.EscapeDataString(countries[i])}/year=2026/part-00000.parquet";
                using var batch = TestTables.Mixed(10, firstId: i * 10);
                await using (var stream = write.CreateFile(path))
                {
                    TestTables.WriteParquet(stream, batch);
                }
                manifest.Files.Add(new DatasetManifestFile { Path = path, Rows = 10 });
                manifest.Rows += 10;
            }
            await write.CommitAsync(manifest, Cancel);
        }

        var dataset = await Dataset.OpenAsync(location, cancellationToken: Cancel);
        Assert.Equal(3, dataset.Files.Count);
        for (var i = 0; i < countries.Length; i++)
        {
            var file = dataset.Files[i];
            Assert.Equal([new("country", countries[i]), new("year", "2026")], file.Partitions);
            Assert.Contains($"/country={Uri.EscapeDataString(countries[i])}/year=2026/", file.Key, StringComparison.Ordinal);
        }
        Assert.Equal(TestTables.MixedRows(30), await TestTables.ReadRowsAsync(location));

        // Without a manifest too.
        using (var batch = TestTables.Mixed(2))
        {
            await Store.PutAsync(Key("plain/region=eu/x.parquet"), TestTables.ParquetBytes(batch), Cancel);
        }
        var plain = await Dataset.OpenAsync(At("plain"), cancellationToken: Cancel);
        Assert.Equal([new KeyValuePair<string, string>("region", "eu")], Assert.Single(plain.Files).Partitions);
    }

    // ---- errors ----------------------------------------------------------------------------------------------

    [Fact]
    public async Task A_missing_dataset_is_a_data_error_naming_it()
    {
        var error = await Assert.ThrowsAsync<DataException>(() => Dataset.OpenAsync(At("no/such/dataset"), cancellationToken: Cancel));
        Assert.Contains(At("no/such/dataset").ToString(), error.Message, StringComparison.Ordinal);
        Assert.Contains("not found", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_file_that_is_not_parquet_is_a_data_error_naming_it()
    {
        await Store.PutAsync(Key("bad/x.parquet"), Encoding.UTF8.GetBytes("id,name\n1,Ann\n2,Bob\n"), Cancel);
        var error = Assert.Throws<DataException>(() => ParquetDataFile.Open(Store, Key("bad/x.parquet")));
        Assert.Contains(Store.Describe(Key("bad/x.parquet")), error.Message, StringComparison.Ordinal);
        Assert.Contains("not a Parquet file", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_truncated_parquet_file_is_a_data_error_naming_it()
    {
        byte[] bytes;
        using (var batch = TestTables.Mixed(500))
        {
            bytes = TestTables.ParquetBytes(batch);
        }
        await Store.PutAsync(Key("bad/cut.parquet"), bytes.AsMemory(0, bytes.Length / 2), Cancel);
        var error = Assert.Throws<DataException>(() => ParquetDataFile.Open(Store, Key("bad/cut.parquet")));
        Assert.Contains(Store.Describe(Key("bad/cut.parquet")), error.Message, StringComparison.Ordinal);
        Assert.Contains("truncated", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_missing_column_is_a_data_error_naming_file_and_column()
    {
        using (var batch = TestTables.Mixed(5))
        {
            await Store.PutAsync(Key("ds/x.parquet"), TestTables.ParquetBytes(batch), Cancel);
        }
        using var file = ParquetDataFile.Open(Store, Key("ds/x.parquet"));
        var error = Assert.Throws<DataException>(() => file.ResolveColumns([new ColumnSpec("id", ColumnType.Int64), new ColumnSpec("email", ColumnType.String)]));
        Assert.Contains(Store.Describe(Key("ds/x.parquet")), error.Message, StringComparison.Ordinal);
        Assert.Contains("missing column 'email'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_column_of_the_wrong_type_is_a_data_error_naming_file_column_and_types()
    {
        using (var batch = TestTables.Mixed(5))
        {
            await Store.PutAsync(Key("ds/x.parquet"), TestTables.ParquetBytes(batch), Cancel);
        }
        using var file = ParquetDataFile.Open(Store, Key("ds/x.parquet"));
        var error = Assert.Throws<DataException>(() => file.ResolveColumns([new ColumnSpec("name", ColumnType.Int64)]));
        Assert.Contains(Store.Describe(Key("ds/x.parquet")), error.Message, StringComparison.Ordinal);
        Assert.Contains("column 'name'", error.Message, StringComparison.Ordinal);
        Assert.Contains("int64", error.Message, StringComparison.Ordinal);
    }
}
