namespace Engine.Identity;

/// <summary>The normalisers a workspace can name in <c>identity.yaml</c>.</summary>
public enum NormalizerKind
{
    /// <summary>Trimmed only: customer ids, anonymous ids, any opaque key.</summary>
    Id,

    /// <summary>Trimmed, lower-cased, optionally without plus-tags and Gmail dots.</summary>
    Email,

    /// <summary>E.164 through libphonenumber with a default region.</summary>
    Phone,

    /// <summary>Several columns, each reduced to its letters and digits and lower-cased, joined with U+001F.</summary>
    Composite,
}

/// <summary>
/// One identifier type of a workspace's identity rules: how its values are normalised, how many a profile may hold,
/// which values never link, and when a value counts as shared.
/// </summary>
public sealed class IdentifierType
{
    public IdentifierType(string name, NormalizerKind kind, IIdentifierNormalizer normalizer, int? limit, int? sharedAfter, Blocklist blocklist)
    {
        if (limit is <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(limit), limit, "a per-profile limit must be positive (null for none)");
        }
        if (sharedAfter is <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(sharedAfter), sharedAfter, "a shared-value threshold must be positive (null for none)");
        }
        Name = name;
        Kind = kind;
        Normalizer = normalizer;
        Limit = limit;
        SharedAfter = sharedAfter;
        Blocklist = blocklist;
    }

    /// <summary>The type's name, as sources and the identity output name it (email, customer_id…).</summary>
    public string Name { get; }

    public NormalizerKind Kind { get; }

    public IIdentifierNormalizer Normalizer { get; }

    /// <summary>At most this many distinct values of the type per profile; null for no limit.</summary>
    public int? Limit { get; }

    /// <summary>
    /// A value linked to more than this many distinct profiles formed by higher-priority identifiers (a household
    /// tablet, a family address) is shared: it is reported and not used to stitch. Values of higher-priority types
    /// that are already one profile count once, so one person's cookie seen with their customer id and their email is
    /// not shared, nor is an email on a customer's two duplicate records. Null: never treated as shared.
    /// </summary>
    public int? SharedAfter { get; }

    public Blocklist Blocklist { get; }

    /// <summary>Normalises <paramref name="utf8"/> and checks the blocklist; <see cref="NormalizeStatus.Blocked"/> when listed.</summary>
    public NormalizeStatus Canonicalize(ReadOnlySpan<byte> utf8, Span<byte> destination, out int written)
    {
        var status = Normalizer.Normalize(utf8, destination, out written);
        if (status == NormalizeStatus.Ok && Blocklist.IsBlocked(destination[..written]))
        {
            return NormalizeStatus.Blocked;
        }
        return status;
    }

    /// <summary>
    /// Like <see cref="Canonicalize(ReadOnlySpan{byte}, Span{byte}, out int)"/>, reading phone numbers written
    /// without a country code in <paramref name="region"/> (for example the customer's country) instead of the
    /// configured default region; other normalisers ignore it.
    /// </summary>
    public NormalizeStatus Canonicalize(ReadOnlySpan<byte> utf8, string? region, Span<byte> destination, out int written)
    {
        var status = Normalizer is PhoneNormalizer phone
            ? phone.Normalize(utf8, region, destination, out written)
            : Normalizer.Normalize(utf8, destination, out written);
        if (status == NormalizeStatus.Ok && Blocklist.IsBlocked(destination[..written]))
        {
            return NormalizeStatus.Blocked;
        }
        return status;
    }

    public override string ToString() => Name;
}
