namespace Engine.Segments;

/// <summary>The SQL types a condition's expressions have (DuckDB's names in messages).</summary>
public enum SqlType
{
    /// <summary>The type of a bare NULL: it takes the type of what it meets.</summary>
    Null,
    Boolean,
    BigInt,
    /// <summary>Exact fixed-point (a literal such as <c>1.5</c>, and arithmetic with it); the node carries the scale.</summary>
    Decimal,
    Double,
    Varchar,
    /// <summary>Microseconds since the Unix epoch, UTC.</summary>
    Timestamp,
    /// <summary>Days since the Unix epoch.</summary>
    Date,
    /// <summary>Months, days and microseconds, as SQL's INTERVAL; only as an operand of + and - with a date or time.</summary>
    Interval,
}

internal static class SqlTypes
{
    public static string Name(SqlType type) => type switch
    {
        SqlType.Null => "NULL",
        SqlType.Boolean => "BOOLEAN",
        SqlType.BigInt => "BIGINT",
        SqlType.Decimal => "DECIMAL",
        SqlType.Double => "DOUBLE",
        SqlType.Varchar => "VARCHAR",
        SqlType.Timestamp => "TIMESTAMP",
        SqlType.Date => "DATE",
        SqlType.Interval => "INTERVAL",
        _ => type.ToString(),
    };

    public static bool IsNumeric(SqlType type) => type is SqlType.BigInt or SqlType.Decimal or SqlType.Double;

    public static bool IsTemporal(SqlType type) => type is SqlType.Timestamp or SqlType.Date;
}
