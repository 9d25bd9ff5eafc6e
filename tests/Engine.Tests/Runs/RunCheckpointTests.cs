using Engine.Runs;
using Engine.Storage;
using Engine.Tests.Profiles;
using Engine.Workspaces;
using Microsoft.Extensions.Logging.Abstractions;

namespace Engine.Tests.Runs;

/// <summary>
/// Resuming a run with the same id: a failed run resumes after its last committed stage and reuses the outputs of
/// the stages before; a succeeded run is not run again; a resume that would mix two definitions or two as-of times
/// is refused. (Killing the process at random points is <c>RunResumeTests</c> in the command line's tests.)
/// </summary>
public sealed class RunCheckpointTests
{
    private static ProfilesWorkspace Workspace()
    {
        var workspace = new ProfilesWorkspace();
        workspace.Write("profiles.yaml", """
            attributes:
              - source: crm
                columns: [tier, score]
            traits:
              - { name: orders, source: events, function: count, filter: { type: order_completed } }
            """);
        workspace.Write("segments/gold.yaml", "name: gold\ndescription: Gold tier\ncondition: tier = 'gold'\n");
        workspace.Write("segments/buyers.yaml", "name: buyers\ndescription: At least one order\ncondition: orders >= 1\n");
        workspace.Crm("a", "c1,ann@x.com,gold,GB,10,2026-09-01T00:00:00Z", "c2,bob@y.com,silver,FR,7,2026-10-05T00:00:00Z", "c3,carl@z.com,gold,SE,1,2026-10-01T00:00:00Z");
        workspace.Events("a", "2026-10-25T10:00:00Z,order_completed,a1,c1,,100.5,2,p1", "2026-10-21T00:00:00Z,order_completed,b1,,bob@y.com,10,3,p5", "2026-10-20T00:00:00Z,page_view,b1,c2,,,,");
        return workspace;
    }

    private static async Task<RunResult> RunAsync(ProfilesWorkspace workspace, string runId, DateTimeOffset? asOf, IProgress<RunProgress>? progress = null, CancellationTokenSource? cancel = null)
    {
        using var storage = new StorageResolver();
        return await new RunExecutor(storage, NullLogger.Instance).ExecuteAsync(
            WorkspaceLoader.Load(workspace.Path), new RunOptions { RunId = runId, AsOf = asOf, Parallelism = 2 }, progress, cancel?.Token ?? TestContext.Current.CancellationToken);
    }

    /// <summary>Cancels the run the moment it reaches <paramref name="stage"/> (synchronously, unlike <see cref="Progress{T}"/>).</summary>
    private sealed class CancelAt(string stage, CancellationTokenSource source) : IProgress<RunProgress>
    {
        public void Report(RunProgress value)
        {
            if (value.Stage == stage)
            {
                source.Cancel();
            }
        }
    }

