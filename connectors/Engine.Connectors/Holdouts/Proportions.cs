namespace Engine.Connectors.Holdouts;

/// <summary>A two-sided confidence interval.</summary>
public readonly record struct Interval(double Low, double High)
{
    public bool Contains(double value) => value >= Low && value <= High;
}

/// <summary>
/// Confidence intervals for proportions and their differences: Wilson's score interval for one proportion, and
/// Newcombe's hybrid score interval (his method 10, 1998) for the difference of two independent proportions, built
/// from the two Wilson intervals. Unlike the Wald interval (p ± z·SE), both stay inside [0, 1] / [−1, 1] and keep
/// close to their nominal coverage for small groups and rates near 0 — the usual case for a conversion rate in a
/// small control group.
/// </summary>
public static class Proportions
{
    /// <summary>The standard normal quantile for 95 % two-sided: Φ⁻¹(0.975).</summary>
    public const double Z95 = 1.959963984540054;

    /// <summary>Wilson's score interval for <paramref name="successes"/> of <paramref name="n"/>; null when n is 0.</summary>
    public static Interval? Wilson(long successes, long n, double z = Z95)
    {
        if (n <= 0)
        {
            return null;
        }
        ArgumentOutOfRangeException.ThrowIfNegative(successes);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(successes, n);
        var p = (double)successes / n;
        var z2 = z * z;
        var denominator = 1 + (z2 / n);
        var centre = (p + (z2 / (2.0 * n))) / denominator;
        var half = z * Math.Sqrt((p * (1 - p) / n) + (z2 / (4.0 * n * n))) / denominator;
        // The exact ends: no rounding below 0 or above 1 at x = 0 or x = n.
        var low = successes == 0 ? 0 : Math.Max(0, centre - half);
        var high = successes == n ? 1 : Math.Min(1, centre + half);
        return new Interval(low, high);
    }

    /// <summary>
    /// Newcombe's hybrid score interval for p₁ − p₂ (<paramref name="x1"/> of <paramref name="n1"/> minus
    /// <paramref name="x2"/> of <paramref name="n2"/>); null when either group is empty.
    /// </summary>
    public static Interval? NewcombeDifference(long x1, long n1, long x2, long n2, double z = Z95)
    {
        if (Wilson(x1, n1, z) is not { } first || Wilson(x2, n2, z) is not { } second)
        {
            return null;
        }
        var p1 = (double)x1 / n1;
        var p2 = (double)x2 / n2;
        var d = p1 - p2;
        var low = d - Math.Sqrt(Square(p1 - first.Low) + Square(second.High - p2));
        var high = d + Math.Sqrt(Square(first.High - p1) + Square(p2 - second.Low));
        return new Interval(Math.Max(-1, low), Math.Min(1, high));
    }

    private static double Square(double x) => x * x;
}
