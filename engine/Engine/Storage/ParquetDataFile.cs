using Apache.Arrow;
using ParquetSharp;
using ParquetSharp.Arrow;

namespace Engine.Storage;

/// <summary>How Parquet files are read.</summary>
public sealed record ParquetReadOptions
{
    /// <summary>Rows per record batch (Arrow's default).</summary>
    public int BatchSize { get; init; } = 64 * 1024;

    /// <summary>Decode the columns of a row group on several threads (Arrow's own pool).</summary>
    public bool UseThreads { get; init; } = true;

    /// <summary>
    /// Fetch every column chunk of a row group up front, coalescing nearby ranges into fewer reads: what remote
    /// object storage wants (few large ranged GETs); left off for local files, where it only costs memory.
    /// </summary>
    public bool? PreBuffer { get; init; }

    /// <summary>Which string columns are read as Arrow dictionary arrays instead of plain string arrays.</summary>
    public DictionaryReading Dictionaries { get; init; } = DictionaryReading.WhenEncoded;

    public static ParquetReadOptions Default { get; } = new();
}

/// <summary>How dictionary-encoded string columns are read.</summary>
public enum DictionaryReading
{
    /// <summary>
    /// A string column whose every chunk is dictionary-encoded (and never fell back to plain pages) is read as a
    /// <see cref="DictionaryArray"/>: low-cardinality columns (event type, country) then cost an index per row
    /// instead of a copied string, and later stages compare indices. High-cardinality columns stay plain strings.
    /// </summary>
    WhenEncoded,

    /// <summary>Every string column is read as a plain <see cref="StringArray"/>.</summary>
    Never,
}

/// <summary>
/// One Parquet file opened for reading through ParquetSharp's Arrow API: the footer is read on open, then row groups
/// are streamed as Arrow record batches with column projection, so a file is never held whole in memory.
/// Every failure becomes a <see cref="DataException"/> naming the file.
/// </summary>
public sealed class ParquetDataFile : IDisposable
{
    private readonly Stream? _stream;
    private readonly string? _localPath;
    private readonly FileReader _reader;
    private long?[][]? _footerNullCounts;
    private bool _footerRead;

    private ParquetDataFile(string location, Stream? stream, string? localPath, FileReader reader)
    {
        Location = location;
        _stream = stream;
        _localPath = localPath;
        _reader = reader;
        try
        {
            Schema = reader.Schema;
            var metadata = reader.ParquetReader.FileMetaData;
            RowCount = metadata.NumRows;
            RowGroupCount = reader.NumRowGroups;
        }
        catch (Exception e) when (e is ParquetException or InvalidOperationException or NotSupportedException)
        {
            reader.Dispose();
            stream?.Dispose();
            throw new DataException(location, $"unreadable Parquet metadata ({FirstLine(e.Message)})", e);
        }
    }

    /// <summary>The file as the user would write it.</summary>
    public string Location { get; }

    /// <summary>The Arrow schema stored in (or derived from) the file.</summary>
    public Schema Schema { get; }

    /// <summary>Rows in the file, from its footer.</summary>
    public long RowCount { get; }

    /// <summary>Row groups in the file.</summary>
    public int RowGroupCount { get; }

