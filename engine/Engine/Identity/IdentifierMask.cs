using System.Text;

namespace Engine.Identity;

/// <summary>
/// Masks identifier values for anything a person reads (the command line, logs, reports): enough to tell values apart
/// and recognise one's own test data, never enough to recover a customer's email or phone.
/// </summary>
public static class IdentifierMask
{
    /// <summary>The masked form of a canonical <paramref name="value"/> of a type normalised by <paramref name="kind"/>.</summary>
    public static string Mask(NormalizerKind kind, string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return kind switch
        {
            NormalizerKind.Email => MaskEmail(value),
            NormalizerKind.Phone => MaskPhone(value),
            NormalizerKind.Composite => string.Join(" | ", value.Split('\u001F').Select(MaskText)),
            _ => MaskText(value),
        };
    }

    /// <summary><c>ann.lee@mail.co.uk</c> → <c>a*****e@m*********k</c>: first and last character of each side.</summary>
    private static string MaskEmail(string value)
    {
        var at = value.LastIndexOf('@');
        return at <= 0 ? MaskText(value) : $"{MaskText(value[..at])}@{MaskText(value[(at + 1)..])}";
    }

    /// <summary><c>+447700900123</c> → <c>+44*******23</c>: the country code and the last two digits.</summary>
    private static string MaskPhone(string value)
    {
        if (value.Length < 7 || value[0] != '+')
        {
            return MaskText(value);
        }
        var keep = 1 + CountryCodeLength(value);
        return value[..keep] + new string('*', value.Length - keep - 2) + value[^2..];
    }

    private static int CountryCodeLength(string e164)
    {
        try
        {
            var code = PhoneNumbers.PhoneNumberUtil.GetInstance().Parse(e164, null).CountryCode;
            return code.ToString(System.Globalization.CultureInfo.InvariantCulture).Length;
        }
        catch (PhoneNumbers.NumberParseException)
        {
            return 1;
        }
    }

    /// <summary>First and last character with stars between (ids, name parts); very short values are all stars.</summary>
    private static string MaskText(string value)
    {
        var runes = value.EnumerateRunes().ToArray();
        if (runes.Length <= 3)
        {
            return new string('*', Math.Max(runes.Length, 1));
        }
        var text = new StringBuilder();
        text.Append(runes[0].ToString()).Append('*', runes.Length - 2).Append(runes[^1].ToString());
        return text.ToString();
    }
}
