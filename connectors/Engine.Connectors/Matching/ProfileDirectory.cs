using Engine.Connectors.Destinations;
using Engine.Storage;

namespace Engine.Connectors.Matching;

/// <summary>
/// What delivery needs to know about the profiles it sends, read from the run's own outputs: each profile's
/// identifiers from <c>identity/</c> (canonical values: emails lower-case and trimmed, phones E.164) and the mapped
/// columns from <c>profiles/</c>. Only the profiles being delivered are kept.
/// </summary>
public sealed class ProfileDirectory
{
    private readonly Dictionary<long, List<ProfileIdentifier>> _identifiers = [];
    private readonly Dictionary<long, object?[]> _fields = [];
    private readonly Dictionary<string, int> _columns = new(StringComparer.Ordinal);

    private ProfileDirectory()
    {
    }

    /// <summary>Profiles asked for that <c>identity/</c> does not hold (a delta of another run, or a damaged run).</summary>
    public int Missing { get; private set; }

    /// <summary>
    /// Reads the identifiers and <paramref name="columns"/> of <paramref name="profiles"/> from the run at
    /// <paramref name="run"/> (<c>&lt;output&gt;/runs/&lt;run_id&gt;</c>).
    /// </summary>
    public static async Task<ProfileDirectory> LoadAsync(
        StorageLocation run, IReadOnlySet<long> profiles, IReadOnlyList<string> columns, int parallelism, CancellationToken cancellationToken)
    {
        var directory = new ProfileDirectory();
        if (profiles.Count == 0)
        {
            // Nothing left to send (a delivery run again after it finished): no need to read the run.
            return directory;
        }
        var identity = await Dataset.OpenAsync(run.Child("identity"), DataFormat.Parquet, cancellationToken);
        DatasetScan.Run(
            identity,
            [new("identifier_type", ColumnType.String), new("identifier_value", ColumnType.String), new("profile_id", ColumnType.Int64)],
            () => new List<(long, ProfileIdentifier)>(),
            (found, scan) =>
            {
                var batch = scan.Batch;
                var ids = batch.Column(2);
                for (var i = 0; i < batch.Length; i++)
                {
                    if (ArrowValues.Long(ids, i) is { } id && profiles.Contains(id))
                    {
                        found.Add((id, new ProfileIdentifier(ArrowValues.String(batch.Column(0), i)!, ArrowValues.String(batch.Column(1), i)!)));
                    }
                }
            },
            new ScanOptions { Parallelism = parallelism }, cancellationToken).ToList().ForEach(found =>
            {
                foreach (var (id, identifier) in found)
                {
                    if (!directory._identifiers.TryGetValue(id, out var list))
                    {
                        directory._identifiers[id] = list = [];
                    }
                    list.Add(identifier);
                }
            });
        foreach (var list in directory._identifiers.Values)
        {
            // Stable order whatever the scan's: by type, then value.
            list.Sort(static (a, b) => a.Type != b.Type ? string.CompareOrdinal(a.Type, b.Type) : string.CompareOrdinal(a.Value, b.Value));
        }
        directory.Missing = profiles.Count(p => !directory._identifiers.ContainsKey(p));

        var wanted = columns.Distinct().Where(c => c != "profile_id").ToList();
        for (var c = 0; c < wanted.Count; c++)
        {
            directory._columns[wanted[c]] = c;
        }
        if (wanted.Count > 0)
        {
            var table = await Dataset.OpenAsync(run.Child("profiles"), DataFormat.Parquet, cancellationToken);
            var file = table.Files.Count > 0 ? ParquetDataFile.Open(table.Location.Store, table.Files[0].Key) : null;
            var specs = new List<ColumnSpec> { new("profile_id", ColumnType.Int64) };
            foreach (var column in wanted)
            {
                var field = file?.Schema.GetFieldByName(column) ?? throw new EngineException($"{table.Location}: profiles/ has no column '{column}'");
                specs.Add(new ColumnSpec(column, ColumnTypeOf(field.DataType, column)));
            }
            file?.Dispose();
            foreach (var found in DatasetScan.Run(
                table, specs, () => new List<(long, object?[])>(),
                (found, scan) =>
                {
                    var batch = scan.Batch;
                    for (var i = 0; i < batch.Length; i++)
                    {
                        if (ArrowValues.Long(batch.Column(0), i) is { } id && profiles.Contains(id))
                        {
                            var values = new object?[wanted.Count];
                            for (var c = 0; c < values.Length; c++)
                            {
                                values[c] = ArrowValues.Value(batch.Column(c + 1), i);
                            }
                            found.Add((id, values));
                        }
                    }
                },
                new ScanOptions { Parallelism = parallelism }, cancellationToken))
            {
                foreach (var (id, values) in found)
                {
                    directory._fields[id] = values;
                }
            }
        }
        return directory;
    }

