using System.CommandLine;
using System.Diagnostics;
using Engine.Datasets;
using Spectre.Console;

namespace Engine.Cli.Commands;

/// <summary><c>engine generate</c>: writes a synthetic customer base with ground truth.</summary>
internal static class GenerateCommand
{
    public static Command Create()
    {
        var people = new Option<long?>("--people") { Description = "How many people to simulate (required, except with --next-day)" };
        var seed = new Option<long>("--seed") { Description = "Random seed: the same seed writes the same bytes", DefaultValueFactory = _ => 1 };
        var output = new Option<string>("--out") { Description = "Output folder or s3://bucket/prefix", Required = true };
        var days = new Option<int>("--days") { Description = "Days of history before --as-of", DefaultValueFactory = _ => 365 };
        var asOf = new Option<DateTimeOffset?>("--as-of") { Description = "End of the simulated history (default 2026-11-01)", CustomParser = EngineCommandLine.ParseInstant };
        var futureDays = new Option<int>("--future-days")
        {
            Description = "Also simulate this many days after --as-of, written later a day at a time by --next-day (the same people's next days)",
        };
        var nextDay = new Option<bool>("--next-day")
        {
            Description = "Append the next day of the data set in --out (generated with --future-days): new files beside the old ones, same people",
        };
        futureDays.Validators.Add(r => { if (r.Tokens.Count == 1 && int.TryParse(r.Tokens[0].Value, out var n) && n is < 0 or > 3650) r.AddError("--future-days must be between 0 and 3650"); });
        // Validators read the raw token: a value that does not parse is already reported by the parser.
        people.Validators.Add(r => { if (r.Tokens.Count == 1 && long.TryParse(r.Tokens[0].Value, out var n) && n < 1) r.AddError("--people must be at least 1"); });
        days.Validators.Add(r => { if (r.Tokens.Count == 1 && int.TryParse(r.Tokens[0].Value, out var n) && n < 1) r.AddError("--days must be at least 1"); });

        var command = new Command("generate", "Write a synthetic customer base (events, profiles, consent, truth) as Parquet")
        {
            people, seed, output, days, asOf, futureDays, nextDay,
        };
        command.Validators.Add(r =>
        {
            if (r.GetValue(nextDay))
            {
                var given = new Option[] { people, seed, days, asOf, futureDays }.Where(o => r.GetResult(o) is { Implicit: false }).Select(o => o.Name).ToList();
                if (given.Count > 0)
                {
                    r.AddError($"--next-day continues the data set in --out as it was generated (its {Datasets.GeneratorState.FileName}); drop {string.Join(", ", given)}");
                }
            }
            else if (r.GetResult(people) is null)
            {
                r.AddError("Option '--people' is required.");
            }
        });
        command.SetAction(async (parse, cancellationToken) =>
        {
            using var context = EngineCommandLine.Context(parse);
            if (parse.GetValue(nextDay))
            {
                return await AppendDayAsync(context, context.Storage.Resolve(parse.GetValue(output)!), cancellationToken);
            }
            var options = new GeneratorOptions
            {
                People = parse.GetValue(people)!.Value, Seed = parse.GetValue(seed), Days = parse.GetValue(days), FutureDays = parse.GetValue(futureDays),
            };
            if (parse.GetValue(asOf) is { } end)
            {
                options = options with { AsOf = end };
            }
            var target = context.Storage.Resolve(parse.GetValue(output)!);
            var generator = new SyntheticGenerator(options);
            var clock = Stopwatch.StartNew();
            GenerationSummary summary;
            if (context.Progress is { } terminal)
            {
                summary = await terminal.Progress().AutoClear(true).StartAsync(async ctx =>
                {
                    var task = ctx.AddTask("generating people", maxValue: options.People);
                    return await generator.GenerateAsync(target, new Progress<GenerationProgress>(p => task.Value = p.PeopleDone), cancellationToken);
                });
            }
            else
            {
                summary = await generator.GenerateAsync(target, null, cancellationToken);
            }
            var table = new Table().AddColumns("dataset", "rows", "location");
            table.AddRow(GeneratedDatasets.EventsFolder, $"{summary.Events:N0}", target.Child(GeneratedDatasets.EventsFolder).ToString());
            table.AddRow(GeneratedDatasets.ProfilesFolder, $"{summary.ProfileRows:N0}", target.Child(GeneratedDatasets.ProfilesFolder).ToString());
            table.AddRow(GeneratedDatasets.ConsentFolder, $"{summary.ConsentRows:N0}", target.Child(GeneratedDatasets.ConsentFolder).ToString());
            table.AddRow(GeneratedDatasets.TruthFolder, $"{summary.TruthRows:N0}", target.Child(GeneratedDatasets.TruthFolder).ToString());
            context.Results.Write(table);
            var seconds = Math.Max(clock.Elapsed.TotalSeconds, 1e-3);
            context.Output.WriteLine($"Generated {summary.People:N0} people (seed {options.Seed}, {options.Days} days to {options.AsOf:yyyy-MM-dd}) in {seconds:F1} s: {summary.Events / seconds:N0} events/s");
            if (options.FutureDays > 0)
            {
                context.Output.WriteLine($"Simulated {options.FutureDays} more days, to {options.AsOf.AddDays(options.FutureDays):yyyy-MM-dd}, held back: `engine generate --out {target} --next-day` appends them a day at a time");
            }
            return EngineCommandLine.Success;
        });
        return command;
    }

