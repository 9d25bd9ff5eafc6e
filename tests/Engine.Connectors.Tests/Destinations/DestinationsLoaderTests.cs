using Engine.Connectors.Destinations;
using Engine.TestKit;
using Engine.Workspaces;

namespace Engine.Connectors.Tests.Destinations;

public sealed class DestinationsLoaderTests
{
    private const string Source = """
        name: crm
        location: data/crm
        format: parquet
        timestamp: updated_at
        columns:
          customer_id: string
          email: string
          tier: string
          updated_at: timestamp
        identifiers:
          customer_id: customer_id
          email: email
        """;

    private const string Consent = """
        name: consent
        location: data/consent
        format: parquet
        timestamp: ts
        columns:
          identifier_type: string
          identifier_value: string
          channel: string
          status: string
          ts: timestamp
        """;

    private static TempDirectory Workspace(bool consent = true)
    {
        var dir = new TempDirectory("destinations");
        void Write(string path, string text)
        {
            var full = dir.Combine(path);
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            File.WriteAllText(full, text);
        }
        Write("workspace.yaml", "name: shop\nversion: 1\n");
        Write("identity.yaml", "identifier_types:\n  customer_id: { normalizer: id }\n  email: { normalizer: email }\n");
        Write("sources/crm.yaml", Source);
        if (consent)
        {
            Write("sources/consent.yaml", Consent);
        }
        Write("profiles.yaml", "attributes:\n  - { source: crm, columns: [tier] }\n");
        Write("segments/vip.yaml", "name: vip\ndescription: gold\ncondition: tier = 'gold'\n");
        return dir;
    }

    [Fact]
    public void A_valid_destination_loads_with_the_type_defaults()
    {
        using var dir = Workspace();
        File.WriteAllText(dir.Combine("destinations", "ads.yaml").EnsureFolder(), """
            name: ads
            type: meta_custom_audiences
            segments: [vip]
            settings: { audience_id: "123" }
            credentials: { access_token: META_TOKEN }
            """);
        var configuration = DestinationsLoader.Load(WorkspaceLoader.Load(dir.Path));
        var ads = Assert.Single(configuration.Destinations);
        Assert.Equal(DestinationType.MetaCustomAudiences, ads.Type);
        Assert.Equal(10_000, ads.BatchSize);
        Assert.Equal("ads", ads.Channel);
        Assert.Equal(ConsentRule.Required, ads.Consent);
        Assert.Equal(["email"], ads.IdentifyBy);
        Assert.Equal("consent", configuration.Settings.ConsentSource);
        Assert.Equal("META_TOKEN", ads.Credentials["access_token"]);
    }

    [Fact]
    public void Every_mistake_is_reported_at_its_line_and_column()
    {
        using var dir = Workspace();
        string[] lines =
        [
            /* 1 */ "name: hooks",
            /* 2 */ "type: webhok",
            /* 3 */ "segments: [vip, vipp]",
            /* 4 */ "mode: mirrror",
            /* 5 */ "channel: fax",
            /* 6 */ "identify_by: [emial]",
            /* 7 */ "fields: { level: teir }",
            /* 8 */ "batch_size: 0",
            /* 9 */ "credentials: { secret: my-Secret-Value }",
            /* 10 */ "quiet_hours: { start: '25:00', end: '08:00' }",
            /* 11 */ "colour: blue",
        ];
        File.WriteAllText(dir.Combine("destinations", "hooks.yaml").EnsureFolder(), string.Join("\n", lines) + "\n");
        var error = Assert.Throws<WorkspaceException>(() => DestinationsLoader.Load(WorkspaceLoader.Load(dir.Path)));
        var reported = error.Errors.Select(e => e.ToString()).ToList();
        (int Line, string Token, string Message)[] expected =
        [
            (2, "webhok", "unknown destination type 'webhok' (did you mean 'webhook'?)"),
            (3, "vipp", "unknown segment 'vipp' (did you mean 'vip'?)"),
            (4, "mirrror", "unknown mode 'mirrror' (did you mean 'mirror'?)"),
            (5, "fax", "unknown channel 'fax'"),
            (6, "emial", "unknown identifier type 'emial' (known: customer_id, email)"),
            (7, "teir", "unknown profile column 'teir' (known: profile_id, tier)"),
            (8, "0", "'0' is not a whole number from 1"),
            (9, "my-Secret-Value", "credentials name environment variables"),
            (10, "'25:00'", "is not a time of day such as 21:00"),
            (11, "colour", "unknown key 'colour'"),
        ];
        foreach (var (line, token, message) in expected)
        {
            var where = $"destinations/hooks.yaml:{line}:{lines[line - 1].IndexOf(token, StringComparison.Ordinal) + 1}: ";
            Assert.True(reported.Exists(r => r.StartsWith(where, StringComparison.Ordinal) && r.Contains(message, StringComparison.Ordinal)),
                $"expected '{where}{message}' among:\n{string.Join("\n", reported)}");
        }
        // The secret itself is never echoed.
        Assert.DoesNotContain(reported, r => r.Contains("my-Secret-Value", StringComparison.Ordinal));
    }

    [Fact]
    public void Consent_without_a_consent_source_and_a_missing_setting_are_errors()
    {
        using var dir = Workspace(consent: false);
        File.WriteAllText(dir.Combine("destinations", "mail.yaml").EnsureFolder(), """
            name: mail
            type: webhook
            segments: [vip]
            channel: email
            credentials: { secret: HOOK_SECRET }
            """);
        var error = Assert.Throws<WorkspaceException>(() => DestinationsLoader.Load(WorkspaceLoader.Load(dir.Path)));
        Assert.Contains(error.Errors, e => e.Message.Contains("no consent source", StringComparison.Ordinal));
        Assert.Contains(error.Errors, e => e.Message.Contains("needs setting 'url'", StringComparison.Ordinal));
    }
}

internal static class PathExtensions
{
    /// <summary>Creates the file's folder; returns the path.</summary>
    public static string EnsureFolder(this string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        return path;
    }
}