    /// <summary>
    /// A directory built from values in memory rather than a run's files (tests, and callers that already hold the
    /// profiles): identifiers are ordered as <see cref="LoadAsync"/> orders them; a field missing from a profile's
    /// map reads as null.
    /// </summary>
    internal static ProfileDirectory FromMemory(
        IReadOnlyDictionary<long, IReadOnlyList<ProfileIdentifier>> identifiers, IReadOnlyDictionary<long, IReadOnlyDictionary<string, object?>>? fields = null)
    {
        var directory = new ProfileDirectory();
        foreach (var (id, list) in identifiers)
        {
            var sorted = new List<ProfileIdentifier>(list);
            sorted.Sort(static (a, b) => a.Type != b.Type ? string.CompareOrdinal(a.Type, b.Type) : string.CompareOrdinal(a.Value, b.Value));
            directory._identifiers[id] = sorted;
        }
        foreach (var (id, values) in fields ?? new Dictionary<long, IReadOnlyDictionary<string, object?>>())
        {
            foreach (var column in values.Keys)
            {
                directory._columns.TryAdd(column, directory._columns.Count);
            }
        }
        foreach (var (id, values) in fields ?? new Dictionary<long, IReadOnlyDictionary<string, object?>>())
        {
            var row = new object?[directory._columns.Count];
            foreach (var (column, value) in values)
            {
                row[directory._columns[column]] = value;
            }
            directory._fields[id] = row;
        }
        return directory;
    }

    /// <summary>Every identifier of the profile (all types), ordered by type then value; empty when it has none.</summary>
    public IReadOnlyList<ProfileIdentifier> Identifiers(long profile) => _identifiers.TryGetValue(profile, out var list) ? list : [];

    /// <summary>The profile's identifiers of <paramref name="types"/>, in that order of types.</summary>
    public List<ProfileIdentifier> IdentifiersOf(long profile, IReadOnlyList<string> types)
    {
        var all = Identifiers(profile);
        var result = new List<ProfileIdentifier>();
        foreach (var type in types)
        {
            foreach (var identifier in all)
            {
                if (identifier.Type == type)
                {
                    result.Add(identifier);
                }
            }
        }
        return result;
    }

    /// <summary>The value of a loaded column for the profile (null when the profile or the value is missing).</summary>
    public object? Field(long profile, string column)
    {
        if (column == "profile_id")
        {
            return profile;
        }
        return _fields.TryGetValue(profile, out var values) && _columns.TryGetValue(column, out var index) ? values[index] : null;
    }

    private static ColumnType ColumnTypeOf(Apache.Arrow.Types.IArrowType type, string column) => type switch
    {
        _ when ArrowValues.IsString(type) => ColumnType.String,
        Apache.Arrow.Types.Int64Type or Apache.Arrow.Types.Int32Type => ColumnType.Int64,
        Apache.Arrow.Types.DoubleType or Apache.Arrow.Types.FloatType => ColumnType.Double,
        Apache.Arrow.Types.BooleanType => ColumnType.Boolean,
        Apache.Arrow.Types.TimestampType => ColumnType.Timestamp,
        Apache.Arrow.Types.Date32Type => ColumnType.Date,
        _ => throw new EngineException($"profiles/ column '{column}' has type {type.Name}, which delivery cannot send"),
    };
}
