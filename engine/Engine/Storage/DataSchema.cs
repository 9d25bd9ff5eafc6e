using Apache.Arrow;
using Apache.Arrow.Types;

namespace Engine.Storage;

/// <summary>The logical column types a workspace declares for its sources.</summary>
public enum ColumnType
{
    /// <summary>UTF-8 text.</summary>
    String,
    /// <summary>64-bit signed integer (narrower Parquet integers are accepted).</summary>
    Int64,
    /// <summary>64-bit float (32-bit floats are accepted).</summary>
    Double,
    /// <summary>true / false.</summary>
    Boolean,
    /// <summary>An instant, stored as microseconds since the Unix epoch, UTC.</summary>
    Timestamp,
    /// <summary>A calendar date.</summary>
    Date,
}

/// <summary>One declared column.</summary>
/// <param name="Name">The column's name in the file.</param>
/// <param name="Type">Its logical type.</param>
/// <param name="Required">When true, a null or empty value is an error.</param>
public sealed record ColumnSpec(string Name, ColumnType Type, bool Required = false);

/// <summary>The columns a source declares, in order, with helpers to map them to Arrow and check files against them.</summary>
public sealed class DataSchema
{
    private readonly Dictionary<string, int> _byName;

    public DataSchema(IReadOnlyList<ColumnSpec> columns)
    {
        Columns = columns;
        _byName = new Dictionary<string, int>(columns.Count, StringComparer.Ordinal);
        for (var i = 0; i < columns.Count; i++)
        {
            if (!_byName.TryAdd(columns[i].Name, i))
            {
                throw new EngineException($"column '{columns[i].Name}' is declared twice");
            }
        }
    }

    public IReadOnlyList<ColumnSpec> Columns { get; }

    public ColumnSpec? Find(string name) => _byName.TryGetValue(name, out var i) ? Columns[i] : null;

    /// <summary>The Arrow schema that readers of this source produce (timestamps as UTC microseconds).</summary>
    public Schema ToArrow()
    {
        var builder = new Schema.Builder();
        foreach (var column in Columns)
        {
            builder.Field(new Field(column.Name, ToArrow(column.Type), nullable: !column.Required));
        }
        return builder.Build();
    }

    /// <summary>The canonical Arrow type of a logical type.</summary>
    public static IArrowType ToArrow(ColumnType type) => type switch
    {
        ColumnType.String => StringType.Default,
        ColumnType.Int64 => Int64Type.Default,
        ColumnType.Double => DoubleType.Default,
        ColumnType.Boolean => BooleanType.Default,
        ColumnType.Timestamp => new TimestampType(TimeUnit.Microsecond, "UTC"),
        ColumnType.Date => Date32Type.Default,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
    };

    /// <summary>The name used in workspace files and messages.</summary>
    public static string Describe(ColumnType type) => type switch
    {
        ColumnType.String => "string",
        ColumnType.Int64 => "int64",
        ColumnType.Double => "double",
        ColumnType.Boolean => "boolean",
        ColumnType.Timestamp => "timestamp",
        ColumnType.Date => "date",
        _ => type.ToString(),
    };

    /// <summary>Parses a type name from a workspace file; null when unknown.</summary>
    public static ColumnType? ParseType(string name) => name.Trim().ToLowerInvariant() switch
    {
        "string" or "text" or "varchar" => ColumnType.String,
        "int64" or "int" or "integer" or "bigint" or "long" => ColumnType.Int64,
        "double" or "float" or "float64" => ColumnType.Double,
        "boolean" or "bool" => ColumnType.Boolean,
        "timestamp" or "datetime" => ColumnType.Timestamp,
        "date" => ColumnType.Date,
        _ => null,
    };

    /// <summary>The type names <see cref="ParseType"/> accepts, for error messages.</summary>
    public const string KnownTypeNames = "string, int64, double, boolean, timestamp, date";

    /// <summary>Whether a column stored as <paramref name="stored"/> can be read as <paramref name="declared"/> without loss.</summary>
    public static bool IsCompatible(IArrowType stored, ColumnType declared)
    {
        if (stored is DictionaryType dictionary)
        {
            stored = dictionary.ValueType;
        }
        return declared switch
        {
            ColumnType.String => stored.TypeId is ArrowTypeId.String or ArrowTypeId.LargeString or ArrowTypeId.StringView,
            ColumnType.Int64 => stored.TypeId is ArrowTypeId.Int8 or ArrowTypeId.Int16 or ArrowTypeId.Int32 or ArrowTypeId.Int64
                or ArrowTypeId.UInt8 or ArrowTypeId.UInt16 or ArrowTypeId.UInt32,
            ColumnType.Double => stored.TypeId is ArrowTypeId.Float or ArrowTypeId.Double or ArrowTypeId.HalfFloat,
            ColumnType.Boolean => stored.TypeId is ArrowTypeId.Boolean,
            ColumnType.Timestamp => stored.TypeId is ArrowTypeId.Timestamp,
            ColumnType.Date => stored.TypeId is ArrowTypeId.Date32 or ArrowTypeId.Date64,
            _ => false,
        };
    }

    /// <summary>
    /// The logical type of an Arrow type exactly as <see cref="ToArrow(ColumnType)"/> makes it (strings also as a
    /// dictionary), or null for any other: what the engine's own outputs are read back with.
    /// </summary>
    public static ColumnType? FromArrow(IArrowType type) => type switch
    {
        StringType => ColumnType.String,
        DictionaryType { ValueType: StringType } => ColumnType.String,
        Int64Type => ColumnType.Int64,
        DoubleType => ColumnType.Double,
        BooleanType => ColumnType.Boolean,
        TimestampType { Unit: TimeUnit.Microsecond } => ColumnType.Timestamp,
        Date32Type => ColumnType.Date,
        _ => null,
    };

    /// <summary>A short name of a stored Arrow type, for error messages.</summary>
    public static string DescribeArrow(IArrowType type) => type switch
    {
        TimestampType t => $"timestamp[{t.Unit.ToString().ToLowerInvariant()}{(t.Timezone is { Length: > 0 } tz ? ", " + tz : "")}]",
        DictionaryType d => $"dictionary<{DescribeArrow(d.ValueType)}>",
        _ => type.Name,
    };
}
