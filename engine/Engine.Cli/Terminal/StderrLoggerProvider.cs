using System.Globalization;
using Microsoft.Extensions.Logging;

namespace Engine.Cli.Terminal;

/// <summary>
/// Plain one-line log records on standard error (results go to standard output, so pipes stay clean):
/// <c>12:00:01 info  ingest: …</c>. Written to a given writer so tests can capture it.
/// </summary>
internal sealed class StderrLoggerProvider(TextWriter writer, LogLevel minimum) : ILoggerProvider
{
    private readonly Lock _lock = new();
    private readonly TextWriter _writer = writer;
    private readonly LogLevel _minimum = minimum;

    public ILogger CreateLogger(string categoryName) => new Logger(this);

    public void Dispose() { }

    private sealed class Logger(StderrLoggerProvider owner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= owner._minimum && logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel))
            {
                return;
            }
            var level = logLevel switch
            {
                LogLevel.Trace => "trace",
                LogLevel.Debug => "debug",
                LogLevel.Information => "info ",
                LogLevel.Warning => "warn ",
                LogLevel.Error => "error",
                _ => "crit ",
            };
            var line = $"{DateTime.UtcNow.ToString("HH:mm:ss", CultureInfo.InvariantCulture)} {level} {formatter(state, exception)}";
            lock (owner._lock)
            {
                owner._writer.WriteLine(line);
            }
        }
    }
}
