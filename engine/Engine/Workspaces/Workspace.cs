using Engine.Identity;
using Engine.Storage;

namespace Engine.Workspaces;

/// <summary>
/// A workspace: the folder of configuration a user versions, like a dbt project. It holds <c>workspace.yaml</c>,
/// one file per source under <c>sources/</c>, optionally <c>identity.yaml</c> (the identity rules) and <c>profiles.yaml</c> (attributes and traits), one file per segment under <c>segments/</c> and one per model under <c>models/</c>. Secrets never live
/// here: destinations read credentials from the environment.
/// </summary>
public sealed class Workspace
{
    /// <summary>The name of the workspace's root file.</summary>
    public const string FileName = "workspace.yaml";

    public Workspace(string directory, string name, string output, IReadOnlyList<SourceDefinition> sources, IReadOnlyList<SegmentDefinition> segments, IdentityRules? identity = null,
        Profiles.ProfilesDefinition? profiles = null, IReadOnlyList<Scores.ModelDefinition>? models = null)
    {
        Models = models ?? [];
        Profiles = profiles ?? Engine.Profiles.ProfilesDefinition.Empty;
        Identity = identity ?? IdentityRules.Default;
        Directory = directory;
        Name = name;
        Output = output;
        Sources = sources;
        Segments = segments;
    }

    /// <summary>The workspace folder (absolute).</summary>
    public string Directory { get; }

    /// <summary>The workspace's name.</summary>
    public string Name { get; }

    /// <summary>Where runs are written: a path relative to the workspace, an absolute path, or an s3:// URI.</summary>
    public string Output { get; }

    /// <summary>The declared sources, in file-name order.</summary>
    public IReadOnlyList<SourceDefinition> Sources { get; }

    /// <summary>The declared segments, in file-name order.</summary>
    public IReadOnlyList<SegmentDefinition> Segments { get; }

    /// <summary>The identity rules of <c>identity.yaml</c>, or <see cref="IdentityRules.Default"/> when the workspace has none.</summary>
    public IdentityRules Identity { get; }

    /// <summary>The attributes and traits of <c>profiles.yaml</c>; none when the workspace has no such file.</summary>
    public Profiles.ProfilesDefinition Profiles { get; }

    /// <summary>The declared models (<c>models/</c>), in file-name order.</summary>
    public IReadOnlyList<Scores.ModelDefinition> Models { get; }

    /// <summary>
    /// Every column of a run's profile table after <c>profile_id</c>: the attributes and traits of <c>profiles.yaml</c>,
    /// then each model's score and decile. Segments are conditions over these.
    /// </summary>
    public IEnumerable<ColumnSpec> ProfileColumns => Profiles.OutputColumns.Concat(Models.SelectMany(m => m.OutputColumns));
}

/// <summary>A dataset the engine reads: where it is, its format, its columns and which of them are identifiers.</summary>
public sealed class SourceDefinition
{
    public required string Name { get; init; }

    /// <summary>The file (relative to the workspace) this definition came from.</summary>
    public required string File { get; init; }

    public string Description { get; init; } = "";

    /// <summary>Where the data is: a path relative to the workspace, an absolute path, or an s3:// URI.</summary>
    public required string Location { get; init; }

    public DataFormat Format { get; init; } = DataFormat.Parquet;

    public required DataSchema Schema { get; init; }

    /// <summary>Identifier columns and the identifier type each carries (column → type), e.g. user_id → customer_id.</summary>
    public IReadOnlyDictionary<string, string> Identifiers { get; init; } = new Dictionary<string, string>();

    /// <summary>
    /// Phone identifier columns whose numbers, when written without a country code, are read in the country named by
    /// another column of the same row (column → region column, e.g. phone → country), instead of the type's default
    /// region: a CRM with customers in several countries.
    /// </summary>
    public IReadOnlyDictionary<string, string> PhoneRegionColumns { get; init; } = new Dictionary<string, string>();

    /// <summary>Composite identifier types and the columns each is built from, in order (type → columns), e.g. name_postcode → [first_name, last_name, postcode].</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> CompositeIdentifiers { get; init; } = new Dictionary<string, IReadOnlyList<string>>();

    /// <summary>The column holding each row's event or update time, if any.</summary>
    public string? TimestampColumn { get; init; }

    /// <summary>How the source's CSV files are read (the file's <c>csv:</c> mapping); null for the defaults and for Parquet.</summary>
    public CsvReadOptions? Csv { get; init; }

    /// <summary>
    /// The options every stage scans this source with, so that ingest, identity and later stages read its files the
    /// same way: the CSV options above, and for a file without a header the declared columns as its field names, so
    /// that a stage reading only some columns (identity reads the identifier columns) still finds each at its position.
    /// </summary>
    /// <param name="parallelism">Row groups (CSV: files) read at once.</param>
    public ScanOptions ScanOptions(int parallelism) => new()
    {
        Parallelism = parallelism,
        Csv = Csv is { HasHeader: false, ColumnNames: null } ? Csv with { ColumnNames = [.. Schema.Columns.Select(c => c.Name)] } : Csv,
    };
}

/// <summary>An audience: a SQL boolean condition over the profile columns (evaluated by the segment stage).</summary>
public sealed class SegmentDefinition
{
    public required string Name { get; init; }

    public required string File { get; init; }

    public required string Description { get; init; }

    public required string Condition { get; init; }

    /// <summary>Line of the condition in its file, so condition errors can point into it.</summary>
    public int ConditionLine { get; init; }

    /// <summary>Where each part of the condition is in its file (line and column of an offset in the condition).</summary>
    public TextPositions ConditionPositions { get; init; } = TextPositions.At(1, 1);
}
