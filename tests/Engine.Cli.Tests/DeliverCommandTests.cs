using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Engine.TestKit;

namespace Engine.Cli.Tests;

/// <summary>
/// <c>engine deliver</c> on a generated workspace: the example file destinations, plus a webhook receiver that
/// follows the webhook contract (signature checked, Idempotency-Key honoured) while it answers a 429 with
/// Retry-After, a 503 and a per-record rejection; a consent revocation written after the run and before delivery.
/// </summary>
public sealed class DeliverCommandTests
{
    [Fact]
    public async Task Deliver_accounts_for_every_record_and_sends_nothing_twice()
    {
        using var dir = new TempDirectory("deliver");
        var ws = dir.Combine("demo");
        Assert.Equal(0, (await CliHarness.RunAsync("init", ws)).ExitCode);
        Assert.Equal(0, (await CliHarness.RunAsync("generate", "--people", "2000", "--seed", "7", "--days", "120", "--out", Path.Combine(ws, "data"))).ExitCode);
        var (code, _, error) = await CliHarness.RunAsync("run", "--workspace", ws, "--run-id", "night1", "--as-of", "2026-11-01");
        Assert.True(code == 0, error);

        // After the run: one member of existing_customers revokes email consent.
        var segments = Path.Combine(ws, "output", "runs", "night1", "segments", "*.parquet");
        var identity = Path.Combine(ws, "output", "runs", "night1", "identity", "*.parquet");
        var revoked = DuckDb.Rows($"""
            SELECT i.profile_id, min(i.identifier_value) FROM read_parquet('{segments}') s
            JOIN read_parquet('{identity}') i ON i.profile_id = s.profile_id AND i.identifier_type = 'email'
            WHERE s.segment = 'existing_customers'
              AND NOT EXISTS (SELECT 1 FROM read_parquet('{Path.Combine(ws, "data", "consent", "**", "*.parquet")}') c
                              WHERE c.channel = 'email' AND c.status = 'revoked' AND lower(trim(c.identifier_value)) = i.identifier_value)
            GROUP BY i.profile_id ORDER BY i.profile_id LIMIT 1
            """).Single();
        var revokedProfile = (long)revoked[0]!;
        var consentDir = Path.Combine(ws, "data", "consent");
        File.Delete(Path.Combine(consentDir, "_dataset.json"));
        DuckDb.Rows($"""
            COPY (SELECT 'email' AS identifier_type, '  {((string)revoked[1]!).ToUpperInvariant()}' AS identifier_value, 'email' AS channel,
                         'revoked' AS status, TIMESTAMPTZ '2099-01-01 00:00:00+00' AS ts, 'preference_center' AS source)
            TO '{Path.Combine(consentDir, "late-revocation.parquet")}' (FORMAT parquet)
            """);

        await using var receiver = new WebhookReceiver("s3cret");
        Environment.SetEnvironmentVariable("ENGINE_TEST_WEBHOOK_SECRET", "s3cret");
        await File.WriteAllTextAsync(Path.Combine(ws, "destinations", "hooks.yaml"), $"""
            name: hooks
            type: webhook
            segments: [existing_customers]
            channel: email
            consent: revocation_only
            identify_by: [email]
            fields: {"{"} ltv: lifetime_value {"}"}
            batch_size: 40
            rate_limit: {"{"} requests: 200, per_seconds: 1 {"}"}
            retry: {"{"} attempts: 5, base_delay_ms: 5, max_delay_ms: 50 {"}"}
            settings: {"{"} url: "{receiver.Url}" {"}"}
            credentials: {"{"} secret: ENGINE_TEST_WEBHOOK_SECRET {"}"}
            """, TestContext.Current.CancellationToken);

        (code, var output, error) = await CliHarness.RunAsync("deliver", "--workspace", ws);
        Assert.True(code == 0, error + output);
        var report = JsonDocument.Parse(await File.ReadAllBytesAsync(Path.Combine(ws, "output", "deliveries", "night1", "report.json"), TestContext.Current.CancellationToken))
            .RootElement.GetProperty("destinations");
        var hooks = report.GetProperty("hooks");
        long Count(JsonElement d, string name) => d.GetProperty(name).GetInt64();
        long Sum(JsonElement d, string name) => d.GetProperty(name).EnumerateObject().Sum(p => p.Value.GetInt64());

        var members = DuckDb.Rows($"SELECT count(*) FROM read_parquet('{segments}') WHERE segment = 'existing_customers'").Single()[0];
        Assert.Equal(Convert.ToInt64(members, System.Globalization.CultureInfo.InvariantCulture), Count(hooks, "processed"));
        // Every record is exactly one of delivered, suppressed, unmatched, failed.
        Assert.Equal(Count(hooks, "processed"), Count(hooks, "added") + Count(hooks, "removed") + Count(hooks, "unmatched") + Sum(hooks, "suppressed") + Sum(hooks, "failed"));
        Assert.Equal(0, Count(hooks, "open"));
        Assert.True(hooks.GetProperty("suppressed").GetProperty("consent_revoked").GetInt64() >= 1);
        Assert.Equal(1, hooks.GetProperty("failed").GetProperty("rejected").GetInt64());
        Assert.True(Count(hooks, "retried") > 0, "the 429 and the 503 were retried");
        // The receiver's own count equals the report's, and it applied no record twice.
        Assert.Equal(Count(hooks, "added"), receiver.Applied.Count);
        Assert.Empty(receiver.Duplicates);
        Assert.DoesNotContain(receiver.Applied.Keys, k => k.Contains($"/{revokedProfile}/", StringComparison.Ordinal));
        Assert.True(receiver.Requests > receiver.Applied.Count / 40, "several batches, some sent twice");

        // The example file destination holds every added record once, across its part files.
        var emailAudiences = report.GetProperty("email_audiences");
        var exported = DuckDb.Rows($"SELECT count(*), count(DISTINCT key) FROM read_csv('{Path.Combine(ws, "output", "exports", "email_audiences", "night1", "part-*.csv")}')").Single();
        Assert.Equal(Count(emailAudiences, "added"), Convert.ToInt64(exported[0], System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(exported[0], exported[1]);

        // Row-level events: one per record and destination.
        var events = Path.Combine(ws, "output", "deliveries", "night1", "events", "*.parquet");
        var eventRows = DuckDb.Rows($"SELECT destination, count(*), count(DISTINCT key) FROM read_parquet('{events}') GROUP BY destination ORDER BY destination");
        var late = DuckDb.Rows($"SELECT outcome, reason FROM read_parquet('{events}') WHERE destination = 'hooks' AND profile_id = {revokedProfile}").Single();
        Assert.Equal(["suppressed", "consent_revoked"], late);
        foreach (var row in eventRows)
        {
            Assert.Equal(Count(report.GetProperty((string)row[0]!), "processed"), Convert.ToInt64(row[1], System.Globalization.CultureInfo.InvariantCulture));
            Assert.Equal(row[1], row[2]);
        }

        // Delivering again sends nothing: every record is final in the ledger.
        var requests = receiver.Requests;
        (code, _, error) = await CliHarness.RunAsync("deliver", "--workspace", ws);
        Assert.True(code == 0, error);
        Assert.Equal(requests, receiver.Requests);
    }

    [Fact]
    public async Task Run_with_deliver_runs_every_stage_then_delivers_and_writes_run_results()
    {
        using var dir = new TempDirectory("run-deliver");
        var ws = dir.Combine("demo");
        Assert.Equal(0, (await CliHarness.RunAsync("init", ws)).ExitCode);
        Assert.Equal(0, (await CliHarness.RunAsync("generate", "--people", "800", "--seed", "4", "--days", "60", "--out", Path.Combine(ws, "data"))).ExitCode);
        var (code, output, error) = await CliHarness.RunAsync("run", "--workspace", ws, "--run-id", "night", "--as-of", "2026-11-01", "--deliver");
        Assert.True(code == 0, error + output);
        Assert.Contains("Delivered run night", output, StringComparison.Ordinal);

        var results = JsonDocument.Parse(await File.ReadAllBytesAsync(Path.Combine(ws, "output", "runs", "night", "run_results.json"), TestContext.Current.CancellationToken)).RootElement;
        Assert.Equal("night", results.GetProperty("run_id").GetString());
        Assert.Equal("succeeded", results.GetProperty("status").GetString());
        var stages = results.GetProperty("results").EnumerateArray().ToList();
        Assert.Equal(["ingest", "identity", "training", "profiles", "scores", "segments", "deliver"], stages.Select(s => s.GetProperty("stage").GetString()));
        Assert.All(stages, s => Assert.Equal("succeeded", s.GetProperty("status").GetString()));
        var report = JsonDocument.Parse(await File.ReadAllBytesAsync(Path.Combine(ws, "output", "deliveries", "night", "report.json"), TestContext.Current.CancellationToken))
            .RootElement.GetProperty("destinations");
        var deliver = stages[^1];
        Assert.Equal(report.EnumerateObject().Sum(d => d.Value.GetProperty("processed").GetInt64()), deliver.GetProperty("rows_in").GetInt64());
        Assert.Equal(report.EnumerateObject().Sum(d => d.Value.GetProperty("added").GetInt64() + d.Value.GetProperty("removed").GetInt64()), deliver.GetProperty("rows_out").GetInt64());
        Assert.True(deliver.GetProperty("rows_out").GetInt64() > 0);
    }

    /// <summary>
    /// A webhook receiver following the webhook contract: it checks the HMAC signature, applies each record once,
    /// answers a repeated Idempotency-Key with its first answer, and injects failures: the 2nd request gets 429
    /// with Retry-After: 0, the 4th a 503 after applying nothing, and one record is rejected per-record.
    /// </summary>
    private sealed class WebhookReceiver : IAsyncDisposable
    {
        private readonly HttpListener _listener = new();
        private readonly byte[] _secret;
        private readonly ConcurrentDictionary<string, string> _answers = new();
        private readonly Task _loop;
        private int _requests;
        private string? _rejected;

        public WebhookReceiver(string secret)
        {
            _secret = Encoding.UTF8.GetBytes(secret);
            var port = FreePort();
            Url = $"http://127.0.0.1:{port}/hook/";
            _listener.Prefixes.Add(Url);
            _listener.Start();
            _loop = Task.Run(LoopAsync);
        }

        public string Url { get; }

        public ConcurrentDictionary<string, int> Applied { get; } = new();

        public ConcurrentBag<string> Duplicates { get; } = [];

        public int Requests => _requests;

        private async Task LoopAsync()
        {
            while (_listener.IsListening)
            {
                HttpListenerContext context;
                try
                {
                    context = await _listener.GetContextAsync();
                }
                catch (Exception e) when (e is HttpListenerException or ObjectDisposedException)
                {
                    return;
                }
                _ = Task.Run(() => Handle(context));
            }
        }

        private void Handle(HttpListenerContext context)
        {
            using var response = context.Response;
            using var buffer = new MemoryStream();
            context.Request.InputStream.CopyTo(buffer);
            var body = buffer.ToArray();
            var n = Interlocked.Increment(ref _requests);
            var timestamp = context.Request.Headers["X-Engine-Timestamp"] ?? "";
            using var hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, _secret);
            hmac.AppendData(Encoding.UTF8.GetBytes(timestamp + "."));
            hmac.AppendData(body);
            if (context.Request.Headers["X-Engine-Signature"] != "sha256=" + Convert.ToHexStringLower(hmac.GetHashAndReset()))
            {
                response.StatusCode = 401;
                return;
            }
            if (n == 2)
            {
                response.StatusCode = 429;
                response.AddHeader("Retry-After", "0");
                return;
            }
            if (n == 4)
            {
                response.StatusCode = 503;
                return;
            }
            var key = context.Request.Headers["Idempotency-Key"] ?? "";
            var answer = _answers.GetOrAdd(key, _ =>
            {
                using var json = JsonDocument.Parse(body);
                var results = new List<string>();
                foreach (var record in json.RootElement.GetProperty("records").EnumerateArray())
                {
                    var recordKey = record.GetProperty("key").GetString()!;
                    if (Interlocked.CompareExchange(ref _rejected, recordKey, null) is null || _rejected == recordKey)
                    {
                        results.Add($$"""{"key":"{{recordKey}}","status":"rejected","reason":"invalid email"}""");
                        continue;
                    }
                    if (Applied.AddOrUpdate(recordKey, 1, (_, c) => c + 1) > 1)
                    {
                        Duplicates.Add(recordKey);
                    }
                    results.Add($$"""{"key":"{{recordKey}}","status":"ok"}""");
                }
                return $$"""{"results":[{{string.Join(",", results)}}]}""";
            });
            var bytes = Encoding.UTF8.GetBytes(answer);
            response.ContentType = "application/json";
            response.OutputStream.Write(bytes);
        }

        private static int FreePort()
        {
            using var socket = new TcpListener(IPAddress.Loopback, 0);
            socket.Start();
            return ((IPEndPoint)socket.LocalEndpoint).Port;
        }

        public async ValueTask DisposeAsync()
        {
            _listener.Stop();
            _listener.Close();
            await _loop;
        }
    }
}
