using Engine.Connectors.Delivery;
using Engine.Connectors.Destinations;
using Engine.Connectors.Ledger;
using Engine.Connectors.Matching;
using Engine.Connectors.Policy;
using Engine.Connectors.Reports;

namespace Engine.Connectors.Tests.Destinations;

/// <summary>One membership change a test asks a destination to receive.</summary>
public sealed record Delta(string Segment, long Profile, string Change);

/// <summary>What a delivery through the worker left: the worker's figures, the ledger's records and the run report.</summary>
public sealed record LedgerDeliveryResult(WorkerResult Worker, IReadOnlyList<LedgerRecord> Records, DestinationReport Report);

/// <summary>
/// Delivers deltas the way <c>engine deliver</c> does, without a workspace: plans them in a SQLite ledger, runs a
/// <see cref="DestinationWorker"/> (no consent rule, no suppression), and reads back the ledger and the report.
/// </summary>
public static class LedgerDelivery
{
    public static async Task<LedgerDeliveryResult> RunAsync(DestinationDefinition definition, IDestination client, ProfileDirectory profiles,
        IReadOnlyList<Delta> deltas, string ledgerPath, CancellationToken cancellationToken)
    {
        const string RunId = "run-1";
        await using var ledger = new SqliteLedger(ledgerPath);
        await ledger.InitializeAsync(cancellationToken);
        var planned = deltas
            .Select(d => new PlannedRecord(DeliveryKeys.Record(RunId, d.Segment, definition.Name, d.Profile, d.Change), RunId, definition.Name, d.Segment, d.Profile, d.Change, definition.Channel))
            .OrderBy(r => r.Key, StringComparer.Ordinal)
            .ToList();
        await ledger.PlanAsync(RunId, definition.Name, planned, [], definition.Segments, cancellationToken);
        var policy = new SendPolicy(definition, null, SuppressionList.Empty, null, null, TimeZoneInfo.Utc);
        var worker = await new DestinationWorker(definition, client, ledger, policy, profiles, RunId).RunAsync(cancellationToken);
        var records = await ledger.RecordsAsync(RunId, cancellationToken);
        var completed = await ledger.IsCompletedAsync(RunId, definition.Name, cancellationToken)
            ? new HashSet<string>([definition.Name], StringComparer.Ordinal)
            : [];
        var report = DeliveryReport.From(RunId, DateTimeOffset.UtcNow, records, completed).Destinations[definition.Name];
        return new LedgerDeliveryResult(worker, records, report);
    }
}
