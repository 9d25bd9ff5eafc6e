using System.Text.Json;
using Engine.TestKit;

namespace Engine.Cli.Tests;

/// <summary>`engine run`: the ingest stage over good and bad inputs, and the manifest it leaves.</summary>
public class RunCommandTests
{
    private static JsonElement ReadManifest(string path) => JsonDocument.Parse(File.ReadAllBytes(path)).RootElement;

    [Fact]
    public async Task A_second_run_on_a_workspace_while_one_is_running_is_refused()
    {
        using var ws = new SmallWorkspace();
        await SmallDatasets.WriteEventsAsync(ws.Events, rows: 100, rowGroupRows: 100);
        var runs = ws.Combine("output", "runs");
        Directory.CreateDirectory(runs);
        // A run in progress holds the workspace's run lock.
        using (new FileStream(Path.Combine(runs, ".lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None))
        {
            var (code, _, error) = await CliHarness.RunAsync("run", "--workspace", ws.Path, "--run-id", "second");
            Assert.Equal(1, code);
            Assert.Contains("another run is in progress on workspace", error, StringComparison.Ordinal);
            Assert.False(Directory.Exists(Path.Combine(runs, "second")), "the refused run wrote nothing");
        }
        // Once the first run is over, the next one goes ahead.
        Assert.Equal(0, (await CliHarness.RunAsync("run", "--workspace", ws.Path, "--run-id", "third")).ExitCode);
    }

    [Fact]
    public async Task Run_reads_every_row_and_writes_the_manifest_last()
    {
        using var ws = new SmallWorkspace();
        await SmallDatasets.WriteEventsAsync(ws.Events, rows: 5000, rowGroupRows: 1000);

        var (code, output, error) = await CliHarness.RunAsync("run", "--workspace", ws.Path, "--run-id", "night-1", "--as-of", "2026-02-01");

        Assert.True(code == 0, error);
        Assert.Contains("night-1 succeeded", output, StringComparison.Ordinal);
        var manifest = ReadManifest(ws.Manifest("night-1"));
        Assert.Equal("night-1", manifest.GetProperty("run_id").GetString());
        Assert.Equal("succeeded", manifest.GetProperty("status").GetString());
        Assert.Equal(new DateTimeOffset(2026, 2, 1, 0, 0, 0, TimeSpan.Zero), manifest.GetProperty("as_of").GetDateTimeOffset());
        var input = manifest.GetProperty("inputs")[0];
        Assert.Equal(5000, input.GetProperty("rows").GetInt64());
        Assert.Equal(1667, input.GetProperty("null_counts").GetProperty("email").GetInt64()); // every third row
        Assert.Equal(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero), input.GetProperty("min_ts").GetDateTimeOffset());
        Assert.Equal(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero).AddMinutes(4999), input.GetProperty("max_ts").GetDateTimeOffset());
        var ingest = manifest.GetProperty("stages")[0];
        Assert.Equal("ingest", ingest.GetProperty("name").GetString());
        Assert.Equal(5000, ingest.GetProperty("rows_out").GetInt64());
        // The figures came from the file's footer: the manifest counts it, run_results.json and the summary say so.
        Assert.Equal((1, 0), (ingest.GetProperty("counts").GetProperty("files_from_footer").GetInt64(), ingest.GetProperty("counts").GetProperty("files_scanned").GetInt64()));
        Assert.Contains("│ 1 file(s) checked at their footers, 0 scanned", output, StringComparison.Ordinal);
        // Nothing but the manifest, run_results.json and the run report is left in the run folder by the ingest
        // stage, and no temporary files anywhere.
        Assert.Equal(["manifest.json", "report.html", "report.json", "run_results.json"], Directory.GetFiles(ws.Combine("output", "runs", "night-1")).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        var results = JsonDocument.Parse(File.ReadAllBytes(ws.Combine("output", "runs", "night-1", "run_results.json"))).RootElement;
        Assert.Equal("succeeded", results.GetProperty("status").GetString());
        Assert.Equal(5000, results.GetProperty("results")[0].GetProperty("rows_out").GetInt64());
        Assert.Equal("events: 1 file(s) checked at their footers, 0 scanned", results.GetProperty("results")[0].GetProperty("message").GetString());
        Assert.Empty(Directory.GetFiles(ws.Path, ".*", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task Logs_go_to_stderr_and_results_to_stdout()
    {
        using var ws = new SmallWorkspace();
        await SmallDatasets.WriteEventsAsync(ws.Events, rows: 10);
        var (code, output, error) = await CliHarness.RunAsync("run", "--workspace", ws.Path, "--run-id", "r1");
        Assert.Equal(0, code);
        Assert.Contains("info  Stage ingest finished", error, StringComparison.Ordinal);
        Assert.DoesNotContain("info ", output, StringComparison.Ordinal);
        Assert.DoesNotContain("@example.com", error + output, StringComparison.Ordinal); // never print identifiers
    }

    [Fact]
    public async Task Missing_dataset_fails_with_one_line_naming_it()
    {
        using var ws = new SmallWorkspace();
        var (code, output, error) = await CliHarness.RunAsync("run", "--workspace", ws.Path, "--run-id", "r1");
        Assert.Equal(1, code);
        var line = SingleErrorLine(error);
        Assert.Contains(ws.Events, line, StringComparison.Ordinal);
        Assert.Contains("dataset not found", line, StringComparison.Ordinal);
        Assert.Contains("sources/events.yaml", line, StringComparison.Ordinal);
        Assert.DoesNotContain(" at Engine.", error, StringComparison.Ordinal); // no stack trace without --verbose
        Assert.DoesNotContain("succeeded", output, StringComparison.Ordinal);
        // The run is recorded as failed, never as done.
        Assert.Equal("failed", ReadManifest(ws.Manifest("r1")).GetProperty("status").GetString());
    }

    [Fact]
    public async Task Verbose_adds_the_stack_trace()
    {
        using var ws = new SmallWorkspace();
        var (code, _, error) = await CliHarness.RunAsync("run", "--workspace", ws.Path, "--verbose");
        Assert.Equal(1, code);
        Assert.Contains(" at Engine.", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_file_that_is_not_Parquet_is_named()
    {
        using var ws = new SmallWorkspace();
        Directory.CreateDirectory(ws.Events);
        var bad = Path.Combine(ws.Events, "part-0.parquet");
        await File.WriteAllTextAsync(bad, "event_id,ts\ne1,2026-01-01\n", TestContext.Current.CancellationToken);
        var (code, _, error) = await CliHarness.RunAsync("run", "--workspace", ws.Path);
        Assert.Equal(1, code);
        var line = SingleErrorLine(error);
        Assert.StartsWith($"error: {bad}: not a Parquet file", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_truncated_Parquet_file_is_named()
    {
        using var ws = new SmallWorkspace();
        await SmallDatasets.WriteEventsAsync(ws.Events, rows: 2000);
        var file = Directory.GetFiles(ws.Events, "*.parquet").Single();
        var bytes = await File.ReadAllBytesAsync(file, TestContext.Current.CancellationToken);
        await File.WriteAllBytesAsync(file, bytes[..(bytes.Length / 2)], TestContext.Current.CancellationToken);
        var (code, _, error) = await CliHarness.RunAsync("run", "--workspace", ws.Path);
        Assert.Equal(1, code);
        var line = SingleErrorLine(error);
        Assert.Contains($"{file}: ", line, StringComparison.Ordinal);
        Assert.Contains("truncated", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_missing_column_is_named_with_its_file()
    {
        using var ws = new SmallWorkspace();
        await SmallDatasets.WriteEventsAsync(ws.Events, rows: 10, dropEmail: true);
        var (code, _, error) = await CliHarness.RunAsync("run", "--workspace", ws.Path);
        Assert.Equal(1, code);
        var line = SingleErrorLine(error);
        Assert.Contains("part-00000.parquet: missing column 'email'", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_column_of_the_wrong_type_is_named_with_both_types()
    {
        using var ws = new SmallWorkspace();
        await SmallDatasets.WriteEventsAsync(ws.Events, rows: 10, revenueAsString: true);
        var (code, _, error) = await CliHarness.RunAsync("run", "--workspace", ws.Path);
        Assert.Equal(1, code);
        var line = SingleErrorLine(error);
        Assert.Contains("part-00000.parquet: column 'revenue' is utf8, but the workspace declares it double", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_null_in_a_required_column_is_named_with_its_row()
    {
        using var ws = new SmallWorkspace();
        await SmallDatasets.WriteEventsAsync(ws.Events, rows: 3000, nullEventIdAt: 2500, rowGroupRows: 1000);
        var (code, _, error) = await CliHarness.RunAsync("run", "--workspace", ws.Path);
        Assert.Equal(1, code);
        var line = SingleErrorLine(error);
        Assert.Contains("part-00000.parquet: row index 2500: required column 'event_id' is null", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_invalid_run_id_is_refused()
    {
        using var ws = new SmallWorkspace();
        await SmallDatasets.WriteEventsAsync(ws.Events, rows: 10);
        var (code, _, error) = await CliHarness.RunAsync("run", "--workspace", ws.Path, "--run-id", "../escape");
        Assert.Equal(1, code);
        Assert.Contains("invalid run id", SingleErrorLine(error), StringComparison.Ordinal);
        Assert.False(Directory.Exists(ws.Combine("output")));
    }

    private static string SingleErrorLine(string error)
    {
        var lines = error.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l.StartsWith("error: ", StringComparison.Ordinal)).ToList();
        Assert.Single(lines);
        return lines[0];
    }
}
