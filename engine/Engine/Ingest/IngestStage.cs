using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using Apache.Arrow;
using Engine.Diagnostics;
using Engine.Storage;
using Engine.Workspaces;
using Microsoft.Extensions.Logging;

namespace Engine.Ingest;

/// <summary>
/// The first stage: opens every file of every source, checks it against the workspace's declared columns and
/// types, and counts its rows, the NULLs of each declared column and the timestamp column's range. For a Parquet file
/// these figures come from its footer (row group sizes and column chunk statistics), not from its pages: the
/// identity and profiles stages decode the same columns right after, so decoding them here too cost a fifth of a
/// night for nothing they would not catch. A truncated or corrupt file fails here, at its footer, named; a corrupt
/// page inside a file fails in the stage that decodes it, which names the file too, and since every stage commits
/// atomically nothing is half-written either way. A file whose footer cannot say (statistics written without null
/// counts or not at all, an INT96 timestamp column, timestamp chunks without min/max) is scanned as before, and so are
/// CSV files, which have no footer. A NULL in a required column is found from the footer as well, and only its row group is read to name
/// the row.
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

    /// <summary>Take Parquet files' figures from their footers (the default); false scans every file, as ingest once did.</summary>
    internal bool ReadFooters { get; init; } = true;

    /// <summary>Checks every source; throws <see cref="DataException"/> at the first bad file.</summary>
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
            // Footers and scans run on worker threads and block this one until every file is done.
            sources.Add(Read(source, dataset, progress, cancellationToken));
        }
        return new IngestResult(sources);
    }

    private static string StripLocation(DataException e)
        => e.Message.StartsWith(e.Location + ": ", StringComparison.Ordinal) ? e.Message[(e.Location.Length + 2)..] : e.Message;

    private SourceStats Read(SourceDefinition source, Dataset dataset, IProgress<IngestProgress>? progress, CancellationToken cancellationToken)
    {
        var progressRows = new StrongBox<long>();
        FileStats[] files;
        if (dataset.Format == DataFormat.Csv || !ReadFooters)
        {
            files = Scan(source, dataset, progress, progressRows, cancellationToken);
        }
        else
        {
            var found = FromFooters(source, dataset, out var failed, progress, progressRows, cancellationToken);
            // The files whose footers could not say, scanned; a failure stops at the first bad file in key order,
            // whether its footer or its scan found the problem, so errors are as stable as the scan's own.
            var scan = new List<int>();
            for (var i = 0; i < found.Length && i < (failed?.FileIndex ?? found.Length); i++)
            {
                if (found[i] is null)
                {
                    scan.Add(i);
                }
            }
            if (scan.Count > 0)
            {
                var scanned = Scan(source, dataset.WithFiles([.. scan.Select(i => dataset.Files[i])]), progress, progressRows, cancellationToken);
                for (var i = 0; i < scan.Count; i++)
                {
                    found[scan[i]] = scanned[i];
                }
            }
            if (failed is { Error: var error })
            {
                ExceptionDispatchInfo.Throw(error);
            }
            files = System.Array.ConvertAll(found, f => f!);
        }

        var scannedBytes = 0L;
        foreach (var file in files)
        {
            if (file.FromFooter)
            {
                Log.FileChecked(_logger, file.Rows, file.Location);
            }
            else
            {
                Log.FileRead(_logger, file.Rows, file.Location);
                scannedBytes += file.Bytes;
            }
        }
        var result = SourceStats.Combine(source, dataset, files);
        Log.SourceChecked(_logger, source.Name, result.FilesFromFooter, result.FilesScanned);
        EngineTelemetry.RecordsRead.Add(result.Rows, new KeyValuePair<string, object?>("source", source.Name));
        // Bytes actually decoded: a file checked at its footer had only its footer read.
        EngineTelemetry.BytesRead.Add(scannedBytes, new KeyValuePair<string, object?>("source", source.Name));
        return result;
    }

    /// <summary>
    /// Every file's figures from its footer, in parallel: opening checks the declared columns and types as a scan
    /// does. A file whose footer cannot say is left null (to scan); the first failing file in key order is returned
    /// in <paramref name="failed"/>.
    /// </summary>
    private FileStats?[] FromFooters(SourceDefinition source, Dataset dataset, out (int FileIndex, Exception Error)? failed,
        IProgress<IngestProgress>? progress, StrongBox<long> progressRows, CancellationToken cancellationToken)
    {
        var columns = source.Schema.Columns;
        var timestampIndex = source.TimestampColumn is null ? -1 : IndexOf(columns, source.TimestampColumn);
        var store = dataset.Location.Store;
        // Opened as a scan opens it, so that the schema checks (and their messages: a dictionary column is named as
        // such) are the scan's; this costs a second footer parse for files with dictionary-encoded string columns.
        var options = source.ScanOptions(Parallelism).Parquet;
        var files = new FileStats?[dataset.Files.Count];
        var failures = new ConcurrentBag<(int FileIndex, Exception Error)>();
        Parallel.For(0, files.Length, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, Parallelism), CancellationToken = cancellationToken }, i =>
        {
            try
            {
                var file = dataset.Files[i];
                using var parquet = ParquetDataFile.Open(store, file.Key, options);
                var stats = FooterFigures.Read(parquet, file, columns, timestampIndex, source);
                files[i] = stats;
                if (stats is not null)
                {
                    progress?.Report(new IngestProgress(source.Name, Interlocked.Add(ref progressRows.Value, stats.Rows)));
                }
            }
            catch (Exception e) when (e is EngineException or IOException)
            {
                failures.Add((i, e));
            }
        });
        failed = failures.IsEmpty ? null : failures.MinBy(f => f.FileIndex);
        return files;
    }

    /// <summary>Scans every declared column of every file of <paramref name="dataset"/>; its figures, file by file.</summary>
    private FileStats[] Scan(SourceDefinition source, Dataset dataset, IProgress<IngestProgress>? progress, StrongBox<long> progressRows, CancellationToken cancellationToken)
    {
        var columns = source.Schema.Columns;
        var timestampIndex = source.TimestampColumn is null ? -1 : IndexOf(columns, source.TimestampColumn);
        var store = dataset.Location.Store;
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
                var rows = Interlocked.Add(ref progressRows.Value, scan.Batch.Length);
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
        return merged;
    }

    internal static int IndexOf(IReadOnlyList<ColumnSpec> columns, string name)
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
/// <remarks><see cref="FilesFromFooter"/> and <see cref="FilesScanned"/> say how its files' figures were found.</remarks>
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
    /// <summary>Files whose figures came from their Parquet footers.</summary>
    public int FilesFromFooter => Files.Count(f => f.FromFooter);

    /// <summary>Files whose pages were read for their figures (CSV files, Parquet footers that could not say).</summary>
    public int FilesScanned => Files.Count - FilesFromFooter;

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

    /// <summary>Whether the figures came from the file's footer rather than from reading its pages.</summary>
    public bool FromFooter { get; internal init; }

    /// <summary>Counts a row group's rows (its NULLs are counted by the caller, into <see cref="NullCounts"/>).</summary>
    internal void AddRows(long rows) => Rows += rows;

    /// <summary>Widens the time range to take in [<paramref name="min"/>, <paramref name="max"/>] (microseconds).</summary>
    internal void TrackTimeRange(long min, long max)
    {
        MinMicros = MinMicros is { } m ? Math.Min(m, min) : min;
        MaxMicros = MaxMicros is { } n ? Math.Max(n, max) : max;
    }

    internal void Add(RecordBatch batch, long firstRow, IReadOnlyList<ColumnSpec> columns, int timestampIndex, SourceDefinition source)
    {
        for (var c = 0; c < columns.Count; c++)
        {
            var array = batch.Column(c);
            var nulls = array.NullCount;
            NullCounts[c] += nulls;
            if (nulls > 0 && columns[c].Required)
            {
                throw RequiredNull(Location, firstRow + FirstNull(array), columns[c].Name, source.Name);
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

    /// <summary>The error for a NULL in a required column, at <paramref name="row"/> counted from the file's first row.</summary>
    internal static DataException RequiredNull(string location, long row, string column, string source)
        => new(location, $"row index {row}: required column '{column}' is null (source '{source}')");

    internal static int FirstNull(IArrowArray array)
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
        TrackTimeRange(ToMicros(min, unit), ToMicros(max, unit));
    }

    private static long ToMicros(long value, Apache.Arrow.Types.TimeUnit unit) => unit switch
    {
        Apache.Arrow.Types.TimeUnit.Second => value * 1_000_000,
        Apache.Arrow.Types.TimeUnit.Millisecond => value * 1_000,
        Apache.Arrow.Types.TimeUnit.Nanosecond => value / 1_000,
        _ => value,
    };
}
