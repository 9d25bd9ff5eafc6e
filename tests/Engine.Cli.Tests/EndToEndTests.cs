using System.Text.Json;
using Engine.TestKit;

namespace Engine.Cli.Tests;

/// <summary>The newcomer's path through the command line: init, generate, validate, run.</summary>
public class EndToEndTests
{
    [Fact]
    public async Task Init_generate_validate_run_on_the_embedded_default()
    {
        using var dir = new TempDirectory("e2e");
        var ws = dir.Combine("demo");
        Assert.Equal(0, (await CliHarness.RunAsync("init", ws)).ExitCode);

        var (code, output, error) = await CliHarness.RunAsync("generate", "--people", "2000", "--seed", "7", "--days", "120", "--out", Path.Combine(ws, "data"));
        Assert.True(code == 0, error);
        Assert.Contains("Generated 2,000 people (seed 7, 120 days", output, StringComparison.Ordinal);
        foreach (var dataset in new[] { "events", "profiles", "consent", "truth" })
        {
            Assert.True(File.Exists(Path.Combine(ws, "data", dataset, "_dataset.json")), dataset);
        }

        (code, _, error) = await CliHarness.RunAsync("validate", "--workspace", ws);
        Assert.True(code == 0, error);

        (code, output, error) = await CliHarness.RunAsync("run", "--workspace", ws, "--run-id", "first");
        Assert.True(code == 0, error);
        Assert.Contains("Run first succeeded", output, StringComparison.Ordinal);

        var manifest = JsonDocument.Parse(await File.ReadAllBytesAsync(Path.Combine(ws, "output", "runs", "first", "manifest.json"), TestContext.Current.CancellationToken)).RootElement;
        var inputs = manifest.GetProperty("inputs").EnumerateArray().ToDictionary(i => i.GetProperty("source").GetString()!, i => i.GetProperty("rows").GetInt64());
        Assert.Equal(["consent", "events", "profiles"], inputs.Keys.Order());
        // Every row the generator wrote was read by ingest.
        foreach (var (source, rows) in inputs)
        {
            var written = JsonDocument.Parse(await File.ReadAllBytesAsync(Path.Combine(ws, "data", source, "_dataset.json"), TestContext.Current.CancellationToken)).RootElement.GetProperty("rows").GetInt64();
            Assert.Equal(written, rows);
            Assert.True(rows > 0, source);
        }
    }
}
