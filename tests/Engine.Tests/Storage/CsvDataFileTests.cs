using Apache.Arrow;
using Apache.Arrow.Types;
using Engine.Storage;
using Engine.TestKit;

namespace Engine.Tests.Storage;

public sealed class CsvDataFileTests : IDisposable
{
    private readonly TempDirectory _dir = new("csv");
    private readonly LocalObjectStore _store;

    public CsvDataFileTests() => _store = new LocalObjectStore(_dir.Path);

    public void Dispose()
    {
        _store.Dispose();
        _dir.Dispose();
    }

    private static readonly DataSchema People = new([
        new ColumnSpec("id", ColumnType.Int64, Required: true),
        new ColumnSpec("name", ColumnType.String),
        new ColumnSpec("score", ColumnType.Double),
        new ColumnSpec("active", ColumnType.Boolean),
        new ColumnSpec("seen", ColumnType.Timestamp),
        new ColumnSpec("born", ColumnType.Date),
    ]);

    private string Put(string name, string text, bool bom = false)
    {
        CsvRead.Write(_dir.Combine(name), text, bom);
        return name;
    }

    private List<RecordBatch> Read(string key, DataSchema schema, CsvReadOptions? options = null, IReadOnlyList<string>? columns = null)
        => CsvRead.Batches(_store, key, schema, options, columns);

    private DataException ReadFails(string key, DataSchema schema, CsvReadOptions? options = null)
        => Assert.Throws<DataException>(() => Read(key, schema, options));

    private string Loc(string key, int line) => $"{_dir.Combine(key)}:{line}";

    private static long Micros(string iso) => (DateTimeOffset.Parse(iso, System.Globalization.CultureInfo.InvariantCulture).UtcTicks - DateTime.UnixEpoch.Ticks) / 10;

    private static int Days(int year, int month, int day) => new DateOnly(year, month, day).DayNumber - new DateOnly(1970, 1, 1).DayNumber;

    // ---- types and shape

    [Fact]
    public void Reads_every_type_into_the_declared_arrow_schema()
    {
        var key = Put("people.csv",
            "id,name,score,active,seen,born\n" +
            "1,Ann,1.5,true,2024-03-01T10:00:00Z,1990-01-31\n" +
            "2,Bob,-2e3,NO,2024-03-01 12:30:45.123456,2000-02-29\n" +
            "3,,,,,\n");
        var batches = Read(key, People);

        var batch = Assert.Single(batches);
        Assert.Equal(3, batch.Length);
        AssertSchemaEqual(People.ToArrow(), batch.Schema);
        Assert.Equal([1L, 2L, 3L], CsvRead.Column(batches, 0));
        Assert.Equal(["Ann", "Bob", null], CsvRead.Column(batches, 1));
        Assert.Equal([1.5, -2000.0, null], CsvRead.Column(batches, 2));
        Assert.Equal([true, false, null], CsvRead.Column(batches, 3));
        Assert.Equal([Micros("2024-03-01T10:00:00Z"), Micros("2024-03-01T12:30:45.123456Z"), null], CsvRead.Column(batches, 4));
        Assert.Equal([Days(1990, 1, 31), Days(2000, 2, 29), null], CsvRead.Column(batches, 5));
        Assert.IsType<TimestampArray>(batch.Column(4));
        Assert.IsType<Date32Array>(batch.Column(5));
    }

    private static void AssertSchemaEqual(Schema expected, Schema actual)
    {
        Assert.Equal(expected.FieldsList.Count, actual.FieldsList.Count);
        for (var i = 0; i < expected.FieldsList.Count; i++)
        {
            var e = expected.GetFieldByIndex(i);
            var a = actual.GetFieldByIndex(i);
            Assert.Equal(e.Name, a.Name);
            Assert.Equal(e.IsNullable, a.IsNullable);
            Assert.Equal(e.DataType.TypeId, a.DataType.TypeId);
            if (e.DataType is TimestampType et)
            {
                var at = Assert.IsType<TimestampType>(a.DataType);
                Assert.Equal(et.Unit, at.Unit);
                Assert.Equal(et.Timezone, at.Timezone);
            }
        }
    }

    [Theory]
    [InlineData("true", true)]
    [InlineData("FALSE", false)]
    [InlineData("1", true)]
    [InlineData("0", false)]
    [InlineData("Yes", true)]
    [InlineData("no", false)]
    [InlineData("t", true)]
    [InlineData("F", false)]
    [InlineData(" true ", true)]
    public void Booleans_accept_the_usual_spellings(string text, bool expected)
    {
        var key = Put("b.csv", $"b\n{text}\n");
        Assert.Equal([expected], CsvRead.Column(Read(key, new([new("b", ColumnType.Boolean)])), 0));
    }

