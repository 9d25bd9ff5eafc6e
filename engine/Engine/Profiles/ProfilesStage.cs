using System.Diagnostics;
using System.Runtime.ExceptionServices;
using System.Text.Json.Serialization;
using Apache.Arrow;
using Apache.Arrow.Types;
using Engine.Diagnostics;
using Engine.Identity;
using Engine.Storage;
using Engine.Workspaces;
using Microsoft.Extensions.Logging;

namespace Engine.Profiles;

/// <summary>Progress of the profiles stage: the step and rows done in it.</summary>
public readonly record struct ProfilesProgress(string Step, long Done);

/// <summary>What the profiles stage wrote: its figures, the <c>profiles/</c> folder, and the table itself.</summary>
/// <param name="Report">The figures recorded in the manifest.</param>
/// <param name="Location">The <c>profiles/</c> dataset written.</param>
/// <param name="Table">The same rows in memory, for the stages after (segments evaluate over it).</param>
public sealed record ProfilesResult(ProfilesReport Report, StorageLocation Location, ProfileTable Table);

/// <summary>One as-of of a build at several (<see cref="ProfilesStage.BuildAtAsync"/>): the time, and the profile rows to compute (null: every profile).</summary>
internal sealed record ProfileCutoff(DateTimeOffset AsOf, RowSubset? Rows);

/// <summary>The profiles stage's figures in <c>manifest.json</c> (under <c>profiles</c>).</summary>
public sealed class ProfilesReport
{
    [JsonPropertyName("profiles")] public long Profiles { get; set; }
    [JsonPropertyName("attributes")] public int Attributes { get; set; }
    [JsonPropertyName("traits")] public int Traits { get; set; }
    [JsonPropertyName("attribute_rows_read")] public long AttributeRowsRead { get; set; }
    [JsonPropertyName("attribute_rows_without_profile")] public long AttributeRowsWithoutProfile { get; set; }
    [JsonPropertyName("events_read")] public long EventsRead { get; set; }
    [JsonPropertyName("events_without_profile")] public long EventsWithoutProfile { get; set; }

    /// <summary>Events (or attribute rows) at or after the as-of time, which no trait or attribute counts.</summary>
    [JsonPropertyName("rows_after_as_of")] public long RowsAfterAsOf { get; set; }

    [JsonPropertyName("sources")] public Dictionary<string, ProfilesSourceReport> Sources { get; set; } = [];

    /// <summary>Per trait with an <c>in_latest</c> filter, the values it resolved to tonight (newest first).</summary>
    [JsonPropertyName("latest_values")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public Dictionary<string, List<string>>? LatestValues { get; set; }
    [JsonPropertyName("timings_ms")] public Dictionary<string, long> TimingsMs { get; set; } = [];
}

/// <summary>One source as the profiles stage read it.</summary>
public sealed class ProfilesSourceReport
{
    [JsonPropertyName("rows")] public long Rows { get; set; }
    [JsonPropertyName("rows_without_profile")] public long RowsWithoutProfile { get; set; }
    [JsonPropertyName("rows_after_as_of")] public long RowsAfterAsOf { get; set; }
}

/// <summary>
/// The profiles stage: one row per profile id of the run's <c>identity/</c> output, with the CRM attributes (by
/// survivorship) and every trait of <c>profiles.yaml</c>, written to <c>profiles/</c> and returned as a
/// <see cref="ProfileTable"/>.
/// </summary>
/// <remarks>
/// <para><b>Which profile a row belongs to.</b> The profile of its highest-priority identifier that has one. For a
/// file the identity stage read in this process, each row's profile is handed over (<see cref="RowProfiles"/>) and the
/// identifier columns are not read at all. Otherwise the row's identifier columns are normalised with the workspace's
/// identity rules exactly as the identity stage does (<see cref="BatchResolver"/>) and each (type, canonical value) key
/// is looked up in a hash table of <c>identity/</c>. Shared values (NULL profile), blocked and invalid values map to
/// nothing; a row with no profile is counted, not silently dropped.</para>
/// <para><b>Time.</b> Only rows before the as-of time count: events with <c>ts &lt; as_of</c>, attribute rows with
/// <c>updated_at &lt; as_of</c> (or NULL, treated as older than any dated row). A window <c>last_days: N</c> is
/// <c>as_of - N days &lt;= ts &lt; as_of</c>; <c>{ from_days_ago: A, to_days_ago: B }</c> is
/// <c>as_of - A days &lt;= ts &lt; as_of - B days</c>. Events with a NULL time count in no trait.</para>
/// <para><b>One pass per source.</b> Every trait and attribute of a source is computed in one parallel scan
/// (<see cref="DatasetScan"/>); each worker has its own accumulators indexed by profile row, merged at the end by
/// order-independent rules, so the output does not depend on the number of workers.</para>
/// </remarks>
public sealed class ProfilesStage
{
    /// <summary>The stage's folder in a run.</summary>
    public const string Folder = "profiles";

    private const long MicrosPerDay = 86_400_000_000L;

    private readonly StorageResolver _storage;
    private readonly ILogger _logger;

    public ProfilesStage(StorageResolver storage, ILogger logger)
    {
        _storage = storage;
        _logger = logger;
    }

    /// <summary>The run's identity output already in memory (the identity stage ran in this process); null: read from <c>identity/</c>.</summary>
    internal ProfileLookup? Lookup { get; init; }

