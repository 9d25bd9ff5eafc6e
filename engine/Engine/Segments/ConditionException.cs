namespace Engine.Segments;

/// <summary>
/// A segment condition that cannot be parsed, type-checked or evaluated. <see cref="Position"/> is the offset in the
/// condition text (or -1 when it is about the whole condition); the segment compiler turns it into a file, line and
/// column.
/// </summary>
public sealed class ConditionException : EngineException
{
    public ConditionException(int position, string message)
        : base(message) => Position = position;

    public ConditionException() { }

    public ConditionException(string message) : base(message) => Position = -1;

    public ConditionException(string message, Exception innerException) : base(message, innerException) => Position = -1;

    /// <summary>The offset in the condition text the problem is at, or -1.</summary>
    public int Position { get; }
}
