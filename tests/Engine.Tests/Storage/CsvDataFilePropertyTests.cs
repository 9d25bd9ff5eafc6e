using System.Globalization;
using System.Text;
using CsCheck;
using Engine.Storage;
using Engine.TestKit;

namespace Engine.Tests.Storage;

/// <summary>
/// Random tables of every supported type, written with a plain RFC 4180 writer (quotes only where needed, random
/// delimiter, LF or CRLF, random batch size), must read back exactly; and a bad value planted anywhere must be reported
/// at the physical line the writer put it on.
/// </summary>
public sealed class CsvDataFilePropertyTests
{
    private const long MicrosPerDay = 86_400_000_000;
    private static readonly long MinMicros = (new DateTime(1000, 1, 2, 0, 0, 0, DateTimeKind.Utc).Ticks - DateTime.UnixEpoch.Ticks) / 10;
    private static readonly long MaxMicros = (new DateTime(9000, 12, 30, 0, 0, 0, DateTimeKind.Utc).Ticks - DateTime.UnixEpoch.Ticks) / 10;

    private static readonly ColumnType[] Types = [ColumnType.String, ColumnType.Int64, ColumnType.Double, ColumnType.Boolean, ColumnType.Timestamp, ColumnType.Date];

    /// <summary>One cell, holding a value for whichever type its column turns out to have.</summary>
    private sealed record Cell(bool IsNull, long Long, double Double, bool Bool, string Text, long Micros, int Style);

    private sealed record Table(ColumnType[] Types, Cell[][] Rows, char Delimiter, bool Crlf, int BatchSize)
    {
        public override string ToString() => $"types [{string.Join(", ", Types)}], {Rows.Length} rows, delimiter '{Delimiter}', crlf {Crlf}, batch {BatchSize}";
    }

    // Text from pieces that stress quoting: delimiters, quotes, CR, LF, spaces, non-ASCII and a surrogate pair.
    private static readonly Gen<string> GenText =
        Gen.OneOf("a", "Zoë", "b c", ",", ";", "|", "\t", "\"", "\r", "\n", "\r\n", " ", "😀", "#", "x\"y").Array[1, 6].Select(parts => string.Concat(parts));

    private static readonly Gen<Cell> GenCell = Gen.Select(Gen.Int[0, 9], Gen.Long, Gen.Double, Gen.Bool, GenText, Gen.Long[MinMicros, MaxMicros], Gen.Int[0, 4],
        (n, l, d, b, s, micros, style) => new Cell(n == 0, l, double.IsFinite(d) ? d : l / 3.0, b, s, micros, style));

    private static readonly Gen<Table> GenTable = Gen.OneOf(Types).Array[1, 6].SelectMany(types =>
        Gen.Select(GenCell.Array[types.Length].Array[0, 40], Gen.OneOf(',', ';', '\t', '|'), Gen.Bool, Gen.Int[1, 9],
            (rows, delimiter, crlf, batch) => new Table(types, rows, delimiter, crlf, batch)));

    private static DataSchema SchemaOf(ColumnType[] types)
    {
        var columns = new ColumnSpec[types.Length];
        for (var i = 0; i < types.Length; i++)
        {
            columns[i] = new ColumnSpec($"c{i}_{DataSchema.Describe(types[i])}", types[i]);
        }
        return new DataSchema(columns);
    }

    private static object? Expected(ColumnType type, Cell cell) => cell.IsNull ? null : type switch
    {
        ColumnType.String => cell.Text,
        ColumnType.Int64 => cell.Long,
        ColumnType.Double => cell.Double,
        ColumnType.Boolean => cell.Bool,
        ColumnType.Timestamp => cell.Micros,
        ColumnType.Date => (int)Math.Floor((decimal)cell.Micros / MicrosPerDay),
        _ => throw new NotSupportedException(),
    };

    /// <summary>The field text a typical exporter would write for the cell.</summary>
    private static string Render(ColumnType type, Cell cell)
    {
        if (cell.IsNull)
        {
            return "";
        }
        var inv = CultureInfo.InvariantCulture;
        switch (type)
        {
            case ColumnType.String:
                return cell.Text;
            case ColumnType.Int64:
                return cell.Long.ToString(inv);
            case ColumnType.Double:
                return cell.Double.ToString("R", inv);
            case ColumnType.Boolean:
                return cell.Style switch
                {
                    0 => cell.Bool ? "true" : "false",
                    1 => cell.Bool ? "1" : "0",
                    2 => cell.Bool ? "Yes" : "No",
                    3 => cell.Bool ? "T" : "f",
                    _ => cell.Bool ? "TRUE" : "FALSE",
                };
            case ColumnType.Timestamp:
                var utc = new DateTimeOffset(DateTime.UnixEpoch.Ticks + cell.Micros * 10, TimeSpan.Zero);
                return cell.Style switch
                {
                    0 => utc.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", inv),
                    1 => utc.ToString("yyyy-MM-dd HH:mm:ss.ffffff", inv),
                    2 => utc.ToOffset(TimeSpan.FromMinutes(330)).ToString("yyyy-MM-dd'T'HH:mm:ss.ffffffzzz", inv),
                    3 => utc.ToOffset(TimeSpan.FromHours(-8)).ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff", inv) + "-0800",
                    _ => utc.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", inv),
                };
            case ColumnType.Date:
                return DateOnly.FromDateTime(new DateTime(DateTime.UnixEpoch.Ticks + cell.Micros * 10, DateTimeKind.Utc)).ToString("yyyy-MM-dd", inv);
            default:
                throw new NotSupportedException();
        }
    }

