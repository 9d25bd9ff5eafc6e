using System.Numerics;
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
/// logged or kept. Not thread-safe: one builder per worker.
/// </summary>
public sealed class IdentityGraphBuilder
{
    // Marks a dictionary entry not canonicalised yet in this batch (ids are >= 0, skipped statuses -1 … -5).
    private const int Unresolved = int.MinValue;

    private readonly IdentityRules _rules;
    private readonly IdentifierTable _table;
    private readonly EdgeSet _edges;
    private readonly long[][] _skipped;
    private byte[] _destination = new byte[IdentifierNormalizers.MaxOutputBytes(256)];
    private byte[] _scratch = new byte[256];
    private int[] _dictionaryIds = [];
    private int[][] _columnIds = [];

    private readonly CanonicalValueLog? _values;

    // Keys of distinct values found on the blocklist, so that their later occurrences skip the patterns.
    private readonly IdentifierTable _blocked = new();

    /// <summary>
    /// Creates a builder for <paramref name="rules"/>. With <paramref name="values"/>, the canonical value of every new
    /// identifier is appended to it as its id is assigned, so the values can be written out later in id order
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

    private byte TypeId(IdentifierType type)
    {
        var id = TypeId(type.Name);
        if (!ReferenceEquals(_rules.Types[id], type))
        {
            throw new ArgumentException($"identifier type '{type.Name}' is not the one the identity rules define", nameof(type));
        }
        return id;
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
        var rows = batch.Length;
        var total = identifierColumns.Count + (composites?.Count ?? 0);
        if (_columnIds.Length < total)
        {
            System.Array.Resize(ref _columnIds, total);
        }
        // Slot order: each slot's type id, then slots sorted by type priority so the first id found in a row is its hub.
        Span<byte> slotTypes = total <= 64 ? stackalloc byte[total] : new byte[total];
        for (var s = 0; s < total; s++)
        {
            if (_columnIds[s] is null || _columnIds[s].Length < rows)
            {
                _columnIds[s] = new int[Math.Max(rows, 1024)];
            }
        }
        for (var c = 0; c < identifierColumns.Count; c++)
        {
            var (column, type) = identifierColumns[c];
            var typeId = TypeId(type);
            slotTypes[c] = typeId;
            ResolveColumn(batch.Column(column), rows, typeId, type, _columnIds[c]);
        }
        for (var c = 0; c < (composites?.Count ?? 0); c++)
        {
            var (columns, type) = composites![c];
            var typeId = TypeId(type);
            var slot = identifierColumns.Count + c;
            slotTypes[slot] = typeId;
            var arrays = new IArrowArray[columns.Count];
            for (var p = 0; p < arrays.Length; p++)
            {
                arrays[p] = batch.Column(columns[p]);
            }
            ResolveComposite(arrays, rows, typeId, type, _columnIds[slot]);
        }

        Span<int> order = total <= 64 ? stackalloc int[total] : new int[total];
        for (var s = 0; s < total; s++)
        {
            order[s] = s;
        }
        // Insertion sort by type id (stable): a handful of slots.
        for (var i = 1; i < total; i++)
        {
            var current = order[i];
            var j = i - 1;
            while (j >= 0 && slotTypes[order[j]] > slotTypes[current])
            {
                order[j + 1] = order[j];
                j--;
            }
            order[j + 1] = current;
        }

        for (var row = 0; row < rows; row++)
        {
            var hub = -1;
            for (var k = 0; k < total; k++)
            {
                var id = _columnIds[order[k]][row];
                if (id < 0)
                {
                    continue;
                }
                if (hub < 0)
                {
                    hub = id;
                }
                else
                {
                    _edges.Add(hub, id);
                }
            }
        }
        Rows += rows;
    }

    /// <summary>Fills <paramref name="ids"/>[row] with the row's identifier id, or -1 when it links nothing.</summary>
    private void ResolveColumn(IArrowArray array, int rows, byte typeId, IdentifierType type, int[] ids)
    {
        switch (array)
        {
            case StringArray strings:
                ResolveStrings(strings, rows, typeId, type, ids);
                break;
            case DictionaryArray dictionary when dictionary.Dictionary is StringArray entries:
                ResolveDictionary(dictionary, entries, rows, typeId, type, ids);
                break;
            default:
                throw new NotSupportedException(
                    $"identifier type '{type.Name}': column type {array.Data.DataType.Name} is not supported (a string column is expected)");
        }
    }

