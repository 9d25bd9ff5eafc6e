using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Text;
using System.Text.Unicode;
using Apache.Arrow;
using Sylvan.Data.Csv;

namespace Engine.Storage;

/// <summary>How CSV files are read.</summary>
/// <remarks>
/// The null rule, like DuckDB's <c>read_csv</c>: an empty field is null in every column, quoted (<c>""</c>) or not.
/// In typed columns (everything but string) a blank field (only whitespace) is null too, as is a field equal to one of
/// <see cref="NullValues"/> after trimming; other values may have surrounding whitespace. In string columns the text
/// is kept exactly as written (whitespace included) unless it equals one of <see cref="NullValues"/>; take "" out of
/// <see cref="NullValues"/> to read empty string fields as empty strings instead of nulls.
/// </remarks>
public sealed record CsvReadOptions
{
    // Declared before Default: static initialisers run in text order.
    internal static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>The field separator; null detects it from the first line (the most frequent of ',', ';', tab and '|').</summary>
    public char? Delimiter { get; init; } = ',';

    /// <summary>
    /// Whether the first line names the columns (columns are then matched by name). Without a header the file's fields
    /// are the declared columns, in order.
    /// </summary>
    public bool HasHeader { get; init; } = true;

    /// <summary>
    /// For a file without a header: the names of its fields, in order (a source's declared columns). With them, a read
    /// of only some of the columns still finds each at its own position. Null: the columns the file is opened with are
    /// its fields, in order. Must be null when the file has a header.
    /// </summary>
    public IReadOnlyList<string>? ColumnNames { get; init; }

    /// <summary>
    /// Lines skipped at the start of the file, before the header (or before the first data line when there is none):
    /// for files that open with a title, notes or a header that does not fit the data. These are physical lines (LF,
    /// CRLF or a lone CR end one; quotes are not looked at). Errors still name the file's own line numbers.
    /// </summary>
    public int SkipLines { get; init; }

    /// <summary>The quote character; inside quotes it is escaped by doubling it (RFC 4180), and newlines are data.</summary>
    public char Quote { get; init; } = '"';

    /// <summary>Field texts read as null (see the remarks on <see cref="CsvReadOptions"/>); by default only "".</summary>
    public IReadOnlyList<string> NullValues { get; init; } = [""];

    /// <summary>Rows per record batch.</summary>
    public int BatchSize { get; init; } = 64 * 1024;

    /// <summary>
    /// Timestamp formats (.NET custom format strings, invariant culture) tried after ISO 8601, which is always accepted:
    /// <c>yyyy-MM-dd</c>, then optionally 'T' or a space and <c>HH:mm[:ss[.fffffffff]]</c>, then optionally <c>Z</c> or
    /// an offset (<c>±HH:mm</c>, <c>±HHmm</c>, <c>±HH</c>). A value without an offset is taken as UTC.
    /// </summary>
    public IReadOnlyList<string> TimestampFormats { get; init; } = [];

    /// <summary>Date formats (.NET custom format strings, invariant culture) tried after ISO 8601 <c>yyyy-MM-dd</c>.</summary>
    public IReadOnlyList<string> DateFormats { get; init; } = [];

    /// <summary>
    /// The text encoding: UTF-8 by default, strict (an invalid byte is an error naming its line, not a silent
    /// replacement character). A byte order mark is skipped (and a UTF-16 one switches to UTF-16).
    /// </summary>
    public Encoding Encoding { get; init; } = StrictUtf8;

    /// <summary>
    /// The longest record accepted, in characters. A longer one is reported as an error: it is almost always a quote
    /// that is never closed, which would otherwise swallow the rest of the file.
    /// </summary>
    public int MaxRecordLength { get; init; } = 16 * 1024 * 1024;

    public static CsvReadOptions Default { get; } = new();
}