    /// <summary>
    /// Builds the profiles of <paramref name="workspace"/> from the run's <paramref name="identity"/> output as of
    /// <paramref name="asOf"/> and writes them to <paramref name="output"/> (atomically).
    /// </summary>
    public async Task<ProfilesResult> RunAsync(
        Workspace workspace, StorageLocation identity, StorageLocation output, DateTimeOffset asOf, int parallelism,
        IProgress<ProfilesProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(workspace);
        var (table, report) = await BuildAsync(workspace, workspace.Profiles, identity, asOf, parallelism, progress, cancellationToken);
        var clock = Stopwatch.StartNew();
        progress?.Report(new ProfilesProgress("writing profiles", table.Count));
        await WriteAsync(output, table, parallelism, cancellationToken);
        report.TimingsMs["write"] = clock.ElapsedMilliseconds;
        Log.ProfilesFinished(_logger, table.Count, report.Attributes, report.Traits);
        return new ProfilesResult(report, output, table);
    }

    /// <summary>
    /// Builds the profile table of <paramref name="definition"/> (attributes and traits over the sources of
    /// <paramref name="workspace"/>) as of <paramref name="asOf"/>, without writing it: what a run writes.
    /// </summary>
    public async Task<(ProfileTable Table, ProfilesReport Report)> BuildAsync(
        Workspace workspace, ProfilesDefinition definition, StorageLocation identity, DateTimeOffset asOf, int parallelism,
        IProgress<ProfilesProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(workspace);
        ArgumentNullException.ThrowIfNull(definition);
        var clock = Stopwatch.StartNew();
        var lookup = Lookup;
        if (lookup is null)
        {
            progress?.Report(new ProfilesProgress("reading identities", 0));
            lookup = await ReadLookupAsync(workspace, identity, parallelism, cancellationToken);
        }
        var identities = clock.ElapsedMilliseconds;
        var (table, report) = (await BuildAtAsync(workspace, definition, lookup, [new ProfileCutoff(asOf, null)], parallelism, progress, cancellationToken))[0];
        var timings = new Dictionary<string, long> { ["identities"] = identities };
        foreach (var (step, ms) in report.TimingsMs)
        {
            timings[step] = ms;
        }
        report.TimingsMs = timings;
        return (table, report);
    }

    /// <summary>The profile row of every identifier in the run's <c>identity/</c> output.</summary>
    internal static async Task<ProfileLookup> ReadLookupAsync(Workspace workspace, StorageLocation identity, int parallelism, CancellationToken cancellationToken)
    {
        var dataset = await Dataset.OpenAsync(identity, DataFormat.Parquet, cancellationToken);
        return ProfileLookup.Read(dataset, workspace.Identity, Math.Max(1, parallelism), cancellationToken);
    }

