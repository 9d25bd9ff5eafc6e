using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Engine.Workspaces;

/// <summary>
/// Reading workspace YAML files with every problem located at file, line and column: shared by the engine's loader
/// and by the other readers of the workspace (the connectors' destinations).
/// </summary>
public static class WorkspaceYaml
{
    /// <summary>An error at <paramref name="node"/>'s position.</summary>
    public static WorkspaceError At(string file, YamlNode node, string message)
        => new(file, (int)node.Start.Line, (int)node.Start.Column, message);

    /// <summary>The <c>.yaml</c> / <c>.yml</c> files of a folder of the workspace, relative to it, in name order.</summary>
    public static IEnumerable<string> Files(string root, string folder)
    {
        var dir = Path.Combine(root, folder);
        if (!System.IO.Directory.Exists(dir))
        {
            return [];
        }
        return System.IO.Directory.EnumerateFiles(dir)
            .Where(f => f.EndsWith(".yaml", StringComparison.Ordinal) || f.EndsWith(".yml", StringComparison.Ordinal))
            .Select(f => Path.GetRelativePath(root, f))
            .Order(StringComparer.Ordinal);
    }

    public static YamlMappingNode? Parse(string root, string file, List<WorkspaceError> errors)
    {
        string text;
        try
        {
            text = File.ReadAllText(Path.Combine(root, file));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            errors.Add(new WorkspaceError(file, 0, 0, $"cannot read the file ({e.Message})"));
            return null;
        }
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(text));
        }
        catch (YamlException e)
        {
            var message = e.InnerException?.Message ?? e.Message;
            // YamlDotNet prefixes messages with the position it also reports; keep only the explanation.
            var paren = message.IndexOf("): ", StringComparison.Ordinal);
            errors.Add(new WorkspaceError(file, (int)e.Start.Line, (int)e.Start.Column, $"invalid YAML: {(paren >= 0 ? message[(paren + 3)..] : message)}"));
            return null;
        }
        catch (InvalidOperationException)
        {
            // YamlDotNet's scanner throws this (without a position) when the file ends inside a flow collection.
            var lines = text.Split('\n');
            var last = lines.Length - (lines[^1].Length == 0 ? 1 : 0);
            errors.Add(new WorkspaceError(file, Math.Max(last, 1), 1, "invalid YAML: the file ends inside an unclosed '[' or '{'"));
            return null;
        }
        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is not YamlMappingNode mapping)
        {
            errors.Add(new WorkspaceError(file, 1, 1, "expected a mapping of keys to values"));
            return null;
        }
        return mapping;
    }
}

/// <summary>Typed access to one YAML mapping, reporting wrong shapes and missing keys at their positions.</summary>
public sealed class YamlMappingReader(YamlMappingNode node, string file, List<WorkspaceError> errors)
{
    public void CheckKeys(string[] known)
    {
        foreach (var key in node.Children.Keys)
        {
            var name = (key as YamlScalarNode)?.Value ?? "";
            if (Array.IndexOf(known, name) < 0)
            {
                var hint = Suggestions.Nearest(name, known);
                errors.Add(WorkspaceYaml.At(file, key, $"unknown key '{name}'{(hint is null ? $" (known: {string.Join(", ", known)})" : $" (did you mean '{hint}'?)")}"));
            }
        }
    }

    private YamlNode? Get(string key, bool required)
    {
        if (node.Children.TryGetValue(new YamlScalarNode(key), out var value))
        {
            return value;
        }
        if (required)
        {
            errors.Add(WorkspaceYaml.At(file, node, $"missing required key '{key}'"));
        }
        return null;
    }

    /// <summary>The node of the key itself (for errors about the key), or null when the key is absent.</summary>
    public YamlNode? KeyNode(string key)
    {
        foreach (var candidate in node.Children.Keys)
        {
            if (candidate is YamlScalarNode { Value: var name } && name == key)
            {
                return candidate;
            }
        }
        return null;
    }

    /// <summary>The value of an optional key in whatever shape it has, for callers that check the shape themselves.</summary>
    public YamlNode? Any(string key) => Get(key, required: false);

    public YamlScalarNode? Scalar(string key, bool required = false)
    {
        var value = Get(key, required);
        if (value is null)
        {
            return null;
        }
        if (value is YamlScalarNode scalar)
        {
            return scalar;
        }
        errors.Add(WorkspaceYaml.At(file, value, $"'{key}' must be a single value"));
        return null;
    }

    public string? String(string key, bool required = false)
    {
        var scalar = Scalar(key, required);
        if (scalar is not null && required && string.IsNullOrWhiteSpace(scalar.Value))
        {
            errors.Add(WorkspaceYaml.At(file, scalar, $"'{key}' must not be empty"));
            return null;
        }
        return scalar?.Value;
    }

    public bool? Bool(string key)
    {
        var scalar = Scalar(key);
        if (scalar is null)
        {
            return null;
        }
        if (bool.TryParse(scalar.Value, out var value))
        {
            return value;
        }
        errors.Add(WorkspaceYaml.At(file, scalar, $"'{key}' must be true or false, not '{scalar.Value}'"));
        return null;
    }

    public YamlMappingNode? Mapping(string key, bool required = false)
    {
        var value = Get(key, required);
        if (value is null)
        {
            return null;
        }
        if (value is YamlMappingNode mapping)
        {
            return mapping;
        }
        errors.Add(WorkspaceYaml.At(file, value, $"'{key}' must be a mapping (key: value lines indented below it)"));
        return null;
    }
}
