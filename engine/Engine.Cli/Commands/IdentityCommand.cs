using System.CommandLine;
using System.Globalization;
using Engine.Identity;
using Engine.Runs;
using Engine.Workspaces;
using Spectre.Console;

namespace Engine.Cli.Commands;

/// <summary><c>engine identity explain</c>: why an identifier is in the profile it is in. Values are printed masked.</summary>
internal static class IdentityCommand
{
    // Enough rows to read a normal profile whole; a giant one is summarised.
    private const int MaxRows = 50;

    public static Command Create()
    {
        var workspace = ValidateCommand.WorkspaceOption();
        var identifier = new Option<string>("--identifier", "-i")
        {
            Description = "The identifier as type:value, e.g. email:ann@example.com (normalised with the workspace's rules)",
            Required = true,
        };
        var runId = new Option<string?>("--run-id") { Description = "The run to explain (default: the latest run whose identity stage succeeded)" };
        var explain = new Command("explain", "Show an identifier's profile: its identifiers (masked), the links that joined them and the links refused, with why")
        {
            workspace, identifier, runId,
        };
        explain.SetAction(async (parse, cancellationToken) =>
        {
            using var context = EngineCommandLine.Context(parse);
            var loaded = WorkspaceLoader.Load(parse.GetValue(workspace)!);
            var runs = context.Storage.Resolve(loaded.Output, loaded.Directory).Child("runs");
            var chosen = parse.GetValue(runId);
            if (chosen is null)
            {
                var latest = await RunHistory.FindPreviousAsync(runs, "", DateTimeOffset.MaxValue, IdentityStage.Folder, cancellationToken)
                    ?? throw new EngineException($"workspace '{loaded.Name}' has no run with an identity output yet under {runs}; run 'engine run' first");
                chosen = latest.RunId;
            }
            var explanation = await IdentityExplainer.ExplainAsync(
                loaded.Identity, runs.Child(chosen).Child(IdentityStage.Folder), parse.GetValue(identifier)!, cancellationToken);
            Print(context.Results, context.Output, chosen, explanation);
            return EngineCommandLine.Success;
        });
        return new Command("identity", "Inspect identity resolution") { explain };
    }

    private static void Print(IAnsiConsole console, TextWriter output, string runId, IdentityExplanation explanation)
    {
        var target = explanation.Target;
        string Name(ExplainedIdentifier i) => Markup.Escape($"{i.Type} {i.MaskedValue}");
        if (target.ProfileId is { } profile)
        {
            output.WriteLine($"{target.Type} {target.MaskedValue} is in profile {profile.ToString(CultureInfo.InvariantCulture)} (run {runId}), with {explanation.Members.Count} identifier(s).");
        }
        else
        {
            output.WriteLine($"{target.Type} {target.MaskedValue} is a shared value (run {runId}): it is in no profile and links nothing.");
        }
        var members = new Table().AddColumns("type", "value", "shared");
        foreach (var member in explanation.Members.Take(MaxRows))
        {
            members.AddRow(Markup.Escape(member.Type), Markup.Escape(member.MaskedValue), member.Shared ? "yes" : "");
        }
        console.Write(members);
        More(output, explanation.Members.Count, "identifiers");

        output.WriteLine($"Links that joined them: {explanation.Linked.Count}");
        var linked = new Table().AddColumns("from", "to");
        foreach (var link in explanation.Linked.Take(MaxRows))
        {
            linked.AddRow(Name(link.From), Name(link.To));
        }
        if (explanation.Linked.Count > 0)
        {
            console.Write(linked);
            More(output, explanation.Linked.Count, "links");
        }

        output.WriteLine($"Links refused: {explanation.Refused.Count}");
        var refused = new Table().AddColumns("from", "to", "why");
        foreach (var link in explanation.Refused.Take(MaxRows))
        {
            var why = link.Reason switch
            {
                IdentityOutput.ReasonLimit => $"joining the two profiles would exceed the {link.ReasonType} limit",
                IdentityOutput.ReasonShared => $"the {link.ReasonType} value is shared (seen with more than one person's identifiers)",
                _ => link.Reason ?? "",
            };
            refused.AddRow(Name(link.From), Name(link.To), Markup.Escape(why));
        }
        if (explanation.Refused.Count > 0)
        {
            console.Write(refused);
            More(output, explanation.Refused.Count, "refused links");
        }
        foreach (var change in explanation.Changes)
        {
            var text = change.Kind switch
            {
                ProfileChangeKind.Merged => $"profile {change.OldProfileId} merged into {change.NewProfileId} in this run",
                ProfileChangeKind.Split => $"part of profile {change.OldProfileId} split off as {change.NewProfileId} in this run",
                _ => $"profile {change.OldProfileId} retired in this run",
            };
            output.WriteLine(text);
        }
    }

    private static void More(TextWriter output, int count, string what)
    {
        if (count > MaxRows)
        {
            output.WriteLine($"… and {count - MaxRows} more {what}");
        }
    }
}
