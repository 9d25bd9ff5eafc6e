using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;

namespace Engine.Identity;

/// <summary>
/// Disjoint sets over the dense ids 0 … <c>Count - 1</c>: <see cref="Find"/> with path halving (every node on the
/// walk is pointed at its grandparent, one pass, no recursion), <see cref="Union"/> by size. Ties in size go to the
/// smaller root id, so the roots depend only on the order of the unions, never on timing. One int per element: a root
/// holds minus its set's size where a child holds its parent, so the size read by a union is in the same cache line
/// as the root the find just reached, not a second random read.
/// </summary>
public sealed class UnionFind
{
    private readonly int[] _parent;

    /// <summary>Creates <paramref name="count"/> singleton sets.</summary>
    public UnionFind(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        _parent = GC.AllocateUninitializedArray<int>(count);
        _parent.AsSpan().Fill(-1);
    }

    /// <summary>The number of elements.</summary>
    public int Count => _parent.Length;

    /// <summary>The root of <paramref name="x"/>'s set, halving the path on the way.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Find(int x)
    {
        var parent = _parent;
        while (true)
        {
            var p = parent[x];
            if (p < 0)
            {
                return x;
            }
            var grand = parent[p];
            if (grand < 0)
            {
                return p;
            }
            parent[x] = grand;
            x = grand;
        }
    }

    /// <summary>Joins the sets of <paramref name="a"/> and <paramref name="b"/>; false when they were already one.</summary>
    public bool Union(int a, int b)
    {
        var ra = Find(a);
        var rb = Find(b);
        if (ra == rb)
        {
            return false;
        }
        LinkRoots(ra, rb);
        return true;
    }

    /// <summary>The number of elements in the set whose root is <paramref name="root"/>.</summary>
    public int SizeOfRoot(int root) => -_parent[root];

    /// <summary>
    /// Links two distinct roots by size (ties: the smaller id becomes the root) and returns the surviving root.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int LinkRoots(int ra, int rb)
    {
        var parent = _parent;
        int sa = -parent[ra], sb = -parent[rb];
        if (sa < sb || (sa == sb && rb < ra))
        {
            (ra, rb) = (rb, ra);
        }
        parent[rb] = ra;
        parent[ra] = -(sa + sb);
        return ra;
    }

    /// <summary>Prefetch hint: starts loading <paramref name="x"/>'s parent entry (a no-op where unsupported).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal unsafe void Prefetch(int x)
    {
        if (Sse.IsSupported)
        {
            fixed (int* p = &_parent[x])
            {
                Sse.Prefetch0(p);
            }
        }
    }

    /// <summary>
    /// Second stage of a two-stage prefetch: reads <paramref name="x"/>'s parent (already on its way to the cache from
    /// an earlier <see cref="Prefetch"/>), starts loading the parent's own entry, and returns the parent — usually
    /// the root or one step from it, since halving keeps trees flat.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal int PrefetchParent(int x)
    {
        var p = _parent[x];
        if (p < 0)
        {
            return x;
        }
        Prefetch(p);
        return p;
    }

    /// <summary>
    /// Writes for every element a canonical label of its set: the smallest element id in it. Unlike roots, these
    /// labels do not depend on the order of unions, so two runs that build the same sets give identical labels.
    /// Returns the number of sets.
    /// </summary>
    public int Label(Span<int> labels)
    {
        if (labels.Length != _parent.Length)
        {
            ThrowLabelLength();
        }
        // Ascending ids: the first element seen of a set is its smallest. The labels span doubles as the root -> label
        // map: an entry is overwritten with its own final label only when its index comes up, and a root's label is
        // itself-consistent, so no scratch array is needed.
        labels.Fill(-1);
        var sets = 0;
        for (var i = 0; i < labels.Length; i++)
        {
            var root = Find(i);
            if (labels[root] < 0)
            {
                labels[root] = i;
                sets++;
            }
            labels[i] = labels[root];
        }
        return sets;
    }

    [DoesNotReturn]
    private static void ThrowLabelLength() => throw new ArgumentException("One label per element is needed.");
}
