using System.Globalization;
using DuckDB.NET.Data;
using Engine.Identity;
using Engine.TestKit;

namespace Engine.Tests.Identity;

/// <summary>
/// 50,000 generated people whose events are split by time into the first 99% (<c>events/part-0.parquet</c>) and the
/// newest 1% (<c>new/part-1.parquet</c>, copied into the events folder by a test to make the next night's data).
/// </summary>
public sealed class NightlyData : IAsyncLifetime
{
    private readonly TempDirectory _directory = new("identity-nightly");

    public string Generated => _directory.Combine("generated");

    public string History => _directory.Combine("history.parquet");

    public string NewEvents => _directory.Combine("new.parquet");

    public string Folder(string name) => _directory.Combine(name);

    public async ValueTask InitializeAsync()
    {
        await GeneratedWorkspace.GenerateAsync(Generated, 50_000, seed: 11);
        using var connection = DuckDb.Open();
        DuckDb.Execute(connection, $"CREATE TABLE events AS SELECT * FROM read_parquet('{Generated}/events/**/*.parquet')");
        DuckDb.Execute(connection, "CREATE TABLE cut AS SELECT quantile_disc(ts, 0.99) AS cutoff FROM events");
        DuckDb.Execute(connection, $"COPY (SELECT * FROM events WHERE ts < (SELECT cutoff FROM cut) ORDER BY event_id) TO '{History}' (FORMAT parquet)");
        DuckDb.Execute(connection, $"COPY (SELECT * FROM events WHERE ts >= (SELECT cutoff FROM cut) ORDER BY event_id) TO '{NewEvents}' (FORMAT parquet)");
    }

