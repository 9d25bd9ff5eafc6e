using System.Globalization;
using Engine.Identity;
using Engine.Runs;
using Engine.Storage;
using Engine.TestKit;
using Engine.Workspaces;
using Microsoft.Extensions.Logging.Abstractions;

namespace Engine.Tests.Identity;

/// <summary>
/// A workspace of two small CSV sources written by hand — <c>crm/</c> (customer_id, email, phone, names, postcode) and
/// <c>events/</c> (anonymous_id, user_id, email) — so each test can say exactly which rows link what, add files between
/// runs and change the rules.
/// </summary>
internal sealed class HandWorkspace : IDisposable
{
    public const string DefaultRules = """
        identifier_types:
          customer_id: { normalizer: id, limit: 2 }
          name_postcode: { normalizer: composite, limit: 1 }
          email: { normalizer: email, limit: 5 }
          phone: { normalizer: phone, limit: 3, default_region: GB }
          anonymous_id: { normalizer: id, shared_after: 1 }
        """;

    private readonly TempDirectory _dir = new("identity-stage");

    public HandWorkspace(string rules = DefaultRules)
    {
        Write("workspace.yaml", "name: hand\nversion: 1\noutput: output\n");
        Write("identity.yaml", rules);
        Write("sources/crm.yaml", """
            name: crm
            location: data/crm
            format: csv
            columns:
              customer_id: string
              email: string
              phone: string
              first_name: string
              last_name: string
              postcode: string
            identifiers:
              customer_id: customer_id
              email: email
              phone: phone
            composite_identifiers:
              name_postcode: [first_name, last_name, postcode]
            """);
        Write("sources/events.yaml", """
            name: events
            location: data/events
            format: csv
            columns:
              anonymous_id: string
              user_id: string
              email: string
            identifiers:
              anonymous_id: anonymous_id
              user_id: customer_id
              email: email
            """);
    }

    public string Path => _dir.Path;

    public void Write(string relative, string content)
    {
        var path = _dir.Combine(relative.Split('/'));
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        File.WriteAllText(path, content);
    }

    /// <summary>Adds a CRM file: rows of customer_id, email, phone, first_name, last_name, postcode.</summary>
    public void Crm(string file, params string[] rows) => Write($"data/crm/{file}.csv", "customer_id,email,phone,first_name,last_name,postcode\n" + string.Join("\n", rows) + "\n");

    /// <summary>Adds an events file: rows of anonymous_id, user_id, email.</summary>
    public void Events(string file, params string[] rows) => Write($"data/events/{file}.csv", "anonymous_id,user_id,email\n" + string.Join("\n", rows) + "\n");

    public async Task<RunManifest> RunAsync(string runId, bool fullRefresh = false, int day = 1)
    {
        using var storage = new StorageResolver();
        var workspace = WorkspaceLoader.Load(Path);
        var result = await new RunExecutor(storage, NullLogger.Instance).ExecuteAsync(workspace, new RunOptions
        {
            RunId = runId,
            AsOf = new DateTimeOffset(2026, 11, day, 0, 0, 0, TimeSpan.Zero),
            FullRefresh = fullRefresh,
        }, cancellationToken: TestContext.Current.CancellationToken);
        return result.Manifest;
    }

    public string Run(string runId, string relative = "") => _dir.Combine(["output", "runs", runId, "identity", .. relative.Split('/', StringSplitOptions.RemoveEmptyEntries)]);

    /// <summary>identifier ("type:value") → profile id (null when in no profile).</summary>
    public Dictionary<string, long?> Profiles(string runId)
    {
        var result = new Dictionary<string, long?>(StringComparer.Ordinal);
        foreach (var row in DuckDb.Rows($"SELECT identifier_type || ':' || identifier_value, profile_id FROM read_parquet('{Run(runId)}/*.parquet')"))
        {
            result.Add((string)row[0]!, row[1] is null ? null : Convert.ToInt64(row[1], CultureInfo.InvariantCulture));
        }
        return result;
    }

    /// <summary>The rows of identity/merges: (old, new, change).</summary>
    public List<(long Old, long? New, string Change)> Merges(string runId) =>
        [.. DuckDb.Rows($"SELECT old_profile_id, new_profile_id, change FROM read_parquet('{Run(runId, "merges")}/*.parquet') ORDER BY ALL")
            .Select(r => (Convert.ToInt64(r[0], CultureInfo.InvariantCulture), r[1] is null ? (long?)null : Convert.ToInt64(r[1], CultureInfo.InvariantCulture), (string)r[2]!))];

