using System.Text.Json;
using System.Text.Json.Serialization;
using Apache.Arrow;
using Apache.Arrow.Types;
using Engine.Connectors.Delivery;
using Engine.Connectors.Ledger;
using Engine.Storage;

namespace Engine.Connectors.Reports;

/// <summary>One destination's figures for a run (<c>deliveries/&lt;run_id&gt;/report.json</c>; names are a public contract).</summary>
public sealed class DestinationReport
{
    [JsonPropertyName("processed")] public long Processed { get; set; }
    [JsonPropertyName("added")] public long Added { get; set; }
    [JsonPropertyName("removed")] public long Removed { get; set; }
    [JsonPropertyName("unmatched")] public long Unmatched { get; set; }

    /// <summary>Records of the control group (the destination's holdout): recorded, never sent.</summary>
    [JsonPropertyName("held_out")] public long HeldOut { get; set; }

    [JsonPropertyName("suppressed")] public SortedDictionary<string, long> Suppressed { get; set; } = new(StringComparer.Ordinal);
    [JsonPropertyName("failed")] public SortedDictionary<string, long> Failed { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Records that needed more than one attempt.</summary>
    [JsonPropertyName("retried")] public long Retried { get; set; }

    /// <summary>Records not final yet (a delivery stopped early; the next one goes on).</summary>
    [JsonPropertyName("open")] public long Open { get; set; }

    [JsonPropertyName("completed")] public bool Completed { get; set; }

    /// <summary>Seconds from the signal (the run that computed the delta finished) to the destination's acknowledgement.</summary>
    [JsonPropertyName("seconds_to_delivery")] public Percentiles? SecondsToDelivery { get; set; }
}

public sealed record Percentiles(
    [property: JsonPropertyName("p50")] double P50,
    [property: JsonPropertyName("p95")] double P95,
    [property: JsonPropertyName("max")] double Max)
{
    /// <summary>
    /// The lower nearest-rank p50 and p95 and the maximum of <paramref name="values"/> (sorted here), rounded to the
    /// millisecond; null when there are none. The delivery report and the run report both count this way, so their
    /// figures agree.
    /// </summary>
    public static Percentiles? Of(List<double> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (values.Count == 0)
        {
            return null;
        }
        values.Sort();
        return new Percentiles(Math.Round(values[(int)(0.5 * (values.Count - 1))], 3), Math.Round(values[(int)(0.95 * (values.Count - 1))], 3), Math.Round(values[^1], 3));
    }

    /// <summary>Seconds from the signal to a delivery, both in microseconds since the epoch (never negative).</summary>
    public static double SecondsBetween(long signalMicros, long deliveredMicros) => Math.Max(0, (deliveredMicros - signalMicros) / 1e6);
}

/// <summary>The whole report of a run's delivery.</summary>
public sealed class DeliveryReport
{
    [JsonPropertyName("run_id")] public string RunId { get; set; } = "";
    [JsonPropertyName("signal_at")] public DateTimeOffset SignalAt { get; set; }
    [JsonPropertyName("written_at")] public DateTimeOffset WrittenAt { get; set; }
    [JsonPropertyName("destinations")] public SortedDictionary<string, DestinationReport> Destinations { get; set; } = new(StringComparer.Ordinal);

    public byte[] ToUtf8Json() => JsonSerializer.SerializeToUtf8Bytes(this, DeliveryJsonContext.Default.DeliveryReport);

    public static DeliveryReport Parse(ReadOnlySpan<byte> json) => JsonSerializer.Deserialize(json, DeliveryJsonContext.Default.DeliveryReport)
        ?? throw new EngineException("empty delivery report");

