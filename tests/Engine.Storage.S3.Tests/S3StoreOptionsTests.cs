using Amazon.Runtime;
using Engine.Storage.S3;

namespace Engine.Storage.S3.Tests;

/// <summary>Configuration from the standard AWS variables, resolved from a dictionary instead of the process environment.</summary>
public sealed class S3StoreOptionsTests
{
    private static S3StoreOptions Resolve(Dictionary<string, string> variables, Func<string, string?>? profileRegion = null)
        => S3StoreOptions.FromEnvironment(variables, profileRegion);

    [Fact]
    public void No_variables_means_AWS_S3_in_us_east_1_with_the_default_credential_chain()
    {
        var options = Resolve([]);
        Assert.Null(options.Endpoint);
        Assert.Equal("us-east-1", options.Region);
        Assert.False(options.UsePathStyle);
        Assert.Null(options.AccessKey);
        Assert.Null(options.SecretKey);
        Assert.Null(options.Profile);
        Assert.Contains("credentials=default chain", options.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void The_S3_specific_endpoint_wins_over_the_general_one_and_implies_path_style()
    {
        var general = Resolve(new() { ["AWS_ENDPOINT_URL"] = "http://127.0.0.1:9000" });
        Assert.Equal(new Uri("http://127.0.0.1:9000"), general.Endpoint);
        Assert.True(general.UsePathStyle);

        var specific = Resolve(new() { ["AWS_ENDPOINT_URL"] = "http://general:9000", ["AWS_ENDPOINT_URL_S3"] = "https://minio.internal:9443" });
        Assert.Equal(new Uri("https://minio.internal:9443"), specific.Endpoint);
        Assert.True(specific.UsePathStyle);
    }

    [Fact]
    public void The_addressing_style_variable_overrides_the_default()
    {
        Assert.False(Resolve(new() { ["AWS_ENDPOINT_URL"] = "http://localhost:9000", ["AWS_S3_ADDRESSING_STYLE"] = "virtual" }).UsePathStyle);
        Assert.True(Resolve(new() { ["AWS_S3_ADDRESSING_STYLE"] = "Path" }).UsePathStyle);
        Assert.True(Resolve(new() { ["AWS_ENDPOINT_URL"] = "http://localhost:9000", ["AWS_S3_ADDRESSING_STYLE"] = "auto" }).UsePathStyle);

        var error = Assert.Throws<EngineException>(() => Resolve(new() { ["AWS_S3_ADDRESSING_STYLE"] = "sideways" }));
        Assert.Contains("AWS_S3_ADDRESSING_STYLE", error.Message, StringComparison.Ordinal);
        Assert.Contains("sideways", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Region_comes_from_AWS_REGION_then_AWS_DEFAULT_REGION_then_the_profile()
    {
        Assert.Equal("eu-west-1", Resolve(new() { ["AWS_REGION"] = "eu-west-1", ["AWS_DEFAULT_REGION"] = "eu-central-1" }).Region);
        Assert.Equal("eu-central-1", Resolve(new() { ["AWS_DEFAULT_REGION"] = "eu-central-1" }).Region);

        string? asked = null;
        var fromProfile = Resolve(new() { ["AWS_PROFILE"] = "analytics" }, profile =>
        {
            asked = profile;
            return "ap-southeast-2";
        });
        Assert.Equal("analytics", asked);
        Assert.Equal("ap-southeast-2", fromProfile.Region);
        Assert.Equal("analytics", fromProfile.Profile);
        Assert.Contains("credentials=profile analytics", fromProfile.ToString(), StringComparison.Ordinal);

        Resolve([], profile =>
        {
            asked = profile;
            return null;
        });
        Assert.Equal("default", asked);
    }

    [Fact]
    public void Explicit_keys_and_session_token_are_read_and_never_printed()
    {
        var options = Resolve(new()
        {
            ["AWS_ACCESS_KEY_ID"] = "AKIAEXAMPLEKEY",
            ["AWS_SECRET_ACCESS_KEY"] = "very-secret-value",
            ["AWS_SESSION_TOKEN"] = "session-token-value",
        });
        Assert.Equal("AKIAEXAMPLEKEY", options.AccessKey);
        Assert.Equal("very-secret-value", options.SecretKey);
        Assert.Equal("session-token-value", options.SessionToken);
        var printed = options.ToString();
        Assert.DoesNotContain("very-secret-value", printed, StringComparison.Ordinal);
        Assert.DoesNotContain("session-token-value", printed, StringComparison.Ordinal);
        Assert.DoesNotContain("AKIAEXAMPLEKEY", printed, StringComparison.Ordinal);
        Assert.Contains("AKIA****", printed, StringComparison.Ordinal);
    }

    [Fact]
    public void Half_a_key_pair_or_a_bad_endpoint_is_an_error_naming_the_variable()
    {
        var secretOnly = Assert.Throws<EngineException>(() => Resolve(new() { ["AWS_SECRET_ACCESS_KEY"] = "x" }));
        Assert.Contains("AWS_ACCESS_KEY_ID", secretOnly.Message, StringComparison.Ordinal);
        var keyOnly = Assert.Throws<EngineException>(() => Resolve(new() { ["AWS_ACCESS_KEY_ID"] = "x" }));
        Assert.Contains("AWS_SECRET_ACCESS_KEY", keyOnly.Message, StringComparison.Ordinal);

        var badEndpoint = Assert.Throws<EngineException>(() => Resolve(new() { ["AWS_ENDPOINT_URL_S3"] = "localhost:9000" }));
        Assert.Contains("AWS_ENDPOINT_URL_S3", badEndpoint.Message, StringComparison.Ordinal);
        var ftp = Assert.Throws<EngineException>(() => Resolve(new() { ["AWS_ENDPOINT_URL"] = "ftp://user:pw@host/" }));
        Assert.Contains("AWS_ENDPOINT_URL", ftp.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("pw", ftp.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Empty_variables_count_as_unset()
    {
        var options = Resolve(new() { ["AWS_ENDPOINT_URL_S3"] = "", ["AWS_ENDPOINT_URL"] = "http://127.0.0.1:4568", ["AWS_REGION"] = " " });
        Assert.Equal(new Uri("http://127.0.0.1:4568"), options.Endpoint);
        Assert.Equal("us-east-1", options.Region);
    }

    [Fact]
    public void A_custom_endpoint_configures_path_style_signing_region_and_plain_checksums()
    {
        var config = S3ObjectStore.CreateConfig(new S3StoreOptions { Endpoint = new Uri("http://127.0.0.1:4568"), Region = "eu-west-1" });
        Assert.True(config.ForcePathStyle);
        Assert.StartsWith("http://127.0.0.1:4568", config.ServiceURL, StringComparison.Ordinal);
        Assert.Equal("eu-west-1", config.AuthenticationRegion);
        Assert.Equal(RequestChecksumCalculation.WHEN_REQUIRED, config.RequestChecksumCalculation);
        Assert.Equal(ResponseChecksumValidation.WHEN_REQUIRED, config.ResponseChecksumValidation);
        Assert.True(config.IgnoreConfiguredEndpointUrls);

        var virtualStyle = S3ObjectStore.CreateConfig(new S3StoreOptions { Endpoint = new Uri("https://r2.example"), AddressingStyle = S3AddressingStyle.Virtual });
        Assert.False(virtualStyle.ForcePathStyle);

        var aws = S3ObjectStore.CreateConfig(new S3StoreOptions { Region = "eu-central-1" });
        Assert.False(aws.ForcePathStyle);
        Assert.Equal("eu-central-1", aws.RegionEndpoint.SystemName);
        Assert.Null(aws.ServiceURL);
    }

    [Fact]
    public void The_provider_serves_s3_locations_through_the_resolver()
    {
        var provider = new S3ObjectStoreProvider(new S3StoreOptions { Endpoint = new Uri("http://127.0.0.1:1"), AccessKey = "k", SecretKey = "s" });
        using var resolver = new StorageResolver().Add(provider);
        var location = resolver.Resolve("s3://my-bucket/data/events/");
        var store = Assert.IsType<S3ObjectStore>(location.Store);
        Assert.Equal("my-bucket", store.Bucket);
        Assert.Equal("data/events", location.Key);
        Assert.Equal("s3://my-bucket/data/events", location.ToString());
        Assert.Same(store, resolver.Resolve("s3://my-bucket/other").Store);
        Assert.Equal("s3", provider.Scheme);
    }

    [Fact]
    public void Unique_names_keep_partition_folders_and_extensions()
    {
        Assert.Equal("part-00000-abc.parquet", S3DatasetWrite.UniqueName("part-00000.parquet", "abc"));
        Assert.Equal("country=DE/part-abc.snappy.parquet", S3DatasetWrite.UniqueName("country=DE/part.snappy.parquet", "abc"));
        Assert.Equal("a=1/b=2/data-abc", S3DatasetWrite.UniqueName("a=1/b=2/data", "abc"));
    }
}
