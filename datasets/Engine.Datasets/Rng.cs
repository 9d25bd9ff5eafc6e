using System.Numerics;
using System.Runtime.CompilerServices;

namespace Engine.Datasets;

/// <summary>
/// xoshiro256** (Blackman and Vigna), seeded through SplitMix64. Written out here rather than using
/// <see cref="Random"/> because the generator promises the same bytes for the same seed forever, and
/// <see cref="Random"/>'s algorithm is not guaranteed to stay the same across .NET versions.
/// A mutable struct: pass it by <c>ref</c>.
/// </summary>
internal struct Rng
{
    private ulong _s0, _s1, _s2, _s3;

    /// <summary>An independent stream for (<paramref name="seed"/>, <paramref name="stream"/>), e.g. one per block of people.</summary>
    public static Rng ForStream(long seed, long stream)
    {
        var x = Mix.SplitMix64((ulong)seed) ^ Mix.SplitMix64((ulong)stream + 0x632BE59BD9B4E019UL);
        var rng = default(Rng);
        rng._s0 = Mix.SplitMix64(ref x);
        rng._s1 = Mix.SplitMix64(ref x);
        rng._s2 = Mix.SplitMix64(ref x);
        rng._s3 = Mix.SplitMix64(ref x);
        return rng;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong NextUInt64()
    {
        var result = BitOperations.RotateLeft(_s1 * 5, 7) * 9;
        var t = _s1 << 17;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= t;
        _s3 = BitOperations.RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>Uniform in [0, 1), 53 bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform in [0, <paramref name="n"/>) by Lemire's multiply-shift (bias below 2^-32 for the small n used here).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Next(int n) => (int)(((NextUInt64() >> 32) * (ulong)(uint)n) >> 32);

    /// <summary>Uniform in [<paramref name="min"/>, <paramref name="max"/>).</summary>
    public int Next(int min, int max) => min + Next(max - min);

    /// <summary>Uniform in [<paramref name="min"/>, <paramref name="max"/>).</summary>
    public double Uniform(double min, double max) => min + (NextDouble() * (max - min));

    /// <summary>True with probability <paramref name="p"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Chance(double p) => NextDouble() < p;

    /// <summary>Exponential with the given mean.</summary>
    public double Exponential(double mean) => -Math.Log(1.0 - NextDouble()) * mean;

    /// <summary>Standard normal (Box-Muller; the second value is dropped to keep the stream simple).</summary>
    public double Normal()
    {
        var u1 = 1.0 - NextDouble();
        var u2 = NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
    }

    /// <summary>Log-normal with the given median and log-space sigma: many small values, a long tail of large ones.</summary>
    public double LogNormal(double median, double sigma) => median * Math.Exp(sigma * Normal());

    /// <summary>Poisson: Knuth's product method for small means, a rounded normal above 30.</summary>
    public int Poisson(double mean)
    {
        if (mean <= 0)
        {
            return 0;
        }
        if (mean > 30)
        {
            var n = (int)Math.Round(mean + (Math.Sqrt(mean) * Normal()));
            return n < 0 ? 0 : n;
        }
        var limit = Math.Exp(-mean);
        var k = 0;
        var product = NextDouble();
        while (product > limit)
        {
            k++;
            product *= NextDouble();
        }
        return k;
    }

    /// <summary>Geometric number of extra trials (0, 1, 2, …) with the given mean.</summary>
    public int Geometric(double mean)
    {
        if (mean <= 0)
        {
            return 0;
        }
        var p = 1.0 / (1.0 + mean);
        return (int)Math.Floor(Math.Log(1.0 - NextDouble()) / Math.Log(1.0 - p));
    }

    /// <summary>An index drawn from cumulative weights (ascending, last = total).</summary>
    public int Pick(ReadOnlySpan<double> cumulative)
    {
        var x = NextDouble() * cumulative[^1];
        if (cumulative.Length <= 16)
        {
            for (var i = 0; i < cumulative.Length; i++)
            {
                if (x < cumulative[i])
                {
                    return i;
                }
            }
            return cumulative.Length - 1;
        }
        var lo = 0;
        var hi = cumulative.Length - 1;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (x < cumulative[mid])
            {
                hi = mid;
            }
            else
            {
                lo = mid + 1;
            }
        }
        return lo;
    }
}

/// <summary>Bit mixers and bijections used to derive unique, random-looking ids from counters.</summary>
internal static class Mix
{
    /// <summary>SplitMix64's finalizer: a bijection on 64-bit values, so distinct inputs give distinct outputs.</summary>
    public static ulong SplitMix64(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>SplitMix64 as a generator: advances <paramref name="state"/>.</summary>
    public static ulong SplitMix64(ref ulong state)
    {
        state += 0x9E3779B97F4A7C15UL;
        return SplitMix64(state);
    }

    /// <summary>Cumulative sums of <paramref name="weights"/>, for <see cref="Rng.Pick"/>.</summary>
    public static double[] Cumulative(ReadOnlySpan<double> weights)
    {
        var result = new double[weights.Length];
        var sum = 0.0;
        for (var i = 0; i < weights.Length; i++)
        {
            sum += weights[i];
            result[i] = sum;
        }
        return result;
    }
}

/// <summary>
/// A keyed pseudo-random permutation of [0, n): a balanced Feistel network on the smallest even power of two
/// at or above n, with cycle walking back into range. Person numbers go through it so that ids derived from
/// them (customer numbers, email and phone digits) are unique by construction yet do not reveal generation order.
/// </summary>
internal sealed class Permutation
{
    private readonly ulong _n;
    private readonly int _halfBits;
    private readonly ulong _halfMask;
    private readonly ulong[] _keys;

    public Permutation(ulong n, long seed)
    {
        ArgumentOutOfRangeException.ThrowIfZero(n);
        _n = n;
        var bits = 64 - BitOperations.LeadingZeroCount(n - 1);
        bits = Math.Max(bits + (bits & 1), 2);
        _halfBits = bits / 2;
        _halfMask = (1UL << _halfBits) - 1;
        _keys = new ulong[4];
        var state = (ulong)seed ^ 0xA0761D6478BD642FUL;
        for (var i = 0; i < _keys.Length; i++)
        {
            _keys[i] = Mix.SplitMix64(ref state);
        }
    }

    public ulong this[ulong x]
    {
        get
        {
            do
            {
                x = Round(x);
            }
            while (x >= _n);
            return x;
        }
    }

    private ulong Round(ulong x)
    {
        var left = x >> _halfBits;
        var right = x & _halfMask;
        foreach (var key in _keys)
        {
            var next = left ^ (Mix.SplitMix64(right ^ key) & _halfMask);
            left = right;
            right = next;
        }
        return (left << _halfBits) | right;
    }
}
