using CsCheck;
using Engine.Identity;

namespace Engine.Tests.Identity;

/// <summary>
/// Property tests of stable profile ids: <see cref="ProfileIds.Assign"/> on random clusterings, and whole runs —
/// a first run, an incremental run with new links, a full rebuild — on random graphs with limits and shared values.
/// </summary>
public sealed class ProfileIdPropertyTests
{
    public sealed record Clustering(int[] Previous, int[] Current, bool[] Excluded, long[] PreviousIds)
    {
        public override string ToString() =>
            $"previous [{string.Join(",", Previous)}] current [{string.Join(",", Current)}] excluded [{string.Join(",", Excluded.Select(e => e ? 1 : 0))}] ids [{string.Join(",", PreviousIds)}]";
    }

    /// <summary>Random previous and current partitions of n nodes (previous -1: a new node), excluded nodes, previous ids.</summary>
    private static readonly Gen<Clustering> GenClustering =
        Gen.Int[1, 30].SelectMany(n => Gen.Select(
            Gen.Int[-1, 5].Array[n],
            Gen.Int[0, 6].Array[n],
            Gen.Int[0, 9].Select(x => x == 0).Array[n],
            Gen.Long[1, 1000].ArrayUnique[7],
            (previous, current, excluded, ids) => new Clustering(previous, current, excluded, ids)));

    /// <summary>Labels as <see cref="StitchResult.ClusterOf"/> gives them: the smallest node of each cluster.</summary>
    private static int[] Canonical(int[] groups) => [.. groups.Select(g => Array.IndexOf(groups, g))];

    private static ulong[] Bits(bool[] flags)
    {
        var bits = new ulong[(flags.Length + 63) / 64];
        for (var i = 0; i < flags.Length; i++)
        {
            if (flags[i])
            {
                bits[i >> 6] |= 1UL << (i & 63);
            }
        }
        return bits;
    }

    private static ulong[] ProfileBits(IEnumerable<long> ids)
    {
        var list = ids.Where(id => id > 0).ToList();
        var bits = new ulong[list.Count == 0 ? 0 : (list.Max() / 64) + 1];
        foreach (var id in list)
        {
            bits[id >> 6] |= 1UL << (int)(id & 63);
        }
        return bits;
    }

