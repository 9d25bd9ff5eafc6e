using Apache.Arrow;
using ParquetSharp;
using ParquetSharp.Arrow;

namespace Engine.Storage;

/// <summary>How Parquet datasets are written.</summary>
public sealed record ParquetWriteOptions
{
    /// <summary>
    /// Rows per row group: the unit of parallel reading, so several per file keep every core busy (DuckDB writes
    /// 122,880), while each stays large enough for long sequential reads.
    /// </summary>
    public long RowGroupRows { get; init; } = 256 * 1024;

    /// <summary>Rows per file before the writer starts the next <c>part-NNNNN.parquet</c>.</summary>
    public long FileRows { get; init; } = 8 * 1024 * 1024;

    /// <summary>Page compression. Snappy decodes fastest, which is what a nightly scan wants.</summary>
    public Compression Compression { get; init; } = Compression.Snappy;

    /// <summary>
    /// Columns written without dictionary encoding: high-cardinality ids (event ids, emails), where a dictionary
    /// only adds a costly fallback on write and a slow dictionary decode on read.
    /// </summary>
    public IReadOnlySet<string> PlainColumns { get; init; } = new HashSet<string>();

    /// <summary>
    /// Columns written without compression: values with little to repeat (hashed or random ids, a row's own index),
    /// which compression shrinks by a few percent while costing its time on every write and every read.
    /// </summary>
    public IReadOnlySet<string> UncompressedColumns { get; init; } = new HashSet<string>();

    public static ParquetWriteOptions Default { get; } = new();
}

/// <summary>
/// Streams record batches into a Parquet dataset (one or more <c>part-NNNNN.parquet</c> files) that is published
/// atomically by <see cref="CommitAsync"/>; disposing without committing leaves nothing behind.
/// Memory stays bounded by one row group per open file.
/// </summary>
public sealed class ParquetDatasetWriter : IAsyncDisposable
{
    private readonly IDatasetWrite _write;
    private readonly Schema _schema;
    private readonly ParquetWriteOptions _options;
    private readonly DatasetManifest _manifest = new();
    private Stream? _stream;
    private FileWriter? _file;
    private DatasetManifestFile? _current;
    private long _rowsInGroup;
    private bool _committed;

    private ParquetDatasetWriter(IDatasetWrite write, Schema schema, ParquetWriteOptions options, string location)
    {
        _write = write;
        _schema = schema;
        _options = options;
        Location = location;
    }

    /// <summary>The dataset being written, as the user would write it.</summary>
    public string Location { get; }

    /// <summary>Rows written so far.</summary>
    public long Rows => _manifest.Rows;

    /// <summary>Starts writing the dataset at <paramref name="location"/> with the given schema.</summary>
    public static async Task<ParquetDatasetWriter> CreateAsync(StorageLocation location, Schema schema, ParquetWriteOptions? options = null, CancellationToken cancellationToken = default)
    {
        var write = await location.Store.BeginWriteAsync(location.Key, cancellationToken);
        return new ParquetDatasetWriter(write, schema, options ?? ParquetWriteOptions.Default, location.ToString());
    }

    /// <summary>Appends a batch; its schema must equal the dataset's.</summary>
    public void Write(RecordBatch batch)
    {
        ObjectDisposedException.ThrowIf(_committed, this);
        var offset = 0;
        while (offset < batch.Length)
        {
            if (_file is null || _current!.Rows >= _options.FileRows)
            {
                StartFile();
            }
            var take = (int)Math.Min(_options.FileRows - _current!.Rows, batch.Length - offset);
            WriteInRowGroups(_file!, batch, offset, take, ref _rowsInGroup, _options.RowGroupRows);
            offset += take;
            _current.Rows += take;
            _manifest.Rows += take;
        }
    }

    private void StartFile()
    {
        FinishFile();
        var path = $"part-{_manifest.Files.Count:D5}.parquet";
        _current = new DatasetManifestFile { Path = path };
        _manifest.Files.Add(_current);
        _stream = _write.CreateFile(path);
        _file = OpenFile(_stream, _schema, _options);
        _rowsInGroup = 0;
    }

    /// <summary>
    /// Writes rows <paramref name="offset"/> to <paramref name="offset"/> + <paramref name="count"/> of
    /// <paramref name="batch"/>, starting a row group whenever the current one (<paramref name="inGroup"/> rows so far,
    /// 0 in a new file) is full.
    /// </summary>
    private static void WriteInRowGroups(FileWriter file, RecordBatch batch, int offset, int count, ref long inGroup, long rowGroupRows)
    {
        for (var end = offset + count; offset < end;)
        {
            if (inGroup == 0 || inGroup >= rowGroupRows)
            {
                file.NewBufferedRowGroup();
                inGroup = 0;
            }
            var take = (int)Math.Min(rowGroupRows - inGroup, end - offset);
            // Not disposed: an Arrow C# slice shares (and on dispose frees) the parent batch's buffers.
            file.WriteBufferedRecordBatch(offset == 0 && take == batch.Length ? batch : batch.Slice(offset, take));
            offset += take;
            inGroup += take;
        }
    }