    [Theory]
    [InlineData("2024-03-01", "2024-03-01T00:00:00Z")]
    [InlineData("2024-03-01T10:20", "2024-03-01T10:20:00Z")]
    [InlineData("2024-03-01T10:20:30", "2024-03-01T10:20:30Z")]
    [InlineData("2024-03-01 10:20:30.5", "2024-03-01T10:20:30.5Z")]
    [InlineData("2024-03-01T10:20:30.1234567Z", "2024-03-01T10:20:30.123456Z")]
    [InlineData("2024-03-01T10:20:30+02:00", "2024-03-01T08:20:30Z")]
    [InlineData("2024-03-01T10:20:30-0530", "2024-03-01T15:50:30Z")]
    [InlineData("2024-03-01T01:00:00+03", "2024-02-29T22:00:00Z")]
    [InlineData("1969-12-31T23:59:59.999999Z", "1969-12-31T23:59:59.999999Z")]
    [InlineData("0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z")]
    public void Timestamps_are_iso_8601_and_utc_when_no_offset_is_given(string text, string expected)
    {
        var key = Put("t.csv", $"t\n{text}\n");
        Assert.Equal([Micros(expected)], CsvRead.Column(Read(key, new([new("t", ColumnType.Timestamp)])), 0));
    }

    [Fact]
    public void Custom_timestamp_and_date_formats_are_tried_after_iso()
    {
        var key = Put("f.csv", "t,d\n03/01/2024 10:20,01.02.2024\n2024-03-01T00:00:00Z,2024-02-01\n");
        var options = new CsvReadOptions { TimestampFormats = ["MM/dd/yyyy HH:mm"], DateFormats = ["dd.MM.yyyy"] };
        var batches = Read(key, new([new("t", ColumnType.Timestamp), new("d", ColumnType.Date)]), options);
        Assert.Equal([Micros("2024-03-01T10:20:00Z"), Micros("2024-03-01T00:00:00Z")], CsvRead.Column(batches, 0));
        Assert.Equal([Days(2024, 2, 1), Days(2024, 2, 1)], CsvRead.Column(batches, 1));
    }

    [Fact]
    public void Numbers_are_invariant_and_may_have_surrounding_spaces()
    {
        var key = Put("n.csv", "i,d\n -12 , 3.25 \n+7,1e-3\n9223372036854775807,-0.5\n");
        var batches = Read(key, new([new("i", ColumnType.Int64), new("d", ColumnType.Double)]));
        Assert.Equal([-12L, 7L, long.MaxValue], CsvRead.Column(batches, 0));
        Assert.Equal([3.25, 0.001, -0.5], CsvRead.Column(batches, 1));
    }

    // ---- RFC 4180

    [Fact]
    public void Quoted_fields_keep_delimiters_escaped_quotes_and_line_breaks()
    {
        var key = Put("q.csv",
            "id,name\n" +
            "1,\"Smith, John\"\n" +
            "2,\"say \"\"hi\"\"\"\n" +
            "3,\"two\nlines\"\n" +
            "4,\"crlf\r\ninside\"\n" +
            "5,\"\"\n" +
            "6,\" padded \"\n" +
            "7,#not a comment\n");
        var batches = Read(key, new([new("id", ColumnType.Int64), new("name", ColumnType.String)]));
        Assert.Equal(["Smith, John", "say \"hi\"", "two\nlines", "crlf\r\ninside", null, " padded ", "#not a comment"], CsvRead.Column(batches, 1));
    }

    [Fact]
    public void Crlf_lf_and_no_final_newline_read_the_same()
    {
        var lf = Put("lf.csv", "id,name\n1,a\n2,b\n");
        var crlf = Put("crlf.csv", "id,name\r\n1,a\r\n2,b\r\n");
        var noEnd = Put("noend.csv", "id,name\r\n1,a\r\n2,b");
        var schema = new DataSchema([new("id", ColumnType.Int64), new("name", ColumnType.String)]);
        var expected = CsvRead.Column(Read(lf, schema), 1);
        Assert.Equal(["a", "b"], expected);
        Assert.Equal(expected, CsvRead.Column(Read(crlf, schema), 1));
        Assert.Equal(expected, CsvRead.Column(Read(noEnd, schema), 1));
    }

    [Fact]
    public void A_utf8_byte_order_mark_is_skipped()
    {
        var key = Put("bom.csv", "id,name\n1,Zoë\n", bom: true);
        using var file = CsvDataFile.Open(_store, key, new([new("id", ColumnType.Int64), new("name", ColumnType.String)]));
        Assert.Equal("id", file.Header[0]);
        var batches = file.ReadAll().ToList();
        Assert.Equal(["Zoë"], CsvRead.Column(batches, 1));
    }

    [Theory]
    [InlineData(';')]
    [InlineData('\t')]
    [InlineData('|')]
    [InlineData(',')]
    public void The_delimiter_is_detected_from_the_header_when_not_given(char delimiter)
    {
        var d = delimiter.ToString();
        var key = Put("d.csv", $"id{d}name{d}score\n1{d}\"a{(delimiter == ',' ? ";" : ",")}b\"{d}2.5\n");
        var batches = Read(key, new([new("id", ColumnType.Int64), new("name", ColumnType.String), new("score", ColumnType.Double)]), new CsvReadOptions { Delimiter = null });
        Assert.Equal([1L], CsvRead.Column(batches, 0));
        Assert.Equal([2.5], CsvRead.Column(batches, 2));
    }

    [Fact]
    public void A_given_delimiter_is_used_as_is()
    {
        var key = Put("semi.csv", "id;name\n1;a,b\n");
        var batches = Read(key, new([new("id", ColumnType.Int64), new("name", ColumnType.String)]), new CsvReadOptions { Delimiter = ';' });
        Assert.Equal(["a,b"], CsvRead.Column(batches, 1));
    }

    // ---- nulls

