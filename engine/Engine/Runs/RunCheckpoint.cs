using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using Engine.Storage;
using Engine.Workspaces;

namespace Engine.Runs;

/// <summary>
/// <c>checkpoint.json</c> in a run's folder while the run is unfinished: the manifest so far (status
/// <c>running</c>), rewritten after every stage whose output is committed. A run started again with the same id
/// resumes from it: the stages it lists are not run again, their outputs are read back. It is deleted once the run
/// succeeds (the manifest says everything it said); a failed run keeps it, so that the run can be resumed once the
/// cause is fixed. It is not a manifest: readers of runs never look at it.
/// </summary>
public sealed class RunCheckpoint
{
    public const string FileName = "checkpoint.json";

    /// <summary>The status a checkpoint's manifest carries.</summary>
    public const string Running = "running";

    /// <summary>A hash of the workspace files the stages read (see <see cref="DefinitionHashOf"/>).</summary>
    [JsonPropertyName("definition_hash")] public string DefinitionHash { get; set; } = "";

    /// <summary>The manifest as it stood after the last completed stage: its stages are those whose output is committed.</summary>
    [JsonPropertyName("manifest")] public RunManifest Manifest { get; set; } = new();

    /// <summary>The stages whose output is committed, in run order.</summary>
    [JsonIgnore] public IEnumerable<string> Completed => Manifest.Stages.Select(s => s.Name);

    public static async Task<RunCheckpoint?> ReadAsync(StorageLocation run, CancellationToken cancellationToken)
    {
        var location = run.Child(FileName);
        if (await location.Store.GetAsync(location.Key, cancellationToken) is not { } bytes)
        {
            return null;
        }
        try
        {
            return JsonSerializer.Deserialize(bytes, RunCheckpointJsonContext.Default.RunCheckpoint)
                ?? throw new JsonException("empty");
        }
        catch (JsonException e)
        {
            throw new EngineException($"{location}: the checkpoint of an unfinished run cannot be read ({e.Message}); remove it to run this run id from the start");
        }
    }

    /// <summary>Writes the checkpoint, replacing the previous one in one step.</summary>
    public Task WriteAsync(StorageLocation run, CancellationToken cancellationToken)
    {
        var location = run.Child(FileName);
        return location.Store.PutAsync(location.Key, JsonSerializer.SerializeToUtf8Bytes(this, RunCheckpointJsonContext.Default.RunCheckpoint), cancellationToken);
    }

    public static Task DeleteAsync(StorageLocation run, CancellationToken cancellationToken)
    {
        var location = run.Child(FileName);
        return location.Store.DeleteAsync([location.Key], cancellationToken);
    }

    /// <summary>
    /// A hash of every file of the workspace that the stages read: <c>workspace.yaml</c>, <c>identity.yaml</c>,
    /// <c>profiles.yaml</c> and the files under <c>sources/</c>, <c>segments/</c> and <c>models/</c> (names and
    /// bytes). A resumed run reuses the outputs of stages already done, so it must run the definition they were
    /// made with.
    /// </summary>
    public static string DefinitionHashOf(Workspace workspace)
    {
        ArgumentNullException.ThrowIfNull(workspace);
        var files = new List<string>();
        foreach (var file in new[] { Workspace.FileName, Identity.IdentityRules.FileName, Profiles.ProfilesDefinition.FileName })
        {
            if (File.Exists(Path.Combine(workspace.Directory, file)))
            {
                files.Add(file);
            }
        }
        foreach (var folder in new[] { "sources", "segments", "models" })
        {
            var path = Path.Combine(workspace.Directory, folder);
            if (Directory.Exists(path))
            {
                files.AddRange(Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories)
                    .Select(f => Path.GetRelativePath(workspace.Directory, f).Replace('\\', '/'))
                    .Where(f => !f.Split('/').Any(part => part.StartsWith('.'))));
            }
        }
        files.Sort(StringComparer.Ordinal);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var file in files)
        {
            hash.AppendData(System.Text.Encoding.UTF8.GetBytes(file + "\n"));
            var bytes = File.ReadAllBytes(Path.Combine(workspace.Directory, file));
            hash.AppendData(BitConverter.GetBytes((long)bytes.Length));
            hash.AppendData(bytes);
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset())[..16];
    }
}

[JsonSourceGenerationOptions(WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(RunCheckpoint))]
internal sealed partial class RunCheckpointJsonContext : JsonSerializerContext;