    /// <summary>Opens <paramref name="key"/> in <paramref name="store"/>: natively for local files, through a seekable stream otherwise.</summary>
    public static ParquetDataFile Open(IObjectStore store, string key, ParquetReadOptions? options = null)
    {
        options ??= ParquetReadOptions.Default;
        var location = store.Describe(key);
        var local = store.TryGetLocalPath(key, out var path);
        if (local && !File.Exists(path))
        {
            throw new DataException(location, "file not found");
        }
        var readerProperties = ReaderProperties.GetDefaultReaderProperties();
        using var arrowProperties = ArrowReaderProperties.GetDefault();
        arrowProperties.BatchSize = options.BatchSize;
        arrowProperties.UseThreads = options.UseThreads;
        arrowProperties.PreBuffer = options.PreBuffer ?? !local;
        Stream? stream = null;
        try
        {
            if (!local)
            {
                stream = store.OpenRead(key);
            }
            var reader = local
                ? new FileReader(path, readerProperties, arrowProperties)
                : new FileReader(stream!, readerProperties, arrowProperties, leaveOpen: true);
            if (options.Dictionaries == DictionaryReading.WhenEncoded && DictionaryColumns(reader) is { Count: > 0 } dictionaries)
            {
                // Which columns to read as dictionaries is only known from the footer, and Arrow takes it at open:
                // open again (the footer is cached on S3; locally it is one small read).
                reader.Dispose();
                foreach (var column in dictionaries)
                {
                    arrowProperties.SetReadDictionary(column, true);
                }
                stream?.Seek(0, SeekOrigin.Begin);
                reader = local
                    ? new FileReader(path, readerProperties, arrowProperties)
                    : new FileReader(stream!, readerProperties, arrowProperties, leaveOpen: true);
            }
            return new ParquetDataFile(location, stream, local ? path : null, reader);
        }
        catch (ParquetException e)
        {
            stream?.Dispose();
            throw new DataException(location, StorageProblem(e.Message, location) ?? DescribeOpenFailure(e), e);
        }
        finally
        {
            readerProperties.Dispose();
        }
    }

    /// <summary>
    /// String (BYTE_ARRAY) columns whose every chunk is dictionary-encoded at under 4 uncompressed bytes per value.
    /// The encodings list cannot tell a chunk that fell back to plain pages from a pure dictionary chunk, but sizes
    /// can: a plain string costs at least its 4-byte length prefix, an index far less. Reading a fallen-back
    /// high-cardinality column as a dictionary would rebuild a huge dictionary, several times slower than plain.
    /// </summary>
    private static List<int> DictionaryColumns(FileReader reader)
    {
        var result = new List<int>();
        var metadata = reader.ParquetReader.FileMetaData;
        var rowGroups = metadata.NumRowGroups;
        if (rowGroups == 0)
        {
            return result;
        }
        for (var column = 0; column < metadata.NumColumns; column++)
        {
            if (metadata.Schema.Column(column).PhysicalType != PhysicalType.ByteArray)
            {
                continue;
            }
            var dictionary = true;
            for (var g = 0; g < rowGroups && dictionary; g++)
            {
                using var rowGroup = reader.ParquetReader.RowGroup(g);
                using var chunk = rowGroup.MetaData.GetColumnChunkMetaData(column);
                var encoded = System.Array.Exists(chunk.Encodings, e => e is Encoding.RleDictionary or Encoding.PlainDictionary);
                dictionary = encoded && chunk.NumValues > 0 && chunk.TotalUncompressedSize < 4 * chunk.NumValues;
            }
            if (dictionary)
            {
                result.Add(column);
            }
        }
        return result;
    }

    private static string DescribeOpenFailure(ParquetException e)
    {
        var message = FirstLine(e.Message);
        if (message.Contains("magic bytes", StringComparison.OrdinalIgnoreCase))
        {
            return "not a Parquet file, or a truncated one (no Parquet footer at its end)";
        }
        if (message.Contains("size", StringComparison.OrdinalIgnoreCase) || message.Contains("Couldn't deserialize", StringComparison.OrdinalIgnoreCase))
        {
            return $"truncated or corrupt Parquet file ({message})";
        }
        return $"unreadable Parquet file ({message})";
    }

    /// <summary>
    /// The problem a store's stream reported from inside the native reader, or null. ParquetSharp passes a managed
    /// stream's exception through as text, so a failed S3 request (access denied, timeout) would otherwise be reported
    /// as a corrupt file.
    /// </summary>
    internal static string? StorageProblem(string message, string location)
    {
        var marker = typeof(DataException).FullName + ": ";
        var at = message.IndexOf(marker, StringComparison.Ordinal);
        if (at < 0)
        {
            return null;
        }
        var problem = FirstLine(message[(at + marker.Length)..]);
        return problem.StartsWith(location + ": ", StringComparison.Ordinal) ? problem[(location.Length + 2)..] : problem;
    }

