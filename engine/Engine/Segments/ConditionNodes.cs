using System.Collections.Concurrent;
using System.Numerics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Apache.Arrow;

namespace Engine.Segments;

// The compiled form of a condition: a tree of kernels, each of which turns a chunk of rows into a vector (values and
// a validity bitmap) or, for a boolean, into two bitmaps, TRUE and FALSE (a row in neither is NULL). SQL's
// three-valued logic is then plain bitwise algebra: NOT swaps the two, AND is (Ta & Tb, Fa | Fb), OR is
// (Ta | Tb, Fa & Fb). Every kernel is a loop over one type's span; nothing is interpreted per row.

/// <summary>One worker's evaluation state: the chunk of rows in hand and each node's output buffers.</summary>
internal sealed class Chunk
{
    /// <summary>Rows per chunk: a multiple of 64, small enough that a node's buffers stay in the L2 cache.</summary>
    public const int Rows = 16 * 1024;

    public const int MaxWords = Rows / 64;

    // Buffers outlive a chunk: a hundred segments evaluated one after another reuse the same few megabytes instead
    // of allocating (and the GC clearing) large arrays for every node of every segment.
    private static readonly ConcurrentDictionary<Type, ConcurrentBag<object>> Pool = new();

    public Chunk(int slots, IReadOnlyDictionary<string, ulong[]> segments)
    {
        Buffers = new object?[slots];
        Segments = segments;
    }

    public int Start { get; private set; }

    public int Length { get; private set; }

    public int Words { get; private set; }

    public object?[] Buffers { get; }

    /// <summary>Members of the segments already evaluated, for <c>in_segment</c>.</summary>
    public IReadOnlyDictionary<string, ulong[]> Segments { get; }

    public void MoveTo(int start, int length)
    {
        Start = start;
        Length = length;
        Words = (length + 63) >> 6;
    }

    public T Buffer<T>(int slot) where T : class, new()
    {
        if (Buffers[slot] is T buffer)
        {
            return buffer;
        }
        buffer = Pool.TryGetValue(typeof(T), out var bag) && bag.TryTake(out var pooled) ? (T)pooled : new T();
        Buffers[slot] = buffer;
        return buffer;
    }

    /// <summary>Hands the buffers back for the next evaluation.</summary>
    public void Release()
    {
        for (var i = 0; i < Buffers.Length; i++)
        {
            if (Buffers[i] is { } buffer)
            {
                if (buffer is LongVector longs)
                {
                    longs.Own();
                }
                else if (buffer is DoubleVector doubles)
                {
                    doubles.Own();
                }
                Pool.GetOrAdd(buffer.GetType(), _ => []).Add(buffer);
                Buffers[i] = null;
            }
        }
    }
}

/// <summary>
/// A chunk of 64-bit values: the node's own <see cref="Buffer"/>, or for a column, a view of the column's memory
/// (no copy) when the chunk's whole words lie inside it. Kernels read <see cref="Values"/> and write <see cref="Buffer"/>.
/// </summary>
internal sealed class LongVector
{
    public readonly long[] Buffer = new long[Chunk.Rows];
    public readonly ulong[] Valid = new ulong[Chunk.MaxWords];
    private ReadOnlyMemory<byte> _borrowed;
    private int _start;

    public ReadOnlySpan<long> Values => _borrowed.IsEmpty ? Buffer : MemoryMarshal.Cast<byte, long>(_borrowed.Span)[_start..];

    public void Borrow(ReadOnlyMemory<byte> memory, int start)
    {
        _borrowed = memory;
        _start = start;
    }

    public void Own() => _borrowed = default;
}

/// <summary>A chunk of doubles; see <see cref="LongVector"/>.</summary>
internal sealed class DoubleVector
{
    public readonly double[] Buffer = new double[Chunk.Rows];
    public readonly ulong[] Valid = new ulong[Chunk.MaxWords];
    private ReadOnlyMemory<byte> _borrowed;
    private int _start;

    public ReadOnlySpan<double> Values => _borrowed.IsEmpty ? Buffer : MemoryMarshal.Cast<byte, double>(_borrowed.Span)[_start..];

    public void Borrow(ReadOnlyMemory<byte> memory, int start)
    {
        _borrowed = memory;
        _start = start;
    }

    public void Own() => _borrowed = default;
}

/// <summary>Strings as codes into the node's dictionary (fixed when the condition is compiled).</summary>
internal sealed class CodeVector
{
    public readonly int[] Codes = new int[Chunk.Rows];
    public readonly ulong[] Valid = new ulong[Chunk.MaxWords];
}

internal sealed class Bits
{
    public readonly ulong[] True = new ulong[Chunk.MaxWords];
    public readonly ulong[] False = new ulong[Chunk.MaxWords];

    // Scratch for the node that owns these bits (comparison outcomes, joint validity).
    public readonly ulong[] Holds = new ulong[Chunk.MaxWords];
    public readonly ulong[] Both = new ulong[Chunk.MaxWords];
}

internal abstract class Node
{
    protected Node(SqlType type, int position)
    {
        Type = type;
        Position = position;
    }

    public SqlType Type { get; }

    /// <summary>Offset of the expression in the condition text, for errors found while evaluating.</summary>
    public int Position { get; }

    /// <summary>The node's index in <see cref="Chunk.Buffers"/>.</summary>
    public int Slot { get; set; }

    /// <summary>Digits after the point, for <see cref="SqlType.Decimal"/>.</summary>
    public int Scale { get; init; }

    public abstract IEnumerable<Node> Children { get; }

    /// <summary>The validity bitmap of the node's value for the chunk (for IS NULL and coalesce).</summary>
    public abstract ReadOnlySpan<ulong> Validity(Chunk chunk);
}

internal abstract class LongNode(SqlType type, int position) : Node(type, position)
{
    public abstract LongVector Eval(Chunk chunk);

    public override ReadOnlySpan<ulong> Validity(Chunk chunk) => Eval(chunk).Valid.AsSpan(0, chunk.Words);
}

internal abstract class DoubleNode(int position) : Node(SqlType.Double, position)
{
    public abstract DoubleVector Eval(Chunk chunk);

    public override ReadOnlySpan<ulong> Validity(Chunk chunk) => Eval(chunk).Valid.AsSpan(0, chunk.Words);
}

