using Engine.Identity;
using Engine.TestKit;
using Engine.Workspaces;

namespace Engine.Cli.Tests;

/// <summary>`engine init` and `engine validate`.</summary>
public class WorkspaceCommandTests
{
    [Fact]
    public async Task Init_writes_a_workspace_that_validates()
    {
        using var dir = new TempDirectory("init");
        var folder = dir.Combine("my-project");
        var (code, output, error) = await CliHarness.RunAsync("init", folder);
        Assert.True(code == 0, error);
        Assert.Contains("sources/events.yaml", output, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(folder, "segments", "loyal_members.yaml")));

        (code, output, error) = await CliHarness.RunAsync("validate", "--workspace", folder);
        Assert.True(code == 0, error);
        Assert.Contains("Workspace 'my_project' is valid: 3 source(s), 9 segment(s), 4 attribute(s), 21 trait(s), 1 model(s), 2 destination(s).", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Init_writes_identity_rules_that_use_the_crm_names()
    {
        using var dir = new TempDirectory("init");
        Assert.Equal(0, (await CliHarness.RunAsync("init", dir.Path)).ExitCode);
        Assert.True(File.Exists(Path.Combine(dir.Path, IdentityRules.FileName)));
        var workspace = WorkspaceLoader.Load(dir.Path);
        var rules = workspace.Identity;
        (string, NormalizerKind, int?, int?)[] expected =
        [
            ("customer_id", NormalizerKind.Id, 2, null),
            ("name_postcode", NormalizerKind.Composite, 1, null),
            ("email", NormalizerKind.Email, 5, null),
            ("phone", NormalizerKind.Phone, 3, null),
            ("anonymous_id", NormalizerKind.Id, null, 1),
        ];
        Assert.Equal(expected, rules.Types.Select(t => (t.Name, t.Kind, t.Limit, t.SharedAfter)));
        Assert.True(rules.Find("email")!.Blocklist.IsBlocked("test@test.com"u8));
        var profiles = workspace.Sources.Single(s => s.Name == "profiles");
        Assert.Equal(["first_name", "last_name", "postcode"], profiles.CompositeIdentifiers["name_postcode"]);
        // The built-in rules (no identity.yaml) differ only where the names are needed.
        Assert.Equal(
            IdentityRules.Default.Types.Select(t => (t.Name, t.Kind, t.Limit, t.SharedAfter)),
            rules.Types.Where(t => t.Name != "name_postcode").Select(t => (t.Name, t.Kind, t.Name == "customer_id" ? 1 : t.Limit, t.SharedAfter)));

        // The commented examples are valid when uncommented.
        var path = Path.Combine(dir.Path, IdentityRules.FileName);
        var text = await File.ReadAllTextAsync(path, TestContext.Current.CancellationToken);
        text = text.Replace("  # email: [", "  email: [", StringComparison.Ordinal)
            .Replace("  # patterns:", "  patterns:", StringComparison.Ordinal);
        await File.WriteAllTextAsync(path, text, TestContext.Current.CancellationToken);
        rules = WorkspaceLoader.Load(dir.Path).Identity;
        Assert.True(rules.Find("email")!.Blocklist.IsBlocked("orders@example-shop.com"u8));
        Assert.True(rules.Find("email")!.Blocklist.IsBlocked("ann@example-shop.com"u8));
        Assert.False(rules.Find("email")!.Blocklist.IsBlocked("ann@example-shopxcom"u8));
    }

    [Fact]
    public async Task Init_with_a_webhook_adds_a_destination_that_posts_there_and_names_its_secret_variable()
    {
        using var dir = new TempDirectory("init");
        var (code, _, error) = await CliHarness.RunAsync("init", dir.Path, "--webhook", "http://127.0.0.1:9/hooks/engine");
        Assert.True(code == 0, error);
        var yaml = await File.ReadAllTextAsync(Path.Combine(dir.Path, "destinations", "messaging_webhook.yaml"), TestContext.Current.CancellationToken);
        Assert.Contains("settings: { url: \"http://127.0.0.1:9/hooks/engine\" }", yaml, StringComparison.Ordinal);
        Assert.Contains("credentials: { secret: MESSAGING_WEBHOOK_SECRET }", yaml, StringComparison.Ordinal);
        (code, var output, error) = await CliHarness.RunAsync("validate", "--workspace", dir.Path);
        Assert.True(code == 0, error);
        Assert.Contains("3 destination(s)", output, StringComparison.Ordinal);

        // Not a URL: refused before anything is written.
        using var other = new TempDirectory("init");
        (code, _, error) = await CliHarness.RunAsync("init", other.Path, "--webhook", "127.0.0.1:9");
        Assert.Equal(2, code);
        Assert.Contains("--webhook must be an http:// or https:// URL", error, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(other.Path, "workspace.yaml")));
    }

