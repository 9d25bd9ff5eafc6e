using System.Diagnostics.CodeAnalysis;
using System.Numerics;
using Apache.Arrow;
using Apache.Arrow.Types;
using Engine.Storage;

namespace Engine.Profiles;

/// <summary>How a column's values are held for the aggregation loops.</summary>
internal enum ValueKind
{
    /// <summary>int64, timestamp (UTC microseconds), date (days since 1970-01-01), boolean (0/1): compared as long.</summary>
    Long,
    Double,
    /// <summary>UTF-8 strings, compared by bytes (ordinal, as DuckDB's default collation).</summary>
    String,
}

/// <summary>
/// One column of the batch being aggregated, converted once per batch into flat spans the loops read: longs or
/// doubles with a validity byte per row, or strings as (entries, code per row) — a dictionary column's codes index
/// its entries, a plain column's code is the row itself — so a predicate over a dictionary runs once per entry.
/// Parquet files may store narrower integers, other timestamp units or dictionary-encoded strings; all arrive here
/// as the declared logical type. Scratch arrays are reused from batch to batch (one reader per worker and column).
/// </summary>
internal sealed class BatchColumn
{
    private long[] _longs = [];
    private double[] _doubles = [];
    private byte[] _valid = [];
    private int[] _codes = [];
    private StringArray? _entries;

    public BatchColumn(string name, ColumnType type, int index)
    {
        Name = name;
        Type = type;
        Index = index;
        Kind = KindOf(type);
    }

    public string Name { get; }

    public ColumnType Type { get; }

    public ValueKind Kind { get; }

    /// <summary>The column's position in the scanned batch.</summary>
    public int Index { get; }

    public int Rows { get; private set; }

    /// <summary>Whether the strings came dictionary-encoded (codes index a small set of entries).</summary>
    public bool IsDictionary { get; private set; }

    public static ValueKind KindOf(ColumnType type) => type switch
    {
        ColumnType.String => ValueKind.String,
        ColumnType.Double => ValueKind.Double,
        _ => ValueKind.Long,
    };

    public ReadOnlySpan<long> Longs => _longs.AsSpan(0, Rows);

    public ReadOnlySpan<double> Doubles => _doubles.AsSpan(0, Rows);

    /// <summary>1 where the row has a value, 0 where it is null.</summary>
    public ReadOnlySpan<byte> Valid => _valid.AsSpan(0, Rows);

    /// <summary>Per row, the index of its string in <see cref="Entries"/> (meaningful only where valid).</summary>
    public ReadOnlySpan<int> Codes => _codes.AsSpan(0, Rows);

    public StringArray Entries => _entries!;

    /// <summary>The UTF-8 bytes of entry <paramref name="code"/>.</summary>
    public ReadOnlySpan<byte> Entry(int code)
    {
        var offsets = _entries!.ValueOffsets;
        return _entries.ValueBuffer.Span[offsets[code]..offsets[code + 1]];
    }

    /// <summary>Converts the column of <paramref name="batch"/>.</summary>
    public void Load(RecordBatch batch, string location)
    {
        var array = batch.Column(Index);
        var rows = batch.Length;
        Rows = rows;
        if (_valid.Length < rows)
        {
            var size = Math.Max(rows, 1024);
            _valid = new byte[size];
            _longs = Kind == ValueKind.Long ? new long[size] : [];
            _doubles = Kind == ValueKind.Double ? new double[size] : [];
            _codes = Kind == ValueKind.String ? new int[size] : [];
        }
        var valid = _valid.AsSpan(0, rows);
        if (array.NullCount == 0)
        {
            valid.Fill(1);
        }
        else
        {
            // Straight from the validity bitmap: one shift and mask per row, no call.
            var bitmap = array.Data.Buffers[0].Span;
            var offset = array.Data.Offset;
            for (var i = 0; i < rows; i++)
            {
                var bit = offset + i;
                valid[i] = (byte)((bitmap[bit >> 3] >> (bit & 7)) & 1);
            }
        }
        switch (Kind)
        {
            case ValueKind.Long:
                LoadLongs(array, _longs.AsSpan(0, rows), location);
                break;
            case ValueKind.Double:
                LoadDoubles(array, _doubles.AsSpan(0, rows), location);
                break;
            default:
                LoadStrings(array, _codes.AsSpan(0, rows), valid, location);
                break;
        }
    }

