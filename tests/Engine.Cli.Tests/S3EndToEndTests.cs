using System.Diagnostics;
using System.Text.Json;
using Engine.Storage;
using Engine.TestKit;

[assembly: AssemblyFixture(typeof(S3Server))]

namespace Engine.Cli.Tests;

/// <summary>
/// The real command line as a child process, configured only by the standard AWS environment variables, writing
/// generated data to S3 (s3rver) and running a workspace whose sources live there.
/// </summary>
public class S3EndToEndTests(S3Server s3)
{
    private string? _secret = s3.Options.SecretKey;

    private async Task<(int Code, string Output, string Error)> EngineAsync(params string[] args)
    {
        var cli = Path.Combine(AppContext.BaseDirectory, "Engine.Cli.dll");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(cli);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        foreach (var name in new[] { "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION" })
        {
            start.Environment.Remove(name);
        }
        start.Environment["AWS_ENDPOINT_URL_S3"] = s3.Endpoint!.ToString();
        start.Environment["AWS_ACCESS_KEY_ID"] = s3.Options.AccessKey;
        start.Environment["AWS_SECRET_ACCESS_KEY"] = _secret;
        start.Environment["AWS_REGION"] = s3.Options.Region;
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var error = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        await process.WaitForExitAsync(TestContext.Current.CancellationToken);
        return (process.ExitCode, await output, await error);
    }

    [Fact]
    public async Task Generate_to_s3_then_run_a_workspace_reading_from_s3()
    {
        Assert.SkipWhen(s3.Endpoint is null, "no S3 endpoint (an external AWS bucket without a custom endpoint)");
        var prefix = s3.NewPrefix("cli");
        var data = $"s3://{s3.Bucket}/{prefix}/data";

        var (code, output, error) = await EngineAsync("generate", "--people", "1500", "--seed", "3", "--out", data);
        Assert.True(code == 0, error);
        Assert.Contains($"{data}/events", output, StringComparison.Ordinal);

        using var dir = new TempDirectory("s3ws");
        (code, _, error) = await EngineAsync("init", dir.Path, "--data", data);
        Assert.True(code == 0, error);
        (code, output, error) = await EngineAsync("run", "--workspace", dir.Path, "--run-id", "s3-night");
        Assert.True(code == 0, error);
        Assert.Contains("Run s3-night succeeded", output, StringComparison.Ordinal);

        // Ingest read exactly what the generator committed to S3.
        using var store = s3.CreateStore();
        var manifest = JsonDocument.Parse(await File.ReadAllBytesAsync(Path.Combine(dir.Path, "output", "runs", "s3-night", "manifest.json"), TestContext.Current.CancellationToken)).RootElement;
        foreach (var input in manifest.GetProperty("inputs").EnumerateArray())
        {
            var source = input.GetProperty("source").GetString()!;
            var committed = DatasetManifest.Parse((await store.GetAsync($"{prefix}/data/{source}/_dataset.json", TestContext.Current.CancellationToken))!, source);
            Assert.Equal(committed.Rows, input.GetProperty("rows").GetInt64());
            Assert.StartsWith($"s3://{s3.Bucket}/{prefix}/data/{source}", input.GetProperty("location").GetString(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_missing_s3_dataset_is_one_clear_line_naming_it()
    {
        Assert.SkipWhen(s3.Endpoint is null, "no S3 endpoint");
        using var dir = new TempDirectory("s3ws");
        var data = $"s3://{s3.Bucket}/{s3.NewPrefix("cli")}/nothing";
        Assert.Equal(0, (await EngineAsync("init", dir.Path, "--data", data)).Code);
        var (code, _, error) = await EngineAsync("run", "--workspace", dir.Path);
        Assert.Equal(1, code);
        var line = Assert.Single(error.Split('\n'), l => l.StartsWith("error: ", StringComparison.Ordinal));
        Assert.Contains($"{data}/", line, StringComparison.Ordinal);
        Assert.Contains("dataset not found", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_wrong_secret_is_one_clear_line_that_never_shows_the_secret()
    {
        Assert.SkipWhen(s3.Endpoint is null || s3.IsExternal, "needs the local s3rver");
        _secret = "not-the-secret-0123456789";
        using var dir = new TempDirectory("s3ws");
        var data = $"s3://{s3.Bucket}/{s3.NewPrefix("cli")}/data";
        var (code, _, error) = await EngineAsync("generate", "--people", "50", "--out", data);
        Assert.Equal(1, code);
        var line = Assert.Single(error.Split('\n'), l => l.StartsWith("error: ", StringComparison.Ordinal));
        Assert.Contains($"s3://{s3.Bucket}/", line, StringComparison.Ordinal);
        Assert.DoesNotContain(_secret, error, StringComparison.Ordinal);
        Assert.DoesNotContain(" at Engine.", error, StringComparison.Ordinal);
    }
}
