using System.CommandLine;
using System.Globalization;
using Engine.Connectors.Delivery;
using Engine.Connectors.Destinations;
using Engine.Workspaces;
using Spectre.Console;

namespace Engine.Cli.Commands;

/// <summary><c>engine deliver</c>: sends a run's membership changes to the workspace's destinations.</summary>
internal static class DeliverCommand
{
    public static Command Create()
    {
        var workspace = ValidateCommand.WorkspaceOption();
        var runId = new Option<string?>("--run-id") { Description = "The run whose deltas to deliver (default: the latest succeeded run)" };
        var destination = new Option<string?>("--destination") { Description = "Deliver to this destination only" };
        var dryRun = new Option<bool>("--dry-run") { Description = "Show what would be sent, per destination and outcome; send and write nothing" };
        var command = new Command("deliver", "Deliver membership deltas to the destinations (consent checked at send time, every record accounted for)")
        {
            workspace, runId, destination, dryRun,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            using var context = EngineCommandLine.Context(parse);
            var loaded = WorkspaceLoader.Load(parse.GetValue(workspace)!);
            var configuration = DestinationsLoader.Load(loaded);
            if (configuration.Destinations.Count == 0)
            {
                context.Output.WriteLine($"Workspace '{loaded.Name}' declares no destinations (add files under {DestinationsLoader.Folder}/).");
                return EngineCommandLine.Success;
            }
            var dry = parse.GetValue(dryRun);
            var result = await new DeliveryRunner(loaded, configuration, context.Storage).RunAsync(new DeliveryOptions
            {
                RunId = parse.GetValue(runId),
                Destination = parse.GetValue(destination),
                DryRun = dry,
            }, cancellationToken);

            if (dry)
            {
                var plan = new Table().AddColumns("destination", "records", "would be");
                foreach (var outcome in result.Destinations)
                {
                    plan.AddRow(Markup.Escape(outcome.Destination), outcome.Planned.ToString("N0", CultureInfo.InvariantCulture),
                        Markup.Escape(string.Join(", ", outcome.DryRunCounts.Select(c => $"{c.Key} {c.Value:N0}"))));
                }
                context.Results.Write(plan);
                context.Output.WriteLine($"Dry run of run {result.RunId}: nothing was sent (records already final in the ledger are not shown).");
                return EngineCommandLine.Success;
            }

            return await PrintAsync(context, loaded, configuration, result);
        });
        return command;
    }

    /// <summary>
    /// <c>engine run --deliver</c>'s last stage: delivers the run just made and adds a <c>deliver</c> entry to the
    /// run's <c>run_results.json</c>; returns the exit code and what was delivered (null when nothing could be), which
    /// <c>engine run</c> prints in its summary (<see cref="PrintAsync"/>).
    /// </summary>
    internal static async Task<(int Code, DeliveryResult? Result)> DeliverAsync(Terminal.CliContext context, Workspace workspace, DeliveryConfiguration configuration, Runs.RunResult run,
        CancellationToken cancellationToken)
    {
        var manifest = run.Manifest;
        var runFolder = context.Storage.Resolve(workspace.Output, workspace.Directory).Child("runs").Child(manifest.RunId);
        var resultsFile = runFolder.Child(Runs.RunResults.FileName);
        var results = await resultsFile.Store.GetAsync(resultsFile.Key, cancellationToken) is { } bytes ? Runs.RunResults.Parse(bytes) : Runs.RunResults.From(manifest);
        var stage = new Runs.StageResult { Stage = "deliver", StartedAt = DateTimeOffset.UtcNow };
        var peakMeasured = Diagnostics.ProcessMemory.StartStage();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var code = EngineCommandLine.Success;
        DeliveryResult? delivered = null;
        if (configuration.Destinations.Count == 0)
        {
            stage.Message = $"no destinations (add files under {DestinationsLoader.Folder}/)";
        }
        else
        {
            try
            {
                var result = delivered = await new DeliveryRunner(workspace, configuration, context.Storage).RunAsync(new DeliveryOptions { RunId = manifest.RunId }, cancellationToken);
                code = result.Destinations.Any(d => d.Error is not null) ? EngineCommandLine.Failure : EngineCommandLine.Success;
                var report = result.Report!;
                stage.RowsIn = report.Destinations.Values.Sum(d => d.Processed);
                stage.RowsOut = report.Destinations.Values.Sum(d => d.Added + d.Removed);
                var stopped = result.Destinations.Where(d => d.Error is not null).Select(d => $"{d.Destination}: {d.Error}").ToList();
                if (stopped.Count > 0)
                {
                    stage.Status = Runs.RunStatus.Failed;
                    stage.Message = string.Join("; ", stopped);
                }
            }
            catch (EngineException e)
            {
                stage.Status = Runs.RunStatus.Failed;
                stage.Message = e.Message;
                await context.Error.WriteLineAsync($"delivery failed: {e.Message}");
                code = EngineCommandLine.Failure;
            }
        }
        stage.DurationSeconds = clock.Elapsed.TotalSeconds;
        stage.PeakMemoryBytes = Diagnostics.ProcessMemory.StagePeakBytes(peakMeasured);
        results.Add(stage, DateTimeOffset.UtcNow);
        await results.WriteAsync(runFolder, cancellationToken);
        return (code, delivered);
    }

    /// <summary>The delivery per destination: where it goes, and each record's outcome; then the destinations that stopped.</summary>
    internal static async Task<int> PrintAsync(Terminal.CliContext context, Workspace workspace, DeliveryConfiguration configuration, DeliveryResult result)
    {
        var table = new Table().Title("delivery").AddColumns("destination", "to", "processed", "added", "removed", "unmatched", "held out", "suppressed", "failed", "retried", "open");
        foreach (var (name, d) in result.Report!.Destinations)
        {
            table.AddRow(Markup.Escape(name), Markup.Escape(Where(context, workspace, configuration.Destinations.FirstOrDefault(x => x.Name == name), result.RunId)),
                N(d.Processed), N(d.Added), N(d.Removed), N(d.Unmatched), N(d.HeldOut),
                Markup.Escape(Reasons(d.Suppressed)), Markup.Escape(Reasons(d.Failed)), N(d.Retried), N(d.Open));
        }
        context.Results.Write(table);
        var stopped = result.Destinations.Where(d => d.Error is not null).ToList();
        foreach (var outcome in stopped)
        {
            await context.Error.WriteLineAsync($"destination '{outcome.Destination}' stopped: {outcome.Error} (its open records wait for the next `engine deliver`)");
        }
        context.Output.WriteLine($"Delivered run {result.RunId}; events and report: {result.Folder}");
        return stopped.Count == 0 ? EngineCommandLine.Success : EngineCommandLine.Failure;
    }

    /// <summary>Where a destination's records went: a file export's folder for this run, a webhook's URL, or the type of an API.</summary>
    private static string Where(Terminal.CliContext context, Workspace workspace, DestinationDefinition? destination, string runId)
    {
        if (destination is null)
        {
            return "";
        }
        switch (destination.Type)
        {
            case DestinationType.File when destination.Setting("path") is { } path:
                var output = context.Storage.Resolve(workspace.Output, workspace.Directory);
                var root = Storage.StorageResolver.IsUri(path) || Path.IsPathRooted(path) ? context.Storage.Resolve(path, workspace.Directory) : output.Child(path);
                var folder = root.Child(runId).ToString();
                // A local folder under the current one is shown from there, as it would be typed.
                if (!Storage.StorageResolver.IsUri(folder) && Path.GetRelativePath(Environment.CurrentDirectory, folder) is var relative && !relative.StartsWith("..", StringComparison.Ordinal))
                {
                    folder = relative;
                }
                return $"{folder}/ ({destination.Setting("format") ?? "csv"})";
            case DestinationType.Webhook:
                return $"POST {destination.Setting("url")}";
            default:
                return DestinationTypeInfo.Of(destination.Type).Name;
        }
    }

    private static string N(long value) => value.ToString("N0", CultureInfo.InvariantCulture);

    /// <summary>Counts by reason, one reason a line (the table stays narrow enough not to wrap its paths).</summary>
    private static string Reasons(SortedDictionary<string, long> counts)
        => counts.Count == 0 ? "0" : string.Join("\n", counts.Select(c => $"{c.Key} {c.Value:N0}"));
}
