using System.Globalization;
using DuckDB.NET.Data;

namespace Engine.TestKit;

/// <summary>DuckDB as the tests' peer reader: an in-memory database and the few ways tests ask it things.</summary>
public static class DuckDb
{
    /// <summary>A new in-memory database, open.</summary>
    public static DuckDBConnection Open()
    {
        var connection = new DuckDBConnection("Data Source=:memory:");
        connection.Open();
        return connection;
    }

    public static void Execute(DuckDBConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    /// <summary>A query's single value as a number (0 for NULL; HUGEINT sums included).</summary>
    public static double Double(DuckDBConnection connection, string sql) => Scalar(connection, sql) switch
    {
        null => 0,
        System.Numerics.BigInteger big => (double)big,
        var value => Convert.ToDouble(value, CultureInfo.InvariantCulture),
    };

    /// <summary>A query's single value as an integer (0 for NULL).</summary>
    public static long Long(DuckDBConnection connection, string sql) => Scalar(connection, sql) switch
    {
        null => 0,
        System.Numerics.BigInteger big => (long)big,
        var value => Convert.ToInt64(value, CultureInfo.InvariantCulture),
    };

    /// <summary>A query's first column, in the query's order, as text (NULL as null).</summary>
    public static List<string?> Strings(DuckDBConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        using var reader = command.ExecuteReader();
        var values = new List<string?>();
        while (reader.Read())
        {
            values.Add(reader.IsDBNull(0) ? null : Convert.ToString(reader.GetValue(0), CultureInfo.InvariantCulture));
        }
        return values;
    }

    /// <summary>A query's rows, each as an array of values (NULL as null), run on a fresh in-memory database.</summary>
    public static List<object?[]> Rows(string sql)
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        using var reader = command.ExecuteReader();
        var rows = new List<object?[]>();
        while (reader.Read())
        {
            var values = new object?[reader.FieldCount];
            reader.GetValues(values!);
            for (var i = 0; i < values.Length; i++)
            {
                values[i] = values[i] is DBNull ? null : values[i];
            }
            rows.Add(values);
        }
        return rows;
    }

    private static object? Scalar(DuckDBConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        var value = command.ExecuteScalar();
        return value is DBNull ? null : value;
    }
}
