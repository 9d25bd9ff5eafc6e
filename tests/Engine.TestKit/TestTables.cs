using Apache.Arrow;
using Apache.Arrow.Types;
using Engine.Storage;
using ParquetSharp.Arrow;

namespace Engine.TestKit;

/// <summary>Record batches for storage tests, and helpers to write and read them back as plain rows for comparison.</summary>
public static class TestTables
{
    /// <summary>The UTC microsecond timestamp type datasets use.</summary>
    public static readonly TimestampType UtcMicros = new(TimeUnit.Microsecond, "UTC");

    /// <summary>The columns of <see cref="Mixed"/>, as a workspace would declare them.</summary>
    public static readonly ColumnSpec[] MixedColumns =
    [
        new("id", ColumnType.Int64, Required: true),
        new("name", ColumnType.String),
        new("amount", ColumnType.Double),
        new("active", ColumnType.Boolean),
        new("ts", ColumnType.Timestamp),
        new("day", ColumnType.Date),
    ];

    /// <summary>The Arrow schema of <see cref="Mixed"/>.</summary>
    public static Schema MixedSchema { get; } = new DataSchema(MixedColumns).ToArrow();

    private static readonly DateTimeOffset Epoch = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>
    /// <paramref name="rows"/> rows of every column type with nulls in each nullable column at different strides.
    /// Row i has id <paramref name="firstId"/> + i; everything else is derived from the id.
    /// </summary>
    public static RecordBatch Mixed(int rows, long firstId = 0)
    {
        var ids = new Int64Array.Builder();
        var names = new StringArray.Builder();
        var amounts = new DoubleArray.Builder();
        var active = new BooleanArray.Builder();
        var ts = new TimestampArray.Builder(UtcMicros);
        var days = new Date32Array.Builder();
        for (var i = 0; i < rows; i++)
        {
            var id = firstId + i;
            ids.Append(id);
            if (id % 7 == 3)
            {
                names.AppendNull();
            }
            else
            {
                names.Append($"name-{id}-é");
            }
            if (id % 5 == 1)
            {
                amounts.AppendNull();
            }
            else
            {
                amounts.Append(id * 1.25 - 100);
            }
            if (id % 11 == 4)
            {
                active.AppendNull();
            }
            else
            {
                active.Append(id % 2 == 0);
            }
            if (id % 13 == 6)
            {
                ts.AppendNull();
            }
            else
            {
                // Microsecond precision that a millisecond round trip would lose.
                ts.Append(Epoch.AddTicks(id * 37_000_010L));
            }
            if (id % 17 == 8)
            {
                days.AppendNull();
            }
            else
            {
                days.Append(DateOnly.FromDateTime(Epoch.UtcDateTime).AddDays((int)(id % 400)));
            }
        }
        return new RecordBatch(MixedSchema, [ids.Build(), names.Build(), amounts.Build(), active.Build(), ts.Build(), days.Build()], rows);
    }

    /// <summary>The rows <see cref="Mixed"/> would produce, as plain values.</summary>
    public static List<object?[]> MixedRows(int rows, long firstId = 0)
    {
        using var batch = Mixed(rows, firstId);
        return Rows(batch);
    }

    /// <summary>A wide table of <paramref name="columns"/> random doubles (incompressible) named c0, c1, …</summary>
    public static RecordBatch Wide(int rows, int columns, int seed = 42)
    {
        var random = new Random(seed);
        var fields = new List<Field>(columns);
        var arrays = new List<IArrowArray>(columns);
        for (var c = 0; c < columns; c++)
        {
            var builder = new DoubleArray.Builder();
            builder.Reserve(rows);
            for (var i = 0; i < rows; i++)
            {
                builder.Append(random.NextDouble());
            }
            fields.Add(new Field($"c{c}", DoubleType.Default, nullable: false));
            arrays.Add(builder.Build());
        }
        return new RecordBatch(new Schema(fields, null), arrays, rows);
    }

    /// <summary>Writes <paramref name="batch"/> as one Parquet file to <paramref name="stream"/> (left open).</summary>
    public static void WriteParquet(Stream stream, RecordBatch batch)
    {
        using var writer = new FileWriter(stream, batch.Schema, leaveOpen: true);
        writer.WriteRecordBatch(batch);
        writer.Close();
    }

    /// <summary>The bytes of a Parquet file holding <paramref name="batch"/>.</summary>
    public static byte[] ParquetBytes(RecordBatch batch)
    {
        using var stream = new MemoryStream();
        WriteParquet(stream, batch);
        return stream.ToArray();
    }

    /// <summary>Writes <paramref name="batch"/> as a committed dataset at <paramref name="location"/>.</summary>
    public static async Task WriteDatasetAsync(StorageLocation location, RecordBatch batch, ParquetWriteOptions? options = null)
    {
        await using var writer = await ParquetDatasetWriter.CreateAsync(location, batch.Schema, options);
        writer.Write(batch);
        await writer.CommitAsync();
    }

    /// <summary>Every row of every file of the dataset, in file order, with only <paramref name="columns"/> when given.</summary>
    public static async Task<List<object?[]>> ReadRowsAsync(StorageLocation location, IReadOnlyList<ColumnSpec>? columns = null)
    {
        var dataset = await Dataset.OpenAsync(location);
        var rows = new List<object?[]>();
        foreach (var file in dataset.Files)
        {
            using var data = ParquetDataFile.Open(location.Store, file.Key);
            var projection = columns is null ? null : data.ResolveColumns(columns);
            foreach (var batch in data.ReadAll(projection))
            {
                using (batch)
                {
                    rows.AddRange(Rows(batch));
                }
            }
        }
        return rows;
    }

    /// <summary>The batch's rows as plain values (test code only: this boxes).</summary>
    public static List<object?[]> Rows(RecordBatch batch)
    {
        var rows = new List<object?[]>(batch.Length);
        for (var i = 0; i < batch.Length; i++)
        {
            var row = new object?[batch.ColumnCount];
            for (var c = 0; c < batch.ColumnCount; c++)
            {
                row[c] = Value(batch.Column(c), i);
            }
            rows.Add(row);
        }
        return rows;
    }

    /// <summary>One value of an Arrow array, or null.</summary>
    public static object? Value(IArrowArray array, int index) => array.IsNull(index) ? null : array switch
    {
        Int64Array a => a.GetValue(index),
        Int32Array a => (long?)a.GetValue(index),
        StringArray a => a.GetString(index),
        DoubleArray a => a.GetValue(index),
        BooleanArray a => a.GetValue(index),
        TimestampArray a => a.GetTimestamp(index),
        Date32Array a => a.GetDateOnly(index),
        DictionaryArray a => Value(a.Dictionary, ((Int32Array)a.Indices).GetValue(index)!.Value),
        _ => throw new NotSupportedException($"no test conversion for {array.Data.DataType.Name}"),
    };

    /// <summary>Only the given columns of each row.</summary>
    public static List<object?[]> Project(List<object?[]> rows, params int[] columns)
        => [.. rows.Select(row => columns.Select(c => row[c]).ToArray())];
}