    private void LoadLongs(IArrowArray array, Span<long> target, string location)
    {
        switch (array)
        {
            case Int64Array a: a.Values.CopyTo(target); break;
            case TimestampArray a: Timestamps(a, target); break;
            case Int32Array a: Widen(a.Values, target); break;
            case Int16Array a: Widen(a.Values, target); break;
            case Int8Array a: Widen(a.Values, target); break;
            case UInt32Array a: Widen(a.Values, target); break;
            case UInt16Array a: Widen(a.Values, target); break;
            case UInt8Array a: Widen(a.Values, target); break;
            case Date32Array a: Widen(a.Values, target); break;
            case Date64Array a:
                var ms = a.Values;
                for (var i = 0; i < target.Length; i++)
                {
                    target[i] = (long)Math.Floor(ms[i] / 86_400_000.0);
                }
                break;
            case BooleanArray a:
                for (var i = 0; i < target.Length; i++)
                {
                    target[i] = a.GetValue(i) == true ? 1 : 0;
                }
                break;
            default:
                ThrowType(array, location);
                break;
        }
    }

    private static void Timestamps(TimestampArray array, Span<long> target)
    {
        var values = array.Values;
        var unit = ((TimestampType)array.Data.DataType).Unit;
        switch (unit)
        {
            case TimeUnit.Microsecond: values.CopyTo(target); break;
            case TimeUnit.Millisecond:
                for (var i = 0; i < target.Length; i++)
                {
                    target[i] = values[i] * 1000;
                }
                break;
            case TimeUnit.Second:
                for (var i = 0; i < target.Length; i++)
                {
                    target[i] = values[i] * 1_000_000;
                }
                break;
            default:
                // Nanoseconds: floor to the microsecond, as DuckDB does when it casts to TIMESTAMP.
                for (var i = 0; i < target.Length; i++)
                {
                    target[i] = Math.DivRem(values[i], 1000, out var rest) - (rest < 0 ? 1 : 0);
                }
                break;
        }
    }

    private static void Widen<T>(ReadOnlySpan<T> source, Span<long> target) where T : struct, IBinaryInteger<T>
    {
        for (var i = 0; i < target.Length; i++)
        {
            target[i] = long.CreateTruncating(source[i]);
        }
    }

    private void LoadDoubles(IArrowArray array, Span<double> target, string location)
    {
        switch (array)
        {
            case DoubleArray a: a.Values.CopyTo(target); break;
            case FloatArray a:
                var floats = a.Values;
                for (var i = 0; i < target.Length; i++)
                {
                    target[i] = floats[i];
                }
                break;
            case HalfFloatArray a:
                var halves = a.Values;
                for (var i = 0; i < target.Length; i++)
                {
                    target[i] = (double)halves[i];
                }
                break;
            default:
                ThrowType(array, location);
                break;
        }
    }

    private void LoadStrings(IArrowArray array, Span<int> codes, Span<byte> valid, string location)
    {
        switch (array)
        {
            case StringArray strings:
                IsDictionary = false;
                _entries = strings;
                for (var i = 0; i < codes.Length; i++)
                {
                    codes[i] = i;
                }
                break;
            case DictionaryArray { Dictionary: StringArray entries } dictionary:
                IsDictionary = true;
                _entries = entries;
                switch (dictionary.Indices)
                {
                    case Int32Array i32: i32.Values.CopyTo(codes); break;
                    case Int16Array i16: WidenInt(i16.Values, codes); break;
                    case Int8Array i8: WidenInt(i8.Values, codes); break;
                    case UInt8Array u8: WidenInt(u8.Values, codes); break;
                    case UInt16Array u16: WidenInt(u16.Values, codes); break;
                    case UInt32Array u32: WidenInt(u32.Values, codes); break;
                    case Int64Array i64: WidenInt(i64.Values, codes); break;
                    default: ThrowType(array, location); break;
                }
                if (entries.NullCount > 0)
                {
                    // A null entry is a null value.
                    for (var i = 0; i < codes.Length; i++)
                    {
                        if (valid[i] != 0 && entries.IsNull(codes[i]))
                        {
                            valid[i] = 0;
                        }
                    }
                }
                break;
            default:
                ThrowType(array, location);
                break;
        }
    }

