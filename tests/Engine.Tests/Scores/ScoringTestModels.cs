using Engine.Scores;
using Engine.TestKit;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Engine.Tests.Scores;

/// <summary>Small models trained on <see cref="ScoringData"/> and ML.NET's own scores for comparison.</summary>
internal static class ScoringTestModels
{
    public const int Features = 14;

    public static FeatureBatch TrainingBatch(int rows, int seed = 3)
    {
        var batch = new FeatureBatch(Features, rows, withLabels: true);
        new ScoringData(Features, seed).Fill(batch, 0, rows);
        return batch;
    }

    /// <summary>Rows other than the training rows (same generator, later row numbers), with the edge values appended.</summary>
    public static FeatureBatch ScoringBatch(int rows, int seed = 3)
    {
        var batch = new FeatureBatch(Features, rows);
        new ScoringData(Features, seed).Fill(batch, 1_000_000, rows);
        return batch;
    }

    /// <summary>ML.NET's <c>Score</c> and <c>Probability</c> for every row of <paramref name="batch"/>, through <see cref="ITransformer.Transform"/>.</summary>
    public static (float[] Score, float[] Probability) MlNetScores(ITransformer model, FeatureBatch batch)
    {
        var scored = model.Transform(new FeatureDataView(batch));
        var scoreColumn = scored.Schema["Score"];
        var probabilityColumn = scored.Schema["Probability"];
        var score = new float[batch.RowCount];
        var probability = new float[batch.RowCount];
        using var cursor = scored.GetRowCursor([scoreColumn, probabilityColumn]);
        var getScore = cursor.GetGetter<float>(scoreColumn);
        var getProbability = cursor.GetGetter<float>(probabilityColumn);
        var row = 0;
        while (cursor.MoveNext())
        {
            getScore(ref score[row]);
            getProbability(ref probability[row]);
            row++;
        }
        Assert.Equal(batch.RowCount, row);
        return (score, probability);
    }

    /// <summary>
    /// Every row within 1e-5 (the bound), and in fact bit for bit: the same leaves, summed in the same order
    /// in double, give the same float.
    /// </summary>
    public static void AssertSame(float[] expected, ReadOnlySpan<float> actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        var differing = 0;
        var first = -1;
        for (var i = 0; i < expected.Length; i++)
        {
            var e = expected[i];
            var a = actual[i];
            if (float.IsNaN(e) != float.IsNaN(a) || (!float.IsNaN(e) && Math.Abs(e - a) > 1e-5))
            {
                Assert.Fail($"{what}: row {i}: ML.NET {e:R}, compiled {a:R}");
            }
            if (BitConverter.SingleToInt32Bits(e) != BitConverter.SingleToInt32Bits(a))
            {
                differing++;
                first = first < 0 ? i : first;
            }
        }
        Assert.True(differing == 0, $"{what}: {differing} rows within 1e-5 but not bit for bit, the first row {first}: ML.NET {(first >= 0 ? expected[first] : 0):R}, compiled {(first >= 0 ? actual[first] : 0):R}");
    }

    /// <summary>Scores with the compiled evaluator and checks both columns against ML.NET's Transform.</summary>
    public static void AssertMatchesMlNet(ITransformer model, CompiledTreeEnsemble compiled, FeatureBatch batch, int maxDegreeOfParallelism = 2)
    {
        var (expectedScore, expectedProbability) = MlNetScores(model, batch);
        var score = new float[batch.RowCount];
        var probability = new float[batch.RowCount];
        compiled.Score(batch, score, probability, maxDegreeOfParallelism);
        AssertSame(expectedScore, score, $"Score ({compiled.Kernel})");
        AssertSame(expectedProbability, probability, $"Probability ({compiled.Kernel})");
    }
}
