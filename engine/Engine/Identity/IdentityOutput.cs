using System.Text;
using Apache.Arrow;
using Apache.Arrow.Types;
using Engine.Storage;

namespace Engine.Identity;

/// <summary>
/// The identity stage's datasets, their columns (a public contract: DESIGN.md) and how they are written and read.
/// <list type="bullet">
/// <item><c>identity/</c>: <c>identifier_type</c>, <c>identifier_value</c> (canonical), <c>profile_id</c> (null for a
/// shared value in no profile), <c>shared</c>; one row per distinct identifier, in key order
/// (<see cref="CanonicalGraph"/>), so that a row's position is its node number in <c>identity/links</c>.</item>
/// <item><c>identity/merges</c>: <c>old_profile_id</c>, <c>new_profile_id</c> (null when retired), <c>change</c>
/// (<c>merged</c>, <c>split</c>, <c>retired</c>).</item>
/// <item><c>identity/links</c>: <c>from_index</c>, <c>to_index</c> (row positions in <c>identity/</c>),
/// <c>outcome</c> (<c>linked</c>, <c>refused</c>), <c>reason</c> (null, <c>limit</c>, <c>shared</c>) and
/// <c>reason_type</c> (the type whose limit would break, or the shared value's type).</item>
/// </list>
/// </summary>
public static class IdentityOutput
{
    private const int BatchRows = 64 * 1024;

    public const string Linked = "linked";
    public const string Refused = "refused";
    public const string ReasonLimit = "limit";
    public const string ReasonShared = "shared";

    /// <summary>The schema of <c>identity/</c>.</summary>
    public static Schema IdentifiersSchema { get; } = new Schema.Builder()
        .Field(f => f.Name("identifier_type").DataType(StringType.Default).Nullable(false))
        .Field(f => f.Name("identifier_value").DataType(StringType.Default).Nullable(false))
        .Field(f => f.Name("profile_id").DataType(Int64Type.Default).Nullable(true))
        .Field(f => f.Name("shared").DataType(BooleanType.Default).Nullable(false))
        .Build();

    /// <summary>The schema of <c>identity/merges</c>.</summary>
    public static Schema MergesSchema { get; } = new Schema.Builder()
        .Field(f => f.Name("old_profile_id").DataType(Int64Type.Default).Nullable(false))
        .Field(f => f.Name("new_profile_id").DataType(Int64Type.Default).Nullable(true))
        .Field(f => f.Name("change").DataType(StringType.Default).Nullable(false))
        .Build();

    /// <summary>The schema of <c>identity/links</c>.</summary>
    public static Schema LinksSchema { get; } = new Schema.Builder()
        .Field(f => f.Name("from_index").DataType(Int32Type.Default).Nullable(false))
        .Field(f => f.Name("to_index").DataType(Int32Type.Default).Nullable(false))
        .Field(f => f.Name("outcome").DataType(StringType.Default).Nullable(false))
        .Field(f => f.Name("reason").DataType(StringType.Default).Nullable(true))
        .Field(f => f.Name("reason_type").DataType(StringType.Default).Nullable(true))
        .Build();

    /// <summary>The persisted name of a skip reason (manifest keys).</summary>
    public static string StatusName(NormalizeStatus status) => status switch
    {
        NormalizeStatus.Empty => "empty",
        NormalizeStatus.Invalid => "invalid",
        NormalizeStatus.TooLong => "too_long",
        NormalizeStatus.Blocked => "blocked",
        _ => "ok",
    };

    /// <summary>The persisted name of a profile change.</summary>
    public static string ChangeName(ProfileChangeKind kind) => kind switch
    {
        ProfileChangeKind.Merged => "merged",
        ProfileChangeKind.Split => "split",
        _ => "retired",
    };