/// <summary>The distinct strings (UTF-8) a string node's codes index: a column's own Arrow dictionary, or a small list.</summary>
internal sealed class Utf8Dictionary
{
    private readonly StringArray? _array;
    private readonly byte[][]? _list;

    public Utf8Dictionary(StringArray array) => _array = array;

    public Utf8Dictionary(byte[][] list) => _list = list;

    public int Count => _array?.Length ?? _list!.Length;

    /// <summary>
    /// The length of a table indexed by this dictionary's codes: at least one, because a NULL row carries code 0
    /// even when the dictionary is empty (a column NULL for every profile).
    /// </summary>
    public int TableSize => Math.Max(1, Count);

    public ReadOnlySpan<byte> this[int code] => _array is null ? _list![code] : _array.GetBytes(code);
}

internal abstract class StringNode(int position, Utf8Dictionary dictionary) : Node(SqlType.Varchar, position)
{
    /// <summary>The distinct strings this node's codes index.</summary>
    public Utf8Dictionary Dictionary { get; } = dictionary;

    public abstract CodeVector Eval(Chunk chunk);

    public override ReadOnlySpan<ulong> Validity(Chunk chunk) => Eval(chunk).Valid.AsSpan(0, chunk.Words);
}

internal abstract class PredicateNode(int position) : Node(SqlType.Boolean, position)
{
    public abstract Bits Eval(Chunk chunk);

    public override ReadOnlySpan<ulong> Validity(Chunk chunk)
    {
        var bits = Eval(chunk);
        for (var w = 0; w < chunk.Words; w++)
        {
            bits.Both[w] = bits.True[w] | bits.False[w];
        }
        return bits.Both.AsSpan(0, chunk.Words);
    }
}

/// <summary>A bare NULL, or anything that is NULL whatever the row: every value invalid.</summary>
internal sealed class NullNode(int position) : Node(SqlType.Null, position)
{
    private static readonly ulong[] None = new ulong[Chunk.MaxWords];

    public override IEnumerable<Node> Children => [];

    public override ReadOnlySpan<ulong> Validity(Chunk chunk) => None.AsSpan(0, chunk.Words);
}

/// <summary>An INTERVAL constant; only ever an operand of a date or time + or -.</summary>
internal sealed class IntervalNode(int position, int months, int days, long micros) : Node(SqlType.Interval, position)
{
    public int Months { get; } = months;

    public int Days { get; } = days;

    public long Micros { get; } = micros;

    public override IEnumerable<Node> Children => [];

    public override ReadOnlySpan<ulong> Validity(Chunk chunk) => throw new InvalidOperationException("an interval has no rows");

    public IntervalNode Negate() => new(Position, -Months, -Days, -Micros);
}

internal static class Validity
{
    /// <summary>Copies an Arrow validity bitmap for the chunk into words (all ones when the array has no nulls).</summary>
    public static void FromArrow(IArrowArray array, Chunk chunk, Span<ulong> words)
    {
        words = words[..chunk.Words];
        if (array.NullCount == 0)
        {
            All(chunk, words);
            return;
        }
        var bitmap = array.Data.Buffers[0].Span;
        var firstByte = chunk.Start >> 3;
        var bytes = (chunk.Length + 7) >> 3;
        var whole = bytes >> 3;
        MemoryMarshal.Cast<byte, ulong>(bitmap.Slice(firstByte, whole * 8)).CopyTo(words);
        if (whole < words.Length)
        {
            ulong last = 0;
            for (var b = whole * 8; b < bytes; b++)
            {
                last |= (ulong)bitmap[firstByte + b] << ((b - whole * 8) * 8);
            }
            words[whole] = last;
        }
        Trim(chunk, words);
    }

    /// <summary>Every row of the chunk valid, and no bit set past its last row (so kernels never act on padding).</summary>
    public static void All(Chunk chunk, Span<ulong> words)
    {
        words = words[..chunk.Words];
        words.Fill(ulong.MaxValue);
        Trim(chunk, words);
    }

    private static void Trim(Chunk chunk, Span<ulong> words)
    {
        if ((chunk.Length & 63) != 0)
        {
            words[chunk.Words - 1] &= (1UL << (chunk.Length & 63)) - 1;
        }
    }

    public static void And(ReadOnlySpan<ulong> a, ReadOnlySpan<ulong> b, Span<ulong> result)
    {
        for (var w = 0; w < result.Length; w++)
        {
            result[w] = a[w] & b[w];
        }
    }

    public static bool IsSet(ReadOnlySpan<ulong> words, int row) => (words[row >> 6] & (1UL << row)) != 0;
}

// ---- columns and constants -----------------------------------------------------------------------------------

internal sealed class LongColumnNode(SqlType type, int position, IArrowArray array) : LongNode(type, position)
{
    public override IEnumerable<Node> Children => [];

    public override LongVector Eval(Chunk chunk)
    {
        var result = chunk.Buffer<LongVector>(Slot);
        if (array is Date32Array dates)
        {
            result.Own();
            var days = MemoryMarshal.Cast<byte, int>(dates.ValueBuffer.Span).Slice(dates.Offset + chunk.Start, chunk.Length);
            var values = result.Buffer.AsSpan(0, chunk.Length);
            for (var i = 0; i < days.Length; i++)
            {
                values[i] = days[i];
            }
        }
        else
        {
            var memory = array.Data.Buffers[1].Memory;
            var start = array.Offset + chunk.Start;
            // Kernels read whole 64-row words: borrow the column only where those lie inside it.
            if ((start + chunk.Words * 64) * sizeof(long) <= memory.Length)
            {
                result.Borrow(memory, start);
            }
            else
            {
                result.Own();
                MemoryMarshal.Cast<byte, long>(memory.Span).Slice(start, chunk.Length).CopyTo(result.Buffer);
            }
        }
        Segments.Validity.FromArrow(array, chunk, result.Valid);
        return result;
    }
}

internal sealed class LongConstantNode(SqlType type, int position, long value) : LongNode(type, position)
{
    public long Value { get; } = value;

    public override IEnumerable<Node> Children => [];

    public override LongVector Eval(Chunk chunk)
    {
        var result = chunk.Buffer<LongVector>(Slot);
        result.Buffer.AsSpan(0, chunk.Length).Fill(Value);
        Segments.Validity.All(chunk, result.Valid);
        return result;
    }
}