    public ValueTask DisposeAsync()
    {
        _directory.Dispose();
        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// Stable profile ids across nightly runs on generated data: an incremental night with 1% new events, then a full
/// rebuild, compared run against run through DuckDB.
/// </summary>
public sealed class IdentityStabilityTests(NightlyData data) : IClassFixture<NightlyData>
{
    [Fact]
    public async Task A_night_with_one_percent_new_events_keeps_the_ids_of_unchanged_profiles_and_merges_keep_the_oldest()
    {
        var events = data.Folder("stability-events");
        Directory.CreateDirectory(events);
        File.Copy(data.History, Path.Combine(events, "part-0.parquet"));
        var workspace = new GeneratedWorkspace(data.Folder("stability"), data.Generated, GeneratedWorkspace.InitRules, events);
        var first = (await workspace.RunAsync("night-1", asOf: Day(1))).Manifest.Identity!;
        Assert.Equal(IdentityModes.Full, first.Mode);

        File.Copy(data.NewEvents, Path.Combine(events, "part-1.parquet"));
        var second = (await workspace.RunAsync("night-2", asOf: Day(2))).Manifest.Identity!;
        Assert.Equal(IdentityModes.Incremental, second.Mode);
        Assert.Equal(1, second.FilesRead);

        var incremental = Compare(workspace, "night-1", "night-2");
        TestContext.Current.SendDiagnosticMessage(
            $"night 2 (incremental, {second.RowsRead:N0} new rows, {second.NewIdentifiers:N0} new identifiers): {incremental}; "
            + $"merged {second.ProfilesMerged:N0}, split {second.ProfilesSplit:N0}");
        Assert.True(incremental.Unchanged > 10_000, incremental.ToString());
        Assert.True(incremental.KeptShare >= 0.999, incremental.ToString());
        Assert.Equal(0, incremental.MergesNotKeepingOldest);
        Assert.Equal(0, incremental.MergeRowsNotOlder);
        Assert.True(second.ProfilesMerged > 0, "1% new events should join some profiles");

        // A full rebuild over the same files: the graph is recomputed from scratch, the ids carry over.
        var third = (await workspace.RunAsync("night-3", fullRefresh: true, asOf: Day(3))).Manifest.Identity!;
        Assert.Equal(IdentityModes.Full, third.Mode);
        var full = Compare(workspace, "night-2", "night-3");
        TestContext.Current.SendDiagnosticMessage($"night 3 (full refresh): {full}; merged {third.ProfilesMerged:N0}, split {third.ProfilesSplit:N0}");
        Assert.True(full.KeptShare >= 0.999, full.ToString());
        // A rebuild may also split (a part holding identifiers of an older profile need not be that profile's heir),
        // so here the check is on the merge records: every merged id went to an older one.
        Assert.Equal(0, full.MergeRowsNotOlder);
    }

    [Fact]
    public async Task One_worker_or_several_write_the_same_identity_output_byte_for_byte_in_content_and_order()
    {
        var one = new GeneratedWorkspace(data.Folder("threads-1"), data.Generated, GeneratedWorkspace.InitRules);
        var four = new GeneratedWorkspace(data.Folder("threads-4"), data.Generated, GeneratedWorkspace.InitRules);
        var a = (await one.RunAsync("r", parallelism: 1)).Manifest.Identity!;
        var b = (await four.RunAsync("r", parallelism: 4)).Manifest.Identity!;
        Assert.Equal(a.Identifiers, b.Identifiers);
        Assert.Equal(a.LinksRefused, b.LinksRefused);
        using var connection = DuckDb.Open();
        foreach (var dataset in new[] { "", IdentityStage.LinksFolder, IdentityStage.MergesFolder })
        {
            string Rows(GeneratedWorkspace w) => $"SELECT * FROM read_parquet('{Path.Combine(w.RunDirectory("r"), "identity", dataset, "*.parquet")}', file_row_number = true)";
            Assert.Equal(0L, DuckDb.Long(connection, $"SELECT count(*) FROM (({Rows(one)} EXCEPT ALL {Rows(four)}) UNION ALL ({Rows(four)} EXCEPT ALL {Rows(one)}))"));
        }
    }

    private static DateTimeOffset Day(int day) => new(2026, 11, day, 0, 0, 0, TimeSpan.Zero);

    private sealed record Comparison(long Unchanged, long Kept, long MergedProfiles, long MergesNotKeepingOldest, long MergeRowsNotOlder)
    {
        public double KeptShare => Unchanged == 0 ? 1 : (double)Kept / Unchanged;

        public override string ToString() =>
            $"{Kept:N0} of {Unchanged:N0} profiles with unchanged membership kept their id ({KeptShare:P3}); {MergedProfiles:N0} profiles joined earlier ones, "
            + $"{MergesNotKeepingOldest} of them not under the oldest id; {MergeRowsNotOlder} merge rows not pointing at an older id";
    }

    /// <summary>Profiles of <paramref name="before"/> and <paramref name="after"/> matched through their identifiers.</summary>
    private static Comparison Compare(GeneratedWorkspace workspace, string before, string after)
    {
        using var connection = DuckDb.Open();
        DuckDb.Execute(connection, $"""
            CREATE TABLE j AS
            SELECT a.profile_id p1, b.profile_id p2
            FROM (SELECT * FROM read_parquet('{workspace.IdentityGlob(before)}') WHERE profile_id IS NOT NULL) a
            FULL JOIN (SELECT * FROM read_parquet('{workspace.IdentityGlob(after)}') WHERE profile_id IS NOT NULL) b
            USING (identifier_type, identifier_value)
            """);
        // A profile's membership is unchanged when all its identifiers went to one later profile that holds nothing else.
        DuckDb.Execute(connection, """
            CREATE TABLE per1 AS SELECT p1, count(*) n, count(DISTINCT p2) d2, count(p2) n2, min(p2) p2 FROM j WHERE p1 IS NOT NULL GROUP BY p1;
            CREATE TABLE per2 AS SELECT p2, count(*) n, count(DISTINCT p1) d1, count(p1) n1, min(p1) oldest FROM j WHERE p2 IS NOT NULL GROUP BY p2;
            """);
        long Count(string sql) => DuckDb.Long(connection, sql);
        var unchanged = Count("SELECT count(*) FROM per1 JOIN per2 USING (p2) WHERE d2 = 1 AND n2 = per1.n AND d1 = 1 AND n1 = per2.n AND per1.n = per2.n");
        var kept = Count("SELECT count(*) FROM per1 JOIN per2 USING (p2) WHERE d2 = 1 AND n2 = per1.n AND d1 = 1 AND n1 = per2.n AND per1.n = per2.n AND per1.p1 = per2.p2");
        var merged = Count("SELECT count(*) FROM per2 WHERE d1 > 1");
        var notOldest = Count("SELECT count(*) FROM per2 WHERE d1 > 1 AND p2 <> oldest");
        var mergesPath = Path.Combine(workspace.RunDirectory(after), "identity", IdentityStage.MergesFolder, "*.parquet");
        var notOlder = Count($"SELECT count(*) FROM read_parquet('{mergesPath}') WHERE change = 'merged' AND new_profile_id >= old_profile_id");
        return new Comparison(unchanged, kept, merged, notOldest, notOlder);
    }
}