    private void ResolveStrings(StringArray strings, int rows, byte typeId, IdentifierType type, int[] ids)
    {
        var offsets = strings.ValueOffsets;
        var values = strings.ValueBuffer.Span;
        var anyNull = strings.NullCount > 0;
        // Rows come grouped by person and session, so a value often repeats the row before: compare the bytes
        // (a few nanoseconds) before normalising and hashing again.
        ReadOnlySpan<byte> last = default;
        var lastId = Unresolved;
        for (var row = 0; row < rows; row++)
        {
            if (anyNull && strings.IsNull(row))
            {
                ids[row] = -1;
                continue;
            }
            var raw = values[offsets[row]..offsets[row + 1]];
            if (lastId == Unresolved || !raw.SequenceEqual(last))
            {
                last = raw;
                lastId = Resolve(raw, typeId, type);
            }
            ids[row] = lastId >= 0 ? lastId : Count(typeId, lastId);
        }
    }

    private void ResolveDictionary(DictionaryArray dictionary, StringArray entries, int rows, byte typeId, IdentifierType type, int[] ids)
    {
        // Each dictionary entry is canonicalised once per batch, on first use (an unused entry adds no identifier).
        var size = entries.Length;
        if (_dictionaryIds.Length < size)
        {
            _dictionaryIds = new int[Math.Max(size, _dictionaryIds.Length * 2)];
        }
        var cache = _dictionaryIds.AsSpan(0, size);
        cache.Fill(Unresolved);
        switch (dictionary.Indices)
        {
            case Int32Array i32: Map(i32, entries, cache, rows, typeId, type, ids); break;
            case Int16Array i16: Map(i16, entries, cache, rows, typeId, type, ids); break;
            case Int8Array i8: Map(i8, entries, cache, rows, typeId, type, ids); break;
            case Int64Array i64: Map(i64, entries, cache, rows, typeId, type, ids); break;
            case UInt32Array u32: Map(u32, entries, cache, rows, typeId, type, ids); break;
            case UInt16Array u16: Map(u16, entries, cache, rows, typeId, type, ids); break;
            case UInt8Array u8: Map(u8, entries, cache, rows, typeId, type, ids); break;
            default:
                throw new NotSupportedException(
                    $"identifier type '{type.Name}': dictionary index type {dictionary.Indices.Data.DataType.Name} is not supported");
        }
    }

    private void Map<T>(PrimitiveArray<T> indices, StringArray entries, Span<int> cache, int rows, byte typeId, IdentifierType type, int[] ids)
        where T : struct, IBinaryInteger<T>
    {
        var values = indices.Values;
        var anyNull = indices.NullCount > 0;
        var offsets = entries.ValueOffsets;
        var bytes = entries.ValueBuffer.Span;
        for (var row = 0; row < rows; row++)
        {
            if (anyNull && indices.IsNull(row))
            {
                ids[row] = -1;
                continue;
            }
            var index = int.CreateTruncating(values[row]);
            var id = cache[index];
            if (id == Unresolved)
            {
                id = entries.IsNull(index) ? -1 - (int)NormalizeStatus.Ok : Resolve(bytes[offsets[index]..offsets[index + 1]], typeId, type);
                cache[index] = id;
            }
            // A null dictionary entry is a null value: skipped, not counted.
            ids[row] = id >= 0 ? id : id == -1 - (int)NormalizeStatus.Ok ? -1 : Count(typeId, id);
        }
    }

    private void ResolveComposite(IArrowArray[] parts, int rows, byte typeId, IdentifierType type, int[] ids)
    {
        for (var p = 0; p < parts.Length; p++)
        {
            if (parts[p] is not StringArray && !(parts[p] is DictionaryArray { Dictionary: StringArray }))
            {
                throw new NotSupportedException(
                    $"composite identifier type '{type.Name}': column type {parts[p].Data.DataType.Name} is not supported (a string column is expected)");
            }
        }
        for (var row = 0; row < rows; row++)
        {
            var length = parts.Length - 1;
            var anyNull = false;
            for (var p = 0; p < parts.Length; p++)
            {
                if (!TryGetBytes(parts[p], row, out var value))
                {
                    anyNull = true;
                    break;
                }
                length += value.Length;
            }
            if (anyNull)
            {
                ids[row] = Count(typeId, -1 - (int)NormalizeStatus.Empty);
                continue;
            }
            if (_scratch.Length < length)
            {
                _scratch = new byte[Math.Max(length, _scratch.Length * 2)];
            }
            var w = 0;
            for (var p = 0; p < parts.Length; p++)
            {
                if (p > 0)
                {
                    _scratch[w++] = IdentifierNormalizers.PartSeparator;
                }
                TryGetBytes(parts[p], row, out var value);
                value.CopyTo(_scratch.AsSpan(w));
                w += value.Length;
            }
            var id = Resolve(_scratch.AsSpan(0, w), typeId, type);
            ids[row] = id >= 0 ? id : Count(typeId, id);
        }
    }

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

