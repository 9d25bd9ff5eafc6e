using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;

namespace Engine.Identity;

/// <summary>
/// Maps <see cref="IdentifierKey"/>s to dense <c>int</c> ids, assigned 0, 1, 2, … in insertion order, and keeps
/// each id's identifier type. Open addressing with linear probing over a power-of-two array of 24-byte slots
/// (key and id side by side, so a probe is one cache line, not a key load followed by a dependent id load);
/// it doubles once more than 11/16 of the slots are taken. Not thread-safe: one writer at a time.
/// </summary>
public sealed class IdentifierTable
{
    private const int MinCapacity = 16;

    // Keys per batch chunk: enough loads in flight to hide memory latency, small enough for the scratch to stay in L1.
    private const int BatchChunk = 256;

    private Slot[] _slots;
    private int _mask;
    private int _growAt;
    private byte[] _types;
    private int _count;

    /// <summary>One slot: the key, and the id plus one (so a zeroed array is an empty table).</summary>
    private struct Slot
    {
        public ulong Low;
        public ulong High;
        public int IdPlusOne;
    }

    /// <summary>Creates a table sized for <paramref name="expected"/> identifiers without growing.</summary>
    public IdentifierTable(int expected = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(expected);
        var capacity = MinCapacity;
        while (GrowThreshold(capacity) < expected)
        {
            capacity = checked(capacity * 2);
        }
        _slots = new Slot[capacity];
        _mask = capacity - 1;
        _growAt = GrowThreshold(capacity);
        _types = new byte[Math.Max(MinCapacity, expected)];
    }

    /// <summary>How many identifiers the table holds; ids run from 0 to <c>Count - 1</c>.</summary>
    public int Count => _count;

    /// <summary>The number of slots (a power of two).</summary>
    public int Capacity => _slots.Length;

    /// <summary>Bytes held by the table's arrays (slots and types), for measuring bytes per identifier.</summary>
    public long AllocatedBytes => (long)_slots.Length * Unsafe.SizeOf<Slot>() + _types.Length;

    /// <summary>The type id of every identifier, indexed by id.</summary>
    public ReadOnlySpan<byte> Types => _types.AsSpan(0, _count);

    /// <summary>The type id of identifier <paramref name="id"/>.</summary>
    public byte TypeOf(int id) => (uint)id < (uint)_count ? _types[id] : ThrowIdOutOfRange(id);

    /// <summary>
    /// The id of <paramref name="key"/>, adding it with type <paramref name="type"/> if it is new. A key already present
    /// keeps the type it was added with (the type is part of the key's hash, so a mismatch means a 128-bit collision).
    /// </summary>
    public int GetOrAdd(in IdentifierKey key, byte type)
    {
        if (_count >= _growAt)
        {
            Grow();
        }
        return GetOrAddAt(key.Low, key.High, type, (int)key.Low & _mask);
    }

    /// <summary>Finds <paramref name="key"/>'s id without adding it.</summary>
    public bool TryGet(in IdentifierKey key, out int id)
    {
        id = IdAt(key.Low, key.High, (int)key.Low & _mask);
        return id >= 0;
    }

    /// <summary>
    /// <see cref="TryGet(in IdentifierKey, out int)"/> for many keys: <paramref name="ids"/>[i] receives the id of
    /// <paramref name="keys"/>[i], or -1 when it is not in the table. In chunks, every bucket of a chunk prefetched
    /// before its probes run, as <see cref="GetOrAdd(ReadOnlySpan{IdentifierKey}, ReadOnlySpan{byte}, Span{int})"/> does.
    /// </summary>
    public void TryGet(ReadOnlySpan<IdentifierKey> keys, Span<int> ids)
    {
        if (ids.Length != keys.Length)
        {
            ThrowLengthMismatch();
        }
        Span<int> buckets = stackalloc int[BatchChunk];
        var mask = _mask;
        for (var start = 0; start < keys.Length; start += BatchChunk)
        {
            var n = Math.Min(BatchChunk, keys.Length - start);
            var chunk = keys.Slice(start, n);
            for (var i = 0; i < chunk.Length; i++)
            {
                buckets[i] = (int)chunk[i].Low & mask;
            }
            Prefetch(_slots, buckets[..n]);
            var chunkIds = ids.Slice(start, n);
            for (var i = 0; i < chunk.Length; i++)
            {
                chunkIds[i] = IdAt(chunk[i].Low, chunk[i].High, buckets[i]);
            }
        }
    }

    /// <summary>The id of the key (<paramref name="low"/>, <paramref name="high"/>), probing from slot <paramref name="i"/>; -1 when absent.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int IdAt(ulong low, ulong high, int i)
    {
        var slots = _slots;
        var mask = _mask;
        while (true)
        {
            ref readonly var slot = ref slots[i];
            if (slot.IdPlusOne == 0)
            {
                return -1;
            }
            if (slot.Low == low && slot.High == high)
            {
                return slot.IdPlusOne - 1;
            }
            i = (i + 1) & mask;
        }
    }

