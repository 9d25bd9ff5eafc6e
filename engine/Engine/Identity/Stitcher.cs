using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace Engine.Identity;

/// <summary>How one identifier type takes part in stitching.</summary>
/// <param name="Rank">Priority: 0 is the most trusted; a larger number is a lower priority. Types may share a rank.</param>
/// <param name="Limit">The most identifiers of this type one profile may hold (1 … 65,535), or null for no limit.</param>
/// <param name="SharedAfter">
/// A value of this type linked to more than this many distinct clusters of higher-priority identifiers (as stitched
/// when this type's links come up) is shared: none of its links is used. Null: never shared.
/// </param>
public readonly record struct IdentifierTypePolicy(int Rank, int? Limit, int? SharedAfter = null);

/// <summary>
/// An edge that stitching refused because joining its two clusters would have put more than
/// <see cref="IdentifierTypePolicy.Limit"/> identifiers of <see cref="LimitedType"/> into one profile.
/// </summary>
/// <param name="First">The smaller endpoint id.</param>
/// <param name="Second">The larger endpoint id.</param>
/// <param name="Rank">The edge's priority: the larger (less trusted) rank of its two endpoint types.</param>
/// <param name="LimitedType">The type whose limit the union would have broken (the lowest such type id).</param>
public readonly record struct RefusedEdge(int First, int Second, int Rank, byte LimitedType);

/// <summary>The outcome of <see cref="Stitcher.Run(ReadOnlySpan{byte}, ReadOnlySpan{ulong}, ReadOnlySpan{IdentifierTypePolicy})"/>.</summary>
public sealed class StitchResult
{
    private readonly int[] _clusterOf;
    private readonly List<RefusedEdge> _refused;
    private readonly ulong[] _shared;

