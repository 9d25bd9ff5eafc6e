using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

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
    private readonly List<RefusedEdge> _refused;

    internal StitchResult(int[] clusterOf, int clusterCount, List<RefusedEdge> refused, int edges, int unions)
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
    public ReadOnlySpan<RefusedEdge> Refused => CollectionsMarshal.AsSpan(_refused);

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
    // Two-stage software pipeline over the edges: at PrefetchDistance ahead the endpoints' parent entries are
    // prefetched; at half that distance, by which time they have arrived, the parents are read and the next hop
    // (usually the root, whose entry and limit counts the union will touch) is prefetched. Random dependent reads
    // cost 160-340 ns here, so one stage alone leaves the root hop exposed.
    private const int PrefetchDistance = 32;
    private const int SecondStage = PrefetchDistance / 2;

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
        Span<int> rankOfLevel = stackalloc int[256];
        Span<int> slotOf = stackalloc int[256];
        var limits = new int[policies.Length];
        var limitedTypes = new byte[policies.Length];
        var levels = DenseLevels(policies, level, rankOfLevel);
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
            // Unsigned: an id of 2^31 or more must not pass as negative; and the smaller id must come first, as Pack puts it.
            if ((uint)EdgeSet.Second(e) >= (uint)n || EdgeSet.First(e) >= EdgeSet.Second(e))
            {
                ThrowBadEdge(e, n);
            }
        }

        int distinct, unions;
        List<RefusedEdge> refused;
        if (k == 0)
        {
            // No limits: the partition is the connected components, which no order or repeat can change; skip sorting.
            unions = UnionAll(unionFind, edges);
            distinct = CountDistinct(edges);
            refused = [];
        }
        else
        {
            (distinct, unions, refused) = StitchWithLimits(
                unionFind, edges, nodeTypes, level[..policies.Length], rankOfLevel[..levels], slotOf[..policies.Length], limits.AsSpan(0, k), limitedTypes);
        }

        var clusterOf = new int[n];
        var clusters = unionFind.Label(clusterOf);
        return new StitchResult(clusterOf, clusters, refused, distinct, unions);
    }

    /// <summary>First prefetch stage: the endpoints' parent slots of the edge at <paramref name="index"/>, if any.</summary>
    private static void PrefetchEndpoints(UnionFind unionFind, ReadOnlySpan<ulong> edges, int index)
    {
        if (index < edges.Length)
        {
            var ahead = edges[index];
            unionFind.Prefetch(EdgeSet.First(ahead));
            unionFind.Prefetch(EdgeSet.Second(ahead));
        }
    }

    private static int UnionAll(UnionFind unionFind, ReadOnlySpan<ulong> edges)
    {
        var unions = 0;
        for (var i = 0; i < edges.Length; i++)
        {
            PrefetchEndpoints(unionFind, edges, i + PrefetchDistance);
            if (i + SecondStage < edges.Length)
            {
                var ahead = edges[i + SecondStage];
                unionFind.PrefetchParent(EdgeSet.First(ahead));
                unionFind.PrefetchParent(EdgeSet.Second(ahead));
            }
            var e = edges[i];
            unions += unionFind.Union(EdgeSet.First(e), EdgeSet.Second(e)) ? 1 : 0;
        }
        return unions;
    }

    /// <summary>
    /// Orders the distinct edges by (priority level, packed value) — a radix sort by packed value unless they come
    /// sorted, then a stable counting sort by level — and unites them level by level under the limits.
    /// </summary>
    private static (int Distinct, int Unions, List<RefusedEdge> Refused) StitchWithLimits(
        UnionFind unionFind, ReadOnlySpan<ulong> edges, ReadOnlySpan<byte> nodeTypes, ReadOnlySpan<int> level,
        ReadOnlySpan<int> rankOfLevel, ReadOnlySpan<int> slotOf, ReadOnlySpan<int> limits, byte[] limitedTypes)
    {
        ulong[]? sortedArray = null, orderedArray = null;
        byte[]? edgeLevelArray = null;
        try
        {
            var sorted = edges;
            if (!IsStrictlyAscending(edges))
            {
                sortedArray = ArrayPool<ulong>.Shared.Rent(edges.Length);
                var span = sortedArray.AsSpan(0, edges.Length);
                edges.CopyTo(span);
                EdgeSet.Sort(span);
                sorted = span[..Unique(span)];
            }
            var levels = rankOfLevel.Length;
            Span<int> start = stackalloc int[levels + 1];
            start.Clear();
            var ordered = sorted;
            if (levels <= 1)
            {
                start[^1] = sorted.Length;
            }
            else
            {
                // Each edge's level computed once (one random read of each endpoint's type), then a stable scatter.
                edgeLevelArray = ArrayPool<byte>.Shared.Rent(sorted.Length);
                var edgeLevel = edgeLevelArray.AsSpan(0, sorted.Length);
                for (var i = 0; i < sorted.Length; i++)
                {
                    var e = sorted[i];
                    var l = Math.Max(level[nodeTypes[EdgeSet.First(e)]], level[nodeTypes[EdgeSet.Second(e)]]);
                    edgeLevel[i] = (byte)l;
                    start[l + 1]++;
                }
                for (var l = 1; l <= levels; l++)
                {
                    start[l] += start[l - 1];
                }
                orderedArray = ArrayPool<ulong>.Shared.Rent(sorted.Length);
                var output = orderedArray.AsSpan(0, sorted.Length);
                Span<int> next = stackalloc int[levels];
                start[..levels].CopyTo(next);
                for (var i = 0; i < sorted.Length; i++)
                {
                    output[next[edgeLevel[i]]++] = sorted[i];
                }
                ordered = output;
            }

            var k = limits.Length;
            // counts[root * k + j]: identifiers of the j-th limited type in root's cluster. Never above its limit (a
            // union that would exceed it is refused), so 16 bits suffice; only meaningful at roots.
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
            for (var l = 0; l < levels; l++)
            {
                unions += UniteLevel(unionFind, ordered[start[l]..start[l + 1]], rankOfLevel[l], counts, limits, limitedTypes, refused);
            }
            return (sorted.Length, unions, refused); // no copy: the result exposes the list's span
        }
        finally
        {
            if (sortedArray is not null)
            {
                ArrayPool<ulong>.Shared.Return(sortedArray);
            }
            if (orderedArray is not null)
            {
                ArrayPool<ulong>.Shared.Return(orderedArray);
            }
            if (edgeLevelArray is not null)
            {
                ArrayPool<byte>.Shared.Return(edgeLevelArray);
            }
        }
    }

    /// <summary>Unites the edges of one priority level in order, refusing any union that would break a limit.</summary>
    private static int UniteLevel(
        UnionFind unionFind, ReadOnlySpan<ulong> edges, int rank, ushort[] counts, ReadOnlySpan<int> limits,
        byte[] limitedTypes, List<RefusedEdge> refused)
    {
        var k = limits.Length;
        var unions = 0;
        for (var i = 0; i < edges.Length; i++)
        {
            PrefetchEndpoints(unionFind, edges, i + PrefetchDistance);
            if (i + SecondStage < edges.Length)
            {
                // The parents have arrived: prefetch the next hop and its limit counts (at a root, the ones read below).
                var ahead = edges[i + SecondStage];
                var pa = unionFind.PrefetchParent(EdgeSet.First(ahead));
                var pb = unionFind.PrefetchParent(EdgeSet.Second(ahead));
                Prefetch(counts, pa * k);
                Prefetch(counts, pb * k);
            }
            var e = edges[i];
            var ra = unionFind.Find(EdgeSet.First(e));
            var rb = unionFind.Find(EdgeSet.Second(e));
            if (ra == rb)
            {
                continue;
            }
            var ca = counts.AsSpan(ra * k, k);
            var cb = counts.AsSpan(rb * k, k);
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
                refused.Add(new RefusedEdge(EdgeSet.First(e), EdgeSet.Second(e), rank, limitedTypes[broken]));
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
        return unions;
    }

    private static unsafe void Prefetch(ushort[] array, int index)
    {
        if (Sse.IsSupported)
        {
            fixed (ushort* p = &array[index])
            {
                Sse.Prefetch0(p);
            }
        }
    }

    /// <summary>Maps each type's rank to a dense level 0 … levels-1 (equal ranks share a level); returns levels.</summary>
    private static int DenseLevels(ReadOnlySpan<IdentifierTypePolicy> policies, Span<int> level, Span<int> rankOfLevel)
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
        unique.CopyTo(rankOfLevel);
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
    private static void ThrowBadEdge(ulong edge, int nodes) =>
        throw new ArgumentException($"Edge ({EdgeSet.First(edge)}, {(uint)EdgeSet.Second(edge)}) is not a packed edge between two of the {nodes} identifiers given (EdgeSet.Pack, no self-edges).");
}