    [Fact]
    public void Empty_fields_are_null_in_every_type_and_blank_ones_in_typed_columns()
    {
        var key = Put("nulls.csv", "id,name,score,active,seen,born\n1,,,,,\n2,\"\", , , , \n3, ,1,1,2024-01-01,2024-01-01\n");
        var batches = Read(key, People);
        Assert.Equal([null, null, " "], CsvRead.Column(batches, 1));
        for (var c = 2; c < 6; c++)
        {
            var column = CsvRead.Column(batches, c);
            Assert.Null(column[0]);
            Assert.Null(column[1]);
            Assert.NotNull(column[2]);
        }
        Assert.Equal(2, batches[0].Column(2).NullCount);
    }

    [Fact]
    public void Null_values_are_configurable_and_empty_strings_can_be_kept()
    {
        var key = Put("na.csv", "name,score\nNA,NA\n,\nx, NULL \n");
        var schema = new DataSchema([new("name", ColumnType.String), new("score", ColumnType.Double)]);

        var withNa = Read(key, schema, new CsvReadOptions { NullValues = ["", "NA", "NULL"] });
        Assert.Equal([null, null, "x"], CsvRead.Column(withNa, 0));
        Assert.Equal([null, null, null], CsvRead.Column(withNa, 1));

        var keepEmpty = Read(key, new DataSchema([new("name", ColumnType.String)]), new CsvReadOptions { NullValues = [] });
        Assert.Equal(["NA", "", "x"], CsvRead.Column(keepEmpty, 0));
    }

    [Fact]
    public void Empty_lines_are_skipped_but_in_a_one_column_file_they_are_nulls()
    {
        var many = Put("blank.csv", "id,name\n1,a\n\n2,b\n\n");
        Assert.Equal([1L, 2L], CsvRead.Column(Read(many, new([new("id", ColumnType.Int64), new("name", ColumnType.String)])), 0));

        var one = Put("one.csv", "score\n1\n\n2\n");
        Assert.Equal([1.0, null, 2.0], CsvRead.Column(Read(one, new([new("score", ColumnType.Double)])), 0));
    }

    // ---- header mapping and projection

    [Fact]
    public void Columns_are_matched_by_name_then_ignoring_case_and_spaces_and_extras_are_ignored()
    {
        var key = Put("h.csv", "extra, NAME ,ID,other\nx,Ann,7,y\n");
        var schema = new DataSchema([new("id", ColumnType.Int64), new("name", ColumnType.String)]);
        var batches = Read(key, schema);
        Assert.Equal([7L], CsvRead.Column(batches, 0));
        Assert.Equal(["Ann"], CsvRead.Column(batches, 1));
        Assert.Equal(2, batches[0].ColumnCount);
    }

    [Fact]
    public void An_exact_name_wins_over_a_case_insensitive_one()
    {
        var key = Put("exact.csv", "Name,name\nupper,lower\n");
        Assert.Equal(["lower"], CsvRead.Column(Read(key, new([new("name", ColumnType.String)])), 0));
    }

    [Fact]
    public void A_missing_column_names_the_file_and_the_header()
    {
        var key = Put("missing.csv", "id,name\n1,a\n");
        var e = Assert.Throws<DataException>(() => CsvDataFile.Open(_store, key, People));
        Assert.Equal($"{_dir.Combine(key)}: missing column 'score' (the header has: id, name)", e.Message);
    }

    [Fact]
    public void Ambiguous_header_names_are_an_error()
    {
        var caseOnly = Put("amb.csv", "Email,EMAIL\na,b\n");
        var e = Assert.Throws<DataException>(() => CsvDataFile.Open(_store, caseOnly, new([new("email", ColumnType.String)])));
        Assert.StartsWith($"{_dir.Combine(caseOnly)}: column 'email' is ambiguous: the header has 'Email' and 'EMAIL'", e.Message, StringComparison.Ordinal);

        var twice = Put("twice.csv", "id,id\n1,2\n");
        e = Assert.Throws<DataException>(() => CsvDataFile.Open(_store, twice, new([new("id", ColumnType.Int64)])));
        Assert.Equal($"{_dir.Combine(twice)}: column 'id' appears more than once in the header (fields 1 and 2)", e.Message);
    }

    [Fact]
    public void Projection_reads_a_subset_in_the_order_asked()
    {
        var key = Put("p.csv", "id,name,score,active,seen,born\n1,a,1.5,true,,\n2,b,2.5,false,,\n");
        var batches = Read(key, People, columns: ["score", "id"]);
        var batch = Assert.Single(batches);
        AssertSchemaEqual(new DataSchema([People.Find("score")!, People.Find("id")!]).ToArrow(), batch.Schema);
        Assert.Equal([1.5, 2.5], CsvRead.Column(batches, 0));
        Assert.Equal([1L, 2L], CsvRead.Column(batches, 1));
    }

