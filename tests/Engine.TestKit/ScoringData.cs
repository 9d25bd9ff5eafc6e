using Engine.Scores;

namespace Engine.TestKit;

/// <summary>
/// Generated feature vectors with a label that depends on them (a churn-like signal), for the scoring tests and
/// benchmark. A row's values depend only on the seed and the row's number, so rows made batch by batch, in any batch
/// size or in parallel, are the same rows. The features mix what real ones hold: continuous values, small counts
/// (many ties, so thresholds fall between repeated values), 0/1 flags as one-hot encoding leaves them, features that
/// are constant, and missing values (NaN) at different rates, missingness itself carrying signal.
/// </summary>
public sealed class ScoringData(int featureCount, int seed)
{
    /// <summary>Feature <c>f</c> is constant (always 1) when <c>f % ConstantEvery == ConstantEvery - 1</c>.</summary>
    public const int ConstantEvery = 10;

    public int FeatureCount { get; } = featureCount >= 4 ? featureCount : throw new ArgumentOutOfRangeException(nameof(featureCount), "at least 4 features");

    public int Seed { get; } = seed;

    /// <summary>Feature names: <c>f00</c>, <c>f01</c>, …</summary>
    public IReadOnlyList<string> FeatureNames() => [.. Enumerable.Range(0, FeatureCount).Select(f => $"f{f:00}")];

    /// <summary>Fills <paramref name="batch"/> with rows <paramref name="firstRow"/> to <c>firstRow + rows - 1</c> (and their labels, when it has labels).</summary>
    public void Fill(FeatureBatch batch, long firstRow, int rows, int maxDegreeOfParallelism = 1)
    {
        ArgumentOutOfRangeException.ThrowIfNotEqual(batch.FeatureCount, FeatureCount, nameof(batch));
        batch.RowCount = rows;
        const int Chunk = 4096;
        var chunks = (rows + Chunk - 1) / Chunk;
        Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = maxDegreeOfParallelism }, c =>
        {
            Span<float> row = stackalloc float[FeatureCount];
            var end = Math.Min(rows, (c + 1) * Chunk);
            for (var i = c * Chunk; i < end; i++)
            {
                var label = MakeRow(firstRow + i, row);
                batch.SetRow(i, row);
                if (batch.HasLabels)
                {
                    batch.Labels[i] = label;
                }
                if (batch.HasWeights)
                {
                    batch.Weights[i] = 0.5f + (float)((firstRow + i) % 3);
                }
            }
        });
    }

    /// <summary>Row <paramref name="index"/>'s features into <paramref name="features"/>; returns its label.</summary>
    public bool MakeRow(long index, Span<float> features)
    {
        var state = (ulong)Seed * 0x9E3779B97F4A7C15UL ^ (ulong)index * 0xD1B54A32D192ED69UL;
        var logit = -0.4;
        for (var f = 0; f < FeatureCount; f++)
        {
            var u = Uniform(ref state);
            float value;
            switch (f % ConstantEvery)
            {
                case ConstantEvery - 1:
                    value = 1f;
                    break;
                case 1 or 4 or 7:
                    // A count: 0..20, skewed towards small values.
                    value = MathF.Floor((float)(u * u * 21));
                    break;
                case 2 or 6:
                    // A 0/1 flag.
                    value = u < 0.3 ? 1f : 0f;
                    break;
                default:
                    // Continuous, roughly bell-shaped in [-3, 3].
                    value = (float)((u + Uniform(ref state) + Uniform(ref state) - 1.5) * 2);
                    break;
            }
            // Missing at 2% to 20% depending on the feature; never for the constant ones.
            var missingRate = f % ConstantEvery == ConstantEvery - 1 ? 0 : 0.02 * (f % 5) + (f % 3 == 0 ? 0.1 : 0);
            var missing = Uniform(ref state) < missingRate;
            features[f] = missing ? float.NaN : value;
            // The signal: a few features linearly, an interaction, a threshold, and missingness.
            var weight = f < 12 ? 1.0 / (1 + f) : 0.05;
            logit += missing ? (f % 2 == 0 ? 0.6 : -0.3) * weight * 3 : weight * Sign(f) * (f % 3 == 1 ? value / 10 : value);
        }
        if (!float.IsNaN(features[0]) && !float.IsNaN(features[3]))
        {
            logit += 0.8 * features[0] * features[3] / 3;
        }
        if (FeatureCount > 5 && features[5] > 1.2f)
        {
            logit += 1.2;
        }
        var probability = 1 / (1 + Math.Exp(-logit));
        return Uniform(ref state) < probability;
    }

    private static double Sign(int f) => f % 4 < 2 ? 1 : -1;

    // SplitMix64: a good, cheap, seekable generator.
    private static double Uniform(ref ulong state)
    {
        state += 0x9E3779B97F4A7C15UL;
        var z = state;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        return (z >> 11) * (1.0 / (1UL << 53));
    }
}
