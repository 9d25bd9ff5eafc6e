using System.Collections.Concurrent;
using Apache.Arrow;

namespace Engine.Storage;

/// <summary>One batch handed to a scan's consumer, with where it came from.</summary>
/// <param name="Batch">The rows; owned by the scan, disposed after the consumer returns.</param>
/// <param name="FileIndex">The index of the file in <see cref="Dataset.Files"/>.</param>
/// <param name="Location">The file as the user would write it.</param>
/// <param name="FileRowOffset">The index within its file of the batch's first row.</param>
/// <param name="FileRows">Rows in the whole file, from its footer (Parquet); -1 when not known before it is read (CSV).</param>
public readonly record struct ScanBatch(RecordBatch Batch, int FileIndex, string Location, long FileRowOffset, long FileRows = -1);

/// <summary>How a dataset is scanned.</summary>
public sealed record ScanOptions
{
    /// <summary>Row groups (CSV: files) read at once.</summary>
    public int Parallelism { get; init; } = Environment.ProcessorCount;

    /// <summary>Options for each Parquet file.</summary>
    public ParquetReadOptions Parquet { get; init; } = ParquetReadOptions.Default;

    /// <summary>Options for each CSV file.</summary>
    public CsvReadOptions? Csv { get; init; }

    public static ScanOptions Default { get; } = new();
}

/// <summary>
/// Reads chosen columns of every file of a dataset, in parallel by row group (Parquet) or by file (CSV), checking
/// each file against the declared column types first. A declared column that is a hive partition key of a file's
/// path (<c>country=DE/</c>) is taken from the path (see <see cref="PartitionColumns"/>). The unit of work is a row group, so one large file keeps
/// every core busy; each worker keeps its own open file and its own consumer state, so consumers need no locks.
/// </summary>
public static class DatasetScan
{
    /// <summary>
    /// Scans <paramref name="dataset"/>, calling <paramref name="consume"/> on worker threads with batches holding
    /// exactly <paramref name="columns"/>, in that order. Returns one state per worker (create with
    /// <paramref name="createState"/>), for the caller to merge. The first failure stops the scan and is rethrown;
    /// when several workers fail, the one for the first file in key order wins, so errors are stable.
    /// </summary>
    public static IReadOnlyList<TState> Run<TState>(
        Dataset dataset,
        IReadOnlyList<ColumnSpec> columns,
        Func<TState> createState,
        Action<TState, ScanBatch> consume,
        ScanOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        options ??= ScanOptions.Default;
        var store = dataset.Location.Store;
        var work = dataset.Format == DataFormat.Csv ? CsvWork(dataset) : ParquetWork(dataset, columns, options);
        var queue = new ConcurrentQueue<WorkItem>(work);
        var workers = Math.Max(1, Math.Min(options.Parallelism, work.Count));
        var states = new TState[workers];
        var failures = new ConcurrentBag<(int FileIndex, Exception Error)>();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);

        void Work(int worker)
        {
            var state = states[worker] = createState();
            ParquetDataFile? open = null;
            var openIndex = -1;
            int[] projection = [];
            PartitionColumns? partitions = null;
            try
            {
                while (!stop.IsCancellationRequested && queue.TryDequeue(out var item))
                {
                    try
                    {
                        var file = dataset.Files[item.FileIndex];
                        var location = store.Describe(file.Key);
                        if (dataset.Format == DataFormat.Csv)
                        {
                            var csvPartitions = PartitionColumns.For(file, columns, location);
                            using var csv = CsvDataFile.Open(store, file.Key, new DataSchema(csvPartitions.Stored), CsvOptionsFor(file, options.Csv));
                            long offset = 0;
                            foreach (var batch in csv.ReadAll())
                            {
                                using var whole = csvPartitions.Any ? csvPartitions.Compose(batch) : batch;
                                consume(state, new ScanBatch(whole, item.FileIndex, location, offset));
                                offset += whole.Length;
                            }
                            continue;
                        }
                        if (openIndex != item.FileIndex)
                        {
                            open?.Dispose();
                            open = null;
                            open = ParquetDataFile.Open(store, file.Key, options.Parquet);
                            openIndex = item.FileIndex;
                            partitions = PartitionColumns.For(file, columns, location);
                            projection = open.ResolveColumns(partitions.Stored);
                        }
                        var rowOffset = item.FirstRow;
                        foreach (var batch in open!.ReadRowGroup(item.RowGroup, projection))
                        {
                            // A composed batch owns the read batch's arrays: dispose only the one handed out.
                            using var whole = partitions!.Any ? partitions.Compose(batch) : batch;
                            consume(state, new ScanBatch(whole, item.FileIndex, location, rowOffset, item.FileRows));
                            rowOffset += whole.Length;
                        }
                    }
                    catch (Exception e) when (e is EngineException or IOException)
                    {
                        failures.Add((item.FileIndex, e));
                        stop.Cancel();
                    }
                }
            }
            finally
            {
                open?.Dispose();
            }
        }

