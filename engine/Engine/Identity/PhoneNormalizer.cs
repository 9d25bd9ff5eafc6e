using System.Text;
using System.Text.Unicode;
using PhoneNumbers;

namespace Engine.Identity;

/// <summary>
/// Phone numbers: parsed by libphonenumber (numbers in national form are read in the default region, numbers
/// starting with '+' or an international prefix in their own) and written in E.164 (<c>+4915112345678</c>).
/// A value libphonenumber cannot parse, or whose length is impossible for its country, is
/// <see cref="NormalizeStatus.Invalid"/>. This allocates a string per value; phones are few beside events.
/// </summary>
public sealed class PhoneNormalizer : IIdentifierNormalizer
{
    private static readonly PhoneNumberUtil Util = PhoneNumberUtil.GetInstance();

    /// <param name="defaultRegion">ISO 3166 region code (US, GB, DE…) for numbers written without a country code.</param>
    public PhoneNormalizer(string defaultRegion = "US")
    {
        if (!IsSupportedRegion(defaultRegion))
        {
            throw new ArgumentException($"'{defaultRegion}' is not a region code libphonenumber knows", nameof(defaultRegion));
        }
        DefaultRegion = defaultRegion.ToUpperInvariant();
    }

    /// <summary>The region national-format numbers are read in.</summary>
    public string DefaultRegion { get; }

    /// <summary>True for a two-letter region code libphonenumber has metadata for (case-insensitive).</summary>
    public static bool IsSupportedRegion(string region)
        => Util.GetSupportedRegions().Contains(region.ToUpperInvariant());

    public NormalizeStatus Normalize(ReadOnlySpan<byte> utf8, Span<byte> destination, out int written)
        => Normalize(utf8, DefaultRegion, destination, out written);

    /// <summary>
    /// Like <see cref="Normalize(ReadOnlySpan{byte}, Span{byte}, out int)"/> with a region for this value (for
    /// example the customer's country); null or an unknown code falls back to <see cref="DefaultRegion"/>.
    /// </summary>
    public NormalizeStatus Normalize(ReadOnlySpan<byte> utf8, string? region, Span<byte> destination, out int written)
    {
        written = 0;
        var value = IdentifierNormalizers.Trim(utf8);
        if (value.IsEmpty)
        {
            return NormalizeStatus.Empty;
        }
        // No digit at all ("n/a", "-", "unknown"): invalid without paying for libphonenumber's exception.
        if (value.IndexOfAnyInRange((byte)'0', (byte)'9') < 0 || !Utf8.IsValid(value))
        {
            return NormalizeStatus.Invalid;
        }
        PhoneNumber number;
        try
        {
            number = Util.Parse(Encoding.UTF8.GetString(value), region is { Length: 2 } && IsSupportedRegion(region) ? region.ToUpperInvariant() : DefaultRegion);
        }
        catch (NumberParseException)
        {
            return NormalizeStatus.Invalid;
        }
        if (!Util.IsPossibleNumber(number))
        {
            return NormalizeStatus.Invalid;
        }
        var e164 = Util.Format(number, PhoneNumberFormat.E164);
        return IdentifierNormalizers.TryEncode(e164, destination, out written) ? NormalizeStatus.Ok : NormalizeStatus.TooLong;
    }
}
