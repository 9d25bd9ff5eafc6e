using System.Diagnostics;
using System.Text.Json.Serialization;
using Apache.Arrow;
using Apache.Arrow.Types;
using Engine.Profiles;
using Engine.Storage;
using Engine.Workspaces;

namespace Engine.Segments;

/// <summary>What the segments stage did, per segment; part of the run manifest.</summary>
public sealed class SegmentsReport
{
    [JsonPropertyName("previous_run_id")] public string? PreviousRunId { get; set; }

    [JsonPropertyName("profiles")] public long Profiles { get; set; }

    [JsonPropertyName("segments")] public List<SegmentReport> Segments { get; set; } = [];

    [JsonPropertyName("members")] public long Members { get; set; }

    [JsonPropertyName("entered")] public long Entered { get; set; }

    [JsonPropertyName("exited")] public long Exited { get; set; }

    [JsonPropertyName("evaluate_ms")] public double EvaluateMs { get; set; }

    [JsonPropertyName("deltas_ms")] public double DeltasMs { get; set; }
}

public sealed class SegmentReport
{
    [JsonPropertyName("name")] public string Name { get; set; } = "";

    [JsonPropertyName("members")] public long Members { get; set; }

    [JsonPropertyName("entered")] public long Entered { get; set; }

    [JsonPropertyName("exited")] public long Exited { get; set; }

    /// <summary>False for a segment the previous run had and the workspace no longer declares: all its members exit.</summary>
    [JsonPropertyName("declared")] public bool Declared { get; set; } = true;

    [JsonPropertyName("evaluate_ms")] public double EvaluateMs { get; set; }
}

/// <summary>The members of one segment as sorted profile ids, and the change against the previous run.</summary>
public sealed record SegmentDelta(string Segment, long[] Entered, long[] Exited);

/// <summary>The result of the segments stage.</summary>
public sealed record SegmentsResult(SegmentsReport Report, SegmentMembers Members, IReadOnlyList<SegmentDelta> Deltas);

/// <summary>
/// The segments stage: evaluates every segment over the run's profile table, writes the members
/// (<c>segments/</c>: <c>segment</c>, <c>profile_id</c>) and the change against the previous successful run
/// (<c>deltas/</c>: <c>segment</c>, <c>profile_id</c>, <c>change</c> = <c>entered</c> / <c>exited</c>).
/// <para>
/// The delta rule works on profile ids, so it holds across identity merges and splits: a member whose profile was
/// merged away (its id no longer exists) exits under the old id, and the surviving profile enters if it qualifies
/// and was not a member already; after a split, the part that keeps the id stays or exits on its own merits and the
/// part with a new id enters if it qualifies. A segment evaluated against a later as-of time loses members whose
/// time window has passed with no new events. A segment removed from the workspace has all its members exit;
/// a new one has all its members enter, as every member does on a first run.
/// </para>
/// </summary>
public sealed class SegmentsStage
{
    /// <summary>The members dataset, in the run's folder.</summary>
    public const string MembersFolder = "segments";

    /// <summary>The deltas dataset, in the run's folder.</summary>
    public const string DeltasFolder = "deltas";

    public const string Entered = "entered";
    public const string Exited = "exited";

    private static readonly Schema MembersSchema = new Schema.Builder()
        .Field(new Field("segment", StringType.Default, nullable: false))
        .Field(new Field("profile_id", Int64Type.Default, nullable: false))
        .Build();

    private static readonly Schema DeltasSchema = new Schema.Builder()
        .Field(new Field("segment", StringType.Default, nullable: false))
        .Field(new Field("profile_id", Int64Type.Default, nullable: false))
        .Field(new Field("change", StringType.Default, nullable: false))
        .Build();

