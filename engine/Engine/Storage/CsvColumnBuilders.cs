using System.Text;
using Apache.Arrow;
using Apache.Arrow.Types;

namespace Engine.Storage;

/// <summary>What appending one field to a column came to.</summary>
internal enum CsvAppendResult
{
    Ok,
    /// <summary>The text is not a value of the column's type.</summary>
    Invalid,
    /// <summary>The field is null or empty, and the column is required.</summary>
    MissingRequired,
}

/// <summary>The null rule of one read: which field texts stand for null.</summary>
internal sealed class CsvNullRule
{
    private readonly string[] _others;

    public CsvNullRule(IReadOnlyList<string> nullValues)
    {
        var others = new List<string>();
        foreach (var value in nullValues)
        {
            if (value.Length == 0)
            {
                EmptyIsNull = true;
            }
            else if (!others.Contains(value))
            {
                others.Add(value);
            }
        }
        _others = [.. others];
    }

    /// <summary>Whether an empty field of a string column is null (otherwise it is the empty string).</summary>
    public bool EmptyIsNull { get; }

    /// <summary>For string columns: the field is null when it is one of the null values, exactly.</summary>
    public bool IsNullString(ReadOnlySpan<char> field)
    {
        if (field.IsEmpty)
        {
            return EmptyIsNull;
        }
        return _others.Length != 0 && MatchesOther(field);
    }

    /// <summary>For typed columns: empty or blank is always null, and so is a null value after trimming.</summary>
    public bool IsNullTyped(ReadOnlySpan<char> trimmed) => trimmed.IsEmpty || (_others.Length != 0 && MatchesOther(trimmed));

    private bool MatchesOther(ReadOnlySpan<char> field)
    {
        foreach (var other in _others)
        {
            if (field.SequenceEqual(other))
            {
                return true;
            }
        }
        return false;
    }
}

/// <summary>
/// Accumulates one column of a batch from CSV field text, then builds its Arrow array. The kernel is chosen once per
/// column (one subclass per type); scratch arrays are reused from batch to batch, and each built buffer is copied once
/// into Arrow's native memory, so batches can be exported through the C data interface (to ParquetSharp).
/// </summary>
internal abstract class CsvColumnBuilder
{
    private readonly byte[] _validity;
    private int _nullCount;

    protected CsvColumnBuilder(ColumnSpec spec, IArrowType arrowType, int fileOrdinal, int capacity, CsvNullRule nulls)
    {
        Spec = spec;
        ArrowType = arrowType;
        FileOrdinal = fileOrdinal;
        Nulls = nulls;
        _validity = new byte[(capacity + 7) / 8];
    }

    public ColumnSpec Spec { get; }

    public IArrowType ArrowType { get; }

    /// <summary>The field's index in the file's rows.</summary>
    public int FileOrdinal { get; }

    protected CsvNullRule Nulls { get; }

    /// <summary>Rows appended since the last build.</summary>
    protected int Count { get; private set; }

    /// <summary>Appends one field; on anything but <see cref="CsvAppendResult.Ok"/> the batch is abandoned.</summary>
    public abstract CsvAppendResult Append(ReadOnlySpan<char> field);

    /// <summary>Builds the column's array from the rows appended so far and starts the next batch.</summary>
    public IArrowArray Build(NativeBufferCopier copier)
    {
        var length = Count;
        var validity = _nullCount == 0 ? ArrowBuffer.Empty : copier.Copy(_validity.AsSpan(0, (length + 7) / 8));
        var array = BuildValues(copier, length, validity, _nullCount);
        System.Array.Clear(_validity, 0, (length + 7) / 8);
        _nullCount = 0;
        Count = 0;
        return array;
    }

    protected abstract IArrowArray BuildValues(NativeBufferCopier copier, int length, ArrowBuffer validity, int nullCount);

    /// <summary>Records a valid value at the current row and moves to the next.</summary>
    protected void Valid()
    {
        var row = Count++;
        _validity[row >> 3] |= (byte)(1 << (row & 7));
    }

    /// <summary>Records a null at the current row (its value slot was zeroed by the caller) and moves to the next.</summary>
    protected CsvAppendResult Null()
    {
        if (Spec.Required)
        {
            return CsvAppendResult.MissingRequired;
        }
        _nullCount++;
        Count++;
        return CsvAppendResult.Ok;
    }

