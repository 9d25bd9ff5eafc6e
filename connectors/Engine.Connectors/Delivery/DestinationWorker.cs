using System.Threading.RateLimiting;
using Engine.Connectors.Destinations;
using Engine.Connectors.Ledger;
using Engine.Connectors.Matching;
using Engine.Connectors.Policy;
using Polly;
using Polly.Retry;

namespace Engine.Connectors.Delivery;

/// <summary>What one destination's worker did in this delivery.</summary>
public sealed record WorkerResult(string Destination, long Batches, long Requests, long Retries, string? StoppedBy);

/// <summary>
/// Delivers one destination's open records of a run: claims batches from the ledger (exits first, then entries),
/// checks each record against the send policy at that moment, sends under a token-bucket rate limit with at most
/// <see cref="DestinationDefinition.Concurrency"/> requests in flight, retries transient failures with exponential
/// backoff and jitter (Polly; <c>Retry-After</c> honoured), retries only the records a partial failure names, and
/// writes every outcome to the ledger the moment it is known. A fatal failure (credentials refused) stops this
/// destination only; its records stay open for the next delivery.
/// </summary>
public sealed class DestinationWorker
{
    /// <summary>How long a claimed batch belongs to this worker before another may take it (renewed on each retry).</summary>
    public static readonly TimeSpan Lease = TimeSpan.FromMinutes(10);

    private static readonly TimeSpan MaxRetryAfter = TimeSpan.FromMinutes(10);

    private readonly DestinationDefinition _definition;
    private readonly IDestination _client;
    private readonly IDeliveryLedger _ledger;
    private readonly SendPolicy _policy;
    private readonly ProfileDirectory _profiles;
    private readonly string _runId;
    private readonly TimeProvider _time;
    private long _requests;
    private long _retries;
    private long _batches;

    public DestinationWorker(DestinationDefinition definition, IDestination client, IDeliveryLedger ledger, SendPolicy policy,
        ProfileDirectory profiles, string runId, TimeProvider? time = null)
    {
        _definition = definition;
        _client = client;
        _ledger = ledger;
        _policy = policy;
        _profiles = profiles;
        _runId = runId;
        _time = time ?? TimeProvider.System;
    }

    /// <summary>The token bucket for a rate: refilled one token at a time, evenly, so a sustained rate holds.</summary>
    public static TokenBucketRateLimiter Limiter(RateLimit rate)
    {
        ArgumentNullException.ThrowIfNull(rate);
        var perToken = TimeSpan.FromSeconds(rate.PerSeconds / rate.Requests);
        var tokens = 1;
        if (perToken < TimeSpan.FromMilliseconds(1))
        {
            // The limiter's timer does not tick faster than about a millisecond: add several tokens per tick instead.
            tokens = (int)Math.Ceiling(TimeSpan.FromMilliseconds(1) / perToken);
            perToken *= tokens;
        }
        return new TokenBucketRateLimiter(new TokenBucketRateLimiterOptions
        {
            // A tick adds several tokens at high rates: the bucket must hold them, or the rate would be capped at the burst.
            TokenLimit = Math.Max(rate.Burst, tokens),
            TokensPerPeriod = tokens,
            ReplenishmentPeriod = perToken,
            QueueLimit = int.MaxValue,
            QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
            AutoReplenishment = true,
        });
    }

