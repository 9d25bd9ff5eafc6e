using Apache.Arrow;
using CsCheck;
using Engine.Scores;
using Engine.Storage;
using Engine.TestKit;
using Engine.Workspaces;
using Microsoft.Extensions.Logging.Abstractions;

namespace Engine.Tests.Scores;

/// <summary>
/// The scores stage on one worker and on several gives the same columns and figures to the bit, and both are what a
/// sort of the scores and a binary search per profile give.
/// </summary>
public sealed class ScoresStageParallelTests : IDisposable
{
    private static readonly DateTimeOffset AsOf = new(2026, 11, 1, 0, 0, 0, TimeSpan.Zero);

    private static readonly double[] Special = [0.0, -0.0, 1.0, -1.0, double.PositiveInfinity, double.NegativeInfinity, double.Epsilon, -double.Epsilon, 0.5, 0.1];

    private readonly TempDirectory _dir = new("scores-parallel");

    public void Dispose() => _dir.Dispose();

    /// <summary>A tree model over a signal of 21 values and a plan of 3: few distinct scores, so long runs of ties.</summary>
    private static void Coarse(double[] signal)
    {
        for (var i = 0; i < signal.Length; i++)
        {
            signal[i] = Math.Round(signal[i] * 20) / 20;
        }
    }

    private Workspace Workspace(string? population)
    {
        var root = _dir.Combine("ws");
        Directory.CreateDirectory(Path.Combine(root, ModelDefinition.Folder));
        var populationLine = population is null ? "" : $"population: {population}\n";
        File.WriteAllText(Path.Combine(root, ModelDefinition.Folder, "churn.yaml"),
            $"name: churn\nlabel: {{ condition: '\"left\"' }}\n{populationLine}features: [signal, plan]\ntrainer: {{ algorithm: LightGbm, trees: 50, leaves: 8 }}\nmin_positives: 50\n");
        var model = new ModelDefinition
        {
            Name = "churn",
            File = "models/churn.yaml",
            Label = new LabelDefinition { Condition = new ConditionText("\"left\"", TextPositions.At(2, 20)) },
            Population = population is null ? null : new ConditionText(population, TextPositions.At(3, 13)),
            Features = [new FeatureReference("signal", 3, 12), new FeatureReference("plan", 3, 20)],
            Trainer = new TrainerOptions { Algorithm = TrainerAlgorithm.LightGbm, Trees = 50, Leaves = 8 },
            MinimumPositives = 50,
            ScoreColumn = "churn_score",
            DecileColumn = "churn_decile",
        };
        return new Workspace(root, "training", Path.Combine(root, "output"), [], [], models: [model]);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("noise < 0.7")]
    public async Task One_worker_and_four_give_the_same_scores_deciles_and_figures_over_many_batches(string? population)
    {
        var ct = TestContext.Current.CancellationToken;
        using var storage = new StorageResolver();
        var registry = new ModelRegistry(storage.Resolve(_dir.Combine("registry")));
        var workspace = Workspace(population);
        // The first night trains on a small table; then a table of several batches is scored.
        var trained = await new ScoresStage(storage, NullLogger.Instance).RunAsync(
            workspace, ModelTrainingTests.Table(edit: Coarse), default, AsOf, registry, null, null, 2, null, ct);
        Assert.True(trained.Report.Models["churn"].Error is null, trained.Report.Models["churn"].Error);
        var table = ModelTrainingTests.Table(5 * ScoresStage.BatchRows + 1_234, Coarse);
        async Task<(DoubleArray Scores, Int64Array Deciles, ModelScoreReport Entry)> Score(int parallelism)
        {
            var result = await new ScoresStage(storage, NullLogger.Instance).RunAsync(workspace, table, default, AsOf, registry, null, null, parallelism, null, ct);
            var entry = result.Report.Models["churn"];
            Assert.True(entry.Error is null, entry.Error);
            Assert.Null(entry.TrainedVersion);
            Assert.Equal("compiled", entry.Scorer);
            return ((DoubleArray)result.Table.Find("churn_score")!.Values, (Int64Array)result.Table.Find("churn_decile")!.Values, entry);
        }
        var (scores, deciles, entry) = await Score(1);
        var (parallelScores, parallelDeciles, parallelEntry) = await Score(4);

        // Population: the profiles outside it are NULL, all the others scored.
        var noise = (DoubleArray)table.Find("noise")!.Values;
        for (var i = 0; i < table.Count; i++)
        {
            var inside = population is null || noise.GetValue(i) < 0.7;
            Assert.True(inside == scores.IsValid(i), $"row {i}: in the population {inside}, scored {scores.IsValid(i)}");
            Assert.True(inside == deciles.IsValid(i), $"row {i}: in the population {inside}, a decile {deciles.IsValid(i)}");
        }
        Assert.True(entry.Scored > 3 * ScoresStage.BatchRows, $"{entry.Scored} scored: fewer than four batches");
        Assert.Equal(table.Count - entry.Scored, entry.OutsidePopulation);
        Assert.Equal(population is null, entry.OutsidePopulation == 0);
        var distinct = Enumerable.Range(0, table.Count).Where(scores.IsValid).Select(i => scores.Values[i]).Distinct().Count();
        Assert.InRange(distinct, 2, 100);

        AssertSameColumns(scores, deciles, parallelScores, parallelDeciles, "parallelism 4");
        AssertSameFigures(entry, parallelEntry, "parallelism 4");

        // Both are what the scores sorted and searched give.
        var (expectedScores, expectedDeciles) = SortAndSearch(scores.Values.ToArray(), Enumerable.Range(0, table.Count).Select(scores.IsValid).ToArray(), out var expected);
        AssertSameColumns(expectedScores, expectedDeciles, scores, deciles, "sort and search");
        AssertSameFigures(expected, entry, "sort and search");
        Assert.Equal(Enumerable.Range(1, 10).Select(d => (long)d), Enumerable.Range(0, table.Count).Where(deciles.IsValid).Select(i => deciles.Values[i]).Distinct().Order());
    }