        if (workers == 1)
        {
            Work(0);
        }
        else
        {
            var threads = new Task[workers];
            for (var w = 0; w < workers; w++)
            {
                var worker = w;
                threads[w] = Task.Factory.StartNew(() => Work(worker), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
            }
            Task.WaitAll(threads, CancellationToken.None);
        }
        if (!failures.IsEmpty)
        {
            var first = failures.OrderBy(f => f.FileIndex).First().Error;
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(first);
        }
        cancellationToken.ThrowIfCancellationRequested();
        return states;
    }

    private readonly record struct WorkItem(int FileIndex, int RowGroup, long FirstRow, long FileRows = -1);

    // A header-less file's fields are the declared columns minus the ones its path holds (hive partition keys).
    private static CsvReadOptions? CsvOptionsFor(DataFile file, CsvReadOptions? options)
    {
        if (options?.ColumnNames is not { } names || file.Partitions.Count == 0)
        {
            return options;
        }
        return options with { ColumnNames = [.. names.Where(n => !file.Partitions.Any(p => p.Key == n))] };
    }

    private static List<WorkItem> CsvWork(Dataset dataset)
    {
        var work = new List<WorkItem>(dataset.Files.Count);
        for (var i = 0; i < dataset.Files.Count; i++)
        {
            work.Add(new WorkItem(i, 0, 0));
        }
        return work;
    }

    // Footers are read up front (and the schema checked) so bad files fail before any work starts, and row groups of
    // every file can be spread over the workers.
    private static List<WorkItem> ParquetWork(Dataset dataset, IReadOnlyList<ColumnSpec> columns, ScanOptions options)
    {
        var footers = new (int RowGroups, long[] Rows)[dataset.Files.Count];
        var failures = new ConcurrentBag<(int FileIndex, Exception Error)>();
        Parallel.For(0, dataset.Files.Count, new ParallelOptions { MaxDegreeOfParallelism = options.Parallelism }, i =>
        {
            try
            {
                using var file = ParquetDataFile.Open(dataset.Location.Store, dataset.Files[i].Key, options.Parquet);
                file.ResolveColumns(PartitionColumns.For(dataset.Files[i], columns, file.Location).Stored);
                var rows = new long[file.RowGroupCount];
                for (var g = 0; g < rows.Length; g++)
                {
                    rows[g] = file.RowGroupRows(g);
                }
                footers[i] = (file.RowGroupCount, rows);
            }
            catch (Exception e) when (e is EngineException or IOException)
            {
                failures.Add((i, e));
            }
        });
        if (!failures.IsEmpty)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failures.OrderBy(f => f.FileIndex).First().Error);
        }
        var work = new List<WorkItem>();
        for (var i = 0; i < footers.Length; i++)
        {
            long first = 0;
            var fileRows = footers[i].Rows.Sum();
            for (var g = 0; g < footers[i].RowGroups; g++)
            {
                work.Add(new WorkItem(i, g, first, fileRows));
                first += footers[i].Rows[g];
            }
        }
        return work;
    }
}
