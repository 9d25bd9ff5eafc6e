namespace Engine.Identity;

/// <summary>Ids (<c>customer_id</c>, <c>anonymous_id</c>, any opaque key): trimmed, otherwise kept byte for byte.</summary>
public sealed class IdNormalizer : IIdentifierNormalizer
{
    /// <summary>The one instance: the normaliser has no settings.</summary>
    public static IdNormalizer Instance { get; } = new();

    private IdNormalizer() { }

    public NormalizeStatus Normalize(ReadOnlySpan<byte> utf8, Span<byte> destination, out int written)
    {
        var value = IdentifierNormalizers.Trim(utf8);
        written = 0;
        if (value.IsEmpty)
        {
            return NormalizeStatus.Empty;
        }
        if (!value.TryCopyTo(destination))
        {
            return NormalizeStatus.TooLong;
        }
        written = value.Length;
        return NormalizeStatus.Ok;
    }
}
