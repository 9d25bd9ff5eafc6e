using Engine.Storage;
using Engine.Storage.S3;
using Microsoft.Extensions.Logging;
using Spectre.Console;

namespace Engine.Cli.Terminal;

/// <summary>What every command gets: where results and logs go, storage, and whether to be verbose.</summary>
internal sealed class CliContext : IDisposable
{
    public CliContext(TextWriter output, TextWriter error, bool verbose, bool quiet)
    {
        Output = output;
        Error = error;
        Verbose = verbose;
        var interactive = ReferenceEquals(error, Console.Error) && !Console.IsErrorRedirected;
        Results = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(output),
            Ansi = ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = ColorSystemSupport.Detect,
            Interactive = InteractionSupport.No,
        });
        if (!ReferenceEquals(output, Console.Out) || Console.IsOutputRedirected)
        {
            // Not a terminal: do not wrap tables at Spectre's default 80 columns.
            Results.Profile.Width = 200;
        }
        Progress = interactive
            ? AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(error), Ansi = AnsiSupport.Detect, Interactive = InteractionSupport.Yes })
            : null;
        LoggerFactory = Microsoft.Extensions.Logging.LoggerFactory.Create(builder =>
        {
            builder.ClearProviders();
            builder.SetMinimumLevel(verbose ? LogLevel.Debug : quiet ? LogLevel.Warning : LogLevel.Information);
            builder.AddProvider(new StderrLoggerProvider(error, verbose ? LogLevel.Debug : quiet ? LogLevel.Warning : LogLevel.Information));
        });
        Storage = new StorageResolver().Add(new S3ObjectStoreProvider());
    }

    /// <summary>Standard output: results only.</summary>
    public TextWriter Output { get; }

    /// <summary>Standard error: logs, progress and errors.</summary>
    public TextWriter Error { get; }

    public bool Verbose { get; }

    /// <summary>Tables and summaries, on standard output (plain text when it is not a terminal).</summary>
    public IAnsiConsole Results { get; }

    /// <summary>Live progress bars on standard error, when it is a terminal; null otherwise (plain log lines instead).</summary>
    public IAnsiConsole? Progress { get; }

    public ILoggerFactory LoggerFactory { get; }

    public StorageResolver Storage { get; }

    public ILogger Logger(string category) => LoggerFactory.CreateLogger(category);

    public void Dispose()
    {
        Storage.Dispose();
        LoggerFactory.Dispose();
    }
}
