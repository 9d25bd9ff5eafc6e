using System.IO.Hashing;
using System.Runtime.InteropServices;
using Apache.Arrow;
using Apache.Arrow.Types;
using Engine.Storage;

namespace Engine.Profiles;

/// <summary>
/// Per-profile state of one trait or attribute, indexed by profile row, fed by the scan workers that share it (one at
/// a time, see <c>ProfilesStage.AccumulatorSet</c>); <see cref="Merge"/> folds another set's state in, and every rule
/// is order-independent (exact sums, total orders with value tie-breaks), so the result does not depend on how row
/// groups were spread over workers or in which order they came.
/// </summary>
internal abstract class Accumulator
{
    /// <summary>
    /// Adds the batch rows listed in <paramref name="selected"/> (ascending): <paramref name="rows"/> holds each batch
    /// row's profile row, <paramref name="order"/> its time (event time, or update time for attributes),
    /// <paramref name="column"/> the value column (null for functions without one). A selection rather than a mask:
    /// most traits match a few percent of the events, and then the loop costs what it adds.
    /// </summary>
    public abstract void Add(ReadOnlySpan<int> rows, ReadOnlySpan<int> selected, ReadOnlySpan<long> order, BatchColumn? column, int rank);

    public abstract void Merge(Accumulator other);

    /// <summary>The column's values, one per profile row.</summary>
    public abstract IArrowArray Build();

    /// <summary>The array as an Arrow buffer, not copied: an accumulator is done with its arrays once built.</summary>
    protected static ArrowBuffer Bytes<T>(T[] values) where T : unmanaged => ManagedArrowBuffer.Wrap(values);

    protected static (ArrowBuffer Validity, int Nulls) Validity(byte[] has)
    {
        var bits = new byte[(has.Length + 7) / 8];
        var nulls = 0;
        for (var i = 0; i < has.Length; i++)
        {
            if (has[i] != 0)
            {
                bits[i >> 3] |= (byte)(1 << (i & 7));
            }
            else
            {
                nulls++;
            }
        }
        return (new ArrowBuffer(bits), nulls);
    }

    public static TimestampType TimestampType { get; } = new(TimeUnit.Microsecond, "UTC");

    /// <summary>An array of <paramref name="type"/> (any but string) over longs or doubles with validity.</summary>
    protected static IArrowArray Array(ColumnType type, long[]? longs, double[]? doubles, byte[] has)
    {
        var (validity, nulls) = Validity(has);
        var rows = has.Length;
        return type switch
        {
            ColumnType.Int64 => new Int64Array(Bytes(longs!), validity, rows, nulls, 0),
            ColumnType.Timestamp => new TimestampArray(TimestampType, Bytes(longs!), validity, rows, nulls, 0),
            ColumnType.Date => new Date32Array(Bytes(Narrow(longs!)), validity, rows, nulls, 0),
            ColumnType.Double => new DoubleArray(Bytes(doubles!), validity, rows, nulls, 0),
            ColumnType.Boolean => Booleans(longs!, has),
            _ => throw new ArgumentOutOfRangeException(nameof(type)),
        };
    }

    private static int[] Narrow(long[] days)
    {
        var result = new int[days.Length];
        for (var i = 0; i < days.Length; i++)
        {
            result[i] = (int)days[i];
        }
        return result;
    }

    private static BooleanArray Booleans(long[] values, byte[] has)
    {
        var builder = new BooleanArray.Builder().Reserve(has.Length);
        for (var i = 0; i < has.Length; i++)
        {
            if (has[i] != 0)
            {
                builder.Append(values[i] != 0);
            }
            else
            {
                builder.AppendNull();
            }
        }
        return builder.Build();
    }
}

/// <summary>count: matching rows (with a column: rows where it is not null); 0 for a profile with none.</summary>
internal sealed class CountAccumulator(int profiles) : Accumulator
{
    private readonly long[] _counts = FreshArrays.Zeroed<long>(profiles);

    public override void Add(ReadOnlySpan<int> rows, ReadOnlySpan<int> selected, ReadOnlySpan<long> order, BatchColumn? column, int rank)
    {
        var counts = _counts;
        if (column is null)
        {
            foreach (var i in selected)
            {
                counts[rows[i]]++;
            }
            return;
        }
        var valid = column.Valid;
        foreach (var i in selected)
        {
            counts[rows[i]] += valid[i];
        }
    }

    public override void Merge(Accumulator other)
    {
        var theirs = ((CountAccumulator)other)._counts;
        for (var i = 0; i < _counts.Length; i++)
        {
            _counts[i] += theirs[i];
        }
    }