internal sealed class DoubleColumnNode(int position, DoubleArray array) : DoubleNode(position)
{
    public override IEnumerable<Node> Children => [];

    public override DoubleVector Eval(Chunk chunk)
    {
        var result = chunk.Buffer<DoubleVector>(Slot);
        var memory = array.ValueBuffer.Memory;
        var start = array.Offset + chunk.Start;
        if ((start + chunk.Words * 64) * sizeof(double) <= memory.Length)
        {
            result.Borrow(memory, start);
        }
        else
        {
            result.Own();
            array.Values.Slice(chunk.Start, chunk.Length).CopyTo(result.Buffer);
        }
        Segments.Validity.FromArrow(array, chunk, result.Valid);
        return result;
    }
}

internal sealed class DoubleConstantNode(int position, double value) : DoubleNode(position)
{
    public double Value { get; } = value;

    public override IEnumerable<Node> Children => [];

    public override DoubleVector Eval(Chunk chunk)
    {
        var result = chunk.Buffer<DoubleVector>(Slot);
        result.Buffer.AsSpan(0, chunk.Length).Fill(Value);
        Segments.Validity.All(chunk, result.Valid);
        return result;
    }
}

internal sealed class StringColumnNode(int position, DictionaryArray array) : StringNode(position, new Utf8Dictionary((StringArray)array.Dictionary))
{
    public override IEnumerable<Node> Children => [];

    public override CodeVector Eval(Chunk chunk)
    {
        var result = chunk.Buffer<CodeVector>(Slot);
        ((Int32Array)array.Indices).Values.Slice(chunk.Start, chunk.Length).CopyTo(result.Codes);
        Segments.Validity.FromArrow(array.Indices, chunk, result.Valid);
        return result;
    }
}

internal sealed class StringConstantNode(int position, byte[] value) : StringNode(position, new Utf8Dictionary([value]))
{
    public byte[] Value { get; } = value;

    public override IEnumerable<Node> Children => [];

    public override CodeVector Eval(Chunk chunk)
    {
        var result = chunk.Buffer<CodeVector>(Slot);
        result.Codes.AsSpan(0, chunk.Length).Clear();
        Segments.Validity.All(chunk, result.Valid);
        return result;
    }
}

/// <summary>A function of a string applied once per dictionary entry (lower, upper): codes mapped to a new dictionary.</summary>
internal sealed class StringMapNode(int position, StringNode input, int[] map, byte[][] dictionary) : StringNode(position, new Utf8Dictionary(dictionary))
{
    public override IEnumerable<Node> Children => [input];

    public override CodeVector Eval(Chunk chunk)
    {
        var source = input.Eval(chunk);
        var result = chunk.Buffer<CodeVector>(Slot);
        var codes = source.Codes.AsSpan(0, chunk.Length);
        var output = result.Codes.AsSpan(0, chunk.Length);
        for (var i = 0; i < codes.Length; i++)
        {
            output[i] = map[codes[i]];
        }
        source.Valid.AsSpan(0, chunk.Words).CopyTo(result.Valid);
        return result;
    }
}

/// <summary>A numeric function of a string computed once per dictionary entry (length).</summary>
internal sealed class StringToLongNode(int position, StringNode input, long[] table) : LongNode(SqlType.BigInt, position)
{
    public override IEnumerable<Node> Children => [input];

    public override LongVector Eval(Chunk chunk)
    {
        var source = input.Eval(chunk);
        var result = chunk.Buffer<LongVector>(Slot);
        var codes = source.Codes.AsSpan(0, chunk.Length);
        var output = result.Buffer.AsSpan(0, chunk.Length);
        for (var i = 0; i < codes.Length; i++)
        {
            output[i] = table[codes[i]];
        }
        source.Valid.AsSpan(0, chunk.Words).CopyTo(result.Valid);
        return result;
    }
}

/// <summary><c>coalesce</c> of strings: each argument's codes mapped into one union dictionary.</summary>
internal sealed class StringCoalesceNode(int position, StringNode[] inputs, int[][] maps, byte[][] dictionary) : StringNode(position, new Utf8Dictionary(dictionary))
{
    public override IEnumerable<Node> Children => inputs;

    public override CodeVector Eval(Chunk chunk)
    {
        var result = chunk.Buffer<CodeVector>(Slot);
        var valid = result.Valid.AsSpan(0, chunk.Words);
        valid.Clear();
        // Rows NULL in every argument keep code 0: every code-indexed table has an entry 0, and a pooled buffer
        // may hold another dictionary's codes.
        result.Codes.AsSpan(0, chunk.Words * 64).Clear();
        for (var a = 0; a < inputs.Length; a++)
        {
            var source = inputs[a].Eval(chunk);
            var map = maps[a];
            for (var w = 0; w < valid.Length; w++)
            {
                var take = source.Valid[w] & ~valid[w];
                while (take != 0)
                {
                    var row = (w << 6) + BitOperations.TrailingZeroCount(take);
                    result.Codes[row] = map[source.Codes[row]];
                    take &= take - 1;
                }
                valid[w] |= source.Valid[w];
            }
        }
        return result;
    }
}

// ---- arithmetic --------------------------------------------------------------------------------------------------

internal enum ArithmeticOperator { Add, Subtract, Multiply, Modulo, IntegerDivide, Divide }

