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
/// logged or kept. Not thread-safe; <see cref="FromDataset(Dataset, SourceDefinition, int, IdentityRules, IdentityGraphBuilder, ScanOptions, Action{long}?, CancellationToken)"/>
/// resolves batches on several workers and applies them to one builder in turn.
/// </summary>
public sealed class IdentityGraphBuilder
{
    private readonly IdentityRules _rules;
    private IdentifierTable _table;
    private EdgeSet _edges;
    private bool _handedOver;
    private readonly long[][] _skipped;
    private BatchResolver? _resolver;
    private int[] _valueIds = new int[1024];
    private long[] _firstSeen = [];

    private readonly CanonicalValueLog? _values;

    // Keys of distinct values found on the blocklist, so that their later occurrences skip the patterns.
    private readonly IdentifierTable _blocked = new();

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
        _firstSeen = new long[expectedIdentifiers];
        _firstSeen.AsSpan().Fill(long.MaxValue);
        _edges = new EdgeSet();
        var statuses = Enum.GetValues<NormalizeStatus>().Length;
        _skipped = new long[rules.Types.Count][];
        for (var t = 0; t < _skipped.Length; t++)
        {
            _skipped[t] = new long[statuses];
        }
    }

    public IdentityRules Rules => _rules;

    /// <summary>The identifiers seen so far.</summary>
    public IdentifierTable Table => _table;

    /// <summary>The edges added so far (not yet deduplicated until <see cref="Build"/>).</summary>
    public EdgeSet Edges => _edges;

    /// <summary>Rows given to <see cref="AddBatch(RecordBatch, IReadOnlyList{ValueTuple{int, IdentifierType}}, IReadOnlyList{ValueTuple{IReadOnlyList{int}, IdentifierType}}?)"/>.</summary>
    public long Rows { get; private set; }

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
        Apply(_resolver, Position(1, 0, Rows));
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

    private void Seen(int id, long position)
    {
        if (id >= _firstSeen.Length)
        {
            var old = _firstSeen.Length;
            System.Array.Resize(ref _firstSeen, Math.Max(Math.Max(id + 1, 1024), old * 2));
            _firstSeen.AsSpan(old).Fill(long.MaxValue);
        }
        if (position < _firstSeen[id])
        {
            _firstSeen[id] = position;
        }
    }

    /// <summary>
    /// The second half of adding a batch, the half that touches the graph: each distinct value of the batch gets its
    /// identifier id (the blocklist is consulted only for a value not seen before: a known identifier passed it
    /// already, and a blocked one is remembered by key, so the patterns run once per distinct value), skips are
    /// counted, and each row's identifiers (once per run of equal rows) are linked as a star to its highest-priority one. One caller at a time.
    /// With <paramref name="hubs"/>, each row's hub is recorded there, the batch's first row being file row <paramref name="fileRow"/>.
    /// </summary>
    internal void Apply(BatchResolver resolved, long basePosition, FileHubs? hubs = null, long fileRow = 0)
    {
        ThrowIfHandedOver();
        var values = resolved.Values;
        if (_valueIds.Length < values)
        {
            _valueIds = new int[Math.Max(values, _valueIds.Length * 2)];
        }
        var keys = resolved.Keys;
        const int Ahead = 16;
        for (var v = 0; v < Math.Min(Ahead, values); v++)
        {
            _table.Prefetch(keys[v]);
        }
        for (var v = 0; v < values; v++)
        {
            if (v + Ahead < values)
            {
                // Independent lookups: keep several cache misses in flight instead of one at a time.
                _table.Prefetch(keys[v + Ahead]);
            }
            ref readonly var key = ref keys[v];
            if (_table.TryGet(key, out var known))
            {
                _valueIds[v] = known;
                Seen(known, basePosition + resolved.FirstRow[v]);
                continue;
            }
            var typeId = resolved.ValueTypes[v];
            if (_blocked.TryGet(key, out _))
            {
                _valueIds[v] = -1;
                continue;
            }
            var canonical = resolved.Canonical(v);
            if (_rules.Types[typeId].Blocklist.IsBlocked(canonical))
            {
                _blocked.GetOrAdd(key, typeId);
                _valueIds[v] = -1;
                continue;
            }
            _valueIds[v] = Add(key, typeId, canonical, basePosition + resolved.FirstRow[v]);
        }

        // Every event row repeats its person's links: drop the repeats now and then, so the buffer stays within a small
        // multiple of the distinct links (at 10M people, hundreds of millions of repeats would otherwise wait for the
        // end). Before the batch rather than after it: a batch crossing the threshold would double the buffer (16M links
        // to 32M, 256 MB, at the first one) only for it to be compacted straight away.
        if (_edges.Count > 0 && _edges.Count + ((long)resolved.Runs * Math.Max(0, resolved.Slots - 1)) > _compactAt)
        {
            var distinct = _edges.Deduplicate().Length;
            _compactAt = Math.Max(MinCompactAt, 2L * distinct);
        }
        var order = resolved.Order;
        var refs = resolved.Refs;
        var slotTypes = resolved.SlotTypes;
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
                    _skipped[slotTypes[slot]][(int)BatchResolver.StatusOf(reference)] += repeats;
                    continue;
                }
                var id = _valueIds[reference];
                if (id < 0)
                {
                    _skipped[slotTypes[slot]][(int)NormalizeStatus.Blocked] += repeats;
                    continue;
                }
                if (hub < 0)
                {
                    hub = id;
                }
                else
                {
                    _edges.Add(hub, id);
                    others = true;
                }
            }
            hubs?.Set(fileRow + row, repeats, hub, others);
        }
        hubs?.Recorded(resolved.Rows);
        Rows += resolved.Rows;
    }

    // 16M edges (128 MB) before the first compaction: below that, one sort at the end is cheaper.
    private const long MinCompactAt = 1 << 24;
    private long _compactAt = MinCompactAt;

    /// <summary>The UTF-8 bytes of a string (or dictionary-of-string) value; false when it is null.</summary>
    internal static bool TryGetBytes(IArrowArray array, int row, out ReadOnlySpan<byte> value)
    {
        value = default;
        if (array.IsNull(row))
        {
            return false;
        }
        StringArray strings;
        int index;
        if (array is DictionaryArray dictionary)
        {
            strings = (StringArray)dictionary.Dictionary;
            index = dictionary.Indices switch
            {
                Int32Array a => a.Values[row],
                Int16Array a => a.Values[row],
                Int8Array a => a.Values[row],
                Int64Array a => checked((int)a.Values[row]),
                UInt32Array a => checked((int)a.Values[row]),
                UInt16Array a => a.Values[row],
                UInt8Array a => a.Values[row],
                _ => throw new NotSupportedException($"dictionary index type {dictionary.Indices.Data.DataType.Name} is not supported"),
            };
            if (strings.IsNull(index))
            {
                return false;
            }
        }
        else
        {
            strings = (StringArray)array;
            index = row;
        }
        var offsets = strings.ValueOffsets;
        value = strings.ValueBuffer.Span[offsets[index]..offsets[index + 1]];
        return true;
    }

    /// <summary>The id of an identifier known not to be blocked, added (its value logged) if new; notes where it was met.</summary>
    private int Add(in IdentifierKey key, byte typeId, ReadOnlySpan<byte> canonical, long position)
    {
        var before = _table.Count;
        var id = _table.GetOrAdd(key, typeId);
        if (id == before)
        {
            _values?.Append(canonical);
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
        // Aggressive, so that the memory goes back to the system now instead of being decommitted bit by bit at later
        // collections; its compaction moves what is live (mostly the edge buffer), tens of ms at a million people.
        if (released >= CollectAfterBytes)
        {
            GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
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
        DatasetScan.Run(
            dataset,
            specs,
            () => new BatchResolver(rules),
            (resolver, scan) =>
            {
                // The costly half (decoding, normalising, hashing) runs on every worker; applying is serialised.
                resolver.Resolve(scan.Batch, identifierColumns, composites, regionColumns);
                lock (gate)
                {
                    target.Apply(
                        resolver, IdentityGraphBuilder.Position(sourceOrdinal, scan.FileIndex, scan.FileRowOffset),
                        hubs?.File(scan.FileIndex, scan.FileRows), scan.FileRowOffset);
                    rows += scan.Batch.Length;
                    rowsRead?.Invoke(rows);
                }
            },
            options,
            cancellationToken);
    }
}
