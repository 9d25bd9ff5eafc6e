using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Engine.TestKit;

namespace Engine.Cli.Tests;

/// <summary>
/// Two nights of <c>engine init</c>'s workspace on 2,000 generated people, delivered (<c>engine run --deliver</c>),
/// each writing its run report; shared by the tests of this class.
/// </summary>
public sealed class ReportWorkspace : IAsyncLifetime
{
    private readonly TempDirectory _dir = new("run-report");

    public string Path => _dir.Combine("demo");

    public string Output => System.IO.Path.Combine(Path, "output");

    public string RunFolder(string runId) => System.IO.Path.Combine(Output, "runs", runId);

    /// <summary>What <c>engine run</c> printed, per run.</summary>
    public Dictionary<string, string> Printed { get; } = [];

    public async ValueTask InitializeAsync()
    {
        Check(await CliHarness.RunAsync("init", Path));
        Check(await CliHarness.RunAsync("generate", "--people", "2000", "--seed", "7", "--days", "120", "--out", System.IO.Path.Combine(Path, "data")));
        // 2,000 people hold a handful of cancellations, fewer than the churn model's default minimum (50): lower it, so
        // that the model trains (on next to no signal) and the report has a ROC curve to draw.
        await File.AppendAllTextAsync(System.IO.Path.Combine(Path, "models", "churn.yaml"), "min_positives: 5\n");
        // A holdout on the email destination, measured on purchases within a day, and purchases on the morning after
        // night1's as-of time by a third of the customers (the generated history ends at that as-of time): night2's
        // report measures night1's entries against them.
        await File.AppendAllTextAsync(System.IO.Path.Combine(Path, "delivery.yaml"), "outcomes:\n  purchase: { source: events, filter: { type: order_completed }, window_days: 1 }\n");
        var destination = System.IO.Path.Combine(Path, "destinations", "email_audiences.yaml");
        await File.WriteAllTextAsync(destination, (await File.ReadAllTextAsync(destination)).Replace("batch_size: 5000\n", "batch_size: 5000\nholdout: { percent: 20 }\n", StringComparison.Ordinal));
        var events = System.IO.Path.Combine(Path, "data", "events");
        File.Delete(System.IO.Path.Combine(events, "_dataset.json"));
        DuckDb.Rows($"""
            COPY (SELECT 'morning-' || customer_id AS event_id, TIMESTAMPTZ '2026-11-01 06:00:00+00' AS ts, 'order_completed' AS type, NULL::VARCHAR AS anonymous_id,
                         customer_id AS user_id, NULL::VARCHAR AS email, NULL::VARCHAR AS product_id, 40.0::DOUBLE AS revenue, NULL::VARCHAR AS order_id, 1::BIGINT AS quantity,
                         NULL::VARCHAR AS campaign_id, NULL::VARCHAR AS ticket_id, 'app' AS device, NULL::VARCHAR AS detail
                  FROM (SELECT DISTINCT customer_id FROM read_parquet('{System.IO.Path.Combine(Path, "data", "profiles", "**", "*.parquet")}'))
                  WHERE hash(customer_id) % 3 = 0 ORDER BY customer_id)
            TO '{System.IO.Path.Combine(events, "morning-orders.parquet")}' (FORMAT parquet)
            """);
        foreach (var (runId, asOf) in new[] { ("night1", "2026-11-01"), ("night2", "2026-11-02") })
        {
            Printed[runId] = Check(await CliHarness.RunAsync("run", "--workspace", Path, "--run-id", runId, "--as-of", asOf, "--deliver"));
        }
    }

    private static string Check((int ExitCode, string Output, string Error) result)
    {
        Assert.True(result.ExitCode == 0, result.Error + result.Output);
        return result.Output;
    }

