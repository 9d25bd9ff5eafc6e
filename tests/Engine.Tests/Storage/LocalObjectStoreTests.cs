using Engine.Storage;
using Engine.TestKit;

namespace Engine.Tests.Storage;

/// <summary>The storage conformance suite on a local directory, with keys relative to the store's root.</summary>
public sealed class LocalObjectStoreTests : ObjectStoreConformanceTests, IDisposable
{
    private readonly TempDirectory _directory = new("local-store");

    protected override (IObjectStore Store, string Root) CreateStore() => (new LocalObjectStore(_directory.Path), "root");

    public void Dispose() => _directory.Dispose();
}

/// <summary>
/// The suite again on a store rooted at "/" with absolute paths as keys: how <see cref="StorageResolver"/> opens
/// local paths a user types.
/// </summary>
public sealed class LocalObjectStoreAbsolutePathTests : ObjectStoreConformanceTests, IDisposable
{
    private readonly TempDirectory _directory = new("local-abs");

    protected override (IObjectStore Store, string Root) CreateStore()
        => (new LocalObjectStore("/"), _directory.Path.TrimStart('/'));

    public void Dispose() => _directory.Dispose();
}
