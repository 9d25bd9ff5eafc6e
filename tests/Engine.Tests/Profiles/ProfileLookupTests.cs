using CsCheck;
using Engine.Identity;
using Engine.Profiles;
using Engine.Storage;
using Engine.Workspaces;
using Microsoft.Extensions.Logging.Abstractions;

namespace Engine.Tests.Profiles;

/// <summary>
/// A run hands the identity stage's own state to training and profiles instead of reading <c>identity/</c> back: its
/// hash table, and each row's profile for the files it read. The lookup it keeps must say exactly what the output it
/// wrote says, identifier by identifier, on a first night and on an incremental one (whose table holds the previous
/// night's identifiers first); and a profile table built from the rows handed over must be the one built by resolving
/// every row from <c>identity/</c>, including rows the hand-over cannot settle (a shared value before another
/// identifier) and a file that appears after the identity stage read the source.
/// </summary>
public sealed class ProfileLookupTests
{
    /// <summary>
    /// The profiles sample, with emails shared once two customers use them: family@x.com is (c1 and c2), and so is
    /// ann@x.com (c1, and c2's email open). The order that comes with family@x.com and anonymous id a5 belongs to a5's
    /// own profile — the next identifier's, which a row's hub alone (the shared email) cannot tell — so file c is
    /// resolved from its identifiers, as is file a (ann@x.com before a1), and the table is kept for them.
    /// </summary>
    private static ProfilesWorkspace WithSharedEmail()
    {
        var workspace = ProfilesStageTests.Sample();
        workspace.Write("identity.yaml", """
            identifier_types:
              customer_id: { normalizer: id, limit: 1 }
              email: { normalizer: email, limit: 5, shared_after: 1 }
              anonymous_id: { normalizer: id, shared_after: 1 }
            """);
        workspace.Events("c",
            "2026-10-02T00:00:00Z,page_view,,c1,family@x.com,,,",
            "2026-10-03T00:00:00Z,page_view,,c2,family@x.com,,,",
            "2026-10-04T00:00:00Z,order_completed,a5,,family@x.com,12,1,p1");
        return workspace;
    }