    /// <summary>The profile change a persisted name stands for (<see cref="ChangeName"/> read back).</summary>
    public static ProfileChangeKind ParseChange(string name) => name switch
    {
        "merged" => ProfileChangeKind.Merged,
        "split" => ProfileChangeKind.Split,
        "retired" => ProfileChangeKind.Retired,
        _ => throw new EngineException($"'{name}' is not a profile change (merged, split or retired): the identity output is damaged"),
    };

    /// <summary>
    /// Writes <c>identity/</c>: every node of <paramref name="graph"/> in order, its value read back from
    /// <paramref name="values"/> (logged by builder id), its profile and shared flag (by node number).
    /// </summary>
    public static async Task WriteIdentifiersAsync(
        StorageLocation location, IdentityRules rules, CanonicalGraph graph, CanonicalValueLog values, long[] profileOf, StitchResult stitch,
        int parallelism, IProgress<IdentityProgress>? progress, CancellationToken cancellationToken)
    {
        if (values.Count != graph.NodeCount)
        {
            throw new InvalidOperationException($"{values.Count} values logged for {graph.NodeCount} identifiers");
        }
        // Files of a million rows, encoded on every worker: one file, on one thread, was most of the stage's write. The
        // values uncompressed: emails and random ids, which Snappy shrank by 12% (10M people: 1.77 GB to compress on
        // every write, and to decompress when the next full run reads its previous ids).
        var options = ParquetWriteOptions.Default with
        {
            PlainColumns = new HashSet<string>(["identifier_value"]),
            UncompressedColumns = new HashSet<string>(["identifier_value"]),
            FileRows = IdentifierFileRows,
        };
        long written = 0;
        await ParquetDatasetWriter.WriteRangesAsync(location, IdentifiersSchema, graph.NodeCount, (first, count, write) =>
            WriteIdentifierRows(write, rules, graph, values, profileOf, stitch, (int)first, (int)count, rows =>
            {
                cancellationToken.ThrowIfCancellationRequested();
                progress?.Report(new IdentityProgress("writing identities", Interlocked.Add(ref written, rows)));
            }), parallelism, options, cancellationToken);
    }

    /// <summary>Rows per file of <c>identity/</c>: the unit its write is spread over workers by.</summary>
    internal const int IdentifierFileRows = 1 << 20;

    /// <summary>Writes the <c>identity/</c> rows of nodes <paramref name="first"/> to <paramref name="first"/> + <paramref name="count"/>, in order.</summary>
    private static void WriteIdentifierRows(
        Action<RecordBatch> write, IdentityRules rules, CanonicalGraph graph, CanonicalValueLog values, long[] profileOf, StitchResult stitch,
        int first, int count, Action<int> written)
    {
        var typeNames = rules.Types.Select(t => Encoding.UTF8.GetBytes(t.Name)).ToArray();
        var batch = new IdentifierBatch();
        var types = graph.NodeTypes;
        var node = first;
        values.ReadInOrder(graph.Order.AsSpan(first, count), batch, (b, _, value) =>
        {
            b.Types.Append(typeNames[types[node]]);
            b.Values.Append(value);
            var profile = profileOf[node];
            if (profile >= 0)
            {
                b.Profiles.Append(profile);
            }
            else
            {
                b.Profiles.AppendNull();
            }
            b.Shared.Append(stitch.IsShared(node));
            node++;
            if (++b.Rows == BatchRows)
            {
                b.Flush(write);
                written(BatchRows);
            }
        });
        batch.Flush(write);
    }

    /// <summary>
    /// One batch's column builders, refilled batch after batch: they keep their buffers, where new builders would
    /// allocate (and grow by doubling) a few MB per batch on the large object heap, which only a full collection frees.
    /// </summary>
    private sealed class IdentifierBatch
    {
        public StringArray.Builder Types { get; } = new();
        public StringArray.Builder Values { get; } = new();
        public Int64Array.Builder Profiles { get; } = new();
        public BooleanArray.Builder Shared { get; } = new();
        public int Rows { get; set; }