/// <summary>
/// 64-bit integer arithmetic (BIGINT, DECIMAL at one scale, dates in days, times in microseconds), checked as DuckDB
/// checks it: an overflow on a row that is not NULL stops the evaluation; <c>%</c> and <c>//</c> by zero are NULL.
/// </summary>
internal sealed class LongArithmeticNode(SqlType type, int position, ArithmeticOperator op, LongNode left, LongNode right, string what)
    : LongNode(type, position)
{
    public override IEnumerable<Node> Children => [left, right];

    public override LongVector Eval(Chunk chunk)
    {
        var a = left.Eval(chunk);
        var b = right.Eval(chunk);
        var result = chunk.Buffer<LongVector>(Slot);
        var valid = result.Valid.AsSpan(0, chunk.Words);
        Segments.Validity.And(a.Valid, b.Valid, valid);
        var x = a.Values;
        var y = b.Values;
        var r = result.Buffer;
        var overflow = op switch
        {
            // Straight loops over every row (NULL rows too: their results are never read); an overflow counts only
            // on a row that is not NULL.
            ArithmeticOperator.Add => AddOrSubtract(x, y, r, valid, subtract: false),
            ArithmeticOperator.Subtract => AddOrSubtract(x, y, r, valid, subtract: true),
            ArithmeticOperator.Multiply => Multiply(x, y, r, valid),
            _ => Divide(x, y, r, valid),
        };
        if (overflow)
        {
            throw new ConditionException(Position, $"{SqlTypes.Name(Type)} overflow in {what}");
        }
        return result;
    }

    private static bool AddOrSubtract(ReadOnlySpan<long> x, ReadOnlySpan<long> y, long[] r, Span<ulong> valid, bool subtract)
    {
        ulong overflow = 0;
        for (var w = 0; w < valid.Length; w++)
        {
            ulong signs = 0;
            var baseRow = w * 64;
            for (var b = 0; b < 64; b++)
            {
                var i = baseRow + b;
                var value = subtract ? x[i] - y[i] : x[i] + y[i];
                r[i] = value;
                var sign = subtract ? (x[i] ^ y[i]) & (x[i] ^ value) : (x[i] ^ value) & (y[i] ^ value);
                signs |= ((ulong)sign >> 63) << b;
            }
            overflow |= signs & valid[w];
        }
        return overflow != 0;
    }

    private static bool Multiply(ReadOnlySpan<long> x, ReadOnlySpan<long> y, long[] r, Span<ulong> valid)
    {
        ulong overflow = 0;
        for (var w = 0; w < valid.Length; w++)
        {
            ulong wide = 0;
            var baseRow = w * 64;
            for (var b = 0; b < 64; b++)
            {
                var i = baseRow + b;
                var high = Math.BigMul(x[i], y[i], out var value);
                r[i] = value;
                wide |= (high != (value >> 63) ? 1UL : 0) << b;
            }
            overflow |= wide & valid[w];
        }
        return overflow != 0;
    }

    private bool Divide(ReadOnlySpan<long> x, ReadOnlySpan<long> y, long[] r, Span<ulong> valid)
    {
        var overflow = false;
        for (var w = 0; w < valid.Length; w++)
        {
            var bits = valid[w];
            while (bits != 0)
            {
                var bit = BitOperations.TrailingZeroCount(bits);
                var i = (w << 6) + bit;
                bits &= bits - 1;
                if (y[i] == 0)
                {
                    // % and // by zero are NULL, as in DuckDB.
                    valid[w] &= ~(1UL << bit);
                    r[i] = 0;
                }
                else if (y[i] == -1)
                {
                    // long.MinValue / -1 overflows; x % -1 is 0 for every x.
                    overflow |= op == ArithmeticOperator.IntegerDivide && x[i] == long.MinValue;
                    r[i] = op == ArithmeticOperator.Modulo ? 0 : -x[i];
                }
                else
                {
                    r[i] = op == ArithmeticOperator.Modulo ? x[i] % y[i] : x[i] / y[i];
                }
            }
        }
        return overflow;
    }
}

/// <summary>Multiplies by a constant factor, checked: BIGINT to DECIMAL, a DECIMAL to a larger scale, days to microseconds.</summary>
internal sealed class LongScaleNode(SqlType type, int position, LongNode input, long factor, string what) : LongNode(type, position)
{
    public override IEnumerable<Node> Children => [input];

    public override LongVector Eval(Chunk chunk)
    {
        var source = input.Eval(chunk);
        var result = chunk.Buffer<LongVector>(Slot);
        var valid = result.Valid.AsSpan(0, chunk.Words);
        source.Valid.AsSpan(0, chunk.Words).CopyTo(valid);
        var overflow = false;
        var given = source.Values;
        for (var i = 0; i < chunk.Length; i++)
        {
            var high = Math.BigMul(given[i], factor, out var value);
            result.Buffer[i] = value;
            overflow |= high != (value >> 63) && Segments.Validity.IsSet(valid, i);
        }
        if (overflow)
        {
            throw new ConditionException(Position, $"{SqlTypes.Name(Type)} overflow in {what}");
        }
        return result;
    }
}

internal sealed class LongNegateNode(int position, LongNode input, bool absolute) : LongNode(input.Type, position)
{
    public override IEnumerable<Node> Children => [input];

    public override LongVector Eval(Chunk chunk)
    {
        var source = input.Eval(chunk);
        var result = chunk.Buffer<LongVector>(Slot);
        var valid = result.Valid.AsSpan(0, chunk.Words);
        source.Valid.AsSpan(0, chunk.Words).CopyTo(valid);
        var overflow = false;
        var given = source.Values;
        for (var i = 0; i < chunk.Length; i++)
        {
            var v = given[i];
            overflow |= v == long.MinValue && Segments.Validity.IsSet(valid, i);
            result.Buffer[i] = absolute && v >= 0 ? v : -v;
        }
        if (overflow)
        {
            throw new ConditionException(Position, $"{SqlTypes.Name(Type)} overflow in {(absolute ? "abs" : "negation")}");
        }
        return result;
    }
}

/// <summary>A time plus an interval: months first (the day clamped to the month's end), then days, then microseconds, as DuckDB adds them.</summary>
internal sealed class AddIntervalNode(int position, LongNode time, IntervalNode interval) : LongNode(SqlType.Timestamp, position)
{
    private const long MicrosPerDay = 86_400_000_000;
    private const int CacheSize = 4096;

    // Per worker thread; keyed by the month shift it was filled for.
    [ThreadStatic] private static long[]? _cacheKeys;
    [ThreadStatic] private static long[]? _cacheValues;
    [ThreadStatic] private static int _cacheMonths;

    /// <summary>A day number (days since 1970-01-01) plus months, the day of month clamped to the new month's length.</summary>
    internal static long AddMonths(long day, int months)
    {
        var (year, month, dayOfMonth) = Civil(day);
        var total = year * 12 + (month - 1) + months;
        var newYear = Math.DivRem(total, 12, out var newMonth);
        if (newMonth < 0)
        {
            newYear--;
            newMonth += 12;
        }
        return DayNumber(newYear, (int)newMonth + 1, Math.Min(dayOfMonth, DaysIn(newYear, (int)newMonth + 1)));
    }

