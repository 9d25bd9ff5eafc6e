using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Numerics;
using System.Runtime.CompilerServices;

namespace Engine.Identity;

/// <summary>
/// Undirected edges between dense identifier ids, each packed into one <c>ulong</c> as
/// <c>min &lt;&lt; 32 | max</c> so that (a, b) and (b, a) are the same value. Self-edges are dropped on the way in;
/// <see cref="Deduplicate()"/> sorts (LSD radix) and removes repeats, leaving the edges in ascending packed order
/// whatever order they arrived in. One writer at a time; parallel scans keep one set per worker and
/// <see cref="AddFrom"/> them together.
/// </summary>
public sealed class EdgeSet
{
    // Below this many edges a comparison sort beats the radix sort's fixed histogram cost.
    private const int RadixThreshold = 4096;
    private const int DigitBits = 11;
    private const int Buckets = 1 << DigitBits;

    private ulong[] _edges;
    private int _count;
    private bool _unique = true;

    /// <summary>Creates a set with room for <paramref name="capacity"/> edges.</summary>
    public EdgeSet(int capacity = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(capacity);
        _edges = capacity == 0 ? [] : new ulong[capacity];
    }

    /// <summary>Edges held: after <see cref="Deduplicate()"/>, the distinct ones.</summary>
    public int Count => _count;

    /// <summary>Bytes held by the buffer, used or not.</summary>
    public long AllocatedBytes => (long)_edges.Length * sizeof(ulong);

    /// <summary>The packed edge of <paramref name="a"/> and <paramref name="b"/> (order does not matter).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Pack(int a, int b) =>
        a <= b ? ((ulong)(uint)a << 32) | (uint)b : ((ulong)(uint)b << 32) | (uint)a;

    /// <summary>The smaller endpoint of a packed edge.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int First(ulong edge) => (int)(edge >> 32);

    /// <summary>The larger endpoint of a packed edge.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Second(ulong edge) => (int)(uint)edge;

    /// <summary>Adds the edge (a, b); a self-edge (a == b) is ignored.</summary>
    public void Add(int a, int b)
    {
        if ((a | b) < 0)
        {
            ThrowNegative();
        }
        if (a == b)
        {
            return;
        }
        if (_count == _edges.Length)
        {
            Grow(_count + 1);
        }
        _edges[_count++] = Pack(a, b);
        _unique = false;
    }

    /// <summary>Adds the edges (a[i], b[i]); self-edges are ignored.</summary>
    public void AddRange(ReadOnlySpan<int> a, ReadOnlySpan<int> b)
    {
        if (a.Length != b.Length)
        {
            ThrowLengthMismatch();
        }
        if (_count + a.Length > _edges.Length)
        {
            Grow(_count + a.Length);
        }
        var edges = _edges;
        var count = _count;
        for (var i = 0; i < a.Length; i++)
        {
            int x = a[i], y = b[i];
            if ((x | y) < 0)
            {
                ThrowNegative();
            }
            // Branch-free skip of self-edges: always write, advance only when the endpoints differ.
            edges[count] = Pack(x, y);
            count += x != y ? 1 : 0;
        }
        _count = count;
        _unique = false;
    }

    /// <summary>Adds every edge of <paramref name="other"/> (e.g. one parallel worker's set).</summary>
    public void AddFrom(EdgeSet other)
    {
        if (_count + other._count > _edges.Length)
        {
            Grow(_count + other._count);
        }
        if (other._count == 0)
        {
            return;
        }
        var wasEmpty = _count == 0;
        other._edges.AsSpan(0, other._count).CopyTo(_edges.AsSpan(_count));
        _count += other._count;
        _unique = wasEmpty && other._unique;
    }

    /// <summary>
    /// Renames both ends of every edge through <paramref name="map"/> (old id → new id, one-to-one), in place. The edges
    /// are out of order afterwards, until the next <see cref="Deduplicate()"/>; no repeats appear that were not there.
    /// </summary>
    internal void Relabel(ReadOnlySpan<int> map)
    {
        var edges = _edges.AsSpan(0, _count);
        for (var i = 0; i < edges.Length; i++)
        {
            var e = edges[i];
            edges[i] = Pack(map[First(e)], map[Second(e)]);
        }
        _unique = false;
    }

    /// <summary>
    /// Sorts the edges ascending by packed value and drops repeats; returns the distinct edges. From about a million
    /// edges on, two halves are sorted on two threads and then merged (the result is the same either way).
    /// </summary>
    public ReadOnlySpan<ulong> Deduplicate() => Deduplicate(ParallelThreshold);

    // Below this, a second thread's start-up and the extra merge pass cost more than half a sort saves.
    private const int ParallelThreshold = 1 << 20;

    internal ReadOnlySpan<ulong> Deduplicate(int parallelThreshold)
    {
        if (!_unique)
        {
            if (_count >= parallelThreshold && _count >= 2 && Environment.ProcessorCount > 1)
            {
                DeduplicateInHalves();
            }
            else
            {
                var edges = _edges.AsSpan(0, _count);
                Sort(edges);
                _count = Unique(edges);
            }
            _unique = true;
        }
        return _edges.AsSpan(0, _count);
    }

    private void DeduplicateInHalves()
    {
        _count = SortInHalves(_edges, _count, unique: true);
    }