    [Fact]
    public void Projection_of_an_undeclared_column_is_refused()
    {
        var key = Put("p2.csv", "id\n1\n");
        using var file = CsvDataFile.Open(_store, key, new([new("id", ColumnType.Int64)]));
        var e = Assert.Throws<EngineException>(() => file.ReadAll(["nope"]));
        Assert.Contains("column 'nope' is not declared", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Projection_skips_bad_values_in_columns_not_read()
    {
        var key = Put("skip.csv", "id,score\n1,oops\n");
        var schema = new DataSchema([new("id", ColumnType.Int64), new("score", ColumnType.Double)]);
        Assert.Equal([1L], CsvRead.Column(Read(key, schema, columns: ["id"]), 0));
    }

    [Fact]
    public void Without_a_header_fields_are_the_declared_columns_in_order()
    {
        var key = Put("nohead.csv", "1,a\n2,b\n");
        var options = new CsvReadOptions { HasHeader = false };
        var batches = Read(key, new([new("id", ColumnType.Int64), new("name", ColumnType.String)]), options);
        Assert.Equal([1L, 2L], CsvRead.Column(batches, 0));

        var e = ReadFails(key, new([new("id", ColumnType.Int64)]), options);
        Assert.Equal($"{Loc(key, 1)}: expected 1 fields (the declared columns, in order: the file has no header), found 2", e.Message);

        var bad = Put("nohead-bad.csv", "1,a\nx,b\n");
        e = ReadFails(bad, new([new("id", ColumnType.Int64), new("name", ColumnType.String)]), options);
        Assert.Equal($"{Loc(bad, 2)}: column 'id': 'x' is not a valid int64", e.Message);
    }

    [Fact]
    public void Without_a_header_named_fields_let_a_projection_find_each_column_at_its_position()
    {
        var key = Put("named.csv", "1,a,2024-01-01\n2,b,x\n");
        var options = new CsvReadOptions { HasHeader = false, ColumnNames = ["id", "name", "day"] };
        using (var file = CsvDataFile.Open(_store, key, new([new("name", ColumnType.String), new("id", ColumnType.Int64)]), options))
        {
            Assert.Equal(["id", "name", "day"], file.Header);
            var batches = file.ReadAll().ToList();
            Assert.Equal(["a", "b"], CsvRead.Column(batches, 0));
            Assert.Equal([1L, 2L], CsvRead.Column(batches, 1));
        }

        var e = ReadFails(key, IdName, options with { ColumnNames = ["id", "name"] });
        Assert.Equal($"{Loc(key, 1)}: expected 2 fields (the declared columns, in order: the file has no header), found 3", e.Message);
        var missing = Assert.Throws<EngineException>(() => CsvDataFile.Open(_store, key, new([new("zip", ColumnType.String)]), options));
        Assert.Equal($"{_dir.Combine(key)}: column 'zip' is not among the file's column names (id, name, day)", missing.Message);
        Assert.Throws<ArgumentException>(() => CsvDataFile.Open(_store, key, IdName, new CsvReadOptions { ColumnNames = ["id", "name"] }));
    }

    // ---- skipped lines

    private static readonly DataSchema IdName = new([new("id", ColumnType.Int64), new("name", ColumnType.String)]);

    [Fact]
    public void Skipped_lines_come_before_the_header_and_errors_keep_the_files_line_numbers()
    {
        var key = Put("titled.csv", "Export of 2024-03-01\n\"a quoted \"\"note\n,id,name\nid,name\n1,a\n2,b\nx,c\n");
        var options = new CsvReadOptions { SkipLines = 3 };
        using (var file = CsvDataFile.Open(_store, key, IdName, options))
        {
            Assert.Equal(["id", "name"], file.Header);
        }
        // The quote on line 2 is not parsed: skipped lines are physical lines, whatever they hold.
        var e = ReadFails(key, IdName, options);
        Assert.Equal($"{Loc(key, 7)}: column 'id': 'x' is not a valid int64", e.Message);

        var ragged = Put("titled-ragged.csv", "title\nid,name\n1,a\n2,b,extra\n");
        e = ReadFails(ragged, IdName, new CsvReadOptions { SkipLines = 1 });
        Assert.Equal($"{Loc(ragged, 4)}: expected 2 fields, as in the header, found 3", e.Message);
    }

    [Fact]
    public void A_wrong_header_is_skipped_and_the_fields_read_as_the_declared_columns()
    {
        // The shape of the ncvoter ocp_0 files: a 19-field header over 5-field rows.
        var key = Put("wrong-header.csv", "rec_id,voter_reg_num,first_name,last_name,age,gender\n1,a\n2,b\n3,\"multi\nline\"\nx,d\n");
        var options = new CsvReadOptions { SkipLines = 1, HasHeader = false };
        var e = ReadFails(key, IdName, options);
        Assert.Equal($"{Loc(key, 6)}: column 'id': 'x' is not a valid int64", e.Message);
        var rows = CsvRead.Column(Read(Put("wrong-header-ok.csv", "rec_id,a,b,c\n1,a\n2,b\n"), IdName, options), 1);
        Assert.Equal(["a", "b"], rows);

        // Without skipping it, the header is the first data line, and its field count is the one named.
        e = ReadFails(key, IdName, new CsvReadOptions { HasHeader = false });
        Assert.Equal($"{Loc(key, 1)}: expected 2 fields (the declared columns, in order: the file has no header), found 6", e.Message);
        var wide = Put("wide.csv", "title\n1,a,b\n");
        e = ReadFails(wide, IdName, options);
        Assert.Equal($"{Loc(wide, 2)}: expected 2 fields (the declared columns, in order: the file has no header), found 3", e.Message);
    }

    [Theory]
    [InlineData("\r\n")]
    [InlineData("\r")]
    [InlineData("\n")]
    public void Skipped_lines_end_at_any_line_break_even_split_across_reads(string newline)
    {
        // The trickling store hands out 3 bytes per read, so "ab\r" and "\n" arrive apart.
        var name = $"breaks-{newline.Length}-{(int)newline[0]}";
        using var store = new TrickleStore(_store);
        var options = new CsvReadOptions { SkipLines = 2 };
        var good = Put($"{name}.csv", string.Join(newline, "ab", "cd", "id,name", "1,a", "2,b", ""));
        Assert.Equal([1L, 2L], CsvRead.Column(CsvRead.Batches(store, good, IdName, options), 0));
        var bad = Put($"{name}-bad.csv", string.Join(newline, "ab", "cd", "id,name", "1,a", "x,b", ""));
        var e = Assert.Throws<DataException>(() => CsvRead.Batches(store, bad, IdName, options));
        Assert.Equal($"{Loc(bad, 5)}: column 'id': 'x' is not a valid int64", e.Message);
    }

    [Fact]
    public void Skipping_past_the_end_or_onto_an_empty_line_says_so()
    {
        var two = Put("two-lines.csv", "a\nb");
        var e = Assert.Throws<DataException>(() => CsvDataFile.Open(_store, two, IdName, new CsvReadOptions { SkipLines = 3 }));
        Assert.Equal($"{_dir.Combine(two)}: the file has 2 lines, fewer than the 3 to skip", e.Message);

        e = Assert.Throws<DataException>(() => CsvDataFile.Open(_store, two, IdName, new CsvReadOptions { SkipLines = 2 }));
        Assert.Equal($"{_dir.Combine(two)}: nothing after the 2 lines skipped: expected a header line naming the columns", e.Message);

        e = Assert.Throws<DataException>(() => CsvDataFile.Open(_store, two, IdName, new CsvReadOptions { SkipLines = 2, HasHeader = false }));
        Assert.Equal($"{_dir.Combine(two)}: no rows after the 2 lines skipped", e.Message);

        var blank = Put("blank-after.csv", "title\n\nid,name\n");
        e = Assert.Throws<DataException>(() => CsvDataFile.Open(_store, blank, IdName, new CsvReadOptions { SkipLines = 1 }));
        Assert.Equal($"{Loc(blank, 2)}: the line after the 1 line skipped is empty: expected a header line naming the columns", e.Message);

        Assert.Throws<ArgumentOutOfRangeException>(() => CsvDataFile.Open(_store, two, IdName, new CsvReadOptions { SkipLines = -1 }));
    }

    [Fact]
    public void Invalid_text_in_a_skipped_line_is_still_reported_at_its_line()
    {
        File.WriteAllBytes(_dir.Combine("bad-title.csv"), [.. "ok\ncaf"u8.ToArray(), 0xE9, .. "\nid\n1\n"u8.ToArray()]);
        var e = Assert.Throws<DataException>(() => CsvDataFile.Open(_store, "bad-title.csv", new([new("id", ColumnType.Int64)]), new CsvReadOptions { SkipLines = 2 }));
        Assert.StartsWith($"{Loc("bad-title.csv", 2)}: not valid UTF-8 text", e.Message, StringComparison.Ordinal);
    }

    // ---- batches

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(7)]
    public void Small_batches_hold_the_same_data_as_one_batch(int batchSize)
    {
        var text = new System.Text.StringBuilder("id,name,score,active,seen,born\n");
        for (var i = 0; i < 20; i++)
        {
            text.Append(i).Append(",n").Append(i).Append(',').Append(i % 3 == 0 ? "" : $"{i}.5").Append(',').Append(i % 2 == 0 ? "yes" : "no")
                .Append(",2024-01-").Append((i + 1).ToString("00", System.Globalization.CultureInfo.InvariantCulture)).Append("T00:00:00Z,").Append(i % 4 == 0 ? "" : "2020-05-05").Append('\n');
            if (i == 9)
            {
                text.Append('\n');
            }
        }
        var key = Put("batches.csv", text.ToString());
        var whole = Read(key, People);
        var small = Read(key, People, new CsvReadOptions { BatchSize = batchSize });

        Assert.Single(whole);
        Assert.Equal((20 + batchSize - 1) / batchSize, small.Count);
        Assert.All(small.SkipLast(1), b => Assert.Equal(batchSize, b.Length));
        for (var c = 0; c < People.Columns.Count; c++)
        {
            Assert.Equal(CsvRead.Column(whole, c), CsvRead.Column(small, c));
        }
    }

    [Fact]
    public void A_header_only_file_has_no_batches_and_rows_are_counted()
    {
        var key = Put("empty-body.csv", "id,name\n");
        using var file = CsvDataFile.Open(_store, key, new([new("id", ColumnType.Int64)]));
        Assert.Empty(file.ReadAll());
        Assert.Equal(0, file.RowsRead);

        var rows = Put("rows.csv", "id\n1\n2\n3\n");
        using var counted = CsvDataFile.Open(_store, rows, new([new("id", ColumnType.Int64)]), new CsvReadOptions { BatchSize = 2 });
        Assert.Equal(2, counted.ReadAll().Count());
        Assert.Equal(3, counted.RowsRead);
    }

    [Fact]
    public void A_file_is_read_once()
    {
        var key = Put("once.csv", "id\n1\n");
        using var file = CsvDataFile.Open(_store, key, new([new("id", ColumnType.Int64)]));
        _ = file.ReadAll().ToList();
        Assert.Throws<InvalidOperationException>(() => file.ReadAll());
    }

    [Fact]
    public async Task Batches_can_be_written_to_parquet_and_read_back()
    {
        var key = Put("to-parquet.csv", "id,name,score,active,seen,born\n1,Ann,1.5,true,2024-03-01T10:00:00Z,1990-01-31\n2,,,,,\n");
        var batches = Read(key, People);
        var location = new StorageLocation(_store, "out");
        await using (var writer = await ParquetDatasetWriter.CreateAsync(location, People.ToArrow(), cancellationToken: TestContext.Current.CancellationToken))
        {
            foreach (var batch in batches)
            {
                writer.Write(batch);
            }
            await writer.CommitAsync(TestContext.Current.CancellationToken);
        }
        var dataset = await Dataset.OpenAsync(location, cancellationToken: TestContext.Current.CancellationToken);
        using var parquet = ParquetDataFile.Open(_store, dataset.Files[0].Key);
        var back = parquet.ReadAll().ToList();
        for (var c = 0; c < People.Columns.Count; c++)
        {
            Assert.Equal(CsvRead.Column(batches, c), CsvRead.Column(back, c));
        }
    }

    [Fact]
    public async Task A_csv_dataset_lists_its_csv_files()
    {
        Put("crm/a.csv", "id\n1\n");
        Put("crm/region=eu/b.csv", "id\n2\n");
        Put("crm/_skip.csv", "id\n3\n");
        Put("crm/notes.txt", "x");
        var dataset = await Dataset.OpenAsync(new StorageLocation(_store, "crm"), DataFormat.Csv, TestContext.Current.CancellationToken);
        Assert.Equal(["crm/a.csv", "crm/region=eu/b.csv"], dataset.Files.Select(f => f.Key));
        var ids = new List<object?>();
        foreach (var f in dataset.Files)
        {
            ids.AddRange(CsvRead.Column(Read(f.Key, new([new("id", ColumnType.Int64)])), 0));
        }
        Assert.Equal([1L, 2L], ids);
    }

    // ---- bad input: one error naming file:line and the column

    [Fact]
    public void A_bad_value_names_the_file_line_column_and_value()
    {
        var key = Put("bad.csv", "id,name,score\n1,a,1.0\n2,b,1.2.3\n");
        var e = ReadFails(key, new([new("id", ColumnType.Int64), new("name", ColumnType.String), new("score", ColumnType.Double)]));
        Assert.Equal($"{Loc(key, 3)}: column 'score': '1.2.3' is not a valid double", e.Message);
        Assert.Equal(Loc(key, 3), e.Location);
    }

    [Theory]
    [InlineData(ColumnType.Int64, "1.5", "int64")]
    [InlineData(ColumnType.Boolean, "maybe", "boolean")]
    [InlineData(ColumnType.Timestamp, "2024-13-01", "timestamp")]
    [InlineData(ColumnType.Timestamp, "2024-02-30T00:00:00Z", "timestamp")]
    [InlineData(ColumnType.Timestamp, "03/01/2024", "timestamp")]
    [InlineData(ColumnType.Date, "2024-02-30", "date")]
    [InlineData(ColumnType.Date, "2024-02-03T00:00:00", "date")]
    [InlineData(ColumnType.Double, "1,5", "double")]
    public void Values_that_do_not_parse_are_errors(ColumnType type, string value, string typeName)
    {
        var key = Put("v.csv", $"v\n\"{value}\"\n");
        var e = ReadFails(key, new([new("v", type)]));
        Assert.Equal($"{Loc(key, 2)}: column 'v': '{value}' is not a valid {typeName}", e.Message);
    }

    [Fact]
    public void Lines_count_quoted_line_breaks_before_the_bad_row()
    {
        var key = Put("multi.csv",
            "id,note\r\n" +        // 1
            "1,\"first\r\nsecond\r\nthird\"\r\n" + // 2-4
            "2,\"a\nb\"\r\n" +     // 5-6
            "\r\n" +               // 7 (empty, skipped)
            "x3,plain\r\n");       // 8
        var e = ReadFails(key, new([new("id", ColumnType.Int64), new("note", ColumnType.String)]));
        Assert.Equal($"{Loc(key, 8)}: column 'id': 'x3' is not a valid int64", e.Message);
    }

    [Fact]
    public void A_bad_field_after_a_multi_line_field_in_the_same_record_names_its_own_line()
    {
        var key = Put("sameline.csv", "note,id\n\"one\ntwo\nthree\",oops\n");
        var e = ReadFails(key, new([new("note", ColumnType.String), new("id", ColumnType.Int64)]));
        Assert.Equal($"{Loc(key, 4)}: column 'id': 'oops' is not a valid int64", e.Message);
    }

    [Fact]
    public void Lone_carriage_returns_end_lines_too()
    {
        var key = Put("cr.csv", "id\r1\r2\rbad\r");
        var e = ReadFails(key, new([new("id", ColumnType.Int64)]));
        Assert.Equal($"{Loc(key, 4)}: column 'id': 'bad' is not a valid int64", e.Message);
    }

    [Fact]
    public void A_multi_line_header_is_counted()
    {
        var key = Put("mh.csv", "\"id\nnumber\",name\n1,a\nz,b\n");
        var e = ReadFails(key, new([new("id\nnumber", ColumnType.Int64), new("name", ColumnType.String)]));
        Assert.Equal($"{Loc(key, 4)}: column 'id\nnumber': 'z' is not a valid int64", e.Message);
    }

    [Fact]
    public void A_required_column_that_is_empty_is_an_error()
    {
        var key = Put("req.csv", "id,name\n1,a\n,b\n");
        var e = ReadFails(key, new([new("id", ColumnType.Int64, Required: true), new("name", ColumnType.String)]));
        Assert.Equal($"{Loc(key, 3)}: column 'id' is required, but the field is empty", e.Message);

        var strings = Put("req2.csv", "id,name\n1,a\n2,NA\n");
        e = ReadFails(strings, new([new("id", ColumnType.Int64), new("name", ColumnType.String, Required: true)]), new CsvReadOptions { NullValues = ["NA"] });
        Assert.Equal($"{Loc(strings, 3)}: column 'name' is required, but the value is null ('NA')", e.Message);

        var keptEmpty = Put("req3.csv", "name\n\"\"\n");
        e = ReadFails(keptEmpty, new([new("name", ColumnType.String, Required: true)]), new CsvReadOptions { NullValues = [] });
        Assert.Equal($"{Loc(keptEmpty, 2)}: column 'name' is required, but the field is empty", e.Message);
    }

    [Fact]
    public void Rows_with_too_few_or_too_many_fields_are_errors()
    {
        var schema = new DataSchema([new("a", ColumnType.String), new("b", ColumnType.String), new("c", ColumnType.String)]);
        var few = Put("few.csv", "a,b,c\n1,2,3\n\"x\ny\",2\n");
        var e = ReadFails(few, schema);
        Assert.Equal($"{Loc(few, 3)}: expected 3 fields, as in the header, found 2", e.Message);

        var many = Put("many.csv", "a,b,c\n1,2,3\n4,5,6\n7,8,9,10\n");
        e = ReadFails(many, schema);
        Assert.Equal($"{Loc(many, 4)}: expected 3 fields, as in the header, found 4", e.Message);

        // A projection does not hide a broken row.
        e = Assert.Throws<DataException>(() => Read(many, schema, columns: ["a"]));
        Assert.Equal(Loc(many, 4), e.Location);
    }

    [Fact]
    public void An_unterminated_quote_names_the_line_where_the_quote_opens()
    {
        var key = Put("open.csv", "id,name\n1,a\n2,\"never closed\n3,c\n4,d\n");
        var e = ReadFails(key, new([new("id", ColumnType.Int64), new("name", ColumnType.String)]));
        Assert.StartsWith($"{Loc(key, 3)}: malformed CSV in field 2 ('name') of the record starting on this line:", e.Message, StringComparison.Ordinal);
        Assert.Contains("closing quote", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Text_after_a_closing_quote_is_an_error()
    {
        var key = Put("after.csv", "id,name\n1,a\n2,\"b\"c\n");
        var e = ReadFails(key, new([new("id", ColumnType.Int64), new("name", ColumnType.String)]));
        Assert.StartsWith($"{Loc(key, 3)}: malformed CSV in field 2 ('name')", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_record_longer_than_the_limit_is_reported_as_a_likely_open_quote()
    {
        var key = Put("huge.csv", "id,name\n1,a\n2,\"" + new string('x', 5000) + "\n3,c\n");
        var e = ReadFails(key, new([new("id", ColumnType.Int64), new("name", ColumnType.String)]), new CsvReadOptions { MaxRecordLength = 1024 });
        Assert.Equal($"{Loc(key, 3)}: a record starting on this line is longer than 1024 characters: most likely a quote (\") that is never closed", e.Message);
    }

    [Fact]
    public void An_empty_file_or_missing_header_names_the_file()
    {
        var empty = Put("empty.csv", "");
        var e = Assert.Throws<DataException>(() => CsvDataFile.Open(_store, empty, People));
        Assert.Equal($"{_dir.Combine(empty)}: empty file: expected a header line naming the columns", e.Message);

        var blankFirst = Put("blankfirst.csv", "\nid\n1\n");
        e = Assert.Throws<DataException>(() => CsvDataFile.Open(_store, blankFirst, new([new("id", ColumnType.Int64)])));
        Assert.Equal($"{Loc(blankFirst, 1)}: the first line is empty: expected a header line naming the columns", e.Message);

        var noHeaderEmpty = Put("empty2.csv", "");
        e = Assert.Throws<DataException>(() => CsvDataFile.Open(_store, noHeaderEmpty, People, new CsvReadOptions { HasHeader = false }));
        Assert.Equal($"{_dir.Combine(noHeaderEmpty)}: empty file: no rows", e.Message);
    }

    [Fact]
    public void A_missing_file_names_the_file()
    {
        var e = Assert.Throws<DataException>(() => CsvDataFile.Open(_store, "nope.csv", People));
        Assert.Equal($"{_dir.Combine("nope.csv")}: file not found", e.Message);
    }

    [Fact]
    public void Invalid_utf8_names_the_exact_line()
    {
        var lines = new List<byte>();
        lines.AddRange("id,name\n"u8.ToArray());
        for (var i = 0; i < 100_000; i++)
        {
            lines.AddRange(System.Text.Encoding.UTF8.GetBytes($"{i},name {i} é\n"));
        }
        lines.AddRange("100000,caf"u8.ToArray());
        lines.Add(0xE9); // Latin-1 'é': not UTF-8
        lines.AddRange("\n100001,ok\n"u8.ToArray());
        File.WriteAllBytes(_dir.Combine("latin1.csv"), [.. lines]);

        var e = ReadFails("latin1.csv", new([new("id", ColumnType.Int64), new("name", ColumnType.String)]));
        Assert.StartsWith($"{Loc("latin1.csv", 100_002)}: not valid UTF-8 text", e.Message, StringComparison.Ordinal);

        // Read as Latin-1 when told so.
        var batches = Read("latin1.csv", new([new("id", ColumnType.Int64), new("name", ColumnType.String)]), new CsvReadOptions { Encoding = System.Text.Encoding.Latin1 });
        Assert.Equal("café", CsvRead.Column(batches, 1)[100_000]);
    }

    [Fact]
    public void Invalid_utf8_in_the_first_block_names_its_line_on_open()
    {
        File.WriteAllBytes(_dir.Combine("small.csv"), [.. "id,name\n1,a\n2,caf"u8.ToArray(), 0xE9, .. "\n"u8.ToArray()]);
        var e = Assert.Throws<DataException>(() => CsvDataFile.Open(_store, "small.csv", new([new("id", ColumnType.Int64)])));
        Assert.StartsWith($"{Loc("small.csv", 3)}: not valid UTF-8 text (byte offset 17)", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Options_that_cannot_work_are_refused()
    {
        var key = Put("opts.csv", "id\n1\n");
        var schema = new DataSchema([new("id", ColumnType.Int64)]);
        Assert.Throws<ArgumentOutOfRangeException>(() => CsvDataFile.Open(_store, key, schema, new CsvReadOptions { BatchSize = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => CsvDataFile.Open(_store, key, schema, new CsvReadOptions { MaxRecordLength = 10 }));
        var e = Assert.Throws<EngineException>(() => CsvDataFile.Open(_store, key, schema, new CsvReadOptions { Delimiter = '"' }));
        Assert.StartsWith($"{_dir.Combine(key)}: the CSV options do not fit together", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Reads_through_any_store_stream_even_one_that_trickles_bytes()
    {
        var text = new System.Text.StringBuilder("id,name\n");
        for (var i = 0; i < 2000; i++)
        {
            text.Append(i).Append(",\"Zoë 😀 ").Append(i).Append("\nline\"\n");
        }
        var key = Put("trickle.csv", text.ToString(), bom: true);
        using var store = new TrickleStore(_store);
        var batches = CsvRead.Batches(store, key, new([new("id", ColumnType.Int64), new("name", ColumnType.String)]), new CsvReadOptions { BatchSize = 333 });
        var names = CsvRead.Column(batches, 1);
        Assert.Equal(2000, names.Count);
        Assert.Equal("Zoë 😀 1999\nline", names[1999]);
        Assert.False(store.LocalPathAsked);
    }

    /// <summary>A store whose streams return at most 3 bytes per read (splitting UTF-8 sequences), and no local paths.</summary>
    private sealed class TrickleStore(IObjectStore inner) : IObjectStore
    {
        public bool LocalPathAsked { get; private set; }

        public string Describe(string key) => inner.Describe(key);

        public Task<IReadOnlyList<StoredObject>> ListAsync(string prefix, CancellationToken cancellationToken = default) => inner.ListAsync(prefix, cancellationToken);

        public Task<long?> GetSizeAsync(string key, CancellationToken cancellationToken = default) => inner.GetSizeAsync(key, cancellationToken);

        public Stream OpenRead(string key) => new TrickleStream(inner.OpenRead(key));

        public bool TryGetLocalPath(string key, out string path)
        {
            LocalPathAsked = true;
            path = "";
            return false;
        }

        public Task PutAsync(string key, ReadOnlyMemory<byte> content, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public Task<byte[]?> GetAsync(string key, CancellationToken cancellationToken = default) => inner.GetAsync(key, cancellationToken);

        public Task DeleteAsync(IReadOnlyList<string> keys, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public Task<IDatasetWrite> BeginWriteAsync(string prefix, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public void Dispose() { }
    }

    private sealed class TrickleStream(Stream inner) : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => inner.CanSeek;
        public override bool CanWrite => false;
        public override long Length => inner.Length;
        public override long Position { get => inner.Position; set => inner.Position = value; }
        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, Math.Min(count, 3));
        public override int Read(Span<byte> buffer) => inner.Read(buffer[..Math.Min(buffer.Length, 3)]);
        public override long Seek(long offset, SeekOrigin origin) => inner.Seek(offset, origin);
        public override void Flush() { }
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }
            base.Dispose(disposing);
        }
    }

    [Fact]
    public void Shown_values_are_cut_to_40_characters_and_emails_are_masked()
    {
        var longValue = new string('9', 30) + "x" + new string('9', 30);
        var key = Put("long.csv", $"id\n{longValue}\n");
        var e = ReadFails(key, new([new("id", ColumnType.Int64)]));
        Assert.Equal($"{Loc(key, 2)}: column 'id': '{longValue[..40]}…' is not a valid int64", e.Message);

        var email = Put("email.csv", "id\njane.doe@example.com\n");
        e = ReadFails(email, new([new("id", ColumnType.Int64)]));
        Assert.Equal($"{Loc(email, 2)}: column 'id': 'j*******@example.com' is not a valid int64", e.Message);
        Assert.DoesNotContain("jane.doe", e.Message, StringComparison.Ordinal);
    }
}
