using Engine.Profiles;
using Engine.Runs;
using Engine.Storage;

namespace Engine.Tests.Profiles;

/// <summary>
/// The profiles stage on a hand-made workspace where every expected value is worked out in the comments: attribute
/// survivorship, each trait function with its filter and window, the as-of cut, rows without a profile, and that one
/// worker or several give the same table.
/// </summary>
public sealed class ProfilesStageTests
{
    private const string Traits = """
        attributes:
          - source: crm
            columns: [tier, country, score]
        traits:
          - { name: orders, source: events, function: count, filter: { type: order_completed } }
          - { name: orders_90d, source: events, function: count, filter: { type: order_completed }, window: { last_days: 90 } }
          - { name: orders_prev_quarter, source: events, function: count, filter: { type: order_completed }, window: { from_days_ago: 180, to_days_ago: 90 } }
          - name: paid_orders
            source: events
            function: count
            filter:
              type: [order_completed]
              where: [{ column: revenue, op: '>', value: 0 }]
          - { name: big_orders, source: events, function: count, filter: { where: [{ column: revenue, op: '>=', value: 50 }, { column: type, op: in, value: [order_completed] }] } }
          - { name: revenue_total, source: events, function: sum, column: revenue, filter: { type: order_completed } }
          - { name: quantity_total, source: events, function: sum, column: quantity, filter: { type: order_completed } }
          - { name: avg_order, source: events, function: avg, column: revenue, filter: { type: order_completed } }
          - { name: min_order, source: events, function: min, column: revenue, filter: { type: order_completed } }
          - { name: max_order, source: events, function: max, column: revenue, filter: { type: order_completed } }
          - { name: first_product, source: events, function: first, column: product_id, filter: { type: order_completed } }
          - { name: last_product, source: events, function: last, column: product_id, filter: { type: order_completed } }
          - { name: first_revenue, source: events, function: first, column: revenue, filter: { type: order_completed } }
          - { name: last_revenue, source: events, function: last, column: revenue, filter: { type: order_completed } }
          - { name: products, source: events, function: distinct_count, column: product_id }
          - { name: days_since_seen, source: events, function: recency_days }
          - { name: first_seen_at, source: events, function: first_seen }
          - { name: last_seen_at, source: events, function: last_seen }
          - { name: views_7d, source: events, function: count, filter: { type: product_view }, window: { last_days: 7 } }
          - { name: with_product, source: events, function: count, column: product_id }
        """;

    /// <summary>
    /// c1/ann is profile P1, c2/bob P2, c3/carl P3; a9 (an anonymous id seen alone) P4; shared1 (seen with c1 and c2)
    /// is shared. As of 2026-11-01: 90 days back is 2026-08-03, 180 days back 2026-05-05, 7 days back 2026-10-25.
    /// </summary>
    internal static ProfilesWorkspace Sample()
    {
        var workspace = new ProfilesWorkspace();
        workspace.Write("profiles.yaml", Traits);
        workspace.Crm("a",
            "c1,ann@x.com,silver,GB,10,2026-09-01T00:00:00Z",
            "c1,ann@x.com,gold,,20,2026-10-01T00:00:00Z",        // newest before as-of; country NULL here, so GB survives
            "c1,ANN@x.com,platinum,US,30,2026-12-01T00:00:00Z",  // after as-of: does not exist yet
            "c2,bob@y.com,bronze,DE,5,2026-10-05T00:00:00Z",
            "c2,bob@y.com,silver,FR,7,2026-10-05T00:00:00Z",     // same update time: the larger value wins (silver, FR, 7)
            "c3,carl@z.com,zinc,,,",                             // no update time: older than any dated row
            "c3,,alpha,SE,1,2026-01-01T00:00:00Z");
        workspace.Events("a",
            // P1
            "2026-10-25T10:00:00Z,order_completed,a1,c1,,100.5,2,p1",
            "2026-10-25T10:00:00Z,order_completed,a1,c1,,50.25,1,p2",  // same instant as the row above
            "2026-07-01T00:00:00Z,order_completed,a1,,ann@x.com,20,1,p1",
            "2026-10-31T23:59:59Z,product_view,a1,,,,,p3",
            "2026-11-01T00:00:00Z,order_completed,a1,c1,,999,1,p9",    // at as-of: excluded (ts < as_of)
            "2026-11-05T00:00:00Z,order_completed,a1,c1,,1000,1,p9",   // after as-of
            "2026-10-01T00:00:00Z,order_completed,,c1,,0,1,p1",
            "2026-08-03T00:00:00Z,order_completed,,c1,,5,1,p4",        // exactly 90 days back: in last_days 90, not in 180..90
            "2026-10-10T00:00:00Z,page_view,shared1,c1,,,,");
        workspace.Events("b",
            // P2
            "2026-10-20T00:00:00Z,page_view,b1,c2,,,,",
            "2026-10-21T00:00:00Z,order_completed,b1,,bob@y.com,10,3,p5",
            "2026-10-21T00:00:00Z,order_completed,,c2,,30,1,p6",
            "2026-10-11T00:00:00Z,page_view,shared1,c2,,,,",
            "2026-10-15T00:00:00Z,email_open,,c2,ann@x.com,,,",        // c2 outranks ann's email: P2, not P1
            // P4
            "2026-10-30T00:00:00Z,page_view,a9,,,,,",
            // no profile: a shared value alone, a blocked placeholder, no identifier at all
            "2026-10-30T00:00:00Z,page_view,shared1,,,,,",
            "2026-10-30T00:00:00Z,page_view,,,test@test.com,,,",
            "2026-10-30T00:00:00Z,page_view,,,,,,");
        return workspace;
    }

