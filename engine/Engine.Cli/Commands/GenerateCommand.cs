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
        var people = new Option<long>("--people") { Description = "How many people to simulate", Required = true };
        var seed = new Option<long>("--seed") { Description = "Random seed: the same seed writes the same bytes", DefaultValueFactory = _ => 1 };
        var output = new Option<string>("--out") { Description = "Output folder or s3://bucket/prefix", Required = true };
        var days = new Option<int>("--days") { Description = "Days of history before --as-of", DefaultValueFactory = _ => 365 };
        var asOf = new Option<DateTimeOffset?>("--as-of") { Description = "End of the simulated history (default 2026-11-01)", CustomParser = EngineCommandLine.ParseInstant };
        // Validators read the raw token: a value that does not parse is already reported by the parser.
        people.Validators.Add(r => { if (r.Tokens.Count == 1 && long.TryParse(r.Tokens[0].Value, out var n) && n < 1) r.AddError("--people must be at least 1"); });
        days.Validators.Add(r => { if (r.Tokens.Count == 1 && int.TryParse(r.Tokens[0].Value, out var n) && n < 1) r.AddError("--days must be at least 1"); });

        var command = new Command("generate", "Write a synthetic customer base (events, profiles, consent, truth) as Parquet")
        {
            people, seed, output, days, asOf,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            using var context = EngineCommandLine.Context(parse);
            var options = new GeneratorOptions { People = parse.GetValue(people), Seed = parse.GetValue(seed), Days = parse.GetValue(days) };
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
            return EngineCommandLine.Success;
        });
        return command;
    }
}