    internal static string FirstLine(string message)
    {
        var newline = message.IndexOf('\n', StringComparison.Ordinal);
        return (newline < 0 ? message : message[..newline]).Trim();
    }

    /// <summary>
    /// The indices of <paramref name="columns"/> in the file (for projection), checked against their declared types.
    /// Throws <see cref="DataException"/> naming the file and column when one is missing or of the wrong type.
    /// </summary>
    public int[] ResolveColumns(IReadOnlyList<ColumnSpec> columns)
    {
        var indices = new int[columns.Count];
        for (var i = 0; i < columns.Count; i++)
        {
            var spec = columns[i];
            var index = Schema.GetFieldIndex(spec.Name, StringComparer.Ordinal);
            if (index < 0)
            {
                throw new DataException(Location, $"missing column '{spec.Name}' (the file has: {string.Join(", ", Schema.FieldsList.Select(f => f.Name))})");
            }
            var stored = Schema.GetFieldByIndex(index).DataType;
            if (!DataSchema.IsCompatible(stored, spec.Type))
            {
                throw new DataException(Location, $"column '{spec.Name}' is {DataSchema.DescribeArrow(stored)}, but the workspace declares it {DataSchema.Describe(spec.Type)}");
            }
            indices[i] = ParquetColumnIndex(index, spec.Name);
        }
        return indices;
    }

    /// <summary>The indices of top-level Arrow fields by name, without type checks.</summary>
    public int[] ResolveColumns(IReadOnlyList<string> names)
    {
        var indices = new int[names.Count];
        for (var i = 0; i < names.Count; i++)
        {
            var index = Schema.GetFieldIndex(names[i], StringComparer.Ordinal);
            if (index < 0)
            {
                throw new DataException(Location, $"missing column '{names[i]}' (the file has: {string.Join(", ", Schema.FieldsList.Select(f => f.Name))})");
            }
            indices[i] = ParquetColumnIndex(index, names[i]);
        }
        return indices;
    }

    // Projection in the Arrow reader takes leaf (Parquet column) indices; flat schemas map one to one.
    private int ParquetColumnIndex(int fieldIndex, string name)
    {
        var field = _reader.SchemaManifest.SchemaFields[fieldIndex];
        if (field.ColumnIndex < 0)
        {
            throw new DataException(Location, $"column '{name}' is a nested type; only flat columns are supported");
        }
        return field.ColumnIndex;
    }

    /// <summary>Rows in one row group.</summary>
    public long RowGroupRows(int rowGroup)
    {
        using var metadata = _reader.ParquetReader.RowGroup(rowGroup);
        return metadata.MetaData.NumRows;
    }

    /// <summary>
    /// The null count the footer records for the chunk of <paramref name="column"/> (a leaf index, as
    /// <see cref="ResolveColumns(IReadOnlyList{ColumnSpec})"/> returns) in <paramref name="rowGroup"/>, or null when
    /// its statistics carry none (or the footer is encrypted). Not to be called while a read of this file is running.
    /// </summary>
    public long? FooterNullCount(int rowGroup, int column)
    {
        if (!_footerRead)
        {
            _footerNullCounts = ReadFooterNullCounts();
            _footerRead = true;
        }
        return _footerNullCounts is { } counts && rowGroup < counts.Length && column < counts[rowGroup].Length ? counts[rowGroup][column] : null;
    }

    private long?[][]? ReadFooterNullCounts()
    {
        try
        {
            long?[][]? counts;
            if (_stream is not null)
            {
                counts = ParquetFooter.NullCounts(_stream);
            }
            else
            {
                using var file = new FileStream(_localPath!, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.RandomAccess);
                counts = ParquetFooter.NullCounts(file);
            }
            // A footer that does not match the one the reader parsed (replaced under us) is not used.
            var metadata = _reader.ParquetReader.FileMetaData;
            if (counts is null || counts.Length != metadata.NumRowGroups || System.Array.Exists(counts, g => g.Length != metadata.NumColumns))
            {
                return null;
            }
            return counts;
        }
        catch (IOException e)
        {
            throw new DataException(Location, $"reading its footer failed ({FirstLine(e.Message)})", e);
        }
    }

