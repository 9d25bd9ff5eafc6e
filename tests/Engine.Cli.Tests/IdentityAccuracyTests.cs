using System.Globalization;
using Engine.Runs;
using Engine.TestKit;

[assembly: AssemblyFixture(typeof(Engine.Cli.Tests.HundredThousandPeople))]

namespace Engine.Cli.Tests;

/// <summary>
/// 100,000 generated people with all of the generator's mess (junk values, shared tablets and family addresses,
/// duplicate CRM records, phones in many formats), written once by <c>engine generate</c> for every test that
/// takes it (identity accuracy, the churn model).
/// </summary>
public sealed class HundredThousandPeople : IAsyncLifetime
{
    public const int People = 100_000;

    private readonly TempDirectory _directory = new("identity-100k");

    public string Data => _directory.Combine("data");

    public string Folder(string name) => _directory.Combine(name);

    public async ValueTask InitializeAsync()
    {
        var (code, _, error) = await CliHarness.RunAsync("generate", "--people", People.ToString(CultureInfo.InvariantCulture), "--seed", "3", "--out", Data);
        Assert.True(code == 0, error);
    }

    public ValueTask DisposeAsync()
    {
        _directory.Dispose();
        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// The identity stage as a user gets it — <c>engine init</c>'s workspace, <c>engine run</c> — scored against the
/// generator's truth: pairwise precision and recall over linkable pairs (<see cref="IdentityScoring"/>).
/// </summary>
public sealed class IdentityAccuracyTests(HundredThousandPeople data)
{
    private async Task<(RunManifest Manifest, double Precision, double Recall, long Wrong)> RunAsync(string name, string? identityYaml = null)
    {
        var workspace = data.Folder(name);
        Assert.Equal(0, (await CliHarness.RunAsync("init", workspace, "--data", data.Data)).ExitCode);
        if (identityYaml is not null)
        {
            await File.WriteAllTextAsync(Path.Combine(workspace, "identity.yaml"), identityYaml, TestContext.Current.CancellationToken);
        }
        var (code, _, error) = await CliHarness.RunAsync("run", "--workspace", workspace, "--run-id", "r1", "--as-of", "2026-11-02");
        Assert.True(code == 0, error);
        var run = Path.Combine(workspace, "output", "runs", "r1");
        var manifest = RunManifest.Parse(await File.ReadAllBytesAsync(Path.Combine(run, "manifest.json"), TestContext.Current.CancellationToken));
        var (precision, recall, wrong) = IdentityScoring.Score(Path.Combine(run, "identity", "*.parquet"), Path.Combine(data.Data, "truth", "**", "*.parquet"));
        var report = manifest.Identity!;
        TestContext.Current.SendDiagnosticMessage(
            $"{name}: {report.Identifiers:N0} identifiers, {report.Edges:N0} links, {report.Profiles:N0} profiles, largest {report.LargestProfile}; "
            + $"refused {string.Join(", ", report.LinksRefused.Select(p => $"{p.Key} {p.Value:N0}"))}; shared {string.Join(", ", report.SharedValues.Select(p => $"{p.Key} {p.Value:N0}"))}; "
            + $"pairwise precision {precision:F5}, recall over linkable pairs {recall:F5}, wrongly joined pairs {wrong:N0}");
        return (manifest, precision, recall, wrong);
    }

    [Fact]
    public async Task The_init_workspace_reaches_the_precision_and_recall_targets_on_100k_people()
    {
        var (_, precision, recall, wrong) = await RunAsync("guarded");
        Assert.True(precision >= 0.999, $"pairwise precision {precision:F5} < 0.999 ({wrong:N0} wrongly joined pairs)");
        Assert.True(recall >= 0.99, $"recall over linkable pairs {recall:F5} < 0.99");
    }

    [Fact]
    public async Task Without_the_guards_the_same_data_fuses_into_a_giant_cluster()
    {
        const string unguarded = """
            identifier_types:
              customer_id: id
              name_postcode: composite
              email: email
              phone: { normalizer: phone, default_region: US }
              anonymous_id: id
            blocklist:
              defaults: false
            """;
        var on = (await RunAsync("guards-on")).Manifest.Identity!;
        var (manifest, precisionOff, _, _) = await RunAsync("guards-off", unguarded);
        var off = manifest.Identity!;
        // One placeholder value ("null", test@test.com, 0000000000) sits on thousands of rows: it joins their people.
        Assert.True(off.LargestProfile > 10_000, $"guards off: largest profile only {off.LargestProfile}");
        Assert.True(on.LargestProfile < 200, $"guards on: largest profile {on.LargestProfile}");
        Assert.True(precisionOff < 0.5, $"guards off: precision {precisionOff:F5}");
        Assert.True(off.Profiles < on.Profiles);
    }
}