    /// <summary>
    /// Runs the stage. Every segment is compiled before anything is evaluated or written, so a bad segment stops the
    /// run with no output. <paramref name="previousRun"/> is the previous successful run's folder, or null.
    /// </summary>
    public static async Task<SegmentsResult> RunAsync(
        Workspace workspace, ProfileTable table, DateTimeOffset asOf, StorageLocation run, StorageLocation? previousRun, string? previousRunId,
        int parallelism = 0, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(workspace);
        ArgumentNullException.ThrowIfNull(table);
        var report = new SegmentsReport { Profiles = table.Count, PreviousRunId = previousRunId };
        var set = SegmentSet.Compile(workspace.Segments, table, asOf);
        var clock = Stopwatch.StartNew();
        var members = set.Evaluate(table, parallelism);
        report.EvaluateMs = clock.Elapsed.TotalMilliseconds;

        var previous = previousRun is { } prior ? await ReadMembersAsync(prior.Child(MembersFolder), cancellationToken) : new Dictionary<string, long[]>(StringComparer.Ordinal);
        clock.Restart();
        var names = workspace.Segments.Select(s => s.Name).Concat(previous.Keys).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        // Each segment's ids and its difference with the previous run are independent: one segment per core.
        var lists = new long[names.Count][];
        var changes = new (long[] Entered, long[] Exited)[names.Count];
        Parallel.For(0, names.Count, new ParallelOptions { MaxDegreeOfParallelism = parallelism > 0 ? parallelism : Environment.ProcessorCount, CancellationToken = cancellationToken }, i =>
        {
            lists[i] = members.Bits.ContainsKey(names[i]) ? members.ProfileIds(names[i]) : [];
            changes[i] = Difference(lists[i], previous.GetValueOrDefault(names[i]) ?? []);
        });
        var current = new Dictionary<string, long[]>(StringComparer.Ordinal);
        var deltas = new List<SegmentDelta>();
        for (var i = 0; i < names.Count; i++)
        {
            var name = names[i];
            var declared = members.Bits.ContainsKey(name);
            var now = lists[i];
            current[name] = now;
            var (entered, exited) = changes[i];
            deltas.Add(new SegmentDelta(name, entered, exited));
            report.Segments.Add(new SegmentReport
            {
                Name = name,
                Members = now.Length,
                Entered = entered.Length,
                Exited = exited.Length,
                Declared = declared,
                EvaluateMs = members.Milliseconds.GetValueOrDefault(name),
            });
            report.Members += now.Length;
            report.Entered += entered.Length;
            report.Exited += exited.Length;
        }
        report.DeltasMs = clock.Elapsed.TotalMilliseconds;

        await WriteMembersAsync(run.Child(MembersFolder), workspace.Segments.Select(s => s.Name).Order(StringComparer.Ordinal), current, cancellationToken);
        await WriteDeltasAsync(run.Child(DeltasFolder), deltas, cancellationToken);
        return new SegmentsResult(report, members, deltas);
    }

    /// <summary>Entered (in <paramref name="now"/>, not in <paramref name="before"/>) and exited, by one merge of two ascending lists.</summary>
    public static (long[] Entered, long[] Exited) Difference(ReadOnlySpan<long> now, ReadOnlySpan<long> before)
    {
        var entered = new List<long>();
        var exited = new List<long>();
        int i = 0, j = 0;
        while (i < now.Length && j < before.Length)
        {
            if (now[i] == before[j])
            {
                i++;
                j++;
            }
            else if (now[i] < before[j])
            {
                entered.Add(now[i++]);
            }
            else
            {
                exited.Add(before[j++]);
            }
        }
        while (i < now.Length)
        {
            entered.Add(now[i++]);
        }
        while (j < before.Length)
        {
            exited.Add(before[j++]);
        }
        return ([.. entered], [.. exited]);
    }

