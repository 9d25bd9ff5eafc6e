using Apache.Arrow;
using Apache.Arrow.Types;
using Engine.Profiles;
using Engine.Segments;
using Engine.Storage;
using Engine.TestKit;
using Engine.Workspaces;

namespace Engine.Tests.Segments;

/// <summary>Membership and deltas across runs: first run, no change, entries and exits, window expiry, merges, splits, re-runs.</summary>
public sealed class SegmentsStageTests : IDisposable
{
    private static readonly DateTimeOffset Day1 = new(2026, 3, 1, 0, 0, 0, TimeSpan.Zero);

    private readonly TempDirectory _directory = new("segments-stage");
    private readonly LocalObjectStore _store;

    public SegmentsStageTests() => _store = new LocalObjectStore(_directory.Path);

    public void Dispose() => _directory.Dispose();

    private sealed record Profile(long Id, double? Ltv, string? Tier, DateTimeOffset? LastSeen);

    private static readonly Schema Schema = new Schema.Builder()
        .Field(new Field(ProfileTable.ProfileIdColumn, Int64Type.Default, false))
        .Field(new Field("ltv", DoubleType.Default, true))
        .Field(new Field("tier", StringType.Default, true))
        .Field(new Field("last_seen", new TimestampType(TimeUnit.Microsecond, "UTC"), true))
        .Build();

    private static ProfileTable Table(params Profile[] profiles)
    {
        var ids = new Int64Array.Builder();
        var ltv = new DoubleArray.Builder();
        var tier = new StringArray.Builder();
        var seen = new TimestampArray.Builder(new TimestampType(TimeUnit.Microsecond, "UTC"));
        foreach (var p in profiles.OrderBy(p => p.Id))
        {
            ids.Append(p.Id);
            if (p.Ltv is { } v) { ltv.Append(v); } else { ltv.AppendNull(); }
            if (p.Tier is { } t) { tier.Append(t); } else { tier.AppendNull(); }
            if (p.LastSeen is { } s) { seen.Append(s); } else { seen.AppendNull(); }
        }
        using var batch = new RecordBatch(Schema, [ids.Build(), ltv.Build(), tier.Build(), seen.Build()], profiles.Length);
        return ProfileTable.FromBatches(Schema, [batch], "test");
    }

    private static SegmentDefinition Segment(string name, string condition) =>
        new() { Name = name, File = $"segments/{name}.yaml", Description = name, Condition = condition, ConditionLine = 3, ConditionPositions = TextPositions.At(3, 12) };

    private Workspace Workspace(params SegmentDefinition[] segments) => new(_directory.Path, "test", "output", [], segments);

    private static readonly SegmentDefinition Vip = Segment("vip", "ltv > 100");
    private static readonly SegmentDefinition Gold = Segment("gold", "tier = 'gold'");
    private static readonly SegmentDefinition Recent = Segment("recent", "last_seen >= now() - INTERVAL 7 DAY");

    private StorageLocation Run(string id) => new(_store, $"runs/{id}");

    private Task<SegmentsResult> RunAsync(string runId, string? previous, ProfileTable table, DateTimeOffset asOf, params SegmentDefinition[] segments) =>
        SegmentsStage.RunAsync(Workspace(segments), table, asOf, Run(runId), previous is null ? null : Run(previous), previous);

    private static SegmentDelta Delta(SegmentsResult result, string segment) => result.Deltas.Single(d => d.Segment == segment);

    private async Task<List<(string Segment, long Id, string Change)>> DeltaRowsAsync(string runId)
    {
        var rows = await TestTables.ReadRowsAsync(Run(runId).Child(SegmentsStage.DeltasFolder));
        return [.. rows.Select(r => ((string)r[0]!, (long)r[1]!, (string)r[2]!))];
    }

    [Fact]
    public async Task A_first_run_makes_every_member_entered_and_writes_members_and_deltas()
    {
        var table = Table(new(1, 500, "gold", Day1), new(2, 50, "silver", null), new(3, 150, null, Day1.AddDays(-30)));
        var result = await RunAsync("r1", null, table, Day1, Vip, Gold);
        Assert.Equal([1L, 3], Delta(result, "vip").Entered);
        Assert.Equal([1L], Delta(result, "gold").Entered);
        Assert.All(result.Deltas, d => Assert.Empty(d.Exited));
        var members = await SegmentsStage.ReadMembersAsync(Run("r1").Child(SegmentsStage.MembersFolder), TestContext.Current.CancellationToken);
        Assert.Equal([1L, 3], members["vip"]);
        Assert.Equal([1L], members["gold"]);
        Assert.Equal(
            [("gold", 1L, "entered"), ("vip", 1L, "entered"), ("vip", 3L, "entered")],
            await DeltaRowsAsync("r1"));
        Assert.Equal(3, result.Report.Entered);
    }

    [Fact]
    public async Task No_change_gives_no_deltas_and_changes_give_entries_and_exits()
    {
        var table = Table(new(1, 500, "gold", Day1), new(2, 50, "silver", null));
        await RunAsync("r1", null, table, Day1, Vip, Gold);
        var same = await RunAsync("r2", "r1", table, Day1.AddDays(1), Vip, Gold);
        Assert.All(same.Deltas, d => Assert.True(d.Entered.Length == 0 && d.Exited.Length == 0));
        Assert.Empty(await DeltaRowsAsync("r2"));

        var changed = Table(new(1, 90, "gold", Day1), new(2, 5000, "gold", null));
        var result = await RunAsync("r3", "r2", changed, Day1.AddDays(2), Vip, Gold);
        Assert.Equal([2L], Delta(result, "vip").Entered);
        Assert.Equal([1L], Delta(result, "vip").Exited);
        Assert.Equal([2L], Delta(result, "gold").Entered);
        Assert.Empty(Delta(result, "gold").Exited);
    }

