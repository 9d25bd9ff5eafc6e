using System.Collections.Concurrent;
using Engine.Connectors.Delivery;
using Engine.Connectors.Destinations;
using Engine.Connectors.Ledger;
using Engine.Connectors.Matching;
using Engine.Connectors.Policy;
using Engine.Identity;

namespace Engine.Connectors.Tests.Destinations;

/// <summary>What the ad-platform destination tests share: records, batches, credentials and a worker over a SQLite ledger.</summary>
internal static class AdDelivery
{
    public const string RunId = "run1";
    public const string Segment = "vip";

    /// <summary>email → Email, phone → Phone, as the default identity rules have them.</summary>
    public static IReadOnlyDictionary<string, NormalizerKind> Kinds { get; } = HashedIdentifiers.Kinds(["email", "phone"], IdentityRules.Default);

    /// <summary>Puts <paramref name="value"/> in a fresh environment variable and returns its name (tests run in parallel).</summary>
    public static string Variable(string value)
    {
        var name = "ENGINE_TEST_" + Guid.NewGuid().ToString("N").ToUpperInvariant();
        Environment.SetEnvironmentVariable(name, value);
        return name;
    }

    public static OutgoingRecord Record(string destination, RecordOperation operation, long profile, params (string Type, string Value)[] identifiers)
        => new(DeliveryKeys.Record(RunId, Segment, destination, profile, operation == RecordOperation.Add ? DeliveryKeys.Entered : DeliveryKeys.Exited),
            Segment, profile, operation, [.. identifiers.Select(i => new ProfileIdentifier(i.Type, i.Value))], new Dictionary<string, object?>());

    public static DestinationBatch Batch(string destination, RecordOperation operation, IReadOnlyList<OutgoingRecord> records)
        => new(DeliveryKeys.Batch(destination, [.. records.Select(r => r.Key)]), RunId, operation, records);

    /// <summary>The SHA-256 of an email as both platforms normalise it.</summary>
    public static string EmailHash(string email) => HashedIdentifiers.Sha256Hex(HashedIdentifiers.NormalizeEmail(email)!);

    /// <summary>
    /// Plans <paramref name="entered"/> and <paramref name="exited"/> profiles of the segment for the destination in a
    /// fresh ledger, as <c>engine deliver</c> would.
    /// </summary>
    public static async Task PlanAsync(IDeliveryLedger ledger, string destination, IEnumerable<long> entered, IEnumerable<long> exited)
    {
        var records = entered.Select(p => Planned(destination, p, DeliveryKeys.Entered))
            .Concat(exited.Select(p => Planned(destination, p, DeliveryKeys.Exited)))
            .OrderBy(r => r.Key, StringComparer.Ordinal)
            .ToList();
        await ledger.PlanAsync(RunId, destination, records, [], [Segment], TestContext.Current.CancellationToken);
    }

    /// <summary>Runs a worker for the destination over the ledger, with no consent rule, no suppression and the given profiles.</summary>
    public static Task<WorkerResult> DeliverAsync(DestinationDefinition definition, IDestination client, IDeliveryLedger ledger,
        IReadOnlyDictionary<long, IReadOnlyList<ProfileIdentifier>> profiles)
    {
        var policy = new SendPolicy(definition, null, SuppressionList.Empty, null, null, TimeZoneInfo.Utc);
        var worker = new DestinationWorker(definition, client, ledger, policy, ProfileDirectory.FromMemory(profiles), RunId);
        return worker.RunAsync(TestContext.Current.CancellationToken);
    }

    private static PlannedRecord Planned(string destination, long profile, string change)
        => new(DeliveryKeys.Record(RunId, Segment, destination, profile, change), RunId, destination, Segment, profile, change, null);
}

/// <summary>A destination's state held in memory: one process's view, as a unit test needs it.</summary>
internal sealed class MemoryState : IDestinationState
{
    private readonly ConcurrentDictionary<(string, string), string> _values = new();

    public Task<string?> GetAsync(string runId, string name, CancellationToken cancellationToken)
        => Task.FromResult(_values.TryGetValue((runId, name), out var value) ? value : null);

    public Task SetAsync(string runId, string name, string value, CancellationToken cancellationToken)
    {
        _values[(runId, name)] = value;
        return Task.CompletedTask;
    }
}