    private static int DaysIn(long year, int month) => month switch
    {
        2 => (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28,
        4 or 6 or 9 or 11 => 30,
        _ => 31,
    };

    // Proleptic Gregorian calendar in integer arithmetic, by 400-year eras of 146,097 days (counted from March, so
    // the leap day ends a year): no tables, no exceptions, a few nanoseconds a row.
    private static (long Year, int Month, int Day) Civil(long day)
    {
        var z = day + 719_468;
        var era = (z >= 0 ? z : z - 146_096) / 146_097;
        var dayOfEra = z - era * 146_097;
        var yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365;
        var dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100);
        var monthFromMarch = (5 * dayOfYear + 2) / 153;
        var dayOfMonth = (int)(dayOfYear - (153 * monthFromMarch + 2) / 5 + 1);
        var month = (int)(monthFromMarch < 10 ? monthFromMarch + 3 : monthFromMarch - 9);
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, dayOfMonth);
    }

    private static long DayNumber(long year, int month, int day)
    {
        year -= month <= 2 ? 1 : 0;
        var era = (year >= 0 ? year : year - 399) / 400;
        var yearOfEra = year - era * 400;
        var dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
        var dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear;
        return era * 146_097 + dayOfEra - 719_468;
    }

    public override IEnumerable<Node> Children => [time, interval];

    public override LongVector Eval(Chunk chunk)
    {
        var source = time.Eval(chunk);
        var result = chunk.Buffer<LongVector>(Slot);
        source.Valid.AsSpan(0, chunk.Words).CopyTo(result.Valid);
        var shift = interval.Days * MicrosPerDay + interval.Micros;
        if (interval.Months == 0)
        {
            var values = source.Values[..chunk.Length];
            var output = result.Buffer.AsSpan(0, chunk.Length);
            for (var i = 0; i < values.Length; i++)
            {
                output[i] = values[i] + shift;
            }
            return result;
        }
        var times = source.Values;
        // Rows share days (ten million profiles, a few thousand distinct days): a small direct-mapped cache of
        // day -> shifted day saves the calendar arithmetic for all but the first row of each day.
        var keys = _cacheKeys ??= new long[CacheSize];
        var shifted = _cacheValues ??= new long[CacheSize];
        if (_cacheMonths != interval.Months)
        {
            keys.AsSpan().Fill(long.MinValue);
            _cacheMonths = interval.Months;
        }
        for (var i = 0; i < chunk.Length; i++)
        {
            // Every row, NULLs included: the integer calendar below cannot fail, whatever a NULL row holds.
            var value = times[i];
            var day = value / MicrosPerDay;
            var timeOfDay = value - day * MicrosPerDay;
            if (timeOfDay < 0)
            {
                day--;
                timeOfDay += MicrosPerDay;
            }
            var slot = (int)(day & (CacheSize - 1));
            if (keys[slot] != day)
            {
                keys[slot] = day;
                shifted[slot] = AddMonths(day, interval.Months);
            }
            result.Buffer[i] = shifted[slot] * MicrosPerDay + timeOfDay + shift;
        }
        return result;
    }
}

internal sealed class DoubleFromLongNode(int position, LongNode input, int scale) : DoubleNode(position)
{
    private readonly double _divisor = Math.Pow(10, scale);

    public override IEnumerable<Node> Children => [input];

    public override DoubleVector Eval(Chunk chunk)
    {
        var source = input.Eval(chunk);
        var result = chunk.Buffer<DoubleVector>(Slot);
        var values = source.Values[..chunk.Length];
        var output = result.Buffer.AsSpan(0, chunk.Length);
        if (scale == 0)
        {
            for (var i = 0; i < values.Length; i++)
            {
                output[i] = values[i];
            }
        }
        else
        {
            for (var i = 0; i < values.Length; i++)
            {
                output[i] = values[i] / _divisor;
            }
        }
        source.Valid.AsSpan(0, chunk.Words).CopyTo(result.Valid);
        return result;
    }
}

internal sealed class DoubleArithmeticNode(int position, ArithmeticOperator op, DoubleNode left, DoubleNode right) : DoubleNode(position)
{
    public override IEnumerable<Node> Children => [left, right];

    public override DoubleVector Eval(Chunk chunk)
    {
        var a = left.Eval(chunk);
        var b = right.Eval(chunk);
        var result = chunk.Buffer<DoubleVector>(Slot);
        Segments.Validity.And(a.Valid, b.Valid, result.Valid.AsSpan(0, chunk.Words));
        var x = a.Values[..chunk.Length];
        var y = b.Values[..chunk.Length];
        var r = result.Buffer.AsSpan(0, chunk.Length);
        switch (op)
        {
            case ArithmeticOperator.Add:
                for (var i = 0; i < r.Length; i++) { r[i] = x[i] + y[i]; }
                break;
            case ArithmeticOperator.Subtract:
                for (var i = 0; i < r.Length; i++) { r[i] = x[i] - y[i]; }
                break;
            case ArithmeticOperator.Multiply:
                for (var i = 0; i < r.Length; i++) { r[i] = x[i] * y[i]; }
                break;
            case ArithmeticOperator.Divide:
                for (var i = 0; i < r.Length; i++) { r[i] = x[i] / y[i]; }
                break;
            case ArithmeticOperator.Modulo:
                for (var i = 0; i < r.Length; i++) { r[i] = x[i] % y[i]; }
                break;
            default:
                throw new InvalidOperationException($"{op} is not a DOUBLE operator");
        }
        return result;
    }
}

internal sealed class DoubleNegateNode(int position, DoubleNode input, bool absolute) : DoubleNode(position)
{
    public override IEnumerable<Node> Children => [input];

    public override DoubleVector Eval(Chunk chunk)
    {
        var source = input.Eval(chunk);
        var result = chunk.Buffer<DoubleVector>(Slot);
        var given = source.Values;
        for (var i = 0; i < chunk.Length; i++)
        {
            result.Buffer[i] = absolute ? Math.Abs(given[i]) : -given[i];
        }
        source.Valid.AsSpan(0, chunk.Words).CopyTo(result.Valid);
        return result;
    }
}