    [Fact]
    public async Task A_time_window_loses_members_when_it_passes_them_without_new_events()
    {
        var table = Table(new(1, 1, null, Day1.AddDays(-2)), new(2, 1, null, Day1.AddDays(-6)), new(3, 1, null, Day1.AddDays(-20)));
        var first = await RunAsync("r1", null, table, Day1, Recent);
        Assert.Equal([1L, 2], Delta(first, "recent").Entered);
        // Three days later, same data: profile 2's last event is now 9 days old.
        var later = await RunAsync("r2", "r1", table, Day1.AddDays(3), Recent);
        Assert.Empty(Delta(later, "recent").Entered);
        Assert.Equal([2L], Delta(later, "recent").Exited);
    }

    [Fact]
    public async Task A_merged_away_profile_exits_under_its_old_id_and_the_survivor_enters_if_it_qualifies()
    {
        await RunAsync("r1", null, Table(new(1, 50, "silver", null), new(2, 500, "gold", null), new(3, 700, "gold", null)), Day1, Vip, Gold);
        // Identity merged profile 2 into 1; the merged profile carries 2's attributes.
        var merged = await RunAsync("r2", "r1", Table(new(1, 550, "gold", null), new(3, 700, "gold", null)), Day1.AddDays(1), Vip, Gold);
        Assert.Equal([1L], Delta(merged, "vip").Entered);
        Assert.Equal([2L], Delta(merged, "vip").Exited);
        Assert.Equal([1L], Delta(merged, "gold").Entered);
        Assert.Equal([2L], Delta(merged, "gold").Exited);
    }

    [Fact]
    public async Task After_a_split_the_part_with_a_new_id_enters_and_the_part_that_keeps_the_id_stays_on_its_merits()
    {
        await RunAsync("r1", null, Table(new Profile(1, 900, "gold", null)), Day1, Vip, Gold);
        // A full rebuild split profile 1: the larger part keeps id 1 (still gold, now under the threshold), the rest is 4.
        var split = await RunAsync("r2", "r1", Table(new(1, 80, "gold", null), new(4, 820, "silver", null)), Day1.AddDays(1), Vip, Gold);
        Assert.Equal([4L], Delta(split, "vip").Entered);
        Assert.Equal([1L], Delta(split, "vip").Exited);
        Assert.Empty(Delta(split, "gold").Entered);
        Assert.Empty(Delta(split, "gold").Exited);
    }

    [Fact]
    public async Task Re_running_a_run_id_gives_identical_deltas()
    {
        await RunAsync("r1", null, Table(new(1, 500, "gold", null), new(2, 50, null, null)), Day1, Vip, Gold);
        var table = Table(new(1, 5, "gold", null), new(2, 5000, null, null), new(7, 101, "gold", null));
        await RunAsync("r2", "r1", table, Day1.AddDays(1), Vip, Gold);
        var first = await DeltaRowsAsync("r2");
        await RunAsync("r2", "r1", table, Day1.AddDays(1), Vip, Gold);
        Assert.Equal(first, await DeltaRowsAsync("r2"));
        Assert.Equal([("gold", 7L, "entered"), ("vip", 2L, "entered"), ("vip", 7L, "entered"), ("vip", 1L, "exited")], first);
    }

    [Fact]
    public async Task A_segment_removed_from_the_workspace_has_all_its_members_exit_and_a_new_one_all_enter()
    {
        var table = Table(new(1, 500, "gold", null), new(2, 150, "silver", null));
        await RunAsync("r1", null, table, Day1, Vip);
        var result = await RunAsync("r2", "r1", table, Day1.AddDays(1), Gold);
        Assert.Equal([1L, 2], Delta(result, "vip").Exited);
        Assert.False(result.Report.Segments.Single(s => s.Name == "vip").Declared);
        Assert.Equal([1L], Delta(result, "gold").Entered);
        var members = await SegmentsStage.ReadMembersAsync(Run("r2").Child(SegmentsStage.MembersFolder), TestContext.Current.CancellationToken);
        Assert.Equal(["gold"], members.Keys);
    }

    [Fact]
    public async Task A_string_column_that_is_null_for_every_profile_follows_sql()
    {
        // Its dictionary is empty: every per-entry table still has an entry for the codes NULL rows carry.
        var table = Table(new(1, 5, null, null), new(2, 6, null, null));
        var result = await RunAsync("r1", null, table, Day1,
            Segment("eq", "tier = 'gold'"), Segment("inlist", "tier IN ('a', NULL)"), Segment("like", "lower(tier) NOT LIKE 'g%'"),
            Segment("len", "length(tier) IS NULL"), Segment("fallback", "coalesce(tier, upper(tier), 'x') = 'x'"), Segment("both", "tier < tier"));
        Assert.Empty(Delta(result, "eq").Entered);
        Assert.Empty(Delta(result, "inlist").Entered);
        Assert.Empty(Delta(result, "like").Entered);
        Assert.Equal([1L, 2], Delta(result, "len").Entered);
        Assert.Equal([1L, 2], Delta(result, "fallback").Entered);
        Assert.Empty(Delta(result, "both").Entered);
    }

    [Fact]
    public async Task A_bad_segment_stops_the_stage_before_anything_is_written()
    {
        var table = Table(new Profile(1, 500, "gold", null));
        await Assert.ThrowsAsync<WorkspaceException>(() => RunAsync("r1", null, table, Day1, Vip, Segment("bad", "ltv > 'gold'")));
        Assert.Empty(await _store.ListAsync("runs/r1", TestContext.Current.CancellationToken));
    }
}
