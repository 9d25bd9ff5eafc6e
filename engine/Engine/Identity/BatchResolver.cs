using System.Numerics;
using System.Runtime.CompilerServices;
using Apache.Arrow;

namespace Engine.Identity;

/// <summary>
/// The first half of adding a batch to the identifier graph, the half that needs no shared state: every identifier
/// value of the batch is normalised and hashed straight from the Arrow UTF-8 buffers, each distinct value once (a
/// value repeating the row before, or a dictionary entry, is done once). What comes out is, per slot (an identifier
/// column or a composite) and row, a reference to one of the batch's distinct values — with its key, type and
/// canonical bytes — or why there is none. Scan workers each keep one resolver and run it in parallel; the builder
/// then applies the results one batch at a time (<see cref="IdentityGraphBuilder.Apply"/>).
/// </summary>
internal sealed class BatchResolver
{
    /// <summary>A slot's row with no value (null): links nothing and is not counted.</summary>
    public const int Null = -1;

    // A reference below Null encodes a skip: Skip(status) = -2 - status.
    private const int Unresolved = int.MinValue;

    private readonly IdentityRules _rules;
    private byte[] _destination = new byte[IdentifierNormalizers.MaxOutputBytes(256)];
    private byte[] _scratch = new byte[256];
    private int[] _dictionaryRefs = [];

    public BatchResolver(IdentityRules rules) => _rules = rules;

    /// <summary>Rows of the batch resolved last.</summary>
    public int Rows { get; private set; }

    /// <summary>Slots (identifier columns, then composites).</summary>
    public int Slots { get; private set; }

    /// <summary>Per slot, per row: a value index (≥ 0), <see cref="Null"/>, or a skip (<see cref="StatusOf"/>).</summary>
    public int[][] Refs { get; private set; } = [];

    /// <summary>Each slot's type id.</summary>
    public byte[] SlotTypes { get; private set; } = [];

    /// <summary>The slots in priority order (stable): the first value found in a row is the row's hub.</summary>
    public int[] Order { get; private set; } = [];

    /// <summary>Distinct values of the batch.</summary>
    public int Values { get; private set; }

    /// <summary>
    /// Runs of consecutive rows whose every slot holds the same reference: an event stream repeats one person's
    /// identifiers row after row, and a run links (and counts its skips) once, on the worker's side of the lock.
    /// </summary>
    public int Runs { get; private set; }

    /// <summary>The first row of each run.</summary>
    public int[] RunStarts { get; private set; } = new int[1024];

    /// <summary>How many rows each run covers.</summary>
    public int[] RunLengths { get; private set; } = new int[1024];

    public IdentifierKey[] Keys { get; private set; } = new IdentifierKey[1024];

    public byte[] ValueTypes { get; private set; } = new byte[1024];

    /// <summary>The row of the batch where each value first occurs.</summary>
    public int[] FirstRow { get; private set; } = new int[1024];

    private int[] _start = new int[1024];
    private int[] _length = new int[1024];
    private byte[] _arena = new byte[1 << 16];
    private int _arenaUsed;

    /// <summary>The canonical bytes of value <paramref name="v"/>.</summary>
    public ReadOnlySpan<byte> Canonical(int v) => _arena.AsSpan(_start[v], _length[v]);

    /// <summary>The status a skip reference stands for.</summary>
    public static NormalizeStatus StatusOf(int reference) => (NormalizeStatus)(-2 - reference);

    private static int Skip(NormalizeStatus status) => -2 - (int)status;