/// <summary>The step of <c>coalesce</c> shared by every type: rows still NULL take the next argument's value.</summary>
internal static class Coalescing
{
    public static void Fill<T>(ReadOnlySpan<T> values, ReadOnlySpan<ulong> sourceValid, T[] buffer, Span<ulong> valid)
    {
        for (var w = 0; w < valid.Length; w++)
        {
            var take = sourceValid[w] & ~valid[w];
            if (take == ulong.MaxValue)
            {
                values.Slice(w << 6, 64).CopyTo(buffer.AsSpan(w << 6));
            }
            else
            {
                while (take != 0)
                {
                    var row = (w << 6) + BitOperations.TrailingZeroCount(take);
                    buffer[row] = values[row];
                    take &= take - 1;
                }
            }
            valid[w] |= sourceValid[w];
        }
    }
}

/// <summary><c>coalesce</c> over 64-bit values (all arguments already converted to one type and scale).</summary>
internal sealed class LongCoalesceNode(SqlType type, int position, LongNode[] inputs) : LongNode(type, position)
{
    public override IEnumerable<Node> Children => inputs;

    public override LongVector Eval(Chunk chunk)
    {
        var result = chunk.Buffer<LongVector>(Slot);
        var valid = result.Valid.AsSpan(0, chunk.Words);
        valid.Clear();
        foreach (var input in inputs)
        {
            var source = input.Eval(chunk);
            Coalescing.Fill(source.Values, source.Valid, result.Buffer, valid);
        }
        return result;
    }
}

internal sealed class DoubleCoalesceNode(int position, DoubleNode[] inputs) : DoubleNode(position)
{
    public override IEnumerable<Node> Children => inputs;

    public override DoubleVector Eval(Chunk chunk)
    {
        var result = chunk.Buffer<DoubleVector>(Slot);
        var valid = result.Valid.AsSpan(0, chunk.Words);
        valid.Clear();
        foreach (var input in inputs)
        {
            var source = input.Eval(chunk);
            Coalescing.Fill(source.Values, source.Valid, result.Buffer, valid);
        }
        return result;
    }
}

// ---- predicates ----------------------------------------------------------------------------------------------

internal enum ComparisonOperator { Equal, NotEqual, Less, LessOrEqual, Greater, GreaterOrEqual }

internal static class Comparisons
{
    public static bool Holds(ComparisonOperator op, int order) => op switch
    {
        ComparisonOperator.Equal => order == 0,
        ComparisonOperator.NotEqual => order != 0,
        ComparisonOperator.Less => order < 0,
        ComparisonOperator.LessOrEqual => order <= 0,
        ComparisonOperator.Greater => order > 0,
        _ => order >= 0,
    };

    /// <summary>DuckDB's order of doubles: NaN equals NaN and is above every other value; -0.0 equals 0.0.</summary>
    public static int Compare(double a, double b)
    {
        if (a < b)
        {
            return -1;
        }
        if (a > b)
        {
            return 1;
        }
        if (a == b)
        {
            return 0;
        }
        return double.IsNaN(a) ? (double.IsNaN(b) ? 0 : 1) : -1;
    }

    /// <summary>Writes TRUE / FALSE words from a per-row outcome bitmap and the validity.</summary>
    public static void Split(ReadOnlySpan<ulong> holds, ReadOnlySpan<ulong> valid, Bits result, int words)
    {
        for (var w = 0; w < words; w++)
        {
            result.True[w] = holds[w] & valid[w];
            result.False[w] = ~holds[w] & valid[w];
        }
    }
}

/// <summary>
/// Builds comparison outcomes 64 rows (one bitmap word) at a time: four lanes per 256-bit compare, the lanes' sign
/// bits gathered into the word. Reads whole words, so buffers must hold <see cref="Chunk.Rows"/> values.
/// </summary>
internal static class WordCompare
{
    /// <summary>
    /// Compares <paramref name="x"/> with <paramref name="y"/> (or, when <paramref name="y"/> is empty, with
    /// <paramref name="constant"/>), one bit per row into <paramref name="holds"/>. With <paramref name="unordered"/>,
    /// sets the bit of each row with a NaN on either side (its outcome is IEEE's, which the caller redoes).
    /// </summary>
    public static void Fill<T>(ComparisonOperator op, ReadOnlySpan<T> x, ReadOnlySpan<T> y, T constant, ulong[] holds, int words, Span<ulong> unordered = default)
        where T : unmanaged, INumber<T>
    {
        // <= is not >, >= is not <, <> is not =: one compare and an inversion.
        var invert = op is ComparisonOperator.NotEqual or ComparisonOperator.LessOrEqual or ComparisonOperator.GreaterOrEqual;
        var basic = op switch
        {
            ComparisonOperator.NotEqual => ComparisonOperator.Equal,
            ComparisonOperator.LessOrEqual => ComparisonOperator.Greater,
            ComparisonOperator.GreaterOrEqual => ComparisonOperator.Less,
            _ => op,
        };
        var pairwise = !y.IsEmpty;
        var checkNaN = !unordered.IsEmpty;
        if (x.Length < words * 64 || (pairwise && y.Length < words * 64))
        {
            throw new ArgumentException("comparison inputs must cover whole words");
        }
        if (Vector256.IsHardwareAccelerated)
        {
            var lanes = Vector256<T>.Count;
            var right = Vector256.Create(constant);
            ref var xs = ref MemoryMarshal.GetReference(x);
            ref var ys = ref MemoryMarshal.GetReference(y);
            for (var w = 0; w < words; w++)
            {
                ulong word = 0;
                ulong nan = 0;
                for (var k = 0; k < 64; k += lanes)
                {
                    var at = (nuint)(w * 64 + k);
                    var left = Vector256.LoadUnsafe(ref xs, at);
                    if (pairwise)
                    {
                        right = Vector256.LoadUnsafe(ref ys, at);
                    }
                    if (checkNaN)
                    {
                        var ordered = Vector256.Equals(left, left) & Vector256.Equals(right, right);
                        nan |= (ulong)(~ordered).ExtractMostSignificantBits() << k;
                    }
                    var mask = basic switch
                    {
                        ComparisonOperator.Equal => Vector256.Equals(left, right),
                        ComparisonOperator.Less => Vector256.LessThan(left, right),
                        _ => Vector256.GreaterThan(left, right),
                    };
                    word |= (ulong)mask.ExtractMostSignificantBits() << k;
                }
                holds[w] = invert ? ~word : word;
                if (checkNaN)
                {
                    unordered[w] = nan;
                }
            }
            return;
        }
        for (var w = 0; w < words; w++)
        {
            ulong word = 0;
            ulong nan = 0;
            for (var b = 0; b < 64; b++)
            {
                var i = w * 64 + b;
                var value = pairwise ? y[i] : constant;
                nan |= (checkNaN && (T.IsNaN(x[i]) || T.IsNaN(value)) ? 1UL : 0) << b;
                var outcome = basic switch
                {
                    ComparisonOperator.Equal => x[i] == value,
                    ComparisonOperator.Less => x[i] < value,
                    _ => x[i] > value,
                };
                word |= (outcome ? 1UL : 0) << b;
            }
            holds[w] = invert ? ~word : word;
            if (checkNaN)
            {
                unordered[w] = nan;
            }
        }
    }
}