    [Fact]
    public void Assigned_ids_follow_the_rules_on_any_clustering()
    {
        GenClustering.Sample(c =>
        {
            var n = c.Current.Length;
            var clusterOf = Canonical(c.Current);
            var previous = c.Previous.Select(g => g < 0 ? -1L : c.PreviousIds[g]).ToArray();
            var next = c.PreviousIds.Max() + 1;
            var result = ProfileIds.Assign(clusterOf, Bits(c.Excluded), previous, ProfileBits(previous), next);
            var profileOf = result.ProfileOf;

            // One id per cluster, distinct across clusters; a cluster of excluded nodes only has none.
            var inProfile = Enumerable.Range(0, n).Where(i => Enumerable.Range(0, n).Any(j => clusterOf[j] == clusterOf[i] && !c.Excluded[j])).ToHashSet();
            for (var i = 0; i < n; i++)
            {
                Assert.Equal(inProfile.Contains(i), profileOf[i] > 0);
                for (var j = 0; j < n; j++)
                {
                    if (inProfile.Contains(i) && inProfile.Contains(j))
                    {
                        Assert.Equal(clusterOf[i] == clusterOf[j], profileOf[i] == profileOf[j]);
                    }
                }
            }
            var ids = inProfile.Select(i => profileOf[i]).Distinct().ToList();
            Assert.Equal(result.Profiles, ids.Count);
            Assert.Equal(result.Profiles, result.Kept + result.Created);
            var previousIds = previous.Where(p => p > 0).ToHashSet();
            Assert.All(ids.Where(id => !previousIds.Contains(id)), id => Assert.True(id >= next));
            Assert.True(result.NextProfileId > ids.DefaultIfEmpty(0).Max());

            // Each previous id: kept by the cluster holding the largest part of it, the oldest id winning there.
            foreach (var p in previousIds)
            {
                var parts = inProfile.Where(i => previous[i] == p).GroupBy(i => clusterOf[i]).ToDictionary(g => g.Key, g => g.Count());
                var changes = result.Changes.Where(ch => ch.OldProfileId == p).ToList();
                if (parts.Count == 0)
                {
                    Assert.Equal([new ProfileChange(p, null, ProfileChangeKind.Retired)], changes);
                    continue;
                }
                var heir = parts.OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key).First().Key;
                var heirId = profileOf[heir];
                var claimants = previousIds.Where(q => inProfile.Where(i => previous[i] == q).GroupBy(i => clusterOf[i])
                    .OrderByDescending(g => g.Count()).ThenBy(g => g.Key).Select(g => g.Key).DefaultIfEmpty(-1).First() == heir).ToList();
                Assert.Equal(claimants.Min(), heirId);
                if (heirId != p)
                {
                    Assert.Contains(new ProfileChange(p, heirId, ProfileChangeKind.Merged), changes);
                    Assert.True(heirId < p, "a merge keeps the oldest id");
                }
                foreach (var other in parts.Keys.Where(k => k != heir))
                {
                    Assert.Contains(new ProfileChange(p, profileOf[other], ProfileChangeKind.Split), changes);
                }
                Assert.Equal((heirId != p ? 1 : 0) + parts.Count - 1, changes.Count);
            }
        });
    }

    /// <summary>
    /// Three runs on a random graph: the first on a prefix of the edges; an incremental one that pins the links the
    /// first accepted and adds the rest; a full rebuild of everything that takes its ids from the incremental run.
    /// </summary>
    [Fact]
    public void Incremental_runs_never_split_keep_limits_and_keep_ids_and_full_rebuilds_keep_the_rules()
    {
        StitchTests.GenGraph(limits: true, shared: true)
            .SelectMany(graph => Gen.Int[0, graph.Edges.Length].Select(h => (graph, h)))
            .Sample(sample =>
            {
                var (graph, h) = sample;
                var n = graph.Types.Length;
                var history = graph with { Edges = graph.Edges[..h] };
                var first = StitchTests.Stitch(history);
                var firstIds = ProfileIds.Assign(first.ClusterOf, first.Shared, [], [], 1);

                // The links the first run accepted: not refused, no shared end, not a self-edge.
                var refused = first.Refused.ToArray().Select(r => (r.First, r.Second)).ToHashSet();
                var accepted = Enumerable.Range(0, h).Where(i =>
                {
                    var (a, b) = graph.Edges[i];
                    return a != b && !first.IsShared(a) && !first.IsShared(b) && !refused.Contains((Math.Min(a, b), Math.Max(a, b)));
                }).ToArray();
                var second = StitchTests.Stitch(graph with { Pinned = accepted });
                var secondIds = ProfileIds.Assign(second.ClusterOf, second.Shared, firstIds.ProfileOf, ProfileBits(firstIds.ProfileOf), firstIds.NextProfileId);

                // No split: what one profile held, one profile still holds.
                for (var i = 0; i < n; i++)
                {
                    for (var j = 0; j < n; j++)
                    {
                        if (first.ClusterOf[i] == first.ClusterOf[j])
                        {
                            Assert.Equal(second.ClusterOf[i], second.ClusterOf[j]);
                        }
                    }
                }
                AssertWithinLimits(graph, second);
                // Each profile's id: the oldest id its members had, or a new one; nothing ever splits.
                foreach (var cluster in Enumerable.Range(0, n).Where(i => secondIds.ProfileOf[i] > 0).GroupBy(i => second.ClusterOf[i]))
                {
                    var before = cluster.Select(i => firstIds.ProfileOf[i]).Where(p => p > 0).Distinct().ToList();
                    var id = secondIds.ProfileOf[cluster.First()];
                    Assert.Equal(before.Count == 0 ? id : before.Min(), id);
                    if (before.Count == 0)
                    {
                        Assert.True(id >= firstIds.NextProfileId);
                    }
                }
                Assert.DoesNotContain(secondIds.Changes, ch => ch.Kind == ProfileChangeKind.Split);
                Assert.All(secondIds.Changes.Where(ch => ch.Kind == ProfileChangeKind.Merged), ch => Assert.True(ch.NewProfileId < ch.OldProfileId));

                // The full rebuild: limits hold, and every id it keeps comes from the run before.
                var third = StitchTests.Stitch(graph);
                var thirdIds = ProfileIds.Assign(third.ClusterOf, third.Shared, secondIds.ProfileOf, ProfileBits(secondIds.ProfileOf), secondIds.NextProfileId);
                AssertWithinLimits(graph, third);
                var kept = Enumerable.Range(0, n).Where(i => thirdIds.ProfileOf[i] > 0 && thirdIds.ProfileOf[i] < secondIds.NextProfileId).Select(i => thirdIds.ProfileOf[i]);
                Assert.All(kept, id => Assert.Contains(id, secondIds.ProfileOf));
                // A rebuild of what was built without pins is the same graph: same clusters, same ids.
                if (accepted.Length == 0)
                {
                    Assert.Equal(second.ClusterOf.ToArray(), third.ClusterOf.ToArray());
                    Assert.Equal(secondIds.ProfileOf, thirdIds.ProfileOf);
                }
            });
    }

    private static void AssertWithinLimits(StitchTests.Graph graph, StitchResult result)
    {
        var clusterOf = result.ClusterOf.ToArray();
        for (var t = 0; t < graph.Policies.Length; t++)
        {
            if (graph.Policies[t].Limit is { } limit)
            {
                foreach (var group in Enumerable.Range(0, clusterOf.Length).Where(i => graph.Types[i] == t).GroupBy(i => clusterOf[i]))
                {
                    Assert.True(group.Count() <= limit, $"a profile holds {group.Count()} identifiers of type {t}, limit {limit}");
                }
            }
        }
    }
}