    /// <summary>
    /// The columns and figures, on one worker and on four, against a sort and a binary search per row: NaN (not
    /// scored), ties, negative and signed zeros, infinities, subnormals and arbitrary doubles, in tables of one to
    /// several ranges.
    /// </summary>
    [Fact]
    public void Deciles_and_figures_equal_a_sort_and_a_binary_search_per_row()
    {
        Gen.Select(Gen.Int, Gen.Int[0, 300_000], Gen.Int[0, 4], Gen.Int[1, 40], Gen.Int[0, 3]).Sample((seed, rows, nanTenths, distinct, kind) =>
        {
            var random = new Random(seed);
            double Draw() => kind switch
            {
                0 => random.NextSingle(),
                1 => random.NextDouble(),
                2 => BitConverter.Int64BitsToDouble(random.NextInt64(long.MinValue, long.MaxValue)),
                _ => Special[random.Next(Special.Length)],
            };
            var pattern = Enumerable.Range(0, distinct).Select(_ => Draw()).ToArray();
            var tied = random.Next(2) == 0;
            var scores = new double[rows];
            for (var i = 0; i < rows; i++)
            {
                scores[i] = random.Next(10) < nanTenths ? double.NaN : tied ? pattern[random.Next(distinct)] : Draw();
            }
            var (expectedScores, expectedDeciles) = SortAndSearch(scores, [.. scores.Select(s => !double.IsNaN(s))], out var expected);
            for (var parallelism = 1; parallelism <= 4; parallelism += 3)
            {
                var entry = new ModelScoreReport();
                var (actualScores, actualDeciles) = ScoresStage.Columns((double[])scores.Clone(), rows, parallelism, entry);
                AssertSameColumns(expectedScores, expectedDeciles, actualScores, actualDeciles, $"parallelism {parallelism}");
                AssertSameFigures(expected, entry, $"parallelism {parallelism}");
            }
        }, iter: 60);
    }

