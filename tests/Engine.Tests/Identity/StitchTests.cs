using CsCheck;
using Engine.Identity;

namespace Engine.Tests.Identity;

/// <summary>
/// The stitcher on random identifier graphs (random types, ranks, limits and edge lists) against a naive reference
/// that keeps each cluster's members explicitly, plus the invariants the reference does not spell out.
/// </summary>
public sealed class StitchTests
{
    public sealed record Graph(byte[] Types, (int A, int B)[] Edges, IdentifierTypePolicy[] Policies)
    {
        /// <summary>Edges an earlier run accepted (indices into <see cref="Edges"/>), united first and unconditionally.</summary>
        public int[] Pinned { get; init; } = [];

        public override string ToString() =>
            $"types [{string.Join(",", Types)}] edges [{string.Join(" ", Edges)}] policies [{string.Join(" ", Policies)}] pinned [{string.Join(",", Pinned)}]";
    }

    internal static Gen<Graph> GenGraph(bool limits, bool shared = false) =>
        Gen.Int[1, 4].SelectMany(typeCount =>
            Gen.Select(Gen.Int[0, 3], limits ? Gen.Int[0, 3] : Gen.Const(0), shared ? Gen.Int[0, 2] : Gen.Const(0),
                    (rank, limit, after) => new IdentifierTypePolicy(rank, limit == 0 ? null : limit, after == 0 ? null : after))
                .Array[typeCount]
                .SelectMany(policies => Gen.Int[1, 40].SelectMany(n =>
                    Gen.Select(
                        Gen.Byte[0, (byte)(typeCount - 1)].Array[n],
                        Gen.Select(Gen.Int[0, n - 1], Gen.Int[0, n - 1]).Array[0, 80],
                        (types, edges) => new Graph(types, edges, policies)))));

    private static ulong[] Packed((int A, int B)[] edges)
    {
        var packed = new ulong[edges.Length];
        for (var i = 0; i < edges.Length; i++)
        {
            packed[i] = EdgeSet.Pack(edges[i].A, edges[i].B);
        }
        return packed;
    }

    internal static StitchResult Stitch(Graph graph)
    {
        var set = new EdgeSet();
        foreach (var (a, b) in graph.Edges)
        {
            set.Add(a, b);
        }
        var pinned = graph.Pinned.Select(i => graph.Edges[i]).Where(e => e.A != e.B).Select(e => EdgeSet.Pack(e.A, e.B)).ToArray();
        return Stitcher.Run(graph.Types, set.Deduplicate(), graph.Policies, pinned);
    }

    /// <summary>
    /// The rule, spelled out: pinned edges united first; then distinct non-self edges by (rank, min, max), and at the
    /// start of each rank, values of guarded types on it whose neighbours of strictly higher priority lie in more than
    /// their threshold of clusters are shared and link nothing; explicit member lists per cluster.
    /// </summary>
    private static (int[] ClusterOf, List<RefusedEdge> Refused, bool[] Shared) Naive(Graph graph)
    {
        var n = graph.Types.Length;
        int RankOf(int node) => graph.Policies[graph.Types[node]].Rank;
        var edges = graph.Edges.Where(e => e.A != e.B).Select(e => (A: Math.Min(e.A, e.B), B: Math.Max(e.A, e.B))).Distinct()
            .OrderBy(e => Math.Max(RankOf(e.A), RankOf(e.B)))
            .ThenBy(e => e.A).ThenBy(e => e.B).ToList();
        var cluster = Enumerable.Range(0, n).ToArray();
        void Merge(int a, int b)
        {
            var from = cluster[b];
            for (var i = 0; i < n; i++)
            {
                if (cluster[i] == from)
                {
                    cluster[i] = cluster[a];
                }
            }
        }
        foreach (var (a, b) in graph.Pinned.Select(i => graph.Edges[i]))
        {
            Merge(a, b);
        }
        var shared = new bool[n];
        var topRank = graph.Policies.Min(p => p.Rank);
        var refused = new List<RefusedEdge>();
        var currentRank = int.MinValue;
        foreach (var (a, b) in edges)
        {
            var rank = Math.Max(RankOf(a), RankOf(b));
            if (rank != currentRank)
            {
                currentRank = rank;
                for (var x = 0; x < n; x++)
                {
                    if (RankOf(x) != rank || rank == topRank || graph.Policies[graph.Types[x]].SharedAfter is not { } after)
                    {
                        continue;
                    }
                    var reached = edges.Where(e => e.A == x || e.B == x).Select(e => e.A == x ? e.B : e.A)
                        .Where(y => RankOf(y) < rank).Select(y => cluster[y]).Distinct().Count();
                    shared[x] = reached > after;
                }
            }
            if (cluster[a] == cluster[b] || shared[a] || shared[b])
            {
                continue;
            }
            var merged = Enumerable.Range(0, n).Where(i => cluster[i] == cluster[a] || cluster[i] == cluster[b]).ToList();
            var broken = -1;
            for (var t = 0; t < graph.Policies.Length && broken < 0; t++)
            {
                if (graph.Policies[t].Limit is { } limit && merged.Count(i => graph.Types[i] == t) > limit)
                {
                    broken = t;
                }
            }
            if (broken >= 0)
            {
                refused.Add(new RefusedEdge(a, b, rank, (byte)broken));
                continue;
            }
            Merge(a, b);
        }
        var clusterOf = new int[n];
        for (var i = 0; i < n; i++)
        {
            clusterOf[i] = Enumerable.Range(0, n).First(j => cluster[j] == cluster[i]);
        }
        return (clusterOf, refused, shared);
    }

