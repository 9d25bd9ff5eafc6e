using System.Buffers;
using System.Diagnostics.CodeAnalysis;

namespace Engine.Identity;

/// <summary>How one identifier type takes part in stitching.</summary>
/// <param name="Rank">Priority: 0 is the most trusted; a larger number is a lower priority. Types may share a rank.</param>
/// <param name="Limit">The most identifiers of this type one profile may hold (1 … 65,535), or null for no limit.</param>
public readonly record struct IdentifierTypePolicy(int Rank, int? Limit);

/// <summary>
/// An edge that stitching refused because joining its two clusters would have put more than
/// <see cref="IdentifierTypePolicy.Limit"/> identifiers of <see cref="LimitedType"/> into one profile.
/// </summary>
/// <param name="First">The smaller endpoint id.</param>
/// <param name="Second">The larger endpoint id.</param>
/// <param name="Rank">The edge's priority: the larger (less trusted) rank of its two endpoint types.</param>
/// <param name="LimitedType">The type whose limit the union would have broken (the lowest such type id).</param>
public readonly record struct RefusedEdge(int First, int Second, int Rank, byte LimitedType);

/// <summary>The outcome of <see cref="Stitcher.Run"/>.</summary>
public sealed class StitchResult
{
    private readonly int[] _clusterOf;
    private readonly RefusedEdge[] _refused;

    internal StitchResult(int[] clusterOf, int clusterCount, RefusedEdge[] refused, int edges, int unions)
    {
        _clusterOf = clusterOf;
        ClusterCount = clusterCount;
        _refused = refused;
        Edges = edges;
        Unions = unions;
    }

    /// <summary>Per identifier id, its cluster: the smallest identifier id in the cluster (canonical, order-free).</summary>
    public ReadOnlySpan<int> ClusterOf => _clusterOf;

    /// <summary>The number of clusters (profiles), singletons included.</summary>
    public int ClusterCount { get; }

    /// <summary>Refused edges in the order they were processed (priority, then packed edge value).</summary>
    public ReadOnlySpan<RefusedEdge> Refused => _refused;

    /// <summary>Distinct edges processed.</summary>
    public int Edges { get; }

    /// <summary>Edges that joined two clusters.</summary>
    public int Unions { get; }
}

/// <summary>
/// Identity stitching: union-find over the identifier graph, with Segment-style priority and per-profile limits.
/// Edges are processed in priority order (an edge ranks as its less trusted endpoint type; ties by packed value), and a
/// union that would put more than a type's limit of identifiers into one cluster is refused and recorded, so the lower
/// priority link is the one that loses. Sorting first makes the result a function of the set of edges alone: any
/// input order, any duplicates, gives the same clusters and the same refusals.
/// </summary>
/// <remarks>
/// The union-find pass is single-threaded on purpose. With limits, every decision depends on every earlier one in
/// priority order, so it is sequential by definition; without them a concurrent (CAS) union-find would be possible,
/// but the pass is bound by random memory reads, which the two cores of this machine share, and the prefetching
/// single thread already keeps several of them in flight. The sort (LSD radix) and the counting sort by priority are
/// linear, and so is the whole run.
/// </remarks>
public static class Stitcher
{
    // How many edges ahead the union loop prefetches parent entries: about one memory latency of work.
    private const int PrefetchDistance = 16;

