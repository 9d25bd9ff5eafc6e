using System.CommandLine;
using Engine.Workspaces;
using Spectre.Console;

namespace Engine.Cli.Commands;

/// <summary><c>engine validate</c>: loads and checks a workspace without reading data.</summary>
internal static class ValidateCommand
{
    internal static Option<string> WorkspaceOption() => new("--workspace", "-w")
    {
        Description = "The workspace folder",
        DefaultValueFactory = _ => ".",
    };

    public static Command Create()
    {
        var workspace = WorkspaceOption();
        var command = new Command("validate", "Check a workspace's files: every error with its file, line and column") { workspace };
        command.SetAction(async (parse, cancellationToken) =>
        {
            using var context = EngineCommandLine.Context(parse);
            var loaded = WorkspaceLoader.Load(parse.GetValue(workspace)!);
            // Data locations must at least resolve (an unknown scheme is a workspace error, not a run-time surprise).
            foreach (var source in loaded.Sources)
            {
                _ = context.Storage.Resolve(source.Location, loaded.Directory);
            }
            _ = context.Storage.Resolve(loaded.Output, loaded.Directory);

            var table = new Table().AddColumns("source", "format", "columns", "identifiers", "location");
            foreach (var source in loaded.Sources)
            {
                table.AddRow(
                    Markup.Escape(source.Name),
                    source.Format.ToString().ToLowerInvariant(),
                    source.Schema.Columns.Count.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    Markup.Escape(string.Join(", ", source.Identifiers.Select(i => $"{i.Key}→{i.Value}"))),
                    Markup.Escape(source.Location));
            }
            context.Results.Write(table);
            Segments.SegmentSet.Check(loaded);
            Scores.ModelChecks.Check(loaded);
            var delivery = Connectors.Destinations.DestinationsLoader.Load(loaded);
            context.Output.WriteLine($"Workspace '{loaded.Name}' is valid: {loaded.Sources.Count} source(s), {loaded.Segments.Count} segment(s), {loaded.Profiles.Attributes.Count} attribute(s), {loaded.Profiles.Traits.Count} trait(s), {loaded.Models.Count} model(s), {delivery.Destinations.Count} destination(s).");
            await Task.CompletedTask;
            return EngineCommandLine.Success;
        });
        return command;
    }
}
