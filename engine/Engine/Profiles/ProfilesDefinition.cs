using Engine.Storage;

namespace Engine.Profiles;

/// <summary>
/// What <c>profiles.yaml</c> asks for: the CRM attributes each profile carries (and how a value survives when several
/// rows disagree) and the computed traits (event aggregates). A workspace without the file gets
/// <see cref="Empty"/>: a profile table of profile ids only.
/// </summary>
public sealed class ProfilesDefinition
{
    /// <summary>The file's name at the workspace root.</summary>
    public const string FileName = "profiles.yaml";

    public ProfilesDefinition(Survivorship survivorship, IReadOnlyList<AttributeSource> attributeSources, IReadOnlyList<TraitDefinition> traits)
    {
        Survivorship = survivorship;
        AttributeSources = attributeSources;
        Traits = traits;
    }

    public static ProfilesDefinition Empty { get; } = new(Survivorship.Recency, [], []);

    public Survivorship Survivorship { get; }

    /// <summary>Attribute sources, in the file's order (the priority order under <see cref="Survivorship.Priority"/>).</summary>
    public IReadOnlyList<AttributeSource> AttributeSources { get; }

    public IReadOnlyList<TraitDefinition> Traits { get; }

    /// <summary>The columns the profiles stage writes after <c>profile_id</c>: the attributes, then the traits.</summary>
    public IEnumerable<ColumnSpec> OutputColumns => Attributes.Concat(Traits.Select(t => new ColumnSpec(t.Name, t.OutputType)));

    /// <summary>
    /// Every attribute once, in order of first mention, with its type (the same in every source that lists it).
    /// </summary>
    public IReadOnlyList<ColumnSpec> Attributes
    {
        get
        {
            var result = new List<ColumnSpec>();
            foreach (var source in AttributeSources)
            {
                foreach (var column in source.Columns)
                {
                    if (!result.Exists(c => c.Name == column.Name))
                    {
                        result.Add(column with { Required = false });
                    }
                }
            }
            return result;
        }
    }
}

/// <summary>How an attribute's value is chosen among the rows of a profile.</summary>
public enum Survivorship
{
    /// <summary>The most recently updated non-null value wins, whichever source it came from.</summary>
    Recency,

    /// <summary>The first attribute source (in file order) holding a non-null value wins; within it, the most recent.</summary>
    Priority,
}

/// <summary>A source whose rows carry attribute columns for the profile their identifiers belong to.</summary>
/// <param name="Source">The source's name.</param>
/// <param name="UpdatedAt">
/// The timestamp column giving each row's recency; null for an undated source (a snapshot export), whose rows hold
/// whatever the as-of time and rank below every dated row.
/// </param>
/// <param name="Columns">The attribute columns (name and type as the source declares them).</param>
public sealed record AttributeSource(string Source, string? UpdatedAt, IReadOnlyList<ColumnSpec> Columns)
{
    public bool IsDated => UpdatedAt is not null;
}

/// <summary>The aggregate functions a trait can use.</summary>
public enum TraitFunction
{
    Count,
    Sum,
    Min,
    Max,
    Avg,
    First,
    Last,
    DistinctCount,
    RecencyDays,
    FirstSeen,
    LastSeen,
}

/// <summary>Names and properties of <see cref="TraitFunction"/>s.</summary>
public static class TraitFunctions
{
    /// <summary>The names used in <c>profiles.yaml</c>, indexed by the enum's value.</summary>
    public static IReadOnlyList<string> Names { get; } =
        ["count", "sum", "min", "max", "avg", "first", "last", "distinct_count", "recency_days", "first_seen", "last_seen"];

    public static string Name(TraitFunction function) => Names[(int)function];

    public static TraitFunction? Parse(string name)
    {
        for (var i = 0; i < Names.Count; i++)
        {
            if (Names[i] == name)
            {
                return (TraitFunction)i;
            }
        }
        return null;
    }

