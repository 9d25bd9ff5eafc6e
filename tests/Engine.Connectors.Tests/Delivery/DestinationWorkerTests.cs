using Engine.Connectors.Destinations;
using Engine.Connectors.Ledger;
using Engine.TestKit;
using static Engine.Connectors.Tests.Destinations.AdDelivery;

namespace Engine.Connectors.Tests.Delivery;

public sealed class DestinationWorkerTests
{
    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_fatal_failure_with_other_batches_in_flight_stops_cleanly_and_gives_their_records_back()
    {
        using var dir = new TempDirectory("worker-fatal");
        await using var ledger = new SqliteLedger(dir.Combine("ledger.db"));
        await ledger.InitializeAsync(Cancel);
        var definition = new DestinationDefinition
        {
            Name = "hooks", File = "destinations/hooks.yaml", Type = DestinationType.Webhook, Segments = [Segment], Consent = ConsentRule.None,
            IdentifyBy = ["email"], BatchSize = 2, Concurrency = 3, RateLimit = new RateLimit(1_000, 1, 1_000),
        };
        var profiles = Enumerable.Range(1, 6).ToDictionary(p => (long)p, p => (IReadOnlyList<ProfileIdentifier>)[new("email", $"user{p}@example.com")]);
        await PlanAsync(ledger, "hooks", profiles.Keys, []);

        // Three batches in flight at once; the first to hold profile 1 fails fatally while the other two wait on the wire.
        await using (var stalling = new StallingDestination())
        {
            var stopped = await DeliverAsync(definition, stalling, ledger, profiles);
            Assert.Contains("token revoked", stopped.StoppedBy, StringComparison.Ordinal);
            Assert.Equal(3, stalling.Sent);
        }

        // Nothing is final, and nothing is left under a lease: the next delivery takes every record at once.
        Assert.All(await ledger.RecordsAsync(RunId, Cancel), r => Assert.NotEqual("final", r.State));
        await using var healthy = new StallingDestination { Stall = false };
        var finished = await DeliverAsync(definition, healthy, ledger, profiles);
        Assert.Null(finished.StoppedBy);
        Assert.All(await ledger.RecordsAsync(RunId, Cancel), r => Assert.Equal(Outcomes.Delivered, r.Outcome));
    }

    /// <summary>Fails the batch holding profile 1 once three batches are in flight; the others wait until cancelled.</summary>
    private sealed class StallingDestination : IDestination
    {
        private readonly TaskCompletionSource _allInFlight = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _sent;

        public bool Stall { get; init; } = true;

        public int Sent => _sent;

        public async Task<IReadOnlyList<RecordResult>> SendAsync(DestinationBatch batch, CancellationToken cancellationToken)
        {
            if (!Stall)
            {
                return [.. batch.Records.Select(r => new RecordResult(r.Key, RecordStatus.Delivered))];
            }
            if (Interlocked.Increment(ref _sent) == 3)
            {
                _allInFlight.SetResult();
            }
            await _allInFlight.Task.WaitAsync(cancellationToken);
            if (batch.Records.Any(r => r.ProfileId == 1))
            {
                throw new DestinationException("unauthenticated", FailureKind.Fatal, "token revoked");
            }
            await Task.Delay(Timeout.InfiniteTimeSpan, cancellationToken);
            throw new InvalidOperationException("unreachable");
        }

        public Task CompleteAsync(string runId, CancellationToken cancellationToken) => Task.CompletedTask;

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
