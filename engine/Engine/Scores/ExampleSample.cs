namespace Engine.Scores;

/// <summary>
/// The training examples a model keeps when more are available than its trainer's <c>max_examples</c>: each example
/// (a profile at a cutoff) is kept with probability share / available (the window's share of the limit), decided by
/// a hash of the profile id, the cutoff's day and the trainer's seed. Uniform, so the label's rate and the calibration
/// stay those of all the examples; a hash, not a random draw, so the same data trains on the same sample, and whether
/// the examples are chosen before the profiles are built or after changes nothing.
/// </summary>
internal readonly struct ExampleSample
{
    private readonly ulong _threshold;
    private readonly int _seed;

    private ExampleSample(ulong threshold, int seed, long available)
    {
        _threshold = threshold;
        _seed = seed;
        Available = available;
    }

    /// <summary>The examples there were to choose from.</summary>
    public long Available { get; }

    /// <summary>Every example is kept: no more were available than the limit (or there is none).</summary>
    public bool All => _threshold == ulong.MaxValue;

    /// <summary>
    /// The sample of one window's <paramref name="available"/> examples when the trainer's limit is shared by
    /// <paramref name="windows"/> windows: each keeps about limit / windows (all of its own when it has no more).
    /// </summary>
    public static ExampleSample For(long available, TrainerOptions options, int windows = 1)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(windows, 1);
        var share = options.MaxExamples is { } limit ? ((long)limit + windows - 1) / windows : long.MaxValue;
        if (available <= share)
        {
            return new ExampleSample(ulong.MaxValue, options.Seed, available);
        }
        // share / available of the 64-bit hash range, in 128-bit arithmetic so that no rate rounds away.
        var threshold = (ulong)(((UInt128)(ulong)share << 64) / (ulong)available);
        return new ExampleSample(threshold, options.Seed, available);
    }

    /// <summary>Whether the example of <paramref name="profileId"/> at <paramref name="cutoff"/> is kept.</summary>
    public bool Keeps(long profileId, DateTimeOffset cutoff)
    {
        if (All)
        {
            return true;
        }
        // A SplitMix64 finaliser over the three inputs; other constants than the folds' hash, so the sample and the
        // cross-validation folds are independent.
        var day = (ulong)(cutoff.UtcTicks / TimeSpan.TicksPerDay);
        var x = (ulong)profileId * 0xD6E8FEB86659FD93UL ^ day * 0xA0761D6478BD642FUL ^ (ulong)(uint)_seed * 0xE7037ED1A0B428DBUL;
        x ^= x >> 32;
        x *= 0xD6E8FEB86659FD93UL;
        x ^= x >> 32;
        x *= 0xD6E8FEB86659FD93UL;
        x ^= x >> 32;
        return x < _threshold;
    }

    /// <summary>The rows of <paramref name="table"/> among <paramref name="rows"/> whose examples at <paramref name="cutoff"/> are kept, in order.</summary>
    public int[] Keep(int[] rows, Engine.Profiles.ProfileTable table, DateTimeOffset cutoff)
    {
        ArgumentNullException.ThrowIfNull(rows);
        ArgumentNullException.ThrowIfNull(table);
        if (All)
        {
            return rows;
        }
        var ids = table.ProfileIds.Values;
        var kept = new List<int>();
        foreach (var row in rows)
        {
            if (Keeps(ids[row], cutoff))
            {
                kept.Add(row);
            }
        }
        return [.. kept];
    }
}
