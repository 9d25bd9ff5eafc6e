using System.Globalization;
using Apache.Arrow;
using DuckDB.NET.Data;
using Engine.Storage;

namespace Engine.Benchmarks.Storage;

/// <summary>
/// What both readers compute over the events' contract columns, so that each must decode every value and the
/// answers can be compared: rows, then per string column its value bytes and non-null count, the sum of ts in
/// microseconds and the revenue total. Sums, not min/max: DuckDB answers min/max of a column from the Parquet
/// statistics without reading it. Light work on both sides; reading dominates.
/// </summary>
public sealed class EventChecksums : IEquatable<EventChecksums>
{
    public static readonly ColumnSpec[] Columns =
    [
        new("event_id", ColumnType.String),
        new("ts", ColumnType.Timestamp),
        new("type", ColumnType.String),
        new("anonymous_id", ColumnType.String),
        new("user_id", ColumnType.String),
        new("email", ColumnType.String),
        new("product_id", ColumnType.String),
        new("revenue", ColumnType.Double),
    ];

    private static readonly int[] StringColumns = [0, 2, 3, 4, 5, 6];

    public long Rows;
    public readonly long[] Bytes = new long[Columns.Length];
    public readonly long[] NonNull = new long[Columns.Length];
    public Int128 TsSum;
    public double Revenue;

    /// <summary>Adds one batch (columns in <see cref="Columns"/> order). Spans over Arrow buffers; no per-row work but the sums.</summary>
    public void Add(RecordBatch batch)
    {
        Rows += batch.Length;
        foreach (var c in StringColumns)
        {
            var column = batch.Column(c);
            Bytes[c] += column switch
            {
                StringArray strings => strings.ValueOffsets[strings.Length] - strings.ValueOffsets[0],
                DictionaryArray dictionary => DictionaryBytes(dictionary),
                _ => throw new InvalidOperationException($"unexpected {column.GetType().Name} for {Columns[c].Name}"),
            };
            NonNull[c] += column.Length - column.NullCount;
        }
        var ts = (TimestampArray)batch.Column(1);
        var values = ts.Values;
        Int128 tsSum = 0;
        if (ts.NullCount == 0)
        {
            // No validity checks needed: a straight sum over the span, in long chunks that cannot overflow.
            long chunk = 0;
            for (var i = 0; i < values.Length; i++)
            {
                chunk += values[i];
                if ((i & 1023) == 1023)
                {
                    tsSum += chunk;
                    chunk = 0;
                }
            }
            tsSum += chunk;
        }
        else
        {
            for (var i = 0; i < values.Length; i++)
            {
                if (ts.IsValid(i))
                {
                    tsSum += values[i];
                }
            }
        }
        TsSum += tsSum;
        var revenue = (DoubleArray)batch.Column(7);
        var sum = 0.0;
        var revenueValues = revenue.Values;
        if (revenue.NullCount == 0)
        {
            foreach (var value in revenueValues)
            {
                sum += value;
            }
        }
        else
        {
            for (var i = 0; i < revenueValues.Length; i++)
            {
                if (revenue.IsValid(i))
                {
                    sum += revenueValues[i];
                }
            }
        }
        Revenue += sum;
        NonNull[7] += revenue.Length - revenue.NullCount;
    }

    // A dictionary column: each row's length is its entry's length; lengths are looked up per index, strings never built.
    private static long DictionaryBytes(DictionaryArray array)
    {
        var dictionary = (StringArray)array.Dictionary;
        var offsets = dictionary.ValueOffsets;
        var indices = ((Int32Array)array.Indices).Values;
        long total = 0;
        if (array.NullCount == 0)
        {
            foreach (var entry in indices)
            {
                total += offsets[entry + 1] - offsets[entry];
            }
            return total;
        }
        for (var i = 0; i < indices.Length; i++)
        {
            if (array.IsValid(i))
            {
                var entry = indices[i];
                total += offsets[entry + 1] - offsets[entry];
            }
        }
        return total;
    }

    public void Merge(EventChecksums other)
    {
        Rows += other.Rows;
        for (var c = 0; c < Columns.Length; c++)
        {
            Bytes[c] += other.Bytes[c];
            NonNull[c] += other.NonNull[c];
        }
        TsSum += other.TsSum;
        Revenue += other.Revenue;
    }

    /// <summary>The DuckDB query computing the same figures over <paramref name="glob"/>.</summary>
    public static string DuckDbQuery(string glob) => $"""
        SELECT count(*),
               sum(strlen(event_id))::BIGINT, count(event_id),
               sum(strlen(type))::BIGINT, count(type),
               sum(strlen(anonymous_id))::BIGINT, count(anonymous_id),
               sum(strlen(user_id))::BIGINT, count(user_id),
               sum(strlen(email))::BIGINT, count(email),
               sum(strlen(product_id))::BIGINT, count(product_id),
               sum(epoch_us(ts)::HUGEINT)::VARCHAR, sum(revenue), count(revenue)
        FROM read_parquet('{glob}')
        """;

    public static EventChecksums FromDuckDb(DuckDBDataReader reader)
    {
        var result = new EventChecksums { Rows = reader.GetInt64(0) };
        var field = 1;
        foreach (var c in StringColumns)
        {
            result.Bytes[c] = reader.IsDBNull(field) ? 0 : reader.GetInt64(field);
            result.NonNull[c] = reader.GetInt64(field + 1);
            field += 2;
        }
        result.TsSum = Int128.Parse(reader.GetString(field), CultureInfo.InvariantCulture);
        result.Revenue = reader.IsDBNull(field + 1) ? 0 : reader.GetDouble(field + 1);
        result.NonNull[7] = reader.GetInt64(field + 2);
        return result;
    }

    public bool Equals(EventChecksums? other)
        => other is not null && Rows == other.Rows && Bytes.AsSpan().SequenceEqual(other.Bytes) && NonNull.AsSpan().SequenceEqual(other.NonNull)
            && TsSum == other.TsSum && Math.Abs(Revenue - other.Revenue) <= 1e-6 * Math.Max(1, Math.Abs(Revenue));

    public override bool Equals(object? obj) => Equals(obj as EventChecksums);

    public override int GetHashCode() => HashCode.Combine(Rows, TsSum);

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"rows={Rows} bytes=[{string.Join(',', Bytes)}] nonnull=[{string.Join(',', NonNull)}] ts_sum={TsSum} revenue={Revenue:F2}");
}
