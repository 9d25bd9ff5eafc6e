using System.Globalization;
using System.Text;
using Apache.Arrow;
using DuckDB.NET.Data;
using Engine.Storage;

namespace Engine.Tests.Storage;

/// <summary>Finds the shared folder (beside the repository) and answers questions about files through DuckDB.</summary>
internal static class SharedData
{
    /// <summary>The checkout this test runs from: the folder holding Engine.sln above the test binaries.</summary>
    public static DirectoryInfo? RepositoryRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "Engine.sln")))
        {
            directory = directory.Parent;
        }
        return directory;
    }

    /// <summary>The real public data sets, or null when the shared folder is not beside this checkout.</summary>
    public static string? RealDatasets()
    {
        var directory = RepositoryRoot();
        if (directory?.Parent is null)
        {
            return null;
        }
        var real = Path.Combine(directory.Parent.FullName, "shared", "datasets", "real");
        return Directory.Exists(real) ? real : null;
    }

    public static string RequireRealDatasets()
    {
        var real = RealDatasets();
        if (real is null)
        {
            Assert.Skip("the shared data sets (../shared/datasets/real beside the repository) are not on this machine");
        }
        return real;
    }

    public static object? DuckScalar(string sql)
    {
        using var connection = new DuckDBConnection("DataSource=:memory:");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        var value = command.ExecuteScalar();
        return value is DBNull ? null : value;
    }

    public static long DuckLong(string sql) => DuckScalar(sql) switch
    {
        System.Numerics.BigInteger big => (long)big,
        var value => Convert.ToInt64(value, CultureInfo.InvariantCulture),
    };

    public static double DuckDouble(string sql) => Convert.ToDouble(DuckScalar(sql), CultureInfo.InvariantCulture);

    /// <summary>DuckDB's reader over <paramref name="path"/>, every column as text (so DuckDB's type sniffing plays no part).</summary>
    public static string ReadCsvAllText(string path) => $"read_csv('{path.Replace("'", "''", StringComparison.Ordinal)}', header=true, all_varchar=true)";
}

/// <summary>Reads a whole CSV file and flattens its batches into per-column lists, for comparisons.</summary>
internal static class CsvRead
{
    public static List<RecordBatch> Batches(IObjectStore store, string key, DataSchema schema, CsvReadOptions? options = null, IReadOnlyList<string>? columns = null)
    {
        using var file = CsvDataFile.Open(store, key, schema, options);
        return [.. file.ReadAll(columns)];
    }

    /// <summary>Column <paramref name="index"/> of every batch as boxed values (null for nulls).</summary>
    public static List<object?> Column(IEnumerable<RecordBatch> batches, int index)
    {
        var values = new List<object?>();
        foreach (var batch in batches)
        {
            var array = batch.Column(index);
            for (var i = 0; i < array.Length; i++)
            {
                values.Add(Value(array, i));
            }
        }
        return values;
    }

    public static object? Value(IArrowArray array, int i)
    {
        if (array.IsNull(i))
        {
            return null;
        }
        return array switch
        {
            StringArray s => s.GetString(i),
            Int64Array l => l.GetValue(i),
            DoubleArray d => d.GetValue(i),
            BooleanArray b => b.GetValue(i),
            TimestampArray t => t.Values[i],
            Date32Array d => d.Values[i],
            _ => throw new NotSupportedException(array.GetType().Name),
        };
    }

    public static void Write(string path, string text, bool bom = false)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text, new UTF8Encoding(encoderShouldEmitUTF8Identifier: bom));
    }
}
