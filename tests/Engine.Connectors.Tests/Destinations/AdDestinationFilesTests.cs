using Engine.Connectors.Destinations;
using Engine.TestKit;
using Engine.Workspaces;

namespace Engine.Connectors.Tests.Destinations;

/// <summary>The ad destinations' files: what <c>destinations/&lt;name&gt;.yaml</c> may and must say.</summary>
public sealed class AdDestinationFilesTests
{
    private static Workspace Workspace(TempDirectory dir, params (string File, string Yaml)[] files)
    {
        Directory.CreateDirectory(dir.Combine("destinations"));
        foreach (var (file, yaml) in files)
        {
            File.WriteAllText(dir.Combine("destinations", file), yaml);
        }
        return new Workspace(dir.Path, "ws", "output", [],
            [new SegmentDefinition { Name = "vip", File = "segments/vip.yaml", Description = "", Condition = "true" }]);
    }

    [Fact]
    public void Google_takes_a_login_customer_id_and_a_developer_token_but_needs_neither()
    {
        using var dir = new TempDirectory("ad-files");
        var workspace = Workspace(dir,
            ("google.yaml", """
                name: google
                type: google_customer_match
                segments: [vip]
                consent: none
                settings: { customer_id: "123-456-7890", user_list_id: "5551234", login_customer_id: "987-654-3210" }
                credentials: { access_token: GOOGLE_ADS_ACCESS_TOKEN, developer_token: GOOGLE_ADS_DEVELOPER_TOKEN }
                """),
            ("google_plain.yaml", """
                name: google_plain
                type: google_customer_match
                segments: [vip]
                consent: none
                settings: { customer_id: "1234567890", user_list_id: "5551234" }
                credentials: { access_token: GOOGLE_ADS_ACCESS_TOKEN }
                """),
            ("meta.yaml", """
                name: meta
                type: meta_custom_audiences
                segments: [vip]
                consent: none
                settings: { audience_id: "23851234567890123" }
                credentials: { access_token: META_ACCESS_TOKEN }
                """));

        var configuration = DestinationsLoader.Load(workspace);

        var google = configuration.Find("google")!;
        Assert.Equal("987-654-3210", google.Setting("login_customer_id"));
        Assert.Equal("GOOGLE_ADS_DEVELOPER_TOKEN", google.Credentials["developer_token"]);
        Assert.Equal(["email", "phone"], google.IdentifyBy);
        Assert.Equal(100_000, google.BatchSize);
        Assert.False(configuration.Find("google_plain")!.Credentials.ContainsKey("developer_token"));
        Assert.Equal(10_000, configuration.Find("meta")!.BatchSize);
    }

    [Fact]
    public void Meta_refuses_more_users_per_request_than_Meta_takes_and_credentials_it_does_not_know()
    {
        using var dir = new TempDirectory("ad-files");
        var workspace = Workspace(dir, ("meta.yaml", """
            name: meta
            type: meta_custom_audiences
            segments: [vip]
            consent: none
            batch_size: 20000
            settings: { audience_id: "23851234567890123" }
            credentials: { access_token: META_ACCESS_TOKEN, developer_token: META_DEVELOPER_TOKEN }
            """));

        var failure = Assert.Throws<WorkspaceException>(() => DestinationsLoader.Load(workspace));

        Assert.Equal(2, failure.Errors.Count);
        Assert.Contains("at most 10,000 records per request", failure.Errors[0].ToString(), StringComparison.Ordinal);
        Assert.Contains("unknown credential 'developer_token'", failure.Errors[1].ToString(), StringComparison.Ordinal);
    }
}