    /// <summary>
    /// The identifier id of one raw value, or -1 - status when it links nothing. The blocklist (exact values and
    /// regular expressions) is consulted only for a value not seen before: a known identifier passed it already, and a
    /// blocked one is remembered by key, so the patterns run once per distinct value, not once per row.
    /// </summary>
    private int Resolve(ReadOnlySpan<byte> raw, byte typeId, IdentifierType type)
    {
        var need = IdentifierNormalizers.MaxOutputBytes(raw.Length);
        if (_destination.Length < need)
        {
            _destination = new byte[Math.Max(need, _destination.Length * 2)];
        }
        var status = type.Normalizer.Normalize(raw, _destination, out var written);
        if (status != NormalizeStatus.Ok)
        {
            return -1 - (int)status;
        }
        var canonical = _destination.AsSpan(0, written);
        var key = IdentifierKey.Compute(typeId, canonical);
        if (_table.TryGet(key, out var known))
        {
            return known;
        }
        if (_blocked.TryGet(key, out _))
        {
            return -1 - (int)NormalizeStatus.Blocked;
        }
        if (type.Blocklist.IsBlocked(canonical))
        {
            _blocked.GetOrAdd(key, typeId);
            return -1 - (int)NormalizeStatus.Blocked;
        }
        var id = _table.GetOrAdd(key, typeId);
        _values?.Append(canonical);
        return id;
    }

    private int Add(byte typeId, ReadOnlySpan<byte> canonical)
    {
        var before = _table.Count;
        var id = _table.GetOrAdd(IdentifierKey.Compute(typeId, canonical), typeId);
        if (id == before)
        {
            _values?.Append(canonical);
        }
        return id;
    }

    /// <summary>
    /// Adds an identifier whose value is already canonical (an earlier run's output, re-read by an incremental run)
    /// and returns its id. No normalisation or blocklist check: the value passed them when it was first seen.
    /// </summary>
    public int AddCanonical(byte typeId, ReadOnlySpan<byte> canonical)
    {
        if (typeId >= _rules.Types.Count)
        {
            throw new ArgumentOutOfRangeException(nameof(typeId), typeId, "no identifier type has this id");
        }
        return Add(typeId, canonical);
    }

    /// <summary>Adds the edge between two identifier ids (an earlier run's link, for an incremental run).</summary>
    public void AddEdge(int a, int b) => _edges.Add(a, b);

    /// <summary>Counts a skipped value (encoded as -1 - status) and returns -1.</summary>
    private int Count(byte typeId, int encoded)
    {
        _skipped[typeId][-1 - encoded]++;
        return -1;
    }

    /// <summary>Deduplicates the edges and returns the graph (spans over the builder's storage).</summary>
    public IdentityGraph Build() => new(_edges.Deduplicate(), _table.Types);

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
        => FromDataset(dataset, source, rules, target, ScanOptions.Default, null, CancellationToken.None);

    /// <summary>
    /// <see cref="FromDataset(Dataset, SourceDefinition, IdentityRules, IdentityGraphBuilder)"/> with the source's scan
    /// options (CSV settings; parallelism is always 1, ids being assigned in file and row order so that the same input
    /// gives the same graph), reporting the rows read so far after each batch.
    /// </summary>
    public static void FromDataset(
        Dataset dataset, SourceDefinition source, IdentityRules rules, IdentityGraphBuilder target, ScanOptions options,
        Action<long>? rowsRead, CancellationToken cancellationToken)
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
        foreach (var (column, type) in source.Identifiers)
        {
            identifierColumns.Add((Position(column), Type(type)));
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
        DatasetScan.Run(
            dataset,
            specs,
            () => target,
            (builder, scan) =>
            {
                builder.AddBatch(scan.Batch, identifierColumns, composites);
                rows += scan.Batch.Length;
                rowsRead?.Invoke(rows);
            },
            options with { Parallelism = 1 },
            cancellationToken);
    }
}
