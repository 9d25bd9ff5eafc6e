using System.Buffers.Text;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Apache.Arrow;
using Apache.Arrow.Types;

namespace Engine.Datasets;

/// <summary>
/// Growable column buffers that write values straight into byte arrays and hand them to Arrow without a copy.
/// A block's columns are reused for the next block once the writer has consumed the batch, so the hot loop
/// allocates nothing per row and steady-state memory is a fixed number of block-sized buffers.
/// </summary>
internal abstract class Column
{
    protected byte[] _validity = new byte[64];

    public int Count { get; protected set; }

    public int NullCount { get; protected set; }

    public virtual void Reset()
    {
        Count = 0;
        NullCount = 0;
    }

    public abstract IArrowArray Build();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    protected void SetValid(int index, bool valid)
    {
        var bytes = (index >> 3) + 1;
        if (bytes > _validity.Length)
        {
            System.Array.Resize(ref _validity, Math.Max(bytes, _validity.Length * 2));
        }
        ref var b = ref _validity[index >> 3];
        var mask = (byte)(1 << (index & 7));
        if (valid)
        {
            b |= mask;
        }
        else
        {
            b &= (byte)~mask;
            NullCount++;
        }
    }

    public bool IsValid(int index) => (_validity[index >> 3] & (1 << (index & 7))) != 0;

    /// <summary>Keeps only the rows at <paramref name="rows"/> (ascending), in that order.</summary>
    public void Keep(ReadOnlySpan<int> rows)
    {
        var nulls = 0;
        for (var i = 0; i < rows.Length; i++)
        {
            var valid = IsValid(rows[i]);
            MoveValue(rows[i], i);
            // i <= rows[i]: bit i is rewritten only after bit rows[i] was read.
            ref var b = ref _validity[i >> 3];
            var mask = (byte)(1 << (i & 7));
            b = valid ? (byte)(b | mask) : (byte)(b & ~mask);
            nulls += valid ? 0 : 1;
        }
        Count = rows.Length;
        NullCount = nulls;
        Shrunk();
    }

    /// <summary>Moves the value of row <paramref name="from"/> to row <paramref name="to"/> (to &lt;= from; rows below to are final).</summary>
    protected abstract void MoveValue(int from, int to);

    /// <summary>Called when <see cref="Keep"/> has moved every kept value.</summary>
    protected virtual void Shrunk() { }

    protected ArrowBuffer ValidityBuffer() => NullCount == 0 ? ArrowBuffer.Empty : new ArrowBuffer(_validity.AsMemory(0, (Count + 7) >> 3));
}

/// <summary>A UTF-8 string column (Arrow <c>utf8</c>: int32 offsets plus a data buffer).</summary>
internal sealed class Utf8Column : Column
{
    private byte[] _offsets = new byte[4 * 1024];
    private byte[] _data = new byte[16 * 1024];
    private int _length;

    public override void Reset()
    {
        base.Reset();
        _length = 0;
    }

    public void AppendNull()
    {
        SetValid(Count, false);
        Count++;
        WriteOffset();
    }

    public void Append(ReadOnlySpan<byte> utf8)
    {
        utf8.CopyTo(Reserve(utf8.Length));
        Commit(utf8.Length);
    }