    private static void WidenInt<T>(ReadOnlySpan<T> source, Span<int> target) where T : struct, IBinaryInteger<T>
    {
        for (var i = 0; i < target.Length; i++)
        {
            target[i] = int.CreateTruncating(source[i]);
        }
    }

    [DoesNotReturn]
    private void ThrowType(IArrowArray array, string location) =>
        throw new DataException(location, $"column '{Name}' is {DataSchema.DescribeArrow(array.Data.DataType)}, which cannot be read as the declared {DataSchema.Describe(Type)}");
}

/// <summary>A trait filter condition bound to its column in the scanned batch, evaluated into a row mask.</summary>
internal sealed class BoundCondition
{
    private readonly TraitCondition _condition;
    private readonly long[] _longs;
    private readonly double[] _doubles;
    private readonly byte[][] _strings;
    private byte[] _entryPass = [];

    public BoundCondition(TraitCondition condition, BatchColumn column)
    {
        if (condition.Operator == FilterOperator.InLatest)
        {
            throw new ArgumentException("an in_latest condition is resolved to an IN list before the scan (LatestValues)", nameof(condition));
        }
        _condition = condition;
        Column = column;
        var values = condition.Values;
        _longs = new long[column.Kind == ValueKind.Long ? values.Count : 0];
        _doubles = new double[column.Kind == ValueKind.Double ? values.Count : 0];
        _strings = new byte[column.Kind == ValueKind.String ? values.Count : 0][];
        for (var i = 0; i < values.Count; i++)
        {
            switch (column.Kind)
            {
                case ValueKind.Long: _longs[i] = (long)values[i]; break;
                case ValueKind.Double: _doubles[i] = (double)values[i]; break;
                default: _strings[i] = System.Text.Encoding.UTF8.GetBytes((string)values[i]); break;
            }
        }
    }

    public BatchColumn Column { get; }

    /// <summary>Clears <paramref name="pass"/> where the row fails the condition (SQL: a NULL passes only IS NULL).</summary>
    public void Apply(Span<byte> pass)
    {
        var valid = Column.Valid;
        var op = _condition.Operator;
        if (op == FilterOperator.IsNull || op == FilterOperator.IsNotNull)
        {
            var want = op == FilterOperator.IsNotNull ? (byte)1 : (byte)0;
            for (var i = 0; i < pass.Length; i++)
            {
                if (valid[i] != want)
                {
                    pass[i] = 0;
                }
            }
            return;
        }
        switch (Column.Kind)
        {
            case ValueKind.Long:
                var longs = Column.Longs;
                for (var i = 0; i < pass.Length; i++)
                {
                    if (pass[i] != 0 && (valid[i] == 0 || !Test(longs[i], _longs, op)))
                    {
                        pass[i] = 0;
                    }
                }
                break;
            case ValueKind.Double:
                var doubles = Column.Doubles;
                for (var i = 0; i < pass.Length; i++)
                {
                    if (pass[i] != 0 && (valid[i] == 0 || !Test(doubles[i], _doubles, op)))
                    {
                        pass[i] = 0;
                    }
                }
                break;
            default:
                ApplyStrings(pass, valid, op);
                break;
        }
    }

