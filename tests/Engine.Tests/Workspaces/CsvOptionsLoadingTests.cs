using System.Text;
using Engine.Ingest;
using Engine.Storage;
using Engine.Tests.Storage;
using Engine.TestKit;
using Engine.Workspaces;
using Microsoft.Extensions.Logging.Abstractions;

namespace Engine.Tests.Workspaces;

/// <summary>A source file's <c>csv:</c> mapping: what it loads into, each error at its file:line:column, and its use by ingest.</summary>
public class CsvOptionsLoadingTests
{
    private static string Source(string csv, string format = "format: csv\n") => $$"""
        name: people
        location: data/people.csv
        {{format}}columns:
          id: { type: int64, required: true }
          name: string
          seen: timestamp
          born: date
        {{csv}}
        """;

    private static TempDirectory Workspace(string source)
    {
        var dir = new TempDirectory("ws");
        File.WriteAllText(dir.Combine("workspace.yaml"), "name: shop\n");
        Directory.CreateDirectory(dir.Combine("sources"));
        File.WriteAllText(dir.Combine("sources/people.yaml"), source);
        return dir;
    }

    private static SourceDefinition Load(string source)
    {
        using var dir = Workspace(source);
        return Assert.Single(WorkspaceLoader.Load(dir.Path).Sources);
    }

    private static List<string> Errors(string source)
    {
        using var dir = Workspace(source);
        var error = Assert.Throws<WorkspaceException>(() => WorkspaceLoader.Load(dir.Path));
        return [.. error.Errors.Select(e => e.ToString())];
    }

    [Fact]
    public void Every_csv_key_is_loaded_into_the_read_options()
    {
        var source = Load(Source("""
            csv:
              delimiter: ";"
              header: false
              quote: "'"
              skip_lines: 2
              null_values: ["", "NA"]
              timestamp_formats: ["dd/MM/yyyy HH:mm", "dd/MM/yyyy"]
              date_formats: dd.MM.yyyy
              encoding: latin1

            """));
        var csv = Assert.IsType<CsvReadOptions>(source.Csv);
        Assert.Equal(';', csv.Delimiter);
        Assert.False(csv.HasHeader);
        Assert.Equal('\'', csv.Quote);
        Assert.Equal(2, csv.SkipLines);
        Assert.Equal(["", "NA"], csv.NullValues);
        Assert.Equal(["dd/MM/yyyy HH:mm", "dd/MM/yyyy"], csv.TimestampFormats);
        Assert.Equal(["dd.MM.yyyy"], csv.DateFormats);
        Assert.Equal(Encoding.Latin1.CodePage, csv.Encoding.CodePage);
        // What is not set keeps its default.
        Assert.Equal(CsvReadOptions.Default.BatchSize, csv.BatchSize);

        // Without a header, scans get the declared columns as the file's field names (see the projection test below).
        Assert.Null(csv.ColumnNames);
        var scan = source.ScanOptions(3);
        Assert.Equal(3, scan.Parallelism);
        Assert.Equal(["id", "name", "seen", "born"], scan.Csv!.ColumnNames);
        Assert.Equal(csv with { ColumnNames = scan.Csv.ColumnNames }, scan.Csv);
    }

    [Fact]
    public void Without_a_csv_mapping_the_defaults_apply_and_auto_detects_the_delimiter()
    {
        var plain = Load(Source(""));
        Assert.Null(plain.Csv);
        Assert.Null(plain.ScanOptions(2).Csv);

        var auto = Load(Source("csv: { delimiter: auto, null_values: [] }\n"));
        Assert.Same(auto.Csv, auto.ScanOptions(1).Csv);
        Assert.Null(auto.Csv!.Delimiter);
        Assert.Empty(auto.Csv.NullValues);
        Assert.True(auto.Csv.HasHeader);

        var tab = Load(Source("csv: { delimiter: \"\\t\", encoding: UTF-8 }\n"));
        Assert.Equal('\t', tab.Csv!.Delimiter);
        Assert.Same(CsvReadOptions.Default.Encoding, tab.Csv.Encoding);
        Assert.Equal(1252, Load(Source("csv: { encoding: windows-1252 }\n")).Csv!.Encoding.CodePage);
    }

