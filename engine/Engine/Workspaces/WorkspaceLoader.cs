using System.Text.RegularExpressions;
using Engine.Identity;
using Engine.Scores;
using Engine.Storage;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Engine.Workspaces;

/// <summary>
/// Loads and validates a workspace folder. Every problem is collected with its file, line and column, so a user
/// fixes them all in one pass; <see cref="Load"/> throws a <see cref="WorkspaceException"/> carrying all of them.
/// </summary>
public static partial class WorkspaceLoader
{
    private static readonly string[] WorkspaceKeys = ["name", "description", "output", "version"];
    private static readonly string[] IdentifierDetailKeys = ["type", "region_column"];
    private static readonly string[] SourceKeys = ["name", "description", "location", "format", "csv", "columns", "identifiers", "composite_identifiers", "timestamp"];
    private static readonly string[] ColumnKeys = ["type", "required", "description"];
    private static readonly string[] SegmentKeys = ["name", "description", "condition", "tags"];

    /// <summary>Loads the workspace at <paramref name="directory"/>; throws <see cref="WorkspaceException"/> listing every error.</summary>
    public static Workspace Load(string directory)
    {
        var full = Path.GetFullPath(directory);
        var errors = new List<WorkspaceError>();
        if (!System.IO.Directory.Exists(full))
        {
            throw new WorkspaceException([new WorkspaceError(full, 0, 0, "workspace folder not found")]);
        }
        var rootFile = Path.Combine(full, Workspace.FileName);
        if (!File.Exists(rootFile))
        {
            throw new WorkspaceException([new WorkspaceError(Path.Combine(full, Workspace.FileName), 0, 0,
                "not a workspace: workspace.yaml is missing (create one with `engine init DIR`)")]);
        }

        var name = Path.GetFileName(full);
        var output = "output";
        if (Parse(full, Workspace.FileName, errors) is { } root)
        {
            var reader = new MappingReader(root, Workspace.FileName, errors);
            reader.CheckKeys(WorkspaceKeys);
            name = reader.String("name", required: true) ?? name;
            output = reader.String("output") ?? output;
            if (reader.Scalar("version") is { } version && version.Value != "1")
            {
                errors.Add(At(Workspace.FileName, version, $"unsupported workspace version '{version.Value}' (this engine reads version 1)"));
            }
        }

        var rulesFromFile = File.Exists(Path.Combine(full, IdentityRules.FileName));
        var identity = ReadIdentity(full, errors);

        var sources = new List<SourceDefinition>();
        foreach (var file in YamlFiles(full, "sources"))
        {
            if (Parse(full, file, errors) is { } node && ReadSource(node, file, identity, rulesFromFile, errors) is { } source)
            {
                if (sources.Find(s => s.Name == source.Name) is { } other)
                {
                    errors.Add(new WorkspaceError(file, 0, 0, $"source '{source.Name}' is already defined in {other.File}"));
                }
                else
                {
                    sources.Add(source);
                }
            }
        }
        if (sources.Count == 0 && errors.Count == 0)
        {
            errors.Add(new WorkspaceError("sources/", 0, 0, "no sources defined: add a file such as sources/events.yaml"));
        }

        var profiles = ReadProfiles(full, sources, errors);

        var segments = new List<SegmentDefinition>();
        foreach (var file in YamlFiles(full, "segments"))
        {
            if (Parse(full, file, errors) is { } node && ReadSegment(node, file, File.ReadAllText(Path.Combine(full, file)), errors) is { } segment)
            {
                segments.Add(segment);
            }
        }

        var models = new List<ModelDefinition>();
        foreach (var file in YamlFiles(full, ModelDefinition.Folder))
        {
            if (Parse(full, file, errors) is { } node && ReadModel(node, file, File.ReadAllText(Path.Combine(full, file)), sources, profiles, errors) is { } model)
            {
                models.Add(model);
            }
        }

        if (errors.Count > 0)
        {
            throw new WorkspaceException(errors);
        }
        return new Workspace(full, name, output, sources, segments, identity, profiles, models);
    }

    private static IEnumerable<string> YamlFiles(string root, string folder)
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

    private static YamlMappingNode? Parse(string root, string file, List<WorkspaceError> errors)
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