    private static FileWriter OpenFile(Stream stream, Schema schema, ParquetWriteOptions options)
    {
        using var builder = new WriterPropertiesBuilder()
            .Compression(options.Compression)
            .CreatedBy("activation-engine")
            .MaxRowGroupLength(options.RowGroupRows);
        foreach (var column in options.PlainColumns)
        {
            builder.DisableDictionary(column);
        }
        foreach (var column in options.UncompressedColumns)
        {
            builder.Compression(column, Compression.Uncompressed);
        }
        using var properties = builder.Build();
        using var arrowProperties = new ArrowWriterPropertiesBuilder().Build();
        return new FileWriter(stream, schema, properties, arrowProperties, leaveOpen: true);
    }

    /// <summary>
    /// Writes a dataset whose <paramref name="rows"/> are known in advance, as files of
    /// <see cref="ParquetWriteOptions.FileRows"/> rows encoded on up to <paramref name="parallelism"/> threads at once:
    /// Parquet encodes a file on one thread, and encoding is most of a write. <paramref name="writeRange"/> is called
    /// once per file, with its first row and row count, and must hand exactly those rows, in order, to the writer it
    /// is given, so the dataset reads back in row order. Published atomically, as <see cref="CommitAsync"/> does;
    /// nothing is left behind when a range fails.
    /// </summary>
    public static async Task WriteRangesAsync(
        StorageLocation location, Schema schema, long rows, Action<long, long, Action<RecordBatch>> writeRange, int parallelism,
        ParquetWriteOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(writeRange);
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        options ??= ParquetWriteOptions.Default;
        await using var write = await location.Store.BeginWriteAsync(location.Key, cancellationToken);
        var files = (int)Math.Max(1, (rows + options.FileRows - 1) / options.FileRows);
        var manifest = new DatasetManifest { Rows = rows };
        manifest.Files.AddRange(Enumerable.Range(0, files).Select(k => new DatasetManifestFile { Path = $"part-{k:D5}.parquet" }));
        await Parallel.ForEachAsync(Enumerable.Range(0, files), new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, parallelism), CancellationToken = cancellationToken }, (k, token) =>
        {
            var entry = manifest.Files[k];
            var first = k * options.FileRows;
            var count = Math.Min(options.FileRows, rows - first);
            using var stream = write.CreateFile(entry.Path);
            using (var file = OpenFile(stream, schema, options))
            {
                long inGroup = 0;
                writeRange(first, count, batch =>
                {
                    token.ThrowIfCancellationRequested();
                    if (entry.Rows + batch.Length > count)
                    {
                        throw new InvalidOperationException($"{location}: rows {first} to {first + count} were handed {entry.Rows + batch.Length} rows");
                    }
                    WriteInRowGroups(file, batch, 0, batch.Length, ref inGroup, options.RowGroupRows);
                    entry.Rows += batch.Length;
                });
                if (entry.Rows != count)
                {
                    throw new InvalidOperationException($"{location}: rows {first} to {first + count} were handed {entry.Rows} rows");
                }
                file.Close();
            }
            stream.Flush();
            entry.Bytes = stream.Position;
            return ValueTask.CompletedTask;
        });
        await write.CommitAsync(manifest, cancellationToken);
    }

    private void FinishFile()
    {
        if (_file is null)
        {
            return;
        }
        _file.Close();
        _file.Dispose();
        _file = null;
        _stream!.Flush();
        _current!.Bytes = _stream.Position;
        _stream.Dispose();
        _stream = null;
    }

    /// <summary>Closes the last file and publishes the dataset. An empty dataset is written as one file with no rows.</summary>
    public async Task CommitAsync(CancellationToken cancellationToken = default)
    {
        if (_file is null)
        {
            StartFile();
        }
        FinishFile();
        await _write.CommitAsync(_manifest, cancellationToken);
        _committed = true;
    }

    public async ValueTask DisposeAsync()
    {
        if (_file is not null)
        {
            try
            {
                _file.Dispose();
            }
            catch (ParquetException)
            {
                // An abandoned file may fail to close cleanly; it is discarded with the uncommitted write anyway.
            }
            _file = null;
        }
        try
        {
            // Closing a stream may upload it (S3), and the upload may fail: the file is discarded either way, and the
            // write below must still run, or an abandoned write would leave its files and marker behind.
            _stream?.Dispose();
        }
        catch (Exception e) when (e is IOException or EngineException)
        {
        }
        finally
        {
            _stream = null;
            await _write.DisposeAsync();
        }
    }
}
