namespace Engine.Cli.Tests;

public class UsageTests
{
    [Fact]
    public async Task Help_lists_the_commands_and_exits_0()
    {
        var (code, output, _) = await CliHarness.RunAsync("--help");
        Assert.Equal(0, code);
        foreach (var command in new[] { "init", "validate", "run", "generate" })
        {
            Assert.Contains(command, output, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("frobnicate")]
    [InlineData("generate", "--people", "10")]
    [InlineData("generate", "--people", "0", "--out", "x")]
    [InlineData("generate", "--people", "ten", "--out", "x")]
    [InlineData("run", "--as-of", "yesterday-ish")]
    public async Task Bad_usage_exits_2_with_a_message_on_stderr(params string[] args)
    {
        var (code, output, error) = await CliHarness.RunAsync(args);
        Assert.Equal(2, code);
        Assert.Equal("", output);
        Assert.StartsWith("error: ", error, StringComparison.Ordinal);
        Assert.Contains("--help", error, StringComparison.Ordinal);
    }
}
