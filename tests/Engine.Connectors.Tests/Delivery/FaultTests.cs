using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Engine.Cli;
using Engine.Connectors.Tests.ContractServers;
using Engine.TestKit;

namespace Engine.Connectors.Tests.Delivery;

/// <summary>
/// Issue 6's fault test: over 100,000 delta records delivered while the destinations answer 429 with Retry-After, 5xx,
/// time-outs, dropped connections (before and after applying a request) and per-record rejections, and while
/// <c>engine deliver</c> — a child process — is killed at random points and started again. Afterwards every record is
/// exactly one of delivered, suppressed, unmatched or failed; no destination applied a record twice; the report's
/// counts equal the destinations' own. The test prints the figures.
/// </summary>
public sealed class FaultTests
{
    private const string Secret = "fault-test-secret";

    private static readonly string[] Destinations = ["hooks", "export", "meta", "google", "braze", "crm"];

    [Fact]
    public async Task Every_record_ends_exactly_once_through_faults_and_kills()
    {
        var cancel = TestContext.Current.CancellationToken;
        using var dir = new TempDirectory("delivery-faults");
        var ws = dir.Combine("ws");
        await CliAsync("init", ws);
        await CliAsync("generate", "--people", "20000", "--seed", "5", "--days", "60", "--out", Path.Combine(ws, "data"));
        foreach (var file in Directory.GetFiles(Path.Combine(ws, "destinations")))
        {
            File.Delete(file);
        }
        Directory.Delete(Path.Combine(ws, "models"), recursive: true);
        await File.WriteAllTextAsync(Path.Combine(ws, "segments", "at_risk.yaml"), "name: at_risk\ndescription: no model here\ncondition: FALSE\n", cancel);
        await File.WriteAllTextAsync(Path.Combine(ws, "segments", "everyone.yaml"), "name: everyone\ndescription: every profile\ncondition: profile_id IS NOT NULL\n", cancel);
        await CliAsync("run", "--workspace", ws, "--run-id", "night", "--as-of", "2026-11-01");

        var faults = new FaultPlan(seed: 11)
        {
            RateLimited = 0.05, ServerErrors = 0.03, Timeouts = 0.01, DropsBefore = 0.02, DropsAfter = 0.03,
            RetryAfter = TimeSpan.FromMilliseconds(300), TimeoutDelay = TimeSpan.FromSeconds(3),
        };
        await using var hooks = new WebhookServer(Secret, faults) { RejectEvery = 97 };
        await hooks.StartAsync();
        await File.WriteAllTextAsync(Path.Combine(ws, "destinations", "hooks.yaml"), $$"""
            name: hooks
            type: webhook
            segments: [everyone]
            consent: none
            identify_by: [customer_id, email, phone, anonymous_id]
            fields: { tier: loyalty_tier, ltv: lifetime_value }
            batch_size: 100
            rate_limit: { requests: 60, per_seconds: 1, burst: 5 }
            concurrency: 4
            timeout_seconds: 1
            retry: { attempts: 10, base_delay_ms: 50, max_delay_ms: 1000 }
            settings: { url: "{{hooks.Url}}" }
            credentials: { secret: ENGINE_FAULT_TEST_SECRET }
            """, cancel);
        FaultPlan Faults(int seed) => new(seed)
        {
            RateLimited = 0.05, ServerErrors = 0.03, Timeouts = 0.01, DropsBefore = 0.02, DropsAfter = 0.03,
            RetryAfter = TimeSpan.FromMilliseconds(300), TimeoutDelay = TimeSpan.FromSeconds(3),
        };
        await using var meta = new MetaServer(Faults(12));
        meta.AccessTokens["meta-token"] = true;
        meta.AddAudience("6001");
        await meta.StartAsync();
        await using var google = new GoogleAdsServer(Faults(13)) { RetryDelay = TimeSpan.FromMilliseconds(300) };
        google.AccessTokens["google-token"] = true;
        google.AddUserList("1234567890", "777");
        await google.StartAsync();
        await using var braze = new BrazeServer("braze-key", Faults(14), requestsPerWindow: 40, window: TimeSpan.FromSeconds(1));
        await braze.StartAsync();
        await using var crm = new CrmServer("crm-token", new Dictionary<string, CrmPropertyType>
        {
            ["email"] = CrmPropertyType.String, ["engine_segment_everyone"] = CrmPropertyType.Bool, ["lifecycle_tier"] = CrmPropertyType.String,
        }, Faults(15), burstMax: 50, burstInterval: TimeSpan.FromSeconds(1));
        await crm.StartAsync();
        string Api(string name, string type, string identify, int batch, int rate, string settings, string credentials, string extra = "") => $$"""
            name: {{name}}
            type: {{type}}
            segments: [everyone]
            consent: none
            identify_by: [{{identify}}]
            batch_size: {{batch}}
            rate_limit: { requests: {{rate}}, per_seconds: 1 }
            concurrency: 4
            timeout_seconds: 1
            retry: { attempts: 12, base_delay_ms: 50, max_delay_ms: 1000 }
            settings: { {{settings}} }
            credentials: { {{credentials}} }
            {{extra}}
            """;
        await File.WriteAllTextAsync(Path.Combine(ws, "destinations", "meta.yaml"),
            Api("meta", "meta_custom_audiences", "email, phone", 2000, 20, $"audience_id: \"6001\", url: \"{meta.ApiUrl}\"", "access_token: ENGINE_FAULT_META"), cancel);
        await File.WriteAllTextAsync(Path.Combine(ws, "destinations", "google.yaml"),
            Api("google", "google_customer_match", "email, phone", 2000, 20, $"customer_id: \"1234567890\", user_list_id: \"777\", url: \"{google.ApiUrl}\"",
                "access_token: ENGINE_FAULT_GOOGLE"), cancel);
        await File.WriteAllTextAsync(Path.Combine(ws, "destinations", "braze.yaml"),
            Api("braze", "braze", "customer_id, email", 75, 40, $"url: \"{braze.BaseUrl.ToString().TrimEnd('/')}\"", "api_key: ENGINE_FAULT_BRAZE"), cancel);
        await File.WriteAllTextAsync(Path.Combine(ws, "destinations", "crm.yaml"),
            Api("crm", "crm", "email", 100, 50, $"url: \"{crm.BaseUrl.ToString().TrimEnd('/')}\", object: contacts", "access_token: ENGINE_FAULT_CRM",
                "mode: upsert\nfields: { lifecycle_tier: loyalty_tier }"), cancel);
        await File.WriteAllTextAsync(Path.Combine(ws, "destinations", "export.yaml"), """
            name: export
            type: file
            segments: [everyone]
            consent: none
            identify_by: [customer_id, email]
            batch_size: 250
            rate_limit: { requests: 20, per_seconds: 1, burst: 1 }
            settings: { path: exports/everyone, format: csv }
            """, cancel);

        // Kill the worker at random points until it has been killed five times mid-delivery, then let it finish.
        var random = new Random(23);
        var kills = 0;
        var starts = 0;
        var log = dir.Combine("deliver.log");
        while (true)
        {
            starts++;
            using var worker = StartDeliver(ws, log);
            if (kills < 5)
            {
                var wait = TimeSpan.FromMilliseconds(random.Next(700, 2500));
                if (!worker.WaitForExit(wait))
                {
                    worker.Kill(entireProcessTree: true);
                    await worker.WaitForExitAsync(cancel);
                    kills++;
                    continue;
                }
            }
            await worker.WaitForExitAsync(cancel);
            Assert.True(worker.ExitCode == 0, $"engine deliver exited with {worker.ExitCode}:\n{await File.ReadAllTextAsync(log, cancel)}");
            break;
        }

        var folder = Path.Combine(ws, "output", "deliveries", "night");
        var report = JsonDocument.Parse(await File.ReadAllBytesAsync(Path.Combine(folder, "report.json"), cancel)).RootElement.GetProperty("destinations");
        var members = Convert.ToInt64(DuckDb.Rows($"SELECT count(*) FROM read_parquet('{Path.Combine(ws, "output", "runs", "night", "segments", "*.parquet")}') WHERE segment = 'everyone'").Single()[0], CultureInfo.InvariantCulture);
        var events = Path.Combine(folder, "events", "*.parquet");
        var total = DuckDb.Rows($"SELECT count(*), count(DISTINCT key), count(DISTINCT destination || '/' || segment || '/' || profile_id || '/' || change) FROM read_parquet('{events}')").Single();
        var figures = new List<string>
        {
            $"{members:N0} members x {Destinations.Length} destinations = {Destinations.Length * members:N0} records; worker started {starts} times, killed {kills} times mid-delivery",
            $"faults injected at the webhook (each server has its own plan): 429 x{faults.Injected429}, 5xx x{faults.Injected5xx}, time-outs x{faults.InjectedTimeouts}, dropped connections x{faults.InjectedDrops}; webhook replays answered from its idempotency store: {hooks.Replays}",
        };

        // Every record exactly once in the row-level events, with one outcome.
        Assert.True(Destinations.Length * members >= 100_000, $"{Destinations.Length * members} records: the fault test needs at least 100,000");
        Assert.Equal(Destinations.Length * members, Convert.ToInt64(total[0], CultureInfo.InvariantCulture));
        Assert.Equal(total[0], total[1]);
        Assert.Equal(total[0], total[2]);
        Assert.Equal(5, kills);

        foreach (var name in Destinations)
        {
            var d = report.GetProperty(name);
            long Count(string field) => d.GetProperty(field).GetInt64();
            long Sum(string field) => d.GetProperty(field).EnumerateObject().Sum(p => p.Value.GetInt64());
            Assert.Equal(members, Count("processed"));
            Assert.Equal(0, Count("open"));
            Assert.True(d.GetProperty("completed").GetBoolean(), name);
            Assert.Equal(Count("processed"), Count("added") + Count("removed") + Count("unmatched") + Sum("suppressed") + Sum("failed"));
            figures.Add($"{name}: processed {Count("processed"):N0}, added {Count("added"):N0}, unmatched {Count("unmatched"):N0}, failed {Sum("failed"):N0} ({string.Join(", ", d.GetProperty("failed").EnumerateObject().Select(p => $"{p.Name} {p.Value}"))}), retried {Count("retried"):N0}");
        }

        // The webhook: applied each delivered record once, refused each rejected record once, and nothing else.
        var webhook = report.GetProperty("hooks");
        Assert.Equal(webhook.GetProperty("added").GetInt64(), hooks.Applied.Count);
        Assert.All(hooks.Applied, a => Assert.Equal(1, a.Value));
        Assert.All(hooks.Rejected, a => Assert.Equal(1, a.Value));
        Assert.Equal(hooks.Rejected.Count, webhook.GetProperty("failed").TryGetProperty("rejected", out var rejected) ? rejected.GetInt64() : 0);
        Assert.True(!hooks.Rejected.IsEmpty && faults.InjectedDrops > 0 && faults.Injected429 > 0);
        var delivered = DuckDb.Rows($"SELECT key FROM read_parquet('{events}') WHERE destination = 'hooks' AND outcome = 'delivered'").Select(r => (string)r[0]!).ToHashSet();
        Assert.True(delivered.SetEquals(hooks.Applied.Keys), "the events' delivered records are exactly those the webhook applied");

        // The file export: every delivered record in exactly one row across the parts (a batch sent again replaced its own part).
        var exported = DuckDb.Rows($"SELECT count(*), count(DISTINCT key) FROM read_csv('{Path.Combine(ws, "output", "exports", "everyone", "night", "part-*.csv")}')").Single();
        Assert.Equal(report.GetProperty("export").GetProperty("added").GetInt64(), Convert.ToInt64(exported[0], CultureInfo.InvariantCulture));
        Assert.Equal(exported[0], exported[1]);

        // The APIs without idempotency keys: every delivered change reached the server, none that failed for good was
        // applied, and a change arrived more than once only when the answer to its request was lost (a dropped
        // connection after applying) or cut off by a kill between the answer and the ledger: a repeat of the whole
        // request, harmless to a set or an upsert. Bounded here by the kills times the requests in flight.
        var killAllowance = kills * 4;
        void Receipts(string name, ReceiptLog log, ReceiptLog refusals, int batch)
        {
            var d = report.GetProperty(name);
            var acknowledgedTwice = log.Items.Count(i => log.Acknowledged(i) > 1);
            Assert.Equal(d.GetProperty("added").GetInt64(), log.Items.Count);
            Assert.True(acknowledgedTwice <= killAllowance * batch, $"{name}: {acknowledgedTwice} changes acknowledged twice");
            figures.Add($"{name}: {log.Items.Count:N0} changes received, {log.Items.Count(i => log.Received(i) > 1):N0} more than once ({acknowledgedTwice:N0} after an acknowledgement, around kills), {refusals.Items.Count:N0} refused, 429 answered {(name == "braze" ? braze.RateLimited : crm.RateLimited):N0} times");
        }
        Receipts("braze", braze.Receipts, braze.Refusals, 75);
        Receipts("crm", crm.Receipts, crm.Refusals, 100);
        var metaReport = report.GetProperty("meta");
        Assert.Equal(metaReport.GetProperty("added").GetInt64(), meta.RowCounts.Count);
        Assert.Equal(meta.RowCounts.Count, meta.Members("6001", "EMAIL").Count + meta.RowCounts.Keys.Count(k => k.StartsWith('|')));
        figures.Add($"meta: {meta.RowCounts.Count:N0} rows, {meta.RowCounts.Count(r => r.Value > 1):N0} received more than once ({meta.RowsInLostAnswers:N0} rows in lost answers)");
        var googleReport = report.GetProperty("google");
        Assert.All(google.Jobs.Values, j => Assert.Equal(1, j.Runs));
        // One operation per record (its identifiers); an operation repeated only in a request whose answer was lost.
        var operations = google.Jobs.Values.SelectMany(j => j.Operations).Select(o => string.Join(",", o.Identifiers.Select(i => i.Hash).Order(StringComparer.Ordinal))).ToList();
        Assert.Equal(googleReport.GetProperty("added").GetInt64(), operations.Distinct().Count());
        figures.Add($"google: {google.Jobs.Count} jobs run once each, {operations.Distinct().Count():N0} operations ({operations.Count - operations.Distinct().Count():N0} repeated), {google.IdentifierCounts.Count:N0} identifiers, {google.IdentifierCounts.Count(r => r.Value > 1):N0} received more than once ({google.IdentifiersInLostAnswers:N0} in lost answers)");

        foreach (var line in figures)
        {
            TestContext.Current.SendDiagnosticMessage(line);
            Console.WriteLine(line);
        }
    }