    /// <summary>
    /// The lookup made from the stage's arrays (identifier → node → profile id) gives each identifier the row of its
    /// profile among the distinct ids in ascending order, -1 for a shared value: with ids dense (a bitmap and a direct
    /// array), sparse (a bitmap and a binary search) and far apart (a sort), on one worker and several.
    /// </summary>
    [Fact]
    public void A_lookup_from_the_stage_rows_every_identifier_by_its_profile_among_the_ascending_ids()
    {
        var range = Gen.OneOf(Gen.Const(8L), Gen.Const(1_000L), Gen.Const(long.MaxValue / 2));
        Gen.Select(Gen.Int[0, 300], range, Gen.Int[1, 3], Gen.UInt).Sample((n, spread, parallelism, seed) =>
        {
            var random = new Random((int)seed);
            var table = new IdentifierTable();
            for (var i = 0; i < n; i++)
            {
                Assert.Equal(i, table.GetOrAdd(IdentifierKey.Compute(0, $"id-{i}"), 0));
            }
            var rank = Enumerable.Range(0, n).OrderBy(_ => random.Next()).ToArray();
            var profileOf = new long[n];
            for (var node = 0; node < n; node++)
            {
                profileOf[node] = random.Next(6) == 0 ? -1 : random.NextInt64(spread);
            }

            var lookup = ProfileLookup.FromIdentity(table, rank, profileOf, null, false, null, parallelism);

            Assert.Equal(profileOf.Where(p => p >= 0).Distinct().Order(), lookup.ProfileIds);
            for (var i = 0; i < n; i++)
            {
                var row = lookup.RowOf(IdentifierKey.Compute(0, $"id-{i}"));
                Assert.Equal(profileOf[rank[i]], row < 0 ? -1 : lookup.ProfileIds[row]);
            }
        }, iter: 300);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task The_lookup_the_identity_stage_keeps_is_what_its_output_reads_back_as(bool incremental)
    {
        var cancellationToken = TestContext.Current.CancellationToken;
        using var workspace = WithSharedEmail();
        using var storage = new StorageResolver();
        var runs = storage.Resolve(Path.Combine(workspace.Path, "output", "runs"));
        var stage = new IdentityStage(storage, NullLogger.Instance);
        var options = new IdentityOptions { Parallelism = 2, KeepLookup = true };

        var result = await stage.RunAsync(WorkspaceLoader.Load(workspace.Path), "r1", runs.Child("r1").Child(IdentityStage.Folder), null, options, cancellationToken: cancellationToken);
        if (incremental)
        {
            // New people, and a link that joins two of the first night's profiles (a9 with c3).
            workspace.Events("d",
                "2026-10-30T00:00:00Z,page_view,a9,c3,,,,",
                "2026-10-30T00:00:00Z,page_view,n1,c7,new@x.com,,,",
                "2026-10-30T00:00:00Z,page_view,n2,,,,,");
            result = await stage.RunAsync(
                WorkspaceLoader.Load(workspace.Path), "r2", runs.Child("r2").Child(IdentityStage.Folder),
                new PreviousIdentity("r1", result.Location), options, cancellationToken: cancellationToken);
            Assert.Equal(IdentityModes.Incremental, result.Report.Mode);
        }
        var kept = result.Lookup!;
        Assert.True(kept.CanResolve, "a file is left to resolve (first night) or only new files were read (incremental): the table stays");
        var rules = WorkspaceLoader.Load(workspace.Path).Identity;
        var read = await ProfilesStage.ReadLookupAsync(WorkspaceLoader.Load(workspace.Path), result.Location, 2, cancellationToken);

        Assert.Equal(read.ProfileIds, kept.ProfileIds);
        Assert.Equal(read.Identifiers, kept.Identifiers);
        var identifiers = 0;
        var shared = 0;
        IdentityOutput.ReadIdentifiers(await Dataset.OpenAsync(result.Location, DataFormat.Parquet, cancellationToken), rules, (_, type, value, profile, isShared) =>
        {
            var key = IdentifierKey.Compute((byte)type, value);
            var row = kept.RowOf(key);
            Assert.Equal(read.RowOf(key), row);
            Assert.Equal(profile, row < 0 ? -1 : kept.ProfileIds[row]);
            // The output's shared flag and its NULL profile say the same thing.
            Assert.Equal(profile < 0, isShared);
            identifiers++;
            shared += profile < 0 ? 1 : 0;
        }, cancellationToken);
        Assert.Equal(kept.Identifiers, identifiers);
        Assert.True(shared > 0, "the sample has a shared value, which maps to no profile");
        Assert.Equal(-1, kept.RowOf(IdentifierKey.Compute(0, "nobody"u8)));
    }

    [Fact]
    public async Task Profiles_built_from_the_rows_handed_over_are_those_resolved_from_the_identity_output()
    {
        var cancellationToken = TestContext.Current.CancellationToken;
        using var workspace = WithSharedEmail();
        var (kept, identity) = await IdentityAsync(workspace, cancellationToken);

        // The CRM's file and events file b are handed over; events files a and c are not.
        var rows = kept.Rows!;
        Assert.Equal(2, rows.Files);
        Assert.False(rows.EveryFileRecorded);
        using var storage = new StorageResolver();
        var events = await Dataset.OpenAsync(storage.Resolve(Path.Combine(workspace.Path, "data", "events")), DataFormat.Csv, cancellationToken);
        DataFile File(string name) => events.Files.Single(f => f.Key.EndsWith(name, StringComparison.Ordinal));
        Assert.Null(rows.Of("events", File("a.csv")));
        Assert.NotNull(rows.Of("events", File("b.csv")));
        Assert.Null(rows.Of("events", File("c.csv")));

        var handedOver = await BuildAsync(workspace, identity, kept, cancellationToken);
        var resolved = await BuildAsync(workspace, identity, null, cancellationToken);
        AssertSameTable(resolved, handedOver);
        var a5 = workspace.ProfileOf("r1", "anonymous_id", "a5")!.Value;
        Assert.Equal(1L, ProfileValues.Get(handedOver, "orders", a5));
        Assert.Null(workspace.ProfileOf("r1", "email", "family@x.com"));
    }

    [Fact]
    public async Task A_file_new_since_the_identity_stage_read_its_source_is_resolved_from_the_output_read_back()
    {
        var cancellationToken = TestContext.Current.CancellationToken;
        using var workspace = ProfilesStageTests.Sample();
        var (kept, identity) = await IdentityAsync(workspace, cancellationToken);

        // Every file handed over: the table was let go.
        Assert.True(kept.Rows!.EveryFileRecorded);
        Assert.False(kept.CanResolve);

        workspace.Events("d", "2026-10-20T00:00:00Z,order_completed,,c1,,7,1,p1");
        var handedOver = await BuildAsync(workspace, identity, kept, cancellationToken);
        var resolved = await BuildAsync(workspace, identity, null, cancellationToken);
        AssertSameTable(resolved, handedOver);
        // c1's orders before: the five worked out in ProfilesStageTests; file d adds one.
        Assert.Equal(6L, ProfileValues.Get(handedOver, "orders", workspace.ProfileOf("r1", "customer_id", "c1")!.Value));
    }

    private static async Task<(ProfileLookup Kept, StorageLocation Identity)> IdentityAsync(ProfilesWorkspace workspace, CancellationToken cancellationToken)
    {
        using var storage = new StorageResolver();
        var output = storage.Resolve(Path.Combine(workspace.Path, "output", "runs")).Child("r1").Child(IdentityStage.Folder);
        var result = await new IdentityStage(storage, NullLogger.Instance).RunAsync(
            WorkspaceLoader.Load(workspace.Path), "r1", output, null, new IdentityOptions { Parallelism = 2, KeepLookup = true }, cancellationToken: cancellationToken);
        return (result.Lookup!, result.Location);
    }

    private static async Task<ProfileTable> BuildAsync(ProfilesWorkspace workspace, StorageLocation identity, ProfileLookup? lookup, CancellationToken cancellationToken)
    {
        using var storage = new StorageResolver();
        var loaded = WorkspaceLoader.Load(workspace.Path);
        var (table, _) = await new ProfilesStage(storage, NullLogger.Instance) { Lookup = lookup }.BuildAsync(
            loaded, loaded.Profiles, identity, ProfilesWorkspace.AsOf, 2, cancellationToken: cancellationToken);
        return table;
    }

    private static void AssertSameTable(ProfileTable expected, ProfileTable actual)
    {
        Assert.Equal(expected.ProfileIds.Values.ToArray(), actual.ProfileIds.Values.ToArray());
        Assert.Equal(expected.Columns.Select(c => c.Name), actual.Columns.Select(c => c.Name));
        foreach (var column in expected.Columns)
        {
            foreach (var id in expected.ProfileIds.Values)
            {
                Assert.Equal(ProfileValues.Get(expected, column.Name, id), ProfileValues.Get(actual, column.Name, id));
            }
        }
    }
}
