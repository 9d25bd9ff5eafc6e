using CsCheck;
using Engine.Segments;

namespace Engine.Tests.Segments;

/// <summary>The kernels' integer calendar (timestamp + INTERVAL n MONTH) against .NET's <see cref="DateOnly"/>.</summary>
public sealed class CalendarTests
{
    private static readonly int Epoch = DateOnly.FromDateTime(DateTime.UnixEpoch).DayNumber;

    [Fact]
    public void Adding_months_matches_DateOnly_with_the_day_clamped_to_the_month()
    {
        // Years 1 to 9999 (DateOnly's range), any month shift that stays inside it.
        Gen.Select(Gen.Int[0, 3_652_058], Gen.Int[-1200, 1200]).Sample((dayNumber, months) =>
        {
            var date = DateOnly.FromDayNumber(dayNumber);
            var target = date.Year * 12 + date.Month - 1 + months;
            if (target < 12 || target >= 9999 * 12 + 12)
            {
                return;
            }
            Assert.Equal(date.AddMonths(months).DayNumber - Epoch, AddIntervalNode.AddMonths(dayNumber - Epoch, months));
        }, iter: 200_000);
    }

    [Theory]
    [InlineData("2024-01-31", 1, "2024-02-29")]
    [InlineData("2023-01-31", 1, "2023-02-28")]
    [InlineData("2024-03-31", -1, "2024-02-29")]
    [InlineData("1900-02-28", 12, "1901-02-28")]
    [InlineData("2000-02-29", 12, "2001-02-28")]
    [InlineData("1969-12-31", 1, "1970-01-31")]
    public void Month_ends_clamp_as_duckdb_does(string from, int months, string to)
    {
        var start = DateOnly.Parse(from, System.Globalization.CultureInfo.InvariantCulture).DayNumber - Epoch;
        Assert.Equal(DateOnly.Parse(to, System.Globalization.CultureInfo.InvariantCulture).DayNumber - Epoch, AddIntervalNode.AddMonths(start, months));
    }
}
