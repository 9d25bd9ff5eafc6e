using Engine.Datasets;
using Engine.Storage;

namespace Engine.Benchmarks.Infrastructure;

/// <summary>
/// The generated customer bases benchmarks read, cached under <c>artifacts/bench-data/</c> (generation is
/// deterministic, so a cached copy is the same bytes a fresh one would be).
/// </summary>
internal static class BenchmarkData
{
    /// <summary>The repository root (the folder holding Engine.sln).</summary>
    public static string RepositoryRoot { get; } = FindRoot();

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Engine.sln")))
            {
                return dir.FullName;
            }
        }
        return Directory.GetCurrentDirectory();
    }

    /// <summary>The folder holding <paramref name="people"/> generated people (seed 1), generating it on first use.</summary>
    public static string Ensure(long people)
    {
        var folder = Path.Combine(RepositoryRoot, "artifacts", "bench-data", $"people-{people}-seed-1");
        if (File.Exists(Path.Combine(folder, GeneratedDatasets.TruthFolder, DatasetManifest.FileName)))
        {
            return folder;
        }
        Console.Error.WriteLine($"// generating {people:N0} people into {folder} (cached for later runs)");
        var generator = new SyntheticGenerator(new GeneratorOptions { People = people, Seed = 1 });
        generator.GenerateAsync(new StorageLocation(new LocalObjectStore(folder), "")).GetAwaiter().GetResult();
        return folder;
    }
}