    /// <summary>
    /// <see cref="GetOrAdd(in IdentifierKey, byte)"/> for many keys: <paramref name="ids"/>[i] receives the id of
    /// <paramref name="keys"/>[i]. Works in chunks: first every bucket of the chunk is computed and prefetched, then the
    /// probes run, so the cache misses of a chunk overlap instead of queueing one behind another.
    /// </summary>
    public void GetOrAdd(ReadOnlySpan<IdentifierKey> keys, ReadOnlySpan<byte> types, Span<int> ids)
    {
        if (types.Length != keys.Length || ids.Length != keys.Length)
        {
            ThrowLengthMismatch();
        }
        Span<int> buckets = stackalloc int[BatchChunk];
        for (var start = 0; start < keys.Length; start += BatchChunk)
        {
            var n = Math.Min(BatchChunk, keys.Length - start);
            // Grow before the chunk so no bucket computed below goes stale mid-chunk.
            while (_count + n > _growAt)
            {
                Grow();
            }
            var chunk = keys.Slice(start, n);
            var mask = _mask;
            for (var i = 0; i < chunk.Length; i++)
            {
                buckets[i] = (int)chunk[i].Low & mask;
            }
            Prefetch(_slots, buckets[..n]);
            var chunkTypes = types.Slice(start, n);
            var chunkIds = ids.Slice(start, n);
            for (var i = 0; i < chunk.Length; i++)
            {
                ref readonly var key = ref chunk[i];
                chunkIds[i] = GetOrAddAt(key.Low, key.High, chunkTypes[i], buckets[i]);
            }
        }
    }

    /// <summary>
    /// Orders identifier ids by their keys (high half, then low). Keys are looked up through an id → slot index built
    /// once, 4 bytes per identifier, instead of being copied out at 16; the table must not change while it is in use.
    /// </summary>
    public IComparer<int> KeyOrder()
    {
        var slots = _slots;
        var slotOf = GC.AllocateUninitializedArray<int>(_count);
        for (var i = 0; i < slots.Length; i++)
        {
            if (slots[i].IdPlusOne != 0)
            {
                slotOf[slots[i].IdPlusOne - 1] = i;
            }
        }
        return Comparer<int>.Create((a, b) =>
        {
            ref readonly var x = ref slots[slotOf[a]];
            ref readonly var y = ref slots[slotOf[b]];
            return x.High != y.High ? x.High.CompareTo(y.High) : x.Low.CompareTo(y.Low);
        });
    }

    /// <summary>Prefetch hint: starts loading the slot where <paramref name="key"/>'s probe begins (a no-op where unsupported).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public unsafe void Prefetch(in IdentifierKey key)
    {
        if (Sse.IsSupported)
        {
            fixed (Slot* p = &_slots[(int)key.Low & _mask])
            {
                Sse.Prefetch0(p);
            }
        }
    }

    private static unsafe void Prefetch(Slot[] slots, ReadOnlySpan<int> buckets)
    {
        if (!Sse.IsSupported)
        {
            return;
        }
        fixed (Slot* p = slots)
        {
            for (var i = 0; i < buckets.Length; i++)
            {
                Sse.Prefetch0(p + buckets[i]);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int GetOrAddAt(ulong low, ulong high, byte type, int i)
    {
        var slots = _slots;
        var mask = _mask;
        while (true)
        {
            ref var slot = ref slots[i];
            if (slot.IdPlusOne == 0)
            {
                var id = _count;
                slot.Low = low;
                slot.High = high;
                slot.IdPlusOne = id + 1;
                if (id == _types.Length)
                {
                    Array.Resize(ref _types, checked(_types.Length * 2));
                }
                _types[id] = type;
                _count = id + 1;
                return id;
            }
            if (slot.Low == low && slot.High == high)
            {
                return slot.IdPlusOne - 1;
            }
            i = (i + 1) & mask;
        }
    }

    private void Grow()
    {
        var capacity = checked(_slots.Length * 2);
        var slots = new Slot[capacity];
        var mask = capacity - 1;
        foreach (ref readonly var slot in _slots.AsSpan())
        {
            if (slot.IdPlusOne == 0)
            {
                continue;
            }
            var i = (int)slot.Low & mask;
            while (slots[i].IdPlusOne != 0)
            {
                i = (i + 1) & mask;
            }
            slots[i] = slot;
        }
        _slots = slots;
        _mask = mask;
        _growAt = GrowThreshold(capacity);
    }

    // 11/16 ≈ 0.69: linear probing stays short (about 2 probes for a hit) while the array stays small.
    private static int GrowThreshold(int capacity) => (int)((long)capacity * 11 / 16);

    [DoesNotReturn]
    private static byte ThrowIdOutOfRange(int id) =>
        throw new ArgumentOutOfRangeException(nameof(id), id, "No identifier has this id.");

    [DoesNotReturn]
    private static void ThrowLengthMismatch() =>
        throw new ArgumentException("keys, types and ids must have the same length.");
}
