using Engine.TestKit;

namespace Engine.Cli.Tests;

/// <summary>
/// Consent is read when a batch is sent, and a suppression is final for the record it was made on: a grant that
/// arrives later does not resend it, not even on the next night when the member simply stays; it is sent when a later
/// run computes the entry again (the member leaves and comes back).
/// </summary>
public sealed class ConsentAtSendTimeTests
{
    [Fact]
    public async Task A_grant_does_not_resurrect_a_suppressed_record_until_a_later_run_computes_it_again()
    {
        using var dir = new TempDirectory("consent-grant");
        var ws = dir.Combine("demo");
        Assert.Equal(0, (await CliHarness.RunAsync("init", ws)).ExitCode);
        Assert.Equal(0, (await CliHarness.RunAsync("generate", "--people", "1500", "--seed", "3", "--days", "90", "--out", Path.Combine(ws, "data"))).ExitCode);
        foreach (var file in Directory.GetFiles(Path.Combine(ws, "destinations")))
        {
            File.Delete(file);
        }
        var toggle = Path.Combine(ws, "segments", "seen.yaml");
        await WriteAsync(toggle, "name: seen\ndescription: every profile with an event\ncondition: last_seen_at IS NOT NULL\n");
        await WriteAsync(Path.Combine(ws, "destinations", "mail.yaml"), """
            name: mail
            type: file
            segments: [seen]
            channel: email
            consent: required
            identify_by: [email]
            settings: { path: exports/mail, format: csv }
            """);

        await RunAndDeliverAsync(ws, "night1");
        var events = Path.Combine(ws, "output", "deliveries", "{0}", "events", "*.parquet");
        var identity = Path.Combine(ws, "output", "runs", "night1", "identity", "*.parquet");
        // A member suppressed for want of consent, with an email to grant it on.
        var chosen = DuckDb.Rows($"""
            SELECT e.profile_id, min(i.identifier_value) FROM read_parquet('{string.Format(System.Globalization.CultureInfo.InvariantCulture, events, "night1")}') e
            JOIN read_parquet('{identity}') i ON i.profile_id = e.profile_id AND i.identifier_type = 'email'
            WHERE e.outcome = 'suppressed' AND e.reason = 'no_consent'
            GROUP BY e.profile_id ORDER BY e.profile_id LIMIT 1
            """).Single();
        var profile = (long)chosen[0]!;
        var consentDir = Path.Combine(ws, "data", "consent");
        File.Delete(Path.Combine(consentDir, "_dataset.json"));
        DuckDb.Rows($"""
            COPY (SELECT 'email' AS identifier_type, '{(string)chosen[1]!}' AS identifier_value, 'email' AS channel, 'granted' AS status,
                         TIMESTAMPTZ '2099-01-01 00:00:00+00' AS ts, 'preference_center' AS source)
            TO '{Path.Combine(consentDir, "late-grant.parquet")}' (FORMAT parquet)
            """);

        string Outcome(string run) => string.Join(",", DuckDb.Rows($"""
            SELECT change || ':' || outcome || ':' || coalesce(reason, '') FROM read_parquet('{string.Format(System.Globalization.CultureInfo.InvariantCulture, events, run)}')
            WHERE profile_id = {profile} ORDER BY change
            """).Select(r => (string)r[0]!));

        // The same night delivered again: the record stays suppressed, nothing is sent.
        var parts = Directory.GetFiles(Path.Combine(ws, "output", "exports", "mail", "night1"), "part-*.csv").Length;
        var (code, _, error) = await CliHarness.RunAsync("deliver", "--workspace", ws, "--run-id", "night1");
        Assert.True(code == 0, error);
        Assert.Equal("entered:suppressed:no_consent", Outcome("night1"));
        Assert.Equal(parts, Directory.GetFiles(Path.Combine(ws, "output", "exports", "mail", "night1"), "part-*.csv").Length);

        // The next night the member is still a member: no delta, nothing to send.
        await RunAndDeliverAsync(ws, "night2");
        Assert.Equal("", Outcome("night2"));

        // The member leaves (the exit is sent: removals need no consent) and comes back: the entry is computed again
        // and, with the grant, delivered.
        await WriteAsync(toggle, $"name: seen\ndescription: every profile with an event\ncondition: last_seen_at IS NOT NULL AND profile_id <> {profile}\n");
        await RunAndDeliverAsync(ws, "night3");
        Assert.Equal("exited:delivered:", Outcome("night3"));
        await WriteAsync(toggle, "name: seen\ndescription: every profile with an event\ncondition: last_seen_at IS NOT NULL\n");
        await RunAndDeliverAsync(ws, "night4");
        Assert.Equal("entered:delivered:", Outcome("night4"));
    }

    private static async Task RunAndDeliverAsync(string ws, string run)
    {
        var (code, output, error) = await CliHarness.RunAsync("run", "--workspace", ws, "--run-id", run, "--as-of", "2026-11-01");
        Assert.True(code == 0, error + output);
        (code, output, error) = await CliHarness.RunAsync("deliver", "--workspace", ws, "--run-id", run);
        Assert.True(code == 0, error + output);
    }

    private static async Task WriteAsync(string path, string text)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        await File.WriteAllTextAsync(path, text, TestContext.Current.CancellationToken);
    }
}