        public void Flush(Action<RecordBatch> write)
        {
            if (Rows == 0)
            {
                return;
            }
            // Build copies each buffer out, so the builders can be cleared once the batch is built.
            using var batch = new RecordBatch(IdentifiersSchema, [Types.Build(), Values.Build(), Profiles.Build(), Shared.Build()], Rows);
            Types.Clear();
            Values.Clear();
            Profiles.Clear();
            Shared.Clear();
            Rows = 0;
            write(batch);
        }
    }

    /// <summary>Writes <c>identity/merges</c>.</summary>
    public static async Task WriteMergesAsync(StorageLocation location, IReadOnlyList<ProfileChange> changes, CancellationToken cancellationToken)
    {
        await using var writer = await ParquetDatasetWriter.CreateAsync(location, MergesSchema, null, cancellationToken);
        // One set of builders for every batch (see IdentifierBatch).
        var olds = new Int64Array.Builder();
        var news = new Int64Array.Builder();
        var kinds = new StringArray.Builder();
        for (var start = 0; start < changes.Count; start += BatchRows)
        {
            var end = Math.Min(changes.Count, start + BatchRows);
            for (var i = start; i < end; i++)
            {
                olds.Append(changes[i].OldProfileId);
                if (changes[i].NewProfileId is { } id)
                {
                    news.Append(id);
                }
                else
                {
                    news.AppendNull();
                }
                kinds.Append(ChangeName(changes[i].Kind));
            }
            using var batch = new RecordBatch(MergesSchema, [olds.Build(), news.Build(), kinds.Build()], end - start);
            olds.Clear();
            news.Clear();
            kinds.Clear();
            writer.Write(batch);
        }
        await writer.CommitAsync(cancellationToken);
    }

    /// <summary>Writes <c>identity/links</c>: every distinct link with its outcome; returns the number written.</summary>
    public static async Task<long> WriteLinksAsync(
        StorageLocation location, IdentityRules rules, CanonicalGraph graph, LinkOutcomes outcomes, int parallelism, CancellationToken cancellationToken)
    {
        // Files of a million links, encoded on every worker, like identity/: tens of millions of links at 10M people.
        var options = ParquetWriteOptions.Default with
        {
            PlainColumns = new HashSet<string>(["from_index", "to_index"]),
            // The larger end of each link, in ascending order of the smaller: nothing for Snappy to find (0% smaller).
            UncompressedColumns = new HashSet<string>(["to_index"]),
            FileRows = IdentifierFileRows,
        };
        await ParquetDatasetWriter.WriteRangesAsync(
            location, LinksSchema, graph.EdgeCount, (first, count, write) => WriteLinkRows(write, rules, graph, outcomes, (int)first, (int)count, cancellationToken),
            parallelism, options, cancellationToken);
        return graph.EdgeCount;
    }

    private static readonly byte[] LinkedUtf8 = Encoding.UTF8.GetBytes(Linked);
    private static readonly byte[] RefusedUtf8 = Encoding.UTF8.GetBytes(Refused);
    private static readonly byte[] ReasonSharedUtf8 = Encoding.UTF8.GetBytes(ReasonShared);
    private static readonly byte[] ReasonLimitUtf8 = Encoding.UTF8.GetBytes(ReasonLimit);

