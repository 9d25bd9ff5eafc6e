using System.Diagnostics.CodeAnalysis;
using Apache.Arrow;
using Engine.Storage;
using Engine.Workspaces;

namespace Engine.Identity;

/// <summary>
/// The identifier graph a builder produced: distinct edges (packed as by <see cref="EdgeSet.Pack"/>, ascending) and
/// each node's type id (the index of its type in <see cref="IdentityRules.Types"/>). Spans over the builder's
/// storage: valid until the builder is given more rows.
/// </summary>
public readonly ref struct IdentityGraph
{
    public IdentityGraph(ReadOnlySpan<ulong> edges, ReadOnlySpan<byte> nodeTypes)
    {
        Edges = edges;
        NodeTypes = nodeTypes;
    }

    /// <summary>The distinct edges, ascending by packed value.</summary>
    public ReadOnlySpan<ulong> Edges { get; }

    /// <summary>The type id of every node, indexed by identifier id.</summary>
    public ReadOnlySpan<byte> NodeTypes { get; }

    public int NodeCount => NodeTypes.Length;

    public int EdgeCount => Edges.Length;
}

/// <summary>
/// Turns source rows into the identifier graph: every identifier value of a row is canonicalised straight from the
/// Arrow UTF-8 buffers (no .NET string per value), hashed to an <see cref="IdentifierKey"/> and given a dense id in an
/// <see cref="IdentifierTable"/>; the row's identifiers are then linked as a star to the row's highest-priority
/// identifier (connectivity is all stitching needs, and the edges stay linear in identifiers per row). Values that
/// link nothing are counted per type and status in <see cref="Skipped"/>, never dropped silently. Raw values are never
/// logged or kept. Not thread-safe, except <see cref="FromDataset(Dataset, SourceDefinition, int, IdentityRules, IdentityGraphBuilder, ScanOptions, Action{long}?, CancellationToken)"/>,
/// whose workers each resolve a batch and apply it to the one builder side by side (<see cref="Apply"/>).
/// </summary>
[SuppressMessage("Design", "CA1001", Justification = "The growth lock's only unmanaged parts are wait handles made under contention, which their safe handles release when collected; a builder is dropped once its graph is built, and making it disposable would buy nothing.")]
public sealed class IdentityGraphBuilder
{
    private readonly IdentityRules _rules;
    private IdentifierTable _table;
    private EdgeSet _edges;
    private bool _handedOver;
    private readonly long[][] _skipped;
    private BatchResolver? _resolver;
    private long[] _firstSeen = [];
    private long _rows;

    // Workers apply batches side by side under the read side; growing the table and the positions takes the write side.
    private readonly ReaderWriterLockSlim _growth = new();

    // Numbering new identifiers and logging their values, in id order.
    private readonly Lock _numbering = new();

    // Set when numbering failed with slots claimed: they are never published, so nobody waits for them.
    private volatile bool _broken;

    // Identifiers taken plus those reserved by batches being applied: never above Room, so ids never outrun storage.
    private long _reserved;

    // The builder's own applier, for AddBatch and a single-threaded scan: its edges and skips are the builder's.
    private readonly Applier _own;

    private readonly CanonicalValueLog? _values;

    // Keys of distinct values found on the blocklist, so that their later occurrences skip the patterns. Read by every
    // worker without a lock (FindShared), added to under this one.
    private readonly IdentifierTable _blocked = new();
    private readonly Lock _blocking = new();

    /// <summary>
    /// Creates a builder for <paramref name="rules"/>. With <paramref name="values"/>, the canonical value of every new
    /// identifier is appended to it as its id is assigned, so the values can be written out later in any order
    /// without being kept in memory.
    /// </summary>
    public IdentityGraphBuilder(IdentityRules rules, int expectedIdentifiers = 0, CanonicalValueLog? values = null)
    {
        _values = values;
        ArgumentNullException.ThrowIfNull(rules);
        if (rules.Types.Count > 256)
        {
            throw new ArgumentException($"at most 256 identifier types are supported, the rules define {rules.Types.Count}", nameof(rules));
        }
        _rules = rules;
        _table = new IdentifierTable(expectedIdentifiers);
        _firstSeen = new long[_table.GrowAt];
        _firstSeen.AsSpan().Fill(long.MaxValue);
        _edges = new EdgeSet();
        _skipped = NewSkipCounts(rules);
        _own = new Applier(this, owner: 0, _edges, _skipped);
    }

