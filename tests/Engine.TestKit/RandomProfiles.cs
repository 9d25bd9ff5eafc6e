using System.Globalization;
using Apache.Arrow;
using Apache.Arrow.Types;
using Engine.Profiles;
using Engine.Storage;

namespace Engine.TestKit;

/// <summary>
/// A random profile table for segment tests and benchmarks, written as a <c>profiles/</c> Parquet dataset (so that
/// DuckDB reads the very bytes the engine reads) and read back with <see cref="ProfileTable.ReadAsync"/>. NULLs in
/// every column.
/// </summary>
public static class RandomProfiles
{
    /// <summary>The run's as-of time in these tests; <c>now()</c> means it.</summary>
    public static readonly DateTimeOffset AsOf = new(2026, 6, 1, 12, 0, 0, TimeSpan.Zero);

    public static readonly string[] Tiers = ["gold", "silver", "bronze", "Gold", "platinum"];
    public static readonly string[] Countries = ["DE", "FR", "GB", "US", "ES", "IT", "NL", "PL", "SE", "Österreich"];

    public static readonly Schema Schema = new Schema.Builder()
        .Field(new Field(ProfileTable.ProfileIdColumn, Int64Type.Default, nullable: false))
        .Field(new Field("ltv", DoubleType.Default, nullable: true))
        .Field(new Field("orders", Int64Type.Default, nullable: true))
        .Field(new Field("opens", Int64Type.Default, nullable: true))
        .Field(new Field("tier", StringType.Default, nullable: true))
        .Field(new Field("country", StringType.Default, nullable: true))
        .Field(new Field("email", StringType.Default, nullable: true))
        .Field(new Field("created_at", new TimestampType(TimeUnit.Microsecond, "UTC"), nullable: true))
        .Field(new Field("birthday", Date32Type.Default, nullable: true))
        .Field(new Field("subscribed", BooleanType.Default, nullable: true))
        .Field(new Field("churn_score", DoubleType.Default, nullable: true))
        .Build();

    public static async Task<ProfileTable> WriteAsync(string directory, int rows, int seed)
    {
        var location = new StorageLocation(new LocalObjectStore(directory), "profiles");
        using (var batch = Build(rows, seed))
        {
            // Small row groups: the engine then concatenates many chunks, as it would on a large table.
            await TestTables.WriteDatasetAsync(location, batch, new ParquetWriteOptions { RowGroupRows = Math.Max(1000, rows / 16) });
        }
        return await ProfileTable.ReadAsync(location);
    }

    /// <summary>The rows, in memory.</summary>
    public static RecordBatch Build(int rows, int seed)
    {
        var random = new Random(seed);
        var ids = new Int64Array.Builder();
        var ltv = new DoubleArray.Builder();
        var orders = new Int64Array.Builder();
        var opens = new Int64Array.Builder();
        var tier = new StringArray.Builder();
        var country = new StringArray.Builder();
        var email = new StringArray.Builder();
        var created = new TimestampArray.Builder(new TimestampType(TimeUnit.Microsecond, "UTC"));
        var birthday = new Date32Array.Builder();
        var subscribed = new BooleanArray.Builder();
        var churn = new DoubleArray.Builder();
        bool Null(int percent) => random.Next(100) < percent;
        long id = 0;
        for (var i = 0; i < rows; i++)
        {
            id += 1 + random.Next(3);
            ids.Append(id);
            if (Null(20)) { ltv.AppendNull(); } else { ltv.Append(Math.Round(random.NextDouble() * 2000 - 100, random.Next(3))); }
            if (Null(15)) { orders.AppendNull(); } else { orders.Append(random.Next(-2, 15)); }
            if (Null(10)) { opens.AppendNull(); } else { opens.Append(random.Next(0, 6)); }
            if (Null(25)) { tier.AppendNull(); } else { tier.Append(Tiers[random.Next(Tiers.Length)]); }
            if (Null(10)) { country.AppendNull(); } else { country.Append(Countries[random.Next(Countries.Length)]); }
            if (Null(30)) { email.AppendNull(); } else { email.Append($"{(char)('a' + random.Next(5))}{random.Next(100)}@{(random.Next(2) == 0 ? "example.com" : "mail.de")}"); }
            if (Null(10)) { created.AppendNull(); } else { created.Append(AsOf.AddDays(-random.Next(0, 800)).AddMinutes(-random.Next(0, 1440))); }
            if (Null(40)) { birthday.AppendNull(); } else { birthday.Append(new DateTime(1950, 1, 1).AddDays(random.Next(0, 20000))); }
            if (Null(20)) { subscribed.AppendNull(); } else { subscribed.Append(random.Next(2) == 0); }
            if (Null(35)) { churn.AppendNull(); } else { churn.Append(random.Next(0, 101) / 100.0); }
        }
        return new RecordBatch(Schema,
        [
            ids.Build(), ltv.Build(), orders.Build(), opens.Build(), tier.Build(), country.Build(), email.Build(),
            created.Build(), birthday.Build(), subscribed.Build(), churn.Build(),
        ], rows);
    }

    /// <summary>A condition as DuckDB must read it: <c>now()</c> and <c>current_date</c> replaced by the as-of time.</summary>
    public static string ForDuckDb(string condition)
    {
        var asOf = $"TIMESTAMP '{AsOf.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)}'";
        return condition
            .Replace("now()", asOf, StringComparison.Ordinal)
            .Replace("current_date", $"CAST({asOf} AS DATE)", StringComparison.Ordinal);
    }

    /// <summary>The profile ids DuckDB selects with <paramref name="condition"/> over the dataset.</summary>
    public static List<long> DuckDbMembers(string directory, string condition)
    {
        var glob = Path.Combine(directory, "profiles", "*.parquet").Replace("'", "''", StringComparison.Ordinal);
        var sql = ForDuckDb(condition);
        return [.. DuckDb.Rows($"SELECT profile_id FROM read_parquet('{glob}') WHERE {sql} ORDER BY profile_id").Select(r => Convert.ToInt64(r[0], CultureInfo.InvariantCulture))];
    }

    public static List<long> Members(ProfileTable table, ulong[] bits)
    {
        var result = new List<long>();
        var ids = table.ProfileIds.Values;
        for (var row = 0; row < table.Count; row++)
        {
            if ((bits[row >> 6] & (1UL << row)) != 0)
            {
                result.Add(ids[row]);
            }
        }
        return result;
    }
}