    public static CsvColumnBuilder Create(ColumnSpec spec, IArrowType arrowType, int fileOrdinal, int capacity, CsvNullRule nulls, CsvReadOptions options)
        => spec.Type switch
        {
            ColumnType.String => new StringColumn(spec, arrowType, fileOrdinal, capacity, nulls),
            ColumnType.Int64 => new Int64Column(spec, arrowType, fileOrdinal, capacity, nulls),
            ColumnType.Double => new DoubleColumn(spec, arrowType, fileOrdinal, capacity, nulls),
            ColumnType.Boolean => new BooleanColumn(spec, arrowType, fileOrdinal, capacity, nulls),
            ColumnType.Timestamp => new TimestampColumn(spec, arrowType, fileOrdinal, capacity, nulls, [.. options.TimestampFormats]),
            ColumnType.Date => new DateColumn(spec, arrowType, fileOrdinal, capacity, nulls, [.. options.DateFormats]),
            _ => throw new ArgumentOutOfRangeException(nameof(spec), spec.Type, null),
        };

    private sealed class StringColumn : CsvColumnBuilder
    {
        private readonly int[] _offsets;
        private byte[] _data;

        public StringColumn(ColumnSpec spec, IArrowType arrowType, int fileOrdinal, int capacity, CsvNullRule nulls)
            : base(spec, arrowType, fileOrdinal, capacity, nulls)
        {
            _offsets = new int[capacity + 1];
            _data = new byte[Math.Max(1024, capacity * 8)];
        }

        public override CsvAppendResult Append(ReadOnlySpan<char> field)
        {
            var row = Count;
            var start = _offsets[row];
            if (Nulls.IsNullString(field) || (field.IsEmpty && Spec.Required))
            {
                _offsets[row + 1] = start;
                return Null();
            }
            // UTF-16 to UTF-8 straight into the data buffer; at most 3 bytes per char.
            if (_data.Length - start < field.Length * 3)
            {
                Grow(start + field.Length * 3);
            }
            var written = Encoding.UTF8.GetBytes(field, _data.AsSpan(start));
            _offsets[row + 1] = start + written;
            Valid();
            return CsvAppendResult.Ok;
        }

        private void Grow(int needed)
        {
            var size = Math.Max(needed, (int)Math.Min(System.Array.MaxLength, _data.Length * 2L));
            if (size < needed)
            {
                throw new InvalidOperationException("a CSV batch's text is larger than 2 GB; use a smaller batch size");
            }
            System.Array.Resize(ref _data, size);
        }

        protected override IArrowArray BuildValues(NativeBufferCopier copier, int length, ArrowBuffer validity, int nullCount)
        {
            var offsets = copier.Copy(_offsets.AsSpan(0, length + 1));
            var data = copier.Copy(_data.AsSpan(0, _offsets[length]));
            return new StringArray(length, offsets, data, validity, nullCount);
        }
    }

    private sealed class Int64Column : CsvColumnBuilder
    {
        private readonly long[] _values;

        public Int64Column(ColumnSpec spec, IArrowType arrowType, int fileOrdinal, int capacity, CsvNullRule nulls)
            : base(spec, arrowType, fileOrdinal, capacity, nulls) => _values = new long[capacity];

        public override CsvAppendResult Append(ReadOnlySpan<char> field)
        {
            var trimmed = field.Trim();
            if (Nulls.IsNullTyped(trimmed))
            {
                _values[Count] = 0;
                return Null();
            }
            if (!CsvValueParser.TryParseInt64(trimmed, out _values[Count]))
            {
                return CsvAppendResult.Invalid;
            }
            Valid();
            return CsvAppendResult.Ok;
        }

        protected override IArrowArray BuildValues(NativeBufferCopier copier, int length, ArrowBuffer validity, int nullCount)
            => new Int64Array(copier.Copy(_values.AsSpan(0, length)), validity, length, nullCount, 0);
    }

    private sealed class DoubleColumn : CsvColumnBuilder
    {
        private readonly double[] _values;

        public DoubleColumn(ColumnSpec spec, IArrowType arrowType, int fileOrdinal, int capacity, CsvNullRule nulls)
            : base(spec, arrowType, fileOrdinal, capacity, nulls) => _values = new double[capacity];

        public override CsvAppendResult Append(ReadOnlySpan<char> field)
        {
            var trimmed = field.Trim();
            if (Nulls.IsNullTyped(trimmed))
            {
                _values[Count] = 0;
                return Null();
            }
            if (!CsvValueParser.TryParseDouble(trimmed, out _values[Count]))
            {
                return CsvAppendResult.Invalid;
            }
            Valid();
            return CsvAppendResult.Ok;
        }

