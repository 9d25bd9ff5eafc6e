using System.Text;
using System.Text.Unicode;

namespace Engine.Identity;

/// <summary>
/// Composite identifiers built from several columns (given name + surname + postcode): the caller joins the raw
/// column values with <see cref="IdentifierNormalizers.PartSeparator"/> (U+001F); each part keeps only its letters and
/// digits, lower-cased, and the parts are joined again with U+001F. Dropping spaces and punctuation is what makes the
/// key survive how people and systems type these fields ("SW1A 1AA" and "sw1a1aa", "O'Brien" and "OBRIEN",
/// "Jean-Luc" and "Jean Luc"), as record-linkage keys usually do. A part with no letter or digit makes the whole
/// value <see cref="NormalizeStatus.Empty"/>: "Ann" + "" + "-" must not link every Ann.
/// </summary>
public sealed class CompositeNormalizer : IIdentifierNormalizer
{
    /// <summary>The one instance: the normaliser has no settings.</summary>
    public static CompositeNormalizer Instance { get; } = new();

    private CompositeNormalizer() { }

    public NormalizeStatus Normalize(ReadOnlySpan<byte> utf8, Span<byte> destination, out int written)
    {
        written = 0;
        if (!IdentifierNormalizers.IsAscii(utf8))
        {
            return NormalizeNonAscii(utf8, destination, out written);
        }
        var w = 0;
        var rest = utf8;
        while (true)
        {
            var separator = rest.IndexOf(IdentifierNormalizers.PartSeparator);
            var part = separator < 0 ? rest : rest[..separator];
            if (w > 0)
            {
                if (w >= destination.Length)
                {
                    return NormalizeStatus.TooLong;
                }
                destination[w++] = IdentifierNormalizers.PartSeparator;
            }
            var partStart = w;
            foreach (var b in part)
            {
                if (!char.IsAsciiLetterOrDigit((char)b))
                {
                    continue;
                }
                if (w >= destination.Length)
                {
                    return NormalizeStatus.TooLong;
                }
                destination[w++] = b is >= (byte)'A' and <= (byte)'Z' ? (byte)(b | 0x20) : b;
            }
            if (w == partStart)
            {
                return NormalizeStatus.Empty;
            }
            if (separator < 0)
            {
                break;
            }
            rest = rest[(separator + 1)..];
        }
        written = w;
        return NormalizeStatus.Ok;
    }

    private static NormalizeStatus NormalizeNonAscii(ReadOnlySpan<byte> utf8, Span<byte> destination, out int written)
    {
        written = 0;
        if (!Utf8.IsValid(utf8))
        {
            return NormalizeStatus.Invalid;
        }
        var parts = Encoding.UTF8.GetString(utf8).Split('\u001F');
        var text = new StringBuilder(utf8.Length);
        foreach (var raw in parts)
        {
            if (text.Length > 0)
            {
                text.Append('\u001F');
            }
            var before = text.Length;
            // Letters and digits of any script, lower-cased; combining marks stay with their letter (Zoë in NFD).
            foreach (var rune in raw.ToLowerInvariant().EnumerateRunes())
            {
                if (Rune.IsLetterOrDigit(rune) || Rune.GetUnicodeCategory(rune) is System.Globalization.UnicodeCategory.NonSpacingMark)
                {
                    text.Append(rune.ToString());
                }
            }
            if (text.Length == before)
            {
                return NormalizeStatus.Empty;
            }
        }
        return IdentifierNormalizers.TryEncode(text.ToString(), destination, out written) ? NormalizeStatus.Ok : NormalizeStatus.TooLong;
    }
}
