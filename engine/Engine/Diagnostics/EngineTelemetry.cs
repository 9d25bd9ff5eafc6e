using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Engine.Diagnostics;

/// <summary>
/// The engine's one <see cref="Meter"/> and one <see cref="ActivitySource"/>, with OpenTelemetry-style names and
/// units, so any OpenTelemetry exporter a host adds picks up stage timings and record counts.
/// </summary>
public static class EngineTelemetry
{
    /// <summary>The name of the meter and the activity source.</summary>
    public const string Name = "ActivationEngine";

    public static readonly ActivitySource ActivitySource = new(Name);

    public static readonly Meter Meter = new(Name);

    /// <summary>Wall time per pipeline stage.</summary>
    public static readonly Histogram<double> StageDuration = Meter.CreateHistogram<double>("engine.stage.duration", "s", "Duration of a pipeline stage");

    /// <summary>Rows read from sources.</summary>
    public static readonly Counter<long> RecordsRead = Meter.CreateCounter<long>("engine.records.read", "{record}", "Rows read from source datasets");

    /// <summary>Bytes of source files read.</summary>
    public static readonly Counter<long> BytesRead = Meter.CreateCounter<long>("engine.bytes.read", "By", "Bytes of source files scanned");
}
