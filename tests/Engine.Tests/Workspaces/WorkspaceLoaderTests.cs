using Engine.Storage;
using Engine.TestKit;
using Engine.Workspaces;

namespace Engine.Tests.Workspaces;

public class WorkspaceLoaderTests
{
    private static TempDirectory Workspace(string root, params (string Path, string Content)[] files)
    {
        var dir = new TempDirectory("ws");
        File.WriteAllText(dir.Combine("workspace.yaml"), root);
        foreach (var (path, content) in files)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(dir.Combine(path))!);
            File.WriteAllText(dir.Combine(path), content);
        }
        return dir;
    }

    private const string Source = """
        name: crm
        description: CRM export
        location: s3://lake/crm
        format: csv
        timestamp: updated_at
        columns:
          customer_id: { type: string, required: true }
          email: string
          spend: double
          visits: int64
          vip: boolean
          birthday: date
          updated_at: timestamp
        identifiers:
          customer_id: customer_id
          email: email

        """;

    [Fact]
    public void Loads_sources_with_types_identifiers_and_defaults()
    {
        using var dir = Workspace("name: shop\nversion: 1\n", ("sources/crm.yaml", Source));
        var workspace = WorkspaceLoader.Load(dir.Path);
        Assert.Equal("shop", workspace.Name);
        Assert.Equal("output", workspace.Output);
        var crm = Assert.Single(workspace.Sources);
        Assert.Equal(DataFormat.Csv, crm.Format);
        Assert.Equal("s3://lake/crm", crm.Location);
        Assert.Equal("updated_at", crm.TimestampColumn);
        Assert.Equal(
            [ColumnType.String, ColumnType.String, ColumnType.Double, ColumnType.Int64, ColumnType.Boolean, ColumnType.Date, ColumnType.Timestamp],
            crm.Schema.Columns.Select(c => c.Type));
        Assert.True(crm.Schema.Find("customer_id")!.Required);
        Assert.False(crm.Schema.Find("email")!.Required);
        Assert.Equal("email", crm.Identifiers["email"]);
    }

    [Fact]
    public void Segments_are_read_one_file_each_and_their_names_must_match_the_file()
    {
        using var dir = Workspace("name: shop\n",
            ("sources/crm.yaml", Source),
            ("segments/vip.yaml", "name: vip\ndescription: Big spenders\ncondition: spend > 1000\n"),
            ("segments/churn.yaml", "name: churners\ndescription: x\ncondition: \"\"\n"),
            ("segments/nocond.yaml", "name: nocond\ndescription: x\n"));
        var error = Assert.Throws<WorkspaceException>(() => WorkspaceLoader.Load(dir.Path));
        Assert.Contains(error.Errors, e => e.ToString() == "segments/churn.yaml:1:7: segment name 'churners' must match its file name ('churn')");
        Assert.Contains(error.Errors, e => e.ToString() == "segments/churn.yaml:3:12: the condition is empty");
        Assert.Contains(error.Errors, e => e.ToString() == "segments/nocond.yaml:1:1: missing required key 'condition'");
        Assert.DoesNotContain(error.Errors, e => e.File == "segments/vip.yaml");
    }

    [Fact]
    public void Condition_lines_are_kept_for_later_error_positions()
    {
        using var dir = Workspace("name: shop\n",
            ("sources/crm.yaml", Source),
            ("segments/vip.yaml", "name: vip\ndescription: Big spenders\ncondition: >\n  spend > 1000\n  AND vip\n"));
        var segment = Assert.Single(WorkspaceLoader.Load(dir.Path).Segments);
        Assert.Equal(3, segment.ConditionLine);
        Assert.Equal("spend > 1000 AND vip\n", segment.Condition);
    }

    [Fact]
    public void Duplicate_source_names_and_columns_are_errors()
    {
        using var dir = Workspace("name: shop\n",
            ("sources/a.yaml", Source),
            ("sources/b.yaml", Source),
            ("sources/c.yaml", Source.Replace("name: crm", "name: crm2", StringComparison.Ordinal).Replace("  vip: boolean\n", "  vip: boolean\n  email: string\n", StringComparison.Ordinal)));
        var error = Assert.Throws<WorkspaceException>(() => WorkspaceLoader.Load(dir.Path));
        Assert.Contains(error.Errors, e => e.ToString() == "sources/b.yaml: source 'crm' is already defined in sources/a.yaml");
        Assert.Contains(error.Errors, e => e.ToString() == "sources/c.yaml:12:3: invalid YAML: Duplicate key email");
    }

    [Fact]
    public void Identifier_and_timestamp_columns_must_have_the_right_types()
    {
        var source = Source.Replace("timestamp: updated_at", "timestamp: spend", StringComparison.Ordinal)
            .Replace("  email: email\n", "  email: email\n  visits: visit_id\n", StringComparison.Ordinal);
        using var dir = Workspace("name: shop\n", ("sources/crm.yaml", source));
        var error = Assert.Throws<WorkspaceException>(() => WorkspaceLoader.Load(dir.Path));
        Assert.Contains(error.Errors, e => e.Message == "timestamp column 'spend' is declared double; it must be a timestamp");
        Assert.Contains(error.Errors, e => e.Message == "identifier column 'visits' is declared int64; identifiers must be string columns");
    }

    [Fact]
    public void A_workspace_without_sources_says_what_to_add()
    {
        using var dir = Workspace("name: shop\n");
        var error = Assert.Throws<WorkspaceException>(() => WorkspaceLoader.Load(dir.Path));
        Assert.Equal("sources/: no sources defined: add a file such as sources/events.yaml", error.Message);
    }

    [Fact]
    public void An_unsupported_workspace_version_is_refused()
    {
        using var dir = Workspace("name: shop\nversion: 2\n", ("sources/crm.yaml", Source));
        var error = Assert.Throws<WorkspaceException>(() => WorkspaceLoader.Load(dir.Path));
        Assert.Equal("workspace.yaml:2:10: unsupported workspace version '2' (this engine reads version 1)", error.Message);
    }

    [Theory]
    [InlineData("colums", "columns")]
    [InlineData("identifers", "identifiers")]
    [InlineData("Location", "location")]
    [InlineData("zzz", null)]
    public void Suggestions_catch_typos_but_not_unrelated_names(string typed, string? expected)
        => Assert.Equal(expected, Suggestions.Nearest(typed, ["name", "columns", "identifiers", "location", "format"]));
}