    /// <summary>
    /// Builds the profile table of <paramref name="definition"/> as of each of <paramref name="cutoffs"/> in one scan
    /// per source, each table over its cutoff's rows (every profile when it names none). What model training reads:
    /// the same traits at several past cutoffs, for the few profiles in a model's population. A scan's work is mostly
    /// decoding and finding each row's profile, which the cutoffs share; each adds only its filters and its state,
    /// sized by its rows.
    /// </summary>
    internal async Task<IReadOnlyList<(ProfileTable Table, ProfilesReport Report)>> BuildAtAsync(
        Workspace workspace, ProfilesDefinition definition, ProfileLookup lookup, IReadOnlyList<ProfileCutoff> cutoffs, int parallelism,
        IProgress<ProfilesProgress>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(workspace);
        ArgumentNullException.ThrowIfNull(definition);
        ArgumentNullException.ThrowIfNull(lookup);
        var profiles = lookup.Profiles;
        var count = cutoffs.Count;
        var reports = new ProfilesReport[count];
        var asOf = new long[count];
        var sizes = new int[count];
        var subsets = new RowSubset?[count];
        var definitions = new ProfilesDefinition[count];
        for (var c = 0; c < count; c++)
        {
            asOf[c] = (cutoffs[c].AsOf.ToUniversalTime() - DateTimeOffset.UnixEpoch).Ticks / 10;
            subsets[c] = cutoffs[c].Rows;
            sizes[c] = subsets[c]?.Count ?? profiles;
            reports[c] = new ProfilesReport { Profiles = sizes[c] };
            definitions[c] = definition;
        }
        var clock = Stopwatch.StartNew();

        if (definition.Traits.Any(t => t.Conditions.Any(c => c.Operator == FilterOperator.InLatest)))
        {
            // The latest values are ranked before each cutoff: "the last three campaigns" differ from one to the next.
            progress?.Report(new ProfilesProgress("ranking latest values", 0));
            for (var c = 0; c < count; c++)
            {
                (definitions[c], reports[c].LatestValues) = await LatestValues.ResolveAsync(
                    definition, source => OpenAsync(source, workspace, cancellationToken), workspace.Sources, asOf[c], parallelism, cancellationToken);
            }
            Time("latest_values");
        }

        var attributes = definition.Attributes;
        var attributeResults = new Accumulator?[count, attributes.Count];
        var traitResults = new Accumulator?[count, definition.Traits.Count];
        foreach (var source in workspace.Sources)
        {
            var plan = Plan(source, definitions, attributes, asOf);
            if (plan is null)
            {
                continue;
            }
            var dataset = await OpenAsync(source, workspace, cancellationToken);
            long rowsSoFar = 0;
            var gate = new Lock();
            // Workers share accumulator sets, a few workers to a set, rather than each owning one: the per-profile state
            // is the stage's largest allocation (hundreds of bytes a profile), and a copy per core would multiply it.
            var sets = new AccumulatorSet[]?[(Math.Max(1, parallelism) + WorkersPerAccumulatorSet - 1) / WorkersPerAccumulatorSet];
            var workersMade = 0;
            List<Worker> Scan(Dataset part, IReadOnlyList<ColumnSpec> specs, ProfileLookup resolving, int[][]? fileProfiles) => [.. DatasetScan.Run(
                part, specs,
                () =>
                {
                    lock (gate)
                    {
                        var ordinal = workersMade++;
                        var set = sets[ordinal % sets.Length] ??= [.. Enumerable.Range(0, count).Select(c => new AccumulatorSet(plan, sizes[c], asOf[c], parallelism))];
                        return new Worker(plan, workspace.Identity, resolving, asOf, subsets, set, fileProfiles, member: ordinal / sets.Length);
                    }
                },
                (worker, scan) =>
                {
                    try
                    {
                        worker.Consume(scan);
                    }
                    catch (EngineException e) when (e is not DataException)
                    {
                        // A sum that overflows or cannot be added exactly: name the file it came from.
                        throw new DataException(scan.Location, e.Message, e);
                    }
                    if (progress is not null)
                    {
                        lock (gate)
                        {
                            rowsSoFar += scan.Batch.Length;
                            progress.Report(new ProfilesProgress($"reading {source.Name}", rowsSoFar));
                        }
                    }
                },
                source.ScanOptions(Math.Max(1, parallelism)), cancellationToken)];

            // Files whose rows' profiles the identity stage handed over are read without their identifier columns;
            // the rest (a resumed run, an incremental night's older files, a file new or changed since identity read
            // it, a file with a shared value before another identifier) resolve each row from its identifiers.
            var handedOver = new List<DataFile>();
            var handedOverRows = new List<int[]>();
            var toResolve = new List<DataFile>();
            foreach (var file in dataset.Files)
            {
                if (lookup.Rows?.Of(source.Name, file) is { } fileRows)
                {
                    handedOver.Add(file);
                    handedOverRows.Add(fileRows);
                }
                else
                {
                    toResolve.Add(file);
                }
            }
            var states = new List<Worker>();
            if (handedOver.Count > 0)
            {
                states.AddRange(Scan(dataset.WithFiles(handedOver), plan.Specs[..plan.ValueColumns], lookup, [.. handedOverRows]));
            }
            if (toResolve.Count > 0)
            {
                var identifiers = source.Identifiers.Count + source.CompositeIdentifiers.Count > 0;
                var resolving = identifiers ? await lookup.ResolvingAsync(Math.Max(1, parallelism), cancellationToken) : lookup;
                states.AddRange(Scan(handedOver.Count == 0 ? dataset : dataset.WithFiles(toResolve), plan.Specs, resolving, null));
            }

            for (var k = 0; k < sets.Length; k++)
            {
                if (sets[k] is not { } set)
                {
                    continue;
                }
                // Dropped as soon as it is merged, so that no more than two sets' state is alive at once.
                sets[k] = null;
                for (var c = 0; c < count; c++)
                {
                    for (var t = 0; t < plan.Traits.Count; t++)
                    {
                        MergeInto(ref traitResults[c, plan.Traits[t].Trait], set[c].Traits[t]);
                    }
                    for (var a = 0; a < plan.Attributes.Count; a++)
                    {
                        MergeInto(ref attributeResults[c, plan.Attributes[a].Attribute], set[c].Attributes[a]);
                    }
                }
            }
            long rows = 0, withoutProfile = 0;
            foreach (var worker in states)
            {
                rows += worker.Rows;
                withoutProfile += worker.WithoutProfile;
            }
            for (var c = 0; c < count; c++)
            {
                var sourceReport = new ProfilesSourceReport { Rows = rows, RowsWithoutProfile = withoutProfile };
                foreach (var worker in states)
                {
                    sourceReport.RowsAfterAsOf += worker.AfterAsOf[c];
                }
                var report = reports[c];
                report.Sources[source.Name] = sourceReport;
                report.RowsAfterAsOf += sourceReport.RowsAfterAsOf;
                if (plan.Traits.Count > 0)
                {
                    report.EventsRead += rows;
                    report.EventsWithoutProfile += withoutProfile;
                }
                if (plan.Attributes.Count > 0)
                {
                    report.AttributeRowsRead += rows;
                    report.AttributeRowsWithoutProfile += withoutProfile;
                }
            }
            Time($"read:{source.Name}");
            Log.ProfilesSourceRead(_logger, source.Name, rows, withoutProfile);
        }

        // Columns in the file's order: attributes, then traits. A column no source fed (an empty dataset) is all NULL / 0.
        var tables = new (ProfileTable, ProfilesReport)[count];
        for (var c = 0; c < count; c++)
        {
            // Each column built on its own worker: a pass over every profile, and a distinct count's sort, apiece.
            var built = new IArrowArray[attributes.Count + definition.Traits.Count];
            try
            {
                Parallel.For(0, built.Length, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, parallelism), CancellationToken = cancellationToken }, k =>
                {
                    Accumulator accumulator;
                    if (k < attributes.Count)
                    {
                        accumulator = attributeResults[c, k] ?? AttributeAccumulator(attributes[k].Type, sizes[c]);
                        attributeResults[c, k] = null;
                    }
                    else
                    {
                        var t = k - attributes.Count;
                        accumulator = traitResults[c, t] ?? TraitAccumulator(definition.Traits[t], sizes[c], asOf[c]);
                        traitResults[c, t] = null;
                    }
                    built[k] = accumulator.Build();
                });
            }
            catch (AggregateException e)
            {
                ExceptionDispatchInfo.Throw(e.Flatten().InnerExceptions[0]);
            }
            var columns = new List<ProfileColumn>(built.Length);
            for (var a = 0; a < attributes.Count; a++)
            {
                columns.Add(new ProfileColumn(attributes[a].Name, attributes[a].Type, built[a]));
            }
            for (var t = 0; t < definition.Traits.Count; t++)
            {
                var trait = definition.Traits[t];
                columns.Add(new ProfileColumn(trait.Name, trait.OutputType, built[attributes.Count + t]));
            }
            var ids = lookup.ProfileIds;
            if (subsets[c] is { } subset)
            {
                ids = new long[subset.Count];
                for (var i = 0; i < ids.Length; i++)
                {
                    ids[i] = lookup.ProfileIds[subset.Rows[i]];
                }
            }
            var table = new ProfileTable(new Int64Array(ManagedArrowBuffer.Wrap(ids), ArrowBuffer.Empty, sizes[c], 0, 0), columns);
            reports[c].Attributes = attributes.Count;
            reports[c].Traits = definition.Traits.Count;
            tables[c] = (table, reports[c]);
        }
        Time("build");
        return tables;

