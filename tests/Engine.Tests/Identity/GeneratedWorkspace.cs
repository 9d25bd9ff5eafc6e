using Engine.Datasets;
using Engine.Identity;
using Engine.Runs;
using Engine.Storage;
using Engine.TestKit;
using Engine.Workspaces;
using Microsoft.Extensions.Logging.Abstractions;

namespace Engine.Tests.Identity;

/// <summary>
/// A workspace over data written by the synthetic generator, mapped as <c>engine init</c> maps it (events: user_id,
/// email, anonymous_id; profiles: customer_id, email, phone), with runs executed in process and their identity output
/// scored against the generator's truth through DuckDB.
/// </summary>
internal sealed class GeneratedWorkspace
{
    public GeneratedWorkspace(string directory, string dataDirectory, IdentityRules? rules = null, string? eventsLocation = null)
    {
        Directory.CreateDirectory(directory);
        DataDirectory = dataDirectory;
        Workspace = new Workspace(directory, "generated", Path.Combine(directory, "output"),
        [
            new SourceDefinition
            {
                Name = "events",
                File = "sources/events.yaml",
                Location = eventsLocation ?? Path.Combine(dataDirectory, GeneratedDatasets.EventsFolder),
                Schema = GeneratedDatasets.Events,
                TimestampColumn = "ts",
                Identifiers = new Dictionary<string, string> { ["anonymous_id"] = "anonymous_id", ["user_id"] = "customer_id", ["email"] = "email" },
            },
            new SourceDefinition
            {
                Name = "profiles",
                File = "sources/profiles.yaml",
                Location = Path.Combine(dataDirectory, GeneratedDatasets.ProfilesFolder),
                Schema = GeneratedDatasets.Profiles,
                TimestampColumn = "updated_at",
                Identifiers = new Dictionary<string, string> { ["customer_id"] = "customer_id", ["email"] = "email", ["phone"] = "phone" },
                PhoneRegionColumns = new Dictionary<string, string> { ["phone"] = "country" },
                CompositeIdentifiers = rules?.Find(NamePostcode) is null
                    ? new Dictionary<string, IReadOnlyList<string>>()
                    : new Dictionary<string, IReadOnlyList<string>> { [NamePostcode] = ["first_name", "last_name", "postcode"] },
            },
        ], [], rules);
    }

    /// <summary>The composite type built from the profiles' first_name, last_name and postcode, when the rules define it.</summary>
    public const string NamePostcode = "name_postcode";

    public Workspace Workspace { get; }

    public string DataDirectory { get; }

    public string RunDirectory(string runId) => Path.Combine(Workspace.Directory, "output", "runs", runId);

    public string IdentityGlob(string runId) => Path.Combine(RunDirectory(runId), "identity", "*.parquet");

    public static async Task GenerateAsync(string directory, int people, long seed)
    {
        using var resolver = new StorageResolver();
        await new SyntheticGenerator(new GeneratorOptions { People = people, Seed = seed }).GenerateAsync(resolver.Resolve(directory));
    }

    public async Task<RunResult> RunAsync(string runId, bool fullRefresh = false, DateTimeOffset? asOf = null, int? parallelism = null)
    {
        using var resolver = new StorageResolver();
        var executor = new RunExecutor(resolver, NullLogger.Instance);
        return await executor.ExecuteAsync(Workspace, new RunOptions
        {
            RunId = runId,
            AsOf = asOf ?? new DateTimeOffset(2026, 11, 2, 0, 0, 0, TimeSpan.Zero),
            FullRefresh = fullRefresh,
            Parallelism = parallelism ?? Environment.ProcessorCount,
        }, cancellationToken: TestContext.Current.CancellationToken);
    }

    /// <summary>Pairwise precision and recall of the run's profiles against truth (<see cref="IdentityScoring.Score"/>).</summary>
    public (double Precision, double Recall, long WrongPairs) Score(string runId)
        => IdentityScoring.Score(IdentityGlob(runId), Path.Combine(DataDirectory, GeneratedDatasets.TruthFolder, "**", "*.parquet"));

    /// <summary>The rules <c>engine init</c> writes (its identity.yaml), for workspaces built in code.</summary>
    public static IdentityRules InitRules { get; } = new(
    [
        new IdentifierType("customer_id", NormalizerKind.Id, IdNormalizer.Instance, 2, null, DefaultBlocklists.For(NormalizerKind.Id, [], [])),
        new IdentifierType(NamePostcode, NormalizerKind.Composite, CompositeNormalizer.Instance, 1, null, DefaultBlocklists.For(NormalizerKind.Composite, [], [])),
        new IdentifierType("email", NormalizerKind.Email, new EmailNormalizer(), 5, null, DefaultBlocklists.For(NormalizerKind.Email, [], [])),
        new IdentifierType("phone", NormalizerKind.Phone, new PhoneNormalizer("US"), 3, null, DefaultBlocklists.For(NormalizerKind.Phone, [], [])),
        new IdentifierType("anonymous_id", NormalizerKind.Id, IdNormalizer.Instance, null, 1, DefaultBlocklists.For(NormalizerKind.Id, [], [])),
    ]);

    /// <summary>The default rules with every guard off: no limits, no shared-value threshold, no blocklist.</summary>
    public static IdentityRules Unguarded { get; } = new(
    [
        new IdentifierType("customer_id", NormalizerKind.Id, IdNormalizer.Instance, null, null, Blocklist.Empty),
        new IdentifierType("email", NormalizerKind.Email, new EmailNormalizer(), null, null, Blocklist.Empty),
        new IdentifierType("phone", NormalizerKind.Phone, new PhoneNormalizer("US"), null, null, Blocklist.Empty),
        new IdentifierType("anonymous_id", NormalizerKind.Id, IdNormalizer.Instance, null, null, Blocklist.Empty),
    ]);
}
