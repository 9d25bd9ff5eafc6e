using Engine.Identity;
using Engine.Profiles;
using Engine.Storage;
using Engine.Workspaces;
using Microsoft.Extensions.Logging.Abstractions;

namespace Engine.Tests.Profiles;

/// <summary>
/// A run hands the identity stage's own hash table to training and profiles instead of reading <c>identity/</c> back:
/// the lookup it keeps must say exactly what the output it wrote says, identifier by identifier, on a first night
/// and on an incremental one (whose table holds the previous night's identifiers first).
/// </summary>
public sealed class ProfileLookupTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task The_lookup_the_identity_stage_keeps_is_what_its_output_reads_back_as(bool incremental)
    {
        var cancellationToken = TestContext.Current.CancellationToken;
        using var workspace = ProfilesStageTests.Sample();
        using var storage = new StorageResolver();
        var runs = storage.Resolve(Path.Combine(workspace.Path, "output", "runs"));
        var stage = new IdentityStage(storage, NullLogger.Instance);
        var options = new IdentityOptions { Parallelism = 2, KeepLookup = true };

        var result = await stage.RunAsync(WorkspaceLoader.Load(workspace.Path), "r1", runs.Child("r1").Child(IdentityStage.Folder), null, options, cancellationToken: cancellationToken);
        if (incremental)
        {
            // New people, and a link that joins two of the first night's profiles (a9 with c3).
            workspace.Events("c",
                "2026-10-30T00:00:00Z,page_view,a9,c3,,,,",
                "2026-10-30T00:00:00Z,page_view,n1,c7,new@x.com,,,",
                "2026-10-30T00:00:00Z,page_view,n2,,,,,");
            result = await stage.RunAsync(
                WorkspaceLoader.Load(workspace.Path), "r2", runs.Child("r2").Child(IdentityStage.Folder),
                new PreviousIdentity("r1", result.Location), options, cancellationToken: cancellationToken);
            Assert.Equal(IdentityModes.Incremental, result.Report.Mode);
        }
        var kept = result.Lookup!;
        var rules = WorkspaceLoader.Load(workspace.Path).Identity;
        var read = await ProfilesStage.ReadLookupAsync(WorkspaceLoader.Load(workspace.Path), result.Location, 2, cancellationToken);

        Assert.Equal(read.ProfileIds, kept.ProfileIds);
        Assert.Equal(read.Identifiers, kept.Identifiers);
        var identifiers = 0;
        var shared = 0;
        IdentityOutput.ReadIdentifiers(await Dataset.OpenAsync(result.Location, DataFormat.Parquet, cancellationToken), rules, (_, type, value, profile, _) =>
        {
            var key = IdentifierKey.Compute((byte)type, value);
            var row = kept.RowOf(key);
            Assert.Equal(read.RowOf(key), row);
            Assert.Equal(profile, row < 0 ? -1 : kept.ProfileIds[row]);
            identifiers++;
            shared += profile < 0 ? 1 : 0;
        }, cancellationToken);
        Assert.Equal(kept.Identifiers, identifiers);
        Assert.True(shared > 0, "the sample has a shared value, which maps to no profile");
        Assert.Equal(-1, kept.RowOf(IdentifierKey.Compute(0, "nobody"u8)));
    }
}
