using System.Text;
using System.Text.Unicode;

namespace Engine.Identity;

/// <summary>
/// Composite identifiers built from several columns (given name + surname + postcode): the caller joins the raw
/// column values with <see cref="IdentifierNormalizers.PartSeparator"/> (U+001F); each part is trimmed, lower-cased
/// and has its inner white space collapsed to one space, and the parts are joined again with U+001F. Any empty part
/// makes the whole value <see cref="NormalizeStatus.Empty"/>: "Ann" + "" + "" must not link every Ann.
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
            var part = IdentifierNormalizers.Trim(separator < 0 ? rest : rest[..separator]);
            if (part.IsEmpty)
            {
                return NormalizeStatus.Empty;
            }
            if (w > 0)
            {
                if (w >= destination.Length)
                {
                    return NormalizeStatus.TooLong;
                }
                destination[w++] = IdentifierNormalizers.PartSeparator;
            }
            var inSpace = false;
            foreach (var b in part)
            {
                if (IdentifierNormalizers.IsAsciiWhiteSpace(b))
                {
                    inSpace = true;
                    continue;
                }
                if (w + (inSpace ? 2 : 1) > destination.Length)
                {
                    return NormalizeStatus.TooLong;
                }
                if (inSpace)
                {
                    destination[w++] = (byte)' ';
                    inSpace = false;
                }
                destination[w++] = b is >= (byte)'A' and <= (byte)'Z' ? (byte)(b | 0x20) : b;
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
            var words = raw.ToLowerInvariant().Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            var part = string.Join(' ', words).Trim('\u200B', '\uFEFF');
            if (part.Length == 0)
            {
                return NormalizeStatus.Empty;
            }
            if (text.Length > 0)
            {
                text.Append('\u001F');
            }
            text.Append(part);
        }
        return IdentifierNormalizers.TryEncode(text.ToString(), destination, out written) ? NormalizeStatus.Ok : NormalizeStatus.TooLong;
    }
}
