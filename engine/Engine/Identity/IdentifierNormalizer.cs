using System.Buffers;
using System.Text;

namespace Engine.Identity;

/// <summary>What a normaliser made of one raw identifier value.</summary>
public enum NormalizeStatus
{
    /// <summary>The canonical form was written to the destination.</summary>
    Ok,

    /// <summary>Nothing left after trimming (or an empty composite part): the value links nothing.</summary>
    Empty,

    /// <summary>The value is not a well-formed identifier of its type (an email without one '@', an unparseable phone).</summary>
    Invalid,

    /// <summary>The destination was too small; size it with <see cref="IdentifierNormalizers.MaxOutputBytes"/>.</summary>
    TooLong,

    /// <summary>The canonical form is on the type's blocklist (returned by <c>IdentifierType.Canonicalize</c> only).</summary>
    Blocked,
}

/// <summary>
/// Turns one raw identifier (the UTF-8 bytes of an Arrow string value) into its canonical UTF-8 form. Implementations
/// are stateless and thread-safe. The destination must hold at least
/// <see cref="IdentifierNormalizers.MaxOutputBytes"/>(<c>utf8.Length</c>) bytes; with less, a long value may
/// come back as <see cref="NormalizeStatus.TooLong"/> (never an exception).
/// </summary>
public interface IIdentifierNormalizer
{
    /// <summary>Writes the canonical form of <paramref name="utf8"/> to <paramref name="destination"/>.</summary>
    NormalizeStatus Normalize(ReadOnlySpan<byte> utf8, Span<byte> destination, out int written);
}

/// <summary>The normaliser kinds a workspace can name, and helpers they share.</summary>
public static class IdentifierNormalizers
{
    /// <summary>The separator between the parts of a composite identifier, raw and canonical: U+001F (unit separator).</summary>
    public const byte PartSeparator = 0x1F;

    /// <summary>
    /// A destination size that always suffices for an input of <paramref name="inputLength"/> bytes: lower-casing
    /// non-ASCII text can grow a character from 2 to 3 UTF-8 bytes, and a phone's E.164 form can be longer than a
    /// very short input; 4× plus a small constant covers both.
    /// </summary>
    public static int MaxOutputBytes(int inputLength) => (inputLength * 4) + 32;

    /// <summary>Trims ASCII and Unicode white space (and the zero-width space and byte-order mark) from both ends.</summary>
    public static ReadOnlySpan<byte> Trim(ReadOnlySpan<byte> utf8)
    {
        var start = 0;
        var end = utf8.Length;
        while (start < end)
        {
            var b = utf8[start];
            if (b < 0x80)
            {
                if (!IsAsciiWhiteSpace(b))
                {
                    break;
                }
                start++;
            }
            else if (Rune.DecodeFromUtf8(utf8[start..end], out var rune, out var consumed) == OperationStatus.Done && IsTrimmable(rune))
            {
                start += consumed;
            }
            else
            {
                break;
            }
        }
        while (end > start)
        {
            var b = utf8[end - 1];
            if (b < 0x80)
            {
                if (!IsAsciiWhiteSpace(b))
                {
                    break;
                }
                end--;
            }
            else if (Rune.DecodeLastFromUtf8(utf8[start..end], out var rune, out var consumed) == OperationStatus.Done && IsTrimmable(rune))
            {
                end -= consumed;
            }
            else
            {
                break;
            }
        }
        return utf8[start..end];
    }

    internal static bool IsAsciiWhiteSpace(byte b) => b == (byte)' ' || (b >= 0x09 && b <= 0x0D);

    private static bool IsTrimmable(Rune rune) => Rune.IsWhiteSpace(rune) || rune.Value is 0x200B or 0xFEFF;

    internal static bool IsAscii(ReadOnlySpan<byte> utf8) => Ascii.IsValid(utf8);

    /// <summary>Copies <paramref name="source"/> lower-cased (ASCII letters only) into <paramref name="destination"/>.</summary>
    internal static void AsciiToLower(ReadOnlySpan<byte> source, Span<byte> destination)
    {
        for (var i = 0; i < source.Length; i++)
        {
            var b = source[i];
            destination[i] = b is >= (byte)'A' and <= (byte)'Z' ? (byte)(b | 0x20) : b;
        }
    }

    /// <summary>Encodes <paramref name="text"/> as UTF-8 into <paramref name="destination"/>; false when it does not fit.</summary>
    internal static bool TryEncode(ReadOnlySpan<char> text, Span<byte> destination, out int written)
        => Encoding.UTF8.TryGetBytes(text, destination, out written);
}