    private static SourceDefinition? ReadSource(YamlMappingNode node, string file, IdentityRules? rules, bool rulesFromFile, List<WorkspaceError> errors)
    {
        var before = errors.Count;
        var reader = new MappingReader(node, file, errors);
        reader.CheckKeys(SourceKeys);
        var name = reader.String("name", required: true);
        if (name is not null && !IdentifierName().IsMatch(name))
        {
            errors.Add(At(file, reader.Scalar("name")!, $"source name '{name}' must be letters, digits and underscores, starting with a letter"));
        }
        var location = reader.String("location", required: true);
        DataFormat? format = DataFormat.Parquet;
        var formatNode = reader.Scalar("format");
        if (formatNode is not null)
        {
            switch (formatNode.Value?.Trim().ToLowerInvariant())
            {
                case "parquet": format = DataFormat.Parquet; break;
                case "csv": format = DataFormat.Csv; break;
                default: format = null; errors.Add(At(file, formatNode, $"unknown format '{formatNode.Value}' (expected parquet or csv)")); break;
            }
        }
        var csv = ReadCsvOptions(reader, format, formatNode is not null, file, errors);

        var columns = new List<ColumnSpec>();
        if (reader.Mapping("columns", required: true) is { } columnsNode)
        {
            foreach (var (keyNode, valueNode) in columnsNode.Children)
            {
                var columnName = ((YamlScalarNode)keyNode).Value ?? "";
                if (columns.Exists(c => c.Name == columnName))
                {
                    errors.Add(At(file, keyNode, $"column '{columnName}' is declared twice"));
                    continue;
                }
                ColumnType? type = null;
                var required = false;
                if (valueNode is YamlScalarNode typeScalar)
                {
                    type = ParseColumnType(typeScalar, file, errors);
                }
                else if (valueNode is YamlMappingNode columnMapping)
                {
                    var columnReader = new MappingReader(columnMapping, file, errors);
                    columnReader.CheckKeys(ColumnKeys);
                    if (columnReader.Scalar("type", required: true) is { } typeNode)
                    {
                        type = ParseColumnType(typeNode, file, errors);
                    }
                    required = columnReader.Bool("required") ?? false;
                }
                else
                {
                    errors.Add(At(file, valueNode, $"column '{columnName}': expected a type name or a mapping with 'type'"));
                }
                if (type is { } t)
                {
                    columns.Add(new ColumnSpec(columnName, t, required));
                }
            }
            if (columnsNode.Children.Count == 0)
            {
                errors.Add(At(file, columnsNode, "a source must declare at least one column"));
            }
        }

        var identifiers = new Dictionary<string, string>(StringComparer.Ordinal);
        var regions = new Dictionary<string, string>(StringComparer.Ordinal);
        if (reader.Mapping("identifiers") is { } identifiersNode)
        {
            foreach (var (keyNode, valueNode) in identifiersNode.Children)
            {
                var column = ((YamlScalarNode)keyNode).Value ?? "";
                // `column: type`, or `column: { type: phone, region_column: country }` for phones whose country is in a column.
                var typeNode = valueNode;
                YamlScalarNode? regionNode = null;
                if (valueNode is YamlMappingNode detail)
                {
                    var detailReader = new MappingReader(detail, file, errors);
                    detailReader.CheckKeys(IdentifierDetailKeys);
                    typeNode = detailReader.Scalar("type", required: true) ?? (YamlNode)detail;
                    regionNode = detailReader.Scalar("region_column");
                }
                if (typeNode is not YamlScalarNode { Value: { Length: > 0 } identifierType } || !IdentifierName().IsMatch(identifierType))
                {
                    errors.Add(At(file, typeNode, $"identifier column '{column}': expected an identifier type name such as email, phone, customer_id or anonymous_id"));
                    continue;
                }
                CheckSourceIdentifierType((YamlScalarNode)typeNode, rules, composite: false, rulesFromFile, file, errors);
                if (regionNode is not null)
                {
                    var regionColumn = regionNode.Value ?? "";
                    if (rules?.Find(identifierType) is { } phoneType && phoneType.Kind != NormalizerKind.Phone)
                    {
                        errors.Add(At(file, regionNode, $"'region_column' applies to phone identifiers; '{identifierType}' uses the {phoneType.Kind.ToString().ToLowerInvariant()} normalizer"));
                    }
                    else if (CheckColumn(regionColumn, regionNode, columns, file, errors, "region column") is { } regionSpec && regionSpec.Type != ColumnType.String)
                    {
                        errors.Add(At(file, regionNode, $"region column '{regionColumn}' is declared {DataSchema.Describe(regionSpec.Type)}; it must be a string column of ISO 3166 country codes"));
                    }
                    regions[column] = regionColumn;
                }
                if (CheckColumn(column, keyNode, columns, file, errors, "identifier column") is { } spec && spec.Type != ColumnType.String)
                {
                    errors.Add(At(file, keyNode, $"identifier column '{column}' is declared {DataSchema.Describe(spec.Type)}; identifiers must be string columns"));
                }
                identifiers[column] = identifierType;
            }
        }

        var composites = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        if (reader.Mapping("composite_identifiers") is { } compositesNode)
        {
            foreach (var (keyNode, valueNode) in compositesNode.Children)
            {
                var typeNode = (YamlScalarNode)keyNode;
                CheckSourceIdentifierType(typeNode, rules, composite: true, rulesFromFile, file, errors);
                if (valueNode is not YamlSequenceNode { Children.Count: >= 2 } partsNode)
                {
                    errors.Add(At(file, valueNode, $"composite identifier '{typeNode.Value}': expected a list of two or more columns, such as [first_name, last_name, postcode]"));
                    continue;
                }
                var parts = new List<string>();
                foreach (var partNode in StringList(partsNode, file, errors))
                {
                    var part = partNode.Value ?? "";
                    if (CheckColumn(part, partNode, columns, file, errors, $"composite identifier '{typeNode.Value}' part") is { } spec && spec.Type != ColumnType.String)
                    {
                        errors.Add(At(file, partNode, $"composite identifier '{typeNode.Value}' part '{part}' is declared {DataSchema.Describe(spec.Type)}; parts must be string columns"));
                    }
                    parts.Add(part);
                }
                composites[typeNode.Value ?? ""] = parts;
            }
        }

        string? timestamp = null;
        if (reader.Scalar("timestamp") is { } timestampNode)
        {
            timestamp = timestampNode.Value;
            if (CheckColumn(timestamp ?? "", timestampNode, columns, file, errors, "timestamp column") is { } spec && spec.Type != ColumnType.Timestamp)
            {
                errors.Add(At(file, timestampNode, $"timestamp column '{timestamp}' is declared {DataSchema.Describe(spec.Type)}; it must be a timestamp"));
            }
        }

        if (errors.Count > before || name is null || location is null)
        {
            return null;
        }
        return new SourceDefinition
        {
            Name = name,
            File = file,
            Description = reader.String("description") ?? "",
            Location = location,
            Format = format ?? DataFormat.Parquet,
            Csv = csv,
            Schema = new DataSchema(columns),
            Identifiers = identifiers,
            PhoneRegionColumns = regions,
            CompositeIdentifiers = composites,
            TimestampColumn = timestamp,
        };
    }