internal sealed class CompareLongNode(int position, ComparisonOperator op, LongNode left, LongNode right) : PredicateNode(position)
{
    public override IEnumerable<Node> Children => [left, right];

    public override Bits Eval(Chunk chunk)
    {
        var a = left.Eval(chunk);
        var result = chunk.Buffer<Bits>(Slot);
        ReadOnlySpan<ulong> valid;
        if (right is LongConstantNode constant)
        {
            WordCompare.Fill(op, a.Values, default, constant.Value, result.Holds, chunk.Words);
            valid = a.Valid;
        }
        else
        {
            var b = right.Eval(chunk);
            WordCompare.Fill(op, a.Values, b.Values, 0L, result.Holds, chunk.Words);
            Segments.Validity.And(a.Valid, b.Valid, result.Both.AsSpan(0, chunk.Words));
            valid = result.Both;
        }
        Comparisons.Split(result.Holds, valid, result, chunk.Words);
        return result;
    }
}

/// <summary>
/// DOUBLE comparisons: IEEE compares for the common case; a word with a NaN in it is redone row by row in DuckDB's
/// order (NaN equals NaN and sorts above everything).
/// </summary>
internal sealed class CompareDoubleNode(int position, ComparisonOperator op, DoubleNode left, DoubleNode right) : PredicateNode(position)
{
    public override IEnumerable<Node> Children => [left, right];

    public override Bits Eval(Chunk chunk)
    {
        var a = left.Eval(chunk);
        var result = chunk.Buffer<Bits>(Slot);
        var constant = right as DoubleConstantNode;
        var b = constant is null ? right.Eval(chunk) : null;
        var x = a.Values;
        var y = b is null ? default : b.Values;
        var c = constant?.Value ?? 0;
        Span<ulong> unordered = stackalloc ulong[chunk.Words];
        WordCompare.Fill(op, x, y, c, result.Holds, chunk.Words, unordered);
        ReadOnlySpan<ulong> valid = a.Valid;
        if (b is not null)
        {
            Segments.Validity.And(a.Valid, b.Valid, result.Both.AsSpan(0, chunk.Words));
            valid = result.Both;
        }
        for (var w = 0; w < chunk.Words; w++)
        {
            // Only NaNs on rows that are not NULL matter (a NULL row's slot often holds 0/0 from the arithmetic before).
            var fix = unordered[w] & valid[w];
            while (fix != 0)
            {
                var bit = BitOperations.TrailingZeroCount(fix);
                fix &= fix - 1;
                var i = w * 64 + bit;
                var holds = Comparisons.Holds(op, Comparisons.Compare(x[i], b is null ? c : y[i]));
                result.Holds[w] = holds ? result.Holds[w] | (1UL << bit) : result.Holds[w] & ~(1UL << bit);
            }
        }
        Comparisons.Split(result.Holds, valid, result, chunk.Words);
        return result;
    }
}

/// <summary>
/// A predicate over one string decided per dictionary entry when compiling (a comparison with a constant, LIKE, IN
/// a list of constants): per row it is a table lookup. An entry's outcome is true, false or null (IN with a NULL item).
/// </summary>
internal sealed class StringTableNode(int position, StringNode input, bool[] isTrue, bool[] isFalse) : PredicateNode(position)
{
    public override IEnumerable<Node> Children => [input];

    public override Bits Eval(Chunk chunk)
    {
        var source = input.Eval(chunk);
        var result = chunk.Buffer<Bits>(Slot);
        var codes = source.Codes;
        for (var w = 0; w < chunk.Words; w++)
        {
            ulong t = 0;
            ulong f = 0;
            var end = Math.Min(64, chunk.Length - w * 64);
            var baseRow = w * 64;
            for (var bit = 0; bit < end; bit++)
            {
                var code = codes[baseRow + bit];
                t |= (isTrue[code] ? 1UL : 0) << bit;
                f |= (isFalse[code] ? 1UL : 0) << bit;
            }
            result.True[w] = t & source.Valid[w];
            result.False[w] = f & source.Valid[w];
        }
        return result;
    }
}

/// <summary>Two strings compared by rank in the union of their dictionaries, sorted by UTF-8 bytes (DuckDB's default collation).</summary>
internal sealed class CompareStringsNode(int position, ComparisonOperator op, StringNode left, StringNode right, int[] leftRank, int[] rightRank)
    : PredicateNode(position)
{
    public override IEnumerable<Node> Children => [left, right];

    public override Bits Eval(Chunk chunk)
    {
        var a = left.Eval(chunk);
        var b = right.Eval(chunk);
        var result = chunk.Buffer<Bits>(Slot);
        var holds = result.Holds;
        var both = result.Both;
        Segments.Validity.And(a.Valid, b.Valid, both.AsSpan(0, chunk.Words));
        for (var w = 0; w < chunk.Words; w++)
        {
            ulong word = 0;
            var end = Math.Min(64, chunk.Length - w * 64);
            var baseRow = w * 64;
            for (var bit = 0; bit < end; bit++)
            {
                var i = baseRow + bit;
                word |= (Comparisons.Holds(op, leftRank[a.Codes[i]].CompareTo(rightRank[b.Codes[i]])) ? 1UL : 0) << bit;
            }
            holds[w] = word;
        }
        Comparisons.Split(holds, both, result, chunk.Words);
        return result;
    }

}

