using System.Diagnostics.CodeAnalysis;

namespace Engine.Identity;

/// <summary>How a previous run's profile id fared in this run (the rows of <c>identity/merges</c>).</summary>
public enum ProfileChangeKind
{
    /// <summary>Its identifiers joined an older profile's: the old id is gone, the surviving (older) id holds them.</summary>
    Merged,

    /// <summary>
    /// Its cluster split, and this part (not the largest) holds some of its identifiers under another id. The old id
    /// lives on in the part that kept it (unless that part itself merged into an older profile: a separate row).
    /// </summary>
    Split,

    /// <summary>None of its identifiers is in any profile any more (all blocklisted, or shared).</summary>
    Retired,
}

/// <summary>One change of a previous profile id.</summary>
/// <param name="OldProfileId">The previous run's id.</param>
/// <param name="NewProfileId">The id now holding (some of) its identifiers; null when retired.</param>
/// <param name="Kind">What happened.</param>
public readonly record struct ProfileChange(long OldProfileId, long? NewProfileId, ProfileChangeKind Kind);

/// <summary>The result of <see cref="ProfileIds.Assign"/>.</summary>
public sealed class ProfileAssignment
{
    internal ProfileAssignment(long[] profileOf, List<ProfileChange> changes, long nextProfileId, int profiles, int kept, int created)
    {
        ProfileOf = profileOf;
        Changes = changes;
        NextProfileId = nextProfileId;
        Profiles = profiles;
        Kept = kept;
        Created = created;
    }

    /// <summary>The profile id of every node; -1 for a node in no profile (an excluded node alone in its cluster).</summary>
    public long[] ProfileOf { get; }

    /// <summary>Merges, splits and retirements, ordered by old id, then kind, then new id.</summary>
    public IReadOnlyList<ProfileChange> Changes { get; }

    /// <summary>The next free profile id after this assignment.</summary>
    public long NextProfileId { get; }

    /// <summary>Profiles (clusters with at least one node in a profile).</summary>
    public int Profiles { get; }

    /// <summary>Profiles that kept a previous id.</summary>
    public int Kept { get; }

    /// <summary>Profiles given a new id.</summary>
    public int Created { get; }
}