    [Fact]
    public async Task Init_refuses_to_overwrite_without_force()
    {
        using var dir = new TempDirectory("init");
        Assert.Equal(0, (await CliHarness.RunAsync("init", dir.Path)).ExitCode);
        var (code, _, error) = await CliHarness.RunAsync("init", dir.Path);
        Assert.Equal(1, code);
        Assert.Contains("a workspace already exists", error, StringComparison.Ordinal);
        Assert.Equal(0, (await CliHarness.RunAsync("init", dir.Path, "--force")).ExitCode);
    }

    [Fact]
    public async Task Init_points_sources_at_the_data_path()
    {
        using var dir = new TempDirectory("init");
        Assert.Equal(0, (await CliHarness.RunAsync("init", dir.Path, "--data", "s3://lake/crm")).ExitCode);
        var events = await File.ReadAllTextAsync(Path.Combine(dir.Path, "sources", "events.yaml"), TestContext.Current.CancellationToken);
        Assert.Contains("location: s3://lake/crm/events", events, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Validate_reports_every_error_with_file_line_and_column()
    {
        using var ws = new SmallWorkspace("""
            name: events
            location: data/events
            colums: {}
            columns:
              event_id: strng
              ts: { type: timestamp, required: maybe }
            identifiers:
              emial: email
            timestamp: ts

            """);
        var (code, output, error) = await CliHarness.RunAsync("validate", "--workspace", ws.Path);
        Assert.Equal(1, code);
        Assert.Equal("", output);
        var lines = error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains("error: sources/events.yaml:3:1: unknown key 'colums' (did you mean 'columns'?)", lines);
        Assert.Contains("error: sources/events.yaml:5:13: unknown column type 'strng' (known: string, int64, double, boolean, timestamp, date)", lines);
        Assert.Contains("error: sources/events.yaml:6:36: 'required' must be true or false, not 'maybe'", lines);
        Assert.Contains("error: sources/events.yaml:8:3: identifier column 'emial' is not among the declared columns", lines);
    }

    [Fact]
    public async Task Invalid_yaml_is_reported_at_its_line()
    {
        using var ws = new SmallWorkspace("name: events\nlocation: [unclosed\ncolumns:\n  a: string\n");
        var (code, _, error) = await CliHarness.RunAsync("validate", "--workspace", ws.Path);
        Assert.Equal(1, code);
        Assert.Matches(@"^error: sources/events\.yaml:\d+:\d+: invalid YAML: ", error);
    }

    [Fact]
    public async Task A_folder_without_workspace_yaml_is_not_a_workspace()
    {
        using var dir = new TempDirectory("empty");
        var (code, _, error) = await CliHarness.RunAsync("validate", "--workspace", dir.Path);
        Assert.Equal(1, code);
        Assert.Contains("workspace.yaml is missing", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unknown_storage_scheme_is_a_validation_error()
    {
        using var ws = new SmallWorkspace(SmallDatasets.EventsSourceYaml.Replace("location: data/events", "location: gs://bucket/events", StringComparison.Ordinal));
        var (code, _, error) = await CliHarness.RunAsync("validate", "--workspace", ws.Path);
        Assert.Equal(1, code);
        Assert.Contains("unsupported storage scheme 'gs://'", error, StringComparison.Ordinal);
    }
}
