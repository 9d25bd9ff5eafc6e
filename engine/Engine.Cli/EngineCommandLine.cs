using System.CommandLine;
using System.Globalization;
using Engine.Cli.Commands;
using Engine.Cli.Terminal;

namespace Engine.Cli;

/// <summary>
/// The <c>engine</c> command line. Exit codes follow dbt: 0 success, 1 a handled failure (bad data, an invalid
/// workspace: one line naming the file), 2 bad usage. Results go to standard output, logs and errors to standard
/// error; a stack trace is printed only with <c>--verbose</c>.
/// </summary>
public static class EngineCommandLine
{
    public const int Success = 0;
    public const int Failure = 1;
    public const int Usage = 2;

    internal static readonly Option<bool> Verbose = new("--verbose", "-v")
    {
        Description = "Log debug detail, and print stack traces with errors",
        Recursive = true,
    };

    internal static readonly Option<bool> Quiet = new("--quiet", "-q")
    {
        Description = "Log warnings and errors only",
        Recursive = true,
    };

    /// <summary>Builds the command tree.</summary>
    public static RootCommand Build()
    {
        var root = new RootCommand("Activation engine: reads customer data, resolves identities, builds audiences and delivers them.");
        root.Options.Add(Verbose);
        root.Options.Add(Quiet);
        root.Subcommands.Add(InitCommand.Create());
        root.Subcommands.Add(ValidateCommand.Create());
        root.Subcommands.Add(RunCommand.Create());
        root.Subcommands.Add(IdentityCommand.Create());
        root.Subcommands.Add(ModelsCommand.Create());
        root.Subcommands.Add(SegmentsCommand.Create());
        root.Subcommands.Add(DeliverCommand.Create());
        root.Subcommands.Add(ReportCommand.Create());
        root.Subcommands.Add(MeasureCommand.Create());
        root.Subcommands.Add(GenerateCommand.Create());
        return root;
    }

    /// <summary>Parses and runs <paramref name="args"/>, writing results to <paramref name="output"/> and logs to <paramref name="error"/>.</summary>
    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error, CancellationToken cancellationToken = default)
    {
        var root = Build();
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var problem in parse.Errors)
            {
                await error.WriteLineAsync($"error: {problem.Message}");
            }
            await error.WriteLineAsync($"Run '{string.Join(' ', ["engine", .. CommandPath(parse.CommandResult.Command, root)])} --help' for usage.");
            return Usage;
        }
        var verbose = parse.GetValue(Verbose);
        var configuration = new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false };
        try
        {
            return await parse.InvokeAsync(configuration, cancellationToken);
        }
        catch (EngineException e)
        {
            if (e is Workspaces.WorkspaceException { Errors.Count: > 0 } workspace)
            {
                foreach (var problem in workspace.Errors)
                {
                    await error.WriteLineAsync($"error: {problem}");
                }
            }
            else
            {
                await error.WriteLineAsync($"error: {e.Message}");
            }
            if (verbose)
            {
                await error.WriteLineAsync(e.ToString());
            }
            return Failure;
        }
        catch (OperationCanceledException)
        {
            await error.WriteLineAsync("error: cancelled");
            return Failure;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Not a failure the engine anticipated: say so plainly, keep the detail for --verbose.
            await error.WriteLineAsync($"error: unexpected {e.GetType().Name}: {e.Message}");
            await error.WriteLineAsync(verbose ? e.ToString() : "(run again with --verbose for the stack trace)");
            return Failure;
        }
    }

    private static List<string> CommandPath(Command command, RootCommand root)
    {
        var path = new List<string>();
        for (var c = command; c is not null && c != root; c = c.Parents.OfType<Command>().FirstOrDefault())
        {
            path.Insert(0, c.Name);
        }
        return path;
    }

    /// <summary>Opens the context commands share; disposed by the caller.</summary>
    internal static CliContext Context(ParseResult parse)
        => new(parse.InvocationConfiguration.Output, parse.InvocationConfiguration.Error, parse.GetValue(Verbose), parse.GetValue(Quiet));

    /// <summary>Parses <c>--as-of</c>: a date (midnight UTC) or an ISO 8601 instant (UTC when no offset is given).</summary>
    internal static DateTimeOffset? ParseInstant(System.CommandLine.Parsing.ArgumentResult result)
    {
        if (result.Tokens.Count == 0)
        {
            return null;
        }
        var text = result.Tokens[0].Value;
        if (DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var value))
        {
            return value;
        }
        result.AddError($"'{text}' is not a date or timestamp (expected e.g. 2026-11-01 or 2026-11-01T06:00:00Z)");
        return null;
    }
}
