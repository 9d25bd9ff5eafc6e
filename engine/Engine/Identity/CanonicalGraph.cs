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
    /// (per builder id), then key. <paramref name="firstSeen"/> is sorted in place along the way: the builder hands its
    /// own positions over rather than have them copied.
    /// </summary>
    internal static int[] NodeOrder(IdentifierTable table, Span<long> firstSeen)
    {
        var n = table.Count;
        if (firstSeen.Length != n)
        {
            throw new ArgumentException($"{firstSeen.Length} positions for {n} identifiers", nameof(firstSeen));
        }
        var order = new int[n];
        for (var i = 0; i < n; i++)
        {
            order[i] = i;
        }
        // By position (a primitive sort), then runs of equal position — values first met on one row — by key.
        firstSeen.Sort(order.AsSpan());
        var byKey = table.KeyOrder();
        for (var i = 0; i < n;)
        {
            var j = i + 1;
            while (j < n && firstSeen[j] == firstSeen[i])
            {
                j++;
            }
            if (j - i > 1)
            {
                Array.Sort(order, i, j - i, byKey);
            }
            i = j;
        }
        return order;
    }

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