    [Theory]
    [InlineData("csv:\n  delimeter: \";\"\n", "sources/people.yaml:10:3: unknown key 'delimeter' (did you mean 'delimiter'?)")]
    [InlineData("csv:\n  skiplines: 1\n", "sources/people.yaml:10:3: unknown key 'skiplines' (did you mean 'skip_lines'?)")]
    [InlineData("csv: { delimiter: \";;\" }\n", "sources/people.yaml:9:19: 'delimiter' must be one character, or auto to detect it from the first line, not ';;'")]
    [InlineData("csv: { delimiter: '\\t' }\n", "sources/people.yaml:9:19: 'delimiter' must be one character, or auto to detect it from the first line, not '\\t': for a tab write \"\\t\" in double quotes")]
    [InlineData("csv: { delimiter: \"\" }\n", "sources/people.yaml:9:19: 'delimiter' must be one character, or auto to detect it from the first line, not '': write it in quotes, such as \"|\"")]
    [InlineData("csv: { delimiter: \"\\n\" }\n", "sources/people.yaml:9:19: 'delimiter' must be one character, or auto to detect it from the first line, not '\\n': a line break cannot be one")]
    [InlineData("csv: { quote: \"''\" }\n", "sources/people.yaml:9:15: 'quote' must be one character, not ''''")]
    [InlineData("csv: { delimiter: \"'\", quote: \"'\" }\n", "sources/people.yaml:9:31: the delimiter and the quote must differ (both are ''')")]
    [InlineData("csv: { delimiter: '\"' }\n", "sources/people.yaml:9:19: the delimiter and the quote must differ (both are '\"')")]
    [InlineData("csv: { header: yes }\n", "sources/people.yaml:9:16: 'header' must be true or false, not 'yes'")]
    [InlineData("csv: { skip_lines: -1 }\n", "sources/people.yaml:9:20: 'skip_lines' must be a whole number of at least 0, not '-1'")]
    [InlineData("csv: { skip_lines: [1] }\n", "sources/people.yaml:9:20: 'skip_lines' must be a single value")]
    [InlineData("csv: { null_values: { a: b } }\n", "sources/people.yaml:9:21: expected a list of values, such as [\"a\", \"b\"]")]
    [InlineData("csv: { null_values: [[NA]] }\n", "sources/people.yaml:9:22: expected a single value in this list")]
    [InlineData("csv: { timestamp_formats: [\"yyyy-MM-dd'T\"] }\n", "sources/people.yaml:9:28: 'yyyy-MM-dd'T' is not a timestamp format (.NET custom format strings, such as dd/MM/yyyy HH:mm)")]
    [InlineData("csv: { date_formats: [\"dd/MM/yyyy HH:mm\"] }\n", "sources/people.yaml:9:23: 'dd/MM/yyyy HH:mm' is not a date format (.NET custom format strings, such as dd/MM/yyyy)")]
    [InlineData("csv: { date_formats: [\"\"] }\n", "sources/people.yaml:9:23: '' is not a date format (.NET custom format strings, such as dd/MM/yyyy)")]
    [InlineData("csv: { encoding: utf-9 }\n", "sources/people.yaml:9:18: unknown encoding 'utf-9' (did you mean 'utf-8'?)")]
    [InlineData("csv: 1\n", "sources/people.yaml:9:6: 'csv' must be a mapping (key: value lines indented below it)")]
    public void Each_bad_csv_value_is_an_error_at_its_position(string csv, string expected)
        => Assert.Equal([expected], Errors(Source(csv)));

    [Fact]
    public void Csv_options_on_a_parquet_source_are_an_error()
    {
        Assert.Equal(
            ["sources/people.yaml:9:1: 'csv' options apply to CSV sources only, and this source's format is parquet"],
            Errors(Source("csv: { delimiter: \";\" }\n", format: "format: parquet\n")));
        Assert.Equal(
            ["sources/people.yaml:8:1: 'csv' options apply to CSV sources only: add 'format: csv' (without it a source is parquet)"],
            Errors(Source("csv: { delimiter: \";\" }\n", format: "")));
        // An unknown format is reported once, not again as a format the options do not fit.
        Assert.Equal(
            ["sources/people.yaml:3:9: unknown format 'xlsx' (expected parquet or csv)"],
            Errors(Source("csv: { delimiter: \";\" }\n", format: "format: xlsx\n")));
    }