    /// <summary>Reads a <c>segments/</c> dataset: each segment's members, ascending.</summary>
    public static async Task<Dictionary<string, long[]>> ReadMembersAsync(StorageLocation location, CancellationToken cancellationToken = default)
    {
        var lists = new Dictionary<string, List<long>>(StringComparer.Ordinal);
        var dataset = await Dataset.OpenAsync(location, DataFormat.Parquet, cancellationToken);
        var columns = new[] { new ColumnSpec("segment", ColumnType.String), new ColumnSpec("profile_id", ColumnType.Int64) };
        foreach (var file in dataset.Files)
        {
            using var parquet = ParquetDataFile.Open(location.Store, file.Key, ParquetReadOptions.Default);
            var projection = parquet.ResolveColumns(columns);
            foreach (var batch in parquet.ReadAll(projection))
            {
                using (batch)
                {
                    var segments = batch.Column(0);
                    var ids = (Int64Array)batch.Column(1);
                    string? last = null;
                    List<long>? list = null;
                    for (var row = 0; row < batch.Length; row++)
                    {
                        var name = SegmentName(segments, row) ?? throw new DataException(parquet.Location, $"row {row}: segment is null");
                        if (name != last)
                        {
                            last = name;
                            if (!lists.TryGetValue(name, out list))
                            {
                                lists[name] = list = [];
                            }
                        }
                        list!.Add(ids.GetValue(row) ?? throw new DataException(parquet.Location, $"row {row}: profile_id is null"));
                    }
                }
            }
        }
        var result = new Dictionary<string, long[]>(StringComparer.Ordinal);
        foreach (var (name, list) in lists)
        {
            var ids = list.ToArray();
            ids.AsSpan().Sort();
            result[name] = ids;
        }
        return result;
    }

    private static string? SegmentName(IArrowArray column, int row) => column switch
    {
        StringArray strings => strings.GetString(row),
        DictionaryArray { Dictionary: StringArray entries, Indices: Int32Array indices } when column.IsValid(row) => entries.GetString(indices.Values[row]),
        _ => null,
    };

    private const int BatchRows = 64 * 1024;

    private static async Task WriteMembersAsync(StorageLocation location, IEnumerable<string> names, Dictionary<string, long[]> members, CancellationToken cancellationToken)
    {
        await using var writer = await ParquetDatasetWriter.CreateAsync(location, MembersSchema, cancellationToken: cancellationToken);
        foreach (var name in names)
        {
            WriteRows(writer, MembersSchema, name, members[name], null);
            cancellationToken.ThrowIfCancellationRequested();
        }
        await writer.CommitAsync(cancellationToken);
    }

    private static async Task WriteDeltasAsync(StorageLocation location, IReadOnlyList<SegmentDelta> deltas, CancellationToken cancellationToken)
    {
        await using var writer = await ParquetDatasetWriter.CreateAsync(location, DeltasSchema, cancellationToken: cancellationToken);
        foreach (var delta in deltas)
        {
            WriteRows(writer, DeltasSchema, delta.Segment, delta.Entered, Entered);
            WriteRows(writer, DeltasSchema, delta.Segment, delta.Exited, Exited);
            cancellationToken.ThrowIfCancellationRequested();
        }
        await writer.CommitAsync(cancellationToken);
    }

    private static void WriteRows(ParquetDatasetWriter writer, Schema schema, string segment, long[] ids, string? change)
    {
        for (var start = 0; start < ids.Length; start += BatchRows)
        {
            var n = Math.Min(BatchRows, ids.Length - start);
            var segments = new StringArray.Builder();
            var changes = change is null ? null : new StringArray.Builder();
            for (var i = 0; i < n; i++)
            {
                segments.Append(segment);
                changes?.Append(change);
            }
            var idArray = new Int64Array.Builder().Append(ids.AsSpan(start, n)).Build();
            IArrowArray[] columns = changes is null ? [segments.Build(), idArray] : [segments.Build(), idArray, changes.Build()];
            using var batch = new RecordBatch(schema, columns, n);
            writer.Write(batch);
        }
    }
}
