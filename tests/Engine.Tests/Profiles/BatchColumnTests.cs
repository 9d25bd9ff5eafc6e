using Apache.Arrow;
using Apache.Arrow.Types;
using CsCheck;
using Engine.Profiles;
using Engine.Storage;

namespace Engine.Tests.Profiles;

/// <summary>
/// Parquet files written by other tools store narrower integers, other timestamp units and dictionary-encoded strings;
/// the aggregation loops see them all as the declared logical type, nulls included, and filters over them keep SQL's
/// NULL rule.
/// </summary>
public sealed class BatchColumnTests
{
    private static RecordBatch Batch(params IArrowArray[] arrays)
    {
        var schema = new Schema.Builder();
        for (var i = 0; i < arrays.Length; i++)
        {
            schema.Field(new Field($"c{i}", arrays[i].Data.DataType, true));
        }
        return new RecordBatch(schema.Build(), arrays, arrays[0].Length);
    }

    [Fact]
    public void Narrow_integers_timestamp_units_and_dictionaries_arrive_as_the_declared_type()
    {
        var ints = new Int32Array.Builder().Append(5).AppendNull().Append(-7).Build();
        var millis = new TimestampArray.Builder(new TimestampType(TimeUnit.Millisecond, "UTC"));
        millis.Append(DateTimeOffset.FromUnixTimeMilliseconds(1_000)).AppendNull().Append(DateTimeOffset.FromUnixTimeMilliseconds(-1));
        var nanos = new TimestampArray(new TimestampType(TimeUnit.Nanosecond, "UTC"),
            new ArrowBuffer(System.Runtime.InteropServices.MemoryMarshal.AsBytes<long>([1_999, -1, 0]).ToArray()), ArrowBuffer.Empty, 3, 0, 0);
        var entries = new StringArray.Builder().Append("b").Append("a").Build();
        var indices = new Int8Array.Builder().Append(1).Append(0).AppendNull().Build();
        var strings = new DictionaryArray(new DictionaryType(Int8Type.Default, StringType.Default, false), indices, entries);
        var floats = new FloatArray.Builder().Append(1.5f).Append(2.25f).AppendNull().Build();
        using var batch = Batch(ints, millis.Build(), nanos, strings, floats);

        var i64 = new BatchColumn("c0", ColumnType.Int64, 0);
        var ts = new BatchColumn("c1", ColumnType.Timestamp, 1);
        var ns = new BatchColumn("c2", ColumnType.Timestamp, 2);
        var text = new BatchColumn("c3", ColumnType.String, 3);
        var dbl = new BatchColumn("c4", ColumnType.Double, 4);
        foreach (var column in new[] { i64, ts, ns, text, dbl })
        {
            column.Load(batch, "test.parquet");
        }
        Assert.Equal([5L, -7L], new[] { i64.Longs[0], i64.Longs[2] });
        Assert.Equal([1, 0, 1], i64.Valid.ToArray());
        Assert.Equal(1_000_000L, ts.Longs[0]);
        Assert.Equal(-1_000L, ts.Longs[2]);
        Assert.Equal([1L, -1L, 0L], ns.Longs.ToArray()); // floored to the microsecond
        Assert.True(text.IsDictionary);
        Assert.Equal("a"u8.ToArray(), text.Entry(text.Codes[0]).ToArray());
        Assert.Equal("b"u8.ToArray(), text.Entry(text.Codes[1]).ToArray());
        Assert.Equal([1, 1, 0], text.Valid.ToArray());
        Assert.Equal([1.5, 2.25], dbl.Doubles[..2].ToArray());

        // Filters: NULL passes only is_null; in over a dictionary is decided per entry.
        var pass = new byte[] { 1, 1, 1 };
        new BoundCondition(new TraitCondition("c3", ColumnType.String, FilterOperator.NotIn, ["b"]), text).Apply(pass);
        Assert.Equal([1, 0, 0], pass);
        pass = [1, 1, 1];
        new BoundCondition(new TraitCondition("c0", ColumnType.Int64, FilterOperator.NotEqual, [5L]), i64).Apply(pass);
        Assert.Equal([0, 0, 1], pass);
        pass = [1, 1, 1];
        new BoundCondition(new TraitCondition("c4", ColumnType.Double, FilterOperator.IsNull, []), dbl).Apply(pass);
        Assert.Equal([0, 0, 1], pass);
    }