    /// <summary>The run stopped as the segments stage began: a failed manifest, and a checkpoint of the three stages before.</summary>
    private static async Task<string> FailAtSegmentsAsync(ProfilesWorkspace workspace)
    {
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => RunAsync(workspace, "r1", ProfilesWorkspace.AsOf, new CancelAt("segments", cancel), cancel));
        var run = workspace.RunDirectory("r1");
        var manifest = RunManifest.Parse(File.ReadAllBytes(Path.Combine(run, RunManifest.FileName)));
        Assert.Equal(RunStatus.Failed, manifest.Status);
        Assert.Equal(["ingest", "identity", "profiles", "segments"], manifest.Stages.Select(s => s.Name));
        Assert.Equal(RunStatus.Failed, manifest.Stages[^1].Status);
        Assert.False(Directory.Exists(Path.Combine(run, "segments")), "the failed stage wrote nothing");
        return run;
    }

    [Fact]
    public async Task A_failed_run_started_again_reuses_the_stages_it_finished_and_runs_the_rest()
    {
        using var workspace = Workspace();
        var run = await FailAtSegmentsAsync(workspace);
        var checkpoint = await RunCheckpoint.ReadAsync(new StorageLocation(new LocalObjectStore(run), ""), TestContext.Current.CancellationToken);
        Assert.NotNull(checkpoint);
        Assert.Equal(["ingest", "identity", "profiles"], checkpoint.Completed);
        Assert.Equal(RunCheckpoint.Running, checkpoint.Manifest.Status);
        var identityFiles = Directory.GetFiles(Path.Combine(run, "identity")).ToDictionary(f => f, File.GetLastWriteTimeUtc);
        var profilesFiles = Directory.GetFiles(Path.Combine(run, "profiles")).ToDictionary(f => f, File.GetLastWriteTimeUtc);

        // Without --as-of: a resumed run keeps the as-of it was started with.
        var resumed = await RunAsync(workspace, "r1", asOf: null);
        var manifest = resumed.Manifest;
        Assert.Equal(RunStatus.Succeeded, manifest.Status);
        Assert.Null(manifest.Error);
        Assert.Equal(ProfilesWorkspace.AsOf, manifest.AsOf);
        Assert.Equal(2, manifest.Attempts);
        Assert.Equal(["ingest:1", "identity:1", "profiles:1", "segments:2"], manifest.Stages.Select(s => $"{s.Name}:{s.Attempt}"));
        Assert.All(manifest.Stages, s => Assert.Equal(RunStatus.Succeeded, s.Status));
        Assert.Equal(3, manifest.Profiles!.Profiles);
        Assert.Equal(2, manifest.Segments!.Segments.Single(s => s.Name == "gold").Members);
        Assert.Equal(2, manifest.Segments.Segments.Single(s => s.Name == "buyers").Members);
        Assert.Equal(["crm", "events"], manifest.Inputs.Select(i => i.Source).Order(StringComparer.Ordinal));
        // The finished stages' outputs were read back, not written again.
        Assert.Equal(identityFiles, Directory.GetFiles(Path.Combine(run, "identity")).ToDictionary(f => f, File.GetLastWriteTimeUtc));
        Assert.Equal(profilesFiles, Directory.GetFiles(Path.Combine(run, "profiles")).ToDictionary(f => f, File.GetLastWriteTimeUtc));
        Assert.False(File.Exists(Path.Combine(run, RunCheckpoint.FileName)), "the checkpoint is gone once the run succeeded");
        Assert.Empty(Directory.GetFileSystemEntries(run, ".*", SearchOption.AllDirectories));

        // The same outputs as a run that was never stopped.
        using var fresh = Workspace();
        var uninterrupted = (await RunAsync(fresh, "r1", ProfilesWorkspace.AsOf)).Manifest;
        Assert.Equal(uninterrupted.Segments!.Segments.Select(s => (s.Name, s.Members, s.Entered)), manifest.Segments.Segments.Select(s => (s.Name, s.Members, s.Entered)));
        var rows = TestKit.DuckDb.Rows($"""
            SELECT count(*) FROM (
              (SELECT * FROM read_parquet('{Path.Combine(run, "segments", "*.parquet")}') EXCEPT ALL SELECT * FROM read_parquet('{Path.Combine(fresh.RunDirectory("r1"), "segments", "*.parquet")}'))
              UNION ALL
              (SELECT * FROM read_parquet('{Path.Combine(fresh.RunDirectory("r1"), "segments", "*.parquet")}') EXCEPT ALL SELECT * FROM read_parquet('{Path.Combine(run, "segments", "*.parquet")}')))
            """);
        Assert.Equal(0L, Convert.ToInt64(rows.Single()[0], System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task A_succeeded_run_started_again_runs_nothing()
    {
        using var workspace = Workspace();
        await RunAsync(workspace, "r1", ProfilesWorkspace.AsOf);
        var path = Path.Combine(workspace.RunDirectory("r1"), RunManifest.FileName);
        var before = File.ReadAllBytes(path);
        var again = await RunAsync(workspace, "r1", asOf: null);
        Assert.True(again.AlreadySucceeded);
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Null(again.Profiles);

        var refused = await Assert.ThrowsAsync<EngineException>(() => RunAsync(workspace, "r1", ProfilesWorkspace.AsOf.AddDays(1)));
        Assert.Contains("run 'r1' already succeeded as of 2026-11-01", refused.Message, StringComparison.Ordinal);
        Assert.Contains("needs a new --run-id", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_resume_with_another_as_of_or_a_changed_definition_is_refused_and_changes_nothing()
    {
        using var workspace = Workspace();
        var run = await FailAtSegmentsAsync(workspace);
        var checkpoint = File.ReadAllBytes(Path.Combine(run, RunCheckpoint.FileName));

        var asOf = await Assert.ThrowsAsync<EngineException>(() => RunAsync(workspace, "r1", ProfilesWorkspace.AsOf.AddDays(1)));
        Assert.Contains("run 'r1' was started as of 2026-11-01", asOf.Message, StringComparison.Ordinal);

        workspace.Write("segments/gold.yaml", "name: gold\ndescription: Gold tier\ncondition: tier = 'gold' AND score > 1\n");
        var changed = await Assert.ThrowsAsync<EngineException>(() => RunAsync(workspace, "r1", ProfilesWorkspace.AsOf));
        Assert.Contains("the workspace's definition changed since run 'r1' was started", changed.Message, StringComparison.Ordinal);
        Assert.Equal(checkpoint, File.ReadAllBytes(Path.Combine(run, RunCheckpoint.FileName)));

        // Restored, it resumes.
        workspace.Write("segments/gold.yaml", "name: gold\ndescription: Gold tier\ncondition: tier = 'gold'\n");
        Assert.Equal(RunStatus.Succeeded, (await RunAsync(workspace, "r1", ProfilesWorkspace.AsOf)).Manifest.Status);
    }
}
