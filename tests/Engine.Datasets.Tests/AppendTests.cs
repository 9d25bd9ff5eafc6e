using Engine.Storage;
using Engine.TestKit;

namespace Engine.Datasets.Tests;

/// <summary>
/// A data set generated with future days grows a day at a time (<see cref="SyntheticGenerator.AppendDayAsync"/>): the
/// same people and the same simulation, each day's rows as new files beside the old ones, untouched.
/// </summary>
public sealed class AppendTests
{
    private static readonly DateTimeOffset AsOf = new(2026, 11, 1, 0, 0, 0, TimeSpan.Zero);

    private static GeneratorOptions Options(int days, DateTimeOffset asOf, int futureDays)
        => new() { People = 1200, Seed = 5, Days = days, AsOf = asOf, FutureDays = futureDays, Parallelism = 2, BlockSize = 128 };

    [Fact]
    public async Task Two_appended_days_hold_exactly_the_rows_of_a_history_generated_two_days_longer_and_leave_the_old_files_alone()
    {
        var cancellationToken = TestContext.Current.CancellationToken;
        using var grown = new TempDirectory("gen-grown");
        using var direct = new TempDirectory("gen-direct");
        using var resolver = new StorageResolver();
        var target = resolver.Resolve(grown.Path);
        await new SyntheticGenerator(Options(60, AsOf, 3)).GenerateAsync(target, null, cancellationToken);
        var firstFile = Path.Combine(grown.Path, "events", "part-00000.parquet");
        var firstBytes = await File.ReadAllBytesAsync(firstFile, cancellationToken);

        var (day1, state1) = await SyntheticGenerator.AppendDayAsync(target, 2, null, cancellationToken);
        var (day2, state2) = await SyntheticGenerator.AppendDayAsync(target, 1, null, cancellationToken);
        Assert.Equal(AsOf.AddDays(1), state1.AsOf);
        Assert.Equal(AsOf.AddDays(2), state2.AsOf);
        Assert.Equal(AsOf.AddDays(3), state2.SimulatedUntil);
        Assert.True(day1.Events > 0 && day2.Events > 0);
        // The first night's files are as they were; each day is a folder of its own, listed in the dataset's manifest.
        Assert.Equal(firstBytes, await File.ReadAllBytesAsync(firstFile, cancellationToken));
        var events = await Dataset.OpenAsync(target.Child("events"), DataFormat.Parquet, cancellationToken);
        Assert.Equal(["events/day-2026-11-01/part-00000.parquet", "events/day-2026-11-02/part-00000.parquet", "events/part-00000.parquet"],
            events.Files.Select(f => f.Key[(f.Key.IndexOf("events/", StringComparison.Ordinal))..]).Order(StringComparer.Ordinal));

        // The same window generated in one go, two days longer: the same rows, the same truth.
        await new SyntheticGenerator(Options(62, AsOf.AddDays(2), 1)).GenerateAsync(resolver.Resolve(direct.Path), null, cancellationToken);
        string All(string root, string dataset) => $"'{root}/{dataset}/**/*.parquet'";
        foreach (var dataset in new[] { "events", "profiles", "consent", "truth" })
        {
            var a = $"SELECT * FROM read_parquet({All(grown.Path, dataset)})";
            var b = $"SELECT * FROM read_parquet({All(direct.Path, dataset)})";
            var onlyGrown = Convert.ToInt64(DuckDb.Rows($"SELECT count(*) FROM ({a} EXCEPT ALL {b})").Single()[0]);
            var onlyDirect = Convert.ToInt64(DuckDb.Rows($"SELECT count(*) FROM ({b} EXCEPT ALL {a})").Single()[0]);
            Assert.True(onlyGrown == 0 && onlyDirect == 0, $"{dataset}: {onlyGrown} rows only in the grown data set, {onlyDirect} only in the direct one; "
                + string.Join("; ", DuckDb.Rows($"({a} EXCEPT ALL {b}) LIMIT 3").Select(r => string.Join(", ", r))) + " / "
                + string.Join("; ", DuckDb.Rows($"({b} EXCEPT ALL {a}) LIMIT 3").Select(r => string.Join(", ", r))));
        }
        var ids = DuckDb.Rows($"SELECT count(*), count(DISTINCT event_id) FROM read_parquet({All(grown.Path, "events")})").Single();
        Assert.Equal(ids[0], ids[1]);
        // Each day's files hold that day's rows only (CRM rows by updated_at).
        var slice = DuckDb.Rows($"SELECT min(ts), max(ts), count(*) FROM read_parquet('{grown.Path}/events/day-2026-11-01/*.parquet')").Single();
        Assert.True((DateTime)slice[0]! >= AsOf.UtcDateTime && (DateTime)slice[1]! < AsOf.UtcDateTime.AddDays(1));
        Assert.Equal(day1.Events, Convert.ToInt64(slice[2]));
        var crm = DuckDb.Rows($"SELECT count(*) FILTER (WHERE updated_at < '2026-11-02' OR updated_at >= '2026-11-03') FROM read_parquet('{grown.Path}/profiles/day-2026-11-02/*.parquet')").Single();
        Assert.Equal(0L, Convert.ToInt64(crm[0]));
        var before = DuckDb.Rows($"SELECT max(ts) FROM read_parquet('{grown.Path}/events/part-00000.parquet')").Single();
        Assert.True((DateTime)before[0]! < AsOf.UtcDateTime);

        // Past the simulated window there is nothing to append.
        await AppendDayOrFail(target, "every simulated day is written", append: true, cancellationToken);
        // A data set generated without future days cannot grow.
        using var plain = new TempDirectory("gen-plain");
        await new SyntheticGenerator(Options(30, AsOf, 0) with { People = 50 }).GenerateAsync(resolver.Resolve(plain.Path), null, cancellationToken);
        Assert.False(File.Exists(Path.Combine(plain.Path, GeneratorState.FileName)));
        await AppendDayOrFail(resolver.Resolve(plain.Path), "only a data set generated with future days", append: false, cancellationToken);
    }

    private static async Task AppendDayOrFail(StorageLocation target, string message, bool append, CancellationToken cancellationToken)
    {
        if (append)
        {
            await SyntheticGenerator.AppendDayAsync(target, 1, null, cancellationToken);
        }
        var error = await Assert.ThrowsAsync<DataException>(() => SyntheticGenerator.AppendDayAsync(target, 1, null, cancellationToken));
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Future_days_and_the_write_window_are_checked()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new SyntheticGenerator(Options(60, AsOf, -1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => new SyntheticGenerator(Options(60, AsOf, 1) with { WriteFrom = AsOf }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new SyntheticGenerator(Options(60, AsOf, 1) with { WriteFrom = AsOf.AddDays(-61) }));
    }
}
