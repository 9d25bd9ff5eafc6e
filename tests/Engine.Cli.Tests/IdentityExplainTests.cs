using Engine.TestKit;

namespace Engine.Cli.Tests;

/// <summary><c>engine identity explain</c> on a small hand-written workspace.</summary>
public sealed class IdentityExplainTests : IDisposable
{
    private readonly TempDirectory _dir = new("explain");

    public IdentityExplainTests()
    {
        Write("workspace.yaml", "name: explain\nversion: 1\noutput: output\n");
        Write("identity.yaml", """
            identifier_types:
              customer_id: { normalizer: id, limit: 1 }
              email: { normalizer: email, limit: 5 }
              anonymous_id: { normalizer: id, shared_after: 1 }
            """);
        Write("sources/events.yaml", """
            name: events
            location: data/events
            format: csv
            columns:
              anonymous_id: string
              user_id: string
              email: string
            identifiers:
              anonymous_id: anonymous_id
              user_id: customer_id
              email: email
            """);
        // Ann: customer C1, her address and two cookies. A family tablet seen with Ann and Bob is shared. Bob's second
        // customer id C9 arrives with his address: refused by the customer_id limit.
        Write("data/events/part-0.csv", """
            anonymous_id,user_id,email
            ann-laptop,C1,annabel.lee@mail.co.uk
            ann-phone,C1,
            tablet,C1,
            tablet,C2,
            bob-phone,C2,bob.ray@mail.co.uk
            ,C9,bob.ray@mail.co.uk

            """);
    }

    private void Write(string relative, string content)
    {
        var path = _dir.Combine(relative.Split('/'));
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, content);
    }

    [Fact]
    public async Task Explain_shows_the_profile_masked_with_its_links_and_refusals()
    {
        var (code, _, error) = await CliHarness.RunAsync("run", "--workspace", _dir.Path, "--run-id", "r1", "-q");
        Assert.True(code == 0, error);

        (code, var output, error) = await CliHarness.RunAsync("identity", "explain", "--workspace", _dir.Path, "--identifier", "email: Annabel.Lee@Mail.co.uk ");
        Assert.True(code == 0, error);
        Assert.DoesNotContain("annabel", output, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("email a*********e@m********k is in profile", output, StringComparison.Ordinal);
        Assert.Contains("(run r1), with 4 identifier(s).", output, StringComparison.Ordinal);
        Assert.Contains("Links that joined them: 3", output, StringComparison.Ordinal);
        Assert.Contains("Links refused: 1", output, StringComparison.Ordinal);
        Assert.Contains("the anonymous_id value is shared", output, StringComparison.Ordinal);

        (code, output, _) = await CliHarness.RunAsync("identity", "explain", "--workspace", _dir.Path, "--identifier", "customer_id:C9", "--run-id", "r1");
        Assert.Equal(0, code);
        Assert.Contains("would exceed the customer_id limit", output, StringComparison.Ordinal);

        (code, output, _) = await CliHarness.RunAsync("identity", "explain", "--workspace", _dir.Path, "--identifier", "anonymous_id:tablet");
        Assert.Equal(0, code);
        Assert.Contains("is a shared value (run r1): it is in no profile", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Explain_names_what_is_wrong_with_the_question()
    {
        Assert.Equal(0, (await CliHarness.RunAsync("run", "--workspace", _dir.Path, "--run-id", "r1", "-q")).ExitCode);
        var (code, _, error) = await CliHarness.RunAsync("identity", "explain", "--workspace", _dir.Path, "--identifier", "emails:ann@mail.co.uk");
        Assert.Equal(1, code);
        Assert.Contains("identifier type 'emails' is not defined by the identity rules; did you mean 'email'?", error, StringComparison.Ordinal);

        (code, _, error) = await CliHarness.RunAsync("identity", "explain", "--workspace", _dir.Path, "--identifier", "email:nobody@mail.co.uk");
        Assert.Equal(1, code);
        Assert.Contains("is not in this run's identity output", error, StringComparison.Ordinal);
        Assert.DoesNotContain("nobody", error, StringComparison.Ordinal);

        (code, _, error) = await CliHarness.RunAsync("identity", "explain", "--workspace", _dir.Path, "--identifier", "email:test@test.com");
        Assert.Equal(1, code);
        Assert.Contains("blocked under the identity rules", error, StringComparison.Ordinal);

        (code, _, error) = await CliHarness.RunAsync("identity", "explain", "--workspace", _dir.Path, "--identifier", "C1");
        Assert.Equal(1, code);
        Assert.Contains("must be type:value", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Explain_before_any_run_says_to_run_first()
    {
        var (code, _, error) = await CliHarness.RunAsync("identity", "explain", "--workspace", _dir.Path, "--identifier", "customer_id:C1");
        Assert.Equal(1, code);
        Assert.Contains("has no run with an identity output yet", error, StringComparison.Ordinal);
    }

    public void Dispose() => _dir.Dispose();
}
