using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Engine.Connectors.Holdouts;

/// <summary>
/// Which members of an activation (a segment delivered to a destination) form its control group. A profile's bucket
/// is the first 8 bytes of SHA-256 over the UTF-8 text <c>destination/segment/profile_id</c>, read big-endian, modulo
/// <see cref="Buckets"/>; buckets below <see cref="HoldoutSettings.HeldOutBuckets"/> are held out. It depends on
/// nothing but those three values — not the run, the batch, the order or the machine — so a member stays in its group
/// every night, its exit is held out like its entry, and anyone can recompute it, e.g. in DuckDB:
/// <c>('0x' || left(sha256(destination || '/' || segment || '/' || profile_id), 16))::UBIGINT % 10000</c>.
/// </summary>
public static class HoldoutAssignment
{
    /// <summary>Buckets per activation: percentages down to 0.01 % are exact.</summary>
    public const int Buckets = 10_000;

    /// <summary>The bucket of <paramref name="profileId"/> in the activation of <paramref name="segment"/> on <paramref name="destination"/>.</summary>
    public static int Bucket(string destination, string segment, long profileId)
    {
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentNullException.ThrowIfNull(segment);
        var text = string.Create(CultureInfo.InvariantCulture, $"{destination}/{segment}/{profileId}");
        Span<byte> utf8 = stackalloc byte[256];
        var bytes = Encoding.UTF8.GetMaxByteCount(text.Length) <= utf8.Length ? utf8[..Encoding.UTF8.GetBytes(text, utf8)] : Encoding.UTF8.GetBytes(text);
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(bytes, hash);
        return (int)(BinaryPrimitives.ReadUInt64BigEndian(hash) % Buckets);
    }

    /// <summary>Whether the profile is in the activation's control group under <paramref name="holdout"/>.</summary>
    public static bool IsHeldOut(HoldoutSettings holdout, string destination, string segment, long profileId)
    {
        ArgumentNullException.ThrowIfNull(holdout);
        return Bucket(destination, segment, profileId) < holdout.HeldOutBuckets;
    }
}