    /// <summary>
    /// Stitches <paramref name="nodeTypes"/>.Length identifiers (node i has type <paramref name="nodeTypes"/>[i]) along
    /// <paramref name="edges"/> (packed by <see cref="EdgeSet.Pack"/>, in any order, repeats allowed), with
    /// <paramref name="policies"/>[t] describing type t.
    /// </summary>
    public static StitchResult Run(ReadOnlySpan<byte> nodeTypes, ReadOnlySpan<ulong> edges, ReadOnlySpan<IdentifierTypePolicy> policies)
    {
        var n = nodeTypes.Length;
        if (policies.Length > 256)
        {
            ThrowTooManyPolicies(policies.Length);
        }
        foreach (var t in nodeTypes)
        {
            if (t >= policies.Length)
            {
                ThrowUnknownType(t);
            }
        }
        // Per type: its dense priority level and, for limited types, its slot among the limited ones.
        Span<int> level = stackalloc int[256];
        Span<int> slotOf = stackalloc int[256];
        var limits = new int[policies.Length];
        var limitedTypes = new byte[policies.Length];
        var levels = DenseLevels(policies, level);
        var k = 0;
        for (var t = 0; t < policies.Length; t++)
        {
            slotOf[t] = -1;
            if (policies[t].Limit is { } limit)
            {
                if (limit is < 1 or > ushort.MaxValue)
                {
                    ThrowBadLimit(t, limit);
                }
                slotOf[t] = k;
                limits[k] = limit;
                limitedTypes[k] = (byte)t;
                k++;
            }
        }

        var unionFind = new UnionFind(n);
        foreach (var e in edges)
        {
            if (EdgeSet.Second(e) >= n)
            {
                ThrowEdgeOutOfRange(e, n);
            }
        }

        int distinct, unions;
        RefusedEdge[] refused;
        if (k == 0)
        {
            // No limits: the partition is the connected components, which no order or repeat can change; skip sorting.
            unions = UnionAll(unionFind, edges);
            distinct = CountDistinct(edges);
            refused = [];
        }
        else
        {
            var ordered = ArrayPool<ulong>.Shared.Rent(edges.Length);
            try
            {
                var span = OrderByPriority(edges, nodeTypes, level, levels, ordered);
                distinct = span.Length;
                (unions, refused) = UnionWithLimits(unionFind, span, nodeTypes, slotOf, limits.AsSpan(0, k), limitedTypes, policies);
            }
            finally
            {
                ArrayPool<ulong>.Shared.Return(ordered);
            }
        }

        var clusterOf = new int[n];
        var clusters = unionFind.Label(clusterOf);
        return new StitchResult(clusterOf, clusters, refused, distinct, unions);
    }

    private static int UnionAll(UnionFind unionFind, ReadOnlySpan<ulong> edges)
    {
        var unions = 0;
        for (var i = 0; i < edges.Length; i++)
        {
            if (i + PrefetchDistance < edges.Length)
            {
                var ahead = edges[i + PrefetchDistance];
                unionFind.Prefetch(EdgeSet.First(ahead));
                unionFind.Prefetch(EdgeSet.Second(ahead));
            }
            var e = edges[i];
            unions += unionFind.Union(EdgeSet.First(e), EdgeSet.Second(e)) ? 1 : 0;
        }
        return unions;
    }

    private static (int Unions, RefusedEdge[] Refused) UnionWithLimits(
        UnionFind unionFind, ReadOnlySpan<ulong> edges, ReadOnlySpan<byte> nodeTypes, ReadOnlySpan<int> slotOf,
        ReadOnlySpan<int> limits, byte[] limitedTypes, ReadOnlySpan<IdentifierTypePolicy> policies)
    {
        var k = limits.Length;
        // counts[root * k + j]: identifiers of the j-th limited type in root's cluster. Never above its limit (a union
        // that would exceed it is refused), so 16 bits suffice; only meaningful at roots.
        var counts = new ushort[(long)nodeTypes.Length * k];
        for (var i = 0; i < nodeTypes.Length; i++)
        {
            var slot = slotOf[nodeTypes[i]];
            if (slot >= 0)
            {
                counts[(long)i * k + slot] = 1;
            }
        }
        var refused = new List<RefusedEdge>();
        var unions = 0;
        for (var i = 0; i < edges.Length; i++)
        {
            if (i + PrefetchDistance < edges.Length)
            {
                var ahead = edges[i + PrefetchDistance];
                unionFind.Prefetch(EdgeSet.First(ahead));
                unionFind.Prefetch(EdgeSet.Second(ahead));
            }
            var e = edges[i];
            var ra = unionFind.Find(EdgeSet.First(e));
            var rb = unionFind.Find(EdgeSet.Second(e));
            if (ra == rb)
            {
                continue;
            }
            var ca = counts.AsSpan((int)((long)ra * k), k);
            var cb = counts.AsSpan((int)((long)rb * k), k);
            var broken = -1;
            for (var j = 0; j < k; j++)
            {
                if (ca[j] + cb[j] > limits[j])
                {
                    broken = j;
                    break;
                }
            }
            if (broken >= 0)
            {
                int a = EdgeSet.First(e), b = EdgeSet.Second(e);
                var rank = Math.Max(policies[nodeTypes[a]].Rank, policies[nodeTypes[b]].Rank);
                refused.Add(new RefusedEdge(a, b, rank, limitedTypes[broken]));
                continue;
            }
            var root = unionFind.LinkRoots(ra, rb);
            var into = root == ra ? ca : cb;
            var from = root == ra ? cb : ca;
            for (var j = 0; j < k; j++)
            {
                into[j] += from[j];
            }
            unions++;
        }
        return (unions, refused.ToArray());
    }