internal sealed class BooleanColumnNode(int position, BooleanArray array) : PredicateNode(position)
{
    public override IEnumerable<Node> Children => [];

    public override Bits Eval(Chunk chunk)
    {
        var result = chunk.Buffer<Bits>(Slot);
        Segments.Validity.FromArrow(array, chunk, result.False);
        // The value bitmap has the validity's layout: read it the same way, into TRUE.
        var values = array.ValueBuffer.Span;
        var firstByte = chunk.Start >> 3;
        for (var w = 0; w < chunk.Words; w++)
        {
            ulong word = 0;
            for (var b = 0; b < 8; b++)
            {
                var at = firstByte + w * 8 + b;
                if (at < values.Length)
                {
                    word |= (ulong)values[at] << (b * 8);
                }
            }
            var valid = result.False[w];
            result.True[w] = word & valid;
            result.False[w] = ~word & valid;
        }
        return result;
    }
}

internal sealed class BooleanConstantNode(int position, bool? value) : PredicateNode(position)
{
    public override IEnumerable<Node> Children => [];

    public override Bits Eval(Chunk chunk)
    {
        var result = chunk.Buffer<Bits>(Slot);
        result.True.AsSpan(0, chunk.Words).Fill(value == true ? ulong.MaxValue : 0);
        result.False.AsSpan(0, chunk.Words).Fill(value == false ? ulong.MaxValue : 0);
        return result;
    }
}

internal sealed class NotNode(int position, PredicateNode input) : PredicateNode(position)
{
    public override IEnumerable<Node> Children => [input];

    public override Bits Eval(Chunk chunk)
    {
        var source = input.Eval(chunk);
        var result = chunk.Buffer<Bits>(Slot);
        source.True.AsSpan(0, chunk.Words).CopyTo(result.False);
        source.False.AsSpan(0, chunk.Words).CopyTo(result.True);
        return result;
    }
}

internal sealed class AndOrNode(int position, bool and, PredicateNode[] inputs) : PredicateNode(position)
{
    public override IEnumerable<Node> Children => inputs;

    public override Bits Eval(Chunk chunk)
    {
        var result = chunk.Buffer<Bits>(Slot);
        var t = result.True.AsSpan(0, chunk.Words);
        var f = result.False.AsSpan(0, chunk.Words);
        var first = inputs[0].Eval(chunk);
        first.True.AsSpan(0, chunk.Words).CopyTo(t);
        first.False.AsSpan(0, chunk.Words).CopyTo(f);
        for (var k = 1; k < inputs.Length; k++)
        {
            var next = inputs[k].Eval(chunk);
            if (and)
            {
                for (var w = 0; w < t.Length; w++)
                {
                    t[w] &= next.True[w];
                    f[w] |= next.False[w];
                }
            }
            else
            {
                for (var w = 0; w < t.Length; w++)
                {
                    t[w] |= next.True[w];
                    f[w] &= next.False[w];
                }
            }
        }
        return result;
    }
}

/// <summary><c>a = b</c> (or another comparison) between two booleans, with FALSE &lt; TRUE.</summary>
internal sealed class CompareBooleansNode(int position, ComparisonOperator op, PredicateNode left, PredicateNode right) : PredicateNode(position)
{
    public override IEnumerable<Node> Children => [left, right];

    public override Bits Eval(Chunk chunk)
    {
        var a = left.Eval(chunk);
        var b = right.Eval(chunk);
        var result = chunk.Buffer<Bits>(Slot);
        for (var w = 0; w < chunk.Words; w++)
        {
            ulong ta = a.True[w], fa = a.False[w], tb = b.True[w], fb = b.False[w];
            var both = (ta | fa) & (tb | fb);
            var equal = (ta & tb) | (fa & fb);
            var less = fa & tb;
            var greater = ta & fb;
            var holds = op switch
            {
                ComparisonOperator.Equal => equal,
                ComparisonOperator.NotEqual => less | greater,
                ComparisonOperator.Less => less,
                ComparisonOperator.LessOrEqual => less | equal,
                ComparisonOperator.Greater => greater,
                _ => greater | equal,
            };
            result.True[w] = holds;
            result.False[w] = both & ~holds;
        }
        return result;
    }
}

internal sealed class BooleanCoalesceNode(int position, PredicateNode[] inputs) : PredicateNode(position)
{
    public override IEnumerable<Node> Children => inputs;

    public override Bits Eval(Chunk chunk)
    {
        var result = chunk.Buffer<Bits>(Slot);
        var t = result.True.AsSpan(0, chunk.Words);
        var f = result.False.AsSpan(0, chunk.Words);
        t.Clear();
        f.Clear();
        foreach (var input in inputs)
        {
            var next = input.Eval(chunk);
            for (var w = 0; w < t.Length; w++)
            {
                var open = ~(t[w] | f[w]);
                t[w] |= next.True[w] & open;
                f[w] |= next.False[w] & open;
            }
        }
        return result;
    }
}

internal sealed class IsNullNode(int position, Node input, bool negated) : PredicateNode(position)
{
    public override IEnumerable<Node> Children => [input];

    public override Bits Eval(Chunk chunk)
    {
        var valid = input.Validity(chunk);
        var result = chunk.Buffer<Bits>(Slot);
        for (var w = 0; w < chunk.Words; w++)
        {
            result.True[w] = negated ? valid[w] : ~valid[w];
            result.False[w] = ~result.True[w];
        }
        return result;
    }
}

/// <summary><c>in_segment('name')</c>: the members of a segment evaluated before this one; never NULL.</summary>
internal sealed class InSegmentNode(int position, string segment) : PredicateNode(position)
{
    public string Segment { get; } = segment;

    public override IEnumerable<Node> Children => [];

    public override Bits Eval(Chunk chunk)
    {
        var members = chunk.Segments[Segment];
        var result = chunk.Buffer<Bits>(Slot);
        var first = chunk.Start >> 6;
        for (var w = 0; w < chunk.Words; w++)
        {
            result.True[w] = members[first + w];
            result.False[w] = ~members[first + w];
        }
        return result;
    }
}
