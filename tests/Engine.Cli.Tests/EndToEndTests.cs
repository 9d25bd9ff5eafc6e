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

        (code, output, error) = await CliHarness.RunAsync("run", "--workspace", ws, "--run-id", "first", "--as-of", "2026-11-01");
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

        // The profiles stage ran with init's profiles.yaml: the CRM attributes and every trait, with values in them.
        var profiles = manifest.GetProperty("profiles");
        Assert.True(profiles.GetProperty("profiles").GetInt64() > 2000);
        Assert.Equal(inputs["events"], profiles.GetProperty("events_read").GetInt64());
        var table = Path.Combine(ws, "output", "runs", "first", "profiles", "*.parquet");
        string[] columns =
        [
            "profile_id", "loyalty_tier", "subscription_status", "country", "created_at", "lifetime_value", "orders_90d", "orders_previous_quarter",
            "average_order_value", "product_views_7d", "products_viewed_30d", "last_product_viewed", "last_purchase_at", "last_cart_at",
            "email_opens_30d", "email_opens_previous_30d", "opened_last_3_campaigns", "page_views_14d", "page_views_30d", "page_views_180d", "page_views_previous_30d",
            "support_tickets_90d", "tickets_resolved_90d", "days_since_last_seen", "first_seen_at", "last_seen_at",
        ];
        Assert.Equal([.. columns, "churn_score", "churn_decile"], DuckDb.Rows($"DESCRIBE SELECT * FROM read_parquet('{table}')").Select(r => (string)r[0]!));
        // 2,000 people over 120 days hold too few cancellations to train the churn model: the run says so and goes on,
        // with the score columns NULL (ChurnModelTests trains it on 100,000 people).
        var churn = manifest.GetProperty("scores").GetProperty("models").GetProperty("churn");
        Assert.StartsWith("model 'churn': too few positive examples to train", churn.GetProperty("error").GetString(), StringComparison.Ordinal);
        // The forecast model was tried by the training stage, before the profiles; the scores stage reports that
        // attempt and does not try again.
        Assert.Equal(["ingest", "identity", "training", "profiles", "scores", "segments"],
            manifest.GetProperty("stages").EnumerateArray().Select(s => s.GetProperty("name").GetString()));
        var tried = manifest.GetProperty("training").GetProperty("models").GetProperty("churn");
        Assert.Equal("no version yet", tried.GetProperty("reason").GetString());
        Assert.Equal(churn.GetProperty("error").GetString(), tried.GetProperty("error").GetString());
        Assert.Equal(0, churn.GetProperty("scored").GetInt64());
        Assert.Contains("too few positive examples", output, StringComparison.Ordinal);
        foreach (var column in columns)
        {
            var filled = Convert.ToInt64(DuckDb.Rows($"SELECT count(*) FROM read_parquet('{table}') WHERE {column} IS NOT NULL AND CAST({column} AS VARCHAR) NOT IN ('0')")[0][0], System.Globalization.CultureInfo.InvariantCulture);
            Assert.True(filled > 10, $"{column}: {filled} profiles with a value");
        }
    }
}
