using System.CommandLine;
using System.Globalization;
using Engine.Cli.Terminal;
using Engine.Identity;
using Engine.Profiles;
using Engine.Runs;
using Engine.Scores;
using Engine.Workspaces;
using Spectre.Console;

namespace Engine.Cli.Commands;

/// <summary>
/// <c>engine models train | list | evaluate</c>: train a workspace's models over the latest run (promoting each new
/// version only if it validates as well as the one scoring), list the versions in the registry, and print a
/// version's validation figures: ROC AUC, PR AUC, log-loss, the calibration table and feature importance.
/// </summary>
internal static class ModelsCommand
{
    public static Command Create() => new("models", "Train, list and evaluate the workspace's models (models/<name>.yaml)")
    {
        Train(), List(), Evaluate(),
    };

    private static Command Train()
    {
        var workspace = ValidateCommand.WorkspaceOption();
        var name = new Argument<string?>("name") { Description = "One model to train (default: all)", Arity = ArgumentArity.ZeroOrOne };
        var runId = new Option<string?>("--run-id") { Description = "The run whose identity and profiles to train from (default: the latest run with profiles)" };
        var command = new Command("train", "Train the models over the latest run's data as of its as-of time, and promote each version that validates as well as the current one")
        {
            workspace, name, runId,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            using var context = EngineCommandLine.Context(parse);
            var loaded = WorkspaceLoader.Load(parse.GetValue(workspace)!);
            ModelChecks.Check(loaded);
            var models = Chosen(loaded, parse.GetValue(name));
            var (run, manifest) = await LatestRunAsync(context, loaded, parse.GetValue(runId), cancellationToken);
            context.Output.WriteLine($"training {models.Count} model(s) over run {manifest.RunId} (as of {manifest.AsOf:yyyy-MM-dd HH:mm} UTC)");
            var table = await ProfileTable.ReadAsync(run.Child(ProfilesStage.Folder), cancellationToken);
            var registry = Registry(context, loaded);
            var training = new ModelTraining(context.Storage, context.Logger("engine.models"));
            var results = new Table().AddColumns("model", "version", "examples", "positives", "ROC AUC", "decision");
            foreach (var model in models)
            {
                if (model.External is { } external)
                {
                    results.AddRow(Markup.Escape(model.Name), "", "", "", "", Markup.Escape($"not trained here: {external.Path} was trained elsewhere (the next run registers it when it changes)"));
                    continue;
                }
                var progress = new Lines(context.Output);
                var outcome = await training.TrainAsync(loaded, model, run.Child(IdentityStage.Folder), table, manifest.AsOf, registry, Environment.ProcessorCount, progress, cancellationToken);
                var metrics = outcome.Record.Metrics;
                results.AddRow(Markup.Escape(model.Name), outcome.Record.Version.ToString(CultureInfo.InvariantCulture), metrics.TrainingExamples.ToString("N0", CultureInfo.InvariantCulture),
                    metrics.TrainingPositives.ToString("N0", CultureInfo.InvariantCulture), metrics.RocAuc.ToString("F4", CultureInfo.InvariantCulture), Markup.Escape(outcome.Record.Decision));
            }
            context.Results.Write(results);
            return EngineCommandLine.Success;
        });
        return command;
    }

    private static Command List()
    {
        var workspace = ValidateCommand.WorkspaceOption();
        var command = new Command("list", "List every trained version of every model, the one scoring marked") { workspace };
        command.SetAction(async (parse, cancellationToken) =>
        {
            using var context = EngineCommandLine.Context(parse);
            var loaded = WorkspaceLoader.Load(parse.GetValue(workspace)!);
            var registry = Registry(context, loaded);
            var names = loaded.Models.Select(m => m.Name).Union(await registry.ModelsAsync(cancellationToken)).ToList();
            var table = new Table().AddColumns("model", "version", "scoring", "trained at", "label", "ROC AUC", "validation", "decision");
            foreach (var model in names)
            {
                var current = await registry.CurrentAsync(model, cancellationToken);
                var versions = await registry.VersionsAsync(model, cancellationToken);
                if (versions.Count == 0)
                {
                    table.AddRow(Markup.Escape(model), "none", "", "", "", "", "", "not trained yet: the next run trains it");
                }
                foreach (var version in versions)
                {
                    table.AddRow(Markup.Escape(model), version.Version.ToString(CultureInfo.InvariantCulture), current?.Version == version.Version ? "yes" : "",
                        version.TrainedAt.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture), Markup.Escape(Label(version)),
                        version.Metrics.RocAuc.ToString("F4", CultureInfo.InvariantCulture), Markup.Escape(version.Metrics.Method), Markup.Escape(version.Decision));
                }
            }
            context.Results.Write(table);
            return EngineCommandLine.Success;
        });
        return command;
    }

    private static Command Evaluate()
    {
        var workspace = ValidateCommand.WorkspaceOption();
        var name = new Argument<string>("name") { Description = "The model" };
        var version = new Option<int?>("--version") { Description = "The version (default: the one scoring)" };
        var command = new Command("evaluate", "Print a model version's validation figures: ROC AUC, PR AUC, log-loss, calibration and feature importance")
        {
            workspace, name, version,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            using var context = EngineCommandLine.Context(parse);
            var loaded = WorkspaceLoader.Load(parse.GetValue(workspace)!);
            var model = parse.GetValue(name)!;
            var registry = Registry(context, loaded);
            var versions = await registry.VersionsAsync(model, cancellationToken);
            if (versions.Count == 0)
            {
                var hint = Suggestions.Nearest(model, loaded.Models.Select(m => m.Name));
                throw new EngineException($"model '{model}' has no trained version in {loaded.Output}{(hint is not null && hint != model ? $" (did you mean '{hint}'?)" : "; run 'engine run' or 'engine models train' first")}");
            }
            var wanted = parse.GetValue(version) ?? (await registry.CurrentAsync(model, cancellationToken))?.Version ?? versions[^1].Version;
            var record = versions.FirstOrDefault(v => v.Version == wanted)
                ?? throw new EngineException($"model '{model}' has no version {wanted} (versions: {string.Join(", ", versions.Select(v => v.Version))})");
            Print(context.Results, record);
            return EngineCommandLine.Success;
        });
        return command;
    }

    private static void Print(IAnsiConsole console, ModelRecord record)
    {
        var m = record.Metrics;
        string F(double value) => value.ToString("F4", CultureInfo.InvariantCulture);
        string N(long value) => value.ToString("N0", CultureInfo.InvariantCulture);
        var summary = new Table().AddColumns("model", Markup.Escape($"{record.Model} version {record.Version}"));
        summary.AddRow("label", Markup.Escape(Label(record)));
        summary.AddRow("population", Markup.Escape(record.Population ?? "every profile"));
        summary.AddRow("trainer", Markup.Escape($"{record.Algorithm}: {record.Trainer.Trees} trees, {record.Trainer.Leaves} leaves, learning rate {record.Trainer.LearningRate.ToString(CultureInfo.InvariantCulture)}, min {record.Trainer.MinimumExamplesPerLeaf} per leaf"));
        summary.AddRow("features", Markup.Escape(record.Features.ToString()));
        summary.AddRow("validation", Markup.Escape(m.Method));
        var sampled = m.TrainingExamplesAvailable > m.TrainingExamples ? $", a sample of {N(m.TrainingExamplesAvailable)} (max_examples {N(record.Trainer.MaxExamples ?? 0)})" : "";
        summary.AddRow("examples", Markup.Escape($"training {N(m.TrainingExamples)} ({N(m.TrainingPositives)} positive){sampled}, validation {N(m.ValidationExamples)} ({N(m.ValidationPositives)} positive)"));
        summary.AddRow("ROC AUC", F(m.RocAuc) + (m.FoldRocAuc.Count > 0 ? Markup.Escape($" (folds {string.Join(", ", m.FoldRocAuc.Select(F))})") : ""));
        summary.AddRow("PR AUC", F(m.PrAuc));
        summary.AddRow("log-loss", F(m.LogLoss));
        summary.AddRow("decision", Markup.Escape(record.Decision));
        summary.AddRow("libraries", Markup.Escape(string.Join(", ", record.Libraries.Select(p => $"{p.Key} {p.Value}"))));
        console.Write(summary);

        var calibration = new Table().AddColumns("predicted", "examples", "mean predicted", "observed rate").Caption("calibration (validation examples)");
        foreach (var bin in m.Calibration)
        {
            calibration.AddRow($"{bin.Low:F1}–{bin.High:F1}", N(bin.Examples), bin.Examples > 0 ? F(bin.MeanPredicted) : "", bin.Examples > 0 ? F(bin.ObservedRate) : "");
        }
        console.Write(calibration);

        var importance = new Table().AddColumns("feature", "ROC AUC drop when shuffled").Caption("permutation feature importance");
        foreach (var feature in m.FeatureImportance.Take(20))
        {
            importance.AddRow(Markup.Escape(feature.Feature), F(feature.AucDrop));
        }
        console.Write(importance);
    }

    private static string Label(ModelRecord record) =>
        record.HorizonDays is { } days ? $"{record.Label} within {days} days after a cutoff" : $"{record.Label} (snapshot)";

    private static List<ModelDefinition> Chosen(Workspace workspace, string? only)
    {
        if (workspace.Models.Count == 0)
        {
            throw new EngineException($"workspace '{workspace.Name}' declares no models (add a file under {ModelDefinition.Folder}/)");
        }
        if (only is null)
        {
            return [.. workspace.Models];
        }
        var model = workspace.Models.FirstOrDefault(m => m.Name == only);
        if (model is null)
        {
            var hint = Suggestions.Nearest(only, workspace.Models.Select(m => m.Name));
            throw new EngineException($"workspace '{workspace.Name}' has no model '{only}'{(hint is null ? "" : $" (did you mean '{hint}'?)")}");
        }
        return [model];
    }

    private static ModelRegistry Registry(CliContext context, Workspace workspace) =>
        new(context.Storage.Resolve(workspace.Output, workspace.Directory).Child(ModelRegistry.Folder));

    private static async Task<(Storage.StorageLocation Run, RunManifest Manifest)> LatestRunAsync(CliContext context, Workspace workspace, string? runId, CancellationToken cancellationToken)
    {
        var runs = context.Storage.Resolve(workspace.Output, workspace.Directory).Child("runs");
        RunManifest? manifest;
        if (runId is null)
        {
            manifest = await RunHistory.FindPreviousAsync(runs, "", DateTimeOffset.MaxValue, ProfilesStage.Folder, cancellationToken)
                ?? throw new EngineException($"workspace '{workspace.Name}' has no run with profiles yet under {runs}; run 'engine run' first");
        }
        else
        {
            manifest = await RunHistory.ReadAsync(runs, runId, cancellationToken) ?? throw new EngineException($"no run '{runId}' under {runs}");
        }
        return (runs.Child(manifest.RunId), manifest);
    }

    /// <summary>Progress written as it happens, in order (<see cref="Progress{T}"/> would post it to the thread pool).</summary>
    private sealed class Lines(TextWriter output) : IProgress<string>
    {
        public void Report(string value) => output.WriteLine($"  {value}");
    }
}