    /// <summary>
    /// A condition over a selection keeps exactly the rows its mask form keeps among those selected, for every operator,
    /// nulls and dictionary entries included: the profiles stage filters by selection, LatestValues by mask.
    /// </summary>
    [Fact]
    public void Selecting_rows_keeps_those_the_mask_keeps()
    {
        FilterOperator[] operators =
        [
            FilterOperator.Equal, FilterOperator.NotEqual, FilterOperator.Less, FilterOperator.LessOrEqual, FilterOperator.Greater,
            FilterOperator.GreaterOrEqual, FilterOperator.In, FilterOperator.NotIn, FilterOperator.IsNull, FilterOperator.IsNotNull,
        ];
        var values = Gen.Int[0, 4].Array[1, 200].Select(Gen.Bool.Array[200], Gen.Bool.Array[200]);
        Gen.Select(values, Gen.Int[0, operators.Length - 1], Gen.Int[0, 2], Gen.Bool).Sample((rows, o, kind, dictionary) =>
        {
            var (codes, nulls, chosen) = rows;
            var op = operators[o];
            string[] words = ["a", "b", "c", "d", "e"];
            IArrowArray array;
            ColumnType type;
            if (kind == 0)
            {
                var builder = new Int64Array.Builder();
                for (var i = 0; i < codes.Length; i++)
                {
                    _ = nulls[i] ? builder.AppendNull() : builder.Append(codes[i]);
                }
                (array, type) = (builder.Build(), ColumnType.Int64);
            }
            else if (kind == 1)
            {
                var builder = new DoubleArray.Builder();
                for (var i = 0; i < codes.Length; i++)
                {
                    _ = nulls[i] ? builder.AppendNull() : builder.Append(codes[i] / 2.0);
                }
                (array, type) = (builder.Build(), ColumnType.Double);
            }
            else if (dictionary)
            {
                var indices = new Int32Array.Builder();
                for (var i = 0; i < codes.Length; i++)
                {
                    _ = nulls[i] ? indices.AppendNull() : indices.Append(codes[i]);
                }
                var entries = new StringArray.Builder().AppendRange(words).Build();
                array = new DictionaryArray(new DictionaryType(Int32Type.Default, StringType.Default, false), indices.Build(), entries);
                type = ColumnType.String;
            }
            else
            {
                var builder = new StringArray.Builder();
                for (var i = 0; i < codes.Length; i++)
                {
                    _ = nulls[i] ? builder.AppendNull() : builder.Append(words[codes[i]]);
                }
                (array, type) = (builder.Build(), ColumnType.String);
            }
            object Constant(int v) => kind switch { 0 => (object)(long)v, 1 => v / 2.0, _ => words[v] };
            List<object> constants = op switch
            {
                FilterOperator.IsNull or FilterOperator.IsNotNull => [],
                FilterOperator.In or FilterOperator.NotIn => [Constant(1), Constant(3)],
                _ => [Constant(2)],
            };
            using var batch = Batch(array);
            var column = new BatchColumn("c0", type, 0);
            column.Load(batch, "test.parquet");
            var condition = new BoundCondition(new TraitCondition("c0", type, op, constants), column);

            var mask = new byte[codes.Length];
            mask.AsSpan().Fill(1);
            condition.Apply(mask);
            var candidates = Enumerable.Range(0, codes.Length).Where(i => chosen[i]).ToArray();
            var selected = new int[candidates.Length];
            var kept = condition.Select(candidates, selected);
            Assert.Equal(candidates.Where(i => mask[i] != 0), selected[..kept]);

            // In place, as the stage refines a filter's selection by its next condition.
            kept = condition.Select(candidates, candidates);
            Assert.Equal(selected[..kept], candidates[..kept]);
        });
    }

    [Fact]
    public void A_column_stored_as_another_type_is_an_error_naming_the_file()
    {
        using var batch = Batch(new StringArray.Builder().Append("x").Build());
        var column = new BatchColumn("c0", ColumnType.Int64, 0);
        var error = Assert.Throws<DataException>(() => column.Load(batch, "events/part-0.parquet"));
        Assert.Contains("events/part-0.parquet", error.Message, StringComparison.Ordinal);
        Assert.Contains("column 'c0'", error.Message, StringComparison.Ordinal);
    }
}