    /// <summary>
    /// A minimal RFC 4180 writer: a field is quoted when it holds the delimiter, a quote, CR or LF, with quotes doubled.
    /// Returns the text and, for each row and field, the 1-based physical line the field starts on.
    /// </summary>
    private static (string Text, int[][] Lines) WriteCsv(string[] header, string[][] rows, char delimiter, bool crlf)
    {
        var newline = crlf ? "\r\n" : "\n";
        var text = new StringBuilder();
        var line = 1;
        var lines = new int[rows.Length][];
        void Field(string value)
        {
            if (value.Contains(delimiter) || value.Contains('"') || value.Contains('\r') || value.Contains('\n'))
            {
                text.Append('"').Append(value.Replace("\"", "\"\"", StringComparison.Ordinal)).Append('"');
            }
            else
            {
                text.Append(value);
            }
            line += CsvDataFile.CountLineBreaks(value);
        }
        void Row(string[] fields, int[]? starts)
        {
            for (var i = 0; i < fields.Length; i++)
            {
                if (i > 0)
                {
                    text.Append(delimiter);
                }
                if (starts is not null)
                {
                    starts[i] = line;
                }
                Field(fields[i]);
            }
            text.Append(newline);
            line++;
        }
        Row(header, null);
        for (var r = 0; r < rows.Length; r++)
        {
            lines[r] = new int[rows[r].Length];
            Row(rows[r], lines[r]);
        }
        return (text.ToString(), lines);
    }

    private static (string Text, int[][] Lines) Write(Table table, DataSchema schema, Func<int, int, string?>? overrideField = null)
    {
        var header = schema.Columns.Select(c => c.Name).ToArray();
        var rows = new string[table.Rows.Length][];
        for (var r = 0; r < rows.Length; r++)
        {
            rows[r] = new string[table.Types.Length];
            for (var c = 0; c < table.Types.Length; c++)
            {
                rows[r][c] = overrideField?.Invoke(r, c) ?? Render(table.Types[c], table.Rows[r][c]);
            }
        }
        return WriteCsv(header, rows, table.Delimiter, table.Crlf);
    }

    [Fact]
    public void Random_tables_read_back_equal()
    {
        GenTable.Sample(table =>
        {
            var schema = SchemaOf(table.Types);
            var (text, _) = Write(table, schema);
            using var dir = new TempDirectory("csv-prop");
            File.WriteAllText(dir.Combine("t.csv"), text, new UTF8Encoding(false));
            using var store = new LocalObjectStore(dir.Path);

            var batches = CsvRead.Batches(store, "t.csv", schema, new CsvReadOptions { Delimiter = table.Delimiter, BatchSize = table.BatchSize });

            Assert.Equal(table.Rows.Length, batches.Sum(b => b.Length));
            Assert.All(batches, b => Assert.True(b.Length <= table.BatchSize));
            for (var c = 0; c < table.Types.Length; c++)
            {
                var actual = CsvRead.Column(batches, c);
                for (var r = 0; r < table.Rows.Length; r++)
                {
                    var expected = Expected(table.Types[c], table.Rows[r][c]);
                    if (!Equals(expected, actual[r]))
                    {
                        Assert.Fail($"row {r}, column {c} ({table.Types[c]}): expected {Show(expected)}, read {Show(actual[r])} from field text {Show(Render(table.Types[c], table.Rows[r][c]))}");
                    }
                }
            }
        }, iter: 300);
    }

    [Fact]
    public void A_bad_value_anywhere_is_reported_at_its_physical_line()
    {
        var gen = GenTable
            .Where(t => t.Rows.Length > 0 && Array.IndexOf(t.Types, ColumnType.Int64) >= 0)
            .SelectMany(t => Gen.Int[0, t.Rows.Length - 1].Select(row => (Table: t, Row: row)));
        gen.Sample(sample =>
        {
            var (table, badRow) = sample;
            var schema = SchemaOf(table.Types);
            var badColumn = Array.IndexOf(table.Types, ColumnType.Int64);
            var (text, lines) = Write(table, schema, (r, c) => r == badRow && c == badColumn ? "12x" : null);
            using var dir = new TempDirectory("csv-prop");
            File.WriteAllText(dir.Combine("t.csv"), text, new UTF8Encoding(false));
            using var store = new LocalObjectStore(dir.Path);

            var e = Assert.Throws<DataException>(() => CsvRead.Batches(store, "t.csv", schema, new CsvReadOptions { Delimiter = table.Delimiter, BatchSize = table.BatchSize }));

            Assert.Equal($"{dir.Combine("t.csv")}:{lines[badRow][badColumn]}: column '{schema.Columns[badColumn].Name}': '12x' is not a valid int64", e.Message);
        }, iter: 200);
    }

    private static string Show(object? value) => value switch
    {
        null => "null",
        string s => $"\"{s.Replace("\r", "\\r", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal)}\"",
        _ => Convert.ToString(value, CultureInfo.InvariantCulture)!,
    };
}
