using System.Security.Cryptography;
using System.Text;

namespace Engine.Connectors.Delivery;

/// <summary>The idempotency keys of delivery: one per record, one per batch.</summary>
public static class DeliveryKeys
{
    public const string Entered = "entered";
    public const string Exited = "exited";

    /// <summary>
    /// A record's key: <c>run/segment/destination/profile/change</c>. Readable on purpose (a destination's logs and
    /// the ledger can be joined by eye); it holds no personal identifier.
    /// </summary>
    public static string Record(string runId, string segment, string destination, long profileId, string change)
        => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{runId}/{segment}/{destination}/{profileId}/{change}");

    /// <summary>A batch's key: the destination and a SHA-256 of its records' keys, so the same records make the same key.</summary>
    public static string Batch(string destination, IReadOnlyList<string> keys)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var key in keys)
        {
            hash.AppendData(Encoding.UTF8.GetBytes(key));
            hash.AppendData("\n"u8);
        }
        return $"{destination}-{Convert.ToHexStringLower(hash.GetHashAndReset())[..32]}";
    }
}
