using Engine.Cli;

namespace Engine.Cli.Tests;

/// <summary>Runs the command line in-process, capturing standard output and standard error.</summary>
internal static class CliHarness
{
    public static async Task<(int ExitCode, string Output, string Error)> RunAsync(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await EngineCommandLine.RunAsync(args, output, error, TestContext.Current.CancellationToken);
        return (code, output.ToString(), error.ToString());
    }
}
