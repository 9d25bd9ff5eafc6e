using System.Globalization;

namespace Engine.Storage;

/// <summary>
/// Span-based parsers for CSV field text: no allocation, invariant culture, and strict about what they accept
/// (a value is either read exactly or rejected, never guessed).
/// </summary>
internal static class CsvValueParser
{
    private const long MicrosPerSecond = 1_000_000;
    private const long MicrosPerDay = 86_400 * MicrosPerSecond;
    private const long UnixEpochTicks = 621_355_968_000_000_000; // DateTime.UnixEpoch.Ticks

    /// <summary>true/false, 1/0, yes/no, t/f, case-insensitive, surrounding whitespace allowed.</summary>
    public static bool TryParseBoolean(ReadOnlySpan<char> text, out bool value)
    {
        text = text.Trim();
        switch (text.Length)
        {
            case 1:
                switch (text[0])
                {
                    case '1' or 't' or 'T':
                        value = true;
                        return true;
                    case '0' or 'f' or 'F':
                        value = false;
                        return true;
                }
                break;
            case 2 when text.Equals("no", StringComparison.OrdinalIgnoreCase):
                value = false;
                return true;
            case 3 when text.Equals("yes", StringComparison.OrdinalIgnoreCase):
                value = true;
                return true;
            case 4 when text.Equals("true", StringComparison.OrdinalIgnoreCase):
                value = true;
                return true;
            case 5 when text.Equals("false", StringComparison.OrdinalIgnoreCase):
                value = false;
                return true;
        }
        value = false;
        return false;
    }