    [Fact]
    public void Every_error_in_one_csv_mapping_is_reported_together()
    {
        var errors = Errors(Source("""
            csv:
              delimiter: ab
              header: 1
              skip_lines: x
              colour: red

            """));
        Assert.Equal(4, errors.Count);
        Assert.Contains("sources/people.yaml:13:3: unknown key 'colour' (known: delimiter, header, quote, skip_lines, null_values, timestamp_formats, date_formats, encoding)", errors);
    }

    [Fact]
    public async Task Ingest_reads_the_source_with_its_csv_options()
    {
        using var dir = Workspace(Source("""
            csv:
              delimiter: ";"
              header: false
              skip_lines: 1
              null_values: ["", "NA"]
              timestamp_formats: ["dd/MM/yyyy HH:mm"]
              date_formats: ["dd.MM.yyyy"]

            """));
        CsvRead.Write(dir.Combine("data/people.csv"),
            "id;name;seen;born;a wrong header with more fields\n1;Ann;01/03/2024 10:00;31.01.1990\n2;NA;NA;\n3;Cy;2024-03-02;01.02.2000\n");
        var workspace = WorkspaceLoader.Load(dir.Path);
        using var storage = new StorageResolver();
        var result = await new IngestStage(storage, NullLogger.Instance).RunAsync(workspace, cancellationToken: TestContext.Current.CancellationToken);
        var people = Assert.Single(result.Sources);
        Assert.Equal(3, people.Rows);
        Assert.Equal(1, people.NullCounts["name"]);
        Assert.Equal(1, people.NullCounts["seen"]);
        Assert.Equal(1, people.NullCounts["born"]);

        // A bad value is reported at the file's own line, the skipped line counted.
        CsvRead.Write(dir.Combine("data/people.csv"), "header\n1;Ann;01/03/2024 10:00;31.01.1990\n2;Bo;tomorrow;\n");
        var e = await Assert.ThrowsAsync<DataException>(() => new IngestStage(storage, NullLogger.Instance).RunAsync(workspace, cancellationToken: TestContext.Current.CancellationToken));
        Assert.Equal($"{dir.Combine("data/people.csv")}:3: column 'seen': 'tomorrow' is not a valid timestamp", e.Message);
    }

    [Fact]
    public async Task A_scan_of_some_columns_of_a_headerless_source_finds_each_at_its_position()
    {
        // What identity does: read only the identifier columns, here the second and fourth of a header-less file.
        using var dir = Workspace(Source("csv: { header: false }\n"));
        CsvRead.Write(dir.Combine("data/people.csv"), "1,Ann,,1990-01-31\n2,Bo,,2000-02-29\n");
        var source = WorkspaceLoader.Load(dir.Path).Sources[0];
        using var storage = new StorageResolver();
        var dataset = await Dataset.OpenAsync(storage.Resolve(source.Location, dir.Path), source.Format, TestContext.Current.CancellationToken);
        var columns = new[] { source.Schema.Find("name")!, source.Schema.Find("born")! };
        var batches = DatasetScan.Run(dataset, columns, () => new List<object?[]>(), (rows, scan) =>
        {
            for (var i = 0; i < scan.Batch.Length; i++)
            {
                rows.Add([CsvRead.Value(scan.Batch.Column(0), i), CsvRead.Value(scan.Batch.Column(1), i)]);
            }
        }, source.ScanOptions(1), TestContext.Current.CancellationToken);
        var rows = Assert.Single(batches);
        Assert.Equal("Ann", rows[0][0]);
        Assert.Equal(new DateOnly(2000, 2, 29).DayNumber - new DateOnly(1970, 1, 1).DayNumber, rows[1][1]);
    }
}