/// <summary>
/// One CSV file opened for reading with Sylvan's CSV parser, typed by the workspace's declared columns and streamed as
/// Arrow record batches in the same shape the Parquet reader produces (<see cref="DataSchema.ToArrow()"/>).
/// </summary>
/// <remarks>
/// <para>The header is read and checked on open: each declared column is found by name (exactly, else ignoring case
/// and surrounding spaces); a missing or ambiguous one is an error, extra columns are ignored.</para>
/// <para>The file is read once, front to back, through <see cref="IObjectStore.OpenRead"/>, so it works on any store.
/// Bad input stops the read with one <see cref="DataException"/> whose location is <c>file:line</c>, the 1-based
/// physical line (quoted fields spanning lines are counted), and whose text names the column and shows the value.
/// Batches yielded before the error are from the same broken file and must be discarded with it: a consumer stages
/// what it writes and commits only when the whole file was read.</para>
/// <para>Lines that are completely empty are skipped (in a one-column file they are null values instead).</para>
/// </remarks>
public sealed class CsvDataFile : IDisposable
{
    // Sylvan's record buffer starts here and grows up to MaxRecordLength; the byte reads below it are large so that a
    // remote store answers each with one ranged GET.
    private const int ParserBufferChars = 64 * 1024;
    private const int StreamBufferBytes = 1024 * 1024;
    private const int ShownValueLength = 40;
    private const int MaxBatchSize = 16 * 1024 * 1024;
    private const int MinRecordLength = 256;

    private readonly IObjectStore _store;
    private readonly string _key;
    private readonly CsvReadOptions _options;
    private readonly CsvDataReader _reader;
    private readonly int[] _ordinals;
    private readonly int _fieldCount;
    private long _linesConsumed;
    private bool _started;
    private bool _finished;

    private CsvDataFile(IObjectStore store, string key, string location, DataSchema schema, CsvReadOptions options, CsvDataReader reader, long headerLines)
    {
        _store = store;
        _key = key;
        _options = options;
        _reader = reader;
        Location = location;
        DeclaredSchema = schema;
        Schema = schema.ToArrow();
        _linesConsumed = headerLines;
        _fieldCount = reader.FieldCount;
        var header = new string[_fieldCount];
        for (var i = 0; i < header.Length; i++)
        {
            header[i] = options.HasHeader ? reader.GetName(i)
                : options.ColumnNames is { } names && i < names.Count ? names[i]
                : "";
        }
        Header = header;
        _ordinals = options.HasHeader ? MapHeader(schema, header) : MapPositions(schema);
    }

    /// <summary>The file as the user would write it.</summary>
    public string Location { get; }

    /// <summary>The columns declared for the file.</summary>
    public DataSchema DeclaredSchema { get; }

    /// <summary>The Arrow schema of the batches <see cref="ReadAll"/> yields without a projection.</summary>
    public Schema Schema { get; }

    /// <summary>
    /// The column names in the file's header; without one, <see cref="CsvReadOptions.ColumnNames"/> (empty names when
    /// those are not given either).
    /// </summary>
    public IReadOnlyList<string> Header { get; }

    /// <summary>Data rows read so far (a CSV file's row count is known only once it has been read).</summary>
    public long RowsRead { get; private set; }

