using System.Globalization;
using Apache.Arrow;
using Apache.Arrow.Types;

namespace Engine.Storage;

/// <summary>
/// Hive-style partition columns: a declared column that is a partition key in a file's path
/// (<c>events/country=DE/part-0.parquet</c>) is taken from the path, typed like any declared column, as Hive, Spark
/// and DuckDB's <c>hive_partitioning</c> do. The value <c>__HIVE_DEFAULT_PARTITION__</c> is NULL.
/// </summary>
internal sealed class PartitionColumns
{
    /// <summary>The value Hive and Spark write for a NULL partition key.</summary>
    public const string NullValue = "__HIVE_DEFAULT_PARTITION__";

    private readonly IReadOnlyList<ColumnSpec> _declared;
    private readonly int[] _storedPositions;
    private readonly (int Position, ColumnSpec Spec, object? Value)[] _fromPath;

    private PartitionColumns(IReadOnlyList<ColumnSpec> declared, ColumnSpec[] stored, int[] storedPositions, (int, ColumnSpec, object?)[] fromPath)
    {
        _declared = declared;
        Stored = stored;
        _storedPositions = storedPositions;
        _fromPath = fromPath;
    }

    /// <summary>The declared columns read from the file itself, in declared order.</summary>
    public ColumnSpec[] Stored { get; }

    /// <summary>Whether any declared column comes from this file's path.</summary>
    public bool Any => _fromPath.Length > 0;

    /// <summary>The declared position of each of <see cref="Stored"/>.</summary>
    public IReadOnlyList<int> StoredPositions => _storedPositions;

    /// <summary>The declared columns taken from the path: position, column and value (null for Hive's NULL).</summary>
    public IReadOnlyList<(int Position, ColumnSpec Spec, object? Value)> FromPath => _fromPath;

    /// <summary>Splits <paramref name="declared"/> for one file; partition values are parsed once, here.</summary>
    public static PartitionColumns For(DataFile file, IReadOnlyList<ColumnSpec> declared, string location)
    {
        var stored = new List<ColumnSpec>(declared.Count);
        var storedPositions = new List<int>(declared.Count);
        var fromPath = new List<(int, ColumnSpec, object?)>();
        for (var i = 0; i < declared.Count; i++)
        {
            var spec = declared[i];
            var partition = file.Partitions.FirstOrDefault(p => p.Key == spec.Name);
            if (partition.Key is null)
            {
                stored.Add(spec);
                storedPositions.Add(i);
                continue;
            }
            var value = partition.Value == NullValue ? null : Parse(spec, partition.Value, location);
            if (value is null && spec.Required)
            {
                throw new DataException(location, $"required column '{spec.Name}' is null in the partition path ({spec.Name}={partition.Value})");
            }
            fromPath.Add((i, spec, value));
        }
        return new PartitionColumns(declared, [.. stored], [.. storedPositions], [.. fromPath]);
    }

    private static object Parse(ColumnSpec spec, string text, string location)
    {
        object? value = spec.Type switch
        {
            ColumnType.String => text,
            ColumnType.Int64 => long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var l) ? l : null,
            ColumnType.Double => double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d : null,
            ColumnType.Boolean => bool.TryParse(text, out var b) ? b : null,
            ColumnType.Date => DateOnly.TryParseExact(text, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var date) ? date : null,
            ColumnType.Timestamp => DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var ts) ? ts : null,
            _ => null,
        };
        return value ?? throw new DataException(location, $"partition '{spec.Name}={text}' is not a valid {DataSchema.Describe(spec.Type)}");
    }

    /// <summary>
    /// The batch with every declared column in declared order: the file's columns as read, the partition columns as
    /// constants. The result owns <paramref name="stored"/>'s arrays; dispose only the result.
    /// </summary>
    public RecordBatch Compose(RecordBatch stored)
    {
        var length = stored.Length;
        var arrays = new IArrowArray[_declared.Count];
        for (var i = 0; i < _storedPositions.Length; i++)
        {
            arrays[_storedPositions[i]] = stored.Column(i);
        }
        foreach (var (position, spec, value) in _fromPath)
        {
            arrays[position] = Constant(spec.Type, value, length);
        }
        var fields = new Field[arrays.Length];
        for (var i = 0; i < arrays.Length; i++)
        {
            // Keep the stored type (a dictionary, a narrower integer) for file columns; the canonical type for path ones.
            fields[i] = new Field(_declared[i].Name, arrays[i].Data.DataType, nullable: true);
        }
        return new RecordBatch(new Schema(fields, null), arrays, length);
    }

    private static IArrowArray Constant(ColumnType type, object? value, int length)
    {
        switch (type)
        {
            case ColumnType.String:
            {
                var builder = new StringArray.Builder();
                for (var i = 0; i < length; i++)
                {
                    if (value is string s) builder.Append(s); else builder.AppendNull();
                }
                return builder.Build();
            }
            case ColumnType.Int64:
            {
                var builder = new Int64Array.Builder();
                for (var i = 0; i < length; i++)
                {
                    if (value is long l) builder.Append(l); else builder.AppendNull();
                }
                return builder.Build();
            }
            case ColumnType.Double:
            {
                var builder = new DoubleArray.Builder();
                for (var i = 0; i < length; i++)
                {
                    if (value is double d) builder.Append(d); else builder.AppendNull();
                }
                return builder.Build();
            }
            case ColumnType.Boolean:
            {
                var builder = new BooleanArray.Builder();
                for (var i = 0; i < length; i++)
                {
                    if (value is bool b) builder.Append(b); else builder.AppendNull();
                }
                return builder.Build();
            }
            case ColumnType.Date:
            {
                var builder = new Date32Array.Builder();
                for (var i = 0; i < length; i++)
                {
                    if (value is DateOnly date) builder.Append(date); else builder.AppendNull();
                }
                return builder.Build();
            }
            case ColumnType.Timestamp:
            {
                var builder = new TimestampArray.Builder(new TimestampType(TimeUnit.Microsecond, "UTC"));
                for (var i = 0; i < length; i++)
                {
                    if (value is DateTimeOffset ts) builder.Append(ts); else builder.AppendNull();
                }
                return builder.Build();
            }
            default:
                throw new ArgumentOutOfRangeException(nameof(type), type, null);
        }
    }
}
