using System.Buffers;
using System.Text;
using System.Text.RegularExpressions;

namespace Engine.Identity;

/// <summary>
/// Canonical identifier values that must never link anything: placeholders real data carries (<c>null</c>,
/// <c>test@test.com</c>, <c>0000000000</c>) and values a workspace names. Exact values are compared ignoring ASCII
/// case, through a byte-keyed set looked up by span (no allocation); patterns are .NET regular expressions matched
/// against the canonical text.
/// </summary>
public sealed class Blocklist
{
    /// <summary>How long one pattern may run on one value before the match is abandoned (and the value kept).</summary>
    public static readonly TimeSpan PatternTimeout = TimeSpan.FromMilliseconds(100);

    private const int StackLimit = 256;

    private readonly HashSet<byte[]> _exact;
    private readonly HashSet<byte[]>.AlternateLookup<ReadOnlySpan<byte>> _lookup;
    private readonly Regex[] _patterns;

    /// <summary>Builds a blocklist; values are stored lower-cased, patterns compiled (an invalid pattern throws <see cref="ArgumentException"/>).</summary>
    public Blocklist(IEnumerable<string> values, IEnumerable<string> patterns)
    {
        Values = [.. values];
        Patterns = [.. patterns];
        _exact = new HashSet<byte[]>(ByteArrayComparer.Instance);
        foreach (var value in Values)
        {
            _exact.Add(Encoding.UTF8.GetBytes(AsciiLower(value)));
        }
        _lookup = _exact.GetAlternateLookup<ReadOnlySpan<byte>>();
        var compiled = new List<Regex>();
        foreach (var pattern in Patterns)
        {
            compiled.Add(new Regex(pattern, RegexOptions.CultureInvariant | RegexOptions.Compiled, PatternTimeout));
        }
        _patterns = [.. compiled];
    }

    /// <summary>A blocklist that blocks nothing.</summary>
    public static Blocklist Empty { get; } = new([], []);

    /// <summary>The exact values, as given.</summary>
    public IReadOnlyList<string> Values { get; }

    /// <summary>The patterns, as given.</summary>
    public IReadOnlyList<string> Patterns { get; }

    /// <summary>True when the canonical value is listed exactly (ignoring ASCII case) or matches a pattern.</summary>
    public bool IsBlocked(ReadOnlySpan<byte> canonical)
    {
        if (_exact.Count > 0 && ContainsExact(canonical))
        {
            return true;
        }
        return _patterns.Length > 0 && MatchesPattern(canonical);
    }

    private bool ContainsExact(ReadOnlySpan<byte> canonical)
    {
        if (_lookup.Contains(canonical))
        {
            return true;
        }
        // Most canonical values are lower case already (emails); ids may not be: retry lower-cased when short.
        if (canonical.Length > StackLimit || canonical.IndexOfAnyInRange((byte)'A', (byte)'Z') < 0)
        {
            return false;
        }
        Span<byte> lower = stackalloc byte[canonical.Length];
        IdentifierNormalizers.AsciiToLower(canonical, lower);
        return _lookup.Contains(lower);
    }

    private bool MatchesPattern(ReadOnlySpan<byte> canonical)
    {
        char[]? rented = null;
        Span<char> chars = canonical.Length <= StackLimit
            ? stackalloc char[StackLimit]
            : (rented = ArrayPool<char>.Shared.Rent(canonical.Length));
        try
        {
            var length = Encoding.UTF8.GetChars(canonical, chars);
            var text = chars[..length];
            foreach (var pattern in _patterns)
            {
                try
                {
                    if (pattern.IsMatch(text))
                    {
                        return true;
                    }
                }
                catch (RegexMatchTimeoutException)
                {
                    // A pathological pattern on one value: keep the value rather than stop the run.
                }
            }
            return false;
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<char>.Shared.Return(rented);
            }
        }
    }

    private static string AsciiLower(string value)
    {
        var chars = value.ToCharArray();
        for (var i = 0; i < chars.Length; i++)
        {
            if (chars[i] is >= 'A' and <= 'Z')
            {
                chars[i] = (char)(chars[i] | 0x20);
            }
        }
        return new string(chars);
    }

    /// <summary>Byte-array equality with a span-keyed alternate lookup, so a set of byte[] is probed without copying.</summary>
    private sealed class ByteArrayComparer : IEqualityComparer<byte[]>, IAlternateEqualityComparer<ReadOnlySpan<byte>, byte[]>
    {
        public static ByteArrayComparer Instance { get; } = new();

        public bool Equals(byte[]? x, byte[]? y) => x.AsSpan().SequenceEqual(y);

        public int GetHashCode(byte[] obj) => GetHashCode((ReadOnlySpan<byte>)obj);

        public int GetHashCode(ReadOnlySpan<byte> alternate)
        {
            var hash = new HashCode();
            hash.AddBytes(alternate);
            return hash.ToHashCode();
        }

        public bool Equals(ReadOnlySpan<byte> alternate, byte[] other) => alternate.SequenceEqual(other);

        public byte[] Create(ReadOnlySpan<byte> alternate) => alternate.ToArray();
    }
}