    /// <summary>
    /// Opens <paramref name="key"/> in <paramref name="store"/> and checks its header against <paramref name="schema"/>.
    /// Throws <see cref="DataException"/> naming the file when it is missing, empty, or lacks a declared column.
    /// </summary>
    public static CsvDataFile Open(IObjectStore store, string key, DataSchema schema, CsvReadOptions? options = null)
    {
        options ??= CsvReadOptions.Default;
        if (options.BatchSize is <= 0 or > MaxBatchSize)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.BatchSize, $"the batch size must be between 1 and {MaxBatchSize} rows");
        }
        if (options.MaxRecordLength < MinRecordLength)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxRecordLength, $"the longest record allowed must be at least {MinRecordLength} characters");
        }
        if (options.SkipLines < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.SkipLines, "the lines to skip cannot be negative");
        }
        if (options.HasHeader && options.ColumnNames is not null)
        {
            throw new ArgumentException("column names are for files without a header (a header names the columns itself)", nameof(options));
        }
        var location = store.Describe(key);
        var stream = store.OpenRead(key);
        CsvDataReader? reader = null;
        var opened = false;
        try
        {
            var text = new StreamReader(stream, options.Encoding, detectEncodingFromByteOrderMarks: true, StreamBufferBytes, leaveOpen: false);
            var skip = options.SkipLines;
            if (skip > 0)
            {
                int skipped;
                try
                {
                    skipped = SkipLines(text, skip);
                }
                catch (DecoderFallbackException e)
                {
                    throw InvalidText(store, key, location, options, 1, e);
                }
                if (skipped < skip)
                {
                    throw new DataException(location, $"the file has {skipped} line{(skipped == 1 ? "" : "s")}, fewer than the {skip} to skip");
                }
            }
            // The first line the parser sees, as the file numbers it.
            var first = skip + 1L;
            var csvOptions = new CsvDataReaderOptions
            {
                HasHeaders = options.HasHeader,
                Quote = options.Quote,
                Escape = options.Quote,
                // Off: a '#' at the start of a line is data, not a comment to drop silently.
                Comment = '\0',
                CsvStyle = CsvStyle.Standard,
                ResultSetMode = ResultSetMode.SingleResult,
                BufferSize = Math.Min(ParserBufferChars, options.MaxRecordLength),
                MaxBufferSize = options.MaxRecordLength,
                OwnsReader = true,
            };
            if (options.Delimiter is { } delimiter)
            {
                csvOptions.Delimiter = delimiter;
            }
            try
            {
                reader = CsvDataReader.Create(text, csvOptions);
            }
            catch (CsvConfigurationException e)
            {
                throw new EngineException($"{location}: the CSV options do not fit together ({e.Message})", e);
            }
            catch (CsvMissingHeadersException e)
            {
                throw new DataException(location, skip == 0
                    ? "empty file: expected a header line naming the columns"
                    : $"nothing after the {Lines(skip)} skipped: expected a header line naming the columns", e);
            }
            catch (CsvFormatException e)
            {
                throw new DataException($"{location}:{first}", DescribeFormatError(e, options, header: null), e);
            }
            catch (DecoderFallbackException e)
            {
                throw InvalidText(store, key, location, options, first, e);
            }
            if (reader.FieldCount == 0)
            {
                throw new DataException(location, skip == 0 ? "empty file: no rows" : $"no rows after the {Lines(skip)} skipped");
            }
            long headerLines = skip;
            if (options.HasHeader)
            {
                if (reader.FieldCount == 1 && reader.GetName(0).Length == 0)
                {
                    throw new DataException($"{location}:{first}", skip == 0
                        ? "the first line is empty: expected a header line naming the columns"
                        : $"the line after the {Lines(skip)} skipped is empty: expected a header line naming the columns");
                }
                headerLines++;
                for (var i = 0; i < reader.FieldCount; i++)
                {
                    headerLines += CountLineBreaks(reader.GetName(i));
                }
            }
            var file = new CsvDataFile(store, key, location, schema, options, reader, headerLines);
            opened = true;
            return file;
        }
        finally
        {
            if (!opened)
            {
                // The reader owns the stream once it exists; disposing the stream again is harmless.
                reader?.Dispose();
                stream.Dispose();
            }
        }
    }

    /// <summary>
    /// Reads past <paramref name="count"/> lines and returns how many there were (fewer at the end of the file).
    /// ReadLine, unlike Peek, waits for more bytes after a CR at a buffer's end, so a CRLF split across two network
    /// reads still counts as one line break.
    /// </summary>
    private static int SkipLines(StreamReader text, int count)
    {
        var skipped = 0;
        while (skipped < count && text.ReadLine() is not null)
        {
            skipped++;
        }
        return skipped;
    }

    private static string Lines(int count) => count == 1 ? "1 line" : $"{count} lines";

    private int[] MapHeader(DataSchema schema, string[] header)
    {
        var ordinals = new int[schema.Columns.Count];
        for (var c = 0; c < ordinals.Length; c++)
        {
            var name = schema.Columns[c].Name;
            var found = -1;
            for (var i = 0; i < header.Length; i++)
            {
                if (string.Equals(header[i], name, StringComparison.Ordinal))
                {
                    if (found >= 0)
                    {
                        throw new DataException(Location, $"column '{name}' appears more than once in the header (fields {found + 1} and {i + 1})");
                    }
                    found = i;
                }
            }
            if (found < 0)
            {
                for (var i = 0; i < header.Length; i++)
                {
                    if (header[i].AsSpan().Trim().Equals(name.AsSpan().Trim(), StringComparison.OrdinalIgnoreCase))
                    {
                        if (found >= 0)
                        {
                            throw new DataException(Location, $"column '{name}' is ambiguous: the header has '{header[found]}' and '{header[i]}' (fields {found + 1} and {i + 1}), which differ from it only in case or spaces");
                        }
                        found = i;
                    }
                }
            }
            if (found < 0)
            {
                throw new DataException(Location, $"missing column '{name}' (the header has: {DescribeHeader(header)})");
            }
            ordinals[c] = found;
        }
        return ordinals;
    }

    private int[] MapPositions(DataSchema schema)
    {
        var names = _options.ColumnNames;
        var expected = names?.Count ?? schema.Columns.Count;
        if (_fieldCount != expected)
        {
            throw new DataException($"{Location}:{_options.SkipLines + 1}", $"expected {expected} fields (the declared columns, in order: the file has no header), found {_fieldCount}");
        }
        var ordinals = new int[schema.Columns.Count];
        for (var c = 0; c < ordinals.Length; c++)
        {
            ordinals[c] = names is null ? c : IndexOfName(names, schema.Columns[c].Name);
        }
        return ordinals;
    }

    private int IndexOfName(IReadOnlyList<string> names, string name)
    {
        for (var i = 0; i < names.Count; i++)
        {
            if (string.Equals(names[i], name, StringComparison.Ordinal))
            {
                return i;
            }
        }
        throw new EngineException($"{Location}: column '{name}' is not among the file's column names ({string.Join(", ", names)})");
    }

    private static string DescribeHeader(string[] header)
    {
        const int MaxNames = 50;
        var shown = header.Length <= MaxNames ? header : header[..MaxNames];
        var names = string.Join(", ", shown);
        return header.Length <= MaxNames ? names : $"{names}, … {header.Length - MaxNames} more";
    }

    /// <summary>
    /// Streams the file as record batches of <see cref="CsvReadOptions.BatchSize"/> rows holding
    /// <paramref name="columns"/> (declared column names, in the order wanted), or every declared column when null.
    /// A file is read once: a second call throws <see cref="InvalidOperationException"/>.
    /// </summary>
    public IEnumerable<RecordBatch> ReadAll(IReadOnlyList<string>? columns = null)
    {
        Schema schema;
        ColumnSpec[] specs;
        int[] ordinals;
        if (columns is null)
        {
            schema = Schema;
            specs = [.. DeclaredSchema.Columns];
            ordinals = _ordinals;
        }
        else
        {
            specs = new ColumnSpec[columns.Count];
            ordinals = new int[columns.Count];
            for (var i = 0; i < columns.Count; i++)
            {
                var index = IndexOfDeclared(columns[i]);
                if (index < 0)
                {
                    throw new EngineException($"{Location}: column '{columns[i]}' is not declared for this file (declared: {string.Join(", ", DeclaredSchema.Columns.Select(c => c.Name))})");
                }
                specs[i] = DeclaredSchema.Columns[index];
                ordinals[i] = _ordinals[index];
            }
            schema = new DataSchema(specs).ToArrow();
        }
        if (_started)
        {
            throw new InvalidOperationException($"{Location} has been read already; a CSV file is read once (open it again)");
        }
        _started = true;
        var batchSize = _options.BatchSize;
        var nulls = new CsvNullRule(_options.NullValues);
        var builders = new CsvColumnBuilder[specs.Length];
        for (var i = 0; i < specs.Length; i++)
        {
            builders[i] = CsvColumnBuilder.Create(specs[i], schema.GetFieldByIndex(i).DataType, ordinals[i], batchSize, nulls, _options);
        }
        return Batches(schema, builders, batchSize);
    }

    private int IndexOfDeclared(string name)
    {
        var columns = DeclaredSchema.Columns;
        for (var i = 0; i < columns.Count; i++)
        {
            if (string.Equals(columns[i].Name, name, StringComparison.Ordinal))
            {
                return i;
            }
        }
        return -1;
    }

    private IEnumerable<RecordBatch> Batches(Schema schema, CsvColumnBuilder[] builders, int batchSize)
    {
        var copier = new NativeBufferCopier();
        while (!_finished)
        {
            var rows = Fill(builders, batchSize);
            if (rows == 0)
            {
                yield break;
            }
            var arrays = new IArrowArray[builders.Length];
            for (var i = 0; i < builders.Length; i++)
            {
                arrays[i] = builders[i].Build(copier);
            }
            yield return new RecordBatch(schema, arrays, rows);
        }
    }

    // The hot loop: one record at a time, each projected field handed to its column's kernel as a span over Sylvan's
    // buffer. Throws live in the cold helpers below.
    private int Fill(CsvColumnBuilder[] builders, int batchSize)
    {
        var reader = _reader;
        var fieldCount = _fieldCount;
        var rows = 0;
        while (rows < batchSize)
        {
            if (!ReadRecord())
            {
                _finished = true;
                break;
            }
            var line = _linesConsumed + 1;
            _linesConsumed += CountLineBreaks(reader.GetRawRecordSpan());
            if (reader.RowFieldCount != fieldCount)
            {
                if (reader.RowFieldCount == 1 && reader.GetFieldSpan(0).IsEmpty)
                {
                    continue; // an empty line
                }
                ThrowFieldCount(line, reader.RowFieldCount);
            }
            for (var c = 0; c < builders.Length; c++)
            {
                var builder = builders[c];
                var result = builder.Append(reader.GetFieldSpan(builder.FileOrdinal));
                if (result != CsvAppendResult.Ok)
                {
                    ThrowBadValue(line, builder, result);
                }
            }
            rows++;
        }
        RowsRead += rows;
        return rows;
    }

    private bool ReadRecord()
    {
        try
        {
            return _reader.Read();
        }
        catch (CsvFormatException e)
        {
            throw new DataException($"{Location}:{_linesConsumed + 1}", DescribeFormatError(e, _options, Header), e);
        }
        catch (DecoderFallbackException e)
        {
            throw InvalidText(_store, _key, Location, _options, _linesConsumed + 1, e);
        }
    }

    [DoesNotReturn]
    private void ThrowFieldCount(long line, int found)
    {
        var expected = _options.HasHeader ? $"{_fieldCount} fields, as in the header" : $"{_fieldCount} fields, as in the first line";
        throw new DataException($"{Location}:{line}", $"expected {expected}, found {found}");
    }

    [DoesNotReturn]
    private void ThrowBadValue(long recordLine, CsvColumnBuilder builder, CsvAppendResult result)
    {
        // The field's own line: the record's first line plus the line breaks inside the fields before it (quoted
        // fields keep their line breaks verbatim).
        var line = recordLine;
        for (var i = 0; i < builder.FileOrdinal; i++)
        {
            line += CountLineBreaks(_reader.GetFieldSpan(i));
        }
        var field = _reader.GetFieldSpan(builder.FileOrdinal);
        var name = builder.Spec.Name;
        var problem = result == CsvAppendResult.MissingRequired
            ? field.IsEmpty
                ? $"column '{name}' is required, but the field is empty"
                : $"column '{name}' is required, but the value is null ('{Show(field)}')"
            : $"column '{name}': '{Show(field)}' is not a valid {DataSchema.Describe(builder.Spec.Type)}";
        throw new DataException($"{Location}:{line}", problem);
    }

    /// <summary>
    /// A field value as an error message shows it: control characters escaped, at most 40 characters, and the local
    /// part of anything that looks like an email address masked (messages must not carry personal identifiers).
    /// </summary>
    internal static string Show(ReadOnlySpan<char> value)
    {
        var builder = new StringBuilder(Math.Min(value.Length, ShownValueLength) + 8);
        var at = value.IndexOf('@');
        for (var i = 0; i < value.Length && builder.Length < ShownValueLength; i++)
        {
            var c = value[i];
            if (at > 0 && i > 0 && i < at)
            {
                builder.Append('*');
            }
            else if (c == '\n')
            {
                builder.Append("\\n");
            }
            else if (c == '\r')
            {
                builder.Append("\\r");
            }
            else if (c == '\t')
            {
                builder.Append("\\t");
            }
            else if (char.IsControl(c))
            {
                builder.Append($"\\u{(int)c:x4}");
            }
            else
            {
                builder.Append(c);
            }
        }
        if (builder.Length >= ShownValueLength && value.Length > ShownValueLength)
        {
            builder.Length = ShownValueLength;
            builder.Append('…');
        }
        return builder.ToString();
    }

    private static string DescribeFormatError(CsvFormatException e, CsvReadOptions options, IReadOnlyList<string>? header)
    {
        if (e is CsvRecordTooLargeException)
        {
            return $"a record starting on this line is longer than {options.MaxRecordLength} characters: most likely a quote ({options.Quote}) that is never closed";
        }
        var field = e.FieldOrdinal + 1;
        var column = header is not null && e.FieldOrdinal >= 0 && e.FieldOrdinal < header.Count && header[e.FieldOrdinal].Length > 0
            ? $" ('{header[e.FieldOrdinal]}')"
            : "";
        var detail = e.Message.TrimEnd('.');
        if (detail.Length > 0)
        {
            detail = char.ToLowerInvariant(detail[0]) + detail[1..];
        }
        return $"malformed CSV in field {field}{column} of the record starting on this line: {detail}";
    }

    /// <summary>
    /// Line breaks in a span: LF, CRLF, and a lone CR each end one line. Vectorised counts; CR only costs extra when present.
    /// </summary>
    internal static int CountLineBreaks(ReadOnlySpan<char> text)
    {
        var lf = text.Count('\n');
        if (!text.Contains('\r'))
        {
            return lf;
        }
        return lf + text.Count('\r') - text.Count("\r\n");
    }

    /// <summary>
    /// The decoder failed somewhere after <paramref name="fromLine"/> (it decodes ahead of the parser): read the file
    /// again to name the exact line of the first invalid byte. A cold path, taken once, on a file that is rejected.
    /// </summary>
    private static DataException InvalidText(IObjectStore store, string key, string location, CsvReadOptions options, long fromLine, DecoderFallbackException e)
    {
        if (options.Encoding.CodePage != Encoding.UTF8.CodePage)
        {
            return new DataException($"{location}:{fromLine}", $"text at or after this line is not valid {options.Encoding.WebName}", e);
        }
        try
        {
            using var stream = store.OpenRead(key);
            var (line, offset) = FindInvalidUtf8(stream);
            if (line > 0)
            {
                return new DataException($"{location}:{line}", $"not valid UTF-8 text (byte offset {offset}); set the source's encoding if the file is in another one", e);
            }
        }
        catch (Exception again) when (again is IOException or DataException)
        {
            // Fall through to the approximate location.
        }
        return new DataException($"{location}:{fromLine}", "text at or after this line is not valid UTF-8; set the source's encoding if the file is in another one", e);
    }

    /// <summary>The 1-based line and byte offset of the first invalid UTF-8 sequence, or (0, -1) when there is none.</summary>
    internal static (long Line, long Offset) FindInvalidUtf8(Stream stream)
    {
        var bytes = ArrayPool<byte>.Shared.Rent(StreamBufferBytes);
        var chars = ArrayPool<char>.Shared.Rent(StreamBufferBytes);
        try
        {
            long line = 1;
            long offset = 0;
            var pending = 0; // bytes of an incomplete sequence carried from the previous chunk
            var previousWasCr = false;
            while (true)
            {
                var read = stream.Read(bytes, pending, StreamBufferBytes - pending);
                var available = pending + read;
                var final = read == 0;
                var status = Utf8.ToUtf16(bytes.AsSpan(0, available), chars, out var consumed, out _, replaceInvalidSequences: false, isFinalBlock: final);
                for (var i = 0; i < consumed; i++)
                {
                    var b = bytes[i];
                    if (b == '\n')
                    {
                        if (!previousWasCr)
                        {
                            line++;
                        }
                    }
                    else if (b == '\r')
                    {
                        line++;
                    }
                    previousWasCr = b == '\r';
                }
                if (status == OperationStatus.InvalidData)
                {
                    return (line, offset + consumed);
                }
                if (final)
                {
                    return (0, -1);
                }
                offset += consumed;
                pending = available - consumed;
                bytes.AsSpan(consumed, pending).CopyTo(bytes);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(bytes);
            ArrayPool<char>.Shared.Return(chars);
        }
    }

    public void Dispose() => _reader.Dispose();
}