        protected override IArrowArray BuildValues(NativeBufferCopier copier, int length, ArrowBuffer validity, int nullCount)
            => new DoubleArray(copier.Copy(_values.AsSpan(0, length)), validity, length, nullCount, 0);
    }

    private sealed class BooleanColumn : CsvColumnBuilder
    {
        private readonly byte[] _bits;

        public BooleanColumn(ColumnSpec spec, IArrowType arrowType, int fileOrdinal, int capacity, CsvNullRule nulls)
            : base(spec, arrowType, fileOrdinal, capacity, nulls) => _bits = new byte[(capacity + 7) / 8];

        public override CsvAppendResult Append(ReadOnlySpan<char> field)
        {
            var trimmed = field.Trim();
            if (Nulls.IsNullTyped(trimmed))
            {
                return Null();
            }
            if (!CsvValueParser.TryParseBoolean(trimmed, out var value))
            {
                return CsvAppendResult.Invalid;
            }
            if (value)
            {
                _bits[Count >> 3] |= (byte)(1 << (Count & 7));
            }
            Valid();
            return CsvAppendResult.Ok;
        }

        protected override IArrowArray BuildValues(NativeBufferCopier copier, int length, ArrowBuffer validity, int nullCount)
        {
            var bytes = (length + 7) / 8;
            var values = copier.Copy(_bits.AsSpan(0, bytes));
            System.Array.Clear(_bits, 0, bytes);
            return new BooleanArray(values, validity, length, nullCount, 0);
        }
    }

    private sealed class TimestampColumn : CsvColumnBuilder
    {
        private readonly long[] _values;
        private readonly string[] _formats;

        public TimestampColumn(ColumnSpec spec, IArrowType arrowType, int fileOrdinal, int capacity, CsvNullRule nulls, string[] formats)
            : base(spec, arrowType, fileOrdinal, capacity, nulls)
        {
            _values = new long[capacity];
            _formats = formats;
        }

        public override CsvAppendResult Append(ReadOnlySpan<char> field)
        {
            var trimmed = field.Trim();
            if (Nulls.IsNullTyped(trimmed))
            {
                _values[Count] = 0;
                return Null();
            }
            if (!CsvValueParser.TryParseTimestamp(trimmed, _formats, out _values[Count]))
            {
                return CsvAppendResult.Invalid;
            }
            Valid();
            return CsvAppendResult.Ok;
        }

        protected override IArrowArray BuildValues(NativeBufferCopier copier, int length, ArrowBuffer validity, int nullCount)
            => new TimestampArray((TimestampType)ArrowType, copier.Copy(_values.AsSpan(0, length)), validity, length, nullCount, 0);
    }

    private sealed class DateColumn : CsvColumnBuilder
    {
        private readonly int[] _values;
        private readonly string[] _formats;

        public DateColumn(ColumnSpec spec, IArrowType arrowType, int fileOrdinal, int capacity, CsvNullRule nulls, string[] formats)
            : base(spec, arrowType, fileOrdinal, capacity, nulls)
        {
            _values = new int[capacity];
            _formats = formats;
        }

        public override CsvAppendResult Append(ReadOnlySpan<char> field)
        {
            var trimmed = field.Trim();
            if (Nulls.IsNullTyped(trimmed))
            {
                _values[Count] = 0;
                return Null();
            }
            if (!CsvValueParser.TryParseDate(trimmed, _formats, out _values[Count]))
            {
                return CsvAppendResult.Invalid;
            }
            Valid();
            return CsvAppendResult.Ok;
        }

        protected override IArrowArray BuildValues(NativeBufferCopier copier, int length, ArrowBuffer validity, int nullCount)
            => new Date32Array(copier.Copy(_values.AsSpan(0, length)), validity, length, nullCount, 0);
    }
}

/// <summary>
/// Copies scratch data into buffers allocated by Arrow's default (native) allocator. One reusable builder serves every
/// column, so the only per-batch cost is the copy itself.
/// </summary>
internal sealed class NativeBufferCopier
{
    private readonly ArrowBuffer.Builder<byte> _builder = new(0);

    public ArrowBuffer Copy<T>(ReadOnlySpan<T> values) where T : unmanaged
    {
        _builder.Clear();
        _builder.Append(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values));
        return _builder.Build();
    }

    public ArrowBuffer Copy<T>(Span<T> values) where T : unmanaged => Copy((ReadOnlySpan<T>)values);
}
