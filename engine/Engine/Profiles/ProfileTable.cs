using System.Text;
using Apache.Arrow;
using Apache.Arrow.Types;
using Engine.Storage;

namespace Engine.Profiles;

/// <summary>
/// One column of a <see cref="ProfileTable"/>: a single contiguous Arrow array, one value per profile, in the
/// table's row order. Strings are always a <see cref="DictionaryArray"/> (int32 indices into one
/// <see cref="StringArray"/> for the whole column), so that a predicate over a string runs once per distinct value.
/// </summary>
/// <param name="Name">The column's name (an attribute, a trait or a score).</param>
/// <param name="Type">Its logical type.</param>
/// <param name="Values">
/// <see cref="Int64Array"/>, <see cref="DoubleArray"/>, <see cref="BooleanArray"/>, <see cref="TimestampArray"/>
/// (microseconds, UTC), <see cref="Date32Array"/> or <see cref="DictionaryArray"/> over strings.
/// </param>
public sealed record ProfileColumn(string Name, ColumnType Type, IArrowArray Values);

/// <summary>
/// The profile table in memory: one row per profile id (ascending), one contiguous Arrow array per column. It is
/// what segment conditions are evaluated over; on disk it is the run's <c>profiles/</c> dataset.
/// </summary>
public sealed class ProfileTable
{
    /// <summary>The key column of <c>profiles/</c>.</summary>
    public const string ProfileIdColumn = "profile_id";

    private readonly Dictionary<string, int> _byName;

    public ProfileTable(Int64Array profileIds, IReadOnlyList<ProfileColumn> columns)
    {
        ArgumentNullException.ThrowIfNull(profileIds);
        ArgumentNullException.ThrowIfNull(columns);
        if (profileIds.NullCount > 0)
        {
            throw new ArgumentException("profile ids cannot be null", nameof(profileIds));
        }
        var ids = profileIds.Values;
        for (var i = 1; i < ids.Length; i++)
        {
            if (ids[i] <= ids[i - 1])
            {
                throw new ArgumentException($"profile ids must be ascending and distinct (row {i}: {ids[i]} after {ids[i - 1]})", nameof(profileIds));
            }
        }
        _byName = new Dictionary<string, int>(columns.Count, StringComparer.Ordinal);
        for (var c = 0; c < columns.Count; c++)
        {
            var column = columns[c];
            if (column.Name == ProfileIdColumn || !_byName.TryAdd(column.Name, c))
            {
                throw new ArgumentException($"column '{column.Name}' appears twice in the profile table", nameof(columns));
            }
            if (column.Values.Length != profileIds.Length)
            {
                throw new ArgumentException($"column '{column.Name}' has {column.Values.Length} values for {profileIds.Length} profiles", nameof(columns));
            }
            if (!Fits(column.Type, column.Values))
            {
                throw new ArgumentException($"column '{column.Name}' is declared {DataSchema.Describe(column.Type)} but holds {column.Values.Data.DataType.Name}", nameof(columns));
            }
        }
        ProfileIds = profileIds;
        Columns = columns;
    }

    /// <summary>Profiles (rows).</summary>
    public int Count => ProfileIds.Length;

    /// <summary>The profile id of each row, ascending.</summary>
    public Int64Array ProfileIds { get; }

    /// <summary>Every column but the profile id, in order.</summary>
    public IReadOnlyList<ProfileColumn> Columns { get; }

    public ProfileColumn? Find(string name) => _byName.TryGetValue(name, out var i) ? Columns[i] : null;

    /// <summary>The row of <paramref name="profileId"/>, or a negative number when the table has no such profile.</summary>
    public int RowOf(long profileId) => ProfileIds.Values.BinarySearch(profileId);

    private static bool Fits(ColumnType type, IArrowArray values) => (type, values) switch
    {
        (ColumnType.Int64, Int64Array) => true,
        (ColumnType.Double, DoubleArray) => true,
        (ColumnType.Boolean, BooleanArray) => true,
        (ColumnType.Timestamp, TimestampArray { Data.DataType: TimestampType { Unit: TimeUnit.Microsecond } }) => true,
        (ColumnType.Date, Date32Array) => true,
        (ColumnType.String, DictionaryArray { Indices: Int32Array, Dictionary: StringArray }) => true,
        _ => false,
    };