    private static ColumnSpec? CheckColumn(string column, YamlNode node, List<ColumnSpec> columns, string file, List<WorkspaceError> errors, string what)
    {
        var spec = columns.Find(c => c.Name == column);
        if (spec is null)
        {
            var hint = Suggestions.Nearest(column, columns.Select(c => c.Name));
            errors.Add(At(file, node, $"{what} '{column}' is not among the declared columns{(hint is null ? "" : $" (did you mean '{hint}'?)")}"));
        }
        return spec;
    }

    private static ColumnType? ParseColumnType(YamlScalarNode node, string file, List<WorkspaceError> errors)
    {
        var type = DataSchema.ParseType(node.Value ?? "");
        if (type is null)
        {
            errors.Add(At(file, node, $"unknown column type '{node.Value}' (known: {DataSchema.KnownTypeNames})"));
        }
        return type;
    }

    private static SegmentDefinition? ReadSegment(YamlMappingNode node, string file, string text, List<WorkspaceError> errors)
    {
        var before = errors.Count;
        var reader = new MappingReader(node, file, errors);
        reader.CheckKeys(SegmentKeys);
        var name = reader.String("name", required: true);
        var description = reader.String("description", required: true);
        var conditionNode = reader.Scalar("condition", required: true);
        var expected = Path.GetFileNameWithoutExtension(file);
        if (name is not null && name != expected)
        {
            errors.Add(At(file, reader.Scalar("name")!, $"segment name '{name}' must match its file name ('{expected}')"));
        }
        if (conditionNode is not null && string.IsNullOrWhiteSpace(conditionNode.Value))
        {
            errors.Add(At(file, conditionNode, "the condition is empty"));
        }
        if (errors.Count > before || name is null || description is null || conditionNode is null)
        {
            return null;
        }
        return new SegmentDefinition
        {
            Name = name,
            File = file,
            Description = description,
            Condition = conditionNode.Value!,
            ConditionLine = (int)conditionNode.Start.Line,
            ConditionPositions = TextPositions.ForScalar(conditionNode, text),
        };
    }

    internal static WorkspaceError At(string file, YamlNode node, string message)
        => new(file, (int)node.Start.Line, (int)node.Start.Column, message);

    [GeneratedRegex("^[A-Za-z][A-Za-z0-9_]*$")]
    private static partial Regex IdentifierName();

    /// <summary>Typed access to one YAML mapping, reporting wrong shapes and missing keys at their positions.</summary>
    private sealed class MappingReader(YamlMappingNode node, string file, List<WorkspaceError> errors)
    {
        public void CheckKeys(string[] known)
        {
            foreach (var key in node.Children.Keys)
            {
                var name = (key as YamlScalarNode)?.Value ?? "";
                if (Array.IndexOf(known, name) < 0)
                {
                    var hint = Suggestions.Nearest(name, known);
                    errors.Add(At(file, key, $"unknown key '{name}'{(hint is null ? $" (known: {string.Join(", ", known)})" : $" (did you mean '{hint}'?)")}"));
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
                errors.Add(At(file, node, $"missing required key '{key}'"));
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
            errors.Add(At(file, value, $"'{key}' must be a single value"));
            return null;
        }

        public string? String(string key, bool required = false)
        {
            var scalar = Scalar(key, required);
            if (scalar is not null && required && string.IsNullOrWhiteSpace(scalar.Value))
            {
                errors.Add(At(file, scalar, $"'{key}' must not be empty"));
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
            errors.Add(At(file, scalar, $"'{key}' must be true or false, not '{scalar.Value}'"));
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
            errors.Add(At(file, value, $"'{key}' must be a mapping (key: value lines indented below it)"));
            return null;
        }
    }
}
