using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Engine.TestKit;
using Engine.Workspaces;

namespace Engine.Cli.Tests;

/// <summary>
/// The example audiences that <c>engine init</c> writes, through a whole run: each segment's members equal DuckDB's
/// <c>SELECT profile_id FROM profiles WHERE &lt;condition&gt;</c> over the run's own <c>profiles/</c>, a second night
/// writes only the change, and <c>engine segments preview</c> shows the same figures with identifiers masked.
/// </summary>
public partial class SegmentsCommandTests
{
    [Fact]
    public async Task Example_segments_equal_duckdb_over_the_runs_own_profiles_and_preview_shows_them()
    {
        using var dir = new TempDirectory("segments-cli");
        var ws = dir.Combine("demo");
        Assert.Equal(0, (await CliHarness.RunAsync("init", ws)).ExitCode);
        var (code, _, error) = await CliHarness.RunAsync("generate", "--people", "3000", "--seed", "3", "--days", "120", "--as-of", "2026-11-01", "--out", Path.Combine(ws, "data"));
        Assert.True(code == 0, error);
        (code, _, error) = await CliHarness.RunAsync("run", "--workspace", ws, "--run-id", "night1", "--as-of", "2026-10-31T23:00:00Z");
        Assert.True(code == 0, error);

        var run = Path.Combine(ws, "output", "runs", "night1");
        var profiles = Path.Combine(run, "profiles", "*.parquet");
        var segments = WorkspaceLoader.Load(ws).Segments.ToDictionary(s => s.Name, s => s.Condition);
        var written = Members(Path.Combine(run, "segments", "*.parquet"));
        Assert.Subset(segments.Keys.ToHashSet(), written.Keys.ToHashSet());
        var members = segments.Keys.ToDictionary(k => k, k => written.GetValueOrDefault(k) ?? []);
        foreach (var (name, condition) in segments)
        {
            var sql = ForDuckDb(condition, segments, "2026-10-31 23:00:00", profiles);
            var expected = DuckDb.Rows($"SELECT profile_id FROM read_parquet('{profiles}') WHERE {sql} ORDER BY profile_id").Select(r => (long)r[0]!).ToList();
            Assert.True(expected.SequenceEqual(members[name]), $"{name}: DuckDB {expected.Count}, engine {members[name].Count}");
        }
        // The audiences are not empty on generated data: the windows and thresholds fit it.
        foreach (var name in new[] { "existing_customers", "browsed_not_bought", "vip", "cart_abandoners", "win_back" })
        {
            Assert.True(members[name].Count > 0, $"{name} is empty");
        }

        // First night: every member entered.
        var deltas = Path.Combine(run, "deltas", "*.parquet");
        Assert.Equal(members.Values.Sum(m => m.Count), Count($"SELECT count(*) FROM read_parquet('{deltas}') WHERE change = 'entered'"));
        // A later night over the same data: the windows move on, so members leave; only changes are written.
        (code, _, error) = await CliHarness.RunAsync("run", "--workspace", ws, "--run-id", "night2", "--as-of", "2026-11-03T23:00:00Z");
        Assert.True(code == 0, error);
        var manifest = JsonDocument.Parse(await File.ReadAllBytesAsync(Path.Combine(ws, "output", "runs", "night2", "manifest.json"), TestContext.Current.CancellationToken)).RootElement;
        var report = manifest.GetProperty("segments");
        Assert.Equal("night1", report.GetProperty("previous_run_id").GetString());
        var cart = report.GetProperty("segments").EnumerateArray().Single(s => s.GetProperty("name").GetString() == "cart_abandoners");
        Assert.Equal(members["cart_abandoners"].Count, cart.GetProperty("exited").GetInt64());
        Assert.Equal(0, cart.GetProperty("members").GetInt64());
        var night2 = Path.Combine(ws, "output", "runs", "night2", "deltas", "*.parquet");
        Assert.Equal(report.GetProperty("entered").GetInt64() + report.GetProperty("exited").GetInt64(), Count($"SELECT count(*) FROM read_parquet('{night2}')"));

        // Preview: the same sizes, nothing written, no raw identifier printed.
        var (previewCode, output, previewError) = await CliHarness.RunAsync("segments", "preview", "--workspace", ws, "--run-id", "night1", "--sample", "3");
        Assert.True(previewCode == 0, previewError);
        foreach (var (name, list) in members)
        {
            Assert.Matches(new Regex($"│ {name} +│ {list.Count:N0} +│", RegexOptions.None, TimeSpan.FromSeconds(1)), output);
        }
        // Nine example segments: beyond the matrix's eight, each segment's largest overlaps.
        Assert.Contains("Largest overlaps (members in both", output, StringComparison.Ordinal);
        Assert.Contains("Sample of vip:", output, StringComparison.Ordinal);
        Assert.DoesNotMatch(EmailPattern(), output);
        Assert.False(Directory.Exists(Path.Combine(ws, "output", "runs", "night1", "preview")));

        (previewCode, _, previewError) = await CliHarness.RunAsync("segments", "preview", "--workspace", ws, "vipp");
        Assert.Equal(1, previewCode);
        Assert.Contains("no segment 'vipp' (did you mean 'vip'?)", previewError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_bad_segment_stops_the_run_with_its_file_line_and_column_and_writes_no_delta()
    {
        using var dir = new TempDirectory("segments-bad");
        var ws = dir.Combine("demo");
        Assert.Equal(0, (await CliHarness.RunAsync("init", ws)).ExitCode);
        var (code, _, error) = await CliHarness.RunAsync("generate", "--people", "300", "--seed", "3", "--days", "30", "--out", Path.Combine(ws, "data"));
        Assert.True(code == 0, error);
        await File.WriteAllTextAsync(Path.Combine(ws, "segments", "broken.yaml"), "name: broken\ndescription: x\ncondition: lifetime_value > 'gold' OR loyalty_tier = 'gold'\n", TestContext.Current.CancellationToken);
        await File.WriteAllTextAsync(Path.Combine(ws, "segments", "typo.yaml"), "name: typo\ndescription: x\ncondition: loyalty_teir = 'gold'\n", TestContext.Current.CancellationToken);
        // validate finds it from profiles.yaml's declared columns, without data; so does a run, before reading any.
        (code, _, error) = await CliHarness.RunAsync("validate", "--workspace", ws);
        Assert.Equal(1, code);
        Assert.Contains("segments/broken.yaml:3:29: segment 'broken': 'gold' is not a number, and is compared with a DOUBLE", error, StringComparison.Ordinal);
        Assert.Contains("segments/typo.yaml:3:12: segment 'typo': unknown column 'loyalty_teir' (did you mean 'loyalty_tier'?)", error, StringComparison.Ordinal);
        (code, _, error) = await CliHarness.RunAsync("run", "--workspace", ws, "--run-id", "bad");
        Assert.Equal(1, code);
        Assert.Contains("segments/broken.yaml:3:29: segment 'broken': 'gold' is not a number, and is compared with a DOUBLE", error, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(ws, "output", "runs", "bad", "deltas")));
        var manifest = JsonDocument.Parse(await File.ReadAllBytesAsync(Path.Combine(ws, "output", "runs", "bad", "manifest.json"), TestContext.Current.CancellationToken)).RootElement;
        Assert.Equal("failed", manifest.GetProperty("status").GetString());
        Assert.Empty(manifest.GetProperty("stages").EnumerateArray());
    }

    private static Dictionary<string, List<long>> Members(string glob) =>
        DuckDb.Rows($"SELECT segment, profile_id FROM read_parquet('{glob}') ORDER BY segment, profile_id")
            .GroupBy(r => (string)r[0]!)
            .ToDictionary(g => g.Key, g => g.Select(r => (long)r[1]!).ToList());

    private static long Count(string sql) => Convert.ToInt64(DuckDb.Rows(sql)[0][0], CultureInfo.InvariantCulture);

    /// <summary>The condition as DuckDB reads it: the as-of time for now(), and in_segment('x') as a subquery over x's condition.</summary>
    private static string ForDuckDb(string condition, Dictionary<string, string> segments, string asOf, string profiles)
    {
        var sql = condition.Replace("now()", $"TIMESTAMP '{asOf}'", StringComparison.Ordinal);
        return InSegment().Replace(sql, m =>
            $"(profile_id IN (SELECT profile_id FROM read_parquet('{profiles}') WHERE {ForDuckDb(segments[m.Groups[1].Value], segments, asOf, profiles)}))");
    }

    [GeneratedRegex(@"in_segment\('([a-z_]+)'\)")]
    private static partial Regex InSegment();

    [GeneratedRegex(@"[A-Za-z0-9._%+-]{2,}@[A-Za-z0-9-]+\.[A-Za-z]{2,}")]
    private static partial Regex EmailPattern();
}
