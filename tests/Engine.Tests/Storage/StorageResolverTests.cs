using Engine;
using Engine.Storage;

namespace Engine.Tests.Storage;

public class StorageResolverTests
{
    private sealed class FakeProvider : IObjectStoreProvider
    {
        public List<string> Opened { get; } = [];

        public string Scheme => "mem";

        public IObjectStore Open(string bucketOrAuthority)
        {
            Opened.Add(bucketOrAuthority);
            return new LocalObjectStore(Path.Combine(Path.GetTempPath(), "mem", bucketOrAuthority));
        }
    }

    [Fact]
    public void Relative_paths_are_taken_against_the_base_directory()
    {
        using var resolver = new StorageResolver();
        var location = resolver.Resolve("data/events", "/work/ws");
        Assert.Equal("/work/ws/data/events", location.ToString());
        Assert.Equal("/abs/x", resolver.Resolve("/abs/x/", "/work/ws").ToString());
        Assert.Equal("/abs/y", resolver.Resolve("file:///abs/y").ToString());
    }

    [Fact]
    public void Uri_locations_go_to_their_provider_once_per_bucket()
    {
        var provider = new FakeProvider();
        using var resolver = new StorageResolver().Add(provider);
        var a = resolver.Resolve("mem://lake/crm/profiles/");
        var b = resolver.Resolve("mem://lake/events");
        Assert.Equal("crm/profiles", a.Key);
        Assert.Equal("events", b.Key);
        Assert.Same(a.Store, b.Store);
        Assert.Equal(["lake"], provider.Opened);
        Assert.Equal("crm/profiles/x", a.Child("x").Key);
    }

    [Theory]
    [InlineData("gs://bucket/x", "unsupported storage scheme 'gs://'")]
    [InlineData("mem:///x", "no bucket named")]
    [InlineData("  ", "empty storage location")]
    public void Bad_locations_are_explained(string location, string expected)
    {
        using var resolver = new StorageResolver().Add(new FakeProvider());
        var error = Assert.Throws<EngineException>(() => resolver.Resolve(location));
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }
}