    public override IArrowArray Build() => new Int64Array(Bytes(_counts), ArrowBuffer.Empty, _counts.Length, 0, 0);
}

/// <summary>
/// sum and avg. An int64 column sums exactly into an int64 (overflow is an error, not a wrap). A double column sums in
/// <see cref="decimal"/> — each value rounded to 15 significant digits, then added exactly — so the total does not
/// depend on the order rows arrive in (a double sum would differ in its last bits between runs with different
/// parallelism); the result is the double nearest that total. avg is the sum over the count of non-null values.
/// </summary>
internal sealed class SumAccumulator : Accumulator
{
    private readonly bool _average;
    private readonly bool _integer;
    private readonly long[] _longs;
    private readonly decimal[] _decimals;
    private readonly long[] _counts;
    private readonly string _trait;

    public SumAccumulator(int profiles, bool average, ColumnType column, string trait)
    {
        _average = average;
        _integer = column == ColumnType.Int64 && !average;
        _longs = FreshArrays.Zeroed<long>(_integer ? profiles : 0);
        _decimals = FreshArrays.Zeroed<decimal>(_integer ? 0 : profiles);
        _counts = FreshArrays.Zeroed<long>(profiles);
        _trait = trait;
    }

    public override void Add(ReadOnlySpan<int> rows, ReadOnlySpan<int> selected, ReadOnlySpan<long> order, BatchColumn? column, int rank)
    {
        var valid = column!.Valid;
        var counts = _counts;
        if (column.Kind == ValueKind.Long)
        {
            var values = column.Longs;
            foreach (var i in selected)
            {
                if (valid[i] == 0)
                {
                    continue;
                }
                var r = rows[i];
                counts[r]++;
                if (_integer)
                {
                    var sum = _longs[r];
                    var next = sum + values[i];
                    if (((sum ^ next) & (values[i] ^ next)) < 0)
                    {
                        ThrowOverflow();
                    }
                    _longs[r] = next;
                }
                else
                {
                    _decimals[r] += values[i];
                }
            }
            return;
        }
        var doubles = column.Doubles;
        foreach (var i in selected)
        {
            if (valid[i] == 0)
            {
                continue;
            }
            var r = rows[i];
            counts[r]++;
            _decimals[r] += ToDecimal(doubles[i]);
        }
    }

    private decimal ToDecimal(double value)
    {
        if (!double.IsFinite(value) || Math.Abs(value) >= 7.9e27)
        {
            throw new EngineException($"trait '{_trait}': value {value} cannot be summed exactly (sums take finite values below 7.9e27)");
        }
        return (decimal)value;
    }

    private void ThrowOverflow() => throw new EngineException($"trait '{_trait}': the sum overflows int64");

    public override void Merge(Accumulator other)
    {
        var theirs = (SumAccumulator)other;
        for (var i = 0; i < _counts.Length; i++)
        {
            _counts[i] += theirs._counts[i];
            if (_integer)
            {
                var sum = _longs[i];
                var next = sum + theirs._longs[i];
                if (((sum ^ next) & (theirs._longs[i] ^ next)) < 0)
                {
                    ThrowOverflow();
                }
                _longs[i] = next;
            }
            else
            {
                _decimals[i] += theirs._decimals[i];
            }
        }
    }

    public override IArrowArray Build()
    {
        var has = new byte[_counts.Length];
        for (var i = 0; i < has.Length; i++)
        {
            has[i] = _counts[i] > 0 ? (byte)1 : (byte)0;
        }
        if (_integer)
        {
            return Array(ColumnType.Int64, _longs, null, has);
        }
        var doubles = new double[_counts.Length];
        for (var i = 0; i < doubles.Length; i++)
        {
            if (_counts[i] > 0)
            {
                doubles[i] = (double)(_average ? _decimals[i] / _counts[i] : _decimals[i]);
            }
        }
        return Array(ColumnType.Double, null, doubles, has);
    }
}

/// <summary>
/// first_seen, last_seen and recency_days: the earliest or latest event time per profile, in one array. The events of a
/// night arrive in time order, not by profile, so every add is a random access into the profiles: one array, not the
/// presence, rank and value arrays of <see cref="BestAccumulator"/>, makes it one cache miss instead of three
/// (days_since_last_seen and first_seen_at each see every event: half a billion at ten million people).
/// </summary>
internal sealed class SeenAccumulator : Accumulator
{
    // The time held, or None: no event yet. An event at None itself (a latest-first time of long.MinValue; an earliest
    // is always before as-of) is remembered apart, so that it still counts.
    private readonly long[] _times;
    private readonly bool _latest;
    private readonly long _none;
    private readonly long? _recencyAsOf;
    private HashSet<int>? _atNone;