    [Fact]
    public void Stitching_equals_the_naive_reference()
    {
        GenGraph(limits: true).Sample(graph =>
        {
            var result = Stitch(graph);
            var (clusterOf, refused, _) = Naive(graph);
            Assert.Equal(clusterOf, result.ClusterOf.ToArray());
            Assert.Equal(refused, result.Refused.ToArray());
            Assert.Equal(clusterOf.Distinct().Count(), result.ClusterCount);
        });
    }

    [Fact]
    public void Stitching_with_shared_values_and_pinned_links_equals_the_naive_reference()
    {
        GenGraph(limits: true, shared: true)
            .SelectMany(graph => Gen.Int[0, graph.Edges.Length].Select(k => graph with { Pinned = [.. Enumerable.Range(0, k)] }))
            .Sample(graph =>
            {
                var result = Stitch(graph);
                var (clusterOf, refused, shared) = Naive(graph);
                Assert.Equal(clusterOf, result.ClusterOf.ToArray());
                Assert.Equal(refused, result.Refused.ToArray());
                Assert.Equal(shared, Enumerable.Range(0, shared.Length).Select(result.IsShared).ToArray());
                for (var t = 0; t < graph.Policies.Length; t++)
                {
                    Assert.Equal(Enumerable.Range(0, shared.Length).Count(i => shared[i] && graph.Types[i] == t), result.SharedPerType[t]);
                }
            });
    }

    [Fact]
    public void Without_limits_clusters_are_the_connected_components()
    {
        GenGraph(limits: false).Sample(graph =>
        {
            var n = graph.Types.Length;
            var adjacent = new List<int>[n];
            for (var i = 0; i < n; i++)
            {
                adjacent[i] = [];
            }
            foreach (var (a, b) in graph.Edges)
            {
                adjacent[a].Add(b);
                adjacent[b].Add(a);
            }
            // Breadth-first search from each unvisited node in ascending order: its component is labelled by it.
            var component = Enumerable.Repeat(-1, n).ToArray();
            for (var s = 0; s < n; s++)
            {
                if (component[s] >= 0)
                {
                    continue;
                }
                var queue = new Queue<int>([s]);
                component[s] = s;
                while (queue.TryDequeue(out var x))
                {
                    foreach (var y in adjacent[x].Where(y => component[y] < 0))
                    {
                        component[y] = s;
                        queue.Enqueue(y);
                    }
                }
            }
            // Unsorted, repeated, self-edges included: the stitcher takes raw packed edges too.
            var result = Stitcher.Run(graph.Types, Packed(graph.Edges.Where(e => e.A != e.B).ToArray()), graph.Policies);
            Assert.Equal(component, result.ClusterOf.ToArray());
            Assert.Empty(result.Refused.ToArray());
        });
    }

    [Fact]
    public void No_cluster_exceeds_a_limit_and_every_refusal_would_still_break_one()
    {
        GenGraph(limits: true).Sample(graph =>
        {
            var result = Stitch(graph);
            var clusterOf = result.ClusterOf.ToArray();
            int CountIn(int cluster, int type) => Enumerable.Range(0, clusterOf.Length).Count(i => clusterOf[i] == cluster && graph.Types[i] == type);
            for (var t = 0; t < graph.Policies.Length; t++)
            {
                if (graph.Policies[t].Limit is { } limit)
                {
                    foreach (var cluster in clusterOf.Distinct())
                    {
                        Assert.True(CountIn(cluster, t) <= limit, $"cluster {cluster} holds more than {limit} of type {t}");
                    }
                }
            }
            // Replay: clusters only grow, so a union refused when processed still breaks the same limit at the end.
            foreach (var refused in result.Refused)
            {
                var ca = clusterOf[refused.First];
                var cb = clusterOf[refused.Second];
                Assert.NotEqual(ca, cb);
                var limit = graph.Policies[refused.LimitedType].Limit!.Value;
                Assert.True(CountIn(ca, refused.LimitedType) + CountIn(cb, refused.LimitedType) > limit);
                var rank = Math.Max(graph.Policies[graph.Types[refused.First]].Rank, graph.Policies[graph.Types[refused.Second]].Rank);
                Assert.Equal(rank, refused.Rank);
            }
            Assert.True(result.Unions + result.Refused.Length <= result.Edges);
        });
    }

