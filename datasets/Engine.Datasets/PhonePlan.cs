using System.Text;

namespace Engine.Datasets;

/// <summary>
/// Mobile numbers of one country: number ranges that libphonenumber accepts as valid mobiles, and the ways people
/// and systems write them (national with the trunk 0, international with + or 00, spaced, dashed, dotted, bare).
/// Numbers are derived injectively from a per-person value, so no two people ever share one by accident.
/// </summary>
internal sealed class PhonePlan
{
    private readonly byte[][] _prefixes;
    private readonly int _subscriberDigits;
    private readonly ulong _subscriberSpace;

    private PhonePlan(string region, string callingCode, string[] prefixes, int subscriberDigits, string[] formats)
    {
        Region = region;
        CallingCode = Encoding.ASCII.GetBytes(callingCode);
        _prefixes = Vocabulary.Encode(prefixes);
        _subscriberDigits = subscriberDigits;
        _subscriberSpace = (ulong)Math.Pow(10, subscriberDigits);
        Formats = Vocabulary.Encode(formats);
        var national = new List<int>();
        var plus = new List<int>();
        var nsn = prefixes[0].Length + subscriberDigits;
        for (var i = 0; i < formats.Length; i++)
        {
            if (formats[i].Count(c => c == '#') != nsn)
            {
                throw new InvalidOperationException($"phone format '{formats[i]}' of {region} does not have {nsn} digits");
            }
            (formats[i][0] == '+' ? plus : national).Add(i);
        }
        NationalOrIdd = [.. national];
        PlusFormats = [.. plus];
    }

    /// <summary>The ISO region libphonenumber parses national numbers with.</summary>
    public string Region { get; }

    /// <summary>The country calling code, without '+'.</summary>
    public byte[] CallingCode { get; }

    /// <summary>Writing patterns: '#' takes the next digit of the national significant number, anything else is literal.</summary>
    public byte[][] Formats { get; }

    /// <summary>Formats that need the country to be understood (national ones, and 00-prefixed international ones).</summary>
    public int[] NationalOrIdd { get; }

    /// <summary>Formats starting with '+': parseable without knowing the country.</summary>
    public int[] PlusFormats { get; }

    /// <summary>How many distinct numbers the plan can give out.</summary>
    public ulong Capacity => (ulong)_prefixes.Length * _subscriberSpace;

    /// <summary>
    /// The E.164 form of number <paramref name="value"/> (&lt; <see cref="Capacity"/>; callers pass it through a
    /// permutation of the capacity so that numbers spread over all ranges); returns bytes written.
    /// </summary>
    public int WriteE164(ulong value, Span<byte> destination)
    {
        var prefix = _prefixes[(int)(value % (ulong)_prefixes.Length)];
        var subscriber = value / (ulong)_prefixes.Length;
        destination[0] = (byte)'+';
        var at = 1;
        CallingCode.CopyTo(destination[at..]);
        at += CallingCode.Length;
        prefix.CopyTo(destination[at..]);
        at += prefix.Length;
        at += Utf8.Decimal(subscriber, _subscriberDigits, destination[at..]);
        return at;
    }

    /// <summary>Writes the E.164 number <paramref name="e164"/> in format <paramref name="format"/>; returns bytes written.</summary>
    public int Render(ReadOnlySpan<byte> e164, int format, Span<byte> destination)
    {
        var digits = e164[(1 + CallingCode.Length)..];
        var pattern = Formats[format];
        var d = 0;
        for (var i = 0; i < pattern.Length; i++)
        {
            destination[i] = pattern[i] == (byte)'#' ? digits[d++] : pattern[i];
        }
        return pattern.Length;
    }

    public static PhonePlan For(string region) => region switch
    {
        "US" => new("US", "1",
            Expand(["201", "212", "213", "305", "312", "404", "415", "512", "617", "713", "206", "303", "602", "702", "818", "917"], "23456789"), 6,
            ["(###) ###-####", "###-###-####", "###.###.####", "##########", "1-###-###-####", "+1 ###-###-####", "+1##########", "+1 (###) ###-####"]),
        "GB" => new("GB", "44", ["740", "741", "742", "743", "744", "746", "747", "748", "749"], 7,
            ["0#### ######", "0##########", "0####-######", "+44 #### ######", "+44##########", "+44 (0)#### ######", "0044 #### ######"]),
        "DE" => new("DE", "49", ["151", "152", "157", "159", "160", "162", "170", "171", "172", "173", "174", "175", "176", "177", "178", "179"], 8,
            ["0### ########", "0###-########", "0###/########", "0###########", "+49 ### ########", "+49###########", "0049 ### ########"]),
        "FR" => new("FR", "33", ["60", "61", "62", "64", "65", "66", "67", "68", "73", "74", "75", "76", "77", "78", "79"], 7,
            ["0# ## ## ## ##", "0#########", "0#.##.##.##.##", "+33 # ## ## ## ##", "+33#########", "0033 # ## ## ## ##"]),
        "NL" => new("NL", "31", ["61", "62", "63", "64", "65", "68"], 7,
            ["0#-########", "0# ########", "0#########", "+31 # ########", "+31#########", "0031 # ########"]),
        "AU" => new("AU", "61", ["40", "41", "42", "43", "46"], 7,
            ["0### ### ###", "0#########", "+61 ### ### ###", "+61#########", "0011 61 ### ### ###"]),
        _ => throw new ArgumentOutOfRangeException(nameof(region), region, "no phone plan"),
    };

    private static string[] Expand(string[] heads, string nextDigits)
    {
        var result = new List<string>();
        foreach (var head in heads)
        {
            foreach (var d in nextDigits)
            {
                result.Add(head + d);
            }
        }
        return [.. result];
    }
}
