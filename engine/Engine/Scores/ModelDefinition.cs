using Engine.Profiles;
using Engine.Storage;
using Engine.Workspaces;

namespace Engine.Scores;

/// <summary>
/// A model a workspace declares in <c>models/&lt;name&gt;.yaml</c>: what it predicts (the label), from which profile
/// columns (the features), for whom (the population), how it is trained and validated, and the profile columns its
/// scores are written to.
/// </summary>
public sealed class ModelDefinition
{
    /// <summary>The folder of model files in a workspace.</summary>
    public const string Folder = "models";

    public required string Name { get; init; }

    /// <summary>The file (relative to the workspace) the definition came from.</summary>
    public required string File { get; init; }

    public string Description { get; init; } = "";

    /// <summary>Who the model is trained on and scores: a condition over the profile columns; null for everyone.</summary>
    public ConditionText? Population { get; init; }

    /// <summary>What the model predicts; null for an external model (trained elsewhere, on its own label).</summary>
    public LabelDefinition? Label { get; init; }

    /// <summary>The profile columns the model reads, in order, each with where it was named.</summary>
    public required IReadOnlyList<FeatureReference> Features { get; init; }

    public TrainerOptions Trainer { get; init; } = new();

    /// <summary>A C# class that builds the ML.NET pipeline instead of <see cref="Trainer"/> (see <see cref="IModelPlugin"/>); null for a declared trainer.</summary>
    public PluginReference? Plugin { get; init; }

    /// <summary>A model trained elsewhere (an ML.NET zip or an ONNX file) that the engine only scores with; null for a model it trains.</summary>
    public ExternalModel? External { get; init; }

    public ValidationOptions Validation { get; init; } = new();

    /// <summary>
    /// A newly trained model replaces the current one only if its validation ROC AUC is at least the current one's
    /// minus this.
    /// </summary>
    public double AucTolerance { get; init; } = 0.01;

    /// <summary>The fewest positive (and negative) training examples a model is trained from.</summary>
    public int MinimumPositives { get; init; } = 50;

    /// <summary>The profile column the score (the calibrated probability of the label) is written to.</summary>
    public required string ScoreColumn { get; init; }

    /// <summary>The profile column the score's decile (1 = the lowest tenth of scores tonight, 10 = the highest) is written to.</summary>
    public required string DecileColumn { get; init; }

    /// <summary>The profile columns the model adds: its score (a probability) and the score's decile.</summary>
    public IEnumerable<ColumnSpec> OutputColumns => [new ColumnSpec(ScoreColumn, ColumnType.Double), new ColumnSpec(DecileColumn, ColumnType.Int64)];

    /// <summary>Whether the label looks ahead of a cutoff (trained point in time) rather than reading a column of today's profiles.</summary>
    public bool IsForecast => Label?.HorizonDays is not null;
}

/// <summary>A plug-in model class: the assembly (a path relative to the workspace, as written) and the type's full name.</summary>
public sealed record PluginReference(string Assembly, string Type, int Line, int Column)
{
    /// <summary>The assembly's absolute path.</summary>
    public string AssemblyPath(string workspaceDirectory) => System.IO.Path.GetFullPath(Assembly, workspaceDirectory);
}

/// <summary>The file formats of external models.</summary>
public enum ExternalFormat
{
    /// <summary>An ML.NET model saved with <c>mlContext.Model.Save</c> (<c>.zip</c>), reading a <c>Features</c> vector.</summary>
    MlNet,

    /// <summary>An ONNX graph (<c>.onnx</c>) with one float input tensor <c>[batch, features]</c>.</summary>
    Onnx,
}

/// <summary>
/// A model trained elsewhere: its file (a path relative to the workspace, as written), its format, and for ONNX the
/// input tensor and the output holding the probability (a vector of two is read as [negative, positive]).
/// </summary>
public sealed record ExternalModel(string Path, ExternalFormat Format, string Input, string Output, int Line, int Column)
{
    /// <summary>The file's absolute path.</summary>
    public string FullPath(string workspaceDirectory) => System.IO.Path.GetFullPath(Path, workspaceDirectory);
}

/// <summary>A condition written in a workspace file, with where it is for messages.</summary>
/// <param name="Text">The SQL boolean expression.</param>
/// <param name="Positions">Where each offset of it is in the file.</param>
public sealed record ConditionText(string Text, TextPositions Positions);

/// <summary>A feature: a profile column by name, with where the model file names it.</summary>
public sealed record FeatureReference(string Column, int Line, int ColumnNumber);

/// <summary>
/// What a model predicts. A <b>forecast</b> label (<see cref="HorizonDays"/> set) holds when <see cref="Condition"/> is
/// true of the profile as it stands <see cref="HorizonDays"/> days after a cutoff, with <see cref="Traits"/> counted over
/// those days only; features are computed as of the cutoff from earlier data only. A <b>snapshot</b> label (no
/// horizon) is a condition over today's profile columns, such as a churn flag a CRM export carries.
/// </summary>
public sealed class LabelDefinition
{
    public required ConditionText Condition { get; init; }

    public int? HorizonDays { get; init; }

    /// <summary>Traits over the horizon (forecast labels only): each counts events from the cutoff to the horizon's end.</summary>
    public IReadOnlyList<TraitDefinition> Traits { get; init; } = [];
}

/// <summary>The tree learners a declared model trains with.</summary>
public enum TrainerAlgorithm
{
    LightGbm,
    FastTree,
}

/// <summary>The trainer and its parameters (the names ML.NET's options use, in snake case in the file).</summary>
public sealed record TrainerOptions
{
    public TrainerAlgorithm Algorithm { get; init; } = TrainerAlgorithm.LightGbm;

    public int Trees { get; init; } = 200;

    public int Leaves { get; init; } = 31;

    public double LearningRate { get; init; } = 0.05;

    public int MinimumExamplesPerLeaf { get; init; } = 20;

    /// <summary>
    /// At most about this many training examples (null: all). Beyond it a uniform sample is trained on, chosen by a hash
    /// of profile id and cutoff (<see cref="ExampleSample"/>): the fit's time grows with the examples, its accuracy
    /// far less once there are a million or so. Validation examples are never sampled.
    /// </summary>
    public int? MaxExamples { get; init; }

    /// <summary>Seeds the trainer, the fold assignment and the sample, so that the same data trains the same model.</summary>
    public int Seed { get; init; } = 1;
}

/// <summary>How a model is validated before it may be promoted.</summary>
public sealed record ValidationOptions
{
    /// <summary>
    /// Folds of cross-validation (snapshot labels); forecast labels are validated on the next window in time instead
    /// (trained on the window ending one horizon before as-of, validated on the window ending at as-of).
    /// </summary>
    public int Folds { get; init; } = 5;

    /// <summary>
    /// Forecast labels: how many consecutive windows, one horizon apart and ending where the validation window starts,
    /// the training examples are taken from (a profile may appear once per window). More windows, more examples.
    /// </summary>
    public int TrainingWindows { get; init; } = 1;
}
