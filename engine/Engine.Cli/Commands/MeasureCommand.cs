using System.CommandLine;
using System.Globalization;
using Engine.Connectors.Destinations;
using Engine.Connectors.Holdouts;
using Engine.Runs;
using Engine.Workspaces;
using Spectre.Console;

namespace Engine.Cli.Commands;

/// <summary>
/// <c>engine measure</c>: the closed loop. Per activation with a holdout and per outcome, the conversion of the
/// members sent against those held out, the lift with its 95 % interval, and the time from signal to delivery;
/// written to <c>runs/&lt;run_id&gt;/measurement.json</c> (and shown by the run report).
/// </summary>
internal static class MeasureCommand
{
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    public static Command Create()
    {
        var workspace = ValidateCommand.WorkspaceOption();
        var runId = new Option<string?>("--run-id") { Description = "The run whose identity maps outcome events to profiles, and whose as-of time is the default --as-of (default: the latest succeeded run)" };
        var asOf = new Option<DateTimeOffset?>("--as-of")
        {
            Description = "Measure as of this time: outcome events before it count, and entries whose window closed by then (default: the run's as-of time)",
            CustomParser = EngineCommandLine.ParseInstant,
        };
        var command = new Command("measure", "Measure activations against their holdouts: conversion of those sent vs those held out, lift with a 95 % confidence interval, time to delivery")
        {
            workspace, runId, asOf,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            using var context = EngineCommandLine.Context(parse);
            var loaded = WorkspaceLoader.Load(parse.GetValue(workspace)!);
            var configuration = DestinationsLoader.Load(loaded);
            if (!Measurement.Configured(configuration))
            {
                context.Output.WriteLine($"Workspace '{loaded.Name}' holds out no control group: add 'holdout: {{ percent: 10 }}' to a destination and 'outcomes:' to {DeliverySettings.FileName}.");
                return EngineCommandLine.Success;
            }
            var runs = context.Storage.Resolve(loaded.Output, loaded.Directory).Child("runs");
            var id = parse.GetValue(runId)
                ?? (await RunHistory.FindPreviousAsync(runs, "", DateTimeOffset.MaxValue, "identity", cancellationToken))?.RunId
                ?? throw new EngineException($"no succeeded run under {runs}: run `engine run` first");
            var (measurement, file) = await Measurement.WriteAsync(loaded, configuration, context.Storage, id, parse.GetValue(asOf), cancellationToken);
            Print(context, measurement);
            context.Output.WriteLine($"Measured as of {measurement.AsOf.ToUniversalTime():yyyy-MM-dd HH:mm:ss'Z'} over the deliveries of {measurement.RunsRead.Count} run{(measurement.RunsRead.Count == 1 ? "" : "s")} (identity of run {id}): {file}");
            return EngineCommandLine.Success;
        });
        return command;
    }

    /// <summary>
    /// Before a run report is written (<c>engine run</c>, <c>engine report</c>): measures the run when the workspace
    /// holds out a control group, so the report shows it. A measurement that cannot be made is a warning (and no
    /// older measurement of the run is left behind to be shown as if it were current).
    /// </summary>
    internal static async Task MeasureForReportAsync(Terminal.CliContext context, Workspace workspace, string runId, CancellationToken cancellationToken)
    {
        var folder = context.Storage.Resolve(workspace.Output, workspace.Directory).Child("runs");
        var file = folder.Child(runId).Child(Measurement.FileName);
        try
        {
            var configuration = DestinationsLoader.Load(workspace);
            var manifest = await RunHistory.ReadAsync(folder, runId, cancellationToken);
            if (!Measurement.Configured(configuration) || manifest is null || manifest.Status != RunStatus.Succeeded)
            {
                return;
            }
            await Measurement.WriteAsync(workspace, configuration, context.Storage, runId, null, cancellationToken);
        }
        catch (Exception e) when (e is EngineException or IOException)
        {
            await context.Error.WriteLineAsync($"warning: the holdouts could not be measured for the report ({e.Message}); `engine measure --workspace {workspace.Directory} --run-id {runId}` says more");
            await file.Store.DeleteAsync([file.Key], CancellationToken.None);
        }
    }

    private static void Print(Terminal.CliContext context, Measurement measurement)
    {
        if (measurement.Activations.Count == 0)
        {
            context.Output.WriteLine("No entry with a holdout group has been delivered yet: `engine deliver` first.");
            return;
        }
        var table = new Table().AddColumns("destination", "segment", "outcome", "treatment", "control", "lift (95 % CI)", "open", "to delivery p50 / p95 s");
        foreach (var a in measurement.Activations)
        {
            var delivery = a.SecondsFromSignal is { } s ? $"{s.P50.ToString("F1", Invariant)} / {s.P95.ToString("F1", Invariant)}" : "–";
            foreach (var o in a.Outcomes)
            {
                var lift = o.Lift is { } l ? $"{Points(l)} [{Points(o.LiftLow!.Value)}, {Points(o.LiftHigh!.Value)}]" : "–";
                table.AddRow(Markup.Escape(a.Destination), Markup.Escape(a.Segment), Markup.Escape($"{o.Outcome} ({o.WindowDays} d)"),
                    Markup.Escape(Group(o.Treatment)), Markup.Escape(Group(o.Control)), Markup.Escape(lift), o.Open.ToString("N0", Invariant), Markup.Escape(delivery));
            }
        }
        context.Results.Write(table);
        context.Output.WriteLine("treatment / control: converted of entries whose window closed (rate); lift: treatment rate − control rate in percentage points, Newcombe's 95 % interval.");
    }

    private static string Group(GroupMeasurement g)
        => g.Rate is { } rate ? $"{g.Converted.ToString("N0", Invariant)} / {g.Entries.ToString("N0", Invariant)} ({(rate * 100).ToString("F1", Invariant)} %)" : "0 / 0";

    private static string Points(double value) => (value * 100).ToString("+0.0;−0.0;0.0", Invariant) + " pp";
}