    /// <summary>The report of <paramref name="records"/> (every record of the run in the ledger).</summary>
    public static DeliveryReport From(string runId, DateTimeOffset signal, IReadOnlyList<LedgerRecord> records, IReadOnlySet<string> completed)
    {
        var report = new DeliveryReport { RunId = runId, SignalAt = signal, WrittenAt = DateTimeOffset.UtcNow };
        var signalMicros = (signal - DateTimeOffset.UnixEpoch).Ticks / 10;
        foreach (var group in records.GroupBy(r => r.Destination))
        {
            var d = new DestinationReport { Completed = completed.Contains(group.Key) };
            var waits = new List<double>();
            foreach (var r in group)
            {
                d.Processed++;
                d.Retried += r.Attempts > 1 ? 1 : 0;
                switch (r.State == "final" ? r.Outcome : null)
                {
                    case Outcomes.Delivered:
                        if (r.Change == DeliveryKeys.Entered)
                        {
                            d.Added++;
                        }
                        else
                        {
                            d.Removed++;
                        }
                        waits.Add(Percentiles.SecondsBetween(signalMicros, r.FinishedAt!.Value));
                        break;
                    case Outcomes.Unmatched: d.Unmatched++; break;
                    case Outcomes.HeldOut: d.HeldOut++; break;
                    case Outcomes.Suppressed: d.Suppressed[r.Reason ?? "unknown"] = d.Suppressed.GetValueOrDefault(r.Reason ?? "unknown") + 1; break;
                    case Outcomes.Failed: d.Failed[r.Reason ?? "unknown"] = d.Failed.GetValueOrDefault(r.Reason ?? "unknown") + 1; break;
                    default: d.Open++; break;
                }
            }
            d.SecondsToDelivery = Percentiles.Of(waits);
            report.Destinations[group.Key] = d;
        }
        return report;
    }
}

/// <summary>
/// Row-level activation events, <c>deliveries/&lt;run_id&gt;/events/</c>: exactly one row per final record
/// (destination, segment, profile, change) with its outcome and reason (DESIGN.md), plus the signal time, the
/// number of attempts and the destination's error, so the loop can be closed later. <c>as_of</c> is the run's as-of
/// time: when, in the data's time, the member entered or left the segment (outcomes are counted from it);
/// <c>holdout_group</c> is <c>control</c> for a record held out (outcome <c>held_out</c>), <c>treatment</c> for any
/// other record of a destination with a holdout, and NULL without one.
/// </summary>
public static class ActivationEvents
{
    public static Schema Schema { get; } = new Schema.Builder()
        .Field(f => f.Name("destination").DataType(StringType.Default).Nullable(false))
        .Field(f => f.Name("segment").DataType(StringType.Default).Nullable(false))
        .Field(f => f.Name("profile_id").DataType(Int64Type.Default).Nullable(false))
        .Field(f => f.Name("change").DataType(StringType.Default).Nullable(false))
        .Field(f => f.Name("outcome").DataType(StringType.Default).Nullable(false))
        .Field(f => f.Name("reason").DataType(StringType.Default).Nullable(true))
        .Field(f => f.Name("ts").DataType(new TimestampType(TimeUnit.Microsecond, "UTC")).Nullable(false))
        .Field(f => f.Name("signal_ts").DataType(new TimestampType(TimeUnit.Microsecond, "UTC")).Nullable(false))
        .Field(f => f.Name("run_id").DataType(StringType.Default).Nullable(false))
        .Field(f => f.Name("key").DataType(StringType.Default).Nullable(false))
        .Field(f => f.Name("attempts").DataType(Int32Type.Default).Nullable(false))
        .Field(f => f.Name("error").DataType(StringType.Default).Nullable(true))
        .Field(f => f.Name("as_of").DataType(new TimestampType(TimeUnit.Microsecond, "UTC")).Nullable(false))
        .Field(f => f.Name("holdout_group").DataType(StringType.Default).Nullable(true))
        .Build();

    /// <summary><c>holdout_group</c> of a record held out.</summary>
    public const string Control = "control";

    /// <summary><c>holdout_group</c> of any other record of a destination with a holdout.</summary>
    public const string Treatment = "treatment";

    /// <summary>
    /// Writes the final records of <paramref name="records"/> to <paramref name="location"/>, atomically;
    /// <paramref name="holdouts"/> names the destinations that hold out a control group.
    /// </summary>
    public static async Task WriteAsync(StorageLocation location, DateTimeOffset signal, DateTimeOffset asOf, IReadOnlyList<LedgerRecord> records,
        IReadOnlySet<string> holdouts, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(holdouts);
        var finals = records.Where(r => r.State == "final").ToList();
        await using var writer = await ParquetDatasetWriter.CreateAsync(location, Schema, cancellationToken: cancellationToken);
        const int Chunk = 64 * 1024;
        var type = new TimestampType(TimeUnit.Microsecond, "UTC");
        for (var start = 0; start < finals.Count; start += Chunk)
        {
            var part = finals.GetRange(start, Math.Min(Chunk, finals.Count - start));
            var destination = new StringArray.Builder();
            var segment = new StringArray.Builder();
            var profile = new Int64Array.Builder();
            var change = new StringArray.Builder();
            var outcome = new StringArray.Builder();
            var reason = new StringArray.Builder();
            var ts = new TimestampArray.Builder(type);
            var signalTs = new TimestampArray.Builder(type);
            var run = new StringArray.Builder();
            var key = new StringArray.Builder();
            var attempts = new Int32Array.Builder();
            var error = new StringArray.Builder();
            var asOfTs = new TimestampArray.Builder(type);
            var group = new StringArray.Builder();
            foreach (var r in part)
            {
                destination.Append(r.Destination);
                segment.Append(r.Segment);
                profile.Append(r.ProfileId);
                change.Append(r.Change);
                outcome.Append(r.Outcome);
                if (r.Reason is null) { reason.AppendNull(); } else { reason.Append(r.Reason); }
                ts.Append(DateTimeOffset.UnixEpoch.AddTicks(r.FinishedAt!.Value * 10));
                signalTs.Append(signal);
                run.Append(r.RunId);
                key.Append(r.Key);
                attempts.Append(r.Attempts);
                if (r.Error is null) { error.AppendNull(); } else { error.Append(r.Error); }
                asOfTs.Append(asOf);
                if (r.Outcome == Outcomes.HeldOut) { group.Append(Control); }
                else if (holdouts.Contains(r.Destination)) { group.Append(Treatment); }
                else { group.AppendNull(); }
            }
            using var batch = new RecordBatch(Schema,
                [destination.Build(), segment.Build(), profile.Build(), change.Build(), outcome.Build(), reason.Build(), ts.Build(), signalTs.Build(),
                 run.Build(), key.Build(), attempts.Build(), error.Build(), asOfTs.Build(), group.Build()], part.Count);
            writer.Write(batch);
        }
        await writer.CommitAsync(cancellationToken);
    }
}

[JsonSourceGenerationOptions(WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(DeliveryReport))]
internal sealed partial class DeliveryJsonContext : JsonSerializerContext;