    public async Task<WorkerResult> RunAsync(CancellationToken cancellationToken)
    {
        using var limiter = Limiter(_definition.RateLimit);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var slots = new SemaphoreSlim(_definition.Concurrency, _definition.Concurrency);
        var pipeline = Pipeline();
        string? fatal = null;
        var inFlight = new List<Task>();
        try
        {
            foreach (var change in new[] { DeliveryKeys.Exited, DeliveryKeys.Entered })
            {
                while (!stop.IsCancellationRequested)
                {
                    await slots.WaitAsync(stop.Token);
                    var records = await _ledger.ClaimAsync(_runId, _definition.Name, change, _definition.BatchSize, Lease,
                        keys => DeliveryKeys.Batch(_definition.Name, keys), stop.Token);
                    if (records.Count == 0)
                    {
                        slots.Release();
                        break;
                    }
                    Interlocked.Increment(ref _batches);
                    inFlight.Add(Task.Run(async () =>
                    {
                        try
                        {
                            await SendBatchAsync(records, limiter, pipeline, stop.Token);
                        }
                        catch (DestinationException e) when (e.Kind == FailureKind.Fatal)
                        {
                            fatal ??= e.Message;
                            // Give the batch back at once: the next delivery takes it again, as the same batch.
                            await _ledger.RenewAsync(records[0].BatchId!, TimeSpan.FromSeconds(-1), CancellationToken.None);
                            await stop.CancelAsync();
                        }
                        catch (OperationCanceledException) when (stop.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
                        {
                            // Cut short by another batch's fatal failure: give this batch back too, or its records would
                            // wait out the lease before the next delivery could take them.
                            await _ledger.RenewAsync(records[0].BatchId!, TimeSpan.FromSeconds(-1), CancellationToken.None);
                        }
                        finally
                        {
                            slots.Release();
                        }
                    }, CancellationToken.None));
                    inFlight.RemoveAll(t => t.IsCompleted);
                }
                // Exits go out before entries: a profile that moved between segments leaves before it arrives.
                await Task.WhenAll(inFlight);
                inFlight.Clear();
            }
        }
        catch (OperationCanceledException) when (fatal is not null && !cancellationToken.IsCancellationRequested)
        {
        }
        await Task.WhenAll(inFlight);
        if (fatal is null && await _ledger.OpenCountAsync(_runId, _definition.Name, cancellationToken) == 0
            && !await _ledger.IsCompletedAsync(_runId, _definition.Name, cancellationToken))
        {
            try
            {
                // Completing (a file's marker, an upload job's run) is a request like any other: limited and retried.
                await pipeline.ExecuteAsync(async token =>
                {
                    using var lease = await limiter.AcquireAsync(1, token);
                    Interlocked.Increment(ref _requests);
                    await _client.CompleteAsync(_runId, token);
                }, cancellationToken);
                await _ledger.MarkCompletedAsync(_runId, _definition.Name, cancellationToken);
            }
            catch (DestinationException e)
            {
                fatal = $"completing the run: {e.Message}";
            }
        }
        return new WorkerResult(_definition.Name, _batches, _requests, _retries, fatal);
    }

    private ResiliencePipeline Pipeline() => new ResiliencePipelineBuilder()
        .AddRetry(new RetryStrategyOptions
        {
            ShouldHandle = new PredicateBuilder().Handle<DestinationException>(e => e.Kind == FailureKind.Transient),
            MaxRetryAttempts = Math.Max(0, _definition.Retry.Attempts - 1),
            BackoffType = DelayBackoffType.Exponential,
            UseJitter = true,
            Delay = _definition.Retry.BaseDelay,
            MaxDelay = _definition.Retry.MaxDelay,
            // The destination's own word on when to come back beats the backoff schedule.
            DelayGenerator = args => ValueTask.FromResult(args.Outcome.Exception is DestinationException { RetryAfter: { } wait }
                ? (TimeSpan?)(wait < MaxRetryAfter ? wait : MaxRetryAfter) : null),
            OnRetry = _ =>
            {
                Interlocked.Increment(ref _retries);
                return ValueTask.CompletedTask;
            },
        })
        .Build();

    private async Task SendBatchAsync(IReadOnlyList<LedgerRecord> claimed, RateLimiter limiter, ResiliencePipeline pipeline, CancellationToken cancellationToken)
    {
        await _policy.RefreshAsync(cancellationToken);
        var now = _time.GetUtcNow();
        var finals = new List<FinalOutcome>();
        var remaining = new List<OutgoingRecord>();
        var attemptsBefore = claimed.Max(r => r.Attempts);
        foreach (var record in claimed)
        {
            var outgoing = Outgoing(record);
            if (_policy.Check(outgoing, _profiles, now) is { } reason)
            {
                finals.Add(new FinalOutcome(record.Key, Outcomes.Suppressed, reason, null, record.Attempts));
            }
            else
            {
                remaining.Add(outgoing);
            }
        }
        await _ledger.FinishAsync(finals, cancellationToken);
        if (remaining.Count == 0)
        {
            return;
        }
        var operation = remaining[0].Operation;
        var attempts = attemptsBefore;
        var batchId = claimed[0].BatchId!;
        try
        {
            await pipeline.ExecuteAsync(async token =>
            {
                attempts++;
                if (attempts > attemptsBefore + 1)
                {
                    await _ledger.RenewAsync(batchId, Lease, token);
                }
                using var lease = await limiter.AcquireAsync(1, token);
                Interlocked.Increment(ref _requests);
                // The id follows the records sent: the same records always go under the same id (a receiver can drop a
                // repeat), and a partial retry, a different set, under a new one.
                var batch = new DestinationBatch(DeliveryKeys.Batch(_definition.Name, [.. remaining.Select(r => r.Key)]), _runId, operation, remaining);
                var results = await _client.SendAsync(batch, token);
                var byKey = results.ToDictionary(r => r.Key, StringComparer.Ordinal);
                var done = new List<FinalOutcome>();
                var retry = new List<OutgoingRecord>();
                string? retryReason = null;
                foreach (var record in remaining)
                {
                    var result = byKey.TryGetValue(record.Key, out var r) ? r : new RecordResult(record.Key, RecordStatus.Retry, "no_result");
                    switch (result.Status)
                    {
                        case RecordStatus.Delivered:
                            done.Add(new FinalOutcome(record.Key, Outcomes.Delivered, null, null, attempts));
                            break;
                        case RecordStatus.Rejected:
                            _policy.Release(record);
                            done.Add(new FinalOutcome(record.Key, Outcomes.Failed, "rejected", result.Reason, attempts));
                            break;
                        default:
                            retry.Add(record);
                            retryReason ??= result.Reason;
                            break;
                    }
                }
                await _ledger.FinishAsync(done, CancellationToken.None);
                remaining = retry;
                if (remaining.Count > 0)
                {
                    throw new DestinationException("partial_failure", FailureKind.Transient, retryReason);
                }
            }, cancellationToken);
        }
        catch (DestinationException e) when (e.Kind != FailureKind.Fatal)
        {
            // Refused for good, or still failing after every attempt: dead-letter what is left, with the destination's word.
            foreach (var record in remaining)
            {
                _policy.Release(record);
            }
            await _ledger.FinishAsync([.. remaining.Select(r => new FinalOutcome(r.Key, Outcomes.Failed, e.Reason, e.Detail, attempts))], CancellationToken.None);
        }
        catch (DestinationException)
        {
            foreach (var record in remaining)
            {
                _policy.Release(record);
            }
            throw;
        }
    }

    private OutgoingRecord Outgoing(LedgerRecord record)
    {
        var fields = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (field, column) in _definition.Fields)
        {
            fields[field] = _profiles.Field(record.ProfileId, column);
        }
        return new OutgoingRecord(record.Key, record.Segment, record.ProfileId,
            record.Change == DeliveryKeys.Entered ? RecordOperation.Add : RecordOperation.Remove,
            _profiles.IdentifiersOf(record.ProfileId, _definition.IdentifyBy), fields);
    }
}
