using Apache.Arrow;
using Engine.Diagnostics;
using Engine.Storage;
using Engine.Workspaces;
using Microsoft.Extensions.Logging;

namespace Engine.Ingest;

/// <summary>
/// The first stage: opens every file of every source, checks it against the workspace's declared columns and
/// types, and reads the declared columns through, so that a truncated page or a null in a required column is
/// caught here, with the file and row named, rather than half-way through a later stage.
/// </summary>
public sealed class IngestStage
{
    private readonly StorageResolver _storage;
    private readonly ILogger _logger;

    public IngestStage(StorageResolver storage, ILogger logger)
    {
        _storage = storage;
        _logger = logger;
    }

    /// <summary>How many files are read at once (each also decodes its columns on Arrow's threads).</summary>
    public int Parallelism { get; init; } = Environment.ProcessorCount;

    /// <summary>Checks and scans every source; throws <see cref="DataException"/> at the first bad file.</summary>
    public async Task<IngestResult> RunAsync(Workspace workspace, IProgress<IngestProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var sources = new List<SourceStats>(workspace.Sources.Count);
        foreach (var source in workspace.Sources)
        {
            var location = _storage.Resolve(source.Location, workspace.Directory);
            Dataset dataset;
            try
            {
                dataset = await Dataset.OpenAsync(location, source.Format, cancellationToken);
            }
            catch (DataException e)
            {
                throw new DataException(e.Location, $"{StripLocation(e)} (source '{source.Name}', {source.File})", e);
            }
            Log.SourceOpened(_logger, source.Name, dataset.Files.Count, dataset.TotalBytes, location.ToString());
            // The scan runs on its own worker threads and blocks this one until every row group is read.
            sources.Add(Scan(source, dataset, progress, cancellationToken));
        }
        return new IngestResult(sources);
    }

    private static string StripLocation(DataException e)
        => e.Message.StartsWith(e.Location + ": ", StringComparison.Ordinal) ? e.Message[(e.Location.Length + 2)..] : e.Message;

    private SourceStats Scan(SourceDefinition source, Dataset dataset, IProgress<IngestProgress>? progress, CancellationToken cancellationToken)
    {
        var columns = source.Schema.Columns;
        var timestampIndex = source.TimestampColumn is null ? -1 : IndexOf(columns, source.TimestampColumn);
        var store = dataset.Location.Store;
        long rowsDone = 0;
        // Each worker keeps its own per-file statistics; they are merged below, so the scan needs no locks.
        var perWorker = DatasetScan.Run(
            dataset,
            columns,
            () => new Dictionary<int, FileStats>(),
            (files, scan) =>
            {
                if (!files.TryGetValue(scan.FileIndex, out var stats))
                {
                    stats = files[scan.FileIndex] = new FileStats(scan.Location, dataset.Files[scan.FileIndex].Size, columns.Count);
                }
                stats.Add(scan.Batch, scan.FileRowOffset, columns, timestampIndex, source);
                var rows = Interlocked.Add(ref rowsDone, scan.Batch.Length);
                progress?.Report(new IngestProgress(source.Name, rows));
            },
            source.ScanOptions(Parallelism),
            cancellationToken);

        var merged = new FileStats[dataset.Files.Count];
        for (var i = 0; i < merged.Length; i++)
        {
            merged[i] = new FileStats(store.Describe(dataset.Files[i].Key), dataset.Files[i].Size, columns.Count);
        }
        foreach (var files in perWorker)
        {
            foreach (var (index, stats) in files)
            {
                merged[index].Merge(stats);
            }
        }
        foreach (var file in merged)
        {
            Log.FileRead(_logger, file.Rows, file.Location);
        }
        var result = SourceStats.Combine(source, dataset, merged);
        EngineTelemetry.RecordsRead.Add(result.Rows, new KeyValuePair<string, object?>("source", source.Name));
        EngineTelemetry.BytesRead.Add(result.Bytes, new KeyValuePair<string, object?>("source", source.Name));
        return result;
    }

    private static int IndexOf(IReadOnlyList<ColumnSpec> columns, string name)
    {
        for (var i = 0; i < columns.Count; i++)
        {
            if (columns[i].Name == name)
            {
                return i;
            }
        }
        return -1;
    }
}

/// <summary>Progress of the ingest stage.</summary>
public readonly record struct IngestProgress(string Source, long RowsRead);

/// <summary>What ingest found in every source.</summary>
public sealed record IngestResult(IReadOnlyList<SourceStats> Sources)
{
    public long Rows => Sources.Sum(s => s.Rows);

    public long Bytes => Sources.Sum(s => s.Bytes);
}