    /// <summary>A decimal integer with an optional sign; surrounding whitespace allowed.</summary>
    public static bool TryParseInt64(ReadOnlySpan<char> text, out long value)
        => long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out value);

    /// <summary>A decimal or exponent number with '.' as the decimal point (no thousands separators); NaN and Infinity too.</summary>
    public static bool TryParseDouble(ReadOnlySpan<char> text, out double value)
        => double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out value);

    /// <summary>
    /// An instant as microseconds since the Unix epoch: ISO 8601 first (see <see cref="TryParseIso8601"/>), then each
    /// of <paramref name="formats"/> (.NET custom formats, invariant culture). Values without an offset are UTC.
    /// </summary>
    public static bool TryParseTimestamp(ReadOnlySpan<char> text, string[] formats, out long micros)
    {
        text = text.Trim();
        if (TryParseIso8601(text, out micros, out _))
        {
            return true;
        }
        if (formats.Length > 0 && DateTimeOffset.TryParseExact(text, formats, CultureInfo.InvariantCulture,
                DateTimeStyles.AssumeUniversal | DateTimeStyles.AllowWhiteSpaces, out var parsed))
        {
            micros = (parsed.UtcTicks - UnixEpochTicks) / TimeSpan.TicksPerMicrosecond;
            return true;
        }
        micros = 0;
        return false;
    }

    /// <summary>
    /// A calendar date as days since the Unix epoch: ISO 8601 <c>yyyy-MM-dd</c> first, then each of
    /// <paramref name="formats"/> (.NET custom formats, invariant culture).
    /// </summary>
    public static bool TryParseDate(ReadOnlySpan<char> text, string[] formats, out int days)
    {
        text = text.Trim();
        if (text.Length == 10 && TryParseIsoDate(text, out var daysLong))
        {
            days = (int)daysLong;
            return true;
        }
        if (formats.Length > 0 && DateOnly.TryParseExact(text, formats, CultureInfo.InvariantCulture, DateTimeStyles.AllowWhiteSpaces, out var date))
        {
            days = date.DayNumber - UnixEpochDayNumber;
            return true;
        }
        days = 0;
        return false;
    }

    private static readonly int UnixEpochDayNumber = new DateOnly(1970, 1, 1).DayNumber;

    /// <summary>
    /// ISO 8601 / RFC 3339: <c>yyyy-MM-dd</c>, optionally followed by 'T' or a space and <c>HH:mm</c>,
    /// <c>HH:mm:ss</c> or <c>HH:mm:ss.f…</c> (up to 9 fraction digits; beyond microseconds they are truncated), and
    /// optionally an offset: <c>Z</c>, <c>±HH:mm</c>, <c>±HHmm</c> or <c>±HH</c>. Without an offset the value is UTC.
    /// </summary>
    public static bool TryParseIso8601(ReadOnlySpan<char> s, out long micros, out bool hadOffset)
    {
        micros = 0;
        hadOffset = false;
        if (s.Length < 10 || !TryParseIsoDate(s[..10], out var days))
        {
            return false;
        }
        long timeOfDay = 0;
        var i = 10;
        if (i < s.Length && (s[i] == 'T' || s[i] == 't' || s[i] == ' '))
        {
            i++;
            if (!TwoDigits(s, i, out var hour) || hour > 23 || i + 2 >= s.Length || s[i + 2] != ':' || !TwoDigits(s, i + 3, out var minute) || minute > 59)
            {
                return false;
            }
            i += 5;
            var second = 0;
            long fraction = 0;
            if (i < s.Length && s[i] == ':')
            {
                if (!TwoDigits(s, i + 1, out second) || second > 59)
                {
                    return false;
                }
                i += 3;
                if (i < s.Length && (s[i] == '.' || s[i] == ','))
                {
                    i++;
                    var digits = 0;
                    while (i < s.Length && char.IsAsciiDigit(s[i]))
                    {
                        if (digits < 6)
                        {
                            fraction = fraction * 10 + (s[i] - '0');
                        }
                        digits++;
                        i++;
                    }
                    if (digits is 0 or > 9)
                    {
                        return false;
                    }
                    for (; digits < 6; digits++)
                    {
                        fraction *= 10;
                    }
                }
            }
            timeOfDay = ((hour * 60L + minute) * 60 + second) * MicrosPerSecond + fraction;
        }
        long offsetMinutes = 0;
        if (i < s.Length)
        {
            var c = s[i];
            if ((c == 'Z' || c == 'z') && i + 1 == s.Length)
            {
                hadOffset = true;
            }
            else if (c is '+' or '-')
            {
                if (!TwoDigits(s, i + 1, out var offsetHours) || offsetHours > 23)
                {
                    return false;
                }
                var j = i + 3;
                var offsetMins = 0;
                if (j < s.Length)
                {
                    if (s[j] == ':')
                    {
                        j++;
                    }
                    if (!TwoDigits(s, j, out offsetMins) || offsetMins > 59)
                    {
                        return false;
                    }
                    j += 2;
                }
                if (j != s.Length)
                {
                    return false;
                }
                offsetMinutes = (offsetHours * 60L + offsetMins) * (c == '-' ? -1 : 1);
                hadOffset = true;
            }
            else
            {
                return false;
            }
        }
        micros = days * MicrosPerDay + timeOfDay - offsetMinutes * 60 * MicrosPerSecond;
        return true;
    }

    /// <summary><c>yyyy-MM-dd</c> (exactly ten characters) as days since 1970-01-01.</summary>
    private static bool TryParseIsoDate(ReadOnlySpan<char> s, out long days)
    {
        days = 0;
        if (s[4] != '-' || s[7] != '-' || !TwoDigits(s, 0, out var century) || !TwoDigits(s, 2, out var yy)
            || !TwoDigits(s, 5, out var month) || !TwoDigits(s, 8, out var day))
        {
            return false;
        }
        var year = century * 100 + yy;
        if (year < 1 || month is < 1 or > 12 || day < 1 || day > DateTime.DaysInMonth(year, month))
        {
            return false;
        }
        days = DaysFromCivil(year, month, day);
        return true;
    }

    private static bool TwoDigits(ReadOnlySpan<char> s, int at, out int value)
    {
        if (at + 1 < s.Length && char.IsAsciiDigit(s[at]) && char.IsAsciiDigit(s[at + 1]))
        {
            value = (s[at] - '0') * 10 + (s[at + 1] - '0');
            return true;
        }
        value = 0;
        return false;
    }

    // Howard Hinnant's days_from_civil: proleptic Gregorian date to days since 1970-01-01, branch-light.
    private static long DaysFromCivil(int year, int month, int day)
    {
        long y = month <= 2 ? year - 1 : year;
        var era = (y >= 0 ? y : y - 399) / 400;
        var yearOfEra = y - era * 400;
        var dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
        var dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear;
        return era * 146_097 + dayOfEra - 719_468;
    }
}
