using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.IO.Hashing;
using System.Text;

namespace Engine.Identity;

/// <summary>
/// The 128-bit key of one identifier: XxHash128 of its canonical UTF-8 value, seeded with its type id, so the same
/// value under two types gives two keys. At 128 bits a collision among even billions of identifiers is
/// vanishingly unlikely (birthday bound about 2^-64 per pair), which is what lets the graph drop raw strings once hashed.
/// </summary>
public readonly struct IdentifierKey : IEquatable<IdentifierKey>
{
    // Values up to this many UTF-8 bytes are encoded on the stack; longer ones rent from the pool.
    private const int StackLimit = 512;

    /// <summary>Creates a key from its two halves.</summary>
    public IdentifierKey(ulong low, ulong high)
    {
        Low = low;
        High = high;
    }

    /// <summary>The low 64 bits; also the source of the hash-table bucket (XxHash128 mixes every bit into it).</summary>
    public ulong Low { get; }

    /// <summary>The high 64 bits.</summary>
    public ulong High { get; }

    /// <summary>The key of a canonical value already in UTF-8.</summary>
    /// <remarks>The type id is the hash seed rather than a prefix byte: the same separation, with no copy of the value.</remarks>
    public static IdentifierKey Compute(byte type, ReadOnlySpan<byte> canonicalUtf8)
    {
        var hash = XxHash128.HashToUInt128(canonicalUtf8, type);
        return new IdentifierKey((ulong)hash, (ulong)(hash >> 64));
    }

    /// <summary>The key of a canonical value held as UTF-16; it is encoded to UTF-8 in a scratch buffer and hashed.</summary>
    public static IdentifierKey Compute(byte type, ReadOnlySpan<char> canonicalValue)
    {
        var max = Encoding.UTF8.GetMaxByteCount(canonicalValue.Length);
        if (max <= StackLimit)
        {
            Span<byte> buffer = stackalloc byte[StackLimit];
            var written = Encoding.UTF8.GetBytes(canonicalValue, buffer);
            return Compute(type, buffer[..written]);
        }
        var rented = ArrayPool<byte>.Shared.Rent(max);
        try
        {
            var written = Encoding.UTF8.GetBytes(canonicalValue, rented);
            return Compute(type, rented.AsSpan(0, written));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>The key as one <see cref="UInt128"/>.</summary>
    public UInt128 ToUInt128() => new(High, Low);

    public bool Equals(IdentifierKey other) => Low == other.Low && High == other.High;

    public override bool Equals([NotNullWhen(true)] object? obj) => obj is IdentifierKey other && Equals(other);

    // The bits are already uniformly mixed; folding the low half is enough.
    public override int GetHashCode() => (int)(Low ^ (Low >> 32));

    public static bool operator ==(IdentifierKey left, IdentifierKey right) => left.Equals(right);

    public static bool operator !=(IdentifierKey left, IdentifierKey right) => !left.Equals(right);

    /// <summary>Hex of the 128 bits (never the value it came from, which stays private).</summary>
    public override string ToString() => $"{High:x16}{Low:x16}";
}