/// <summary>One source as read: its files, rows, bytes, nulls per column and time range.</summary>
public sealed record SourceStats(
    string Name,
    string Location,
    string Format,
    IReadOnlyList<FileStats> Files,
    long Rows,
    long Bytes,
    IReadOnlyDictionary<string, long> NullCounts,
    DateTimeOffset? MinTimestamp,
    DateTimeOffset? MaxTimestamp)
{
    internal static SourceStats Combine(SourceDefinition source, Dataset dataset, FileStats[] files)
    {
        var nulls = new Dictionary<string, long>(StringComparer.Ordinal);
        long? min = null, max = null;
        foreach (var column in source.Schema.Columns)
        {
            nulls[column.Name] = 0;
        }
        foreach (var file in files)
        {
            for (var c = 0; c < source.Schema.Columns.Count; c++)
            {
                nulls[source.Schema.Columns[c].Name] += file.NullCounts[c];
            }
            if (file.MinMicros is { } fmin)
            {
                min = min is null ? fmin : Math.Min(min.Value, fmin);
            }
            if (file.MaxMicros is { } fmax)
            {
                max = max is null ? fmax : Math.Max(max.Value, fmax);
            }
        }
        return new SourceStats(source.Name, dataset.Location.ToString(), dataset.Format.ToString().ToLowerInvariant(), files,
            files.Sum(f => f.Rows), files.Sum(f => f.Bytes), nulls, FromMicros(min), FromMicros(max));
    }

    private static DateTimeOffset? FromMicros(long? micros)
        => micros is { } m ? DateTimeOffset.UnixEpoch.AddTicks(m * 10) : null;
}

/// <summary>One file as read.</summary>
public sealed class FileStats
{
    internal FileStats(string location, long bytes, int columns)
    {
        Location = location;
        Bytes = bytes;
        NullCounts = new long[columns];
    }

    public string Location { get; }

    public long Bytes { get; }

    public long Rows { get; private set; }

    public long[] NullCounts { get; }

    public long? MinMicros { get; private set; }

    public long? MaxMicros { get; private set; }

    internal void Add(RecordBatch batch, long firstRow, IReadOnlyList<ColumnSpec> columns, int timestampIndex, SourceDefinition source)
    {
        for (var c = 0; c < columns.Count; c++)
        {
            var array = batch.Column(c);
            var nulls = array.NullCount;
            NullCounts[c] += nulls;
            if (nulls > 0 && columns[c].Required)
            {
                throw new DataException(Location, $"row index {firstRow + FirstNull(array)}: required column '{columns[c].Name}' is null (source '{source.Name}')");
            }
        }
        if (timestampIndex >= 0)
        {
            TrackTimeRange(batch.Column(timestampIndex));
        }
        Rows += batch.Length;
    }

    internal void Merge(FileStats other)
    {
        Rows += other.Rows;
        for (var c = 0; c < NullCounts.Length; c++)
        {
            NullCounts[c] += other.NullCounts[c];
        }
        if (other.MinMicros is { } min)
        {
            MinMicros = MinMicros is { } m ? Math.Min(m, min) : min;
        }
        if (other.MaxMicros is { } max)
        {
            MaxMicros = MaxMicros is { } n ? Math.Max(n, max) : max;
        }
    }

    private static int FirstNull(IArrowArray array)
    {
        for (var i = 0; i < array.Length; i++)
        {
            if (array.IsNull(i))
            {
                return i;
            }
        }
        return -1;
    }

    private void TrackTimeRange(IArrowArray array)
    {
        if (array is not TimestampArray timestamps)
        {
            return;
        }
        var unit = ((Apache.Arrow.Types.TimestampType)timestamps.Data.DataType).Unit;
        var values = timestamps.Values;
        var min = long.MaxValue;
        var max = long.MinValue;
        var any = false;
        for (var i = 0; i < values.Length; i++)
        {
            if (timestamps.IsValid(i))
            {
                var v = values[i];
                min = Math.Min(min, v);
                max = Math.Max(max, v);
                any = true;
            }
        }
        if (!any)
        {
            return;
        }
        min = ToMicros(min, unit);
        max = ToMicros(max, unit);
        MinMicros = MinMicros is { } m ? Math.Min(m, min) : min;
        MaxMicros = MaxMicros is { } n ? Math.Max(n, max) : max;
    }

    private static long ToMicros(long value, Apache.Arrow.Types.TimeUnit unit) => unit switch
    {
        Apache.Arrow.Types.TimeUnit.Second => value * 1_000_000,
        Apache.Arrow.Types.TimeUnit.Millisecond => value * 1_000,
        Apache.Arrow.Types.TimeUnit.Nanosecond => value / 1_000,
        _ => value,
    };
}
