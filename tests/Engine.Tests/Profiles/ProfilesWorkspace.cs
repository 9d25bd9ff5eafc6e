using Apache.Arrow;
using Engine.Profiles;
using Engine.Runs;
using Engine.Storage;
using Engine.TestKit;
using Engine.Workspaces;
using Microsoft.Extensions.Logging.Abstractions;

namespace Engine.Tests.Profiles;

/// <summary>
/// A small hand-written workspace for the profiles stage: a CSV CRM (<c>crm/</c>: customer_id, email, tier, country,
/// score, updated_at) and CSV events (<c>events/</c>: ts, type, anonymous_id, user_id, email, revenue, quantity,
/// product_id), with identity rules that keep one customer id per profile and treat an anonymous id seen with two
/// customers as shared. Each test writes its own rows and <c>profiles.yaml</c>.
/// </summary>
internal sealed class ProfilesWorkspace : IDisposable
{
    public static readonly DateTimeOffset AsOf = new(2026, 11, 1, 0, 0, 0, TimeSpan.Zero);

    private readonly TempDirectory _dir = new("profiles-stage");

    public ProfilesWorkspace()
    {
        Write("workspace.yaml", "name: hand\nversion: 1\noutput: output\n");
        Write("identity.yaml", """
            identifier_types:
              customer_id: { normalizer: id, limit: 1 }
              email: { normalizer: email, limit: 5 }
              anonymous_id: { normalizer: id, shared_after: 1 }
            """);
        Write("sources/crm.yaml", """
            name: crm
            location: data/crm
            format: csv
            timestamp: updated_at
            columns:
              customer_id: string
              email: string
              tier: string
              country: string
              score: int64
              updated_at: timestamp
            identifiers:
              customer_id: customer_id
              email: email
            """);
        Write("sources/events.yaml", """
            name: events
            location: data/events
            format: csv
            timestamp: ts
            columns:
              ts: timestamp
              type: string
              anonymous_id: string
              user_id: string
              email: string
              revenue: double
              quantity: int64
              product_id: string
            identifiers:
              user_id: customer_id
              email: email
              anonymous_id: anonymous_id
            """);
    }

    public string Path => _dir.Path;

    public void Write(string relative, string content)
    {
        var path = _dir.Combine(relative.Split('/'));
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        File.WriteAllText(path, content);
    }

    /// <summary>Adds a CRM file: rows of customer_id, email, tier, country, score, updated_at.</summary>
    public void Crm(string file, params string[] rows) => Write($"data/crm/{file}.csv", "customer_id,email,tier,country,score,updated_at\n" + string.Join("\n", rows) + "\n");

    /// <summary>Adds an events file: rows of ts, type, anonymous_id, user_id, email, revenue, quantity, product_id.</summary>
    public void Events(string file, params string[] rows) => Write($"data/events/{file}.csv", "ts,type,anonymous_id,user_id,email,revenue,quantity,product_id\n" + string.Join("\n", rows) + "\n");

    public async Task<RunResult> RunAsync(string runId = "r1", int parallelism = 4)
    {
        using var storage = new StorageResolver();
        var workspace = WorkspaceLoader.Load(Path);
        return await new RunExecutor(storage, NullLogger.Instance).ExecuteAsync(workspace, new RunOptions
        {
            RunId = runId,
            AsOf = AsOf,
            Parallelism = parallelism,
        }, cancellationToken: TestContext.Current.CancellationToken);
    }

    public string RunDirectory(string runId) => System.IO.Path.Combine(Path, "output", "runs", runId);

    /// <summary>The profile id the run's identity output gives an identifier (canonical value), or null.</summary>
    public long? ProfileOf(string runId, string type, string value)
    {
        var rows = DuckDb.Rows($"""
            SELECT profile_id FROM read_parquet('{System.IO.Path.Combine(RunDirectory(runId), "identity", "*.parquet")}')
            WHERE identifier_type = '{type}' AND identifier_value = '{value}'
            """);
        return rows.Count == 0 ? null : rows[0][0] is { } id ? Convert.ToInt64(id, System.Globalization.CultureInfo.InvariantCulture) : null;
    }

    public void Dispose() => _dir.Dispose();
}

/// <summary>Reads single values out of a <see cref="ProfileTable"/> as plain .NET values (null for NULL).</summary>
internal static class ProfileValues
{
    public static object? Get(ProfileTable table, string column, long profileId)
    {
        var row = table.RowOf(profileId);
        Assert.True(row >= 0, $"profile {profileId} is not in the table");
        var values = (table.Find(column) ?? throw new Xunit.Sdk.XunitException($"no column '{column}'")).Values;
        if (values.IsNull(row))
        {
            return null;
        }
        return values switch
        {
            Int64Array a => a.GetValue(row),
            DoubleArray a => a.GetValue(row),
            BooleanArray a => a.GetValue(row),
            TimestampArray a => a.GetTimestamp(row),
            Date32Array a => a.GetDateOnly(row),
            DictionaryArray { Indices: Int32Array indices, Dictionary: StringArray entries } => entries.GetString(indices.GetValue(row)!.Value),
            _ => throw new Xunit.Sdk.XunitException($"unexpected array {values.GetType().Name}"),
        };
    }
}
