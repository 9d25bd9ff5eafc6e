using System.CommandLine;
using System.Globalization;
using Engine.Connectors.Reports;
using Engine.Runs;
using Engine.Workspaces;

namespace Engine.Cli.Commands;

/// <summary><c>engine report</c>: writes (again) a run's report, <c>report.html</c> and <c>report.json</c> beside its manifest.</summary>
internal static class ReportCommand
{
    public static Command Create()
    {
        var workspace = ValidateCommand.WorkspaceOption();
        var runId = new Option<string?>("--run-id") { Description = "The run to report on (default: the latest run, by as-of time then finish time)" };
        var history = new Option<int>("--history")
        {
            Description = "How many runs the segment history shows, this one included",
            DefaultValueFactory = _ => RunReport.DefaultHistoryRuns,
        };
        history.Validators.Add(r =>
        {
            if (r.Tokens.Count == 1 && int.TryParse(r.Tokens[0].Value, CultureInfo.InvariantCulture, out var n) && n < 1)
            {
                r.AddError("--history must be at least 1");
            }
        });
        var command = new Command("report", "Write a run's report: one self-contained HTML page with charts (report.html) and the same figures as JSON (report.json)")
        {
            workspace, runId, history,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            using var context = EngineCommandLine.Context(parse);
            var loaded = WorkspaceLoader.Load(parse.GetValue(workspace)!);
            var output = context.Storage.Resolve(loaded.Output, loaded.Directory);
            var id = parse.GetValue(runId);
            if (id is null)
            {
                var runs = await RunHistory.ListAsync(output.Child("runs"), cancellationToken);
                id = runs.Count > 0 ? runs[^1].RunId : throw new EngineException($"workspace '{loaded.Name}' has no run yet under {output.Child("runs")}: run `engine run` first");
            }
            await MeasureCommand.MeasureForReportAsync(context, loaded, id, cancellationToken);
            var files = await RunReport.WriteAsync(output, id, parse.GetValue(history), cancellationToken);
            Print(context.Output, files);
            return EngineCommandLine.Success;
        });
        return command;
    }

    /// <summary>
    /// <c>engine run</c>'s last step: the report of the run just made (after its delivery). A report that cannot be
    /// written is a warning, not a failed run: the run's own outputs are complete and committed by then.
    /// </summary>
    internal static async Task WriteAfterRunAsync(Terminal.CliContext context, Workspace workspace, string runId, CancellationToken cancellationToken)
    {
        try
        {
            await MeasureCommand.MeasureForReportAsync(context, workspace, runId, cancellationToken);
            var files = await RunReport.WriteAsync(context.Storage.Resolve(workspace.Output, workspace.Directory), runId, cancellationToken: cancellationToken);
            Print(context.Output, files);
        }
        catch (Exception e) when (e is not OperationCanceledException and not OutOfMemoryException)
        {
            await context.Error.WriteLineAsync($"warning: the run report could not be written ({e.GetType().Name}: {e.Message}); `engine report --workspace {workspace.Directory} --run-id {runId}` writes it again");
        }
    }

    private static void Print(TextWriter output, RunReportFiles files)
    {
        var report = files.Report;
        var activation = report.Activation.Rate is { } rate
            ? $"{report.Activation.SegmentsReached} of {report.Activation.SegmentsBuilt} segments reach a destination ({(rate * 100).ToString("F1", CultureInfo.InvariantCulture)} %)"
            : "no segment built";
        output.WriteLine($"Report of run {report.RunId} ({report.Status}; {activation}): {files.Html}");
    }
}