    /// <param name="profiles">Profile rows.</param>
    /// <param name="latest">Keeps the latest time (last_seen, recency_days) rather than the earliest (first_seen).</param>
    /// <param name="recencyAsOf">Build whole days from the time to this instant (UTC microseconds): recency_days.</param>
    public SeenAccumulator(int profiles, bool latest, long? recencyAsOf = null)
    {
        _latest = latest;
        _none = latest ? long.MinValue : long.MaxValue;
        _recencyAsOf = recencyAsOf;
        _times = GC.AllocateUninitializedArray<long>(profiles);
        _times.AsSpan().Fill(_none);
    }

    public override void Add(ReadOnlySpan<int> rows, ReadOnlySpan<int> selected, ReadOnlySpan<long> order, BatchColumn? column, int rank)
    {
        var times = _times;
        if (_latest)
        {
            foreach (var i in selected)
            {
                var r = rows[i];
                var t = order[i];
                if (t > times[r])
                {
                    times[r] = t;
                }
                else if (t == long.MinValue)
                {
                    (_atNone ??= []).Add(r);
                }
            }
            return;
        }
        foreach (var i in selected)
        {
            var r = rows[i];
            var t = order[i];
            if (t < times[r])
            {
                times[r] = t;
            }
            else if (t == long.MaxValue)
            {
                (_atNone ??= []).Add(r);
            }
        }
    }

    public override void Merge(Accumulator other)
    {
        var theirs = (SeenAccumulator)other;
        var times = _times;
        var others = theirs._times;
        for (var r = 0; r < times.Length; r++)
        {
            times[r] = _latest ? Math.Max(times[r], others[r]) : Math.Min(times[r], others[r]);
        }
        if (theirs._atNone is { } atNone)
        {
            (_atNone ??= []).UnionWith(atNone);
        }
    }

    public override IArrowArray Build()
    {
        var has = new byte[_times.Length];
        var values = _times;
        for (var r = 0; r < values.Length; r++)
        {
            if (values[r] != _none || _atNone?.Contains(r) == true)
            {
                has[r] = 1;
                if (_recencyAsOf is { } asOf)
                {
                    // Times are before as-of, so the difference is positive and integer division is floor.
                    values[r] = (asOf - values[r]) / 86_400_000_000L;
                }
            }
            else
            {
                values[r] = 0; // a null's slot, zero as every other accumulator leaves it
            }
        }
        return Array(_recencyAsOf is null ? ColumnType.Timestamp : ColumnType.Int64, values, null, has);
    }
}

/// <summary>
/// Keeps, per profile, the best (rank, order, value) seen: the lower rank wins, then the order in
/// <see cref="OrderSign"/>'s direction, then the value in <see cref="ValueSign"/>'s. With that one rule it is min and
/// max (value only), first and last (event time, ties to the smaller / larger value) and attribute survivorship
/// (source rank, update time, value). Null values never compete.
/// </summary>
internal sealed class BestAccumulator : Accumulator
{
    private readonly int[] _ranks;
    private readonly long[] _orders;
    private readonly long[] _longs;
    private readonly double[] _doubles;
    private readonly int[] _codes;
    private readonly byte[] _has;
    private readonly StringPool? _pool;
    private readonly ValueKind _kind;
    private readonly ColumnType _type;

    /// <param name="profiles">Profile rows.</param>
    /// <param name="type">The value's type.</param>
    /// <param name="orderSign">+1: a later order wins; -1: an earlier one; 0: order ignored.</param>
    /// <param name="valueSign">+1: the larger value wins; -1: the smaller.</param>
    public BestAccumulator(int profiles, ColumnType type, int orderSign, int valueSign)
    {
        _type = type;
        _kind = BatchColumn.KindOf(type);
        OrderSign = orderSign;
        ValueSign = valueSign;
        // Read before they are written (is there a value to beat?): pages mapped writable up front.
        _ranks = FreshArrays.Zeroed<int>(profiles);
        _orders = FreshArrays.Zeroed<long>(orderSign != 0 ? profiles : 0);
        _longs = FreshArrays.Zeroed<long>(_kind == ValueKind.Long ? profiles : 0);
        _doubles = FreshArrays.Zeroed<double>(_kind == ValueKind.Double ? profiles : 0);
        _codes = FreshArrays.Zeroed<int>(_kind == ValueKind.String ? profiles : 0);
        _pool = _kind == ValueKind.String ? new StringPool() : null;
        _has = FreshArrays.Zeroed<byte>(profiles);
    }