    /// <summary>Room for a value of at most <paramref name="maxBytes"/>; finish it with <see cref="Commit"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Span<byte> Reserve(int maxBytes)
    {
        if (_length + maxBytes > _data.Length)
        {
            System.Array.Resize(ref _data, Math.Max(_length + maxBytes, _data.Length * 2));
        }
        return _data.AsSpan(_length, maxBytes);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Commit(int bytes)
    {
        _length += bytes;
        SetValid(Count, true);
        Count++;
        WriteOffset();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void WriteOffset()
    {
        // Called after Count++: writes the end offset of the value just added; offsets[0] = 0 is set in Build.
        var at = Count * 4;
        if (at + 4 > _offsets.Length)
        {
            System.Array.Resize(ref _offsets, Math.Max(at + 4, _offsets.Length * 2));
        }
        Unsafe.WriteUnaligned(ref _offsets[at], _length);
    }

    private int _moved;

    protected override void MoveValue(int from, int to)
    {
        var start = from == 0 ? 0 : Unsafe.ReadUnaligned<int>(ref _offsets[from * 4]);
        var end = Unsafe.ReadUnaligned<int>(ref _offsets[(from + 1) * 4]);
        var at = to == 0 ? 0 : _moved;
        // Values move down (at <= start), and copies of overlapping spans behave as if through a temporary buffer.
        _data.AsSpan(start, end - start).CopyTo(_data.AsSpan(at));
        _moved = at + (end - start);
        Unsafe.WriteUnaligned(ref _offsets[(to + 1) * 4], _moved);
    }

    protected override void Shrunk()
    {
        _length = Count == 0 ? 0 : _moved;
        _moved = 0;
    }

    public override IArrowArray Build()
    {
        MemoryMarshal.Write(_offsets.AsSpan(), 0);
        var data = new ArrayData(StringType.Default, Count, NullCount, 0,
            [ValidityBuffer(), new ArrowBuffer(_offsets.AsMemory(0, (Count + 1) * 4)), new ArrowBuffer(_data.AsMemory(0, _length))]);
        return new StringArray(data);
    }
}

/// <summary>A fixed-width 8-byte column: int64, double or timestamp (UTC microseconds).</summary>
internal sealed class FixedColumn(IArrowType type) : Column
{
    private byte[] _values = new byte[8 * 1024];

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Append(long value)
    {
        EnsureRoom();
        Unsafe.WriteUnaligned(ref _values[Count * 8], value);
        SetValid(Count, true);
        Count++;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Append(double value)
    {
        EnsureRoom();
        Unsafe.WriteUnaligned(ref _values[Count * 8], value);
        SetValid(Count, true);
        Count++;
    }

    public void AppendNull()
    {
        EnsureRoom();
        Unsafe.WriteUnaligned(ref _values[Count * 8], 0L);
        SetValid(Count, false);
        Count++;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void EnsureRoom()
    {
        if ((Count + 1) * 8 > _values.Length)
        {
            System.Array.Resize(ref _values, _values.Length * 2);
        }
    }

    /// <summary>The value of row <paramref name="index"/> as a 64-bit integer (timestamps: UTC microseconds).</summary>
    public long Int64At(int index) => Unsafe.ReadUnaligned<long>(ref _values[index * 8]);

    protected override void MoveValue(int from, int to)
        => Unsafe.WriteUnaligned(ref _values[to * 8], Unsafe.ReadUnaligned<long>(ref _values[from * 8]));

    public override IArrowArray Build()
    {
        var data = new ArrayData(type, Count, NullCount, 0, [ValidityBuffer(), new ArrowBuffer(_values.AsMemory(0, Count * 8))]);
        return ArrowArrayFactory.BuildArray(data);
    }
}

/// <summary>The columns of one dataset in schema order, built into one record batch per block.</summary>
internal sealed class BatchBuffers
{
    private readonly Schema _schema;
    private readonly Column[] _columns;

    public BatchBuffers(Schema schema)
    {
        _schema = schema;
        _columns = new Column[schema.FieldsList.Count];
        for (var i = 0; i < _columns.Length; i++)
        {
            var type = schema.FieldsList[i].DataType;
            _columns[i] = type.TypeId == ArrowTypeId.String ? new Utf8Column() : new FixedColumn(type);
        }
    }

    public int Rows => _columns[0].Count;

    public Utf8Column Utf8(int index) => (Utf8Column)_columns[index];

    public FixedColumn Fixed(int index) => (FixedColumn)_columns[index];

    public void Reset()
    {
        foreach (var column in _columns)
        {
            column.Reset();
        }
    }

    /// <summary>Keeps the rows whose timestamp column <paramref name="column"/> is at or after <paramref name="from"/> (microseconds).</summary>
    public void KeepFrom(int column, long from)
    {
        var ts = Fixed(column);
        var rows = Rows;
        var kept = 0;
        for (var i = 0; i < rows; i++)
        {
            kept += ts.IsValid(i) && ts.Int64At(i) >= from ? 1 : 0;
        }
        if (kept == rows)
        {
            return;
        }
        Span<int> keep = kept <= 1024 ? stackalloc int[kept] : new int[kept];
        kept = 0;
        for (var i = 0; i < rows; i++)
        {
            if (ts.IsValid(i) && ts.Int64At(i) >= from)
            {
                keep[kept++] = i;
            }
        }
        foreach (var c in _columns)
        {
            c.Keep(keep);
        }
    }

    /// <summary>
    /// A batch over this object's buffers: valid until <see cref="Reset"/>. The Parquet writer copies what it needs
    /// during <c>Write</c>, after which the buffers are reused.
    /// </summary>
    public RecordBatch Build()
    {
        var arrays = new IArrowArray[_columns.Length];
        for (var i = 0; i < arrays.Length; i++)
        {
            if (_columns[i].Count != Rows)
            {
                throw new InvalidOperationException($"column {_schema.FieldsList[i].Name} has {_columns[i].Count} rows, expected {Rows}");
            }
            arrays[i] = _columns[i].Build();
        }
        return new RecordBatch(_schema, arrays, Rows);
    }
}

/// <summary>Small UTF-8 formatting helpers for the hot loop (no string allocation).</summary>
internal static class Utf8
{
    private static ReadOnlySpan<byte> HexLower => "0123456789abcdef"u8;

    /// <summary>Writes <paramref name="value"/> as 16 lower-case hex digits.</summary>
    public static void Hex16(ulong value, Span<byte> destination)
    {
        for (var i = 15; i >= 0; i--)
        {
            destination[i] = HexLower[(int)(value & 0xF)];
            value >>= 4;
        }
    }

    /// <summary>Appends the decimal digits of <paramref name="value"/>; returns the bytes written.</summary>
    public static int Decimal(ulong value, Span<byte> destination)
    {
        Utf8Formatter.TryFormat(value, destination, out var written);
        return written;
    }

    /// <summary>Decimal, left-padded with zeros to at least <paramref name="width"/> digits.</summary>
    public static int Decimal(ulong value, int width, Span<byte> destination)
    {
        Utf8Formatter.TryFormat(value, destination, out var written, new System.Buffers.StandardFormat('D', (byte)width));
        return written;
    }
}
