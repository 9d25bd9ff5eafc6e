namespace Engine.Connectors.Holdouts;

/// <summary>One column condition of an outcome: the column's value is one of <see cref="Values"/>.</summary>
/// <param name="Column">A string column of the outcome's source.</param>
/// <param name="Values">The values that count (equality, any of them).</param>
/// <param name="Line">Where the condition is written in <c>delivery.yaml</c> (1-based), for errors found in the data.</param>
/// <param name="Position">Its column in that line (1-based).</param>
public sealed record OutcomeFilter(string Column, IReadOnlyList<string> Values, int Line, int Position);

/// <summary>
/// A conversion (or churn…) that activations are measured against: events of <see cref="Source"/> whose columns match
/// <see cref="Filters"/>, within <see cref="WindowDays"/> days of a member entering the segment. Declared under
/// <c>outcomes:</c> in <c>delivery.yaml</c> and named by each destination's <c>holdout.outcomes</c>.
/// </summary>
public sealed class OutcomeDefinition
{
    public required string Name { get; init; }

    /// <summary>The file it is declared in, relative to the workspace (<c>delivery.yaml</c>).</summary>
    public required string File { get; init; }

    public int Line { get; init; }

    public int Position { get; init; }

    public string Description { get; init; } = "";

    /// <summary>The workspace source the outcome events come from (its identifiers map them to profiles).</summary>
    public required string Source { get; init; }

    /// <summary>Every condition must hold (AND); each is an equality with one of its values (OR).</summary>
    public required IReadOnlyList<OutcomeFilter> Filters { get; init; }

    /// <summary>An entry converts when an outcome event falls in [entry as-of, entry as-of + window).</summary>
    public required int WindowDays { get; init; }

    public TimeSpan Window => TimeSpan.FromDays(WindowDays);
}

/// <summary>
/// A destination's control group: <see cref="Percent"/> of each of its segments' members (a fixed hash of profile and
/// activation) are never sent, so that <see cref="Outcomes"/> can be compared between those sent and those not.
/// </summary>
public sealed record HoldoutSettings(decimal Percent, IReadOnlyList<string> Outcomes)
{
    /// <summary>The buckets (of <see cref="HoldoutAssignment.Buckets"/>) held out: a profile whose bucket is below this is in the control group.</summary>
    public int HeldOutBuckets => (int)(Percent * (HoldoutAssignment.Buckets / 100));
}