    private sealed record Ids(long P1, long P2, long P3, long P4);

    private static Ids IdsOf(ProfilesWorkspace workspace, string runId)
    {
        var p1 = workspace.ProfileOf(runId, "customer_id", "c1")!.Value;
        var p2 = workspace.ProfileOf(runId, "customer_id", "c2")!.Value;
        var p3 = workspace.ProfileOf(runId, "customer_id", "c3")!.Value;
        var p4 = workspace.ProfileOf(runId, "anonymous_id", "a9")!.Value;
        Assert.Equal(p1, workspace.ProfileOf(runId, "email", "ann@x.com"));
        Assert.Null(workspace.ProfileOf(runId, "anonymous_id", "shared1"));
        return new Ids(p1, p2, p3, p4);
    }

    private static DateTimeOffset At(string text) => DateTimeOffset.Parse(text, System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public async Task Survivorship_takes_the_newest_non_null_value_before_as_of_with_ties_to_the_larger_value()
    {
        using var workspace = Sample();
        var result = await workspace.RunAsync();
        var table = result.Profiles!.Table;
        var ids = IdsOf(workspace, "r1");
        Assert.Equal("gold", ProfileValues.Get(table, "tier", ids.P1));
        Assert.Equal("GB", ProfileValues.Get(table, "country", ids.P1));
        Assert.Equal(20L, ProfileValues.Get(table, "score", ids.P1));
        Assert.Equal("silver", ProfileValues.Get(table, "tier", ids.P2));
        Assert.Equal("FR", ProfileValues.Get(table, "country", ids.P2));
        Assert.Equal(7L, ProfileValues.Get(table, "score", ids.P2));
        Assert.Equal("alpha", ProfileValues.Get(table, "tier", ids.P3));
        Assert.Equal("SE", ProfileValues.Get(table, "country", ids.P3));
        Assert.Null(ProfileValues.Get(table, "tier", ids.P4));
        Assert.Null(ProfileValues.Get(table, "score", ids.P4));
    }

    [Fact]
    public async Task Priority_survivorship_prefers_the_first_listed_source_holding_a_value()
    {
        using var workspace = Sample();
        workspace.Write("sources/crm2.yaml", """
            name: crm2
            location: data/crm2
            format: csv
            columns:
              customer_id: string
              tier: string
              changed: timestamp
            identifiers:
              customer_id: customer_id
            """);
        workspace.Write("data/crm2/a.csv", "customer_id,tier,changed\nc1,bronze,2020-01-01T00:00:00Z\nc2,,2026-10-30T00:00:00Z\n");
        workspace.Write("profiles.yaml", """
            survivorship: priority
            attributes:
              - { source: crm2, updated_at: changed, columns: [tier] }
              - { source: crm, columns: [tier, country] }
            """);
        var table = (await workspace.RunAsync()).Profiles!.Table;
        var ids = IdsOf(workspace, "r1");
        Assert.Equal("bronze", ProfileValues.Get(table, "tier", ids.P1)); // crm2 first, however old
        Assert.Equal("GB", ProfileValues.Get(table, "country", ids.P1));
        Assert.Equal("silver", ProfileValues.Get(table, "tier", ids.P2)); // crm2's value is NULL: crm's wins

        // Under recency the newer CRM value wins instead.
        workspace.Write("profiles.yaml", """
            attributes:
              - { source: crm2, updated_at: changed, columns: [tier] }
              - { source: crm, columns: [tier, country] }
            """);
        table = (await workspace.RunAsync("r2")).Profiles!.Table;
        Assert.Equal("gold", ProfileValues.Get(table, "tier", IdsOf(workspace, "r2").P1));
    }

    [Fact]
    public async Task A_row_whose_most_trusted_identifier_has_no_profile_belongs_to_the_next_one()
    {
        using var workspace = Sample();
        // One file read as one batch: every row resolves by customer id (the shortcut holds). The next file: "null" is a
        // blocklisted customer id, so that row belongs to its email's profile; a row with nothing usable is counted.
        workspace.Crm("b",
            "null,ann@x.com,,,99,2026-10-20T00:00:00Z",
            "n/a,,diamond,,,2026-10-20T00:00:00Z");
        var result = await workspace.RunAsync(parallelism: 1);
        var table = result.Profiles!.Table;
        var ids = IdsOf(workspace, "r1");
        Assert.Equal(99L, ProfileValues.Get(table, "score", ids.P1));
        Assert.Equal("gold", ProfileValues.Get(table, "tier", ids.P1));
        Assert.Equal(9, result.Manifest.Profiles!.AttributeRowsRead);
        Assert.Equal(1, result.Manifest.Profiles.AttributeRowsWithoutProfile);
        Assert.DoesNotContain(table.Columns, c => c.Values is Apache.Arrow.DictionaryArray { Dictionary: Apache.Arrow.StringArray entries }
            && Enumerable.Range(0, entries.Length).Any(i => entries.GetString(i) == "diamond"));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    public async Task A_sum_that_overflows_int64_fails_the_run_and_writes_no_profiles(int parallelism)
    {
        using var workspace = Sample();
        workspace.Events("c", "2026-10-01T00:00:00Z,order_completed,,c1,,1,9223372036854775807,p1");
        var error = await Assert.ThrowsAnyAsync<EngineException>(() => workspace.RunAsync(parallelism: parallelism));
        Assert.Contains("trait 'quantity_total'", error.Message, StringComparison.Ordinal);
        Assert.Contains("overflows int64", error.Message, StringComparison.Ordinal);
        if (parallelism == 1)
        {
            Assert.Contains("c.csv", error.Message, StringComparison.Ordinal); // found while reading that file
        }
        var manifest = RunManifest.Parse(File.ReadAllBytes(Path.Combine(workspace.RunDirectory("r1"), RunManifest.FileName)));
        Assert.Equal(RunStatus.Failed, manifest.Status);
        Assert.False(Directory.Exists(Path.Combine(workspace.RunDirectory("r1"), ProfilesStage.Folder)));
    }

    [Fact]
    public async Task Counts_with_filters_and_windows_follow_half_open_bounds_before_as_of()
    {
        using var workspace = Sample();
        var table = (await workspace.RunAsync()).Profiles!.Table;
        var ids = IdsOf(workspace, "r1");
        Assert.Equal(5L, ProfileValues.Get(table, "orders", ids.P1));
        Assert.Equal(4L, ProfileValues.Get(table, "orders_90d", ids.P1));
        Assert.Equal(1L, ProfileValues.Get(table, "orders_prev_quarter", ids.P1));
        Assert.Equal(4L, ProfileValues.Get(table, "paid_orders", ids.P1));
        Assert.Equal(2L, ProfileValues.Get(table, "big_orders", ids.P1));
        Assert.Equal(1L, ProfileValues.Get(table, "views_7d", ids.P1));
        Assert.Equal(6L, ProfileValues.Get(table, "with_product", ids.P1));
        Assert.Equal(2L, ProfileValues.Get(table, "orders", ids.P2));
        Assert.Equal(0L, ProfileValues.Get(table, "big_orders", ids.P2));
        // No matching events: 0, never NULL.
        foreach (var trait in new[] { "orders", "orders_90d", "paid_orders", "views_7d", "products", "with_product" })
        {
            Assert.Equal(0L, ProfileValues.Get(table, trait, ids.P3));
        }
        Assert.Equal(0L, ProfileValues.Get(table, "orders", ids.P4));
    }

    [Fact]
    public async Task Sums_averages_and_extremes_are_null_without_events_and_typed_by_column()
    {
        using var workspace = Sample();
        var table = (await workspace.RunAsync()).Profiles!.Table;
        var ids = IdsOf(workspace, "r1");
        Assert.Equal(175.75, ProfileValues.Get(table, "revenue_total", ids.P1));
        Assert.Equal(6L, ProfileValues.Get(table, "quantity_total", ids.P1)); // int64 column: int64 sum
        Assert.Equal(35.15, (double)ProfileValues.Get(table, "avg_order", ids.P1)!, 12);
        Assert.Equal(0.0, ProfileValues.Get(table, "min_order", ids.P1));
        Assert.Equal(100.5, ProfileValues.Get(table, "max_order", ids.P1));
        Assert.Equal(40.0, ProfileValues.Get(table, "revenue_total", ids.P2));
        Assert.Equal(20.0, ProfileValues.Get(table, "avg_order", ids.P2));
        Assert.Equal(4L, ProfileValues.Get(table, "quantity_total", ids.P2));
        Assert.Equal(ColumnType.Int64, table.Find("quantity_total")!.Type);
        Assert.Equal(ColumnType.Double, table.Find("revenue_total")!.Type);
        Assert.Equal(ColumnType.String, table.Find("first_product")!.Type);
        foreach (var trait in new[] { "revenue_total", "quantity_total", "avg_order", "min_order", "max_order", "first_product", "last_revenue", "days_since_seen", "first_seen_at", "last_seen_at" })
        {
            Assert.Null(ProfileValues.Get(table, trait, ids.P3));
        }
    }

    [Fact]
    public async Task First_and_last_take_the_earliest_and_latest_event_with_ties_to_the_smaller_and_larger_value()
    {
        using var workspace = Sample();
        var table = (await workspace.RunAsync()).Profiles!.Table;
        var ids = IdsOf(workspace, "r1");
        Assert.Equal("p1", ProfileValues.Get(table, "first_product", ids.P1));
        Assert.Equal("p2", ProfileValues.Get(table, "last_product", ids.P1)); // p1 and p2 at the same instant
        Assert.Equal(20.0, ProfileValues.Get(table, "first_revenue", ids.P1));
        Assert.Equal(100.5, ProfileValues.Get(table, "last_revenue", ids.P1));
        Assert.Equal("p5", ProfileValues.Get(table, "first_product", ids.P2)); // p5 and p6 at the same instant
        Assert.Equal("p6", ProfileValues.Get(table, "last_product", ids.P2));
        Assert.Equal(10.0, ProfileValues.Get(table, "first_revenue", ids.P2));
        Assert.Equal(30.0, ProfileValues.Get(table, "last_revenue", ids.P2));
    }

    [Fact]
    public async Task Distinct_counts_recency_and_first_and_last_seen()
    {
        using var workspace = Sample();
        var table = (await workspace.RunAsync()).Profiles!.Table;
        var ids = IdsOf(workspace, "r1");
        Assert.Equal(4L, ProfileValues.Get(table, "products", ids.P1)); // p1 p2 p3 p4; p9 is after as-of
        Assert.Equal(2L, ProfileValues.Get(table, "products", ids.P2));
        Assert.Equal(0L, ProfileValues.Get(table, "days_since_seen", ids.P1)); // one second before as-of: 0 whole days
        Assert.Equal(11L, ProfileValues.Get(table, "days_since_seen", ids.P2));
        Assert.Equal(2L, ProfileValues.Get(table, "days_since_seen", ids.P4));
        Assert.Equal(At("2026-07-01T00:00:00Z"), ProfileValues.Get(table, "first_seen_at", ids.P1));
        Assert.Equal(At("2026-10-31T23:59:59Z"), ProfileValues.Get(table, "last_seen_at", ids.P1));
        Assert.Equal(At("2026-10-11T00:00:00Z"), ProfileValues.Get(table, "first_seen_at", ids.P2));
        Assert.Equal(At("2026-10-30T00:00:00Z"), ProfileValues.Get(table, "last_seen_at", ids.P4));
    }

    [Fact]
    public async Task Rows_without_a_profile_and_rows_after_as_of_are_counted_in_the_manifest()
    {
        using var workspace = Sample();
        var result = await workspace.RunAsync();
        var report = result.Manifest.Profiles!;
        Assert.Equal(18, report.EventsRead);
        Assert.Equal(3, report.EventsWithoutProfile); // shared1 alone, test@test.com (blocked), no identifier
        Assert.Equal(7, report.AttributeRowsRead);
        Assert.Equal(0, report.AttributeRowsWithoutProfile);
        Assert.Equal(3, report.RowsAfterAsOf); // two events (at and after as-of), one CRM row
        Assert.Equal(4, report.Profiles);
        var stage = result.Manifest.Stages.Single(s => s.Name == "profiles");
        Assert.Equal(3, stage.Counts["events_without_profile"]);
        Assert.Equal(4, stage.Counts["profiles"]);
        // The manifest on disk says the same.
        var manifest = RunManifest.Parse(File.ReadAllBytes(Path.Combine(workspace.RunDirectory("r1"), RunManifest.FileName)));
        Assert.Equal(3, manifest.Profiles!.EventsWithoutProfile);
    }

    [Fact]
    public async Task The_written_profiles_dataset_reads_back_as_the_table_the_stage_returned()
    {
        using var workspace = Sample();
        var result = await workspace.RunAsync();
        var table = result.Profiles!.Table;
        var read = await ProfileTable.ReadAsync(result.Profiles.Location, TestContext.Current.CancellationToken);
        Assert.Equal(table.ProfileIds.Values.ToArray(), read.ProfileIds.Values.ToArray());
        Assert.Equal(table.Columns.Select(c => (c.Name, c.Type)), read.Columns.Select(c => (c.Name, c.Type)));
        foreach (var column in table.Columns)
        {
            foreach (var id in table.ProfileIds.Values.ToArray())
            {
                Assert.Equal(ProfileValues.Get(table, column.Name, id), ProfileValues.Get(read, column.Name, id));
            }
        }
        // Ascending profile ids, one per non-null profile id of identity/.
        var ids = table.ProfileIds.Values.ToArray();
        Assert.Equal(ids.Order(), ids);
    }

    [Fact]
    public async Task One_worker_and_many_give_the_same_profiles()
    {
        using var workspace = Sample();
        var one = (await workspace.RunAsync("one", parallelism: 1)).Profiles!.Table;
        var many = (await workspace.RunAsync("many", parallelism: 8)).Profiles!.Table;
        Assert.Equal(one.ProfileIds.Values.ToArray(), many.ProfileIds.Values.ToArray());
        foreach (var column in one.Columns)
        {
            foreach (var id in one.ProfileIds.Values.ToArray())
            {
                Assert.Equal(ProfileValues.Get(one, column.Name, id), ProfileValues.Get(many, column.Name, id));
            }
        }
    }

    [Fact]
    public async Task Without_profiles_yaml_the_table_is_the_profile_ids_alone()
    {
        using var workspace = Sample();
        File.Delete(Path.Combine(workspace.Path, "profiles.yaml"));
        var result = await workspace.RunAsync();
        Assert.Empty(result.Profiles!.Table.Columns);
        Assert.Equal(4, result.Profiles.Table.Count);
        Assert.Equal(0, result.Manifest.Profiles!.EventsRead);
    }
}
