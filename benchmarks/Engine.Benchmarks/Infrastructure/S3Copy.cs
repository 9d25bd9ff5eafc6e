using Engine.Storage;
using Engine.Storage.S3;
using Engine.TestKit;

namespace Engine.Benchmarks.Infrastructure;

/// <summary>An s3rver on 127.0.0.1 holding a byte-for-byte copy of a local dataset, for the S3 read cases.</summary>
internal sealed class S3Copy : IAsyncDisposable
{
    private readonly S3Server _server;

    private S3Copy(S3Server server, S3ObjectStore store, Dataset dataset)
    {
        _server = server;
        Store = store;
        Dataset = dataset;
    }

    public S3ObjectStore Store { get; }

    public Dataset Dataset { get; }

    /// <summary>Starts s3rver and uploads every file of the local dataset (and its _dataset.json) under a fresh prefix.</summary>
    public static async Task<S3Copy> CreateAsync(string localDatasetFolder)
    {
        var server = new S3Server();
        await server.InitializeAsync();
        var store = server.CreateStore();
        var prefix = server.NewPrefix("bench");
        foreach (var file in Directory.EnumerateFiles(localDatasetFolder, "*", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(localDatasetFolder, file).Replace('\\', '/');
            await store.PutAsync($"{prefix}/{relative}", await File.ReadAllBytesAsync(file));
        }
        var dataset = await Dataset.OpenAsync(new StorageLocation(store, prefix));
        return new S3Copy(server, store, dataset);
    }

    public async ValueTask DisposeAsync()
    {
        Store.Dispose();
        await _server.DisposeAsync();
    }
}
