using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;

namespace Engine.Identity;

/// <summary>
/// Maps <see cref="IdentifierKey"/>s to dense <c>int</c> ids, assigned 0, 1, 2, … in insertion order, and keeps
/// each id's identifier type. Open addressing with linear probing over a power-of-two array of 24-byte slots
/// (key and id side by side, so a probe is one cache line, not a key load followed by a dependent id load);
/// it doubles once more than 11/16 of the slots are taken. One writer at a time, except through the shared methods
/// (<see cref="FindShared"/>, <see cref="FindOrClaim"/>, <see cref="TakeIds"/>, <see cref="Publish"/>), which
/// several threads may call at once while none grows the table (<see cref="GrowFor"/>): how the identity stage's
/// scan workers add a batch each, side by side.
/// </summary>
public sealed class IdentifierTable
{
    private const int MinCapacity = 16;

    // From this many slots (24 MB) on, a growth rehashes on every core.
    private const int ParallelGrowSlots = 1 << 20;

    // Keys per batch chunk: enough loads in flight to hide memory latency, small enough for the scratch to stay in L1.
    private const int BatchChunk = 256;

    private Slot[] _slots;
    private int _mask;
    private int _growAt;
    private byte[] _types;
    private int _count;

    /// <summary>
    /// One slot: the key, and the id plus one (so a zeroed array is an empty table). While a shared adder holds the slot,
    /// between <see cref="FindOrClaim"/> and <see cref="Publish"/>, it is negative: the adder's <c>-(owner + 1)</c>.
    /// </summary>
    internal struct Slot
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
        // Probed before it is written: its pages mapped writable now, not by a zero-page fault and a copy each.
        _slots = FreshArrays.Zeroed<Slot>(capacity, Environment.ProcessorCount);
        _mask = capacity - 1;
        _growAt = GrowThreshold(capacity);
        _types = new byte[Math.Max(MinCapacity, _growAt)];
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
    public KeyComparer KeyOrder()
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
        return new KeyComparer(slots, slotOf);
    }

    /// <summary>Ids in the order of their keys (<see cref="KeyOrder"/>).</summary>
    public sealed class KeyComparer : IComparer<int>
    {
        private readonly Slot[] _slots;
        private readonly int[] _slotOf;

        internal KeyComparer(Slot[] slots, int[] slotOf)
        {
            _slots = slots;
            _slotOf = slotOf;
        }

        // Optimised from the first call: the node order calls it tens of millions of times in one loop, which would
        // otherwise run unoptimised code until tiering caught up.
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public int Compare(int x, int y)
        {
            ref readonly var a = ref _slots[_slotOf[x]];
            ref readonly var b = ref _slots[_slotOf[y]];
            return a.High != b.High ? a.High.CompareTo(b.High) : a.Low.CompareTo(b.Low);
        }
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
                // Last, and ordered after the key: a shared reader that sees the id sees the key.
                Volatile.Write(ref slot.IdPlusOne, id + 1);
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

    /// <summary>
    /// The id of the key (<paramref name="key"/>), or -1 when it is absent or still being added: safe while other
    /// threads add through <see cref="FindOrClaim"/> or the one writer adds, and while the table grows (a lookup in the
    /// array it is leaving misses what is added after; callers add what they miss through <see cref="FindOrClaim"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal int FindShared(in IdentifierKey key)
    {
        var slots = Volatile.Read(ref _slots);
        var mask = slots.Length - 1; // from the array read, never a mask of another size
        var i = (int)key.Low & mask;
        while (true)
        {
            ref readonly var slot = ref slots[i];
            var idPlusOne = Volatile.Read(in slot.IdPlusOne);
            if (idPlusOne == 0)
            {
                return -1;
            }
            if (idPlusOne > 0 && slot.Low == key.Low && slot.High == key.High)
            {
                return idPlusOne - 1;
            }
            i = (i + 1) & mask;
        }
    }

    /// <summary>
    /// <see cref="FindOrClaim"/>'s answer when the key's probe reaches a held slot that may hold the key: another
    /// adder's, or the caller's own holding this key (a batch may repeat a value). Try again once it is published.
    /// </summary>
    internal const int Held = -2;

    /// <summary><see cref="FindOrClaim"/>'s answer when the key was absent and its slot is now held by the caller.</summary>
    internal const int Claimed = -1;

    /// <summary>
    /// Shared adding, first step: the key's id when present; otherwise the first free slot on its probe is taken for
    /// <paramref name="owner"/> (≥ 0), the key written into it, and <see cref="Claimed"/> returned with the slot's
    /// index in <paramref name="slotIndex"/> — to be given an id (<see cref="TakeIds"/>) and published
    /// (<see cref="Publish"/>). A slot another owner holds on the way may hold this very key (its key may not even be
    /// written yet): <see cref="Held"/>, and nothing taken; so too for a slot the caller holds with this key. The
    /// caller's slots with other keys are passed. Never while the table grows.
    /// </summary>
    internal int FindOrClaim(in IdentifierKey key, int owner, out int slotIndex)
    {
        var slots = _slots;
        var mask = slots.Length - 1;
        var mine = -(owner + 1);
        var i = (int)key.Low & mask;
        while (true)
        {
            ref var slot = ref slots[i];
            var idPlusOne = Volatile.Read(ref slot.IdPlusOne);
            if (idPlusOne == 0)
            {
                if (Interlocked.CompareExchange(ref slot.IdPlusOne, mine, 0) != 0)
                {
                    continue; // taken meanwhile: look at it again
                }
                slot.Low = key.Low;
                slot.High = key.High;
                slotIndex = i;
                return Claimed;
            }
            if (idPlusOne > 0)
            {
                if (slot.Low == key.Low && slot.High == key.High)
                {
                    slotIndex = i;
                    return idPlusOne - 1;
                }
            }
            else if (idPlusOne != mine || (slot.Low == key.Low && slot.High == key.High))
            {
                slotIndex = i;
                return Held;
            }
            i = (i + 1) & mask;
        }
    }

    /// <summary>
    /// Shared adding, second step: the next <paramref name="types"/>.Length ids, given those types; returns the first.
    /// Callers serialise it (the identity stage numbers values and logs them under one lock) and must have made room
    /// with <see cref="GrowFor"/>.
    /// </summary>
    internal int TakeIds(ReadOnlySpan<byte> types)
    {
        var first = _count;
        if (first + types.Length > _types.Length)
        {
            throw new InvalidOperationException($"{first + types.Length} identifiers, room was made for {_types.Length}");
        }
        types.CopyTo(_types.AsSpan(first));
        _count = first + types.Length;
        return first;
    }

    /// <summary>Shared adding, last step: the claimed slot <paramref name="slotIndex"/> gets its id, and others can find it.</summary>
    internal void Publish(int slotIndex, int id) => Volatile.Write(ref _slots[slotIndex].IdPlusOne, id + 1);

    /// <summary>How many identifiers the table takes before it must grow (<see cref="GrowFor"/>).</summary>
    internal int GrowAt => _growAt;

    /// <summary>
    /// Grows, if needed, until <paramref name="identifiers"/> fit under the load limit, with room for their types.
    /// Nobody else may use the table meanwhile.
    /// </summary>
    internal void GrowFor(int identifiers)
    {
        while (_growAt < identifiers)
        {
            Grow();
        }
    }

    private void Grow()
    {
        var capacity = checked(_slots.Length * 2);
        var slots = FreshArrays.Zeroed<Slot>(capacity, Environment.ProcessorCount);
        var mask = capacity - 1;
        var old = _slots;
        if (old.Length >= ParallelGrowSlots && Environment.ProcessorCount > 1)
        {
            // On every core: a first night at ten million people doubles a table of gigabytes several times, each a pass
            // of cache misses and page faults on fresh memory that would otherwise hold every scan worker off on one core.
            // Keys are distinct and nobody reads meanwhile, so an entry only needs a free slot, taken by a
            // compare-and-swap on its id.
            var parts = Environment.ProcessorCount * 8;
            Parallel.For(0, parts, part =>
            {
                var from = (int)((long)old.Length * part / parts);
                var to = (int)((long)old.Length * (part + 1) / parts);
                for (var k = from; k < to; k++)
                {
                    ref readonly var slot = ref old[k];
                    if (slot.IdPlusOne == 0)
                    {
                        continue;
                    }
                    var i = (int)slot.Low & mask;
                    while (Interlocked.CompareExchange(ref slots[i].IdPlusOne, slot.IdPlusOne, 0) != 0)
                    {
                        i = (i + 1) & mask;
                    }
                    slots[i].Low = slot.Low;
                    slots[i].High = slot.High;
                }
            });
        }
        else
        {
            foreach (ref readonly var slot in old.AsSpan())
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
        }
        Volatile.Write(ref _slots, slots); // filled before it is seen: a shared reader of the new array finds everything
        _mask = mask;
        _growAt = GrowThreshold(capacity);
        if (_types.Length < _growAt)
        {
            Array.Resize(ref _types, _growAt); // room for every id up to the next growth, as TakeIds needs
        }
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