    public void Dispose() => _dir.Dispose();
}

/// <summary>The identity stage end to end on hand-written sources: outputs, incremental runs, stable ids, merges and splits.</summary>
public sealed class IdentityStageTests
{
    [Fact]
    public async Task One_person_across_sources_becomes_one_profile_and_the_outputs_follow_the_contract()
    {
        using var ws = new HandWorkspace();
        ws.Crm("part-0", "C1, Ann@Mail.co.uk ,07700 900123,Ann,Lee,SW1A 1AA", "C2,bob@mail.co.uk,,Bob,Ray,E1 6AN");
        ws.Events("part-0", "a1,,ann@mail.co.uk", "a2,C1,", "a3,,", "a4,null,bob@mail.co.uk", "a5,,unknown");
        var manifest = await ws.RunAsync("r1");

        var profiles = ws.Profiles("r1");
        var ann = profiles["customer_id:C1"];
        Assert.NotNull(ann);
        Assert.All(new[] { "email:ann@mail.co.uk", "phone:+447700900123", "anonymous_id:a1", "anonymous_id:a2", "name_postcode:ann\u001Flee\u001Fsw1a1aa" },
            id => Assert.Equal(ann, profiles[id]));
        Assert.Equal(profiles["customer_id:C2"], profiles["anonymous_id:a4"]);
        Assert.NotEqual(ann, profiles["customer_id:C2"]);
        // a3 has no other identifier on its row: a profile of its own. The placeholders linked nothing and are not identifiers.
        Assert.NotNull(profiles["anonymous_id:a3"]);
        Assert.False(profiles.ContainsKey("customer_id:null"));
        Assert.False(profiles.ContainsKey("email:unknown"));

        var report = manifest.Identity!;
        Assert.Equal(IdentityModes.Full, report.Mode);
        Assert.Equal(profiles.Count, report.Identifiers);
        Assert.Equal(profiles.Values.Distinct().Count(), report.Profiles);
        Assert.Equal(1, report.ValuesSkipped["customer_id"]["blocked"]);
        Assert.Equal(1, report.ValuesSkipped["email"]["invalid"]);
        Assert.Equal(6, report.LargestProfile);
        Assert.Equal(report.Profiles, report.ProfileSizes.Sum(b => b.Profiles));
        Assert.Empty(ws.Merges("r1"));
        var links = DuckDb.Rows($"SELECT outcome, count(*) FROM read_parquet('{ws.Run("r1", "links")}/*.parquet') GROUP BY ALL");
        Assert.Equal(report.Edges, links.Sum(r => Convert.ToInt64(r[1], CultureInfo.InvariantCulture)));
        Assert.True(File.Exists(ws.Run("r1", IdentityState.FileName)));
    }

    [Fact]
    public async Task An_incremental_run_reads_only_new_files_keeps_every_id_and_a_merge_keeps_the_oldest()
    {
        using var ws = new HandWorkspace();
        ws.Crm("part-0", "C1,ann@mail.co.uk,,Ann,Lee,SW1A 1AA", "C2,bob@mail.co.uk,,Bob,Ray,E1 6AN");
        ws.Events("part-0", "a1,,ann@mail.co.uk", "a2,,");
        await ws.RunAsync("r1", day: 1);
        var before = ws.Profiles("r1");

        // a2 turns out to be Ann's, and a new visitor a9 appears.
        ws.Events("part-1", "a2,C1,", "a9,,");
        var second = (await ws.RunAsync("r2", day: 2)).Identity!;
        Assert.Equal(IdentityModes.Incremental, second.Mode);
        Assert.Equal(1, second.FilesRead);
        Assert.Equal(2, second.RowsRead);
        var after = ws.Profiles("r2");
        Assert.Equal(before["customer_id:C1"], after["anonymous_id:a2"]);
        Assert.Equal(before["customer_id:C2"], after["customer_id:C2"]);
        Assert.DoesNotContain(after["anonymous_id:a9"], before.Values);
        var older = Math.Min(before["customer_id:C1"]!.Value, before["anonymous_id:a2"]!.Value);
        var younger = Math.Max(before["customer_id:C1"]!.Value, before["anonymous_id:a2"]!.Value);
        Assert.Equal(older, after["customer_id:C1"]);
        Assert.Equal([(younger, (long?)older, "merged")], ws.Merges("r2"));
        Assert.Equal(1, second.ProfilesMerged);

        // Nothing new: an incremental no-op with the same answer; running r2 again gives the same output.
        var third = (await ws.RunAsync("r3", day: 3)).Identity!;
        Assert.Equal(IdentityModes.Incremental, third.Mode);
        Assert.Equal(0, third.FilesRead);
        Assert.Equal(after, ws.Profiles("r3"));
        await ws.RunAsync("r2", day: 2);
        Assert.Equal(after, ws.Profiles("r2"));
    }

