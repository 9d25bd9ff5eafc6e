using System.Net;
using System.Net.Sockets;
using Apache.Arrow;
using DuckDB.NET.Data;
using Engine.Storage.S3;
using Engine.TestKit;

namespace Engine.Storage.S3.Tests;

/// <summary>
/// The storage conformance suite against a real S3 protocol server (s3rver, or the endpoint the environment names),
/// plus what only S3 has: ranged reads, signatures, multipart uploads, pagination, the manifest commit's clean-up.
/// </summary>
public sealed class S3ObjectStoreTests(S3Server server) : ObjectStoreConformanceTests
{
    private const int MiB = 1024 * 1024;

    protected override (IObjectStore Store, string Root) CreateStore() => (server.CreateStore(), server.NewPrefix());

    private S3ObjectStore S3 => (S3ObjectStore)Store;

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    private static void Report(string line) => TestContext.Current.TestOutputHelper?.WriteLine(line);

    // ---- ranged reads ----------------------------------------------------------------------------------------

    [Fact]
    public async Task Projecting_one_column_of_a_wide_file_fetches_a_fraction_of_its_bytes()
    {
        const int rows = 100_000;
        const int columns = 16;
        var location = At("wide");
        double expectedSum = 0;
        using (var batch = TestTables.Wide(rows, columns))
        {
            var c5 = (DoubleArray)batch.Column(5);
            for (var i = 0; i < rows; i++)
            {
                expectedSum += c5.GetValue(i)!.Value;
            }
            await TestTables.WriteDatasetAsync(location, batch, new ParquetWriteOptions { RowGroupRows = 50_000 });
        }

        using var reader = server.CreateStore();
        var dataset = await Dataset.OpenAsync(new StorageLocation(reader, location.Key), cancellationToken: Cancel);
        var file = Assert.Single(dataset.Files);
        reader.ResetCounters();

        double sum = 0;
        long read = 0;
        using (var data = ParquetDataFile.Open(reader, file.Key))
        {
            Assert.Equal(2, data.RowGroupCount);
            var projection = data.ResolveColumns([new ColumnSpec("c5", ColumnType.Double)]);
            foreach (var batch in data.ReadAll(projection))
            {
                using (batch)
                {
                    var values = (DoubleArray)batch.Column(0);
                    foreach (var value in values.Values)
                    {
                        sum += value;
                    }
                    read += batch.Length;
                }
            }
        }
        Assert.Equal(rows, read);
        Assert.Equal(expectedSum, sum, 6);

        var fetched = reader.BytesFetched;
        Report($"one of {columns} columns: object {file.Size:N0} bytes, fetched {fetched:N0} bytes ({100.0 * fetched / file.Size:F1}%) in {reader.GetCount} GETs, {reader.RequestCount} requests");
        Assert.True(fetched < file.Size / 2, $"fetched {fetched} of {file.Size} bytes for one column of {columns}");
        Assert.True(reader.GetCount <= 4, $"{reader.GetCount} GETs: the footer and each row group's column chunk should take one each");

        // All columns, for comparison: about the whole object, still in a few large requests.
        reader.ResetCounters();
        using (var data = ParquetDataFile.Open(reader, file.Key))
        {
            foreach (var batch in data.ReadAll())
            {
                batch.Dispose();
            }
        }
        Report($"all {columns} columns: fetched {reader.BytesFetched:N0} bytes in {reader.GetCount} GETs");
        Assert.True(reader.BytesFetched >= file.Size * 9 / 10);
    }

    [Fact]
    public async Task Small_sequential_reads_are_served_from_read_ahead_blocks()
    {
        var content = new byte[3 * MiB + 100];
        new Random(3).NextBytes(content);
        await Store.PutAsync(Key("seq.bin"), content, Cancel);
        S3.ResetCounters();

        using var stream = Store.OpenRead(Key("seq.bin"));
        var copy = new MemoryStream();
        var buffer = new byte[4096];
        int n;
        while ((n = stream.Read(buffer, 0, buffer.Length)) > 0)
        {
            copy.Write(buffer, 0, n);
        }
        Assert.Equal(content, copy.ToArray());
        Report($"{content.Length:N0} bytes read 4 KiB at a time: {S3.GetCount} GETs, {S3.BytesFetched:N0} bytes fetched");
        Assert.True(S3.GetCount <= 4, $"{S3.GetCount} GETs for 3 MiB read in 4 KiB pieces");
        Assert.True(S3.BytesFetched <= content.Length + MiB);
    }

