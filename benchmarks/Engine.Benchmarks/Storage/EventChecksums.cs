using System.Globalization;
using Apache.Arrow;
using DuckDB.NET.Data;
using Engine.Storage;

namespace Engine.Benchmarks.Storage;

/// <summary>
/// What both readers compute over the events' contract columns, so that each must decode every value and the
/// answers can be compared: rows, then per string column its value bytes and non-null count, the latest ts and the
/// revenue total. Light work on both sides; reading dominates.
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
    public long MaxTs = long.MinValue;
    public double Revenue;

    /// <summary>Adds one batch (columns in <see cref="Columns"/> order). Spans over Arrow buffers; no per-row work but the sums.</summary>
    public void Add(RecordBatch batch)
    {
        Rows += batch.Length;
        foreach (var c in StringColumns)
        {
            var array = (StringArray)batch.Column(c);
            var offsets = array.ValueOffsets;
            Bytes[c] += offsets[array.Length] - offsets[0];
            NonNull[c] += array.Length - array.NullCount;
        }
        var ts = (TimestampArray)batch.Column(1);
        var values = ts.Values;
        var max = MaxTs;
        for (var i = 0; i < values.Length; i++)
        {
            if (values[i] > max && ts.IsValid(i))
            {
                max = values[i];
            }
        }
        MaxTs = max;
        var revenue = (DoubleArray)batch.Column(7);
        var sum = 0.0;
        var revenueValues = revenue.Values;
        for (var i = 0; i < revenueValues.Length; i++)
        {
            if (revenue.IsValid(i))
            {
                sum += revenueValues[i];
            }
        }
        Revenue += sum;
        NonNull[7] += revenue.Length - revenue.NullCount;
    }

    public void Merge(EventChecksums other)
    {
        Rows += other.Rows;
        for (var c = 0; c < Columns.Length; c++)
        {
            Bytes[c] += other.Bytes[c];
            NonNull[c] += other.NonNull[c];
        }
        MaxTs = Math.Max(MaxTs, other.MaxTs);
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
               epoch_us(max(ts)), sum(revenue), count(revenue)
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
        result.MaxTs = reader.GetInt64(field);
        result.Revenue = reader.IsDBNull(field + 1) ? 0 : reader.GetDouble(field + 1);
        result.NonNull[7] = reader.GetInt64(field + 2);
        return result;
    }

    public bool Equals(EventChecksums? other)
        => other is not null && Rows == other.Rows && Bytes.AsSpan().SequenceEqual(other.Bytes) && NonNull.AsSpan().SequenceEqual(other.NonNull)
            && MaxTs == other.MaxTs && Math.Abs(Revenue - other.Revenue) <= 1e-6 * Math.Max(1, Math.Abs(Revenue));

    public override bool Equals(object? obj) => Equals(obj as EventChecksums);

    public override int GetHashCode() => HashCode.Combine(Rows, MaxTs);

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"rows={Rows} bytes=[{string.Join(',', Bytes)}] nonnull=[{string.Join(',', NonNull)}] max_ts={MaxTs} revenue={Revenue:F2}");
}