    [Fact]
    public async Task A_full_refresh_with_a_new_blocklist_entry_splits_the_cluster_and_the_largest_part_keeps_the_id()
    {
        using var ws = new HandWorkspace();
        // A shop's own till address, typed at checkout for Ann and for two guests: it joins the guests' cookies to Ann.
        ws.Crm("part-0", "C1,ann@mail.co.uk,,Ann,Lee,SW1A 1AA");
        ws.Events("part-0", "a1,C1,", "a2,C1,", ",C1,till@shop.co.uk", "b1,,till@shop.co.uk", "b2,,till@shop.co.uk");
        await ws.RunAsync("r1", day: 1);
        var before = ws.Profiles("r1");
        var merged = before["customer_id:C1"];
        Assert.Equal(merged, before["anonymous_id:b1"]);

        ws.Write("identity.yaml", HandWorkspace.DefaultRules + "\nblocklist:\n  email: [\"till@shop.co.uk\"]\n");
        var incremental = (await ws.RunAsync("r2", day: 2)).Identity!;
        Assert.Equal(IdentityModes.Full, incremental.Mode);
        Assert.Contains("rules", incremental.ModeReason, StringComparison.Ordinal);
        var after = ws.Profiles("r2");
        Assert.Equal(merged, after["customer_id:C1"]);
        Assert.Equal(merged, after["anonymous_id:a2"]);
        Assert.False(after.ContainsKey("email:till@shop.co.uk"));
        var b1 = after["anonymous_id:b1"]!.Value;
        var b2 = after["anonymous_id:b2"]!.Value;
        Assert.NotEqual(b1, b2);
        Assert.Equal(
            new[] { (merged!.Value, (long?)b1, "split"), (merged.Value, (long?)b2, "split") }.OrderBy(m => m.Item2),
            ws.Merges("r2"));
    }

    [Fact]
    public async Task A_profile_whose_identifiers_are_all_gone_is_retired()
    {
        using var ws = new HandWorkspace();
        ws.Events("part-0", "a1,,", "x9,,");
        ws.Crm("part-0", "C1,ann@mail.co.uk,,Ann,Lee,SW1A 1AA");
        await ws.RunAsync("r1", day: 1);
        var gone = ws.Profiles("r1")["anonymous_id:x9"]!.Value;
        ws.Write("identity.yaml", HandWorkspace.DefaultRules + "\nblocklist:\n  anonymous_id: [\"x9\"]\n");
        var report = (await ws.RunAsync("r2", fullRefresh: true, day: 2)).Identity!;
        Assert.Equal("--full-refresh", report.ModeReason);
        Assert.Equal([(gone, (long?)null, "retired")], ws.Merges("r2"));
        Assert.Equal(1, report.ProfilesRetired);
    }

    [Fact]
    public async Task A_changed_file_makes_the_next_run_read_everything_again()
    {
        using var ws = new HandWorkspace();
        ws.Crm("part-0", "C1,ann@mail.co.uk,,Ann,Lee,SW1A 1AA");
        ws.Events("part-0", "a1,C1,");
        await ws.RunAsync("r1", day: 1);
        ws.Events("part-0", "a1,C1,", "a7,C1,");
        var report = (await ws.RunAsync("r2", day: 2)).Identity!;
        Assert.Equal(IdentityModes.Full, report.Mode);
        Assert.Contains("source 'events': 1 file(s) changed or removed", report.ModeReason, StringComparison.Ordinal);
        var profiles = ws.Profiles("r2");
        Assert.Equal(profiles["customer_id:C1"], profiles["anonymous_id:a7"]);
    }

