using Engine.Storage;

namespace Engine.Runs;

/// <summary>The runs already written under a workspace's output: <c>&lt;output&gt;/runs/&lt;run_id&gt;/manifest.json</c>.</summary>
public static class RunHistory
{
    /// <summary>
    /// The run a new run continues from: the latest succeeded run (by as-of time, then finish time) other than
    /// <paramref name="runId"/> whose as-of time is not after <paramref name="asOf"/> and that completed
    /// <paramref name="stage"/>. Re-running an old run id thus continues from the run before it, not from a later one.
    /// A manifest that cannot be parsed is skipped (a run whose manifest is damaged is not trusted).
    /// </summary>
    public static async Task<RunManifest?> FindPreviousAsync(StorageLocation runs, string runId, DateTimeOffset asOf, string stage, CancellationToken cancellationToken = default)
    {
        RunManifest? best = null;
        var prefix = runs.Key.TrimEnd('/');
        var folder = prefix.Length == 0 ? "" : prefix + "/";
        foreach (var item in await runs.Store.ListAsync(prefix, cancellationToken))
        {
            var relative = item.Key[folder.Length..];
            var slash = relative.IndexOf('/', StringComparison.Ordinal);
            if (slash <= 0 || relative[(slash + 1)..] != RunManifest.FileName || relative[..slash] == runId)
            {
                continue;
            }
            var bytes = await runs.Store.GetAsync(item.Key, cancellationToken);
            if (bytes is null)
            {
                continue;
            }
            RunManifest manifest;
            try
            {
                manifest = RunManifest.Parse(bytes);
            }
            catch (Exception e) when (e is System.Text.Json.JsonException or EngineException)
            {
                continue;
            }
            if (manifest.Status != RunStatus.Succeeded || manifest.AsOf > asOf
                || !manifest.Stages.Exists(s => s.Name == stage && s.Status == RunStatus.Succeeded))
            {
                continue;
            }
            if (best is null || manifest.AsOf > best.AsOf || (manifest.AsOf == best.AsOf && manifest.FinishedAt > best.FinishedAt))
            {
                best = manifest;
            }
        }
        return best;
    }

    /// <summary>The manifest of run <paramref name="runId"/> under <paramref name="runs"/>, or null when it has none.</summary>
    public static async Task<RunManifest?> ReadAsync(StorageLocation runs, string runId, CancellationToken cancellationToken = default)
    {
        var location = runs.Child(runId).Child(RunManifest.FileName);
        return await location.Store.GetAsync(location.Key, cancellationToken) is { } bytes ? RunManifest.Parse(bytes) : null;
    }
}