    /// <summary>Writes the links <paramref name="first"/> to <paramref name="first"/> + <paramref name="count"/>, in order.</summary>
    private static void WriteLinkRows(
        Action<RecordBatch> write, IdentityRules rules, CanonicalGraph graph, LinkOutcomes outcomes, int first, int count, CancellationToken cancellationToken)
    {
        var typeNames = rules.Types.Select(t => Encoding.UTF8.GetBytes(t.Name)).ToArray();
        var edges = graph.Edges;
        // One set of builders for every batch of the range (see IdentifierBatch); strings appended as UTF-8 bytes,
        // not encoded again per row.
        var from = new Int32Array.Builder();
        var to = new Int32Array.Builder();
        var outcome = new StringArray.Builder();
        var reason = new StringArray.Builder();
        var reasonType = new StringArray.Builder();
        for (var start = first; start < first + count; start += BatchRows)
        {
            var end = Math.Min(first + count, start + BatchRows);
            for (var i = start; i < end; i++)
            {
                from.Append(EdgeSet.First(edges[i]));
                to.Append(EdgeSet.Second(edges[i]));
                if (outcomes.Outcome[i] == LinkOutcomes.Linked)
                {
                    outcome.Append(LinkedUtf8);
                    reason.AppendNull();
                    reasonType.AppendNull();
                }
                else
                {
                    outcome.Append(RefusedUtf8);
                    reason.Append(outcomes.Outcome[i] == LinkOutcomes.RefusedShared ? ReasonSharedUtf8 : ReasonLimitUtf8);
                    reasonType.Append(typeNames[outcomes.ReasonType[i]]);
                }
            }
            using var batch = new RecordBatch(LinksSchema, [from.Build(), to.Build(), outcome.Build(), reason.Build(), reasonType.Build()], end - start);
            from.Clear();
            to.Clear();
            outcome.Clear();
            reason.Clear();
            reasonType.Clear();
            write(batch);
            cancellationToken.ThrowIfCancellationRequested();
        }
    }

    /// <summary>
    /// Column <paramref name="index"/> of a batch read from the engine's own output, as the array type the engine writes;
    /// anything else means the files were replaced or damaged, which is said with the file named.
    /// </summary>
    internal static T Column<T>(ScanBatch scan, int index, string name) where T : class, IArrowArray =>
        scan.Batch.Column(index) as T
            ?? throw new DataException(scan.Location, $"column '{name}' is {scan.Batch.Column(index).Data.DataType.Name}, not the {typeof(T).Name.Replace("Array", "", StringComparison.Ordinal).ToLowerInvariant()} the engine writes: this identity output was not written by this engine or is damaged; run with --full-refresh");

    /// <summary>
    /// A visitor of one <c>identity/</c> row: its position (the index <c>identity/links</c> uses), the type id (-1 when
    /// the rules do not define the type), the value, the profile id (-1 when null) and the shared flag.
    /// </summary>
    public delegate void IdentifierVisitor(int index, int typeId, ReadOnlySpan<byte> value, long profileId, bool shared);

    /// <summary>Reads <c>identity/</c> rows in order (one file and row group after another).</summary>
    public static void ReadIdentifiers(Dataset dataset, IdentityRules rules, IdentifierVisitor visit, CancellationToken cancellationToken)
    {
        var index = 0;
        ScanIdentifiers(dataset, rules, () => 0, (_, typeId, value, profileId, shared) => visit(index++, typeId, value, profileId, shared),
            ScanOptions.Default with { Parallelism = 1 }, cancellationToken);
    }

    /// <summary>A visitor of one <c>identity/</c> row on a scan worker, with the worker's own state.</summary>
    public delegate void IdentifierVisitor<in TState>(TState state, int typeId, ReadOnlySpan<byte> value, long profileId, bool shared);