    public int OrderSign { get; }

    public int ValueSign { get; }

    /// <summary>Whether (rank, order) beats the held one: &gt; 0 better, 0 tie (decided by value), &lt; 0 worse.</summary>
    private int Prefer(int r, int rank, long order)
    {
        if (rank != _ranks[r])
        {
            return rank < _ranks[r] ? 1 : -1;
        }
        return OrderSign == 0 ? 0 : OrderSign * order.CompareTo(_orders[r]);
    }

    private void Keep(int r, int rank, long order)
    {
        _has[r] = 1;
        _ranks[r] = rank;
        if (OrderSign != 0)
        {
            _orders[r] = order;
        }
    }

    public override void Add(ReadOnlySpan<int> rows, ReadOnlySpan<int> selected, ReadOnlySpan<long> order, BatchColumn? column, int rank)
    {
        var valid = column!.Valid;
        switch (_kind)
        {
            case ValueKind.Long:
                var longs = column.Longs;
                foreach (var i in selected)
                {
                    if (valid[i] != 0)
                    {
                        OfferLong(rows[i], rank, OrderSign == 0 ? 0 : order[i], longs[i]);
                    }
                }
                break;
            case ValueKind.Double:
                var doubles = column.Doubles;
                foreach (var i in selected)
                {
                    if (valid[i] != 0)
                    {
                        OfferDouble(rows[i], rank, OrderSign == 0 ? 0 : order[i], doubles[i]);
                    }
                }
                break;
            default:
                var codes = column.Codes;
                foreach (var i in selected)
                {
                    if (valid[i] != 0)
                    {
                        OfferString(rows[i], rank, OrderSign == 0 ? 0 : order[i], column.Entry(codes[i]));
                    }
                }
                break;
        }
    }

    private void OfferLong(int r, int rank, long order, long value)
    {
        if (_has[r] != 0)
        {
            var prefer = Prefer(r, rank, order);
            if (prefer < 0 || (prefer == 0 && ValueSign * value.CompareTo(_longs[r]) <= 0))
            {
                return;
            }
        }
        Keep(r, rank, order);
        _longs[r] = value;
    }

    private void OfferDouble(int r, int rank, long order, double value)
    {
        if (_has[r] != 0)
        {
            var prefer = Prefer(r, rank, order);
            if (prefer < 0 || (prefer == 0 && ValueSign * value.CompareTo(_doubles[r]) <= 0))
            {
                return;
            }
        }
        Keep(r, rank, order);
        _doubles[r] = value;
    }

    private void OfferString(int r, int rank, long order, ReadOnlySpan<byte> value)
    {
        if (_has[r] != 0)
        {
            var prefer = Prefer(r, rank, order);
            if (prefer < 0 || (prefer == 0 && ValueSign * value.SequenceCompareTo(_pool!.Get(_codes[r])) <= 0))
            {
                return;
            }
        }
        Keep(r, rank, order);
        // Interned only when it wins: a repeated winner (the same tier on every CRM version) costs one lookup.
        _codes[r] = _pool!.Intern(value);
    }

    public override void Merge(Accumulator other)
    {
        var theirs = (BestAccumulator)other;
        for (var r = 0; r < _has.Length; r++)
        {
            if (theirs._has[r] == 0)
            {
                continue;
            }
            var order = OrderSign == 0 ? 0 : theirs._orders[r];
            switch (_kind)
            {
                case ValueKind.Long: OfferLong(r, theirs._ranks[r], order, theirs._longs[r]); break;
                case ValueKind.Double: OfferDouble(r, theirs._ranks[r], order, theirs._doubles[r]); break;
                default: OfferString(r, theirs._ranks[r], order, theirs._pool!.Get(theirs._codes[r])); break;
            }
        }
    }

    public override IArrowArray Build()
    {
        if (_kind != ValueKind.String)
        {
            return Array(_type, _longs, _doubles, _has);
        }
        // One dictionary for the column: entries in order of first use by row, codes as int32 indices.
        var remap = new int[_pool!.Count];
        remap.AsSpan().Fill(-1);
        var indices = new int[_has.Length];
        var entries = new StringArray.Builder();
        var next = 0;
        for (var r = 0; r < _has.Length; r++)
        {
            if (_has[r] == 0)
            {
                continue;
            }
            var code = _codes[r];
            if (remap[code] < 0)
            {
                remap[code] = next++;
                entries.Append(_pool.Get(code));
            }
            indices[r] = remap[code];
        }
        var (validity, nulls) = Validity(_has);
        var indexArray = new Int32Array(Bytes(indices), validity, indices.Length, nulls, 0);
        return new DictionaryArray(new DictionaryType(Int32Type.Default, StringType.Default, false), indexArray, entries.Build());
    }
}

