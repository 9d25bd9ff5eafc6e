using System.Numerics;
using System.Runtime.CompilerServices;

namespace Engine.Identity;

/// <summary>
/// The identifier graph with its nodes numbered in the order the identifiers were first met in the data — by source,
/// file and row, ties (values first met on the same row) by their 128-bit key. Builders number identifiers in the
/// order batches are applied, which a parallel scan makes depend on timing; where a value first occurs does not, so
/// this numbering — and everything decided in it: the order links are stitched in, which of two contradicting links of
/// equal priority a limit refuses (the one met later loses, as when a stream of events is stitched as it arrives),
/// which profile gets which new id — is the same for the same input on one thread or many. The identity output is
/// written in this order, so a row's position is its node number.
/// </summary>
public sealed class CanonicalGraph
{
    internal CanonicalGraph(int[] order, int[] rank, byte[] nodeTypes, ulong[] edges)
    {
        Order = order;
        Rank = rank;
        NodeTypes = nodeTypes;
        Edges = edges;
    }

    /// <summary>Node number → the builder's identifier id.</summary>
    public int[] Order { get; }

    /// <summary>The builder's identifier id → node number.</summary>
    public int[] Rank { get; }

    /// <summary>The type id of every node.</summary>
    public byte[] NodeTypes { get; }

    /// <summary>The distinct edges between node numbers, packed by <see cref="EdgeSet.Pack"/>, ascending.</summary>
    public ulong[] Edges { get; }

    public int NodeCount => NodeTypes.Length;

    public int EdgeCount => Edges.Length;

    /// <summary>
    /// The node order of <paramref name="table"/>'s identifiers: builder ids sorted by <paramref name="firstSeen"/>
    /// (per builder id, the first <see cref="IdentifierTable.Count"/> entries), then key. The positions are overwritten
    /// along the way: the builder hands its own array over rather than have it copied. <paramref name="packedBits"/>
    /// bounds the packed sort (<see cref="SortPacked"/>): a test sets it low to take the comparison sort.
    /// </summary>
    internal static int[] NodeOrder(IdentifierTable table, long[] firstSeen, int packedBits = 64)
    {
        var n = table.Count;
        if (firstSeen.Length < n)
        {
            throw new ArgumentException($"{firstSeen.Length} positions for {n} identifiers", nameof(firstSeen));
        }
        var order = new int[n];
        if (!SortPacked(firstSeen, order, packedBits))
        {
            for (var i = 0; i < n; i++)
            {
                order[i] = i;
            }
            firstSeen.AsSpan(0, n).Sort(order.AsSpan());
        }
        // Runs of equal position — values first met on one row, a handful at most — by key.
        var byKey = table.KeyOrder();
        for (var i = 0; i < n;)
        {
            var j = i + 1;
            while (j < n && firstSeen[j] == firstSeen[i])
            {
                j++;
            }
            for (var k = i + 1; k < j; k++)
            {
                var id = order[k];
                var m = k - 1;
                while (m >= i && byKey.Compare(order[m], id) > 0)
                {
                    order[m + 1] = order[m];
                    m--;
                }
                order[m + 1] = id;
            }
            i = j;
        }
        return order;
    }

    // Where parallel halves beat one radix sort (as for the edges).
    private const int ParallelSortThreshold = 1 << 20;

    /// <summary>
    /// Sorts by position with one 64-bit radix sort, when it fits: each position is packed, order kept, with its builder
    /// id — the (source, file) part ranked among those present, then the row, then the id — and the packed values
    /// sorted in <paramref name="firstSeen"/>'s own storage. A comparison sort of 54M (position, id) pairs took seconds
    /// on one core at ten million people. Afterwards <paramref name="order"/> holds the ids and
    /// <paramref name="firstSeen"/> the positions (packed, but ordered and equal as before). False, with nothing
    /// changed, when the three parts need more than <paramref name="bits"/> (64) bits.
    /// </summary>
    private static bool SortPacked(long[] firstSeen, int[] order, int bits)
    {
        var n = order.Length;
        if (n == 0)
        {
            return true;
        }
        const int FileShift = 35; // IdentityGraphBuilder.Position: source and file above 35 bits of row
        const long RowMask = (1L << FileShift) - 1;
        var files = new List<long>();
        var known = new HashSet<long>();
        long lastFile = -1, maxRow = 0;
        for (var i = 0; i < n; i++)
        {
            var position = firstSeen[i];
            if (position < 0)
            {
                return false;
            }
            // Ids are given as batches are applied, so one file's ids come in long stretches: a set lookup per stretch.
            var file = position >> FileShift;
            if (file != lastFile && known.Add(file))
            {
                files.Add(file);
            }
            lastFile = file;
            maxRow = Math.Max(maxRow, position & RowMask);
        }
        var rowBits = BitsFor((ulong)maxRow);
        var idBits = BitsFor((ulong)n - 1);
        if (BitsFor((ulong)files.Count - 1) + rowBits + idBits > bits)
        {
            return false;
        }
        files.Sort();
        var rankOf = new Dictionary<long, ulong>(files.Count);
        for (var f = 0; f < files.Count; f++)
        {
            rankOf.Add(files[f], (ulong)f);
        }
        var packed = Unsafe.As<ulong[]>(firstSeen); // same size, same storage: the sort reuses the positions' memory
        lastFile = -1;
        ulong rank = 0;
        for (var i = 0; i < n; i++)
        {
            var position = firstSeen[i];
            var file = position >> FileShift;
            if (file != lastFile)
            {
                rank = rankOf[file];
                lastFile = file;
            }
            packed[i] = (((rank << rowBits) | (ulong)(position & RowMask)) << idBits) | (uint)i;
        }
        if (n >= ParallelSortThreshold && Environment.ProcessorCount > 1)
        {
            EdgeSet.SortInHalves(packed, n, unique: false);
        }
        else
        {
            EdgeSet.Sort(packed.AsSpan(0, n));
        }
        var idMask = (1UL << idBits) - 1;
        for (var i = 0; i < n; i++)
        {
            var value = packed[i];
            order[i] = (int)(value & idMask);
            firstSeen[i] = (long)(value >> idBits);
        }
        return true;
    }

    private static int BitsFor(ulong max) => 64 - BitOperations.LeadingZeroCount(max);

    /// <summary>Maps edges between builder ids onto node numbers: distinct, ascending.</summary>
    public ulong[] Remap(ReadOnlySpan<ulong> edges)
    {
        var set = new EdgeSet(edges.Length);
        foreach (var e in edges)
        {
            set.Add(Rank[EdgeSet.First(e)], Rank[EdgeSet.Second(e)]);
        }
        return set.Deduplicate().ToArray();
    }

    /// <summary>Reorders a per-identifier array from builder ids to node numbers (ids past its end count as <paramref name="missing"/>).</summary>
    public T[] ToNodes<T>(ReadOnlySpan<T> byBuilderId, T missing)
    {
        var result = new T[NodeCount];
        for (var i = 0; i < result.Length; i++)
        {
            var id = Order[i];
            result[i] = id < byBuilderId.Length ? byBuilderId[id] : missing;
        }
        return result;
    }
}
