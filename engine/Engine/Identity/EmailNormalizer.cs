using System.Text;
using System.Text.Unicode;

namespace Engine.Identity;

/// <summary>
/// Email addresses: trimmed, lower-cased, and checked for exactly one '@' with a non-empty local part and domain
/// and no white space inside. Optionally drops the plus-tag (<c>ann+shop@x.com</c> → <c>ann@x.com</c>) and, for
/// Gmail only, the dots of the local part (<c>a.nn@googlemail.com</c> → <c>ann@gmail.com</c>), since Gmail delivers
/// those variants to one mailbox. Pure ASCII (nearly every address) is handled on the bytes without allocating;
/// other text goes through a string.
/// </summary>
public sealed class EmailNormalizer : IIdentifierNormalizer
{
    private static readonly byte[] Gmail = "gmail.com"u8.ToArray();
    private static readonly byte[] Googlemail = "googlemail.com"u8.ToArray();

    public EmailNormalizer(bool stripPlusTags = false, bool gmailDots = false)
    {
        StripPlusTags = stripPlusTags;
        GmailDots = gmailDots;
    }

    /// <summary>Drop everything from the first '+' of the local part (when something is left before it).</summary>
    public bool StripPlusTags { get; }

    /// <summary>Drop the dots of gmail.com local parts, and read googlemail.com as gmail.com.</summary>
    public bool GmailDots { get; }

    public NormalizeStatus Normalize(ReadOnlySpan<byte> utf8, Span<byte> destination, out int written)
    {
        written = 0;
        var value = IdentifierNormalizers.Trim(utf8);
        if (value.IsEmpty)
        {
            return NormalizeStatus.Empty;
        }
        if (!IdentifierNormalizers.IsAscii(value))
        {
            return NormalizeNonAscii(value, destination, out written);
        }
        if (destination.Length < value.Length)
        {
            return NormalizeStatus.TooLong;
        }
        IdentifierNormalizers.AsciiToLower(value, destination);
        return Finish(destination, value.Length, out written);
    }

    private NormalizeStatus NormalizeNonAscii(ReadOnlySpan<byte> value, Span<byte> destination, out int written)
    {
        written = 0;
        if (!Utf8.IsValid(value))
        {
            return NormalizeStatus.Invalid;
        }
        var lower = Encoding.UTF8.GetString(value).ToLowerInvariant();
        foreach (var c in lower)
        {
            if (char.IsWhiteSpace(c))
            {
                return NormalizeStatus.Invalid; // white space inside an address (the ends are trimmed already)
            }
        }
        if (!IdentifierNormalizers.TryEncode(lower, destination, out var length))
        {
            return NormalizeStatus.TooLong;
        }
        return Finish(destination, length, out written);
    }

    /// <summary>Validates the lower-cased address in place and applies the plus-tag and Gmail options.</summary>
    private NormalizeStatus Finish(Span<byte> buffer, int length, out int written)
    {
        written = 0;
        var text = buffer[..length];
        var at = text.IndexOf((byte)'@');
        if (at <= 0 || at == length - 1 || text[(at + 1)..].IndexOf((byte)'@') >= 0)
        {
            return NormalizeStatus.Invalid;
        }
        for (var i = 0; i < length; i++)
        {
            if (IdentifierNormalizers.IsAsciiWhiteSpace(text[i]))
            {
                return NormalizeStatus.Invalid;
            }
        }

        var localEnd = at;
        if (StripPlusTags)
        {
            var plus = text[..at].IndexOf((byte)'+');
            if (plus > 0)
            {
                localEnd = plus;
            }
        }
        var domain = text[(at + 1)..];
        var isGmail = domain.SequenceEqual(Gmail) || domain.SequenceEqual(Googlemail);
        if (GmailDots && isGmail)
        {
            // Compact the local part without its dots, then write the domain as gmail.com.
            var w = 0;
            for (var i = 0; i < localEnd; i++)
            {
                if (text[i] != (byte)'.')
                {
                    text[w++] = text[i];
                }
            }
            if (w == 0)
            {
                return NormalizeStatus.Invalid;
            }
            text[w++] = (byte)'@';
            Gmail.CopyTo(text[w..]);
            written = w + Gmail.Length;
            return NormalizeStatus.Ok;
        }
        if (localEnd == at)
        {
            written = length;
            return NormalizeStatus.Ok;
        }
        // Move "@domain" left over the dropped plus-tag.
        text[at..].CopyTo(text[localEnd..]);
        written = length - (at - localEnd);
        return NormalizeStatus.Ok;
    }
}