    private static long[][] NewSkipCounts(IdentityRules rules)
    {
        var statuses = Enum.GetValues<NormalizeStatus>().Length;
        var counts = new long[rules.Types.Count][];
        for (var t = 0; t < counts.Length; t++)
        {
            counts[t] = new long[statuses];
        }
        return counts;
    }

    public IdentityRules Rules => _rules;

    /// <summary>The identifiers seen so far.</summary>
    public IdentifierTable Table => _table;

    /// <summary>The edges added so far (not yet deduplicated until <see cref="Build"/>).</summary>
    public EdgeSet Edges => _edges;

    /// <summary>Rows given so far (<see cref="AddBatch(RecordBatch, IReadOnlyList{ValueTuple{int, IdentifierType}}, IReadOnlyList{ValueTuple{IReadOnlyList{int}, IdentifierType}}?)"/> and scans).</summary>
    public long Rows => Interlocked.Read(ref _rows);

    /// <summary>
    /// Values that linked nothing, per type id and <see cref="NormalizeStatus"/>: <c>Skipped[type][(int)status]</c>
    /// (Empty, Invalid, TooLong, Blocked; a composite with a null part counts as Empty). Plain nulls are not counted.
    /// </summary>
    public IReadOnlyList<IReadOnlyList<long>> Skipped => _skipped;

    /// <summary>The count of values of <paramref name="type"/> skipped with <paramref name="status"/>.</summary>
    public long SkippedCount(string type, NormalizeStatus status) => _skipped[TypeId(type)][(int)status];

    /// <summary>The type id (index in the rules) of <paramref name="type"/>; throws when the rules do not define it.</summary>
    public byte TypeId(string type)
    {
        var id = _rules.PriorityOf(type);
        if (id < 0)
        {
            throw new ArgumentException($"identifier type '{type}' is not defined by the identity rules", nameof(type));
        }
        return (byte)id;
    }

