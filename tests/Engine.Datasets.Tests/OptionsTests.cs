using Engine.Storage;
using Engine.TestKit;

namespace Engine.Datasets.Tests;

public sealed class OptionsTests
{
    [Theory]
    [InlineData(0, 365, "People")]
    [InlineData(-5, 365, "People")]
    [InlineData(GeneratorOptions.MaxPeople + 1, 365, "People")]
    [InlineData(10, 0, "Days")]
    [InlineData(10, -1, "Days")]
    public void Invalid_options_throw_naming_the_option(long people, int days, string name)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new SyntheticGenerator(new GeneratorOptions { People = people, Seed = 1, Days = days }));
        Assert.Equal(name, e.ParamName);
        Assert.Contains(name, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Zero_parallelism_throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new SyntheticGenerator(new GeneratorOptions { People = 10, Seed = 1, Parallelism = 0 }));
    }

    [Fact]
    public void Default_as_of_is_fixed_not_now()
    {
        var options = new GeneratorOptions { People = 1, Seed = 1 };
        Assert.Equal(new DateTimeOffset(2026, 11, 1, 0, 0, 0, TimeSpan.Zero), options.AsOf);
        Assert.Equal(365, options.Days);
    }

    [Fact]
    public async Task Tiny_data_sets_and_short_windows_work()
    {
        using var directory = new TempDirectory("gen-tiny");
        using var resolver = new StorageResolver();
        var summary = await new SyntheticGenerator(new GeneratorOptions { People = 1, Seed = 3, Days = 1 }).GenerateAsync(resolver.Resolve(directory.Path), null, TestContext.Current.CancellationToken);
        Assert.Equal(1, summary.People);
        Assert.True(summary.Events > 0);
        Assert.True(summary.TruthRows > 0);
    }

    [Fact]
    public async Task A_custom_window_bounds_every_timestamp()
    {
        using var directory = new TempDirectory("gen-window");
        using var resolver = new StorageResolver();
        var asOf = new DateTimeOffset(2026, 3, 15, 13, 30, 0, TimeSpan.FromHours(2));
        var options = new GeneratorOptions { People = 400, Seed = 8, Days = 30, AsOf = asOf };
        var summary = await new SyntheticGenerator(options).GenerateAsync(resolver.Resolve(directory.Path), null, TestContext.Current.CancellationToken);
        using var duck = GeneratedData.OpenDuckDb(directory.Path);
        var start = asOf.AddDays(-30).UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture);
        var end = asOf.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(summary.Events, GeneratedData.Scalar(duck, $"SELECT count(*) FROM events WHERE ts >= TIMESTAMPTZ '{start}Z' AND ts < TIMESTAMPTZ '{end}Z'"));
        Assert.Equal(0, GeneratedData.Scalar(duck, $"SELECT count(*) FROM profiles WHERE updated_at >= TIMESTAMPTZ '{end}Z'"));
        // Hours follow the daily curve in UTC: evenings are busier than small hours.
        Assert.True(GeneratedData.Scalar(duck, "SELECT count(*) FROM events WHERE type = 'page_view' AND hour(ts) = 20")
            > GeneratedData.Scalar(duck, "SELECT count(*) FROM events WHERE type = 'page_view' AND hour(ts) = 4"));
    }

    [Fact]
    public async Task Cancellation_publishes_nothing()
    {
        using var directory = new TempDirectory("gen-cancel");
        using var resolver = new StorageResolver();
        using var cancel = new CancellationTokenSource();
        var progress = new SynchronousProgress(_ => cancel.Cancel());
        var generator = new SyntheticGenerator(new GeneratorOptions { People = 5000, Seed = 3, BlockSize = 100, Parallelism = 2 });
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => generator.GenerateAsync(resolver.Resolve(directory.Path), progress, cancel.Token));
        Assert.False(File.Exists(directory.Combine("events", "_dataset.json")));
        Assert.Empty(Directory.GetFiles(directory.Path, "*.parquet", SearchOption.AllDirectories));
    }

    private sealed class SynchronousProgress(Action<GenerationProgress> report) : IProgress<GenerationProgress>
    {
        public void Report(GenerationProgress value) => report(value);
    }
}
