using Engine.TestKit;

namespace Engine.Cli.Tests;

/// <summary>A workspace folder with one events source at data/events, written by hand for a test.</summary>
internal sealed class SmallWorkspace : IDisposable
{
    private readonly TempDirectory _dir = new("ws");

    public SmallWorkspace(string? sourceYaml = null)
    {
        File.WriteAllText(Combine("workspace.yaml"), "name: small\nversion: 1\noutput: output\n");
        Directory.CreateDirectory(Combine("sources"));
        File.WriteAllText(Combine("sources", "events.yaml"), sourceYaml ?? SmallDatasets.EventsSourceYaml);
    }

    public string Path => _dir.Path;

    public string Events => Combine("data", "events");

    public string Combine(params string[] parts) => _dir.Combine(parts);

    public string Manifest(string runId) => Combine("output", "runs", runId, "manifest.json");

    public void Dispose() => _dir.Dispose();
}