    /// <summary>
    /// Adds the rows of <paramref name="batch"/>: <paramref name="identifierColumns"/> name the string columns holding
    /// identifiers (plain <see cref="StringArray"/> or a <see cref="DictionaryArray"/> over one) and their types;
    /// <paramref name="composites"/> name, per composite type, its columns in order.
    /// </summary>
    public void AddBatch(
        RecordBatch batch,
        IReadOnlyList<(int Column, IdentifierType Type)> identifierColumns,
        IReadOnlyList<(IReadOnlyList<int> Columns, IdentifierType Type)>? composites = null)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(identifierColumns);
        _resolver ??= new BatchResolver(_rules);
        _resolver.Resolve(batch, identifierColumns, composites);
        Apply(_resolver, Position(1, 0, Rows), _own);
    }

    /// <summary>
    /// Where a value was met: (source, file, row) packed into one ordered number — source 0 is an earlier run's
    /// output, re-read by an incremental run; 1 … 255 are the workspace's sources in order; files are numbered in key
    /// order. The smallest position of a value is where it was first met, whatever order batches are applied in.
    /// </summary>
    internal static long Position(int source, int file, long row)
    {
        if ((uint)source > 255 || (uint)file >= 1 << 20 || (ulong)row >= 1UL << 35)
        {
            throw new ArgumentOutOfRangeException(nameof(source), $"position ({source}, {file}, {row}) out of range: at most 255 sources, 2^20 files per source and 2^35 rows per file");
        }
        return ((long)source << 55) | ((long)file << 35) | row;
    }

    /// <summary>Per identifier id, the position where it was first met (<see cref="Position"/>).</summary>
    public ReadOnlySpan<long> FirstSeen => _firstSeen.AsSpan(0, _table.Count);

    /// <summary>Lowers identifier <paramref name="id"/>'s first position to <paramref name="position"/> if earlier: atomically, as workers apply side by side.</summary>
    private void Seen(int id, long position)
    {
        ref var first = ref _firstSeen[id];
        var current = Volatile.Read(ref first);
        while (position < current)
        {
            var found = Interlocked.CompareExchange(ref first, position, current);
            if (found == current)
            {
                return;
            }
            current = found;
        }
    }

    /// <summary>How many identifiers the table and the positions have room for without growing.</summary>
    private long Room => Math.Min(_table.GrowAt, _firstSeen.Length);

    /// <summary>
    /// Grows the table and the positions until <paramref name="identifiers"/> fit. The caller has them to itself:
    /// holds the write side of the growth lock, or is the one thread using the builder.
    /// </summary>
    private void GrowFor(long identifiers)
    {
        _table.GrowFor(checked((int)identifiers));
        if (_firstSeen.Length < _table.GrowAt)
        {
            var old = _firstSeen.Length;
            System.Array.Resize(ref _firstSeen, _table.GrowAt);
            _firstSeen.AsSpan(old).Fill(long.MaxValue);
        }
    }

    /// <summary>
    /// Reserves room for <paramref name="count"/> new identifiers, growing first (every worker held off) if there is
    /// not enough. The caller holds the read side of the growth lock, and holds it again on return.
    /// </summary>
    private void Reserve(int count)
    {
        while (Interlocked.Add(ref _reserved, count) > Room)
        {
            Interlocked.Add(ref _reserved, -count);
            _growth.ExitReadLock();
            _growth.EnterWriteLock();
            try
            {
                // Doubling, not to the exact need: a worker that finds room short grows once for many batches.
                GrowFor(Math.Max(Interlocked.Read(ref _reserved) + count, Room + 1));
            }
            finally
            {
                _growth.ExitWriteLock();
                _growth.EnterReadLock();
            }
        }
    }

    /// <summary>
    /// The second half of adding a batch, the half that touches the graph: each value of the batch gets its identifier
    /// id (the blocklist is consulted only for a value not seen before: a known identifier passed it already, and a
    /// blocked one is remembered by key, so the patterns run once per distinct value), skips are counted, and each
    /// row's identifiers (once per run of equal rows) are linked as a star to its highest-priority one, into
    /// <paramref name="applier"/>'s edges. With <paramref name="hubs"/>, each row's hub is recorded there, the batch's
    /// first row being file row <paramref name="fileRow"/>.
    /// </summary>
    /// <remarks>
    /// Workers apply side by side, each with its own applier. Known values are found without a lock; a new one takes a
    /// slot of the table with a compare-and-swap, and the batch's new values are numbered and logged together under
    /// one short lock, so that ids and the value log stay in step. Growing the table holds every worker off. Only the
    /// ids depend on timing; what the graph says, and the canonical numbering built from it, does not.
    /// </remarks>
    internal void Apply(BatchResolver resolved, long basePosition, Applier applier, FileHubs? hubs = null, long fileRow = 0)
    {
        ThrowIfHandedOver();
        var values = resolved.Values;
        applier.Prepare(values);
        var ids = applier.ValueIds;
        var keys = resolved.Keys;
        _growth.EnterReadLock();
        try
        {
            // Known values first, without a lock: several cache misses in flight instead of one at a time.
            const int Ahead = 16;
            var missing = 0;
            for (var v = 0; v < Math.Min(Ahead, values); v++)
            {
                _table.Prefetch(keys[v]);
            }
            for (var v = 0; v < values; v++)
            {
                if (v + Ahead < values)
                {
                    _table.Prefetch(keys[v + Ahead]);
                }
                var id = _table.FindShared(keys[v]);
                ids[v] = id;
                if (id < 0)
                {
                    applier.Pending[missing++] = v;
                }
            }
            if (missing > 0)
            {
                AddMissing(resolved, applier, Screen(resolved, applier, missing));
            }
            for (var v = 0; v < values; v++)
            {
                if (ids[v] >= 0)
                {
                    Seen(ids[v], basePosition + resolved.FirstRow[v]);
                }
            }
        }
        finally
        {
            _growth.ExitReadLock();
        }
        applier.Link(resolved, hubs, fileRow);
        Interlocked.Add(ref _rows, resolved.Rows);
    }

    /// <summary>Drops blocked values from the applier's pending ones (their id -1); returns how many are left.</summary>
    private int Screen(BatchResolver resolved, Applier applier, int missing)
    {
        var pending = applier.Pending;
        var left = 0;
        for (var k = 0; k < missing; k++)
        {
            var v = pending[k];
            ref readonly var key = ref resolved.Keys[v];
            var blocked = _blocked.FindShared(key) >= 0;
            if (!blocked && _rules.Types[resolved.ValueTypes[v]].Blocklist.IsBlocked(resolved.Canonical(v)))
            {
                lock (_blocking)
                {
                    _blocked.GetOrAdd(key, resolved.ValueTypes[v]);
                }
                blocked = true;
            }
            if (blocked)
            {
                applier.ValueIds[v] = -1;
            }
            else
            {
                pending[left++] = v;
            }
        }
        return left;
    }

    /// <summary>
    /// Adds the applier's <paramref name="count"/> pending values (not blocked, not found a moment ago): each is found
    /// (another worker added it meanwhile) or claimed; the claimed are numbered and logged together, then published.
    /// A value whose slot another worker holds waits for it, after the applier's own claims are published: a worker
    /// holding slots never waits, so two never wait on each other.
    /// </summary>
    private void AddMissing(BatchResolver resolved, Applier applier, int count)
    {
        if (count == 0)
        {
            return;
        }
        Reserve(count);
        var ids = applier.ValueIds;
        var pending = applier.Pending;
        var claimed = 0;
        var waiting = 0;
        var taken = 0;
        for (var k = 0; k < count; k++)
        {
            var v = pending[k];
            var found = _table.FindOrClaim(resolved.Keys[v], applier.Owner, out var slot);
            if (found >= 0)
            {
                ids[v] = found;
            }
            else if (found == IdentifierTable.Claimed)
            {
                applier.ClaimedSlots[claimed] = slot;
                applier.ClaimedTypes[claimed] = resolved.ValueTypes[v];
                pending[claimed++] = v; // never past k: the claimed are kept in place at the front
            }
            else
            {
                applier.Waiting[waiting++] = v;
            }
        }
        if (claimed > 0)
        {
            taken += Number(resolved, applier, claimed);
        }
        for (var k = 0; k < waiting; k++)
        {
            var v = applier.Waiting[k];
            var spin = default(SpinWait);
            while (true)
            {
                var found = _table.FindOrClaim(resolved.Keys[v], applier.Owner, out var slot);
                if (found >= 0)
                {
                    ids[v] = found;
                    break;
                }
                if (found == IdentifierTable.Claimed)
                {
                    applier.ClaimedSlots[0] = slot;
                    applier.ClaimedTypes[0] = resolved.ValueTypes[v];
                    pending[0] = v;
                    taken += Number(resolved, applier, 1);
                    break;
                }
                if (_broken)
                {
                    // The holder failed (its error stops the scan and is the one reported) and will never publish.
                    ids[v] = -1;
                    break;
                }
                spin.SpinOnce();
            }
        }
        Interlocked.Add(ref _reserved, taken - count); // what was reserved and not taken
    }

    /// <summary>Numbers the applier's first <paramref name="claimed"/> claims, logs their values in id order, and publishes them.</summary>
    private int Number(BatchResolver resolved, Applier applier, int claimed)
    {
        int first;
        try
        {
            lock (_numbering)
            {
                first = _table.TakeIds(applier.ClaimedTypes.AsSpan(0, claimed));
                if (_values is not null)
                {
                    for (var k = 0; k < claimed; k++)
                    {
                        _values.Append(resolved.Canonical(applier.Pending[k]));
                    }
                }
            }
        }
        catch
        {
            // The scratch disk full, say: the claims stay held, and a worker waiting on one must not wait forever.
            _broken = true;
            throw;
        }
        for (var k = 0; k < claimed; k++)
        {
            _table.Publish(applier.ClaimedSlots[k], first + k);
            applier.ValueIds[applier.Pending[k]] = first + k;
        }
        return claimed;
    }

    /// <summary>
    /// One worker's side of <see cref="Apply"/>: the batch's value ids and scratch, and the links and skip counts it
    /// finds, kept apart from other workers' until the scan ends (<see cref="Absorb"/>).
    /// </summary>
    internal sealed class Applier
    {
        private readonly IdentityGraphBuilder _builder;
        private long _compactAt = MinCompactAt;

        public Applier(IdentityGraphBuilder builder, int owner, EdgeSet edges, long[][] skipped)
        {
            _builder = builder;
            Owner = owner;
            Edges = edges;
            Skipped = skipped;
        }

        /// <summary>The owner number its table claims are made under.</summary>
        public int Owner { get; }

        public EdgeSet Edges { get; }

        public long[][] Skipped { get; }

        public int[] ValueIds { get; private set; } = new int[1024];

        public int[] Pending { get; private set; } = new int[1024];

        public int[] Waiting { get; private set; } = new int[1024];

        public int[] ClaimedSlots { get; private set; } = new int[1024];

        public byte[] ClaimedTypes { get; private set; } = new byte[1024];

        public void Prepare(int values)
        {
            if (ValueIds.Length < values)
            {
                var length = Math.Max(values, ValueIds.Length * 2);
                ValueIds = new int[length];
                Pending = new int[length];
                Waiting = new int[length];
                ClaimedSlots = new int[length];
                ClaimedTypes = new byte[length];
            }
        }

        /// <summary>Links each run of the batch to its hub, counts skips, and records hubs, from the value ids just found.</summary>
        public void Link(BatchResolver resolved, FileHubs? hubs, long fileRow)
        {
            // Every event row repeats its person's links: drop the repeats now and then, so the buffer stays within a
            // small multiple of the distinct links (at 10M people, hundreds of millions of repeats would otherwise wait
            // for the end). Before the batch rather than after it: a batch crossing the threshold would double the
            // buffer (16M links to 32M, 256 MB, at the first one) only for it to be compacted straight away.
            if (Edges.Count > 0 && Edges.Count + ((long)resolved.Runs * Math.Max(0, resolved.Slots - 1)) > _compactAt)
            {
                var distinct = Edges.Deduplicate().Length;
                _compactAt = Math.Max(MinCompactAt, 2L * distinct);
            }
            var order = resolved.Order;
            var refs = resolved.Refs;
            var slotTypes = resolved.SlotTypes;
            var ids = ValueIds;
            for (var run = 0; run < resolved.Runs; run++)
            {
                var row = resolved.RunStarts[run];
                var repeats = resolved.RunLengths[run];
                var hub = -1;
                var others = false;
                for (var k = 0; k < resolved.Slots; k++)
                {
                    var slot = order[k];
                    var reference = refs[slot][row];
                    if (reference == BatchResolver.Null)
                    {
                        continue;
                    }
                    if (reference < BatchResolver.Null)
                    {
                        Skipped[slotTypes[slot]][(int)BatchResolver.StatusOf(reference)] += repeats;
                        continue;
                    }
                    var id = ids[reference];
                    if (id < 0)
                    {
                        Skipped[slotTypes[slot]][(int)NormalizeStatus.Blocked] += repeats;
                        continue;
                    }
                    if (hub < 0)
                    {
                        hub = id;
                    }
                    else
                    {
                        Edges.Add(hub, id);
                        others = true;
                    }
                }
                hubs?.Set(fileRow + row, repeats, hub, others);
            }
            hubs?.Recorded(resolved.Rows);
        }

        /// <summary>Hands the applier's links and skip counts to the builder (a scan worker's, once the scan is over).</summary>
        public void Absorb()
        {
            if (ReferenceEquals(this, _builder._own))
            {
                return;
            }
            _builder._edges.AddFrom(Edges);
            for (var t = 0; t < Skipped.Length; t++)
            {
                for (var status = 0; status < Skipped[t].Length; status++)
                {
                    _builder._skipped[t][status] += Skipped[t][status];
                }
            }
        }
    }

    /// <summary>A new applier for one scan worker, with an owner number of its own (0 is the builder's applier).</summary>
    internal Applier NewApplier() => new(this, Interlocked.Increment(ref _owners), new EdgeSet(), NewSkipCounts(_rules));

    private int _owners;

    // 16M edges (128 MB) before the first compaction: below that, one sort at the end is cheaper.
    private const long MinCompactAt = 1 << 24;

    /// <summary>
    /// The UTF-8 bytes of a string (or dictionary-of-string) value; false when it is null. For one value; a loop over a
    /// batch's rows makes one <see cref="Utf8Column"/> instead, so the buffers are fetched once.
    /// </summary>
    internal static bool TryGetBytes(IArrowArray array, int row, out ReadOnlySpan<byte> value) => new Utf8Column(array).TryGet(row, out value);

    /// <summary>
    /// A string (or dictionary-of-string) column's buffers, fetched once for a batch: Arrow's <c>IsNull</c> and
    /// <c>ValueOffsets</c> fetch the array's buffers again on every call, on half a billion rows per identifier column.
    /// </summary>
    internal readonly ref struct Utf8Column
    {
        private readonly ReadOnlySpan<byte> _validity;
        private readonly int _first;
        private readonly bool _dictionary;
        private readonly ReadOnlySpan<int> _indices;
        private readonly IArrowArray? _otherIndices;
        private readonly ReadOnlySpan<byte> _entryValidity;
        private readonly int _entryFirst;
        private readonly ReadOnlySpan<int> _offsets;
        private readonly ReadOnlySpan<byte> _bytes;
        private readonly IArrowArray? _notStrings;

        public Utf8Column(IArrowArray array)
        {
            // A dictionary array's validity is its indices'.
            _validity = BatchResolver.Validity(array, out _first);
            switch (array)
            {
                case StringArray strings:
                    _offsets = strings.ValueOffsets;
                    _bytes = strings.ValueBuffer.Span;
                    break;
                case DictionaryArray { Dictionary: StringArray entries } dictionary:
                    _dictionary = true;
                    if (dictionary.Indices is Int32Array indices)
                    {
                        _indices = indices.Values;
                    }
                    else
                    {
                        _otherIndices = dictionary.Indices;
                    }
                    _entryValidity = BatchResolver.Validity(entries, out _entryFirst);
                    _offsets = entries.ValueOffsets;
                    _bytes = entries.ValueBuffer.Span;
                    break;
                default:
                    // Not strings: an error at the first value that is there, as a cast of it would be.
                    _notStrings = array;
                    break;
            }
        }

        /// <summary>The UTF-8 bytes of row <paramref name="row"/>; false when it is null.</summary>
        public bool TryGet(int row, out ReadOnlySpan<byte> value)
        {
            value = default;
            if (!BatchResolver.IsValid(_validity, _first + row))
            {
                return false;
            }
            var index = row;
            if (_dictionary)
            {
                index = _otherIndices is null ? _indices[row] : Index(_otherIndices, row);
                if (!BatchResolver.IsValid(_entryValidity, _entryFirst + index))
                {
                    return false;
                }
            }
            else if (_notStrings is not null)
            {
                throw new InvalidCastException($"a {_notStrings.Data.DataType.Name} column is not a string column");
            }
            value = _bytes[_offsets[index].._offsets[index + 1]];
            return true;
        }

        private static int Index(IArrowArray indices, int row) => indices switch
        {
            Int16Array a => a.Values[row],
            Int8Array a => a.Values[row],
            Int64Array a => checked((int)a.Values[row]),
            UInt32Array a => checked((int)a.Values[row]),
            UInt16Array a => a.Values[row],
            UInt8Array a => a.Values[row],
            _ => throw new NotSupportedException($"dictionary index type {indices.Data.DataType.Name} is not supported"),
        };
    }

    /// <summary>The id of an identifier known not to be blocked, added (its value logged) if new; notes where it was met.</summary>
    private int Add(in IdentifierKey key, byte typeId, ReadOnlySpan<byte> canonical, long position)
    {
        // One thread at a time here (an earlier run's identifiers, before any scan): grow like the workers do.
        if (_table.Count + 1 > Room)
        {
            GrowFor(_table.Count + 1);
        }
        var before = _table.Count;
        var id = _table.GetOrAdd(key, typeId);
        if (id == before)
        {
            _values?.Append(canonical);
            _reserved++;
        }
        Seen(id, position);
        return id;
    }

    /// <summary>
    /// Adds an identifier whose value is already canonical (an earlier run's output, re-read by an incremental run)
    /// and returns its id. No normalisation or blocklist check: the value passed them when it was first seen.
    /// </summary>
    public int AddCanonical(byte typeId, ReadOnlySpan<byte> canonical)
    {
        ThrowIfHandedOver();
        if (typeId >= _rules.Types.Count)
        {
            throw new ArgumentOutOfRangeException(nameof(typeId), typeId, "no identifier type has this id");
        }
        // An earlier run's identifiers were all met before this run's data, in the order that run wrote them.
        return Add(IdentifierKey.Compute(typeId, canonical), typeId, canonical, Position(0, 0, _table.Count));
    }

    /// <summary>Adds the edge between two identifier ids (an earlier run's link, for an incremental run).</summary>
    public void AddEdge(int a, int b)
    {
        ThrowIfHandedOver();
        _edges.Add(a, b);
    }

    /// <summary>Deduplicates the edges and returns the graph (spans over the builder's storage).</summary>
    public IdentityGraph Build()
    {
        ThrowIfHandedOver();
        return new(_edges.Deduplicate(), _table.Types);
    }

    /// <summary>
    /// The graph renumbered in key order (<see cref="CanonicalGraph"/>): what it says depends only on which
    /// identifiers and links were added, not on the order they arrived in, so everything computed from it (stitching,
    /// which limits refuse which link, profile ids) is the same whatever the number of threads that built it.
    /// </summary>
    /// <remarks>
    /// The builder hands its storage over and is spent afterwards: its hash table, positions and edge buffer — most of
    /// the stage's memory — are let go as soon as the graph no longer needs them, instead of living on beside the
    /// stitch and the output. <see cref="Rows"/>, <see cref="Skipped"/> and <see cref="Rules"/> stay readable; adding
    /// anything throws. With <paramref name="keepTable"/> the hash table is the caller's to keep (taken from
    /// <see cref="Table"/> before this call): the run hands it on to the stages that find each row's profile.
    /// </remarks>
    public CanonicalGraph BuildCanonical(bool keepTable = false)
    {
        ThrowIfHandedOver();
        var n = _table.Count;
        var order = CanonicalGraph.NodeOrder(_table, _firstSeen);
        var types = new byte[n];
        var builderTypes = _table.Types;
        for (var i = 0; i < n; i++)
        {
            types[i] = builderTypes[order[i]];
        }
        _handedOver = true;
        var released = (keepTable ? 0 : _table.AllocatedBytes) + ((long)_firstSeen.Length * sizeof(long));
        _table = new IdentifierTable();
        _firstSeen = [];
        // The hash table and the positions are most of the heap (a few hundred MB at a million people, gigabytes at ten
        // million), on the large object heap, which only a full collection frees, and nothing would start one before
        // the stage ends: the edge sort, the stitch and the output would be allocated beside them, not in their place.
        // Not aggressive: that would hand the space back to the system, for the stitch to map again page by page (on a
        // virtual machine that returns freed pages to its host, about 0.6 s per GB); this leaves it to be reused.
        if (released >= CollectAfterBytes)
        {
            GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        }
        var rank = new int[n];
        for (var i = 0; i < n; i++)
        {
            rank[order[i]] = i;
        }
        // The buffer still holds the raw links since the last compaction, in builder ids: renumbered in place, they
        // need one sort (which also drops the repeats) instead of one before renumbering and one after.
        _edges.Relabel(rank);
        var edges = _edges.Deduplicate().ToArray();
        released = _edges.AllocatedBytes * 2; // the buffer and the sort's scratch
        _edges = new EdgeSet();
        if (released >= CollectAfterBytes)
        {
            // The edge buffer and its sort scratch: an ordinary full collection lets the stitch reuse their space.
            GC.Collect();
        }
        return new CanonicalGraph(order, rank, types, edges);
    }

    // Below this, what the handover lets go is not worth a full collection (a test's graph, a small workspace).
    private const long CollectAfterBytes = 64L << 20;

    private void ThrowIfHandedOver()
    {
        if (_handedOver)
        {
            ThrowHandedOver();
        }
    }

    [DoesNotReturn]
    private static void ThrowHandedOver() =>
        throw new InvalidOperationException("this builder has handed its graph over (BuildCanonical) and takes no more identifiers or links");

    /// <summary>The stitching policy of each type of the rules: rank = priority index, its limit and shared-value threshold.</summary>
    public IdentifierTypePolicy[] Policies()
    {
        var policies = new IdentifierTypePolicy[_rules.Types.Count];
        for (var t = 0; t < policies.Length; t++)
        {
            policies[t] = new IdentifierTypePolicy(t, _rules.Types[t].Limit, _rules.Types[t].SharedAfter);
        }
        return policies;
    }

    /// <summary>Builds the graph and stitches it with the rules' priorities, limits and shared-value thresholds.</summary>
    public StitchResult Stitch()
    {
        var graph = Build();
        return Stitcher.Run(graph.NodeTypes, graph.Edges, Policies());
    }

    /// <summary>
    /// Scans <paramref name="source"/>'s identifier columns (and composite parts) of <paramref name="dataset"/> into
    /// <paramref name="target"/>. Single-threaded for now: a parallel scan with one builder per worker, merged
    /// afterwards (re-keying each worker's ids into one table), is a later step.
    /// </summary>
    public static void FromDataset(Dataset dataset, SourceDefinition source, IdentityRules rules, IdentityGraphBuilder target)
        => FromDataset(dataset, source, 1, rules, target, ScanOptions.Default, null, CancellationToken.None);

    /// <summary>
    /// <see cref="FromDataset(Dataset, SourceDefinition, IdentityRules, IdentityGraphBuilder)"/> with the source's scan
    /// options, reporting the rows read so far after each batch. With <see cref="ScanOptions.Parallelism"/> above 1,
    /// row groups are decoded, normalised and hashed on that many workers, and their results applied to the graph one
    /// batch at a time in the order they finish: the identifier ids then depend on timing, so callers that need a
    /// deterministic result work in key order (<see cref="BuildCanonical"/>); with 1,
    /// ids follow file and row order. <c>sourceOrdinal</c> is the source's place among the workspace's sources,
    /// 1 … 255, recorded in <see cref="FirstSeen"/>.
    /// </summary>
    public static void FromDataset(
        Dataset dataset, SourceDefinition source, int sourceOrdinal, IdentityRules rules, IdentityGraphBuilder target, ScanOptions options,
        Action<long>? rowsRead, CancellationToken cancellationToken)
        => FromDataset(dataset, source, sourceOrdinal, rules, target, options, null, rowsRead, cancellationToken);

    /// <summary>
    /// <see cref="FromDataset(Dataset, SourceDefinition, int, IdentityRules, IdentityGraphBuilder, ScanOptions, Action{long}?, CancellationToken)"/>,
    /// recording each row's hub in <paramref name="hubs"/> (made for <paramref name="dataset"/>'s files) when given.
    /// </summary>
    internal static void FromDataset(
        Dataset dataset, SourceDefinition source, int sourceOrdinal, IdentityRules rules, IdentityGraphBuilder target, ScanOptions options,
        SourceHubs? hubs, Action<long>? rowsRead, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(dataset);
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(rules);
        ArgumentNullException.ThrowIfNull(target);
        if (!ReferenceEquals(rules, target.Rules))
        {
            throw new ArgumentException("the target builder was made for other identity rules", nameof(target));
        }
        var specs = new List<ColumnSpec>();
        var positions = new Dictionary<string, int>(StringComparer.Ordinal);
        int Position(string column)
        {
            if (!positions.TryGetValue(column, out var position))
            {
                var spec = source.Schema.Find(column)
                    ?? throw new ArgumentException($"source '{source.Name}': identifier column '{column}' is not declared in its columns", nameof(source));
                position = specs.Count;
                specs.Add(spec);
                positions.Add(column, position);
            }
            return position;
        }
        IdentifierType Type(string name) => rules.Find(name)
            ?? throw new ArgumentException($"source '{source.Name}': identifier type '{name}' is not defined by the identity rules", nameof(source));

        var identifierColumns = new List<(int Column, IdentifierType Type)>();
        var regionColumns = new List<int>();
        foreach (var (column, type) in source.Identifiers)
        {
            identifierColumns.Add((Position(column), Type(type)));
            regionColumns.Add(source.PhoneRegionColumns.TryGetValue(column, out var region) ? Position(region) : -1);
        }
        var composites = new List<(IReadOnlyList<int> Columns, IdentifierType Type)>();
        foreach (var (type, columns) in source.CompositeIdentifiers)
        {
            var indices = new int[columns.Count];
            for (var i = 0; i < indices.Length; i++)
            {
                indices[i] = Position(columns[i]);
            }
            composites.Add((indices, Type(type)));
        }
        if (specs.Count == 0)
        {
            return;
        }
        long rows = 0;
        var gate = new Lock();
        var workers = DatasetScan.Run(
            dataset,
            specs,
            () => (Resolver: new BatchResolver(rules), Applier: target.NewApplier()),
            (worker, scan) =>
            {
                worker.Resolver.Resolve(scan.Batch, identifierColumns, composites, regionColumns);
                target.Apply(
                    worker.Resolver, IdentityGraphBuilder.Position(sourceOrdinal, scan.FileIndex, scan.FileRowOffset), worker.Applier,
                    hubs?.File(scan.FileIndex, scan.FileRows), scan.FileRowOffset);
                if (rowsRead is not null)
                {
                    lock (gate)
                    {
                        rows += scan.Batch.Length;
                        rowsRead(rows);
                    }
                }
            },
            options,
            cancellationToken);
        foreach (var worker in workers)
        {
            worker.Applier.Absorb();
        }
    }
}
