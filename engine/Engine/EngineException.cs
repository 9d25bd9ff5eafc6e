namespace Engine;

/// <summary>
/// A failure the engine explains to its user in one line: bad input, a missing dataset, an invalid workspace.
/// The command line prints <see cref="Exception.Message"/> (which names the file, and the row, line or column
/// where known) and exits with code 1; the stack trace is shown only with <c>--verbose</c>.
/// </summary>
public class EngineException : Exception
{
    public EngineException(string message) : base(message) { }

    public EngineException(string message, Exception innerException) : base(message, innerException) { }

    public EngineException() { }
}

/// <summary>Bad data: a file that is missing, not Parquet, truncated, or does not match the declared schema.</summary>
public sealed class DataException : EngineException
{
    public DataException(string location, string problem)
        : base($"{location}: {problem}") => Location = location;

    public DataException(string location, string problem, Exception innerException)
        : base($"{location}: {problem}", innerException) => Location = location;

    /// <summary>The file (and row or line where known) the problem is in, as the user would type it.</summary>
    public string Location { get; } = "";

    public DataException() { }

    public DataException(string message) : base(message) { }

    public DataException(string message, Exception innerException) : base(message, innerException) { }
}