    // ---- credentials and connection errors -------------------------------------------------------------------

    [Fact]
    public async Task A_wrong_secret_is_rejected_with_a_clear_error_that_hides_the_secret()
    {
        const string wrongSecret = "definitely-not-the-secret-1234";
        using var store = server.CreateStore(o => o with { SecretKey = wrongSecret, MaxErrorRetry = 0 });
        var error = await Assert.ThrowsAsync<DataException>(() => store.PutAsync(Key("x.bin"), new byte[] { 1, 2, 3 }, Cancel));
        Report(error.Message);
        Assert.StartsWith($"s3://{server.Bucket}/{Key("x.bin")}: ", error.Message, StringComparison.Ordinal);
        Assert.Contains("signature", error.Message, StringComparison.Ordinal);
        Assert.Contains("AWS_SECRET_ACCESS_KEY", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(wrongSecret, error.ToString(), StringComparison.Ordinal);

        // Reads are checked too, so the server really verifies signatures.
        await Store.PutAsync(Key("y.bin"), new byte[] { 1 }, Cancel);
        var read = Assert.Throws<DataException>(() => store.OpenRead(Key("y.bin")));
        Assert.DoesNotContain("not found", read.Message, StringComparison.Ordinal);
        Assert.NotNull(await Store.GetAsync(Key("y.bin"), Cancel));
    }

    [Fact]
    public async Task An_unknown_access_key_is_rejected_with_a_clear_error()
    {
        using var store = server.CreateStore(o => o with { AccessKey = "NOSUCHKEY", MaxErrorRetry = 0 });
        var error = await Assert.ThrowsAsync<DataException>(() => store.ListAsync(Root, Cancel));
        Report(error.Message);
        Assert.Contains("access key", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_missing_bucket_is_named_in_the_error()
    {
        using var store = new S3ObjectStore("no-such-bucket-" + Guid.NewGuid().ToString("N")[..8], server.Options with { MaxErrorRetry = 0 });
        var error = await Assert.ThrowsAsync<DataException>(() => Dataset.OpenAsync(new StorageLocation(store, "events"), cancellationToken: Cancel));
        Report(error.Message);
        Assert.Contains($"bucket '{store.Bucket}' does not exist", error.Message, StringComparison.Ordinal);
        Assert.StartsWith($"s3://{store.Bucket}/events", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_server_that_is_not_running_is_reported_as_such()
    {
        int port;
        using (var listener = new TcpListener(IPAddress.Loopback, 0))
        {
            listener.Start();
            port = ((IPEndPoint)listener.LocalEndpoint).Port;
            listener.Stop();
        }
        using var store = new S3ObjectStore("bucket", server.Options with { Endpoint = new Uri($"http://127.0.0.1:{port}"), MaxErrorRetry = 0 });
        var error = await Assert.ThrowsAsync<DataException>(() => store.GetSizeAsync("some/key", Cancel));
        Report(error.Message);
        Assert.StartsWith("s3://bucket/some/key: ", error.Message, StringComparison.Ordinal);
        Assert.Contains($"127.0.0.1:{port}", error.Message, StringComparison.Ordinal);
        Assert.Contains("connection refused", error.Message, StringComparison.Ordinal);
    }

    // ---- listing, deleting and uploading at scale ------------------------------------------------------------

    [Fact]
    public async Task Listing_follows_continuation_tokens_and_deletes_go_in_batches()
    {
        S3.ListPageSize = 2;
        S3.DeleteBatchSize = 2;
        var keys = Enumerable.Range(0, 7).Select(i => Key($"many/{i:D2}.bin")).ToList();
        foreach (var key in keys)
        {
            await Store.PutAsync(key, new byte[] { 1 }, Cancel);
        }
        S3.ResetCounters();
        Assert.Equal(keys, (await Store.ListAsync(Key("many"), Cancel)).Select(o => o.Key));
        Assert.Equal(4, S3.RequestCount);

        S3.ResetCounters();
        await Store.DeleteAsync([.. keys, Key("many/missing.bin")], Cancel);
        Assert.Equal(4, S3.RequestCount);
        Assert.Empty(await Store.ListAsync(Key("many"), Cancel));
    }

    [Fact]
    public async Task Large_files_are_uploaded_in_parts_byte_for_byte()
    {
        using var store = server.CreateStore(o => o with { MultipartThreshold = 5 * MiB, MultipartPartSize = 5 * MiB });
        var content = new byte[12 * MiB + 321];
        new Random(11).NextBytes(content);
        var manifest = new DatasetManifest { Files = [new DatasetManifestFile { Path = "big.bin", Bytes = content.Length }] };
        await using (var write = await store.BeginWriteAsync(Key("big"), Cancel))
        {
            await using (var file = write.CreateFile("big.bin"))
            {
                // Written in uneven pieces, as a Parquet writer would.
                for (var offset = 0; offset < content.Length; offset += 100_003)
                {
                    file.Write(content, offset, Math.Min(100_003, content.Length - offset));
                }
            }
            store.ResetCounters();
            await write.CommitAsync(manifest, Cancel);
        }
        var committed = DatasetManifest.Parse((await store.GetAsync(Key($"big/{DatasetManifest.FileName}"), Cancel))!, "manifest");
        var key = Key($"big/{Assert.Single(committed.Files).Path}");
        Assert.Equal(content.Length, await store.GetSizeAsync(key, Cancel));
        Assert.Equal(content, await store.GetAsync(key, Cancel));
    }

    // ---- the commit protocol on S3 ---------------------------------------------------------------------------

    [Fact]
    public async Task Files_carry_the_write_id_and_the_marker_lives_until_the_commit()
    {
        var location = At("ds");
        var write = (S3DatasetWrite)await Store.BeginWriteAsync(location.Key, Cancel);
        await using (write)
        {
            Assert.NotNull(await Store.GetSizeAsync(write.MarkerKey, Cancel));
            Assert.Equal(Key($"ds/{DatasetManifest.PendingMarkerPrefix}{write.WriteId}"), write.MarkerKey);
            using (var batch = TestTables.Mixed(5))
            {
                await using var stream = write.CreateFile("country=DE/part-00000.parquet");
                TestTables.WriteParquet(stream, batch);
            }
            var uploaded = Key($"ds/country=DE/part-00000-{write.WriteId}.parquet");
            Assert.NotNull(await Store.GetSizeAsync(uploaded, Cancel));

            await write.CommitAsync(new DatasetManifest { Rows = 5, Files = [new DatasetManifestFile { Path = "country=DE/part-00000.parquet", Rows = 5 }] }, Cancel);
            Assert.Null(await Store.GetSizeAsync(write.MarkerKey, Cancel));
            Assert.Equal([uploaded], (await Dataset.OpenAsync(location, cancellationToken: Cancel)).Files.Select(f => f.Key));
        }
        Assert.Equal(TestTables.MixedRows(5), await TestTables.ReadRowsAsync(location));
    }

    [Fact]
    public async Task A_commit_keeps_the_files_of_a_write_still_in_progress_but_removes_abandoned_ones()
    {
        var location = At("ds");
        var slow = (S3DatasetWrite)await Store.BeginWriteAsync(location.Key, Cancel);
        await using (slow)
        {
            await using (var stream = slow.CreateFile("part-00000.parquet"))
            {
                using var batch = TestTables.Mixed(3, firstId: 900);
                TestTables.WriteParquet(stream, batch);
            }

            using (var batch = TestTables.Mixed(10))
            {
                await TestTables.WriteDatasetAsync(location, batch);
            }
            Assert.NotNull(await Store.GetSizeAsync(slow.MarkerKey, Cancel));
            Assert.NotNull(await Store.GetSizeAsync(Key($"ds/part-00000-{slow.WriteId}.parquet"), Cancel));
            Assert.Equal(TestTables.MixedRows(10), await TestTables.ReadRowsAsync(location));

            // The slow write commits last and wins.
            await slow.CommitAsync(new DatasetManifest { Rows = 3, Files = [new DatasetManifestFile { Path = "part-00000.parquet", Rows = 3 }] }, Cancel);
        }
        Assert.Equal(TestTables.MixedRows(3, firstId: 900), await TestTables.ReadRowsAsync(location));
        Assert.Equal(2, (await Store.ListAsync(location.Key, Cancel)).Count);

        // A marker older than the abandonment age is a dead write: the next commit removes it and its files.
        await Store.PutAsync(Key($"ds/{DatasetManifest.PendingMarkerPrefix}dead0000dead0000"), ReadOnlyMemory<byte>.Empty, Cancel);
        await Store.PutAsync(Key("ds/part-00000-dead0000dead0000.parquet"), new byte[] { 1 }, Cancel);
        S3.AbandonedWriteAge = TimeSpan.Zero;
        using (var batch = TestTables.Mixed(4))
        {
            await TestTables.WriteDatasetAsync(location, batch);
        }
        var left = (await Store.ListAsync(location.Key, Cancel)).Select(o => o.Key).ToList();
        Assert.Equal(2, left.Count);
        Assert.DoesNotContain(left, k => k.Contains("dead0000", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_failed_upload_fails_the_write_and_leaves_nothing_behind()
    {
        using var real = server.CreateStore();
        var client = FaultyS3Client.Create(real.Client, (method, args) =>
            method == nameof(Amazon.S3.IAmazonS3.PutObjectAsync) && args?[0] is Amazon.S3.Model.PutObjectRequest { Key: var key } && key.Contains("/part-00001-", StringComparison.Ordinal)
                ? new Amazon.S3.AmazonS3Exception("injected") { ErrorCode = "InternalError", StatusCode = HttpStatusCode.InternalServerError }
                : null);
        using var store = new S3ObjectStore(server.Bucket, client, server.Options);
        var location = new StorageLocation(store, Key("ds"));

        // The second file's upload fails when the writer moves on to the third.
        await using (var writer = await ParquetDatasetWriter.CreateAsync(location, TestTables.MixedSchema, new ParquetWriteOptions { FileRows = 10 }, Cancel))
        {
            using var batch = TestTables.Mixed(25);
            var error = Assert.Throws<DataException>(() => writer.Write(batch));
            Assert.Contains(store.Describe(Key("ds/part-00001-")), error.Message, StringComparison.Ordinal);
        }
        Assert.Empty(await store.ListAsync(Root, Cancel));
    }

    [Fact]
    public async Task An_abandoned_writer_whose_last_upload_fails_still_leaves_nothing_behind()
    {
        using var real = server.CreateStore();
        var client = FaultyS3Client.Create(real.Client, (method, args) =>
            method == nameof(Amazon.S3.IAmazonS3.PutObjectAsync) && args?[0] is Amazon.S3.Model.PutObjectRequest { Key: var key } && key.Contains("/part-00001-", StringComparison.Ordinal)
                ? new Amazon.S3.AmazonS3Exception("injected") { ErrorCode = "InternalError", StatusCode = HttpStatusCode.InternalServerError }
                : null);
        using var store = new S3ObjectStore(server.Bucket, client, server.Options);
        var location = new StorageLocation(store, Key("ds"));

        // One file uploaded, the second open when the writer is abandoned (its caller failed); closing it fails too.
        var writer = await ParquetDatasetWriter.CreateAsync(location, TestTables.MixedSchema, new ParquetWriteOptions { FileRows = 10 }, Cancel);
        using (var batch = TestTables.Mixed(15))
        {
            writer.Write(batch);
        }
        Assert.NotEmpty(await store.ListAsync(Root, Cancel));
        await writer.DisposeAsync();
        Assert.Empty(await store.ListAsync(Root, Cancel));
    }

    [Fact]
    public async Task A_request_failing_in_the_middle_of_a_read_is_reported_as_such_not_as_corruption()
    {
        var location = At("ds");
        using (var batch = TestTables.Wide(100_000, 4))
        {
            await TestTables.WriteDatasetAsync(location, batch);
        }
        var file = Assert.Single((await Dataset.OpenAsync(location, cancellationToken: Cancel)).Files);

        using var real = server.CreateStore();
        var failing = false;
        var client = FaultyS3Client.Create(real.Client, (method, _) =>
            failing && method == nameof(Amazon.S3.IAmazonS3.GetObjectAsync)
                ? new Amazon.S3.AmazonS3Exception("injected") { ErrorCode = "AccessDenied", StatusCode = HttpStatusCode.Forbidden }
                : null);
        using var store = new S3ObjectStore(server.Bucket, client, server.Options);
        using var data = ParquetDataFile.Open(store, file.Key);
        failing = true;
        var error = Assert.Throws<DataException>(() => data.ReadAll().ToList());
        Report(error.Message);
        Assert.StartsWith(store.Describe(file.Key), error.Message, StringComparison.Ordinal);
        Assert.Contains("access denied", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("corrupt", error.Message, StringComparison.Ordinal);
        Assert.Equal(error.Message.IndexOf(store.Describe(file.Key), StringComparison.Ordinal), error.Message.LastIndexOf(store.Describe(file.Key), StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_dataset_cannot_be_written_at_the_bucket_root()
    {
        var error = await Assert.ThrowsAsync<EngineException>(() => Store.BeginWriteAsync("", Cancel));
        Assert.Contains("root of a bucket", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_s3_uri_resolved_by_the_storage_resolver_writes_and_reads_a_dataset()
    {
        using var resolver = new StorageResolver().Add(new S3ObjectStoreProvider(server.Options));
        var location = resolver.Resolve($"s3://{server.Bucket}/{Key("events")}/");
        Assert.Equal($"s3://{server.Bucket}/{Key("events")}", location.ToString());
        using (var batch = TestTables.Mixed(64))
        {
            await TestTables.WriteDatasetAsync(location, batch, new ParquetWriteOptions { FileRows = 30 });
        }
        var dataset = await Dataset.OpenAsync(resolver.Resolve($"s3://{server.Bucket}/{Key("events")}"), cancellationToken: Cancel);
        Assert.Equal(3, dataset.Files.Count);
        Assert.All(dataset.Files, f => Assert.StartsWith($"{Key("events")}/part-", f.Key, StringComparison.Ordinal));
        Assert.Equal(TestTables.MixedRows(64), await TestTables.ReadRowsAsync(location));
    }

    // ---- a peer reads what was written -----------------------------------------------------------------------

    [Fact]
    public async Task DuckDB_reads_the_parquet_written_to_S3_with_the_same_values()
    {
        var location = At("ds");
        using (var batch = TestTables.Mixed(500))
        {
            await TestTables.WriteDatasetAsync(location, batch, new ParquetWriteOptions { RowGroupRows = 128 });
        }
        var file = Assert.Single((await Dataset.OpenAsync(location, cancellationToken: Cancel)).Files);
        using var local = new TempDirectory("duck");
        var path = local.Combine("copy.parquet");
        await File.WriteAllBytesAsync(path, (await Store.GetAsync(file.Key, Cancel))!, Cancel);

        using var duck = new DuckDBConnection("Data Source=:memory:");
        await duck.OpenAsync(Cancel);
        using var command = duck.CreateCommand();
        command.CommandText = $"SELECT count(*), count(name), sum(id)::BIGINT, count(ts), min(ts), count(day) FROM read_parquet('{path}')";
        using var result = await command.ExecuteReaderAsync(Cancel);
        Assert.True(await result.ReadAsync(Cancel));

        var rows = TestTables.MixedRows(500);
        Assert.Equal(500L, Convert.ToInt64(result.GetValue(0), System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(rows.Count(r => r[1] is not null), Convert.ToInt64(result.GetValue(1), System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(rows.Sum(r => (long)r[0]!), Convert.ToInt64(result.GetValue(2), System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(rows.Count(r => r[4] is not null), Convert.ToInt64(result.GetValue(3), System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(rows.Where(r => r[4] is not null).Min(r => (DateTimeOffset)r[4]!).UtcDateTime, AsUtc(result.GetValue(4)));
        Assert.Equal(rows.Count(r => r[5] is not null), Convert.ToInt64(result.GetValue(5), System.Globalization.CultureInfo.InvariantCulture));
    }

    private static DateTime AsUtc(object value) => value switch
    {
        DateTimeOffset offset => offset.UtcDateTime,
        DateTime { Kind: DateTimeKind.Unspecified } unspecified => DateTime.SpecifyKind(unspecified, DateTimeKind.Utc),
        DateTime time => time.ToUniversalTime(),
        _ => throw new InvalidCastException($"unexpected {value.GetType().Name}"),
    };
}
