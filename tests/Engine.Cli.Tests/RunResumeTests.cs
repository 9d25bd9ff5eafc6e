using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Engine.TestKit;

namespace Engine.Cli.Tests;

/// <summary>
/// A nightly run killed at random points and started again with the same run id resumes from its last completed
/// stage and ends with exactly the outputs of a run that was never interrupted; no kill leaves a manifest that claims
/// more than was done.
/// </summary>
public sealed class RunResumeTests
{
    private static readonly (string RunId, string AsOf)[] Nights = [("night1", "2026-11-01"), ("night2", "2026-11-02")];

    /// <summary>Where a kill is aimed: shortly after the log line that starts a stage (or ends the stages, for delivery).</summary>
    private static readonly string[] KillPoints =
    [
        "Stage ingest started", "Stage identity started", "Stage profiles started", "Stage scores started", "Stage segments started", " succeeded in ",
    ];

    [Fact]
    public async Task A_run_killed_at_random_points_and_started_again_ends_with_the_outputs_of_an_uninterrupted_run()
    {
        var cancel = TestContext.Current.CancellationToken;
        using var dir = new TempDirectory("resume");
        var reference = dir.Combine("reference");
        var killed = dir.Combine("killed");
        Check(await CliHarness.RunAsync("init", reference));
        Check(await CliHarness.RunAsync("generate", "--people", "2000", "--seed", "7", "--days", "120", "--out", Path.Combine(reference, "data")));
        // Few cancellations among 2,000 people: lower the minimum so that the churn model trains (and the registry is
        // written mid-run, which a resumed run must not do twice).
        await File.AppendAllTextAsync(Path.Combine(reference, "models", "churn.yaml"), "min_positives: 5\n", cancel);
        CopyDirectory(reference, killed);

        foreach (var (runId, asOf) in Nights)
        {
            Check(await CliHarness.RunAsync("run", "--workspace", reference, "--run-id", runId, "--as-of", asOf, "--deliver"));
        }

        // Each night is killed shortly after four of the points, each after a random delay, then run to the end. The points
        // go in pipeline order: a resumed attempt logs only the stages it runs, so a point behind it would never come.
        var seed = Random.Shared.Next();
        var random = new Random(seed);
        var log = dir.Combine("run.log");
        var history = new List<string>();
        foreach (var (runId, asOf) in Nights)
        {
            var points = KillPoints.Select((p, i) => (p, i)).OrderBy(_ => random.Next()).Take(4).OrderBy(p => p.i).Select(p => p.p).ToList();
            foreach (var point in points)
            {
                var delay = TimeSpan.FromMilliseconds(random.Next(0, 400));
                var outcome = await RunAndKillAsync(killed, runId, asOf, point, delay, log, cancel);
                history.Add($"{runId}: kill {delay.TotalMilliseconds} ms after '{point.Trim()}': {outcome}");
                AssertManifestClaimsNoMoreThanDone(killed, runId, string.Join("\n", history));
            }
            var final = await RunAndKillAsync(killed, runId, asOf, null, TimeSpan.Zero, log, cancel);
            Assert.True(final == "exit 0", $"{final}\nseed {seed}\n{string.Join("\n", history)}\n{await File.ReadAllTextAsync(log, cancel)}");
        }

        var context = $"seed {seed}\n{string.Join("\n", history)}";
        var attempts = 0;
        var reused = 0;
        foreach (var (runId, _) in Nights)
        {
            var manifest = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(killed, "output", "runs", runId, "manifest.json"), cancel))!;
            attempts += manifest["attempts"]!.GetValue<int>();
            reused += manifest["stages"]!.AsArray().Count(s => s!["attempt"]!.GetValue<int>() < manifest["attempts"]!.GetValue<int>());
            Assert.False(File.Exists(Path.Combine(killed, "output", "runs", runId, "checkpoint.json")), $"{runId}: the checkpoint outlived the run");
            AssertSameRun(reference, killed, runId, context);
        }
        Assert.True(attempts > Nights.Length, $"no run was ever resumed: {context}");
        Assert.True(reused > 0, $"no resumed run reused a stage: {context}");
        AssertSameRegistry(reference, killed, context);
        TestContext.Current.SendDiagnosticMessage($"{attempts} attempts over {Nights.Length} nights, {reused} stages reused; {context}");
    }

    /// <summary>
    /// Runs <c>engine run --deliver</c> as a child process; with a kill point, kills it <paramref name="delay"/> after
    /// the first log line containing it. Returns what happened.
    /// </summary>
    private static async Task<string> RunAndKillAsync(string workspace, string runId, string asOf, string? point, TimeSpan delay, string log, CancellationToken cancel)
    {
        var info = new ProcessStartInfo(Path.Combine(AppContext.BaseDirectory, "Engine.Cli"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { "run", "--workspace", workspace, "--run-id", runId, "--as-of", asOf, "--deliver" })
        {
            info.ArgumentList.Add(arg);
        }
        var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var process = new Process { StartInfo = info };
        void OnLine(string? line)
        {
            if (line is null)
            {
                return;
            }
            lock (Gate)
            {
                File.AppendAllText(log, line + "\n");
            }
            if (point is not null && line.Contains(point, StringComparison.Ordinal))
            {
                reached.TrySetResult();
            }
        }
        process.OutputDataReceived += (_, e) => OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => OnLine(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var exited = process.WaitForExitAsync(cancel);
        if (point is not null && await Task.WhenAny(reached.Task, exited) == reached.Task)
        {
            await Task.WhenAny(Task.Delay(delay, cancel), exited);
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync(cancel);
                return "killed";
            }
        }
        await process.WaitForExitAsync(cancel);
        return $"exit {process.ExitCode}";
    }

    private static readonly Lock Gate = new();

    /// <summary>After a kill: no manifest, or one whose every claimed stage output is committed.</summary>
    private static void AssertManifestClaimsNoMoreThanDone(string workspace, string runId, string context)
    {
        var run = Path.Combine(workspace, "output", "runs", runId);
        var path = Path.Combine(run, "manifest.json");
        if (!File.Exists(path))
        {
            return;
        }
        var manifest = JsonNode.Parse(File.ReadAllText(path))!;
        Assert.True(manifest["status"]!.GetValue<string>() == "succeeded", $"a kill left a manifest with status {manifest["status"]}\n{context}");
        foreach (var folder in new[] { "identity", "profiles", "segments", "deltas" })
        {
            Assert.True(File.Exists(Path.Combine(run, folder, "_dataset.json")), $"the manifest says succeeded but {folder}/ is not committed\n{context}");
        }
    }

    /// <summary>Every output of the run is the same in both workspaces: datasets row for row, the manifest and run_results.json but for times, the delivery.</summary>
    private static void AssertSameRun(string reference, string killed, string runId, string context)
    {
        var expected = Path.Combine(reference, "output", "runs", runId);
        var actual = Path.Combine(killed, "output", "runs", runId);
        var datasets = Datasets(expected);
        Assert.Equal(datasets, Datasets(actual));
        Assert.Subset(datasets.ToHashSet(StringComparer.Ordinal), new HashSet<string>(["identity", "identity/links", "identity/merges", "profiles", "segments", "deltas"], StringComparer.Ordinal));
        foreach (var dataset in datasets)
        {
            AssertSameRows(Path.Combine(expected, dataset, "*.parquet"), Path.Combine(actual, dataset, "*.parquet"), "*", $"{runId}/{dataset}", context);
        }
        Assert.Equal(Normalised(Path.Combine(expected, "identity", "_state.json"), reference), Normalised(Path.Combine(actual, "identity", "_state.json"), killed));
        Assert.Equal(Normalised(Path.Combine(expected, "manifest.json"), reference), Normalised(Path.Combine(actual, "manifest.json"), killed));
        Assert.Equal(Normalised(Path.Combine(expected, "run_results.json"), reference), Normalised(Path.Combine(actual, "run_results.json"), killed));

        // Delivery: one event per record with the same outcome, and the same rows in the destinations' files.
        AssertSameRows(
            Path.Combine(reference, "output", "deliveries", runId, "events", "*.parquet"), Path.Combine(killed, "output", "deliveries", runId, "events", "*.parquet"),
            "destination, segment, profile_id, change, outcome, reason, run_id, key", $"{runId} delivery events", context);
        var deliveryReport = Path.Combine("output", "deliveries", runId, "report.json");
        Assert.Equal(Normalised(Path.Combine(reference, deliveryReport), reference), Normalised(Path.Combine(killed, deliveryReport), killed));
        AssertSameRows(Path.Combine(reference, "output", "exports", "crm", runId, "*.parquet"), Path.Combine(killed, "output", "exports", "crm", runId, "*.parquet"), "*", $"{runId} crm export", context);
        AssertSameRows(Path.Combine(reference, "output", "exports", "email_audiences", runId, "*.csv"), Path.Combine(killed, "output", "exports", "email_audiences", runId, "*.csv"), "*", $"{runId} email export", context);
    }

    private static void AssertSameRegistry(string reference, string killed, string context)
    {
        var folder = Path.Combine("output", "models", "churn");
        var versions = Directory.GetDirectories(Path.Combine(reference, folder)).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(versions, Directory.GetDirectories(Path.Combine(killed, folder)).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList());
        Assert.Equal(File.ReadAllText(Path.Combine(reference, folder, "current.json")), File.ReadAllText(Path.Combine(killed, folder, "current.json")));
        foreach (var version in versions)
        {
            var file = Path.Combine(folder, version!, "model.json");
            Assert.True(Normalised(Path.Combine(reference, file), reference) == Normalised(Path.Combine(killed, file), killed), $"model version {version} differs\n{context}");
        }
    }

    /// <summary>The committed datasets under a run folder, as paths relative to it.</summary>
    private static List<string> Datasets(string run) =>
        [.. Directory.GetFiles(run, "_dataset.json", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(run, Path.GetDirectoryName(f)!).Replace('\\', '/'))
            .Order(StringComparer.Ordinal)];

    private static void AssertSameRows(string expected, string actual, string columns, string what, string context)
    {
        var read = expected.EndsWith(".csv", StringComparison.Ordinal) ? "read_csv" : "read_parquet";
        var sql = $"""
            WITH e AS (SELECT {columns} FROM {read}('{expected}')), a AS (SELECT {columns} FROM {read}('{actual}'))
            SELECT (SELECT count(*) FROM e), (SELECT count(*) FROM a),
                   (SELECT count(*) FROM (SELECT * FROM e EXCEPT ALL SELECT * FROM a)),
                   (SELECT count(*) FROM (SELECT * FROM a EXCEPT ALL SELECT * FROM e))
            """;
        var row = DuckDb.Rows(sql).Single().Select(v => Convert.ToInt64(v, CultureInfo.InvariantCulture)).ToArray();
        Assert.True(row[0] == row[1] && row[2] == 0 && row[3] == 0,
            $"{what}: {row[0]} rows uninterrupted, {row[1]} after the kills; {row[2]} only in the first, {row[3]} only in the second\n{context}");
    }

    /// <summary>A JSON file without what differs between two runs of the same work: times, durations, attempts and the workspace's own path.</summary>
    private static string Normalised(string path, string workspace)
    {
        var node = JsonNode.Parse(File.ReadAllText(path).Replace(workspace.TrimStart('/'), "WS", StringComparison.Ordinal))!;
        Strip(node);
        return node.ToJsonString();

        static void Strip(JsonNode? node)
        {
            switch (node)
            {
                case JsonObject obj:
                    foreach (var key in obj.Select(p => p.Key).ToList())
                    {
                        if (Volatile(key))
                        {
                            obj.Remove(key);
                        }
                        else
                        {
                            Strip(obj[key]);
                        }
                    }
                    break;
                case JsonArray array:
                    foreach (var item in array)
                    {
                        Strip(item);
                    }
                    break;
            }
        }

        static bool Volatile(string key) =>
            key is "seconds" or "attempts" or "attempt" or "peak_memory_bytes" or "retried" or "seconds_to_delivery"
                || key.EndsWith("_at", StringComparison.Ordinal) || key.EndsWith("_ms", StringComparison.Ordinal) || key.EndsWith("_seconds", StringComparison.Ordinal);
    }

    private static void CopyDirectory(string from, string to)
    {
        foreach (var directory in Directory.GetDirectories(from, "*", SearchOption.AllDirectories))
        {
            Directory.CreateDirectory(directory.Replace(from, to, StringComparison.Ordinal));
        }
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from, "*", SearchOption.AllDirectories))
        {
            File.Copy(file, file.Replace(from, to, StringComparison.Ordinal));
        }
    }

    private static void Check((int ExitCode, string Output, string Error) result) => Assert.True(result.ExitCode == 0, result.Error + result.Output);
}