/// <summary>
/// Stable profile ids across runs. Ids are positive integers handed out in increasing order, never reused, so a
/// smaller id is an older profile. The rules, applied to the clusters of this run and the ids the previous run gave
/// the same identifiers:
/// <list type="number">
/// <item>Each previous profile's heir is the cluster now holding most of its identifiers (ties: the cluster with the
/// smallest label), so when a cluster splits, the largest part keeps the id.</item>
/// <item>A cluster that is heir to several previous profiles keeps the oldest (smallest) id; the others are recorded
/// as merged into it.</item>
/// <item>A cluster heir to none gets a new id; new ids go to clusters in ascending label order, so the same input gives
/// the same ids.</item>
/// <item>The other parts of a split previous profile are recorded as split from it; a previous profile with no
/// identifier left in any profile is recorded as retired.</item>
/// </list>
/// </summary>
public static class ProfileIds
{
    /// <summary>Assigns profile ids.</summary>
    /// <param name="clusterOf">Per node, its cluster label: the smallest node id in the cluster (<see cref="StitchResult.ClusterOf"/>).</param>
    /// <param name="excluded">A bitset of nodes that hold no profile of their own (shared values): such a node alone in
    /// its cluster gets none; in a cluster with others it shares theirs. Empty for none.</param>
    /// <param name="previous">Per node, the profile id the previous run gave it, or -1 (a new identifier). May be shorter
    /// than <paramref name="clusterOf"/>: nodes past its end are new.</param>
    /// <param name="previousProfiles">A bitset over ids (bit p: profile p existed in the previous run), for retirements.</param>
    /// <param name="nextProfileId">The previous run's next free id (1 on a first run).</param>
    public static ProfileAssignment Assign(
        ReadOnlySpan<int> clusterOf, ReadOnlySpan<ulong> excluded, ReadOnlySpan<long> previous, ReadOnlySpan<ulong> previousProfiles, long nextProfileId)
    {
        var n = clusterOf.Length;
        if (previous.Length > n)
        {
            throw new ArgumentException("more previous ids than nodes", nameof(previous));
        }
        // Cluster sizes counting only the nodes that hold a profile; a cluster of excluded nodes only gets none.
        var members = new int[n];
        for (var i = 0; i < n; i++)
        {
            if (!IsSet(excluded, i))
            {
                members[clusterOf[i]]++;
            }
        }
        var bound = nextProfileId;
        foreach (var p in previous)
        {
            bound = Math.Max(bound, p + 1);
        }
        for (var w = previousProfiles.Length - 1; w >= 0; w--)
        {
            if (previousProfiles[w] != 0)
            {
                bound = Math.Max(bound, (w * 64L) + 64 - System.Numerics.BitOperations.LeadingZeroCount(previousProfiles[w]));
                break;
            }
        }
        if (bound > Array.MaxLength)
        {
            ThrowTooManyIds(bound);
        }
        // heir[p]: the cluster inheriting previous id p (-1: none yet); split marks ids whose identifiers are now in
        // more than one cluster. Almost no id splits, so their per-cluster counts go to a small dictionary.
        var heir = new int[bound];
        heir.AsSpan().Fill(-1);
        var split = new bool[bound];
        var anySplit = false;
        for (var i = 0; i < previous.Length; i++)
        {
            var p = previous[i];
            if (p < 0 || members[clusterOf[i]] == 0)
            {
                continue;
            }
            if (p == 0)
            {
                ThrowBadId();
            }
            var c = clusterOf[i];
            if (heir[p] < 0)
            {
                heir[p] = c;
            }
            else if (heir[p] != c)
            {
                split[p] = true;
                anySplit = true;
            }
        }
        Dictionary<(long Profile, int Cluster), int>? parts = null;
        if (anySplit)
        {
            parts = [];
            for (var i = 0; i < previous.Length; i++)
            {
                var p = previous[i];
                if (p > 0 && split[p] && members[clusterOf[i]] > 0)
                {
                    var key = (p, clusterOf[i]);
                    parts[key] = parts.GetValueOrDefault(key) + 1;
                }
            }
            var best = new Dictionary<long, (int Cluster, int Count)>();
            foreach (var ((p, c), count) in parts)
            {
                if (!best.TryGetValue(p, out var current) || count > current.Count || (count == current.Count && c < current.Cluster))
                {
                    best[p] = (c, count);
                }
            }
            foreach (var (p, (c, _)) in best)
            {
                heir[p] = c;
            }
        }

        // Ascending old ids: the first id a cluster inherits is its oldest, which it keeps; later ones merge into it.
        var keptBy = new long[n];
        keptBy.AsSpan().Fill(-1);
        var changes = new List<ProfileChange>();
        var kept = 0;
        for (long p = 1; p < bound; p++)
        {
            var c = heir[p];
            if (c < 0)
            {
                continue;
            }
            if (keptBy[c] < 0)
            {
                keptBy[c] = p;
                kept++;
            }
            else
            {
                changes.Add(new ProfileChange(p, keptBy[c], ProfileChangeKind.Merged));
            }
        }
        var next = bound;
        var created = 0;
        var profiles = 0;
        for (var c = 0; c < n; c++)
        {
            if (clusterOf[c] != c || members[c] == 0)
            {
                continue;
            }
            profiles++;
            if (keptBy[c] < 0)
            {
                keptBy[c] = next++;
                created++;
            }
        }
        var profileOf = new long[n];
        for (var i = 0; i < n; i++)
        {
            profileOf[i] = members[clusterOf[i]] > 0 ? keptBy[clusterOf[i]] : -1;
        }
        if (parts is not null)
        {
            foreach (var ((p, c), _) in parts)
            {
                if (heir[p] != c)
                {
                    changes.Add(new ProfileChange(p, keptBy[c], ProfileChangeKind.Split));
                }
            }
        }
        for (long p = 1; p < Math.Min(bound, previousProfiles.Length * 64L); p++)
        {
            if (heir[p] < 0 && IsSet(previousProfiles, (int)p))
            {
                changes.Add(new ProfileChange(p, null, ProfileChangeKind.Retired));
            }
        }
        changes.Sort(static (a, b) =>
        {
            var c = a.OldProfileId.CompareTo(b.OldProfileId);
            if (c == 0)
            {
                c = a.Kind.CompareTo(b.Kind);
            }
            return c != 0 ? c : Nullable.Compare(a.NewProfileId, b.NewProfileId);
        });
        return new ProfileAssignment(profileOf, changes, next, profiles, kept, created);
    }

    private static bool IsSet(ReadOnlySpan<ulong> bits, int i) => bits.Length > 0 && (bits[i >> 6] & (1UL << (i & 63))) != 0;

    [DoesNotReturn]
    private static void ThrowTooManyIds(long bound) =>
        throw new EngineException($"profile ids have reached {bound:N0}; the identity output is corrupt or needs a full rebuild with fresh ids");

    [DoesNotReturn]
    private static void ThrowBadId() =>
        throw new EngineException("the previous identity output holds profile id 0; ids start at 1, so it is corrupt");
}