    /// <summary>
    /// Keeps of <paramref name="candidates"/> (batch rows, ascending) those that pass the condition, written to the
    /// front of <paramref name="selected"/> (which may be <paramref name="candidates"/> itself); returns how many.
    /// <see cref="Apply"/> over a selection: a trait's second condition only looks at the rows its first let through.
    /// </summary>
    public int Select(ReadOnlySpan<int> candidates, Span<int> selected)
    {
        var valid = Column.Valid;
        var op = _condition.Operator;
        var kept = 0;
        if (op == FilterOperator.IsNull || op == FilterOperator.IsNotNull)
        {
            var want = op == FilterOperator.IsNotNull ? 1 : 0;
            foreach (var i in candidates)
            {
                selected[kept] = i;
                kept += valid[i] == want ? 1 : 0;
            }
            return kept;
        }
        switch (Column.Kind)
        {
            case ValueKind.Long:
                return SelectValues(candidates, selected, valid, Column.Longs, _longs, op);
            case ValueKind.Double:
                return SelectValues(candidates, selected, valid, Column.Doubles, _doubles, op);
        }
        var codes = Column.Codes;
        if (Column.IsDictionary)
        {
            // A null entry was already made an invalid row (BatchColumn.Load), so the row's validity covers it.
            var entryPass = EntryPass(op);
            foreach (var i in candidates)
            {
                selected[kept] = i;
                kept += valid[i] & entryPass[codes[i]];
            }
            return kept;
        }
        foreach (var i in candidates)
        {
            selected[kept] = i;
            kept += valid[i] != 0 && TestString(Column.Entry(codes[i]), op) ? 1 : 0;
        }
        return kept;
    }

    private static int SelectValues<T>(
        ReadOnlySpan<int> candidates, Span<int> selected, ReadOnlySpan<byte> valid, ReadOnlySpan<T> values, T[] constants, FilterOperator op)
        where T : struct, IComparable<T>
    {
        var kept = 0;
        foreach (var i in candidates)
        {
            selected[kept] = i;
            kept += valid[i] != 0 && Test(values[i], constants, op) ? 1 : 0;
        }
        return kept;
    }

    /// <summary>Per dictionary entry of the loaded batch, 1 where it passes: the test runs once per entry, not per row.</summary>
    private byte[] EntryPass(FilterOperator op)
    {
        var entries = Column.Entries.Length;
        if (_entryPass.Length < entries)
        {
            _entryPass = new byte[Math.Max(entries, 64)];
        }
        for (var e = 0; e < entries; e++)
        {
            _entryPass[e] = !Column.Entries.IsNull(e) && TestString(Column.Entry(e), op) ? (byte)1 : (byte)0;
        }
        return _entryPass;
    }

    private void ApplyStrings(Span<byte> pass, ReadOnlySpan<byte> valid, FilterOperator op)
    {
        var codes = Column.Codes;
        if (Column.IsDictionary)
        {
            var entryPass = EntryPass(op);
            for (var i = 0; i < pass.Length; i++)
            {
                if (pass[i] != 0 && (valid[i] == 0 || entryPass[codes[i]] == 0))
                {
                    pass[i] = 0;
                }
            }
            return;
        }
        for (var i = 0; i < pass.Length; i++)
        {
            if (pass[i] != 0 && (valid[i] == 0 || !TestString(Column.Entry(codes[i]), op)))
            {
                pass[i] = 0;
            }
        }
    }

    private static bool Test<T>(T value, T[] constants, FilterOperator op) where T : struct, IComparable<T>
    {
        switch (op)
        {
            case FilterOperator.In:
            case FilterOperator.NotIn:
                var found = false;
                foreach (var c in constants)
                {
                    if (value.CompareTo(c) == 0)
                    {
                        found = true;
                        break;
                    }
                }
                return found == (op == FilterOperator.In);
            default:
                return Compare(value.CompareTo(constants[0]), op);
        }
    }

    private bool TestString(ReadOnlySpan<byte> value, FilterOperator op)
    {
        switch (op)
        {
            case FilterOperator.In:
            case FilterOperator.NotIn:
                var found = false;
                foreach (var c in _strings)
                {
                    if (value.SequenceEqual(c))
                    {
                        found = true;
                        break;
                    }
                }
                return found == (op == FilterOperator.In);
            default:
                return Compare(value.SequenceCompareTo(_strings[0]), op);
        }
    }

    private static bool Compare(int order, FilterOperator op) => op switch
    {
        FilterOperator.Equal => order == 0,
        FilterOperator.NotEqual => order != 0,
        FilterOperator.Less => order < 0,
        FilterOperator.LessOrEqual => order <= 0,
        FilterOperator.Greater => order > 0,
        _ => order >= 0,
    };
}