    [Fact]
    public void Shuffling_reversing_and_repeating_edges_changes_nothing()
    {
        Gen.Select(GenGraph(limits: true), Gen.Int).Sample((graph, seed) =>
        {
            var expected = Stitch(graph);
            var random = new Random(seed);
            var edges = graph.Edges.Concat(graph.Edges.Where(_ => random.Next(3) == 0))
                .Select(e => random.Next(2) == 0 ? e : (A: e.B, B: e.A)).ToArray();
            random.Shuffle(edges);
            var shuffled = graph with { Edges = edges };
            var fromSet = Stitch(shuffled);
            var fromRaw = Stitcher.Run(graph.Types, Packed(edges.Where(e => e.A != e.B).ToArray()), graph.Policies);
            foreach (var actual in new[] { fromSet, fromRaw })
            {
                Assert.Equal(expected.ClusterOf.ToArray(), actual.ClusterOf.ToArray());
                Assert.Equal(expected.Refused.ToArray(), actual.Refused.ToArray());
                Assert.Equal(expected.Edges, actual.Edges);
                Assert.Equal(expected.Unions, actual.Unions);
            }
        });
    }

    private const byte Customer = 0;
    private const byte Email = 1;
    private const byte Anonymous = 2;

    private static readonly IdentifierTypePolicy[] SegmentLike =
    [
        new(Rank: 0, Limit: 1), // customer_id
        new(Rank: 1, Limit: null), // email
        new(Rank: 2, Limit: null), // anonymous_id
    ];

    [Fact]
    public void Two_customer_ids_through_one_email_keep_the_first_link_and_refuse_the_second()
    {
        // Ids: c1 = 0, c2 = 1, e = 2. Both links rank as email; the tie goes by edge order, so (c2, e) loses.
        byte[] types = [Customer, Customer, Email];
        var result = Stitcher.Run(types, [EdgeSet.Pack(2, 1), EdgeSet.Pack(2, 0)], SegmentLike);
        Assert.Equal([0, 1, 0], result.ClusterOf.ToArray());
        Assert.Equal([new RefusedEdge(1, 2, 1, Customer)], result.Refused.ToArray());
        Assert.Equal(1, result.Unions);
    }

    [Fact]
    public void The_lower_priority_link_loses_even_when_it_arrives_first()
    {
        // a = 0, c2 = 1, c1 = 2, e = 3: ids chosen so that edge order alone would process the anonymous links first,
        // joining c2, a and e, and then refuse the trusted email-customer link (c1, e). By priority (c1, e) goes first
        // and the anonymous link (a, e) is the one refused.
        byte[] types = [Anonymous, Customer, Customer, Email];
        var result = Stitcher.Run(types, [EdgeSet.Pack(0, 1), EdgeSet.Pack(0, 3), EdgeSet.Pack(2, 3)], SegmentLike);
        Assert.Equal([0, 0, 2, 2], result.ClusterOf.ToArray());
        Assert.Equal([new RefusedEdge(0, 3, 2, Customer)], result.Refused.ToArray());
    }

    [Fact]
    public void Bad_input_is_rejected()
    {
        byte[] types = [Customer, Email];
        Assert.Throws<ArgumentException>(() => Stitcher.Run([5], [], SegmentLike));
        Assert.Throws<ArgumentException>(() => Stitcher.Run(types, [EdgeSet.Pack(0, 2)], SegmentLike));
        Assert.Throws<ArgumentException>(() => Stitcher.Run(types, [EdgeSet.Pack(1, 1)], SegmentLike));
        Assert.Throws<ArgumentException>(() => Stitcher.Run(types, [(1UL << 32) | 0], SegmentLike));
        Assert.Throws<ArgumentException>(() => Stitcher.Run(types, [uint.MaxValue], SegmentLike));
        Assert.Throws<ArgumentException>(() => Stitcher.Run(types, [], [new(0, 0), new(1, null)]));
    }
}
