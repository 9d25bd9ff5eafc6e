using System.Security.Cryptography;
using Engine.Storage;
using Engine.TestKit;

namespace Engine.Datasets.Tests;

public sealed class DeterminismTests
{
    private static async Task<(GenerationSummary Summary, SortedDictionary<string, string> Hashes)> Generate(TempDirectory directory, long seed, int parallelism)
    {
        using var resolver = new StorageResolver();
        var options = new GeneratorOptions { People = 1500, Seed = seed, Parallelism = parallelism, BlockSize = 128 };
        var summary = await new SyntheticGenerator(options).GenerateAsync(resolver.Resolve(directory.Path), null, TestContext.Current.CancellationToken);
        var hashes = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var file in Directory.GetFiles(directory.Path, "*", SearchOption.AllDirectories))
        {
            hashes[Path.GetRelativePath(directory.Path, file)] = Convert.ToHexString(SHA256.HashData(await File.ReadAllBytesAsync(file)));
        }
        return (summary, hashes);
    }

    [Fact]
    public async Task Same_seed_gives_byte_identical_files_whatever_the_parallelism()
    {
        using var one = new TempDirectory("gen-p1");
        using var three = new TempDirectory("gen-p3");
        var (summaryOne, hashesOne) = await Generate(one, seed: 11, parallelism: 1);
        var (summaryThree, hashesThree) = await Generate(three, seed: 11, parallelism: 3);
        Assert.Equal(summaryOne with { Elapsed = default }, summaryThree with { Elapsed = default });
        Assert.Contains("events/part-00000.parquet", hashesOne.Keys);
        Assert.Contains("truth/part-00000.parquet", hashesOne.Keys);
        Assert.Equal(hashesOne, hashesThree);
    }

    [Fact]
    public async Task Different_seeds_give_different_data()
    {
        using var a = new TempDirectory("gen-s1");
        using var b = new TempDirectory("gen-s2");
        var (_, hashesA) = await Generate(a, seed: 11, parallelism: 2);
        var (_, hashesB) = await Generate(b, seed: 12, parallelism: 2);
        foreach (var dataset in new[] { "events", "profiles", "consent", "truth" })
        {
            var file = $"{dataset}/part-00000.parquet";
            Assert.NotEqual(hashesA[file], hashesB[file]);
        }
    }
}