        static void MergeInto(ref Accumulator? target, Accumulator from)
        {
            if (target is null)
            {
                target = from;
            }
            else
            {
                target.Merge(from);
            }
        }

        void Time(string step)
        {
            foreach (var report in reports)
            {
                report.TimingsMs[step] = clock.ElapsedMilliseconds;
            }
            clock.Restart();
        }
    }

    /// <summary>The Arrow schema of <c>profiles/</c> for a table: profile_id, then each column (strings dictionary-encoded).</summary>
    public static Schema SchemaOf(ProfileTable table)
    {
        ArgumentNullException.ThrowIfNull(table);
        var builder = new Schema.Builder().Field(f => f.Name(ProfileTable.ProfileIdColumn).DataType(Int64Type.Default).Nullable(false));
        foreach (var column in table.Columns)
        {
            builder.Field(new Field(column.Name, column.Values.Data.DataType, nullable: true));
        }
        return builder.Build();
    }

    /// <summary>Writes <paramref name="table"/> as a <c>profiles/</c> dataset at <paramref name="output"/>, atomically.</summary>
    public static async Task WriteAsync(StorageLocation output, ProfileTable table, int parallelism = 1, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(table);
        var schema = SchemaOf(table);
        var arrays = new List<IArrowArray>(table.Columns.Count + 1) { table.ProfileIds };
        foreach (var column in table.Columns)
        {
            arrays.Add(column.Values);
        }
        // Not disposed, nor its slices: the arrays stay the table's.
        var batch = new RecordBatch(schema, arrays, table.Count);
        // Files of a million profiles, encoded on every worker: encoding is most of the write, and one file is one thread.
        await ParquetDatasetWriter.WriteRangesAsync(output, schema, table.Count, (first, count, write) =>
        {
            if (count > 0)
            {
                write(batch.Slice((int)first, (int)count));
            }
        }, parallelism, ParquetWriteOptions.Default with
        {
            FileRows = FileRows,
            PlainColumns = PlainColumns(schema),
            // Times (seconds or microseconds apart from one profile to the next) that Snappy could not shrink at all.
            UncompressedColumns = schema.FieldsList.Where(f => f.DataType is TimestampType).Select(f => f.Name).ToHashSet(),
        }, cancellationToken);
    }

    /// <summary>
    /// The columns of <c>profiles/</c> written without a dictionary: the profile id, times and doubles (scores, sums),
    /// nearly one value per profile, where the writer would build a dictionary of millions only to give it up. Counts,
    /// days and strings repeat a few values and keep theirs.
    /// </summary>
    private static HashSet<string> PlainColumns(Schema schema) =>
        [.. schema.FieldsList.Where(f => f.DataType is TimestampType or DoubleType || f.Name == ProfileTable.ProfileIdColumn).Select(f => f.Name)];

    /// <summary>Profiles per file of <c>profiles/</c>: the unit its write is spread over workers by.</summary>
    internal const int FileRows = 1 << 20;

    private async Task<Dataset> OpenAsync(SourceDefinition source, Workspace workspace, CancellationToken cancellationToken)
    {
        var location = _storage.Resolve(source.Location, workspace.Directory);
        try
        {
            return await Dataset.OpenAsync(location, source.Format, cancellationToken);
        }
        catch (DataException e)
        {
            throw new DataException(e.Location, $"{e.Message[(e.Message.StartsWith(e.Location + ": ", StringComparison.Ordinal) ? e.Location.Length + 2 : 0)..]} (source '{source.Name}', {source.File})", e);
        }
    }

    /// <summary>
    /// A trait bound to one source's scan: its index, value column, and per cutoff its conditions and window bounds
    /// (UTC microseconds). Cutoffs share their conditions but an <c>in_latest</c> trait's; a scan evaluates each
    /// distinct list of conditions once per batch, whichever traits and cutoffs it belongs to.
    /// </summary>
    private sealed record TraitSlot(
        int Trait, TraitDefinition Definition, int Column, IReadOnlyList<(TraitCondition Condition, int Column)>[] Conditions, long[] From, long[] To);

    /// <summary>An attribute bound to one source's scan: its index, column and rank (0 under recency survivorship).</summary>
    private sealed record AttributeSlot(int Attribute, ColumnSpec Spec, int Column, int Rank);

    /// <summary>What one source's scan reads and computes.</summary>
    private sealed class SourcePlan
    {
        public required SourceDefinition Source { get; init; }
        public List<ColumnSpec> Specs { get; } = [];
        public Dictionary<string, int> Positions { get; } = new(StringComparer.Ordinal);

        /// <summary>Positions of the columns converted for the loops (times, values, filters); identifiers are read by the resolver.</summary>
        public SortedSet<int> Loaded { get; } = [];

        public List<(int Column, IdentifierType Type)> Identifiers { get; } = [];
        public List<int> Regions { get; } = [];
        public List<(IReadOnlyList<int> Columns, IdentifierType Type)> Composites { get; } = [];
        public int EventTime { get; set; } = -1;
        public int UpdatedAt { get; set; } = -1;

        /// <summary>
        /// The columns before the identifier columns: all a scan reads of a file whose rows' profiles the identity
        /// stage handed over (<see cref="RowProfiles"/>). An identifier column that is also a value column is among them.
        /// </summary>
        public int ValueColumns { get; set; }
        public List<TraitSlot> Traits { get; } = [];
        public List<AttributeSlot> Attributes { get; } = [];

        public int Position(string column, bool load)
        {
            if (!Positions.TryGetValue(column, out var position))
            {
                var spec = Source.Schema.Find(column)
                    ?? throw new EngineException($"source '{Source.Name}': column '{column}' is not declared in its columns ({Source.File})");
                position = Specs.Count;
                Specs.Add(spec);
                Positions.Add(column, position);
            }
            if (load)
            {
                Loaded.Add(position);
            }
            return position;
        }
    }

    /// <summary>What a scan of <paramref name="source"/> reads and computes for each cutoff's definition (the same traits, with each cutoff's <c>in_latest</c> values).</summary>
    private static SourcePlan? Plan(SourceDefinition source, ProfilesDefinition[] definitions, IReadOnlyList<ColumnSpec> attributes, long[] asOf)
    {
        var plan = new SourcePlan { Source = source };
        var definition = definitions[0];
        for (var t = 0; t < definition.Traits.Count; t++)
        {
            var trait = definition.Traits[t];
            if (trait.Source != source.Name)
            {
                continue;
            }
            plan.EventTime = plan.Position(trait.Timestamp, load: true);
            var count = definitions.Length;
            var conditions = new IReadOnlyList<(TraitCondition, int)>[count];
            var from = new long[count];
            var to = new long[count];
            for (var c = 0; c < count; c++)
            {
                var atCutoff = definitions[c].Traits[t];
                conditions[c] = [.. atCutoff.Conditions.Select(condition => (condition, plan.Position(condition.Column, load: true)))];
                var window = trait.Window;
                from[c] = window.FromDaysAgo is { } days ? asOf[c] - days * MicrosPerDay : long.MinValue;
                to[c] = asOf[c] - window.ToDaysAgo * MicrosPerDay;
            }
            plan.Traits.Add(new TraitSlot(t, trait, trait.Column is null ? -1 : plan.Position(trait.Column, load: true), conditions, from, to));
        }
        for (var s = 0; s < definition.AttributeSources.Count; s++)
        {
            var attributeSource = definition.AttributeSources[s];
            if (attributeSource.Source != source.Name)
            {
                continue;
            }
            plan.UpdatedAt = attributeSource.UpdatedAt is { } updatedAt ? plan.Position(updatedAt, load: true) : -1;
            var rank = definition.Survivorship == Survivorship.Priority ? s : 0;
            foreach (var column in attributeSource.Columns)
            {
                var index = -1;
                for (var a = 0; a < attributes.Count; a++)
                {
                    if (attributes[a].Name == column.Name)
                    {
                        index = a;
                        break;
                    }
                }
                plan.Attributes.Add(new AttributeSlot(index, column, plan.Position(column.Name, load: true), rank));
            }
        }
        if (plan.Traits.Count == 0 && plan.Attributes.Count == 0)
        {
            return null;
        }
        plan.ValueColumns = plan.Specs.Count;
        // The identifier columns, as the identity stage reads them.
        foreach (var (column, _) in source.Identifiers)
        {
            plan.Position(column, load: false);
        }
        foreach (var region in source.PhoneRegionColumns.Values)
        {
            plan.Position(region, load: false);
        }
        foreach (var parts in source.CompositeIdentifiers.Values)
        {
            foreach (var part in parts)
            {
                plan.Position(part, load: false);
            }
        }
        return plan;
    }

    private static BestAccumulator AttributeAccumulator(ColumnType type, int profiles) => new BestAccumulator(profiles, type, orderSign: 1, valueSign: 1);

    private static Accumulator TraitAccumulator(TraitDefinition trait, int profiles, long asOf) => trait.Function switch
    {
        TraitFunction.Count => new CountAccumulator(profiles),
        TraitFunction.DistinctCount => new DistinctAccumulator(profiles),
        TraitFunction.Sum => new SumAccumulator(profiles, average: false, trait.ColumnType!.Value, trait.Name),
        TraitFunction.Avg => new SumAccumulator(profiles, average: true, trait.ColumnType!.Value, trait.Name),
        TraitFunction.Min => new BestAccumulator(profiles, trait.ColumnType!.Value, orderSign: 0, valueSign: -1),
        TraitFunction.Max => new BestAccumulator(profiles, trait.ColumnType!.Value, orderSign: 0, valueSign: 1),
        // first / last: the value at the earliest / latest event; events at the same instant: the smaller / larger value.
        TraitFunction.First => new BestAccumulator(profiles, trait.ColumnType!.Value, orderSign: -1, valueSign: -1),
        TraitFunction.Last => new BestAccumulator(profiles, trait.ColumnType!.Value, orderSign: 1, valueSign: 1),
        TraitFunction.FirstSeen => new SeenAccumulator(profiles, latest: false),
        TraitFunction.LastSeen => new SeenAccumulator(profiles, latest: true),
        TraitFunction.RecencyDays => new SeenAccumulator(profiles, latest: true, recencyAsOf: asOf),
        _ => throw new ArgumentOutOfRangeException(nameof(trait)),
    };

    /// <summary>How many scan workers share one <see cref="AccumulatorSet"/>: they take its locks only to add a batch's
    /// already-filtered rows, a small part of a batch's work next to decoding and resolving profiles.</summary>
    private const int WorkersPerAccumulatorSet = 4;

    /// <summary>
    /// The per-profile state of one source's traits and attributes, shared by the workers given it, each accumulator
    /// under its own lock: workers sharing a set add to different accumulators at once (each starts its round at a
    /// different one) instead of taking turns over the whole set, which at ten million profiles, where every add is a
    /// run of cache misses, kept a core waiting a sixth of the time.
    /// </summary>
    private sealed class AccumulatorSet
    {
        public AccumulatorSet(SourcePlan plan, int profiles, long asOf, int parallelism)
        {
            var traits = new Accumulator[plan.Traits.Count];
            var attributes = new Accumulator[plan.Attributes.Count];
            // Made on every core at once: each accumulator's arrays are fresh pages, mapped in as it is made
            // (FreshArrays), and at ten million profiles a set is gigabytes, which one core took seconds to map while
            // the scan's other workers waited for it.
            Parallel.For(0, traits.Length + attributes.Length, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, parallelism) }, k =>
            {
                if (k < traits.Length)
                {
                    traits[k] = TraitAccumulator(plan.Traits[k].Definition, profiles, asOf);
                }
                else
                {
                    attributes[k - traits.Length] = AttributeAccumulator(plan.Attributes[k - traits.Length].Spec.Type, profiles);
                }
            });
            Traits = traits;
            Attributes = attributes;
            Gates = [.. Enumerable.Range(0, Traits.Length + Attributes.Length).Select(_ => new Lock())];
        }

        /// <summary>A lock per accumulator: the traits' in order, then the attributes'.</summary>
        public Lock[] Gates { get; }

        public Accumulator[] Traits { get; }

        public Accumulator[] Attributes { get; }
    }

    /// <summary>One scan worker: its resolver, its column readers, and the accumulator sets it adds to (one per cutoff).</summary>
    private sealed class Worker
    {
        private readonly SourcePlan _plan;
        private readonly ProfileLookup _lookup;
        private readonly long[] _asOf;
        private readonly RowSubset?[] _subsets;
        private readonly BatchResolver _resolver;
        private readonly BatchColumn?[] _columns;

        // Per file of the scanned dataset, each row's profile row, when the identity stage handed them over.
        private readonly int[][]? _fileProfiles;

        // The distinct filters of the traits (traits with the same conditions share one; an in_latest trait's may
        // differ by cutoff), and per trait and cutoff which of them applies.
        private readonly BoundCondition[][] _filters;
        private readonly int[][] _filterOf;

        // Per batch, as selections (batch rows, ascending): the rows with a profile and a time, each filter's rows
        // among them, and each trait's rows in its window at the cutoff being added.
        private int[] _candidates = [];
        private int[] _attributeRows = [];
        private readonly int[][] _filtered;
        private readonly int[] _filteredCount;
        private readonly int[][] _selected;
        private readonly int[] _selectedCount;
        private int[] _valueRows = new int[1024];
        private int[] _rows = [];
        private int[] _slots = [];
        private long[] _order = [];
        private byte[] _dated = [];

        /// <summary>A scan worker; <paramref name="member"/> is its place among those sharing <paramref name="sets"/>, which sets where its rounds of adds start.</summary>
        public Worker(SourcePlan plan, IdentityRules rules, ProfileLookup lookup, long[] asOf, RowSubset?[] subsets, AccumulatorSet[] sets, int[][]? fileProfiles, int member)
        {
            var accumulators = plan.Traits.Count + plan.Attributes.Count;
            _firstAdd = accumulators == 0 ? 0 : member * accumulators / WorkersPerAccumulatorSet % accumulators;
            _plan = plan;
            _fileProfiles = fileProfiles;
            _lookup = lookup;
            _asOf = asOf;
            _subsets = subsets;
            _resolver = new BatchResolver(rules);
            _columns = new BatchColumn?[plan.Specs.Count];
            foreach (var position in plan.Loaded)
            {
                var spec = plan.Specs[position];
                _columns[position] = new BatchColumn(spec.Name, spec.Type, position);
            }
            _sets = sets;
            AfterAsOf = new long[asOf.Length];
            var filters = new List<BoundCondition[]>();
            var filterByKey = new Dictionary<string, int>(StringComparer.Ordinal);
            _filterOf = new int[plan.Traits.Count][];
            for (var t = 0; t < _filterOf.Length; t++)
            {
                var slot = plan.Traits[t];
                _filterOf[t] = new int[asOf.Length];
                for (var c = 0; c < asOf.Length; c++)
                {
                    // Four traits over `type: order_completed` filter the batch once.
                    var key = FilterKey(slot.Conditions[c]);
                    if (!filterByKey.TryGetValue(key, out var f))
                    {
                        filterByKey.Add(key, f = filters.Count);
                        filters.Add([.. slot.Conditions[c].Select(condition => new BoundCondition(condition.Condition, _columns[condition.Column]!))]);
                    }
                    _filterOf[t][c] = f;
                }
            }
            _filters = [.. filters];
            _filtered = [.. _filters.Select(_ => System.Array.Empty<int>())];
            _filteredCount = new int[_filters.Length];
            _selected = [.. plan.Traits.Select(_ => System.Array.Empty<int>())];
            _selectedCount = new int[plan.Traits.Count];
            var source = plan.Source;
            var slots = new List<IdentifierSlot>();
            foreach (var (column, type) in source.Identifiers)
            {
                slots.Add(new IdentifierSlot(
                    rules.Find(type) ?? throw new EngineException($"source '{source.Name}': identifier type '{type}' is not defined by the identity rules"),
                    plan.Positions[column],
                    source.PhoneRegionColumns.TryGetValue(column, out var region) && plan.Positions.TryGetValue(region, out var r) ? r : -1,
                    null));
            }
            foreach (var (type, parts) in source.CompositeIdentifiers)
            {
                slots.Add(new IdentifierSlot(
                    rules.Find(type) ?? throw new EngineException($"source '{source.Name}': identifier type '{type}' is not defined by the identity rules"),
                    -1, -1, [.. parts.Select(part => plan.Positions[part])]));
            }
            // Stable: slots of one type keep the source's order, as the identity stage takes them.
            _identifierSlots = [.. slots.OrderBy(slot => rules.PriorityOf(slot.Type.Name))];
        }

        /// <summary>An identifier column (with its phone region column, or -1) or a composite's columns, as the scan reads it.</summary>
        private sealed record IdentifierSlot(IdentifierType Type, int Column, int Region, int[]? Parts);

        // The source's identifier slots, most trusted first.
        private readonly IdentifierSlot[] _identifierSlots;
        private int[] _pending = [];
        private int[] _refs = [];

        // Per cutoff, the state it adds to.
        private readonly AccumulatorSet[] _sets;
        private readonly int _firstAdd;

        /// <summary>What makes two conditions lists the same filter: their columns, operators and constants, in order.</summary>
        private static string FilterKey(IReadOnlyList<(TraitCondition Condition, int Column)> conditions)
        {
            var key = new System.Text.StringBuilder();
            foreach (var (condition, column) in conditions)
            {
                key.Append(column).Append('|').Append((int)condition.Operator).Append('|').Append(condition.Values.Count);
                foreach (var value in condition.Values)
                {
                    var text = Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) ?? "";
                    key.Append('|').Append(value.GetType().Name).Append(':').Append(text.Length).Append(':').Append(text);
                }
                key.Append(';');
            }
            return key.ToString();
        }

        public long Rows { get; private set; }

        public long WithoutProfile { get; private set; }

        /// <summary>Per cutoff, the rows at or after it, which it does not count.</summary>
        public long[] AfterAsOf { get; }

        public void Consume(ScanBatch scan)
        {
            var batch = scan.Batch;
            var n = batch.Length;
            if (_rows.Length < n)
            {
                _rows = new int[n];
                _slots = new int[n];
                _candidates = new int[n];
                _attributeRows = new int[n];
                _order = new long[n];
                _dated = new byte[n];
            }
            foreach (var column in _columns)
            {
                column?.Load(batch, scan.Location);
            }
            ReadOnlySpan<int> rows;
            if (_fileProfiles is not null)
            {
                var profiles = _fileProfiles[scan.FileIndex];
                if (scan.FileRowOffset + n > profiles.Length)
                {
                    throw new DataException(scan.Location, $"has more rows than the {profiles.Length} the identity stage read from it: it changed during the run; run again");
                }
                rows = profiles.AsSpan((int)scan.FileRowOffset, n);
                var none = 0;
                foreach (var row in rows)
                {
                    none += row < 0 ? 1 : 0;
                }
                WithoutProfile += none;
            }
            else
            {
                ResolveProfiles(batch, _rows.AsSpan(0, n));
                rows = _rows.AsSpan(0, n);
            }
            Rows += n;

            // What does not depend on the cutoff, once: each filter's rows, and the attribute rows' order.
            ReadOnlySpan<long> ts = default;
            ReadOnlySpan<byte> valid = default;
            var candidates = 0;
            if (_plan.EventTime >= 0)
            {
                var time = _columns[_plan.EventTime]!;
                ts = time.Longs;
                valid = time.Valid;
                var candidate = _candidates.AsSpan(0, n);
                for (var i = 0; i < n; i++)
                {
                    // Branch-free: a row is written, and kept by advancing past it.
                    candidate[candidates] = i;
                    candidates += (rows[i] >= 0 ? 1 : 0) & valid[i];
                }
                for (var f = 0; f < _filters.Length; f++)
                {
                    var conditions = _filters[f];
                    if (conditions.Length == 0)
                    {
                        continue;
                    }
                    if (_filtered[f].Length < n)
                    {
                        _filtered[f] = new int[n];
                    }
                    var kept = conditions[0].Select(candidate[..candidates], _filtered[f]);
                    for (var k = 1; k < conditions.Length; k++)
                    {
                        kept = conditions[k].Select(_filtered[f].AsSpan(0, kept), _filtered[f]);
                    }
                    _filteredCount[f] = kept;
                }
                for (var t = 0; t < _selected.Length; t++)
                {
                    if (_selected[t].Length < n)
                    {
                        _selected[t] = new int[n];
                    }
                }
            }
            var order = _order.AsSpan(0, n);
            var dated = _dated.AsSpan(0, n);
            ReadOnlySpan<long> updated = default;
            if (_plan.Attributes.Count > 0)
            {
                if (_plan.UpdatedAt >= 0)
                {
                    var time = _columns[_plan.UpdatedAt]!;
                    updated = time.Longs;
                    var updatedValid = time.Valid;
                    for (var i = 0; i < n; i++)
                    {
                        // A row without an update time is older than any dated row.
                        dated[i] = updatedValid[i];
                        order[i] = updatedValid[i] != 0 ? updated[i] : long.MinValue;
                    }
                }
                else
                {
                    // An undated source (a snapshot export) is as it stands whatever the as-of.
                    order.Fill(long.MinValue);
                    dated.Clear();
                }
            }

            for (var c = 0; c < _asOf.Length; c++)
            {
                var asOf = _asOf[c];
                var slots = Slots(c, rows);
                if (_plan.EventTime >= 0)
                {
                    long after = 0;
                    for (var i = 0; i < n; i++)
                    {
                        after += (valid[i] != 0) & (ts[i] >= asOf) ? 1 : 0;
                    }
                    AfterAsOf[c] += after;
                    for (var t = 0; t < _selected.Length; t++)
                    {
                        var slot = _plan.Traits[t];
                        var (from, to) = (slot.From[c], slot.To[c]);
                        var f = _filterOf[t][c];
                        ReadOnlySpan<int> filtered = _filters[f].Length == 0 ? _candidates.AsSpan(0, candidates) : _filtered[f].AsSpan(0, _filteredCount[f]);
                        var selected = _selected[t];
                        var kept = 0;
                        foreach (var i in filtered)
                        {
                            selected[kept] = i;
                            kept += (slots[i] >= 0) & (ts[i] >= from) & (ts[i] < to) ? 1 : 0;
                        }
                        _selectedCount[t] = kept;
                    }
                }
                // Attribute rows: with a slot at this cutoff, and updated before it.
                var attributeRows = 0;
                if (_plan.Attributes.Count > 0)
                {
                    var candidate = _attributeRows.AsSpan(0, n);
                    long after = 0;
                    for (var i = 0; i < n; i++)
                    {
                        // An attribute row updated at or after as-of does not exist yet.
                        var future = (dated[i] != 0) & (updated.IsEmpty || updated[i] >= asOf);
                        after += future & (_plan.EventTime < 0) ? 1 : 0;
                        candidate[attributeRows] = i;
                        attributeRows += (slots[i] >= 0) & !future ? 1 : 0;
                    }
                    AfterAsOf[c] += after;
                }
                var set = _sets[c];
                var accumulators = set.Gates.Length;
                for (var k = 0; k < accumulators; k++)
                {
                    var j = _firstAdd + k < accumulators ? _firstAdd + k : _firstAdd + k - accumulators;
                    lock (set.Gates[j])
                    {
                        if (j < _selected.Length)
                        {
                            var slot = _plan.Traits[j];
                            set.Traits[j].Add(slots, _selected[j].AsSpan(0, _selectedCount[j]), ts, slot.Column >= 0 ? _columns[slot.Column] : null, 0);
                        }
                        else
                        {
                            var a = j - _selected.Length;
                            var slot = _plan.Attributes[a];
                            set.Attributes[a].Add(slots, _attributeRows.AsSpan(0, attributeRows), order, _columns[slot.Column], slot.Rank);
                        }
                    }
                }
            }
        }

        /// <summary>Each row's slot in cutoff <paramref name="c"/>'s state: its profile row, or its place among the cutoff's rows (-1 outside them).</summary>
        private ReadOnlySpan<int> Slots(int c, ReadOnlySpan<int> rows)
        {
            if (_subsets[c] is not { } subset)
            {
                return rows;
            }
            var slots = _slots.AsSpan(0, rows.Length);
            for (var i = 0; i < rows.Length; i++)
            {
                slots[i] = rows[i] >= 0 ? subset.SlotOf(rows[i]) : -1;
            }
            return slots;
        }

        /// <summary>
        /// Each row's profile row: that of its most trusted identifier found in <c>identity/</c>, else -1. Slot by
        /// slot, most trusted first, each over the rows still without a profile: a logged-in event has its profile by
        /// its customer id, and its email and anonymous id are then never normalised, hashed or looked up (nor a CRM
        /// row's phones, which libphonenumber parses in microseconds).
        /// </summary>
        private void ResolveProfiles(RecordBatch batch, Span<int> rows)
        {
            var n = rows.Length;
            rows.Fill(-1);
            if (_pending.Length < n)
            {
                _pending = new int[n];
                _refs = new int[n];
            }
            for (var i = 0; i < n; i++)
            {
                _pending[i] = i;
            }
            var left = n;
            var resolver = _resolver;
            resolver.Begin();
            foreach (var slot in _identifierSlots)
            {
                if (left == 0)
                {
                    break;
                }
                var pending = _pending.AsSpan(0, left);
                var refs = _refs.AsSpan(0, left);
                var first = resolver.Values;
                if (slot.Parts is null)
                {
                    resolver.ResolveColumn(batch, slot.Type, slot.Column, slot.Region, pending, refs);
                }
                else
                {
                    resolver.ResolveComposite(batch, slot.Type, slot.Parts, pending, refs);
                }
                var values = resolver.Values;
                if (_valueRows.Length < values)
                {
                    _valueRows = new int[Math.Max(values, _valueRows.Length * 2)];
                }
                _lookup.RowsOf(resolver.Keys.AsSpan(first, values - first), _valueRows.AsSpan(first, values - first));
                var kept = 0;
                for (var j = 0; j < pending.Length; j++)
                {
                    var reference = refs[j];
                    var profile = reference >= 0 ? _valueRows[reference] : -1;
                    var row = pending[j];
                    rows[row] = profile;
                    // Still without a profile: kept for the next slot (kept <= j, so nothing unread is overwritten).
                    pending[kept] = row;
                    kept += profile < 0 ? 1 : 0;
                }
                left = kept;
            }
            WithoutProfile += left;
        }
    }
}