    [Fact]
    public void No_scores_are_all_null()
    {
        var entry = new ModelScoreReport();
        var (scores, deciles) = ScoresStage.Columns(null, 1_000, 4, entry);
        Assert.Equal((1_000, 1_000), (scores.Length, scores.NullCount));
        Assert.Equal((1_000, 1_000), (deciles.Length, deciles.NullCount));
        Assert.All(Enumerable.Range(0, 1_000), i => Assert.False(scores.IsValid(i) || deciles.IsValid(i)));
        Assert.Equal((0L, 1_000L), (entry.Scored, entry.OutsidePopulation));
        Assert.Equal(new long[10], entry.Histogram);
        Assert.Null(entry.Mean);
    }

    /// <summary>The stage's columns before they were computed in parallel: a sort, then a binary search per row.</summary>
    private static (DoubleArray Scores, Int64Array Deciles) SortAndSearch(double[] values, bool[] valid, out ModelScoreReport entry)
    {
        entry = new ModelScoreReport { Histogram = new long[10] };
        var sorted = values.Where((_, i) => valid[i]).ToArray();
        System.Array.Sort(sorted);
        var n = sorted.Length;
        var scores = new DoubleArray.Builder();
        var deciles = new Int64Array.Builder();
        double sum = 0;
        for (var i = 0; i < values.Length; i++)
        {
            if (!valid[i])
            {
                scores.AppendNull();
                deciles.AppendNull();
                continue;
            }
            var score = values[i];
            scores.Append(score);
            int low = 0, high = n;
            while (low < high)
            {
                var middle = (low + high) >>> 1;
                (low, high) = sorted[middle] < score ? (middle + 1, high) : (low, middle);
            }
            deciles.Append(1 + (long)low * 10 / n);
            entry.Histogram[Math.Clamp((int)(score * 10), 0, 9)]++;
            sum += score;
        }
        entry.Scored = n;
        entry.OutsidePopulation = values.Length - n;
        if (n > 0)
        {
            entry.Mean = sum / n;
            entry.P10 = sorted[(int)((n - 1) * 0.1)];
            entry.P50 = sorted[(int)((n - 1) * 0.5)];
            entry.P90 = sorted[(int)((n - 1) * 0.9)];
        }
        return (scores.Build(), deciles.Build());
    }

    private static void AssertSameColumns(DoubleArray expectedScores, Int64Array expectedDeciles, DoubleArray scores, Int64Array deciles, string what)
    {
        Assert.Equal(expectedScores.Length, scores.Length);
        Assert.Equal(expectedScores.NullCount, scores.NullCount);
        Assert.Equal(expectedDeciles.NullCount, deciles.NullCount);
        for (var i = 0; i < scores.Length; i++)
        {
            if (expectedScores.IsValid(i) != scores.IsValid(i) || expectedDeciles.IsValid(i) != deciles.IsValid(i)
                || BitConverter.DoubleToInt64Bits(expectedScores.Values[i]) != BitConverter.DoubleToInt64Bits(scores.Values[i])
                || expectedDeciles.Values[i] != deciles.Values[i])
            {
                Assert.Fail($"{what}: row {i}: expected {expectedScores.GetValue(i):R} in decile {expectedDeciles.GetValue(i)}, got {scores.GetValue(i):R} in decile {deciles.GetValue(i)}");
            }
        }
    }

    private static void AssertSameFigures(ModelScoreReport expected, ModelScoreReport actual, string what)
    {
        Assert.True(expected.Histogram.SequenceEqual(actual.Histogram), $"{what}: histogram [{string.Join(", ", actual.Histogram)}], expected [{string.Join(", ", expected.Histogram)}]");
        Assert.Equal((expected.Scored, expected.OutsidePopulation), (actual.Scored, actual.OutsidePopulation));
        // The mean to the bit; a percentile may be 0 or -0 where both are in the scores (a sort does not order them).
        Assert.Equal(Bits(expected.Mean), Bits(actual.Mean));
        Assert.Equal(expected.P10, actual.P10);
        Assert.Equal(expected.P50, actual.P50);
        Assert.Equal(expected.P90, actual.P90);
    }

    private static long? Bits(double? value) => value is { } v ? BitConverter.DoubleToInt64Bits(v) : null;
}