    internal StitchResult(int[] clusterOf, int clusterCount, List<RefusedEdge> refused, int edges, int unions, ulong[] shared, long[] sharedPerType)
    {
        _shared = shared;
        SharedPerType = sharedPerType;
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

    /// <summary>
    /// The shared values, a bitset over identifier ids (bit i of word i / 64); empty when no type is guarded. No link
    /// touching a shared value was used, except links pinned by an earlier run.
    /// </summary>
    public ReadOnlySpan<ulong> Shared => _shared;

    /// <summary>Whether identifier <paramref name="id"/> was found shared.</summary>
    public bool IsShared(int id) => _shared.Length > 0 && (_shared[id >> 6] & (1UL << (id & 63))) != 0;

    /// <summary>Shared values found, per type id.</summary>
    public IReadOnlyList<long> SharedPerType { get; }

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
        => Run(nodeTypes, edges, policies, []);

    /// <summary>
    /// Like <see cref="Run(ReadOnlySpan{byte}, ReadOnlySpan{ulong}, ReadOnlySpan{IdentifierTypePolicy})"/>, after first
    /// uniting <paramref name="pinned"/> unconditionally: the links an earlier run accepted, which an incremental run
    /// keeps (they met the same limits then), so that new edges are judged against the clusters they made.
    /// </summary>
    public static StitchResult Run(ReadOnlySpan<byte> nodeTypes, ReadOnlySpan<ulong> edges, ReadOnlySpan<IdentifierTypePolicy> policies, ReadOnlySpan<ulong> pinned)
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
        var sharedAfter = new int[policies.Length];
        var guarded = false;
        for (var t = 0; t < policies.Length; t++)
        {
            if (policies[t].SharedAfter is { } after)
            {
                if (after < 1)
                {
                    ThrowBadSharedAfter(t, after);
                }
                // A type on the top level has no higher-priority type to count: it can never be shared.
                sharedAfter[t] = level[t] > 0 ? after : 0;
                guarded |= level[t] > 0;
            }
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
        CheckEdges(edges, n);
        CheckEdges(pinned, n);
        var pinnedUnions = UnionAll(unionFind, pinned);

        int distinct, unions;
        List<RefusedEdge> refused;
        var shared = guarded ? new ulong[(n + 63) / 64] : [];
        var sharedPerType = new long[policies.Length];
        if (k == 0 && !guarded)
        {
            // No limits: the partition is the connected components, which no order or repeat can change; skip sorting.
            unions = UnionAll(unionFind, edges);
            distinct = CountDistinct(edges);
            refused = [];
        }
        else
        {
            (distinct, unions, refused) = StitchInOrder(
                unionFind, edges, nodeTypes, level[..policies.Length], rankOfLevel[..levels], slotOf[..policies.Length], limits.AsSpan(0, k), limitedTypes,
                sharedAfter, shared, sharedPerType);
        }

        var clusterOf = new int[n];
        var clusters = unionFind.Label(clusterOf);
        return new StitchResult(clusterOf, clusters, refused, distinct, unions + pinnedUnions, shared, sharedPerType);
    }

    private static void CheckEdges(ReadOnlySpan<ulong> edges, int n)
    {
        foreach (var e in edges)
        {
            // Unsigned: an id of 2^31 or more must not pass as negative; and the smaller id must come first, as Pack puts it.
            if ((uint)EdgeSet.Second(e) >= (uint)n || EdgeSet.First(e) >= EdgeSet.Second(e))
            {
                ThrowBadEdge(e, n);
            }
        }
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
    /// sorted, then a stable counting sort by level — and unites them level by level under the limits. Before each
    /// level, the values of guarded types on that level are checked for sharing against the clusters the higher
    /// levels made (see <see cref="DetectShared"/>).
    /// </summary>
    private static (int Distinct, int Unions, List<RefusedEdge> Refused) StitchInOrder(
        UnionFind unionFind, ReadOnlySpan<ulong> edges, ReadOnlySpan<byte> nodeTypes, ReadOnlySpan<int> level,
        ReadOnlySpan<int> rankOfLevel, ReadOnlySpan<int> slotOf, ReadOnlySpan<int> limits, byte[] limitedTypes,
        int[] sharedAfter, ulong[] shared, long[] sharedPerType)
    {
        ulong[]? sortedArray = null, orderedArray = null;
        byte[]? edgeLevelArray = null;
        try
        {
            var sorted = edges;
            if (!IsStrictlyAscending(edges))
            {
                sortedArray = Scratch.Rent<ulong>(edges.Length);
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
                edgeLevelArray = Scratch.Rent<byte>(sorted.Length);
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
                orderedArray = Scratch.Rent<ulong>(sorted.Length);
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
                    // Pinned unions came first: count each identifier at its root (saturating; pinned clusters met the
                    // limits when they were made, so this only guards against a corrupt previous graph).
                    var root = unionFind.Find(i);
                    ref var count = ref counts[(long)root * k + slot];
                    count = (ushort)Math.Min(count + 1, ushort.MaxValue);
                }
            }
            var refused = new List<RefusedEdge>();
            var unions = 0;
            for (var l = 0; l < levels; l++)
            {
                var levelEdges = ordered[start[l]..start[l + 1]];
                if (shared.Length > 0)
                {
                    DetectShared(unionFind, levelEdges, nodeTypes, level, l, sharedAfter, shared, sharedPerType);
                }
                unions += UniteLevel(unionFind, levelEdges, rankOfLevel[l], counts, limits, limitedTypes, refused, shared);
            }
            return (sorted.Length, unions, refused); // no copy: the result exposes the list's span
        }
        finally
        {
            if (sortedArray is not null)
            {
                Scratch.Return(sortedArray);
            }
            if (orderedArray is not null)
            {
                Scratch.Return(orderedArray);
            }
            if (edgeLevelArray is not null)
            {
                Scratch.Return(edgeLevelArray);
            }
        }
    }

    /// <summary>
    /// Marks the shared values among the guarded types on level <paramref name="l"/>: a value is shared when its links
    /// on this level reach more than its type's threshold of distinct clusters of higher-priority identifiers. Counting
    /// clusters rather than values is what tells a family address (two customers, two people) from a duplicate CRM
    /// record (two customer ids that higher-priority links, such as name and postcode, already made one person), and a
    /// household tablet (several people) from one person's cookie seen with their customer id and their email.
    /// </summary>
    private static void DetectShared(
        UnionFind unionFind, ReadOnlySpan<ulong> edges, ReadOnlySpan<byte> nodeTypes, ReadOnlySpan<int> level, int l,
        int[] sharedAfter, ulong[] shared, long[] sharedPerType)
    {
        var any = false;
        for (var t = 0; t < sharedAfter.Length; t++)
        {
            any |= sharedAfter[t] > 0 && level[t] == l;
        }
        if (!any)
        {
            return;
        }
        // (value, root of a higher-priority neighbour) pairs, sorted, then distinct roots counted per value.
        var rented = Scratch.Rent<ulong>(Math.Max(1, edges.Length));
        try
        {
            var pairs = rented.AsSpan(0, edges.Length);
            var count = 0;
            foreach (var e in edges)
            {
                var a = EdgeSet.First(e);
                var b = EdgeSet.Second(e);
                int ta = nodeTypes[a], tb = nodeTypes[b];
                if (sharedAfter[ta] > 0 && level[ta] == l && level[tb] < l)
                {
                    pairs[count++] = ((ulong)(uint)a << 32) | (uint)unionFind.Find(b);
                }
                else if (sharedAfter[tb] > 0 && level[tb] == l && level[ta] < l)
                {
                    pairs[count++] = ((ulong)(uint)b << 32) | (uint)unionFind.Find(a);
                }
            }
            pairs = pairs[..count];
            EdgeSet.Sort(pairs);
            var i = 0;
            while (i < pairs.Length)
            {
                var value = (int)(pairs[i] >> 32);
                var distinct = 0;
                var last = ulong.MaxValue;
                for (; i < pairs.Length && (int)(pairs[i] >> 32) == value; i++)
                {
                    if (pairs[i] != last)
                    {
                        distinct++;
                        last = pairs[i];
                    }
                }
                var type = nodeTypes[value];
                if (distinct > sharedAfter[type])
                {
                    shared[value >> 6] |= 1UL << (value & 63);
                    sharedPerType[type]++;
                }
            }
        }
        finally
        {
            Scratch.Return(rented);
        }
    }

    /// <summary>
    /// Unites the edges of one priority level in order, refusing any union that would break a limit and skipping
    /// edges that touch a shared value.
    /// </summary>
    private static int UniteLevel(
        UnionFind unionFind, ReadOnlySpan<ulong> edges, int rank, ushort[] counts, ReadOnlySpan<int> limits,
        byte[] limitedTypes, List<RefusedEdge> refused, ulong[] shared)
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
                if (k > 0)
                {
                    Prefetch(counts, pa * k);
                    Prefetch(counts, pb * k);
                }
            }
            var e = edges[i];
            if (shared.Length > 0 && (IsSet(shared, EdgeSet.First(e)) || IsSet(shared, EdgeSet.Second(e))))
            {
                continue;
            }
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
        var copy = Scratch.Rent<ulong>(edges.Length);
        try
        {
            var span = copy.AsSpan(0, edges.Length);
            edges.CopyTo(span);
            EdgeSet.Sort(span);
            return Unique(span);
        }
        finally
        {
            Scratch.Return(copy);
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

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool IsSet(ulong[] bits, int i) => (bits[i >> 6] & (1UL << (i & 63))) != 0;

    [DoesNotReturn]
    private static void ThrowBadSharedAfter(int type, int after) =>
        throw new ArgumentException($"The shared-value threshold of identifier type {type} is {after}; it must be at least 1.");

    [DoesNotReturn]
    private static void ThrowBadEdge(ulong edge, int nodes) =>
        throw new ArgumentException($"Edge ({EdgeSet.First(edge)}, {(uint)EdgeSet.Second(edge)}) is not a packed edge between two of the {nodes} identifiers given (EdgeSet.Pack, no self-edges).");
}
