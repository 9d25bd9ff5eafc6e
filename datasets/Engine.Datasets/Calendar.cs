using System.Text;

namespace Engine.Datasets;

/// <summary>
/// The history window and its rhythm: daily traffic multipliers (weekly cycle, Black Friday, December, sales),
/// sale periods, hours of the day, and the email campaign calendar. Day 0 is the first day of the window.
/// </summary>
internal sealed class Calendar
{
    public const long MicrosPerDay = 86_400_000_000L;

    // Traffic by hour of day (UTC, the audience is mostly European and evening-heavy).
    private static ReadOnlySpan<double> HourWeights =>
        [0.3, 0.2, 0.15, 0.1, 0.1, 0.15, 0.35, 0.6, 0.8, 0.9, 1.0, 1.05, 1.15, 1.1, 1.0, 1.0, 1.05, 1.15, 1.35, 1.6, 1.75, 1.6, 1.1, 0.6];

    // Monday .. Sunday: weekends browse more.
    private static ReadOnlySpan<double> WeekdayWeights => [0.95, 0.88, 0.92, 0.97, 0.93, 1.1, 1.3];

    private readonly double[] _hourCumulative;
    private readonly double[][] _weekDayCumulative;

    public Calendar(DateTimeOffset asOf, int days)
    {
        Days = days;
        EndMicros = (asOf.UtcTicks - DateTime.UnixEpoch.Ticks) / 10;
        StartMicros = EndMicros - (days * MicrosPerDay);
        Weeks = (days + 6) / 7;
        PriceRiseDay = days * Realism.PriceRiseAt;
        _hourCumulative = Mix.Cumulative(HourWeights);

        Traffic = new double[days];
        Sale = new bool[days];
        var first = asOf.UtcDateTime.AddDays(-days).Date;
        // Day d starts at midnight UTC, so hours of the day mean what they say even when AsOf is not at midnight
        // (times before the window's start or at its end are clamped into it).
        DayOrigin = (first.Ticks - DateTime.UnixEpoch.Ticks) / 10;
        var campaigns = new List<(int Day, byte[] Id)>();
        for (var d = 0; d < days; d++)
        {
            var date = first.AddDays(d);
            var (season, sale) = Season(date);
            var weekday = ((int)date.DayOfWeek + 6) % 7;
            Traffic[d] = season * WeekdayWeights[weekday];
            Sale[d] = sale;
            // Campaigns go out on Tuesdays and Fridays, and on every sale-period Thursday and Monday too.
            if (weekday is 1 or 4 || (sale && weekday is 0 or 3))
            {
                campaigns.Add((d, Encoding.ASCII.GetBytes($"cmp-{date:yyyyMMdd}")));
            }
        }
        CampaignDays = campaigns.ConvertAll(c => c.Day).ToArray();
        CampaignIds = campaigns.ConvertAll(c => c.Id).ToArray();
        FirstCampaignOfWeek = new int[Weeks + 1];
        var next = 0;
        for (var w = 0; w <= Weeks; w++)
        {
            while (next < CampaignDays.Length && CampaignDays[next] < w * 7)
            {
                next++;
            }
            FirstCampaignOfWeek[w] = next;
        }

        WeekTraffic = new double[Weeks];
        _weekDayCumulative = new double[Weeks][];
        for (var w = 0; w < Weeks; w++)
        {
            var span = Math.Min(7, days - (w * 7));
            var weights = new double[span];
            var sum = 0.0;
            for (var i = 0; i < span; i++)
            {
                weights[i] = Traffic[(w * 7) + i];
                sum += weights[i];
            }
            // A partial last week gets proportionally fewer sessions.
            WeekTraffic[w] = sum / 7;
            _weekDayCumulative[w] = Mix.Cumulative(weights);
        }
    }

    public int Days { get; }

    public int Weeks { get; }

    public long StartMicros { get; }

    public long EndMicros { get; }

    /// <summary>Midnight (UTC) of day 0, at or before <see cref="StartMicros"/>.</summary>
    public long DayOrigin { get; }

    /// <summary>Traffic multiplier per day (about 1 on an ordinary day).</summary>
    public double[] Traffic { get; }

    /// <summary>Mean traffic multiplier per week (a partial week counts its missing days as 0).</summary>
    public double[] WeekTraffic { get; }

    /// <summary>Sale days: price-sensitive people buy on these.</summary>
    public bool[] Sale { get; }

    /// <summary>The day the subscription price goes up.</summary>
    public double PriceRiseDay { get; }

    public int[] CampaignDays { get; }

    public byte[][] CampaignIds { get; }

    /// <summary>Index of the first campaign on or after the start of each week (and one past the end).</summary>
    public int[] FirstCampaignOfWeek { get; }

    /// <summary>A day of week <paramref name="week"/>, weighted by traffic.</summary>
    public int DayInWeek(int week, ref Rng rng) => (week * 7) + rng.Pick(_weekDayCumulative[week]);

    /// <summary>A timestamp on <paramref name="day"/> at an hour drawn from the daily traffic curve.</summary>
    public long TimeOn(int day, ref Rng rng)
    {
        var hour = rng.Pick(_hourCumulative);
        var t = DayOrigin + (day * MicrosPerDay) + (hour * 3_600_000_000L) + (long)(rng.NextDouble() * 3_600_000_000L);
        return Math.Clamp(t, StartMicros, EndMicros - 1);
    }

    /// <summary>The timestamp of a fractional day, clamped into the window.</summary>
    public long At(double day)
    {
        var t = DayOrigin + (long)(day * MicrosPerDay);
        return Math.Clamp(t, StartMicros, EndMicros - 1);
    }

    /// <summary>The timestamp of a fractional day, not clamped (CRM and consent history may predate the window).</summary>
    public long AtUnclamped(double day) => Math.Min(DayOrigin + (long)(day * MicrosPerDay), EndMicros - 1);

    /// <summary>Whether <paramref name="day"/> (fractional) is in a sale period.</summary>
    public bool IsSale(double day) => day >= 0 && day < Days && Sale[(int)day];

    /// <summary>Seasonal multiplier of a date and whether it is a sale day.</summary>
    private static (double Season, bool Sale) Season(DateTime date)
    {
        var blackFriday = BlackFriday(date.Year);
        var offset = (date - blackFriday).TotalDays;
        if (offset is >= -1 and <= 3)
        {
            return (2.3, true); // Thursday to Cyber Monday
        }
        if (offset is >= -8 and < -1)
        {
            return (1.35, false); // the teaser week before
        }
        return (date.Month, date.Day) switch
        {
            (12, <= 20) => (1.6, false), // gift shopping
            (12, <= 25) => (0.8, false),
            (12, _) => (1.3, true), // boxing-day sales
            (1, <= 6) => (1.25, true),
            (1, _) => (0.95, false),
            (2, _) => (0.85, false),
            (7, <= 7) => (1.15, true), // summer sale
            (8, _) => (0.9, false),
            (11, _) => (1.1, false),
            _ => (1.0, false),
        };
    }

    private static DateTime BlackFriday(int year)
    {
        var first = new DateTime(year, 11, 1, 0, 0, 0, DateTimeKind.Utc);
        var firstThursday = first.AddDays(((int)DayOfWeek.Thursday - (int)first.DayOfWeek + 7) % 7);
        return firstThursday.AddDays(22);
    }
}
