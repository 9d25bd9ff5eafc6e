namespace Engine.Workspaces;

/// <summary>One problem in a workspace file, located by file, line and column (1-based).</summary>
/// <param name="File">The file, relative to the workspace folder.</param>
/// <param name="Line">The line, or 0 when the problem is the whole file.</param>
/// <param name="Column">The column, or 0 when unknown.</param>
/// <param name="Message">What is wrong, and where possible how to fix it.</param>
public sealed record WorkspaceError(string File, int Line, int Column, string Message)
{
    public override string ToString() => Line > 0 ? $"{File}:{Line}:{Column}: {Message}" : $"{File}: {Message}";
}

/// <summary>A workspace that failed to load or validate; carries every error found, not just the first.</summary>
public sealed class WorkspaceException : EngineException
{
    public WorkspaceException(IReadOnlyList<WorkspaceError> errors)
        : base(errors.Count == 1 ? errors[0].ToString() : $"{errors[0]} (and {errors.Count - 1} more error{(errors.Count > 2 ? "s" : "")})")
        => Errors = errors;

    public IReadOnlyList<WorkspaceError> Errors { get; } = [];

    public WorkspaceException() { }

    public WorkspaceException(string message) : base(message) { }

    public WorkspaceException(string message, Exception innerException) : base(message, innerException) { }
}
