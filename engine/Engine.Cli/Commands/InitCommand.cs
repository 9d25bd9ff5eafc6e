using System.CommandLine;
using Spectre.Console;

namespace Engine.Cli.Commands;

/// <summary><c>engine init DIR</c>: writes an example workspace whose sources point at generated data.</summary>
internal static class InitCommand
{
    public static Command Create()
    {
        var directory = new Argument<string>("DIR") { Description = "The workspace folder to create" };
        var data = new Option<string?>("--data")
        {
            Description = "Where the sources' data is (default: data/ inside the workspace; write it with `engine generate --out`)",
        };
        var force = new Option<bool>("--force") { Description = "Overwrite the files of an existing workspace" };
        var webhook = new Option<string?>("--webhook")
        {
            Description = $"Also add a webhook destination ({WorkspaceTemplate.WebhookDestination}) that posts to this URL, its secret read from {WorkspaceTemplate.WebhookSecretVariable} (make run starts a local receiver)",
        };
        webhook.Validators.Add(r =>
        {
            if (r.Tokens.Count == 1 && !(Uri.TryCreate(r.Tokens[0].Value, UriKind.Absolute, out var url) && url.Scheme is "http" or "https"))
            {
                r.AddError("--webhook must be an http:// or https:// URL");
            }
        });
        var command = new Command("init", "Write an example workspace (sources for generated data, example segments)")
        {
            directory, data, force, webhook,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            using var context = EngineCommandLine.Context(parse);
            var folder = Path.GetFullPath(parse.GetValue(directory)!);
            if (File.Exists(Path.Combine(folder, Workspaces.Workspace.FileName)) && !parse.GetValue(force))
            {
                throw new EngineException($"{Path.Combine(folder, Workspaces.Workspace.FileName)}: a workspace already exists here (use --force to overwrite its files)");
            }
            var dataLocation = parse.GetValue(data) ?? "data";
            var name = SanitizeName(Path.GetFileName(folder.TrimEnd('/')));
            var written = new List<string>();
            foreach (var (relative, content) in WorkspaceTemplate.Files(name, dataLocation, parse.GetValue(webhook)))
            {
                var path = Path.Combine(folder, relative);
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                await File.WriteAllTextAsync(path, content, cancellationToken);
                written.Add(relative);
            }
            var dataPath = Storage.StorageResolver.IsUri(dataLocation) ? dataLocation : Path.GetFullPath(dataLocation, folder);
            context.Output.WriteLine($"Wrote workspace '{name}' to {folder}:");
            foreach (var file in written)
            {
                context.Output.WriteLine($"  {file}");
            }
            context.Output.WriteLine("Next:");
            context.Output.WriteLine($"  engine generate --people 10000 --seed 1 --out {dataPath}");
            context.Output.WriteLine($"  engine validate --workspace {folder}");
            context.Output.WriteLine($"  engine run --workspace {folder}");
            return EngineCommandLine.Success;
        });
        return command;
    }

    private static string SanitizeName(string name)
    {
        var chars = name.Select(c => char.IsAsciiLetterOrDigit(c) ? c : '_').ToArray();
        var result = new string(chars).Trim('_');
        return result.Length == 0 || !char.IsAsciiLetter(result[0]) ? $"workspace_{result}".TrimEnd('_') : result;
    }
}
