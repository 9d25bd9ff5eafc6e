using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Engine.TestKit;

namespace Engine.Cli.Tests;

/// <summary>
/// <c>make run</c>, twice, as a newcomer runs it on a fresh clone, on 3,000 people: the very script the Makefile runs
/// (<c>scripts/demo-night.sh</c>, with the command line and the webhook receiver this build made), so the first
/// night writes the workspace, generates, runs and delivers to the file exports and the local webhook receiver, and
/// the second appends a day and runs incrementally. The second night's report is checked in headless Chromium with
/// <see cref="RunReportTests"/>' checker, and what the destinations got is compared with the runs' deltas.
/// </summary>
public sealed class MakeRunTests
{
    private const string Secret = "make-run-test-secret";

    [Fact]
    public async Task Two_nights_of_make_run_deliver_everything_then_only_the_changes_and_the_report_shows_the_runs_numbers()
    {
        var cancellationToken = TestContext.Current.CancellationToken;
        using var dir = new TempDirectory("make-run");
        var demo = dir.Combine("demo");
        var output = Path.Combine(demo, "output");
        var port = FreePort();

        var first = await NightAsync(demo, port, cancellationToken);
        Assert.Contains("make run: the first night (as of 2026-11-01)", first, StringComparison.Ordinal);
        var second = await NightAsync(demo, port, cancellationToken);
        Assert.Contains("make run: the next night (as of 2026-11-02)", second, StringComparison.Ordinal);

        var runs = Directory.GetDirectories(Path.Combine(output, "runs")).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(2, runs.Length);
        var (night1, night2) = (runs[0]!, runs[1]!);
        // Each night ends with the summary and the report's path.
        foreach (var (printed, run) in new[] { (first, night1), (second, night2) })
        {
            var report = Path.Combine(output, "runs", run, "report.html");
            Assert.Contains($"Report: {report}", printed, StringComparison.Ordinal);
            // A model that scored nothing tonight (too few examples at this size) is said to be so, not to be "trained before curves".
            var scores = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(output, "runs", run, "manifest.json")))!["scores"]!["models"]!["churn"]!;
            if (scores["version"] is null)
            {
                Assert.Contains("No version scored tonight, so there is no ROC curve to show", File.ReadAllText(report), StringComparison.Ordinal);
            }
            foreach (var table in (string[])["stages", "segments", "delivery"])
            {
                Assert.Contains($" {table} ", printed, StringComparison.Ordinal);
            }
            Assert.Contains($"POST http://127.0.0.1:{port}/hooks/engine", printed, StringComparison.Ordinal);
            // The delivery table names each file export's folder (here a long temporary path, which the table may wrap).
            Assert.Contains("(parquet)", printed, StringComparison.Ordinal);
            Assert.Contains("(csv)", printed, StringComparison.Ordinal);
            Assert.True(Directory.Exists(Path.Combine(output, "exports", "email_audiences", run)));
            Assert.Matches(@"webhook receiver: [0-9,]+ records in [0-9,]+ batch", printed);
        }

        // The second night read one new day of data and continued the first night's identity graph and segments.
        var manifest = JsonNode.Parse(await File.ReadAllBytesAsync(Path.Combine(output, "runs", night2, "manifest.json"), cancellationToken))!;
        Assert.Equal(new DateTimeOffset(2026, 11, 2, 0, 0, 0, TimeSpan.Zero), manifest["as_of"]!.GetValue<DateTimeOffset>());
        Assert.Equal("incremental", manifest["identity"]!["mode"]!.GetValue<string>());
        Assert.Equal($"2 new file(s) since run {night1}", manifest["identity"]!["mode_reason"]!.GetValue<string>());
        Assert.Contains($"incremental: 2 new file(s) since run {night1}", second, StringComparison.Ordinal);
        Assert.Equal(night1, manifest["segments"]!["previous_run_id"]!.GetValue<string>());
        Assert.True(File.Exists(Path.Combine(demo, "data", "events", "day-2026-11-01", "part-00000.parquet")));

        // Night 1 delivered whole segments; night 2 exactly its deltas, no more, to every destination.
        string Events(string run) => Path.Combine(output, "deliveries", run, "events", "*.parquet");
        string Deltas(string run) => Path.Combine(output, "runs", run, "deltas", "**", "*.parquet");
        Assert.Equal(0L, Count($"SELECT count(*) FROM read_parquet('{Events(night2)}') e ANTI JOIN read_parquet('{Deltas(night2)}') d USING (segment, profile_id, change)"));
        var destinations = Directory.GetFiles(Path.Combine(demo, "destinations"), "*.yaml").Select(Path.GetFileNameWithoutExtension).ToList();
        Assert.Equal(["crm_export", "email_audiences", "messaging_webhook"], destinations.Order(StringComparer.Ordinal));
        foreach (var destination in destinations)
        {
            var segments = DuckDb.Rows($"SELECT DISTINCT segment FROM read_parquet('{Events(night1)}') WHERE destination = '{destination}'").Select(r => $"'{r[0]}'").ToList();
            Assert.NotEmpty(segments);
            var deltas = Count($"SELECT count(*) FROM read_parquet('{Deltas(night2)}') WHERE segment IN ({string.Join(", ", segments)})");
            var processed = Count($"SELECT count(*) FROM read_parquet('{Events(night2)}') WHERE destination = '{destination}'");
            Assert.True(processed <= deltas, $"{destination}: {processed} records for {deltas} deltas");
        }
        Assert.True(Count($"SELECT count(*) FROM read_parquet('{Events(night2)}')") < Count($"SELECT count(*) FROM read_parquet('{Events(night1)}')"));

        // The webhook receiver holds each delivered record once (signatures checked, no batch applied twice), and
        // exactly the records the delivery events say were delivered to it, night by night.
        var received = Path.Combine(demo, "webhook-receiver", "received.jsonl");
        Assert.True(File.Exists(received));
        var lines = (await File.ReadAllLinesAsync(received, cancellationToken)).Select(l => JsonNode.Parse(l)!).ToList();
        var keys = lines.Select(l => l["record"]!["key"]!.GetValue<string>()).ToList();
        Assert.Equal(keys.Count, keys.Distinct(StringComparer.Ordinal).Count());
        foreach (var run in (string[])[night1, night2])
        {
            var delivered = DuckDb.Rows($"SELECT key FROM read_parquet('{Events(run)}') WHERE destination = 'messaging_webhook' AND outcome = 'delivered'")
                .Select(r => (string)r[0]!).Order(StringComparer.Ordinal).ToList();
            var got = lines.Where(l => l["run_id"]!.GetValue<string>() == run).Select(l => l["record"]!["key"]!.GetValue<string>()).Order(StringComparer.Ordinal).ToList();
            Assert.Equal(delivered, got);
            Assert.NotEmpty(got);
        }
        // The file exports hold what was delivered to them.
        var exported = Count($"SELECT count(*) FROM read_csv('{Path.Combine(output, "exports", "email_audiences", night2, "part-*.csv")}')");
        Assert.Equal(Count($"SELECT count(*) FROM read_parquet('{Events(night2)}') WHERE destination = 'email_audiences' AND outcome = 'delivered'"), exported);

        // The second night's report, in headless Chromium: every figure is the one read from the runs' files.
        await RunReportTests.CheckInChromiumAsync(output, night2, [night1, night2], "make-run-report.png", cancellationToken);
    }

    private static long Count(string sql) => Convert.ToInt64(DuckDb.Rows(sql).Single()[0], CultureInfo.InvariantCulture);

    /// <summary>Runs scripts/demo-night.sh as the Makefile does, with this build's command line and receiver.</summary>
    private static async Task<string> NightAsync(string demo, int port, CancellationToken cancellationToken)
    {
        var root = S3Server.RepositoryRoot();
        // The build's own outputs, of the configuration these tests were built in (bin/<configuration>/net10.0/<rid>/).
        var build = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd('/'));
        var configuration = build.Parent!.Parent!.Name;
        var relative = Path.Combine("bin", configuration, build.Parent.Name, build.Name);
        var start = new ProcessStartInfo("bash") { WorkingDirectory = root, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(Path.Combine(root, "scripts", "demo-night.sh"));
        start.Environment["DEMO"] = demo;
        start.Environment["PEOPLE"] = "3000";
        start.Environment["ENGINE"] = Path.Combine(root, "engine", "Engine.Cli", relative, "Engine.Cli");
        start.Environment["RECEIVER"] = Path.Combine(root, "connectors", "Engine.WebhookReceiver", relative, "Engine.WebhookReceiver");
        start.Environment["WEBHOOK_PORT"] = port.ToString(CultureInfo.InvariantCulture);
        start.Environment["MESSAGING_WEBHOOK_SECRET"] = Secret;
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        try
        {
            await process.WaitForExitAsync(cancellationToken);
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }
        var (text, errors) = (await stdout, await stderr);
        Assert.True(process.ExitCode == 0, $"demo-night.sh exited with {process.ExitCode}\n{text}\n{errors}");
        return text;
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