    /// <summary>
    /// Resolves every identifier slot of <paramref name="batch"/>. <paramref name="regionColumns"/>, when given, names
    /// per identifier column the column holding each row's country (ISO 3166) for phone numbers written without a
    /// country code, or -1.
    /// </summary>
    public void Resolve(
        RecordBatch batch,
        IReadOnlyList<(int Column, IdentifierType Type)> identifierColumns,
        IReadOnlyList<(IReadOnlyList<int> Columns, IdentifierType Type)>? composites,
        IReadOnlyList<int>? regionColumns = null)
    {
        var rows = batch.Length;
        var total = identifierColumns.Count + (composites?.Count ?? 0);
        Rows = rows;
        Slots = total;
        Values = 0;
        _arenaUsed = 0;
        if (Refs.Length < total)
        {
            Refs = [.. Refs, .. new int[total - Refs.Length][]];
            SlotTypes = new byte[total];
            Order = new int[total];
        }
        for (var s = 0; s < total; s++)
        {
            if (Refs[s] is null || Refs[s].Length < rows)
            {
                Refs[s] = new int[Math.Max(rows, 1024)];
            }
        }
        if (_all.Length < rows)
        {
            _all = [.. Enumerable.Range(0, Math.Max(rows, 1024))];
        }
        var all = _all.AsSpan(0, rows);
        for (var c = 0; c < identifierColumns.Count; c++)
        {
            var (column, type) = identifierColumns[c];
            SlotTypes[c] = TypeId(type);
            ResolveColumn(batch, type, column, regionColumns?[c] ?? -1, all, Refs[c]);
        }
        for (var c = 0; c < (composites?.Count ?? 0); c++)
        {
            var (columns, type) = composites![c];
            var slot = identifierColumns.Count + c;
            SlotTypes[slot] = TypeId(type);
            ResolveComposite(batch, type, columns, all, Refs[slot]);
        }
        // Insertion sort of the slots by type id (stable): a handful of slots.
        for (var s = 0; s < total; s++)
        {
            Order[s] = s;
        }
        for (var i = 1; i < total; i++)
        {
            var current = Order[i];
            var j = i - 1;
            while (j >= 0 && SlotTypes[Order[j]] > SlotTypes[current])
            {
                Order[j + 1] = Order[j];
                j--;
            }
            Order[j + 1] = current;
        }
        FindRuns(rows, total);
    }

    private void FindRuns(int rows, int slots)
    {
        if (_changed.Length < rows)
        {
            RunStarts = new int[rows];
            RunLengths = new int[rows];
            _changed = new bool[rows];
        }
        // A row starts a run when any slot differs from the row before: slot by slot over flat spans.
        var changed = _changed.AsSpan(0, rows);
        changed.Clear();
        for (var s = 0; s < slots; s++)
        {
            ReadOnlySpan<int> refs = Refs[s].AsSpan(0, rows);
            for (var row = 1; row < refs.Length; row++)
            {
                changed[row] |= refs[row] != refs[row - 1];
            }
        }
        var runs = 0;
        var starts = RunStarts.AsSpan(0, rows);
        var lengths = RunLengths.AsSpan(0, rows);
        for (var row = 0; row < rows; row++)
        {
            if (row == 0 || changed[row])
            {
                starts[runs] = row;
                lengths[runs] = 1;
                runs++;
            }
            else
            {
                lengths[runs - 1]++;
            }
        }
        Runs = runs;
    }

    private bool[] _changed = [];
    private int[] _all = [];

    /// <summary>
    /// Starts a batch resolved one slot at a time, over chosen rows (<see cref="ResolveColumn"/>,
    /// <see cref="ResolveComposite"/>): its values are numbered from 0 again. What the profiles stage does: a row
    /// needs only its most trusted identifier that has a profile, so the others are resolved only for rows left
    /// without one.
    /// </summary>
    public void Begin()
    {
        Values = 0;
        _arenaUsed = 0;
    }

    /// <summary>
    /// Resolves identifier column <paramref name="column"/> of <paramref name="batch"/> at <paramref name="rows"/>
    /// (ascending batch rows): <c>refs[j]</c> for <c>rows[j]</c>, new distinct values appended after
    /// <see cref="Values"/>. <paramref name="region"/> is the column of each row's country for phone numbers, or -1.
    /// </summary>
    public void ResolveColumn(RecordBatch batch, IdentifierType type, int column, int region, ReadOnlySpan<int> rows, Span<int> refs)
    {
        var typeId = TypeId(type);
        if (region >= 0 && type.Normalizer is PhoneNormalizer)
        {
            ResolvePhonesWithRegion(batch.Column(column), batch.Column(region), rows, typeId, type, refs);
        }
        else
        {
            ResolveValues(batch.Column(column), rows, typeId, type, refs);
        }
    }

