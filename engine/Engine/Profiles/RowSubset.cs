using System.Numerics;

namespace Engine.Profiles;

/// <summary>
/// Some of a profile table's rows, as a bitmap with a rank per 64-bit word: <see cref="SlotOf"/> turns a profile row
/// into its place among the chosen rows in two array reads and a popcount. A build over a subset sizes its per-profile
/// state by the subset, and this is what lets an event find its slot without an int per profile (1.5 bits instead).
/// </summary>
internal sealed class RowSubset
{
    private readonly ulong[] _bits;
    private readonly int[] _rankBefore;

    /// <summary>The chosen rows of a table of <paramref name="profiles"/> rows; <paramref name="rows"/> ascending, no repeats.</summary>
    public RowSubset(int[] rows, int profiles)
    {
        ArgumentNullException.ThrowIfNull(rows);
        Rows = rows;
        _bits = new ulong[(profiles + 63) >> 6];
        var last = -1;
        foreach (var row in rows)
        {
            if (row <= last || row >= profiles)
            {
                throw new ArgumentException($"rows must ascend within [0, {profiles}); {row} follows {last}", nameof(rows));
            }
            _bits[row >> 6] |= 1UL << (row & 63);
            last = row;
        }
        _rankBefore = new int[_bits.Length];
        var rank = 0;
        for (var w = 0; w < _bits.Length; w++)
        {
            _rankBefore[w] = rank;
            rank += BitOperations.PopCount(_bits[w]);
        }
    }

    /// <summary>The chosen rows, ascending: slot i is row <c>Rows[i]</c>.</summary>
    public int[] Rows { get; }

    public int Count => Rows.Length;

    /// <summary>The slot of profile row <paramref name="row"/>, or -1 when it is not chosen.</summary>
    public int SlotOf(int row)
    {
        var word = _bits[row >> 6];
        var bit = 1UL << (row & 63);
        return (word & bit) == 0 ? -1 : _rankBefore[row >> 6] + BitOperations.PopCount(word & (bit - 1));
    }

    /// <summary>The rows whose bit is set in <paramref name="bits"/> (one bit per profile row).</summary>
    public static int[] RowsOf(ReadOnlySpan<ulong> bits)
    {
        var count = 0;
        foreach (var word in bits)
        {
            count += BitOperations.PopCount(word);
        }
        var rows = new int[count];
        var i = 0;
        for (var w = 0; w < bits.Length; w++)
        {
            var word = bits[w];
            while (word != 0)
            {
                rows[i++] = (w << 6) + BitOperations.TrailingZeroCount(word);
                word &= word - 1;
            }
        }
        return rows;
    }
}