    /// <summary>Whether the function needs a value column (count takes one optionally: it then counts non-null values).</summary>
    public static bool NeedsColumn(TraitFunction function) => function is TraitFunction.Sum or TraitFunction.Min or TraitFunction.Max
        or TraitFunction.Avg or TraitFunction.First or TraitFunction.Last or TraitFunction.DistinctCount;

    /// <summary>Whether the function takes no column at all (it reads only the event time).</summary>
    public static bool TakesNoColumn(TraitFunction function) => function is TraitFunction.RecencyDays or TraitFunction.FirstSeen or TraitFunction.LastSeen;

    /// <summary>The trait's output type, given the value column's type (ignored where the function has none).</summary>
    public static ColumnType OutputType(TraitFunction function, ColumnType? column) => function switch
    {
        TraitFunction.Count or TraitFunction.DistinctCount or TraitFunction.RecencyDays => ColumnType.Int64,
        TraitFunction.Avg => ColumnType.Double,
        TraitFunction.Sum => column == ColumnType.Int64 ? ColumnType.Int64 : ColumnType.Double,
        TraitFunction.FirstSeen or TraitFunction.LastSeen => ColumnType.Timestamp,
        _ => column ?? throw new ArgumentException($"{Name(function)} needs a column", nameof(column)),
    };
}

/// <summary>
/// A time window relative to the run's as-of time, as half-open bounds in days before it:
/// <c>as_of - FromDaysAgo days &lt;= ts &lt; as_of - ToDaysAgo days</c>. <c>last_days: N</c> is (N, 0);
/// no window is all history before as-of (<see cref="FromDaysAgo"/> null).
/// </summary>
public sealed record TraitWindow(int? FromDaysAgo, int ToDaysAgo)
{
    public static TraitWindow AllHistory { get; } = new(null, 0);
}

/// <summary>Comparison operators of a trait filter, with SQL's meaning (a NULL value never passes a comparison).</summary>
public enum FilterOperator
{
    Equal,
    NotEqual,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
    In,
    NotIn,
    IsNull,
    IsNotNull,

    /// <summary>
    /// The value is among the N latest distinct values of the column (N the one constant): values ranked by the first
    /// event before as-of that carries them and passes the trait's other conditions, newest first, ties by the larger
    /// value. "Opened the last three emails" is a distinct count of <c>campaign_id</c> with <c>in_latest 3</c>. The
    /// profiles stage resolves it to <see cref="In"/> before its main scan (<see cref="LatestValues"/>).
    /// </summary>
    InLatest,
}

/// <summary>
/// One condition of a trait's filter on a column of its source. <see cref="Values"/> hold the constants typed as the
/// column: <c>string</c>, <c>long</c> (int64; also booleans as 0/1, dates as days since 1970-01-01, timestamps as UTC
/// microseconds) or <c>double</c>.
/// </summary>
public sealed record TraitCondition(string Column, ColumnType Type, FilterOperator Operator, IReadOnlyList<object> Values);

/// <summary>One computed trait: <c>function(column)</c> over the matching events of a source, per profile.</summary>
public sealed record TraitDefinition
{
    public required string Name { get; init; }

    public string Description { get; init; } = "";

    public required string Source { get; init; }

    public required TraitFunction Function { get; init; }

    /// <summary>The value column; null for functions that read only the event time (and for a plain count).</summary>
    public string? Column { get; init; }

    public ColumnType? ColumnType { get; init; }

    /// <summary>The source's event-time column.</summary>
    public required string Timestamp { get; init; }

    /// <summary>Every condition must hold (AND).</summary>
    public IReadOnlyList<TraitCondition> Conditions { get; init; } = [];

    public TraitWindow Window { get; init; } = TraitWindow.AllHistory;

    /// <summary>Where the trait is defined, for messages (<c>profiles.yaml:12</c>).</summary>
    public string Origin { get; init; } = ProfilesDefinition.FileName;

    public ColumnType OutputType => TraitFunctions.OutputType(Function, ColumnType);
}
