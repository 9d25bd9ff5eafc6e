using Apache.Arrow;
using CsCheck;
using Engine.Profiles;

namespace Engine.Tests.Profiles;

/// <summary>
/// first_seen, last_seen and recency_days keep one time per profile, with "no event yet" marked by the extreme value
/// itself; an event at that very instant must still count, and two workers' states merged must equal one worker's.
/// </summary>
public sealed class SeenAccumulatorTests
{
    private const int Profiles = 6;
    private const long AsOf = 1_000L * 86_400_000_000L;

    [Fact]
    public void Earliest_latest_and_recency_equal_a_plain_min_and_max_per_profile_however_rows_are_split()
    {
        // Times near both ends of long and near as-of, so that the markers for "none yet" are met as real times.
        var time = Gen.OneOf(Gen.Long[long.MinValue, long.MinValue + 2], Gen.Long[AsOf - 5 * 86_400_000_000L, AsOf - 1], Gen.Long);
        var row = Gen.Select(Gen.Int[0, Profiles - 1], time);
        Gen.Select(row.Array[0, 40], Gen.Int[0, 40], Gen.Int[0, 2]).Sample((rows, split, kind) =>
        {
            split = Math.Min(split, rows.Length);
            var latest = kind != 0;
            long? recency = kind == 2 ? AsOf : null;
            // recency_days only ever sees times before as-of (the stage's window); the others any time.
            if (recency is not null)
            {
                rows = [.. rows.Select(r => (r.Item1, Math.Min(r.Item2, AsOf - 1)))];
            }
            var whole = new SeenAccumulator(Profiles, latest, recency);
            Add(whole, rows);
            var first = new SeenAccumulator(Profiles, latest, recency);
            var second = new SeenAccumulator(Profiles, latest, recency);
            Add(first, rows[..split]);
            Add(second, rows[split..]);
            first.Merge(second);

            var expected = new long?[Profiles];
            foreach (var (profile, t) in rows)
            {
                var held = expected[profile];
                expected[profile] = held is null ? t : latest ? Math.Max(held.Value, t) : Math.Min(held.Value, t);
            }
            foreach (var accumulator in new[] { whole, first })
            {
                var built = accumulator.Build();
                for (var p = 0; p < Profiles; p++)
                {
                    long? value = built switch
                    {
                        TimestampArray ts => ts.IsNull(p) ? null : ts.Values[p],
                        Int64Array days => days.GetValue(p),
                        _ => throw new InvalidOperationException(built.GetType().Name),
                    };
                    long? want = expected[p] is not { } t ? null : recency is { } asOf ? (asOf - t) / 86_400_000_000L : t;
                    Assert.Equal(want, value);
                }
            }
        });
    }

    private static void Add(SeenAccumulator accumulator, (int Profile, long Time)[] rows)
    {
        var profiles = rows.Select(r => r.Profile).ToArray();
        var times = rows.Select(r => r.Time).ToArray();
        var selected = Enumerable.Range(0, rows.Length).ToArray();
        accumulator.Add(profiles, selected, times, null, 0);
    }
}