    /// <summary><see cref="ResolveColumn"/> for a composite of <paramref name="columns"/>.</summary>
    public void ResolveComposite(RecordBatch batch, IdentifierType type, IReadOnlyList<int> columns, ReadOnlySpan<int> rows, Span<int> refs)
    {
        var arrays = new IArrowArray[columns.Count];
        for (var p = 0; p < arrays.Length; p++)
        {
            arrays[p] = batch.Column(columns[p]);
        }
        ResolveParts(arrays, rows, TypeId(type), type, refs);
    }

    private byte TypeId(IdentifierType type)
    {
        var id = _rules.PriorityOf(type.Name);
        if (id < 0 || !ReferenceEquals(_rules.Types[id], type))
        {
            throw new ArgumentException($"identifier type '{type.Name}' is not the one the identity rules define", nameof(type));
        }
        return (byte)id;
    }

    private void ResolveValues(IArrowArray array, ReadOnlySpan<int> rows, byte typeId, IdentifierType type, Span<int> refs)
    {
        switch (array)
        {
            case StringArray strings:
                ResolveStrings(strings, rows, typeId, type, refs);
                break;
            case DictionaryArray dictionary when dictionary.Dictionary is StringArray entries:
                ResolveDictionary(dictionary, entries, rows, typeId, type, refs);
                break;
            default:
                throw new NotSupportedException(
                    $"identifier type '{type.Name}': column type {array.Data.DataType.Name} is not supported (a string column is expected)");
        }
    }

    private void ResolveStrings(StringArray strings, ReadOnlySpan<int> rows, byte typeId, IdentifierType type, Span<int> refs)
    {
        var offsets = strings.ValueOffsets;
        var values = strings.ValueBuffer.Span;
        var validity = Validity(strings, out var first);
        // Rows come grouped by person and session, so a value often repeats the row before: compare the bytes
        // (a few nanoseconds) before normalising and hashing again.
        ReadOnlySpan<byte> last = default;
        var lastRef = Unresolved;
        for (var j = 0; j < rows.Length; j++)
        {
            var row = rows[j];
            if (!IsValid(validity, first + row))
            {
                refs[j] = Null;
                continue;
            }
            var raw = values[offsets[row]..offsets[row + 1]];
            if (lastRef == Unresolved || !raw.SequenceEqual(last))
            {
                last = raw;
                lastRef = Normalize(raw, typeId, type, row);
            }
            refs[j] = lastRef;
        }
    }

    /// <summary>Phones read in each row's own country: the repeat check and the cache key include the country.</summary>
    private void ResolvePhonesWithRegion(IArrowArray phones, IArrowArray regions, ReadOnlySpan<int> rows, byte typeId, IdentifierType type, Span<int> refs)
    {
        if (phones is not StringArray && phones is not DictionaryArray { Dictionary: StringArray })
        {
            throw new NotSupportedException($"identifier type '{type.Name}': column type {phones.Data.DataType.Name} is not supported (a string column is expected)");
        }
        var phoneColumn = new IdentityGraphBuilder.Utf8Column(phones);
        var regionColumn = new IdentityGraphBuilder.Utf8Column(regions);
        ReadOnlySpan<byte> last = default;
        string? lastRegion = null;
        var lastRef = Unresolved;
        for (var j = 0; j < rows.Length; j++)
        {
            var row = rows[j];
            if (!phoneColumn.TryGet(row, out var raw))
            {
                refs[j] = Null;
                continue;
            }
            var region = regionColumn.TryGet(row, out var code) ? Region(code) : null;
            if (lastRef == Unresolved || !raw.SequenceEqual(last) || !ReferenceEquals(region, lastRegion))
            {
                last = raw;
                lastRegion = region;
                lastRef = Normalize(raw, typeId, type, row, region);
            }
            refs[j] = lastRef;
        }
    }

    // Two-letter country codes as strings, made once each (the phone normaliser takes a string region).
    private readonly Dictionary<int, string> _regions = [];

