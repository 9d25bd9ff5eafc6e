namespace Engine.Scores;

/// <summary>
/// A model that cannot be trained or cannot score: a label with one class, too few positives, a feature that is not
/// a usable column, non-finite values, a stored model whose inputs no longer match. The message names the model and
/// the column; the model that was scoring before keeps scoring.
/// </summary>
public sealed class ModelException : EngineException
{
    public ModelException(string model, string problem)
        : base($"model '{model}': {problem}") => Model = model;

    public ModelException(string model, string problem, Exception innerException)
        : base($"model '{model}': {problem}", innerException) => Model = model;

    public ModelException() { }

    public ModelException(string message) : base(message) { }

    public ModelException(string message, Exception innerException) : base(message, innerException) { }

    /// <summary>The model's name.</summary>
    public string Model { get; } = "";
}
