using System.Security.Cryptography;
using System.Text;
using Engine.Identity;

namespace Engine.Connectors.Destinations;

/// <summary>
/// The hashed identifiers ad platforms match on: each platform's normalisation of emails and phone numbers, then
/// SHA-256 as lower-case hex. Values arrive canonical from the identity stage (emails trimmed and lower-cased, phones
/// E.164); the platform's rules are applied again anyway, so a value that reached delivery some other way still
/// hashes to what the platform expects.
/// </summary>
public static class HashedIdentifiers
{
    /// <summary>Lower-case hex SHA-256 of the UTF-8 bytes of <paramref name="normalized"/> (64 characters).</summary>
    public static string Sha256Hex(string normalized)
    {
        ArgumentNullException.ThrowIfNull(normalized);
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(Encoding.UTF8.GetBytes(normalized), hash);
        return Convert.ToHexStringLower(hash);
    }

    /// <summary>An email as both Meta and Google want it before hashing: trimmed and lower-cased; null when empty.</summary>
    public static string? NormalizeEmail(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var email = value.Trim().ToLowerInvariant();
        return email.Length == 0 ? null : email;
    }

    /// <summary>
    /// A phone number as Meta wants it: digits only, country code included, no '+' and no leading zeros
    /// (<c>+1 415 555 0100</c> → <c>14155550100</c>); null when no digit is left.
    /// </summary>
    public static string? MetaPhone(string value)
    {
        var digits = Digits(value);
        return digits.Length == 0 ? null : digits;
    }

    /// <summary>
    /// A phone number as Google wants it: E.164, '+' then the country code and number (<c>+14155550100</c>); null when
    /// no digit is left. A leading international prefix of zeros (<c>0044…</c>) is dropped: E.164 has none.
    /// </summary>
    public static string? E164Phone(string value)
    {
        var digits = Digits(value);
        return digits.Length == 0 ? null : "+" + digits;
    }

    /// <summary>The normaliser kind of each of <paramref name="identifyBy"/>'s types under <paramref name="rules"/> (types the rules do not define are left out).</summary>
    public static IReadOnlyDictionary<string, NormalizerKind> Kinds(IReadOnlyList<string> identifyBy, IdentityRules rules)
    {
        ArgumentNullException.ThrowIfNull(identifyBy);
        ArgumentNullException.ThrowIfNull(rules);
        var kinds = new Dictionary<string, NormalizerKind>(StringComparer.Ordinal);
        foreach (var type in identifyBy)
        {
            if (rules.Find(type) is { } found)
            {
                kinds[type] = found.Kind;
            }
        }
        return kinds;
    }

    /// <summary>
    /// A record's emails and phone numbers, told apart by the normaliser kind of their identifier type, in the
    /// record's order (types as the destination lists them, then values in order), without duplicates.
    /// </summary>
    public static (List<string> Emails, List<string> Phones) Split(OutgoingRecord record, IReadOnlyDictionary<string, NormalizerKind> kinds)
    {
        ArgumentNullException.ThrowIfNull(record);
        ArgumentNullException.ThrowIfNull(kinds);
        var emails = new List<string>();
        var phones = new List<string>();
        foreach (var identifier in record.Identifiers)
        {
            if (!kinds.TryGetValue(identifier.Type, out var kind))
            {
                continue;
            }
            var list = kind switch
            {
                NormalizerKind.Email => emails,
                NormalizerKind.Phone => phones,
                _ => null,
            };
            if (list is not null && !list.Contains(identifier.Value))
            {
                list.Add(identifier.Value);
            }
        }
        return (emails, phones);
    }

    private static string Digits(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var builder = new StringBuilder(value.Length);
        foreach (var c in value)
        {
            // Leading zeros go: neither a country code nor Meta's format starts with one.
            if (char.IsAsciiDigit(c) && (builder.Length > 0 || c != '0'))
            {
                builder.Append(c);
            }
        }
        return builder.ToString();
    }
}