    private string? Region(ReadOnlySpan<byte> code)
    {
        var trimmed = IdentifierNormalizers.Trim(code);
        if (trimmed.Length != 2 || !char.IsAsciiLetter((char)trimmed[0]) || !char.IsAsciiLetter((char)trimmed[1]))
        {
            return null; // not a two-letter code: the type's default region applies
        }
        var key = ((trimmed[0] | 0x20) << 8) | (trimmed[1] | 0x20);
        if (!_regions.TryGetValue(key, out var region))
        {
            region = _regions[key] = $"{(char)(trimmed[0] & ~0x20)}{(char)(trimmed[1] & ~0x20)}";
        }
        return region;
    }

    private void ResolveDictionary(DictionaryArray dictionary, StringArray entries, ReadOnlySpan<int> rows, byte typeId, IdentifierType type, Span<int> refs)
    {
        // Each dictionary entry is normalised once per batch, on first use (an unused entry adds no identifier).
        var size = entries.Length;
        if (_dictionaryRefs.Length < size)
        {
            _dictionaryRefs = new int[Math.Max(size, _dictionaryRefs.Length * 2)];
        }
        var cache = _dictionaryRefs.AsSpan(0, size);
        cache.Fill(Unresolved);
        switch (dictionary.Indices)
        {
            case Int32Array i32: Map(i32, entries, cache, rows, typeId, type, refs); break;
            case Int16Array i16: Map(i16, entries, cache, rows, typeId, type, refs); break;
            case Int8Array i8: Map(i8, entries, cache, rows, typeId, type, refs); break;
            case Int64Array i64: Map(i64, entries, cache, rows, typeId, type, refs); break;
            case UInt32Array u32: Map(u32, entries, cache, rows, typeId, type, refs); break;
            case UInt16Array u16: Map(u16, entries, cache, rows, typeId, type, refs); break;
            case UInt8Array u8: Map(u8, entries, cache, rows, typeId, type, refs); break;
            default:
                throw new NotSupportedException(
                    $"identifier type '{type.Name}': dictionary index type {dictionary.Indices.Data.DataType.Name} is not supported");
        }
    }

    private void Map<T>(PrimitiveArray<T> indices, StringArray entries, Span<int> cache, ReadOnlySpan<int> rows, byte typeId, IdentifierType type, Span<int> refs)
        where T : struct, IBinaryInteger<T>
    {
        var values = indices.Values;
        var validity = Validity(indices, out var first);
        var offsets = entries.ValueOffsets;
        var bytes = entries.ValueBuffer.Span;
        for (var j = 0; j < rows.Length; j++)
        {
            var row = rows[j];
            if (!IsValid(validity, first + row))
            {
                refs[j] = Null;
                continue;
            }
            var index = int.CreateTruncating(values[row]);
            var reference = cache[index];
            if (reference == Unresolved)
            {
                // A null dictionary entry is a null value: skipped, not counted.
                reference = entries.IsNull(index) ? Null : Normalize(bytes[offsets[index]..offsets[index + 1]], typeId, type, row);
                cache[index] = reference;
            }
            refs[j] = reference;
        }
    }

    private void ResolveParts(IArrowArray[] parts, ReadOnlySpan<int> rows, byte typeId, IdentifierType type, Span<int> refs)
    {
        for (var p = 0; p < parts.Length; p++)
        {
            if (parts[p] is not StringArray && !(parts[p] is DictionaryArray { Dictionary: StringArray }))
            {
                throw new NotSupportedException(
                    $"composite identifier type '{type.Name}': column type {parts[p].Data.DataType.Name} is not supported (a string column is expected)");
            }
        }
        for (var j = 0; j < rows.Length; j++)
        {
            var row = rows[j];
            var length = parts.Length - 1;
            var anyNull = false;
            for (var p = 0; p < parts.Length; p++)
            {
                if (!IdentityGraphBuilder.TryGetBytes(parts[p], row, out var value))
                {
                    anyNull = true;
                    break;
                }
                length += value.Length;
            }
            if (anyNull)
            {
                refs[j] = Skip(NormalizeStatus.Empty);
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
                IdentityGraphBuilder.TryGetBytes(parts[p], row, out var value);
                value.CopyTo(_scratch.AsSpan(w));
                w += value.Length;
            }
            refs[j] = Normalize(_scratch.AsSpan(0, w), typeId, type, row);
        }
    }

