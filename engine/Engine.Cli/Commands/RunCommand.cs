using System.CommandLine;
using System.Globalization;
using Engine.Runs;
using Engine.Workspaces;
using Spectre.Console;

namespace Engine.Cli.Commands;

/// <summary><c>engine run</c>: runs every stage that exists for a workspace and writes the run's manifest last.</summary>
internal static class RunCommand
{
    public static Command Create()
    {
        var workspace = ValidateCommand.WorkspaceOption();
        var runId = new Option<string?>("--run-id") { Description = "The run id (default: the start time, yyyyMMddTHHmmssZ)" };
        var asOf = new Option<DateTimeOffset?>("--as-of") { Description = "The instant the run treats as now (default: the start time)", CustomParser = EngineCommandLine.ParseInstant };
        var command = new Command("run", "Run the pipeline for a workspace (stages so far: ingest)") { workspace, runId, asOf };
        command.SetAction(async (parse, cancellationToken) =>
        {
            using var context = EngineCommandLine.Context(parse);
            var loaded = WorkspaceLoader.Load(parse.GetValue(workspace)!);
            var executor = new RunExecutor(context.Storage, context.Logger("engine.run"));
            var options = new RunOptions { RunId = parse.GetValue(runId), AsOf = parse.GetValue(asOf) };
            RunResult result;
            if (context.Progress is { } terminal)
            {
                result = await terminal.Progress().AutoClear(true).StartAsync(async ctx =>
                {
                    var tasks = new Dictionary<string, ProgressTask>();
                    var progress = new Progress<RunProgress>(p =>
                    {
                        if (!tasks.TryGetValue(p.Stage, out var task))
                        {
                            task = tasks[p.Stage] = ctx.AddTask(p.Stage, maxValue: 1);
                        }
                        task.Description = $"{p.Stage}: {Markup.Escape(p.Detail)}";
                        if (p.Fraction < 0)
                        {
                            task.IsIndeterminate = true;
                        }
                        else
                        {
                            task.Value = p.Fraction;
                        }
                    });
                    return await executor.ExecuteAsync(loaded, options, progress, cancellationToken);
                });
            }
            else
            {
                result = await executor.ExecuteAsync(loaded, options, null, cancellationToken);
            }
            Print(context.Results, context.Output, result);
            return EngineCommandLine.Success;
        });
        return command;
    }

    private static void Print(IAnsiConsole console, TextWriter output, RunResult result)
    {
        var manifest = result.Manifest;
        var stages = new Table().AddColumns("stage", "status", "rows", "seconds");
        foreach (var stage in manifest.Stages)
        {
            stages.AddRow(stage.Name, stage.Status, stage.RowsOut.ToString("N0", CultureInfo.InvariantCulture),
                (stage.DurationMs / 1000.0).ToString("F2", CultureInfo.InvariantCulture));
        }
        console.Write(stages);
        var inputs = new Table().AddColumns("source", "files", "rows", "MB", "from", "to");
        foreach (var input in manifest.Inputs)
        {
            inputs.AddRow(
                Markup.Escape(input.Source),
                input.Files.ToString(CultureInfo.InvariantCulture),
                input.Rows.ToString("N0", CultureInfo.InvariantCulture),
                (input.Bytes / 1048576.0).ToString("F1", CultureInfo.InvariantCulture),
                input.MinTimestamp?.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture) ?? "",
                input.MaxTimestamp?.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture) ?? "");
        }
        console.Write(inputs);
        output.WriteLine($"Run {manifest.RunId} {manifest.Status} (as of {manifest.AsOf.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture)}); manifest: {result.ManifestLocation}");
    }
}
