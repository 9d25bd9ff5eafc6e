using Engine.Scores;

namespace Engine.Tests.Scores;

/// <summary>
/// The sample a trainer's <c>max_examples</c> takes: about the limit (a window's share of it), the same for the same
/// profile, cutoff and seed, independent of the cross-validation folds, and everything when no more are available.
/// </summary>
public sealed class ExampleSampleTests
{
    private static readonly DateTimeOffset Cutoff = new(2026, 10, 1, 0, 0, 0, TimeSpan.Zero);

    [Theory]
    [InlineData(1_000_000, 100_000, 1)]
    [InlineData(1_000_000, 100_000, 5)]
    [InlineData(300_000, 299_999, 1)]
    [InlineData(2_000_000, 1, 1)]
    public void Keeps_about_the_limit_shared_by_the_windows(int available, int limit, int windows)
    {
        var options = new TrainerOptions { MaxExamples = limit };
        var sample = ExampleSample.For(available, options, windows);
        var share = (limit + windows - 1) / windows;

        var kept = Enumerable.Range(1, available).Count(p => sample.Keeps(p, Cutoff));

        Assert.False(sample.All);
        Assert.Equal(available, sample.Available);
        // Binomial(available, share / available): within six standard deviations (and never more than there are).
        var spread = 6 * Math.Sqrt(share * (1 - (double)share / available)) + 1;
        Assert.InRange(kept, share - spread, share + spread);
    }

    [Fact]
    public void No_limit_or_no_more_than_the_limit_keeps_everything()
    {
        Assert.True(ExampleSample.For(10, new TrainerOptions()).All);
        Assert.True(ExampleSample.For(10, new TrainerOptions { MaxExamples = 10 }).All);
        Assert.True(ExampleSample.For(10, new TrainerOptions { MaxExamples = 50 }, windows: 5).All);
        Assert.False(ExampleSample.For(11, new TrainerOptions { MaxExamples = 50 }, windows: 5).All);
        Assert.True(ExampleSample.For(0, new TrainerOptions { MaxExamples = 1 }).Keeps(42, Cutoff));
    }

    [Fact]
    public void The_same_profile_cutoff_and_seed_give_the_same_choice_and_another_cutoff_or_seed_another()
    {
        var options = new TrainerOptions { MaxExamples = 50_000 };
        var sample = ExampleSample.For(100_000, options);
        var again = ExampleSample.For(100_000, options);
        var reseeded = ExampleSample.For(100_000, options with { Seed = 2 });
        var ids = Enumerable.Range(1, 100_000).Select(i => (long)i * 7919).ToArray();

        Assert.All(ids, p => Assert.Equal(sample.Keeps(p, Cutoff), again.Keeps(p, Cutoff)));
        // Half kept each time: the choices of two cutoffs (or seeds) agree on about half, as independent ones do.
        var sameNextMonth = ids.Count(p => sample.Keeps(p, Cutoff) == sample.Keeps(p, Cutoff.AddDays(30)));
        var sameReseeded = ids.Count(p => sample.Keeps(p, Cutoff) == reseeded.Keeps(p, Cutoff));
        Assert.InRange(sameNextMonth, 48_000, 52_000);
        Assert.InRange(sameReseeded, 48_000, 52_000);
    }

    [Fact]
    public void The_sample_does_not_follow_the_cross_validation_folds()
    {
        var sample = ExampleSample.For(200_000, new TrainerOptions { MaxExamples = 100_000 });
        var keptPerFold = new int[5];
        var perFold = new int[5];
        for (long p = 1; p <= 200_000; p++)
        {
            var fold = ModelTrainer.Fold(p, 1, 5);
            perFold[fold]++;
            keptPerFold[fold] += sample.Keeps(p, Cutoff) ? 1 : 0;
        }
        // Each fold keeps about half of its own examples.
        for (var f = 0; f < 5; f++)
        {
            Assert.InRange(keptPerFold[f] / (double)perFold[f], 0.48, 0.52);
        }
    }
}