    /// <summary>
    /// A table with <paramref name="columns"/> and no rows: what a workspace's <c>profiles.yaml</c> declares, so
    /// segment conditions can be checked against it before a run reads any data.
    /// </summary>
    public static ProfileTable Empty(IEnumerable<ColumnSpec> columns)
    {
        ArgumentNullException.ThrowIfNull(columns);
        var list = new List<ProfileColumn>();
        foreach (var column in columns)
        {
            list.Add(new ProfileColumn(column.Name, column.Type, Concatenate(column.Type, [], 0)));
        }
        return new ProfileTable(new Int64Array.Builder().Build(), list);
    }

    /// <summary>
    /// Reads a <c>profiles/</c> dataset: <c>profile_id</c> (int64, ascending across the files in key order) and any
    /// number of int64, double, boolean, timestamp, date and string columns.
    /// </summary>
    public static async Task<ProfileTable> ReadAsync(StorageLocation location, CancellationToken cancellationToken = default)
    {
        var dataset = await Dataset.OpenAsync(location, DataFormat.Parquet, cancellationToken);
        var chunks = new List<RecordBatch>();
        Schema? schema = null;
        try
        {
            foreach (var file in dataset.Files)
            {
                cancellationToken.ThrowIfCancellationRequested();
                using var parquet = ParquetDataFile.Open(location.Store, file.Key, ParquetReadOptions.Default);
                schema ??= parquet.Schema;
                foreach (var batch in parquet.ReadAll())
                {
                    chunks.Add(batch);
                }
            }
            if (schema is null)
            {
                throw new DataException(location.ToString(), "no profile files");
            }
            return FromBatches(schema, chunks, location.ToString());
        }
        finally
        {
            foreach (var chunk in chunks)
            {
                chunk.Dispose();
            }
        }
    }

    /// <summary>Builds a table from record batches of one schema (the batches stay the caller's).</summary>
    public static ProfileTable FromBatches(Schema schema, IReadOnlyList<RecordBatch> batches, string location)
    {
        ArgumentNullException.ThrowIfNull(schema);
        ArgumentNullException.ThrowIfNull(batches);
        var idIndex = schema.GetFieldIndex(ProfileIdColumn, StringComparer.Ordinal);
        if (idIndex < 0)
        {
            throw new DataException(location, $"missing column '{ProfileIdColumn}'");
        }
        var rows = 0L;
        foreach (var batch in batches)
        {
            rows += batch.Length;
        }
        if (rows > int.MaxValue)
        {
            throw new DataException(location, $"{rows:N0} profiles: more than one table holds");
        }
        var ids = new Int64Array.Builder().Reserve((int)rows);
        foreach (var batch in batches)
        {
            if (batch.Column(idIndex) is not Int64Array chunk || chunk.NullCount > 0)
            {
                throw new DataException(location, $"column '{ProfileIdColumn}' must be a non-null int64");
            }
            ids.Append(chunk.Values);
        }
        var columns = new List<ProfileColumn>();
        for (var f = 0; f < schema.FieldsList.Count; f++)
        {
            if (f == idIndex)
            {
                continue;
            }
            var field = schema.FieldsList[f];
            var type = DataSchema.FromArrow(field.DataType)
                ?? throw new DataException(location, $"column '{field.Name}' is {DataSchema.DescribeArrow(field.DataType)}, which a profile table cannot hold");
            columns.Add(new ProfileColumn(field.Name, type, Concatenate(type, batches.Select(b => b.Column(f)).ToList(), (int)rows)));
        }
        var idArray = ids.Build();
        try
        {
            return new ProfileTable(idArray, columns);
        }
        catch (ArgumentException e)
        {
            throw new DataException(location, e.Message, e);
        }
    }

    // Always copies into managed buffers: the chunks may be views of native memory freed with their batches.
    private static IArrowArray Concatenate(ColumnType type, List<IArrowArray> chunks, int rows) => type switch
    {
        ColumnType.String => StringColumnBuilder.Build(chunks, rows),
        ColumnType.Int64 => Fixed<long>(chunks, rows, (values, validity, nulls) => new Int64Array(values, validity, rows, nulls, 0)),
        ColumnType.Double => Fixed<double>(chunks, rows, (values, validity, nulls) => new DoubleArray(values, validity, rows, nulls, 0)),
        ColumnType.Timestamp => Fixed<long>(chunks, rows, (values, validity, nulls) =>
            new TimestampArray(new TimestampType(TimeUnit.Microsecond, "UTC"), values, validity, rows, nulls, 0)),
        ColumnType.Date => Fixed<int>(chunks, rows, (values, validity, nulls) => new Date32Array(values, validity, rows, nulls, 0)),
        ColumnType.Boolean => Booleans(chunks, rows),
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };

    private static IArrowArray Fixed<T>(List<IArrowArray> chunks, int rows, Func<ArrowBuffer, ArrowBuffer, int, IArrowArray> make)
        where T : unmanaged
    {
        var values = new T[rows];
        var validity = new byte[(rows + 7) / 8];
        var nulls = 0;
        var row = 0;
        foreach (var chunk in chunks)
        {
            var source = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, T>(chunk.Data.Buffers[1].Span).Slice(chunk.Offset, chunk.Length);
            source.CopyTo(values.AsSpan(row));
            for (var i = 0; i < chunk.Length; i++, row++)
            {
                if (chunk.IsValid(i))
                {
                    validity[row >> 3] |= (byte)(1 << (row & 7));
                }
                else
                {
                    nulls++;
                }
            }
        }
        return make(ManagedArrowBuffer.Wrap(values), new ArrowBuffer(validity), nulls);
    }

    private static BooleanArray Booleans(List<IArrowArray> chunks, int rows)
    {
        var builder = new BooleanArray.Builder().Reserve(rows);
        foreach (var chunk in chunks)
        {
            var booleans = (BooleanArray)chunk;
            for (var i = 0; i < booleans.Length; i++)
            {
                if (booleans.GetValue(i) is { } value)
                {
                    builder.Append(value);
                }
                else
                {
                    builder.AppendNull();
                }
            }
        }
        return builder.Build();
    }
}

/// <summary>Builds one dictionary-encoded string column from chunks of plain or dictionary-encoded strings.</summary>
internal static class StringColumnBuilder
{
    public static DictionaryArray Build(IReadOnlyList<IArrowArray> chunks, int rows)
    {
        var codes = new int[rows];
        var validity = new byte[(rows + 7) / 8];
        var nulls = 0;
        var lookup = new Dictionary<string, int>(StringComparer.Ordinal);
        var alternate = lookup.GetAlternateLookup<ReadOnlySpan<char>>();
        var entries = new StringArray.Builder();
        var chars = new char[256];
        int Code(ReadOnlySpan<byte> utf8)
        {
            var need = Encoding.UTF8.GetMaxCharCount(utf8.Length);
            if (chars.Length < need)
            {
                chars = new char[need];
            }
            var text = chars.AsSpan(0, Encoding.UTF8.GetChars(utf8, chars));
            if (alternate.TryGetValue(text, out var code))
            {
                return code;
            }
            code = lookup.Count;
            lookup.Add(text.ToString(), code);
            entries.Append(utf8);
            return code;
        }

        var row = 0;
        foreach (var chunk in chunks)
        {
            switch (chunk)
            {
                case StringArray strings:
                    for (var i = 0; i < strings.Length; i++, row++)
                    {
                        if (strings.IsNull(i))
                        {
                            nulls++;
                            continue;
                        }
                        codes[row] = Code(strings.GetBytes(i));
                        validity[row >> 3] |= (byte)(1 << (row & 7));
                    }
                    break;
                case DictionaryArray { Dictionary: StringArray dictionary } encoded:
                    // Each chunk has its own dictionary: map its entries once, then its indices.
                    var map = new int[dictionary.Length];
                    for (var e = 0; e < map.Length; e++)
                    {
                        map[e] = dictionary.IsNull(e) ? -1 : Code(dictionary.GetBytes(e));
                    }
                    for (var i = 0; i < encoded.Length; i++, row++)
                    {
                        var index = encoded.IsNull(i) ? -1 : IndexAt(encoded.Indices, i);
                        if (index < 0 || map[index] < 0)
                        {
                            nulls++;
                            continue;
                        }
                        codes[row] = map[index];
                        validity[row >> 3] |= (byte)(1 << (row & 7));
                    }
                    break;
                default:
                    throw new ArgumentException($"a string column cannot be built from {chunk.Data.DataType.Name}", nameof(chunks));
            }
        }
        var indices = new Int32Array(ManagedArrowBuffer.Wrap(codes),
            new ArrowBuffer(validity), rows, nulls, 0);
        var built = entries.Build();
        return new DictionaryArray(new DictionaryType(Int32Type.Default, StringType.Default, false), indices, built);
    }

    private static int IndexAt(IArrowArray indices, int i) => indices switch
    {
        Int32Array a => a.Values[i],
        Int16Array a => a.Values[i],
        Int8Array a => a.Values[i],
        UInt8Array a => a.Values[i],
        UInt16Array a => a.Values[i],
        UInt32Array a => checked((int)a.Values[i]),
        Int64Array a => checked((int)a.Values[i]),
        _ => throw new ArgumentException($"dictionary index type {indices.Data.DataType.Name} is not supported"),
    };
}