/// <summary>
/// distinct_count: exact. Each matching non-null value is kept as (profile row, 128-bit key) — the number's own bits,
/// or XxHash128 of a string's UTF-8 (a collision among one profile's values is as unlikely as one among identifier
/// keys) — deduplicated now and then so the buffer stays near the distinct pairs, and counted per profile at the end.
/// </summary>
internal sealed class DistinctAccumulator(int profiles) : Accumulator
{
    private Entry[] _entries = new Entry[1024];
    private int _count;
    private int _compactAt = 1 << 20;

    [StructLayout(LayoutKind.Sequential)]
    private struct Entry : IComparable<Entry>
    {
        public int Row;
        public ulong Low;
        public ulong High;

        public readonly int CompareTo(Entry other)
        {
            var c = Row.CompareTo(other.Row);
            if (c != 0)
            {
                return c;
            }
            c = High.CompareTo(other.High);
            return c != 0 ? c : Low.CompareTo(other.Low);
        }
    }

    public override void Add(ReadOnlySpan<int> rows, ReadOnlySpan<int> selected, ReadOnlySpan<long> order, BatchColumn? column, int rank)
    {
        var valid = column!.Valid;
        foreach (var i in selected)
        {
            if (valid[i] == 0)
            {
                continue;
            }
            ulong low, high = 0;
            switch (column.Kind)
            {
                case ValueKind.Long: low = (ulong)column.Longs[i]; break;
                case ValueKind.Double:
                    // +0.0 and -0.0 are one value, as in SQL.
                    var d = column.Doubles[i];
                    low = (ulong)BitConverter.DoubleToInt64Bits(d == 0 ? 0.0 : d);
                    break;
                default:
                    var hash = XxHash128.HashToUInt128(column.Entry(column.Codes[i]));
                    low = (ulong)hash;
                    high = (ulong)(hash >> 64);
                    break;
            }
            Append(new Entry { Row = rows[i], Low = low, High = high });
        }
    }

    private void Append(Entry entry)
    {
        if (_count == _entries.Length)
        {
            if (_count >= _compactAt)
            {
                Compact();
                _compactAt = Math.Max(1 << 20, _count * 2);
            }
            if (_count == _entries.Length)
            {
                System.Array.Resize(ref _entries, _entries.Length * 2);
            }
        }
        _entries[_count++] = entry;
    }

    private void Compact()
    {
        var span = _entries.AsSpan(0, _count);
        span.Sort();
        var w = 0;
        for (var i = 0; i < span.Length; i++)
        {
            if (w == 0 || span[i].CompareTo(span[w - 1]) != 0)
            {
                span[w++] = span[i];
            }
        }
        _count = w;
    }

    public override void Merge(Accumulator other)
    {
        var theirs = (DistinctAccumulator)other;
        for (var i = 0; i < theirs._count; i++)
        {
            Append(theirs._entries[i]);
        }
    }

    public override IArrowArray Build()
    {
        Compact();
        var counts = new long[profiles];
        for (var i = 0; i < _count; i++)
        {
            counts[_entries[i].Row]++;
        }
        return new Int64Array(Bytes(counts), ArrowBuffer.Empty, counts.Length, 0, 0);
    }
}

/// <summary>Distinct UTF-8 strings by 128-bit hash, in one growing byte arena: allocation per new value, never per row.</summary>
internal sealed class StringPool
{
    private readonly Dictionary<UInt128, int> _codes = [];
    private byte[] _arena = new byte[4096];
    private int[] _starts = new int[64];
    private int[] _lengths = new int[64];
    private int _used;

    public int Count => _codes.Count;

    public ReadOnlySpan<byte> Get(int code) => _arena.AsSpan(_starts[code], _lengths[code]);

    public int Intern(ReadOnlySpan<byte> value)
    {
        var key = XxHash128.HashToUInt128(value);
        if (_codes.TryGetValue(key, out var code))
        {
            return code;
        }
        code = _codes.Count;
        if (code == _starts.Length)
        {
            System.Array.Resize(ref _starts, code * 2);
            System.Array.Resize(ref _lengths, code * 2);
        }
        if (_used + value.Length > _arena.Length)
        {
            System.Array.Resize(ref _arena, Math.Max(_arena.Length * 2, _used + value.Length));
        }
        value.CopyTo(_arena.AsSpan(_used));
        _starts[code] = _used;
        _lengths[code] = value.Length;
        _used += value.Length;
        _codes.Add(key, code);
        return code;
    }
}
