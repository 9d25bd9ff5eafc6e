using System.Text.RegularExpressions;
using Engine.Identity;
using Engine.Scores;
using Engine.Storage;
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
            var reader = new YamlMappingReader(root, Workspace.FileName, errors);
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

    private static IEnumerable<string> YamlFiles(string root, string folder) => WorkspaceYaml.Files(root, folder);

    private static YamlMappingNode? Parse(string root, string file, List<WorkspaceError> errors) => WorkspaceYaml.Parse(root, file, errors);

    private static SourceDefinition? ReadSource(YamlMappingNode node, string file, IdentityRules? rules, bool rulesFromFile, List<WorkspaceError> errors)
    {
        var before = errors.Count;
        var reader = new YamlMappingReader(node, file, errors);
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
                    var columnReader = new YamlMappingReader(columnMapping, file, errors);
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
                    var detailReader = new YamlMappingReader(detail, file, errors);
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
        var reader = new YamlMappingReader(node, file, errors);
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

    internal static WorkspaceError At(string file, YamlNode node, string message) => WorkspaceYaml.At(file, node, message);

    [GeneratedRegex("^[A-Za-z][A-Za-z0-9_]*$")]
    private static partial Regex IdentifierName();
}