    /// <summary>
    /// The validity bitmap of <paramref name="array"/> and the bit of its first value, or an empty span when no value is
    /// null: a test per row on a span, instead of <see cref="Apache.Arrow.Array.IsNull"/>, which fetches the array's
    /// buffer again on every call (a few nanoseconds, on each of half a billion rows per identifier column).
    /// </summary>
    internal static ReadOnlySpan<byte> Validity(IArrowArray array, out int first)
    {
        first = array.Data.Offset;
        return array.NullCount == 0 ? default : array.Data.Buffers[0].Span;
    }

    /// <summary>Whether bit <paramref name="bit"/> of <paramref name="validity"/> (from <see cref="Validity"/>) says the value is there.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool IsValid(ReadOnlySpan<byte> validity, int bit) => validity.IsEmpty || BitUtility.GetBit(validity, bit);

    // Phones: libphonenumber takes microseconds per value, and a CRM repeats a customer's number, in the same format,
    // on every version of the record. Remember each raw text's outcome (per worker, bounded).
    private const int PhoneCacheLimit = 1 << 20;
    private readonly Dictionary<UInt128, (NormalizeStatus Status, byte[] Canonical)> _phones = [];

    private NormalizeStatus NormalizePhone(ReadOnlySpan<byte> raw, byte typeId, IdentifierType type, string? region, out int written)
    {
        var seed = 256 + typeId + (region is null ? 0 : ((long)region[0] << 16) | ((long)region[1] << 24));
        var rawKey = System.IO.Hashing.XxHash128.HashToUInt128(raw, seed);
        if (_phones.TryGetValue(rawKey, out var known))
        {
            known.Canonical.CopyTo(_destination, 0);
            written = known.Canonical.Length;
            return known.Status;
        }
        var status = ((PhoneNormalizer)type.Normalizer).Normalize(raw, region, _destination, out written);
        if (_phones.Count >= PhoneCacheLimit)
        {
            _phones.Clear();
        }
        _phones[rawKey] = (status, status == NormalizeStatus.Ok ? _destination.AsSpan(0, written).ToArray() : []);
        return status;
    }

    /// <summary>Normalises and hashes one raw value (first met at <paramref name="row"/>) into a new value of the batch; a skip reference when it links nothing.</summary>
    private int Normalize(ReadOnlySpan<byte> raw, byte typeId, IdentifierType type, int row, string? region = null)
    {
        var need = IdentifierNormalizers.MaxOutputBytes(raw.Length);
        if (_destination.Length < need)
        {
            _destination = new byte[Math.Max(need, _destination.Length * 2)];
        }
        NormalizeStatus status;
        int written;
        if (type.Normalizer is PhoneNormalizer)
        {
            status = NormalizePhone(raw, typeId, type, region, out written);
        }
        else
        {
            status = type.Normalizer.Normalize(raw, _destination, out written);
        }
        if (status != NormalizeStatus.Ok)
        {
            return Skip(status);
        }
        var v = Values;
        if (v == Keys.Length)
        {
            var size = v * 2;
            Keys = [.. Keys, .. new IdentifierKey[size - v]];
            ValueTypes = [.. ValueTypes, .. new byte[size - v]];
            FirstRow = [.. FirstRow, .. new int[size - v]];
            System.Array.Resize(ref _start, size);
            System.Array.Resize(ref _length, size);
        }
        if (_arenaUsed + written > _arena.Length)
        {
            System.Array.Resize(ref _arena, Math.Max(_arena.Length * 2, _arenaUsed + written));
        }
        var canonical = _destination.AsSpan(0, written);
        canonical.CopyTo(_arena.AsSpan(_arenaUsed));
        Keys[v] = IdentifierKey.Compute(typeId, canonical);
        ValueTypes[v] = typeId;
        FirstRow[v] = row;
        _start[v] = _arenaUsed;
        _length[v] = written;
        _arenaUsed += written;
        Values = v + 1;
        return v;
    }
}