    /// <summary>
    /// The least and greatest value of an INT64 timestamp chunk from its footer statistics, in microseconds since the
    /// epoch (converted from the column's unit as the Arrow reader's values are). False when the footer cannot say:
    /// no statistics or no min/max (a chunk of nulls only has none), an INT96 timestamp (Parquet leaves its order
    /// undefined, so its statistics cannot be trusted), or a column that is not a timestamp.
    /// </summary>
    public bool TryGetFooterTimestampRange(int rowGroup, int column, out long minMicros, out long maxMicros)
    {
        minMicros = maxMicros = 0;
        var descriptor = _reader.ParquetReader.FileMetaData.Schema.Column(column);
        if (descriptor.PhysicalType != PhysicalType.Int64)
        {
            return false;
        }
        TimeUnit unit;
        using (var logical = descriptor.LogicalType)
        {
            if (logical is not TimestampLogicalType timestamp)
            {
                return false;
            }
            unit = timestamp.TimeUnit;
        }
        using var group = _reader.ParquetReader.RowGroup(rowGroup);
        using var chunk = group.MetaData.GetColumnChunkMetaData(column);
        using var statistics = chunk.Statistics;
        if (statistics is not Statistics<long> { HasMinMax: true } typed)
        {
            return false;
        }
        switch (unit)
        {
            case TimeUnit.Millis:
                minMicros = typed.Min * 1_000;
                maxMicros = typed.Max * 1_000;
                return true;
            case TimeUnit.Micros:
                minMicros = typed.Min;
                maxMicros = typed.Max;
                return true;
            case TimeUnit.Nanos:
                // Truncated as the scan truncates each value: the conversion is monotonic, so min and max commute with it.
                minMicros = typed.Min / 1_000;
                maxMicros = typed.Max / 1_000;
                return true;
            default:
                return false;
        }
    }

    /// <summary>Streams one row group as record batches holding only <paramref name="columns"/> (all when null).</summary>
    public IEnumerable<RecordBatch> ReadRowGroup(int rowGroup, int[]? columns = null) => Read([rowGroup], columns);

    /// <summary>Streams the whole file, row group by row group.</summary>
    public IEnumerable<RecordBatch> ReadAll(int[]? columns = null)
    {
        for (var rowGroup = 0; rowGroup < RowGroupCount; rowGroup++)
        {
            foreach (var batch in Read([rowGroup], columns))
            {
                yield return batch;
            }
        }
    }

    private IEnumerable<RecordBatch> Read(int[] rowGroups, int[]? columns)
    {
        Apache.Arrow.Ipc.IArrowArrayStream stream;
        try
        {
            stream = _reader.GetRecordBatchReader(rowGroups, columns);
        }
        catch (ParquetException e)
        {
            throw new DataException(Location, StorageProblem(e.Message, Location) is { } problem
                ? $"reading row group {rowGroups[0]} failed: {problem}"
                : $"unreadable row group {rowGroups[0]} ({FirstLine(e.Message)})", e);
        }
        using (stream)
        {
            while (true)
            {
                RecordBatch? batch;
                try
                {
                    // ParquetSharp's stream completes synchronously; there is nothing to await.
                    batch = stream.ReadNextRecordBatchAsync().AsTask().GetAwaiter().GetResult();
                }
                // A page that fails to decode (a corrupt header, bad compressed bytes) comes through Arrow's C stream
                // interface as a plain Exception carrying the C++ status ("IOError: Couldn't deserialize thrift ...").
                catch (Exception e) when (e is ParquetException or IOException or InvalidOperationException || e.GetType() == typeof(Exception))
                {
                    throw new DataException(Location, StorageProblem(e.Message, Location) is { } problem
                        ? $"reading row group {rowGroups[0]} failed: {problem}"
                        : $"truncated or corrupt data in row group {rowGroups[0]} ({FirstLine(e.Message)})", e);
                }
                if (batch is null)
                {
                    yield break;
                }
                yield return batch;
            }
        }
    }

    public void Dispose()
    {
        _reader.Dispose();
        _stream?.Dispose();
    }
}