    public ValueTask DisposeAsync()
    {
        _dir.Dispose();
        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// The run report: opened in headless Chromium it runs without script errors, fetches nothing, and every figure it
/// shows is the manifest's (or the delivery report's, the registry's, run_results.json's), printed consistently;
/// <c>engine report</c> writes it again for any run.
/// </summary>
public sealed class RunReportTests(ReportWorkspace workspace) : IClassFixture<ReportWorkspace>
{
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    /// <summary>Every element naming a figure, after every sortable table was sorted (so the page's script ran), and the ROC curves drawn.</summary>
    private const string ReadFigures = """
        (() => {
          for (const th of document.querySelectorAll("table.sortable th")) { th.click(); }
          const figures = Array.from(document.querySelectorAll("[data-figure]")).map(e => ({
            name: e.dataset.figure, value: e.dataset.value, text: e.textContent, unit: e.dataset.unit || null }));
          const curves = Array.from(document.querySelectorAll("polyline.roc-curve")).map(p => ({ model: p.dataset.model, points: p.points.numberOfItems }));
          return JSON.stringify({ figures, curves, title: document.title });
        })()
        """;

    [Fact]
    public void A_night_without_new_data_reads_no_file_and_its_output_and_report_say_so()
    {
        // The second night's sources hold the same files as the first's: identity adds nothing, and says so.
        var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(workspace.RunFolder("night2"), "manifest.json")))!;
        Assert.Equal("incremental", manifest["identity"]!["mode"]!.GetValue<string>());
        Assert.Equal(0, manifest["identity"]!["files_read"]!.GetValue<int>());
        Assert.Equal(0, manifest["identity"]!["identifiers_new"]!.GetValue<long>());
        Assert.Contains("No new input since run night1: no file was read tonight", workspace.Printed["night2"], StringComparison.Ordinal);
        Assert.DoesNotContain("No new input", workspace.Printed["night1"], StringComparison.Ordinal);
        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(workspace.RunFolder("night2"), "report.json")))!;
        Assert.Equal(0, report["identity"]!["files_read"]!.GetValue<int>());
        Assert.Contains("No new input since run night1: no file was read tonight", File.ReadAllText(Path.Combine(workspace.RunFolder("night2"), "report.html")), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_report_renders_in_Chromium_without_script_errors_and_shows_the_manifests_numbers()
    {
        var cancellationToken = TestContext.Current.CancellationToken;
        var html = Path.Combine(workspace.RunFolder("night2"), "report.html");
        Assert.Contains($"Report of run night2 (succeeded; ", workspace.Printed["night2"], StringComparison.Ordinal);
        Assert.Contains(html, workspace.Printed["night2"], StringComparison.Ordinal);

        var manifest = Manifest("night2")["scores"]!["models"]!["churn"]!;
        Assert.True(manifest["version"] is not null, $"model churn did not score: {manifest["error"]}");
        var dom = await CheckInChromiumAsync(workspace.Output, "night2", ["night1", "night2"], "report.png", cancellationToken);

        // The ROC curve is the registry's, point for point.
        var version = Manifest("night2")["scores"]!["models"]!["churn"]!["version"]!.GetValue<int>();
        var model = JsonNode.Parse(await File.ReadAllBytesAsync(Path.Combine(workspace.Output, "models", "churn", version.ToString(Invariant), "model.json"), cancellationToken))!;
        var curve = Assert.Single(dom["curves"]!.AsArray());
        Assert.Equal("churn", curve!["model"]!.GetValue<string>());
        Assert.Equal(model["metrics"]!["roc_curve"]!.AsArray().Count, curve["points"]!.GetValue<int>());
        Assert.True(curve["points"]!.GetValue<int>() > 2);
    }

    /// <summary>
    /// Opens run <paramref name="runId"/>'s report.html (under the workspace output <paramref name="output"/>) in headless
    /// Chromium and checks it: no script or console error, nothing loaded but the page, and every <c>data-figure</c> equal
    /// to the value read independently from the run's files (<see cref="Expected(string, string, string[])"/>), shown as
    /// printed. Saves a screenshot to artifacts/test-results/<paramref name="screenshotName"/>; returns what the page's
    /// script read (figures and ROC curves).
    /// </summary>
    internal static async Task<JsonNode> CheckInChromiumAsync(string output, string runId, string[] history, string screenshotName, CancellationToken cancellationToken)
    {
        var html = Path.Combine(output, "runs", runId, "report.html");
        await using var chromium = await HeadlessChromium.StartAsync(cancellationToken);
        var screenshot = Path.Combine(S3Server.RepositoryRoot(), "artifacts", "test-results", screenshotName);
        var page = await chromium.OpenAsync(new Uri(html).AbsoluteUri, ReadFigures, screenshot, cancellationToken: cancellationToken);
        TestContext.Current.TestOutputHelper?.WriteLine($"{chromium.Version}; screenshot: {screenshot}");
        Console.WriteLine($"run report screenshot ({chromium.Version}): {screenshot}");

        Assert.Empty(page.Errors);
        // Self-contained: the page itself is the only thing loaded.
        Assert.Equal([new Uri(html).AbsoluteUri], page.Requests.Distinct());
        Assert.True(new FileInfo(screenshot).Length > 20_000, "the screenshot shows the page");

        var dom = JsonNode.Parse(page.Value)!;
        var shown = dom["figures"]!.AsArray().Select(f => (Name: f!["name"]!.GetValue<string>(), Value: f["value"]!.GetValue<string>(),
            Text: f["text"]!.GetValue<string>(), Unit: f["unit"]?.GetValue<string>())).ToList();
        var expected = Expected(output, runId, history);

        // Every figure the page shows is one of those read from the run's files, and every one of those is shown.
        Assert.Empty(shown.Select(f => f.Name).Distinct().Except(expected.Keys));
        Assert.Empty(expected.Keys.Except(shown.Select(f => f.Name)));
        foreach (var figure in shown)
        {
            var want = expected[figure.Name];
            if (want is double number)
            {
                // The intervals are recomputed here with the same formulas in another order of operations: equal to rounding.
                var tolerance = figure.Name.EndsWith(".lift_low", StringComparison.Ordinal) || figure.Name.EndsWith(".lift_high", StringComparison.Ordinal) ? 1e-12 : 0;
                Assert.True(Math.Abs(double.Parse(figure.Value, Invariant) - number) <= tolerance, $"{figure.Name}: data-value {figure.Value}, expected {number.ToString("R", Invariant)}");
                AssertShownAs(figure.Name, figure.Text, figure.Unit, number);
            }
            else
            {
                Assert.Equal((string)want, figure.Value);
                Assert.Equal((string)want, figure.Text);
            }
        }
        return dom;
    }

    [Fact]
    public async Task Report_json_holds_the_same_figures_and_engine_report_writes_it_again()
    {
        var cancellationToken = TestContext.Current.CancellationToken;
        var folder = workspace.RunFolder("night1");
        File.Delete(Path.Combine(folder, "report.html"));
        File.Delete(Path.Combine(folder, "report.json"));

        var (code, output, error) = await CliHarness.RunAsync("report", "--workspace", workspace.Path, "--run-id", "night1");
        Assert.True(code == 0, error + output);
        Assert.Contains(Path.Combine(folder, "report.html"), output, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(folder, "report.html")));
        var report = JsonNode.Parse(await File.ReadAllBytesAsync(Path.Combine(folder, "report.json"), cancellationToken))!;
        var manifest = Manifest("night1");

        // The history of the first night is that night alone: nothing after it.
        Assert.Equal(["night1"], report["history"]!.AsArray().Select(r => r!["run_id"]!.GetValue<string>()));
        Assert.True(JsonNode.DeepEquals(manifest["identity"]!["profile_sizes"], report["identity"]!["profile_sizes"]));
        Assert.True(JsonNode.DeepEquals(manifest["identity"]!["links_refused"], report["identity"]!["links_refused"]));
        Assert.True(JsonNode.DeepEquals(manifest["scores"]!["models"]!["churn"]!["histogram"], report["scores"]!["churn"]!["histogram"]));
        var delivery = JsonNode.Parse(await File.ReadAllBytesAsync(Path.Combine(workspace.Output, "deliveries", "night1", "report.json"), cancellationToken))!;
        Assert.True(JsonNode.DeepEquals(delivery["destinations"], report["delivery"]!["destinations"]));
        foreach (var segment in manifest["segments"]!["segments"]!.AsArray())
        {
            var name = segment!["name"]!.GetValue<string>();
            var reported = report["segments"]!.AsArray().Single(s => s!["name"]!.GetValue<string>() == name)!;
            foreach (var field in (string[])["members", "entered", "exited"])
            {
                Assert.Equal(segment[field]!.GetValue<long>(), reported[field]!.GetValue<long>());
            }
        }
        var results = JsonNode.Parse(await File.ReadAllBytesAsync(Path.Combine(folder, "run_results.json"), cancellationToken))!["results"]!.AsArray();
        Assert.Equal(results.Count, report["stages"]!.AsArray().Count);
        foreach (var (stage, reported) in results.Zip(report["stages"]!.AsArray()))
        {
            foreach (var field in (string[])["stage", "status", "started_at", "duration_seconds", "rows_in", "rows_out"])
            {
                Assert.True(JsonNode.DeepEquals(stage![field], reported![field]), $"{field}: {stage[field]} / {reported[field]}");
            }
        }
        // Every figure of report.json that the page names, it names with the same value (the page is built from it).
        var figures = Expected("night1", ["night1"]);
        Assert.Equal(figures["activation.segments_reached"], report["activation"]!["segments_reached"]!.GetValue<double>());
        Assert.Equal(figures["delivery.delivered"], report["delivery"]!["delivered"]!.GetValue<double>());

        // Without --run-id: the latest run.
        (code, output, error) = await CliHarness.RunAsync("report", "--workspace", workspace.Path);
        Assert.True(code == 0, error + output);
        Assert.Contains(Path.Combine(workspace.RunFolder("night2"), "report.html"), output, StringComparison.Ordinal);

        // A run that does not exist is named.
        (code, _, error) = await CliHarness.RunAsync("report", "--workspace", workspace.Path, "--run-id", "night9");
        Assert.Equal(1, code);
        Assert.Contains("no run 'night9'", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_failed_run_gets_a_report_that_says_how_far_it_got()
    {
        using var ws = new SmallWorkspace();
        // No events where the source points: the ingest stage fails.
        var (code, output, error) = await CliHarness.RunAsync("run", "--workspace", ws.Path, "--run-id", "broken");
        Assert.Equal(1, code);
        Assert.Contains("dataset not found", error, StringComparison.Ordinal);
        Assert.Contains($"Report of run broken (failed; ", output, StringComparison.Ordinal);
        var folder = ws.Combine("output", "runs", "broken");
        var report = JsonNode.Parse(await File.ReadAllBytesAsync(Path.Combine(folder, "report.json"), TestContext.Current.CancellationToken))!;
        var manifest = JsonNode.Parse(await File.ReadAllBytesAsync(Path.Combine(folder, "manifest.json"), TestContext.Current.CancellationToken))!;
        Assert.Equal("failed", report["status"]!.GetValue<string>());
        Assert.Equal(manifest["error"]!.GetValue<string>(), report["error"]!.GetValue<string>());
        var stage = Assert.Single(report["stages"]!.AsArray())!;
        Assert.Equal(["ingest", "failed"], [stage["stage"]!.GetValue<string>(), stage["status"]!.GetValue<string>()]);
        var html = await File.ReadAllTextAsync(Path.Combine(folder, "report.html"), TestContext.Current.CancellationToken);
        Assert.Contains("The run stopped before its segments stage.", html, StringComparison.Ordinal);
        Assert.Contains(System.Net.WebUtility.HtmlEncode(manifest["error"]!.GetValue<string>()), html, StringComparison.Ordinal);

        // A run refused before it starts (here: by another run's lock) writes no report over an earlier run's.
        var runs = ws.Combine("output", "runs");
        var before = await File.ReadAllBytesAsync(Path.Combine(folder, "report.json"), TestContext.Current.CancellationToken);
        using (new FileStream(Path.Combine(runs, ".lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None))
        {
            (code, output, _) = await CliHarness.RunAsync("run", "--workspace", ws.Path, "--run-id", "broken");
            Assert.Equal(1, code);
            Assert.DoesNotContain("Report of run", output, StringComparison.Ordinal);
        }
        Assert.Equal(before, await File.ReadAllBytesAsync(Path.Combine(folder, "report.json"), TestContext.Current.CancellationToken));
    }

    /// <summary>The text shows <paramref name="value"/> to the precision it prints (a percentage when the unit is %, percentage points when it is pp).</summary>
    private static void AssertShownAs(string name, string text, string? unit, double value)
    {
        var plain = text.Replace(",", "", StringComparison.Ordinal).Replace("\u2212", "-", StringComparison.Ordinal);
        Assert.True(double.TryParse(plain, NumberStyles.Float, Invariant, out var parsed), $"{name}: '{text}' is not a number");
        var dot = plain.IndexOf('.', StringComparison.Ordinal);
        var decimals = dot < 0 ? 0 : plain.Length - dot - 1;
        var shown = unit is "%" or "pp" ? value * 100 : value;
        Assert.True(Math.Abs(parsed - shown) <= 0.5 * Math.Pow(10, -decimals) + 1e-9, $"{name}: shows '{text}' for {value.ToString("R", Invariant)}{unit}");
        if (decimals == 0)
        {
            // Counts are printed with thousands separators.
            Assert.Equal(((long)value).ToString("N0", Invariant), text);
        }
    }

    private JsonNode Manifest(string runId) => Manifest(workspace.Output, runId);

    private static JsonNode Manifest(string output, string runId) => JsonNode.Parse(File.ReadAllBytes(Path.Combine(output, "runs", runId, "manifest.json")))!;

    private Dictionary<string, object> Expected(string runId, string[] history) => Expected(workspace.Output, runId, history);

    /// <summary>
    /// The figures of run <paramref name="runId"/> of the workspace whose output folder is <paramref name="output"/>,
    /// read straight from what the run wrote: its manifest and run_results.json, the manifests of
    /// <paramref name="history"/>, the model registry, the delivery's report.json, and its events/ counted with DuckDB.
    /// Numbers are doubles; words are strings.
    /// </summary>
    internal static Dictionary<string, object> Expected(string output, string runId, string[] history)
    {
        var figures = new Dictionary<string, object>(StringComparer.Ordinal);
        var manifest = Manifest(output, runId);
        double N(JsonNode? node) => node!.GetValue<double>();

        figures["run.run_id"] = runId;
        var runResults = JsonNode.Parse(File.ReadAllBytes(Path.Combine(Path.Combine(output, "runs", runId), "run_results.json")))!;
        // The run's status with its delivery: the manifest's unless the delivery failed.
        figures["run.status"] = runResults["status"]!.GetValue<string>();
        Assert.Equal(manifest["status"]!.GetValue<string>(), figures["run.status"]);
        var results = runResults["results"]!.AsArray();
        var total = 0.0;
        foreach (var stage in results)
        {
            var name = $"stage.{stage!["stage"]!.GetValue<string>()}";
            figures[name + ".status"] = stage["status"]!.GetValue<string>();
            figures[name + ".seconds"] = N(stage["duration_seconds"]);
            figures[name + ".rows_in"] = N(stage["rows_in"]);
            figures[name + ".rows_out"] = N(stage["rows_out"]);
            if (stage["peak_memory_bytes"] is { } peak)
            {
                figures[name + ".peak_mib"] = Math.Round(N(peak) / (1 << 20), MidpointRounding.AwayFromZero);
            }
            total += N(stage["duration_seconds"]);
        }
        figures["run.seconds"] = total;
        Assert.Contains(results, s => s!["stage"]!.GetValue<string>() == "deliver");

        foreach (var run in history)
        {
            foreach (var segment in Manifest(output, run)["segments"]!["segments"]!.AsArray())
            {
                foreach (var field in (string[])["members", "entered", "exited"])
                {
                    figures[$"history.{run}.{segment!["name"]!.GetValue<string>()}.{field}"] = N(segment[field]);
                }
            }
        }

        var identity = manifest["identity"]!;
        foreach (var (field, source) in new[] { ("identifiers", "identifiers"), ("links", "edges"), ("profiles", "profiles"), ("profiles_merged", "profiles_merged"),
            ("profiles_split", "profiles_split"), ("largest_profile", "largest_profile") })
        {
            figures[$"identity.{field}"] = N(identity[source]);
        }
        foreach (var bucket in identity["profile_sizes"]!.AsArray())
        {
            figures[$"identity.profile_sizes.{bucket!["min"]}-{bucket["max"]}"] = N(bucket["profiles"]);
        }
        var refused = identity["links_refused"]!.AsObject();
        foreach (var (reason, count) in refused)
        {
            figures[$"identity.links_refused.{reason}"] = N(count);
        }
        figures["identity.links_refused_total"] = refused.Sum(p => N(p.Value));

        foreach (var (model, entry) in manifest["scores"]!["models"]!.AsObject())
        {
            var name = $"scores.{model}";
            foreach (var field in (string[])["version", "scored", "outside_population", "mean", "p50", "p90", "psi", "validation_roc_auc"])
            {
                if (entry![field] is { } value)
                {
                    figures[$"{name}.{field}"] = N(value);
                }
            }
            var histogram = entry!["histogram"]!.AsArray();
            for (var i = 0; i < histogram.Count; i++)
            {
                figures[$"{name}.histogram.{i}"] = N(histogram[i]);
            }
            // A model that did not score (too few examples on a small data set) has no version and no curve to show.
            if (entry["version"] is { } version)
            {
                var record = JsonNode.Parse(File.ReadAllBytes(Path.Combine(output, "models", model, version.ToString(), "model.json")))!;
                figures[$"{name}.roc_points"] = (double)record["metrics"]!["roc_curve"]!.AsArray().Count;
            }
        }

        // The delivery: its report.json per destination, and the events (one row per record) for the totals.
        var delivery = JsonNode.Parse(File.ReadAllBytes(Path.Combine(output, "deliveries", runId, "report.json")))!;
        foreach (var (destination, d) in delivery["destinations"]!.AsObject())
        {
            var name = $"delivery.destinations.{destination}";
            foreach (var field in (string[])["processed", "added", "removed", "unmatched", "held_out", "retried", "open"])
            {
                figures[$"{name}.{field}"] = N(d![field]);
            }
            foreach (var kind in (string[])["suppressed", "failed"])
            {
                foreach (var (reason, count) in d![kind]!.AsObject())
                {
                    figures[$"{name}.{kind}.{reason}"] = N(count);
                }
            }
            if (N(d!["processed"]) > 0)
            {
                figures[$"{name}.delivered_rate"] = (N(d["added"]) + N(d["removed"])) / N(d["processed"]);
            }
            if (d["seconds_to_delivery"] is { } seconds)
            {
                figures[$"{name}.seconds_to_delivery.p50"] = N(seconds["p50"]);
                figures[$"{name}.seconds_to_delivery.p95"] = N(seconds["p95"]);
            }
        }
        string Events(string run) => Path.Combine(output, "deliveries", run, "events", "*.parquet");
        var totals = DuckDb.Rows($"SELECT count(*), count(*) FILTER (WHERE outcome = 'delivered') FROM read_parquet('{Events(runId)}')").Single();
        var processed = Convert.ToDouble(totals[0], Invariant);
        var delivered = Convert.ToDouble(totals[1], Invariant);
        figures["delivery.processed"] = processed;
        figures["delivery.delivered"] = delivered;
        figures["delivery.delivered_rate"] = delivered / processed;
        // Time to activation: each delivered record's seconds from the signal, lower nearest-rank percentiles.
        var waits = DuckDb.Rows($"SELECT greatest(0, (epoch_us(ts) - epoch_us(signal_ts)) / 1e6) FROM read_parquet('{Events(runId)}') WHERE outcome = 'delivered' ORDER BY 1")
            .Select(r => Convert.ToDouble(r[0], Invariant)).ToList();
        figures["delivery.seconds_to_delivery.p50"] = Math.Round(waits[(int)(0.5 * (waits.Count - 1))], 3);
        figures["delivery.seconds_to_delivery.p95"] = Math.Round(waits[(int)(0.95 * (waits.Count - 1))], 3);

        // Segments: the manifest's membership, tonight's records from the events, and the segments some destination
        // received a record of, tonight or on an earlier night.
        var perSegment = DuckDb.Rows($"SELECT segment, count(*), count(*) FILTER (WHERE outcome = 'delivered') FROM read_parquet('{Events(runId)}') GROUP BY segment")
            .ToDictionary(r => (string)r[0]!, r => (Processed: Convert.ToDouble(r[1], Invariant), Delivered: Convert.ToDouble(r[2], Invariant)));
        var reached = DuckDb.Rows($"SELECT DISTINCT segment FROM read_parquet([{string.Join(", ", history.Select(h => $"'{Events(h)}'"))}]) WHERE outcome = 'delivered'")
            .Select(r => (string)r[0]!).ToHashSet();
        var built = 0;
        foreach (var segment in manifest["segments"]!["segments"]!.AsArray())
        {
            var name = segment!["name"]!.GetValue<string>();
            foreach (var field in (string[])["members", "entered", "exited"])
            {
                figures[$"segment.{name}.{field}"] = N(segment[field]);
            }
            figures[$"segment.{name}.processed"] = perSegment.TryGetValue(name, out var counts) ? counts.Processed : 0.0;
            figures[$"segment.{name}.delivered"] = counts.Delivered;
            built += segment["declared"]!.GetValue<bool>() ? 1 : 0;
        }
        var reachedBuilt = manifest["segments"]!["segments"]!.AsArray().Count(s => s!["declared"]!.GetValue<bool>() && reached.Contains(s["name"]!.GetValue<string>()));
        figures["activation.segments_built"] = (double)built;
        figures["activation.segments_reached"] = (double)reachedBuilt;
        figures["activation.rate"] = (double)reachedBuilt / built;
        // Holdout figures exist when a destination holds out a control group (this class's workspace does).
        if (File.Exists(Path.Combine(output, "runs", runId, "measurement.json")))
        {
            Holdouts(figures, output, runId, history);
        }
        return figures;
    }

    /// <summary>
    /// The holdout figures of run <paramref name="runId"/>, recomputed with DuckDB from the activation events of
    /// <paramref name="history"/> and the event source mapped through the run's identity/ (most trusted identifier
    /// first: the customer id, the email, the cookie), as of the run's as-of time; the intervals with the textbook
    /// formulas (Wilson, Newcombe's hybrid score).
    /// </summary>
    private static void Holdouts(Dictionary<string, object> figures, string output, string runId, string[] history)
    {
        var asOf = Manifest(output, runId)["as_of"]!.GetValue<DateTimeOffset>().ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss", Invariant);
        var events = string.Join(", ", history.Select(h => $"'{Path.Combine(output, "deliveries", h, "events", "*.parquet")}'"));
        var identity = Path.Combine(output, "runs", runId, "identity", "*.parquet");
        var source = Path.Combine(Path.GetDirectoryName(output)!, "data", "events", "**", "*.parquet");
        const int Window = 1;
        var rows = DuckDb.Rows($"""
            WITH entries AS (
                   SELECT * FROM read_parquet([{events}], union_by_name = true) WHERE holdout_group IS NOT NULL AND change = 'entered'),
                 ids AS (SELECT identifier_type, identifier_value, profile_id FROM read_parquet('{identity}') WHERE profile_id IS NOT NULL),
                 orders AS (
                   SELECT coalesce(c.profile_id, e.profile_id, a.profile_id) AS profile_id, o.ts
                   FROM read_parquet('{source}') o
                   LEFT JOIN ids c ON c.identifier_type = 'customer_id' AND c.identifier_value = trim(o.user_id)
                   LEFT JOIN ids e ON e.identifier_type = 'email' AND e.identifier_value = lower(trim(o.email))
                   LEFT JOIN ids a ON a.identifier_type = 'anonymous_id' AND a.identifier_value = trim(o.anonymous_id)
                   WHERE o.type = 'order_completed' AND o.ts < TIMESTAMPTZ '{asOf}+00'),
                 measured AS (
                   SELECT n.*, n.as_of + INTERVAL {Window} DAY <= TIMESTAMPTZ '{asOf}+00' AS closed,
                          EXISTS (SELECT 1 FROM orders o WHERE o.profile_id = n.profile_id AND o.ts >= n.as_of AND o.ts < n.as_of + INTERVAL {Window} DAY) AS converted
                   FROM entries n)
            SELECT destination, segment,
                   count(*) FILTER (WHERE holdout_group = 'treatment'), count(*) FILTER (WHERE holdout_group = 'control'), count(*) FILTER (WHERE outcome = 'delivered'),
                   count(*) FILTER (WHERE closed AND holdout_group = 'treatment'), count(*) FILTER (WHERE closed AND holdout_group = 'treatment' AND converted),
                   count(*) FILTER (WHERE closed AND holdout_group = 'control'), count(*) FILTER (WHERE closed AND holdout_group = 'control' AND converted),
                   count(*) FILTER (WHERE NOT closed)
            FROM measured GROUP BY ALL ORDER BY ALL
            """);
        Assert.NotEmpty(rows);
        var converted = 0.0;
        foreach (var row in rows)
        {
            var name = $"holdouts.{row[0]}.{row[1]}";
            double C(int i) => Convert.ToDouble(row[i], Invariant);
            figures[name + ".holdout_percent"] = 20.0;
            figures[name + ".treatment_entries"] = C(2);
            figures[name + ".control_entries"] = C(3);
            figures[name + ".delivered"] = C(4);
            foreach (var (figure, from) in new[] { ("seconds_from_signal", "signal_ts"), ("seconds_from_as_of", "as_of") })
            {
                var waits = DuckDb.Rows($"""
                    SELECT greatest(0, (epoch_us(ts) - epoch_us({from})) / 1e6) FROM read_parquet([{events}], union_by_name = true)
                    WHERE destination = '{row[0]}' AND segment = '{row[1]}' AND holdout_group IS NOT NULL AND change = 'entered' AND outcome = 'delivered' ORDER BY 1
                    """).Select(r => Convert.ToDouble(r[0], Invariant)).ToList();
                if (waits.Count > 0)
                {
                    figures[$"{name}.{figure}.p50"] = Math.Round(waits[(int)(0.5 * (waits.Count - 1))], 3);
                    figures[$"{name}.{figure}.p95"] = Math.Round(waits[(int)(0.95 * (waits.Count - 1))], 3);
                }
            }
            var outcome = name + ".purchase";
            figures[outcome + ".window_days"] = (double)Window;
            figures[outcome + ".treatment.entries"] = C(5);
            figures[outcome + ".treatment.converted"] = C(6);
            figures[outcome + ".control.entries"] = C(7);
            figures[outcome + ".control.converted"] = C(8);
            figures[outcome + ".open"] = C(9);
            converted += C(6) + C(8);
            if (C(5) > 0)
            {
                figures[outcome + ".treatment.rate"] = C(6) / C(5);
            }
            if (C(7) > 0)
            {
                figures[outcome + ".control.rate"] = C(8) / C(7);
            }
            if (C(5) > 0 && C(7) > 0)
            {
                var (p1, p2) = (C(6) / C(5), C(8) / C(7));
                var (l1, u1) = Wilson(C(6), C(5));
                var (l2, u2) = Wilson(C(8), C(7));
                figures[outcome + ".lift"] = p1 - p2;
                figures[outcome + ".lift_low"] = Math.Max(-1, p1 - p2 - Math.Sqrt((p1 - l1) * (p1 - l1) + (u2 - p2) * (u2 - p2)));
                figures[outcome + ".lift_high"] = Math.Min(1, p1 - p2 + Math.Sqrt((u1 - p1) * (u1 - p1) + (p2 - l2) * (p2 - l2)));
            }
        }
        // Night1's entries closed by night2 and some of them bought: the figures are not all zero.
        Assert.True(runId == "night1" || converted > 0, "some entries converted");
    }

    /// <summary>Wilson's score interval for x of n at 95 %.</summary>
    private static (double Low, double High) Wilson(double x, double n)
    {
        const double z = 1.959963984540054;
        var p = x / n;
        var centre = (p + z * z / (2 * n)) / (1 + z * z / n);
        var half = z / (1 + z * z / n) * Math.Sqrt(p * (1 - p) / n + z * z / (4 * n * n));
        return (x == 0 ? 0 : centre - half, x == n ? 1 : centre + half);
    }
}