    /// <summary>
    /// Reads <c>identity/</c> rows on <see cref="ScanOptions.Parallelism"/> workers, in no particular order, each with
    /// its own state (returned for the caller to merge): for readers that look identifiers up rather than number them.
    /// </summary>
    public static IReadOnlyList<TState> ScanIdentifiers<TState>(
        Dataset dataset, IdentityRules rules, Func<TState> createState, IdentifierVisitor<TState> visit, ScanOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        ArgumentNullException.ThrowIfNull(rules);
        var typeNames = rules.Types.Select(t => Encoding.UTF8.GetBytes(t.Name)).ToArray();
        ColumnSpec[] columns =
        [
            new("identifier_type", ColumnType.String, Required: true),
            new("identifier_value", ColumnType.String, Required: true),
            new("profile_id", ColumnType.Int64),
            new("shared", ColumnType.Boolean),
        ];
        return DatasetScan.Run(dataset, columns, createState, (state, scan) =>
        {
            var batch = scan.Batch;
            var profiles = Column<Int64Array>(scan, 2, "profile_id");
            var shared = Column<BooleanArray>(scan, 3, "shared");
            // Each buffer fetched once for the batch, not once a row (54M rows at ten million people).
            var types = new IdentityGraphBuilder.Utf8Column(batch.Column(0));
            var values = new IdentityGraphBuilder.Utf8Column(batch.Column(1));
            var profileIds = profiles.Values;
            var profileValidity = BatchResolver.Validity(profiles, out var profileFirst);
            var sharedValidity = BatchResolver.Validity(shared, out var sharedFirst);
            var sharedBits = shared.ValueBuffer.Span;
            ReadOnlySpan<byte> lastType = default;
            var typeId = -1;
            for (var row = 0; row < batch.Length; row++)
            {
                if (!types.TryGet(row, out var type) || !values.TryGet(row, out var value))
                {
                    throw new DataException($"{scan.Location}: row index {scan.FileRowOffset + row}", "identifier_type and identifier_value must not be null");
                }
                // Rows come grouped by type: the name is matched again only when it changes.
                if (row == 0 || !type.SequenceEqual(lastType))
                {
                    lastType = type;
                    typeId = -1;
                    for (var t = 0; t < typeNames.Length; t++)
                    {
                        if (type.SequenceEqual(typeNames[t]))
                        {
                            typeId = t;
                            break;
                        }
                    }
                }
                var isShared = BatchResolver.IsValid(sharedValidity, sharedFirst + row) && BitUtility.GetBit(sharedBits, sharedFirst + row);
                visit(state, typeId, value, BatchResolver.IsValid(profileValidity, profileFirst + row) ? profileIds[row] : -1, isShared);
            }
        }, options, cancellationToken);
    }

    /// <summary>
    /// A visitor of one <c>identity/links</c> row: the two row positions, whether the link was accepted, and for a
    /// refused one its reason and the type behind it (null for accepted links).
    /// </summary>
    public delegate void LinkVisitor(int from, int to, bool linked, string? reason, string? reasonType);

    /// <summary>Reads <c>identity/links</c> rows.</summary>
    public static void ReadLinks(Dataset dataset, LinkVisitor visit, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        ColumnSpec[] columns =
        [
            new("from_index", ColumnType.Int64, Required: true),
            new("to_index", ColumnType.Int64, Required: true),
            new("outcome", ColumnType.String, Required: true),
            new("reason", ColumnType.String),
            new("reason_type", ColumnType.String),
        ];
        var linked = Encoding.UTF8.GetBytes(Linked);
        DatasetScan.Run(dataset, columns, () => 0, (_, scan) =>
        {
            var batch = scan.Batch;
            var from = Column<Int32Array>(scan, 0, "from_index");
            var to = Column<Int32Array>(scan, 1, "to_index");
            for (var row = 0; row < batch.Length; row++)
            {
                IdentityGraphBuilder.TryGetBytes(batch.Column(2), row, out var outcome);
                if (outcome.SequenceEqual(linked))
                {
                    visit(from.Values[row], to.Values[row], true, null, null);
                }
                else
                {
                    // Refused links are few: their texts are decoded, the accepted majority's are not.
                    visit(from.Values[row], to.Values[row], false, Text(batch.Column(3), row), Text(batch.Column(4), row));
                }
            }
        }, ScanOptions.Default with { Parallelism = 1 }, cancellationToken);
    }

    private static string? Text(IArrowArray array, int row) =>
        IdentityGraphBuilder.TryGetBytes(array, row, out var bytes) ? Encoding.UTF8.GetString(bytes) : null;
}