    /// <summary><c>--next-day</c>: the next day of a growing data set, as new files beside the old ones.</summary>
    private static async Task<int> AppendDayAsync(Terminal.CliContext context, Storage.StorageLocation target, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var before = await GeneratorState.ReadAsync(target, cancellationToken);
        (GenerationSummary Summary, GeneratorState State) appended;
        if (context.Progress is { } terminal && before is not null)
        {
            appended = await terminal.Progress().AutoClear(true).StartAsync(async ctx =>
            {
                var task = ctx.AddTask("simulating people", maxValue: before.People);
                return await SyntheticGenerator.AppendDayAsync(target, null, new Progress<GenerationProgress>(p => task.Value = p.PeopleDone), cancellationToken);
            });
        }
        else
        {
            appended = await SyntheticGenerator.AppendDayAsync(target, null, null, cancellationToken);
        }
        var (summary, state) = appended;
        var slice = $"day-{state.AsOf.AddDays(-1):yyyy-MM-dd}";
        var table = new Table().AddColumns("dataset", "new rows", "new files");
        table.AddRow(GeneratedDatasets.EventsFolder, $"{summary.Events:N0}", target.Child(GeneratedDatasets.EventsFolder).Child(slice).ToString());
        table.AddRow(GeneratedDatasets.ProfilesFolder, $"{summary.ProfileRows:N0}", target.Child(GeneratedDatasets.ProfilesFolder).Child(slice).ToString());
        table.AddRow(GeneratedDatasets.ConsentFolder, $"{summary.ConsentRows:N0}", target.Child(GeneratedDatasets.ConsentFolder).Child(slice).ToString());
        table.AddRow($"{GeneratedDatasets.TruthFolder} (written again)", $"{summary.TruthRows:N0}", target.Child(GeneratedDatasets.TruthFolder).ToString());
        context.Results.Write(table);
        context.Output.WriteLine($"Appended {state.AsOf.AddDays(-1):yyyy-MM-dd} for the same {state.People:N0} people (seed {state.Seed}) in {clock.Elapsed.TotalSeconds:F1} s: "
            + $"the data now ends at {state.AsOf:yyyy-MM-dd} (simulated to {state.SimulatedUntil:yyyy-MM-dd}); run it as of {state.AsOf:yyyy-MM-dd}");
        return EngineCommandLine.Success;
    }
}
