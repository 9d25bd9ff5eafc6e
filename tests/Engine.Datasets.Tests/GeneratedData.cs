using System.Globalization;
using DuckDB.NET.Data;
using Engine.Datasets;
using Engine.Storage;
using Engine.TestKit;

[assembly: AssemblyFixture(typeof(Engine.Datasets.Tests.GeneratedData))]

namespace Engine.Datasets.Tests;

/// <summary>
/// One generated data set shared by the read-only tests: 5,000 people in blocks of 512 (so several blocks and
/// households at block edges are exercised), queried through DuckDB as a peer reader.
/// </summary>
public sealed class GeneratedData : IAsyncLifetime
{
    public static readonly GeneratorOptions Options = new() { People = 5000, Seed = 20261101, Parallelism = 2, BlockSize = 512 };

    private readonly TempDirectory _directory = new("gen");

    public string Path => _directory.Path;

    public GenerationSummary Summary { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        using var resolver = new StorageResolver();
        Summary = await new SyntheticGenerator(Options).GenerateAsync(resolver.Resolve(_directory.Path));
    }

    public ValueTask DisposeAsync()
    {
        _directory.Dispose();
        return ValueTask.CompletedTask;
    }

    /// <summary>An in-memory DuckDB with views <c>events</c>, <c>profiles</c>, <c>consent</c> and <c>truth</c> over the files.</summary>
    public DuckDBConnection Open() => OpenDuckDb(Path);

    public static DuckDBConnection OpenDuckDb(string path)
    {
        var connection = new DuckDBConnection("Data Source=:memory:");
        connection.Open();
        using (var timeZone = connection.CreateCommand())
        {
            // Day-of-week and date checks are about UTC, whatever the machine's zone.
            timeZone.CommandText = "SET TimeZone = 'UTC'";
            timeZone.ExecuteNonQuery();
        }
        foreach (var name in new[] { GeneratedDatasets.EventsFolder, GeneratedDatasets.ProfilesFolder, GeneratedDatasets.ConsentFolder, GeneratedDatasets.TruthFolder })
        {
            using var command = connection.CreateCommand();
            command.CommandText = $"CREATE VIEW {name} AS SELECT * FROM read_parquet('{path}/{name}/**/*.parquet')";
            command.ExecuteNonQuery();
        }
        return connection;
    }

    public long Scalar(string sql)
    {
        using var connection = Open();
        return Scalar(connection, sql);
    }

    public static long Scalar(DuckDBConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToInt64(command.ExecuteScalar(), CultureInfo.InvariantCulture);
    }

    public double Double(string sql)
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToDouble(command.ExecuteScalar(), CultureInfo.InvariantCulture);
    }

    /// <summary>Rows of a query, each as an array of values (DBNull as null).</summary>
    public List<object?[]> Rows(string sql)
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        using var reader = command.ExecuteReader();
        var rows = new List<object?[]>();
        while (reader.Read())
        {
            var row = new object?[reader.FieldCount];
            for (var i = 0; i < row.Length; i++)
            {
                row[i] = reader.IsDBNull(i) ? null : reader.GetValue(i);
            }
            rows.Add(row);
        }
        return rows;
    }
}
