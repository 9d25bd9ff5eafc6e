using Engine.TestKit;

namespace Engine.Tests.Identity;

/// <summary>100,000 generated people with all of the generator's mess (junk values, shared devices, duplicates), written once.</summary>
public sealed class HundredThousandPeople : IAsyncLifetime
{
    public const int People = 100_000;

    private readonly TempDirectory _directory = new("identity-100k");

    public string DataDirectory => _directory.Combine("data");

    public string Scratch(string name) => _directory.Combine(name);

    public async ValueTask InitializeAsync() => await GeneratedWorkspace.GenerateAsync(DataDirectory, People, seed: 3);

    public ValueTask DisposeAsync()
    {
        _directory.Dispose();
        return ValueTask.CompletedTask;
    }
}

/// <summary>The identity stage on generated data, scored against the generator's truth.</summary>
public sealed class IdentityAccuracyTests(HundredThousandPeople data) : IClassFixture<HundredThousandPeople>
{
    [Fact]
    public async Task Default_rules_reach_the_precision_and_recall_targets_on_100k_people()
    {
        var workspace = new GeneratedWorkspace(data.Scratch("accuracy"), data.DataDirectory);
        var run = await workspace.RunAsync("guarded");
        var report = run.Manifest.Identity!;
        var (precision, recall, wrong) = workspace.Score("guarded");
        TestContext.Current.SendDiagnosticMessage(
            $"{HundredThousandPeople.People:N0} people: {report.Identifiers:N0} identifiers, {report.Edges:N0} links, {report.Profiles:N0} profiles, "
            + $"largest {report.LargestProfile}; refused {string.Join(", ", report.LinksRefused.Select(p => $"{p.Key} {p.Value:N0}"))}; "
            + $"shared {string.Join(", ", report.SharedValues.Select(p => $"{p.Key} {p.Value:N0}"))}; "
            + $"pairwise precision {precision:F5}, recall over linkable pairs {recall:F5}, wrongly joined pairs {wrong:N0}");
        Assert.True(precision >= 0.999, $"pairwise precision {precision:F5} < 0.999 ({wrong:N0} wrongly joined pairs)");
        Assert.True(recall >= 0.99, $"recall over linkable pairs {recall:F5} < 0.99");
    }

    [Fact]
    public async Task Without_the_guards_the_same_data_fuses_into_a_giant_cluster()
    {
        var guarded = new GeneratedWorkspace(data.Scratch("guards-on"), data.DataDirectory);
        var unguarded = new GeneratedWorkspace(data.Scratch("guards-off"), data.DataDirectory, GeneratedWorkspace.Unguarded);
        var on = (await guarded.RunAsync("on")).Manifest.Identity!;
        var off = (await unguarded.RunAsync("off")).Manifest.Identity!;
        var (precisionOff, _, _) = unguarded.Score("off");
        TestContext.Current.SendDiagnosticMessage(
            $"largest profile: guards on {on.LargestProfile:N0} identifiers, guards off {off.LargestProfile:N0} of {off.Identifiers:N0}; precision with guards off {precisionOff:F5}");
        // One placeholder value ("null", test@test.com, 0000000000) is on thousands of rows: it joins their people.
        Assert.True(off.LargestProfile > 10_000, $"guards off: largest profile only {off.LargestProfile}");
        Assert.True(on.LargestProfile < 200, $"guards on: largest profile {on.LargestProfile}");
        Assert.True(precisionOff < 0.5, $"guards off: precision {precisionOff:F5}");
        Assert.True(off.Profiles < on.Profiles);
    }
}
