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
        foreach (var manifest in await ListAsync(runs, cancellationToken))
        {
            if (manifest.RunId == runId || manifest.Status != RunStatus.Succeeded || manifest.AsOf > asOf
                || !manifest.Stages.Exists(s => s.Name == stage && s.Status == RunStatus.Succeeded))
            {
                continue;
            }
            // The list is in run order; on an exact tie the first (lowest run id) stays, as it always has.
            if (best is null || manifest.AsOf > best.AsOf || (manifest.AsOf == best.AsOf && manifest.FinishedAt > best.FinishedAt))
            {
                best = manifest;
            }
        }
        return best;
    }

    /// <summary>
    /// Every run under <paramref name="runs"/> that has a manifest, whatever its status, ordered by as-of time, then
    /// finish time, then run id. A manifest that cannot be parsed is skipped (a run whose manifest is damaged is not
    /// trusted).
    /// </summary>
    public static async Task<IReadOnlyList<RunManifest>> ListAsync(StorageLocation runs, CancellationToken cancellationToken = default)
    {
        var manifests = new List<RunManifest>();
        var prefix = runs.Key.TrimEnd('/');
        var folder = prefix.Length == 0 ? "" : prefix + "/";
        foreach (var item in await runs.Store.ListAsync(prefix, cancellationToken))
        {
            var relative = item.Key[folder.Length..];
            var slash = relative.IndexOf('/', StringComparison.Ordinal);
            if (slash <= 0 || relative[(slash + 1)..] != RunManifest.FileName)
            {
                continue;
            }
            var bytes = await runs.Store.GetAsync(item.Key, cancellationToken);
            if (bytes is null)
            {
                continue;
            }
            try
            {
                var manifest = RunManifest.Parse(bytes);
                // The folder names the run: a manifest copied under another name is listed under its folder's.
                manifest.RunId = relative[..slash];
                manifests.Add(manifest);
            }
            catch (Exception e) when (e is System.Text.Json.JsonException or EngineException)
            {
            }
        }
        manifests.Sort((a, b) => a.AsOf != b.AsOf ? a.AsOf.CompareTo(b.AsOf)
            : a.FinishedAt != b.FinishedAt ? a.FinishedAt.CompareTo(b.FinishedAt)
            : string.CompareOrdinal(a.RunId, b.RunId));
        return manifests;
    }

    /// <summary>The manifest of run <paramref name="runId"/> under <paramref name="runs"/>, or null when it has none.</summary>
    public static async Task<RunManifest?> ReadAsync(StorageLocation runs, string runId, CancellationToken cancellationToken = default)
    {
        var location = runs.Child(runId).Child(RunManifest.FileName);
        return await location.Store.GetAsync(location.Key, cancellationToken) is { } bytes ? RunManifest.Parse(bytes) : null;
    }
}