    [Fact]
    public async Task A_shared_tablet_and_a_family_address_do_not_join_their_people()
    {
        using var ws = new HandWorkspace();
        // Ann and Bob share a family address on their CRM records and a tablet at home; Cal's duplicate record
        // (same name, same address) is one person.
        ws.Crm("part-0",
            "C1,family@mail.co.uk,,Ann,Lee,SW1A 1AA",
            "C2,family@mail.co.uk,,Bob,Lee,SW1A 1AA",
            "C3,cal@mail.co.uk,,Cal,Ng,E1 6AN",
            "C4, CAL@mail.co.uk,,Cal,Ng,e16an");
        ws.Events("part-0", "tablet,C1,", "tablet,C2,", "ann-phone,C1,", "bob-phone,C2,", "guest,,family@mail.co.uk");
        var report = (await ws.RunAsync("r1")).Identity!;
        var profiles = ws.Profiles("r1");
        Assert.NotEqual(profiles["customer_id:C1"], profiles["customer_id:C2"]);
        Assert.Equal(profiles["customer_id:C3"], profiles["customer_id:C4"]);
        Assert.Null(profiles["anonymous_id:tablet"]);
        Assert.Equal(1, report.SharedValues["anonymous_id"]);
        Assert.Equal(2, report.LinksRefused["shared:anonymous_id"]);
        Assert.Equal(1, report.LinksRefused["limit:name_postcode"]);
    }

    [Fact]
    public async Task Phones_are_read_in_the_country_of_their_row()
    {
        using var ws = new HandWorkspace();
        ws.Write("sources/crm.yaml", """
            name: crm
            location: data/crm
            format: csv
            columns:
              customer_id: string
              phone: string
              country: string
            identifiers:
              customer_id: customer_id
              phone: { type: phone, region_column: country }
            """);
        // The same national digits are a British mobile in GB, a US number in US; no country: the default (GB here).
        ws.Events("part-0", "a1,C1,");
        ws.Write("data/crm/part-0.csv", "customer_id,phone,country\nC1,07700 900123,GB\nC2,(415) 555-2671,us\nC3,06 12 34 56 78,FR\nC4,020 7946 0958,\nC5,+61 412 345 678,US\n");
        var report = (await ws.RunAsync("r1")).Identity!;
        var profiles = ws.Profiles("r1");
        Assert.Equal(profiles["customer_id:C1"], profiles["phone:+447700900123"]);
        Assert.Equal(profiles["customer_id:C2"], profiles["phone:+14155552671"]);
        Assert.Equal(profiles["customer_id:C3"], profiles["phone:+33612345678"]);
        Assert.Equal(profiles["customer_id:C4"], profiles["phone:+442079460958"]);
        // A number written with its country code keeps it whatever the row's country says.
        Assert.Equal(profiles["customer_id:C5"], profiles["phone:+61412345678"]);
        Assert.Equal(5, report.IdentifiersByType["phone"]);
    }

    [Fact]
    public async Task A_damaged_previous_output_stops_the_run_with_the_file_named_and_a_full_refresh_recovers()
    {
        using var ws = new HandWorkspace();
        ws.Crm("part-0", "C1,ann@mail.co.uk,,Ann,Lee,SW1A 1AA");
        ws.Events("part-0", "a1,C1,");
        await ws.RunAsync("r1", day: 1);
        // Someone rewrites the links with 64-bit positions (a notebook, another tool): not what the engine wrote.
        var links = Path.Combine(ws.Run("r1", IdentityStage.LinksFolder), "part-00000.parquet");
        DuckDb.Rows($"COPY (SELECT from_index::BIGINT AS from_index, to_index::BIGINT AS to_index, outcome, reason, reason_type FROM read_parquet('{links}')) TO '{links}.new' (FORMAT parquet)");
        File.Move(links + ".new", links, overwrite: true);

        var error = await Assert.ThrowsAsync<DataException>(() => ws.RunAsync("r2", day: 2));
        Assert.Contains(links, error.Message, StringComparison.Ordinal);
        Assert.Contains("column 'from_index' is int64", error.Message, StringComparison.Ordinal);
        Assert.Contains("--full-refresh", error.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(ws.Run("r2", IdentityState.FileName)));

        var report = (await ws.RunAsync("r3", fullRefresh: true, day: 3)).Identity!;
        Assert.Equal(IdentityModes.Full, report.Mode);
        Assert.Equal(ws.Profiles("r1"), ws.Profiles("r3"));
    }
}
