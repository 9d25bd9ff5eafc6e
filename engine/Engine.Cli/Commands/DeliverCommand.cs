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

            var table = new Table().AddColumns("destination", "processed", "added", "removed", "unmatched", "suppressed", "failed", "retried", "open");
            foreach (var (name, d) in result.Report!.Destinations)
            {
                table.AddRow(Markup.Escape(name), N(d.Processed), N(d.Added), N(d.Removed), N(d.Unmatched),
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
        });
        return command;
    }

    private static string N(long value) => value.ToString("N0", CultureInfo.InvariantCulture);

    private static string Reasons(SortedDictionary<string, long> counts)
        => counts.Count == 0 ? "0" : string.Join(", ", counts.Select(c => $"{c.Key} {c.Value:N0}"));
}
