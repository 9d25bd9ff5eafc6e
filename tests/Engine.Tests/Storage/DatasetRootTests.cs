using Engine.Storage;
using Engine.TestKit;

namespace Engine.Tests.Storage;

/// <summary>A dataset at the root of a store (key ""), as a store opened on the dataset's own folder sees it.</summary>
public sealed class DatasetRootTests
{
    [Fact]
    public async Task A_dataset_written_at_the_store_root_reads_back_through_its_manifest()
    {
        using var directory = new TempDirectory("root-dataset");
        using var store = new LocalObjectStore(directory.Path);
        var location = new StorageLocation(store, "");
        using (var batch = TestTables.Mixed(40))
        {
            await TestTables.WriteDatasetAsync(location, batch, new ParquetWriteOptions { FileRows = 15 });
        }

        // Not in the manifest, so not part of the dataset.
        using (var stray = TestTables.Mixed(1))
        {
            await store.PutAsync("stray.parquet", TestTables.ParquetBytes(stray), TestContext.Current.CancellationToken);
        }

        var dataset = await Dataset.OpenAsync(location, cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"], dataset.Files.Select(f => f.Key));
        Assert.All(dataset.Files, f => Assert.Empty(f.Partitions));
        Assert.Equal(TestTables.MixedRows(40), await TestTables.ReadRowsAsync(location));
    }

    [Fact]
    public async Task Hidden_files_and_pending_markers_at_the_store_root_are_recognised()
    {
        using var directory = new TempDirectory("root-pending");
        using var store = new LocalObjectStore(directory.Path);
        using (var batch = TestTables.Mixed(3))
        {
            await store.PutAsync("part-00000.parquet", TestTables.ParquetBytes(batch), TestContext.Current.CancellationToken);
        }
        using (var hidden = TestTables.Mixed(1))
        {
            await store.PutAsync("_hidden.parquet", TestTables.ParquetBytes(hidden), TestContext.Current.CancellationToken);
        }
        Assert.Equal(["part-00000.parquet"], (await Dataset.OpenAsync(new StorageLocation(store, ""), cancellationToken: TestContext.Current.CancellationToken)).Files.Select(f => f.Key));

        await store.PutAsync($"{DatasetManifest.PendingMarkerPrefix}abc", ReadOnlyMemory<byte>.Empty, TestContext.Current.CancellationToken);
        var error = await Assert.ThrowsAsync<DataException>(() => Dataset.OpenAsync(new StorageLocation(store, ""), cancellationToken: TestContext.Current.CancellationToken));
        Assert.Contains("not committed", error.Message, StringComparison.Ordinal);
    }
}