    /// <summary>
    /// Writes the distinct edges into <paramref name="buffer"/> ordered by (priority level, packed value): a radix
    /// sort by packed value, then a stable counting sort by level. Returns the ordered span.
    /// </summary>
    private static ReadOnlySpan<ulong> OrderByPriority(
        ReadOnlySpan<ulong> edges, ReadOnlySpan<byte> nodeTypes, ReadOnlySpan<int> level, int levels, ulong[] buffer)
    {
        var sorted = buffer.AsSpan(0, edges.Length);
        edges.CopyTo(sorted);
        if (!IsStrictlyAscending(sorted))
        {
            EdgeSet.Sort(sorted);
            sorted = sorted[..Unique(sorted)];
        }
        if (levels <= 1)
        {
            return sorted;
        }
        Span<int> start = stackalloc int[levels + 1];
        start.Clear();
        foreach (var e in sorted)
        {
            start[EdgeLevel(e, nodeTypes, level) + 1]++;
        }
        for (var i = 1; i <= levels; i++)
        {
            start[i] += start[i - 1];
        }
        var output = new ulong[sorted.Length];
        foreach (var e in sorted)
        {
            output[start[EdgeLevel(e, nodeTypes, level)]++] = e;
        }
        output.CopyTo(sorted);
        return sorted;
    }

    private static int EdgeLevel(ulong e, ReadOnlySpan<byte> nodeTypes, ReadOnlySpan<int> level) =>
        Math.Max(level[nodeTypes[EdgeSet.First(e)]], level[nodeTypes[EdgeSet.Second(e)]]);

    /// <summary>Maps each type's rank to a dense level 0 … levels-1 (equal ranks share a level); returns levels.</summary>
    private static int DenseLevels(ReadOnlySpan<IdentifierTypePolicy> policies, Span<int> level)
    {
        Span<int> ranks = stackalloc int[policies.Length];
        for (var t = 0; t < policies.Length; t++)
        {
            ranks[t] = policies[t].Rank;
        }
        ranks.Sort();
        var distinct = ranks.Length == 0 ? 0 : 1;
        for (var i = 1; i < ranks.Length; i++)
        {
            if (ranks[i] != ranks[distinct - 1])
            {
                ranks[distinct++] = ranks[i];
            }
        }
        var unique = ranks[..distinct];
        for (var t = 0; t < policies.Length; t++)
        {
            level[t] = unique.BinarySearch(policies[t].Rank);
        }
        return distinct;
    }

    private static bool IsStrictlyAscending(ReadOnlySpan<ulong> edges)
    {
        for (var i = 1; i < edges.Length; i++)
        {
            if (edges[i] <= edges[i - 1])
            {
                return false;
            }
        }
        return true;
    }

    private static int Unique(Span<ulong> sorted)
    {
        if (sorted.Length == 0)
        {
            return 0;
        }
        var w = 1;
        for (var i = 1; i < sorted.Length; i++)
        {
            if (sorted[i] != sorted[w - 1])
            {
                sorted[w++] = sorted[i];
            }
        }
        return w;
    }

    private static int CountDistinct(ReadOnlySpan<ulong> edges)
    {
        if (IsStrictlyAscending(edges))
        {
            return edges.Length;
        }
        var copy = ArrayPool<ulong>.Shared.Rent(edges.Length);
        try
        {
            var span = copy.AsSpan(0, edges.Length);
            edges.CopyTo(span);
            EdgeSet.Sort(span);
            return Unique(span);
        }
        finally
        {
            ArrayPool<ulong>.Shared.Return(copy);
        }
    }

    [DoesNotReturn]
    private static void ThrowTooManyPolicies(int count) =>
        throw new ArgumentException($"{count} identifier type policies given; type ids are bytes, so at most 256.");

    [DoesNotReturn]
    private static void ThrowUnknownType(byte type) =>
        throw new ArgumentException($"Identifier type {type} has no policy.");

    [DoesNotReturn]
    private static void ThrowBadLimit(int type, int limit) =>
        throw new ArgumentException($"The limit of identifier type {type} is {limit}; it must be between 1 and 65,535.");

    [DoesNotReturn]
    private static void ThrowEdgeOutOfRange(ulong edge, int nodes) =>
        throw new ArgumentException($"Edge ({EdgeSet.First(edge)}, {EdgeSet.Second(edge)}) names an identifier beyond the {nodes} given.");
}