    /// <summary>
    /// Sorts the first <paramref name="count"/> values of <paramref name="values"/> ascending, two halves on two
    /// threads and then merged; with <paramref name="unique"/>, repeats are dropped. Returns the count kept.
    /// </summary>
    internal static int SortInHalves(ulong[] values, int count, bool unique)
    {
        var half = count / 2;
        // One scratch the size of the values serves both halves' radix sorts and then takes the merge: at most one
        // extra copy of the list is alive, not one per half plus one for the merge.
        var scratch = Scratch.Rent<ulong>(count);
        try
        {
            // Radix passes are bound by memory bandwidth and latency, which one core does not saturate; the merge is
            // one sequential pass.
            Parallel.Invoke(
                () => Sort(values.AsSpan(0, half), scratch.AsSpan(0, half)),
                () => Sort(values.AsSpan(half, count - half), scratch.AsSpan(half, count - half)));
            var n = Merge(values.AsSpan(0, half), values.AsSpan(half, count - half), scratch, unique);
            scratch.AsSpan(0, n).CopyTo(values);
            return n;
        }
        finally
        {
            Scratch.Return(scratch);
        }
    }

    /// <summary>Merges two sorted runs into <paramref name="output"/>, with <paramref name="unique"/> keeping each value once; returns the count.</summary>
    private static int Merge(ReadOnlySpan<ulong> left, ReadOnlySpan<ulong> right, Span<ulong> output, bool unique)
    {
        int i = 0, j = 0, w = 0;
        var last = 0UL;
        while (i < left.Length || j < right.Length)
        {
            ulong e;
            if (j >= right.Length || (i < left.Length && left[i] <= right[j]))
            {
                e = left[i++];
            }
            else
            {
                e = right[j++];
            }
            if (w == 0 || e != last || !unique)
            {
                output[w++] = e;
                last = e;
            }
        }
        return w;
    }

    /// <summary>Sorts packed edges ascending: LSD radix over 11-bit digits, skipping digits every edge shares.</summary>
    public static void Sort(Span<ulong> edges)
    {
        if (edges.Length < RadixThreshold)
        {
            edges.Sort();
            return;
        }
        var scratch = Scratch.Rent<ulong>(edges.Length);
        try
        {
            Sort(edges, scratch.AsSpan(0, edges.Length));
        }
        finally
        {
            Scratch.Return(scratch);
        }
    }

    /// <summary><see cref="Sort(Span{ulong})"/> with the caller's scratch, at least as long as <paramref name="edges"/>.</summary>
    private static void Sort(Span<ulong> edges, Span<ulong> scratch)
    {
        if (edges.Length < RadixThreshold)
        {
            edges.Sort();
            return;
        }
        var counts = ArrayPool<int>.Shared.Rent(Buckets);
        try
        {
            RadixSort(edges, scratch[..edges.Length], counts.AsSpan(0, Buckets));
        }
        finally
        {
            ArrayPool<int>.Shared.Return(counts);
        }
    }

    private static void RadixSort(Span<ulong> edges, Span<ulong> scratch, Span<int> counts)
    {
        // Only the bits some edge has set need sorting: ids below 2^k leave the top of each half empty.
        ulong any = 0, all = ulong.MaxValue;
        foreach (var e in edges)
        {
            any |= e;
            all &= e;
        }
        var varying = any & ~all;
        var source = edges;
        var target = scratch;
        for (var shift = 0; shift < 64; shift += DigitBits)
        {
            if (((varying >> shift) & (Buckets - 1)) == 0)
            {
                continue; // every edge has the same digit here: the pass would be the identity
            }
            counts.Clear();
            foreach (var e in source)
            {
                counts[(int)(e >> shift) & (Buckets - 1)]++;
            }
            var sum = 0;
            for (var i = 0; i < counts.Length; i++)
            {
                var c = counts[i];
                counts[i] = sum;
                sum += c;
            }
            foreach (var e in source)
            {
                target[counts[(int)(e >> shift) & (Buckets - 1)]++] = e;
            }
            var swap = source;
            source = target;
            target = swap;
        }
        if (source != edges)
        {
            source.CopyTo(edges);
        }
    }

    private static int Unique(Span<ulong> sorted)
    {
        if (sorted.Length == 0)
        {
            return 0;
        }
        var w = 1;
        var last = sorted[0];
        for (var i = 1; i < sorted.Length; i++)
        {
            var e = sorted[i];
            if (e != last)
            {
                sorted[w++] = e;
                last = e;
            }
        }
        return w;
    }

    private void Grow(int needed)
    {
        var size = (int)Math.Min(Array.MaxLength, Math.Max((long)needed, Math.Max(16L, (long)BitOperations.RoundUpToPowerOf2((uint)needed))));
        if (size < needed)
        {
            ThrowTooMany();
        }
        Array.Resize(ref _edges, size);
    }

    [DoesNotReturn]
    private static void ThrowNegative() => throw new ArgumentException("Identifier ids are never negative.");

    [DoesNotReturn]
    private static void ThrowLengthMismatch() => throw new ArgumentException("Both endpoint spans must have the same length.");

    [DoesNotReturn]
    private static void ThrowTooMany() => throw new InvalidOperationException("More edges than one array can hold.");
}