    private static async Task CliAsync(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await EngineCommandLine.RunAsync(args, output, error, TestContext.Current.CancellationToken);
        Assert.True(code == 0, $"engine {string.Join(' ', args)}: {error}{output}");
    }

    /// <summary>Starts <c>engine deliver</c> as a child process (the engine built beside the tests), its output appended to <paramref name="log"/>.</summary>
    private static Process StartDeliver(string ws, string log)
    {
        var info = new ProcessStartInfo(Path.Combine(AppContext.BaseDirectory, "Engine.Cli"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { "deliver", "--workspace", ws })
        {
            info.ArgumentList.Add(arg);
        }
        info.Environment["ENGINE_FAULT_TEST_SECRET"] = Secret;
        info.Environment["ENGINE_FAULT_META"] = "meta-token";
        info.Environment["ENGINE_FAULT_GOOGLE"] = "google-token";
        info.Environment["ENGINE_FAULT_BRAZE"] = "braze-key";
        info.Environment["ENGINE_FAULT_CRM"] = "crm-token";
        var process = Process.Start(info)!;
        process.OutputDataReceived += (_, e) => Append(log, e.Data);
        process.ErrorDataReceived += (_, e) => Append(log, e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private static readonly Lock LogGate = new();

    private static void Append(string log, string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (LogGate)
        {
            File.AppendAllText(log, line + "\n");
        }
    }
}
