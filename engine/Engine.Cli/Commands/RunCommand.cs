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
        var fullRefresh = new Option<bool>("--full-refresh")
        {
            Description = "Rebuild the identity graph from all history (so corrected rules can split old merges) instead of adding only new files to the previous run's graph",
        };
        var deliver = new Option<bool>("--deliver")
        {
            Description = "After the stages, deliver the run's membership changes to the workspace's destinations (as `engine deliver` does)",
        };
        var command = new Command("run", "Run the pipeline for a workspace: ingest, identity, profiles, scores, segments and deltas (and with --deliver, delivery)")
        {
            workspace, runId, asOf, fullRefresh, deliver,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            using var context = EngineCommandLine.Context(parse);
            var loaded = WorkspaceLoader.Load(parse.GetValue(workspace)!);
            // Destinations are checked before anything is read, like the rest of the workspace.
            var delivery = parse.GetValue(deliver) ? Connectors.Destinations.DestinationsLoader.Load(loaded) : null;
            var executor = new RunExecutor(context.Storage, context.Logger("engine.run"));
            // The default run id is fixed here rather than in the executor, so that a failed run can still be reported.
            var started = DateTimeOffset.UtcNow;
            var id = parse.GetValue(runId) ?? started.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture);
            var options = new RunOptions { RunId = id, AsOf = parse.GetValue(asOf), FullRefresh = parse.GetValue(fullRefresh) };
            RunResult result;
            try
            {
                result = await ExecuteAsync(context, executor, loaded, options, cancellationToken);
            }
            catch (EngineException)
            {
                // A failed run leaves a manifest saying so; its report shows how far it got. (A run refused before it
                // started, by its lock or a bad run id, leaves none of its own and gets no report.)
                var manifest = await RunHistory.ReadAsync(context.Storage.Resolve(loaded.Output, loaded.Directory).Child("runs"), id, cancellationToken);
                if (manifest is { Status: RunStatus.Failed } && manifest.FinishedAt >= started)
                {
                    await ReportCommand.WriteAfterRunAsync(context, loaded, id, cancellationToken);
                }
                throw;
            }
            if (result.AlreadySucceeded)
            {
                context.Output.WriteLine($"Run {id} already succeeded (as of {result.Manifest.AsOf:yyyy-MM-dd HH:mm:ss}Z): nothing to run; use a new --run-id to run again.");
            }
            else
            {
                PrintDetails(context.Results, context.Output, result);
            }
            var (code, delivered) = delivery is null ? (EngineCommandLine.Success, null) : await DeliverCommand.DeliverAsync(context, loaded, delivery, result, cancellationToken);
            // The summary, last: every stage (the delivery too), the segments' changes, and where they went.
            await PrintSummaryAsync(context, loaded, result, delivery, delivered, cancellationToken);
            // Last, after the delivery: the report shows what reached the destinations.
            await ReportCommand.WriteAfterRunAsync(context, loaded, result.Manifest.RunId, cancellationToken);
            return code;
        });
        return command;
    }

    /// <summary>Runs the stages, with progress bars on a terminal and plain log lines otherwise.</summary>
    private static async Task<RunResult> ExecuteAsync(Terminal.CliContext context, RunExecutor executor, Workspace loaded, RunOptions options, CancellationToken cancellationToken)
    {
        if (context.Progress is not { } terminal)
        {
            return await executor.ExecuteAsync(loaded, options, null, cancellationToken);
        }
        // Stage, what it does with its rows and their rate, then a bar, time spent and time left where the stage knows its total.
        var columns = new ProgressColumn[]
        {
            new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn(), new SpinnerColumn(),
        };
        return await terminal.Progress().Columns(columns).AutoClear(true).StartAsync(async ctx =>
        {
            var tasks = new Dictionary<string, (ProgressTask Task, System.Diagnostics.Stopwatch Clock)>();
            var progress = new Progress<RunProgress>(p =>
            {
                if (!tasks.TryGetValue(p.Stage, out var entry))
                {
                    // A new stage: the one before is done.
                    foreach (var (earlier, _) in tasks.Values.Where(t => !t.Task.IsFinished))
                    {
                        earlier.IsIndeterminate = false;
                        earlier.Value = earlier.MaxValue;
                        earlier.StopTask();
                    }
                    entry = tasks[p.Stage] = (ctx.AddTask(p.Stage, maxValue: 1), System.Diagnostics.Stopwatch.StartNew());
                }
                var (task, clock) = entry;
                var rate = p.Rows > 0 && clock.Elapsed.TotalSeconds > 0.5 ? $" ({p.Rows / clock.Elapsed.TotalSeconds:N0} rows/s)" : "";
                task.Description = $"{p.Stage}: {Markup.Escape(p.Detail)}{rate}";
                task.IsIndeterminate = p.Fraction < 0;
                if (p.Fraction >= 0)
                {
                    task.Value = Math.Min(p.Fraction, 1);
                }
            });
            return await executor.ExecuteAsync(loaded, options, progress, cancellationToken);
        });
    }

    /// <summary>What each stage found: inputs, identity, profiles, scores. The summary follows after the delivery.</summary>
    private static void PrintDetails(IAnsiConsole console, TextWriter output, RunResult result)
    {
        var manifest = result.Manifest;
        if (manifest.Attempts > 1)
        {
            output.WriteLine($"Resumed: attempt {manifest.Attempts}; the stages of earlier attempts were reused, not run again.");
        }
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
        if (manifest.Identity is { } identity)
        {
            var table = new Table().AddColumns("identity", "value");
            string N(long value) => value.ToString("N0", CultureInfo.InvariantCulture);
            table.AddRow("mode", Markup.Escape($"{identity.Mode} ({identity.ModeReason})"));
            table.AddRow("identifiers", Markup.Escape($"{N(identity.Identifiers)} ({N(identity.NewIdentifiers)} new)"));
            table.AddRow("links", N(identity.Edges));
            table.AddRow("profiles", Markup.Escape($"{N(identity.Profiles)} ({N(identity.ProfilesKept)} kept, {N(identity.ProfilesCreated)} new, {N(identity.ProfilesMerged)} merged, {N(identity.ProfilesSplit)} split)"));
            table.AddRow("largest profile", Markup.Escape($"{N(identity.LargestProfile)} identifiers"));
            table.AddRow("links refused", Markup.Escape(identity.LinksRefused.Count == 0 ? "0" : string.Join(", ", identity.LinksRefused.Select(p => $"{p.Key} {N(p.Value)}"))));
            table.AddRow("shared values", Markup.Escape(identity.SharedValues.Count == 0 ? "0" : string.Join(", ", identity.SharedValues.Select(p => $"{p.Key} {N(p.Value)}"))));
            var blocked = identity.ValuesSkipped.Where(p => p.Value.ContainsKey("blocked")).Select(p => $"{p.Key} {N(p.Value["blocked"])}").ToList();
            table.AddRow("blocklisted values", Markup.Escape(blocked.Count == 0 ? "0" : string.Join(", ", blocked)));
            console.Write(table);
            if (identity is { Mode: "incremental", FilesRead: 0 })
            {
                output.WriteLine($"No new input since run {identity.PreviousRunId}: no file was read tonight; any change in the segments comes from the later as-of time alone (time windows, recency).");
            }
        }
        if (manifest.Profiles is { } profiles)
        {
            var table = new Table().AddColumns("profiles", "value");
            string N(long value) => value.ToString("N0", CultureInfo.InvariantCulture);
            table.AddRow("profiles", Markup.Escape($"{N(profiles.Profiles)} ({profiles.Attributes} attributes, {profiles.Traits} traits)"));
            table.AddRow("attribute rows", Markup.Escape($"{N(profiles.AttributeRowsRead)} ({N(profiles.AttributeRowsWithoutProfile)} without a profile)"));
            table.AddRow("events", Markup.Escape($"{N(profiles.EventsRead)} ({N(profiles.EventsWithoutProfile)} without a profile)"));
            table.AddRow("rows after as-of", N(profiles.RowsAfterAsOf));
            console.Write(table);
        }
        if (manifest.Scores is { } scores)
        {
            var table = new Table().AddColumns("model", "version", "trained tonight", "ROC AUC", "scored", "mean", "p90", "PSI");
            foreach (var (name, model) in scores.Models)
            {
                string F(double? value) => value?.ToString("F4", CultureInfo.InvariantCulture) ?? "";
                var trained = model.TrainedVersion is { } version ? $"version {version}: {model.Decision}" : "";
                table.AddRow(Markup.Escape(name), model.Version?.ToString(CultureInfo.InvariantCulture) ?? "none", Markup.Escape(trained), F(model.ValidationRocAuc),
                    model.Scored.ToString("N0", CultureInfo.InvariantCulture), F(model.Mean), F(model.P90), F(model.Psi));
                if (model.Error is { } error)
                {
                    table.AddRow("", "", $"[red]{Markup.Escape(error)}[/]", "", "", "", "", "");
                }
            }
            console.Write(table);
        }
    }

    /// <summary>
    /// The end of <c>engine run</c>'s output: one table of every stage (rows in and out, seconds, and for identity and
    /// segments whether they continued the previous run), the segments' members and changes, the delivery per
    /// destination (what was sent where), and the run's line.
    /// </summary>
    /// <summary>A stage's peak resident set for the summary: <c>2.75 GiB</c>, <c>412 MiB</c>, empty where not measured.</summary>
    internal static string Memory(long? bytes) => bytes switch
    {
        null => "",
        >= 1L << 30 => (bytes.Value / (double)(1L << 30)).ToString("F2", CultureInfo.InvariantCulture) + " GiB",
        _ => (bytes.Value >> 20).ToString(CultureInfo.InvariantCulture) + " MiB",
    };

    private static async Task PrintSummaryAsync(Terminal.CliContext context, Workspace workspace, RunResult result,
        Connectors.Destinations.DeliveryConfiguration? delivery, Connectors.Delivery.DeliveryResult? delivered, CancellationToken cancellationToken)
    {
        var console = context.Results;
        var manifest = result.Manifest;
        string N(long value) => value.ToString("N0", CultureInfo.InvariantCulture);
        var runFolder = context.Storage.Resolve(workspace.Output, workspace.Directory).Child("runs").Child(manifest.RunId);
        var resultsFile = runFolder.Child(RunResults.FileName);
        var results = await resultsFile.Store.GetAsync(resultsFile.Key, cancellationToken) is { } bytes ? RunResults.Parse(bytes) : RunResults.From(manifest);

        var stages = new Table().Title("stages").AddColumns("stage", "status", "rows in", "rows out", "seconds", "peak memory", "note");
        foreach (var stage in results.Results)
        {
            var note = stage.Stage switch
            {
                "identity" when manifest.Identity is { } identity => $"{identity.Mode}: {identity.ModeReason}",
                "segments" when manifest.Segments is { } segments => segments.PreviousRunId is null
                    ? "first run: every member entered" : $"deltas against run {segments.PreviousRunId}",
                "deliver" when delivered?.Report is { } report => report.Destinations.Count == 1 ? "1 destination" : $"{report.Destinations.Count} destinations",
                // Which files' figures came from their footers and which were read (per source in run_results.json).
                "ingest" when stage.Status == RunStatus.Succeeded && manifest.Stages.Find(r => r.Name == "ingest") is { } ingest
                    && ingest.Counts.TryGetValue("files_from_footer", out var footers) && ingest.Counts.TryGetValue("files_scanned", out var scanned)
                    => $"{N(footers)} file(s) checked at their footers, {N(scanned)} scanned",
                _ => stage.Status == RunStatus.Succeeded ? "" : stage.Message ?? "",
            };
            // A resumed run reuses the stages an earlier attempt finished: say so rather than show them as run now.
            if (manifest.Stages.Find(r => r.Name == stage.Stage) is { } record && record.Attempt < manifest.Attempts)
            {
                note = note.Length == 0 ? $"reused from attempt {record.Attempt}" : $"reused from attempt {record.Attempt}; {note}";
            }
            stages.AddRow(Markup.Escape(stage.Stage), Markup.Escape(stage.Status), N(stage.RowsIn), N(stage.RowsOut),
                stage.DurationSeconds.ToString("F1", CultureInfo.InvariantCulture), Memory(stage.PeakMemoryBytes), Markup.Escape(note));
        }
        stages.AddRow("total", Markup.Escape(results.Status), "", "", results.Results.Sum(r => r.DurationSeconds).ToString("F1", CultureInfo.InvariantCulture),
            Memory(results.Results.Max(r => r.PeakMemoryBytes)), "");
        console.Write(stages);

        if (manifest.Segments is { } segmentsReport)
        {
            var against = segmentsReport.PreviousRunId is null ? "first run: every member entered" : $"changes against run {segmentsReport.PreviousRunId}";
            var table = new Table().Title("segments").AddColumns("segment", "members", "entered", "exited").Caption(Markup.Escape(against));
            foreach (var segment in segmentsReport.Segments)
            {
                table.AddRow(Markup.Escape(segment.Declared ? segment.Name : $"{segment.Name} (removed)"), N(segment.Members), N(segment.Entered), N(segment.Exited));
            }
            console.Write(table);
        }
        if (delivered is not null && delivery is not null)
        {
            await DeliverCommand.PrintAsync(context, workspace, delivery, delivered);
        }
        context.Output.WriteLine($"Run {manifest.RunId} {results.Status} (as of {manifest.AsOf.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture)}); manifest: {result.ManifestLocation}");
    }
}
