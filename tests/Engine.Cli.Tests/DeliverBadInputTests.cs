using System.Text.Json;
using Engine.TestKit;

namespace Engine.Cli.Tests;

/// <summary>
/// Bad input to <c>engine deliver</c>: a consent table with an unknown channel, a missing credential, a malformed delta
/// file. Each gives a clear error naming the file and row (or the destination and the variable), and nothing is lost:
/// what was not sent stays open for the next delivery.
/// </summary>
public sealed class DeliverBadInputTests : IClassFixture<DeliverBadInputTests.Night>
{
    private readonly Night _night;

    public DeliverBadInputTests(Night night) => _night = night;

    /// <summary>A generated workspace run once (its copy per test keeps the tests apart).</summary>
    public sealed class Night : IAsyncLifetime
    {
        private readonly TempDirectory _dir = new("deliver-bad-input");

        public string Workspace => _dir.Combine("ws");

        public async ValueTask InitializeAsync()
        {
            Assert.Equal(0, (await CliHarness.RunAsync("init", Workspace)).ExitCode);
            Assert.Equal(0, (await CliHarness.RunAsync("generate", "--people", "800", "--seed", "9", "--days", "60", "--out", Path.Combine(Workspace, "data"))).ExitCode);
            var (code, _, error) = await CliHarness.RunAsync("run", "--workspace", Workspace, "--run-id", "n1", "--as-of", "2026-11-01");
            Assert.True(code == 0, error);
        }

        public ValueTask DisposeAsync()
        {
            _dir.Dispose();
            return ValueTask.CompletedTask;
        }

        /// <summary>A copy of the workspace (data and output included).</summary>
        public string Copy(TempDirectory into)
        {
            var target = into.Combine("ws");
            foreach (var file in Directory.EnumerateFiles(Workspace, "*", SearchOption.AllDirectories))
            {
                var to = Path.Combine(target, Path.GetRelativePath(Workspace, file));
                Directory.CreateDirectory(Path.GetDirectoryName(to)!);
                File.Copy(file, to);
            }
            return target;
        }
    }

    [Fact]
    public async Task A_consent_row_with_an_unknown_channel_stops_the_delivery_before_anything_is_planned()
    {
        using var dir = new TempDirectory("bad-consent");
        var ws = _night.Copy(dir);
        var consent = Path.Combine(ws, "data", "consent");
        File.Delete(Path.Combine(consent, "_dataset.json"));
        DuckDb.Rows($"""
            COPY (SELECT 'email' AS identifier_type, 'a@example.com' AS identifier_value, 'carrier_pigeon' AS channel, 'granted' AS status,
                         TIMESTAMPTZ '2026-10-01 00:00:00+00' AS ts, 'import' AS source)
            TO '{Path.Combine(consent, "zz-bad.parquet")}' (FORMAT parquet)
            """);
        var (code, output, error) = await CliHarness.RunAsync("deliver", "--workspace", ws);
        Assert.Equal(1, code);
        Assert.Contains("zz-bad.parquet", error, StringComparison.Ordinal);
        Assert.Contains("row 1: consent channel 'carrier_pigeon' is not one of email, sms, ads", error, StringComparison.Ordinal);
        Assert.DoesNotContain("Delivered", output, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(ws, "output", "deliveries", "n1")), "nothing was written for the run");
        Assert.False(Directory.Exists(Path.Combine(ws, "output", "exports")), "nothing was sent");
    }

    [Fact]
    public async Task A_missing_credential_stops_its_destination_only_and_its_records_wait()
    {
        using var dir = new TempDirectory("missing-credential");
        var ws = _night.Copy(dir);
        var variable = "ENGINE_TEST_UNSET_" + Guid.NewGuid().ToString("N").ToUpperInvariant();
        await File.WriteAllTextAsync(Path.Combine(ws, "destinations", "hooks.yaml"), $$"""
            name: hooks
            type: webhook
            segments: [existing_customers]
            consent: none
            identify_by: [email]
            settings: { url: "http://127.0.0.1:9/never" }
            credentials: { secret: {{variable}} }
            """, TestContext.Current.CancellationToken);
        var (code, _, error) = await CliHarness.RunAsync("deliver", "--workspace", ws);
        Assert.Equal(1, code);
        Assert.Contains($"destination 'hooks' stopped", error, StringComparison.Ordinal);
        Assert.Contains($"environment variable {variable}, which is not set", error, StringComparison.Ordinal);
        var report = JsonDocument.Parse(await File.ReadAllBytesAsync(Path.Combine(ws, "output", "deliveries", "n1", "report.json"), TestContext.Current.CancellationToken))
            .RootElement.GetProperty("destinations");
        // The other destinations delivered; this one's records are open, not failed or lost.
        Assert.True(report.GetProperty("crm_export").GetProperty("added").GetInt64() > 0);
        var hooks = report.GetProperty("hooks");
        Assert.Equal(hooks.GetProperty("processed").GetInt64() - hooks.GetProperty("unmatched").GetInt64(), hooks.GetProperty("open").GetInt64());
        Assert.True(hooks.GetProperty("open").GetInt64() > 0);
        Assert.Empty(hooks.GetProperty("failed").EnumerateObject());
    }

    [Fact]
    public async Task A_malformed_delta_file_is_named_with_its_row_and_nothing_is_sent()
    {
        using var dir = new TempDirectory("bad-deltas");
        var ws = _night.Copy(dir);
        // A first delivery syncs whole segments; the second night's deltas are read, and one of them is damaged.
        Assert.Equal(0, (await CliHarness.RunAsync("deliver", "--workspace", ws)).ExitCode);
        var (code, _, error) = await CliHarness.RunAsync("run", "--workspace", ws, "--run-id", "n2", "--as-of", "2026-11-02");
        Assert.True(code == 0, error);
        var deltas = Path.Combine(ws, "output", "runs", "n2", "deltas");
        foreach (var file in Directory.GetFiles(deltas))
        {
            File.Delete(file);
        }
        DuckDb.Rows($"""
            COPY (SELECT * FROM (VALUES ('vip', 1::BIGINT, 'entered'), ('vip', 2::BIGINT, 'moved')) t(segment, profile_id, change))
            TO '{Path.Combine(deltas, "part-0.parquet")}' (FORMAT parquet)
            """);
        (code, _, error) = await CliHarness.RunAsync("deliver", "--workspace", ws, "--run-id", "n2");
        Assert.Equal(1, code);
        Assert.Contains("part-0.parquet", error, StringComparison.Ordinal);
        Assert.Contains("row 2: change 'moved' is neither entered nor exited", error, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(ws, "output", "deliveries", "n2")), "nothing was written for the run");
    }
}
