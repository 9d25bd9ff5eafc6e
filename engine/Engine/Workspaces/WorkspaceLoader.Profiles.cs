using System.Globalization;
using System.Text.RegularExpressions;
using Engine.Profiles;
using Engine.Storage;
using YamlDotNet.RepresentationModel;

namespace Engine.Workspaces;

/// <summary>Reads <c>profiles.yaml</c>: attribute sources, survivorship and traits, checked against the sources.</summary>
public static partial class WorkspaceLoader
{
    private static readonly string[] ProfilesKeys = ["attributes", "traits", "survivorship", "description"];
    private static readonly string[] AttributeSourceKeys = ["source", "updated_at", "columns", "description"];
    private static readonly string[] TraitKeys = ["name", "description", "source", "function", "column", "filter", "window"];
    private static readonly string[] ConditionKeys = ["column", "op", "value"];

    /// <summary>The most values an <c>in_latest</c> filter keeps (it becomes an IN list).</summary>
    private const int MaxLatestValues = 1000;
    private static readonly string[] WindowKeys = ["last_days", "from_days_ago", "to_days_ago"];
    private static readonly string[] SurvivorshipNames = ["recency", "priority"];
    private static readonly string[] OperatorNames = ["=", "!=", "<", "<=", ">", ">=", "in", "not_in", "is_null", "is_not_null", "in_latest"];

    /// <summary>
    /// The definition in <c>profiles.yaml</c>, <see cref="ProfilesDefinition.Empty"/> when there is none, null when it
    /// has errors (each added to <paramref name="errors"/> at its line and column).
    /// </summary>
    private static ProfilesDefinition? ReadProfiles(string root, IReadOnlyList<SourceDefinition> sources, List<WorkspaceError> errors)
    {
        if (!File.Exists(Path.Combine(root, ProfilesDefinition.FileName)))
        {
            return ProfilesDefinition.Empty;
        }
        const string file = ProfilesDefinition.FileName;
        var before = errors.Count;
        if (Parse(root, file, errors) is not { } node)
        {
            return null;
        }
        var reader = new YamlMappingReader(node, file, errors);
        reader.CheckKeys(ProfilesKeys);

        var survivorship = Survivorship.Recency;
        if (reader.Scalar("survivorship") is { } survivorshipNode)
        {
            switch (survivorshipNode.Value)
            {
                case "recency": survivorship = Survivorship.Recency; break;
                case "priority": survivorship = Survivorship.Priority; break;
                default: errors.Add(At(file, survivorshipNode, $"unknown survivorship '{survivorshipNode.Value}'{Hint(survivorshipNode.Value, SurvivorshipNames)}")); break;
            }
        }

        var attributeSources = new List<AttributeSource>();
        var attributeTypes = new Dictionary<string, ColumnType>(StringComparer.Ordinal);
        if (reader.Any("attributes") is { } attributesNode)
        {
            foreach (var item in Items(attributesNode, "attributes", file, errors))
            {
                if (ReadAttributeSource(item, sources, attributeTypes, attributeSources, file, errors) is { } source)
                {
                    attributeSources.Add(source);
                }
            }
        }

        var traits = new List<TraitDefinition>();
        if (reader.Any("traits") is { } traitsNode)
        {
            foreach (var item in Items(traitsNode, "traits", file, errors))
            {
                if (ReadTrait(item, sources, attributeTypes, traits, file, errors) is { } trait)
                {
                    traits.Add(trait);
                }
            }
        }
        return errors.Count > before ? null : new ProfilesDefinition(survivorship, attributeSources, traits);
    }

    private static string Hint(string? typed, IReadOnlyCollection<string> known)
    {
        var hint = Suggestions.Nearest(typed ?? "", known);
        return hint is null ? $" (known: {string.Join(", ", known)})" : $" (did you mean '{hint}'?)";
    }

    /// <summary>The mappings of a list (each reported at its position when it is not a mapping).</summary>
    private static List<YamlMappingNode> Items(YamlNode node, string key, string file, List<WorkspaceError> errors)
    {
        var items = new List<YamlMappingNode>();
        if (node is not YamlSequenceNode sequence)
        {
            errors.Add(At(file, node, $"'{key}' must be a list (lines starting with '- ')"));
            return items;
        }
        foreach (var child in sequence.Children)
        {
            if (child is YamlMappingNode mapping)
            {
                items.Add(mapping);
            }
            else
            {
                errors.Add(At(file, child, $"each entry of '{key}' must be a mapping (key: value lines)"));
            }
        }
        return items;
    }

    /// <summary>The source a profiles entry names; it must exist and carry identifiers (or its rows belong to no profile).</summary>
    private static SourceDefinition? ProfileSource(YamlMappingReader reader, IReadOnlyList<SourceDefinition> sources, string file, List<WorkspaceError> errors)
    {
        if (reader.Scalar("source", required: true) is not { } node)
        {
            return null;
        }
        var name = node.Value ?? "";
        var source = sources.FirstOrDefault(s => s.Name == name);
        if (source is null)
        {
            var hint = Suggestions.Nearest(name, sources.Select(s => s.Name));
            errors.Add(At(file, node, $"unknown source '{name}'{(hint is null ? $" (sources: {string.Join(", ", sources.Select(s => s.Name))})" : $" (did you mean '{hint}'?)")}"));
            return null;
        }
        if (source.Identifiers.Count + source.CompositeIdentifiers.Count == 0)
        {
            errors.Add(At(file, node, $"source '{name}' declares no identifiers ({source.File}), so none of its rows belongs to a profile"));
            return null;
        }
        return source;
    }

    private static ColumnSpec? SourceColumn(YamlScalarNode node, SourceDefinition source, string file, List<WorkspaceError> errors, string what)
    {
        var name = node.Value ?? "";
        if (source.Schema.Find(name) is { } spec)
        {
            return spec;
        }
        var hint = Suggestions.Nearest(name, source.Schema.Columns.Select(c => c.Name));
        errors.Add(At(file, node, $"{what} '{name}' is not a column of source '{source.Name}'{(hint is null ? "" : $" (did you mean '{hint}'?)")}"));
        return null;
    }

    private static AttributeSource? ReadAttributeSource(
        YamlMappingNode item, IReadOnlyList<SourceDefinition> sources, Dictionary<string, ColumnType> attributeTypes, List<AttributeSource> earlier,
        string file, List<WorkspaceError> errors)
    {
        var before = errors.Count;
        var reader = new YamlMappingReader(item, file, errors);
        reader.CheckKeys(AttributeSourceKeys);
        var source = ProfileSource(reader, sources, file, errors);
        if (source is not null && earlier.Exists(a => a.Source == source.Name))
        {
            errors.Add(At(file, reader.Scalar("source")!, $"source '{source.Name}' is listed twice under attributes; list all its columns once"));
        }
        string? updatedAt = null;
        var updatedNode = reader.Scalar("updated_at");
        if (source is not null)
        {
            if (updatedNode is not null)
            {
                if (SourceColumn(updatedNode, source, file, errors, "updated_at column") is { } spec)
                {
                    updatedAt = spec.Name;
                    if (spec.Type != ColumnType.Timestamp)
                    {
                        errors.Add(At(file, updatedNode, $"updated_at column '{spec.Name}' is {DataSchema.Describe(spec.Type)}; it must be a timestamp"));
                    }
                }
            }
            else if (source.TimestampColumn is { } timestamp)
            {
                updatedAt = timestamp;
            }

        }
        var columns = new List<ColumnSpec>();
        if (reader.Any("columns") is { } columnsNode)
        {
            var list = StringList(columnsNode, file, errors);
            if (list.Count == 0)
            {
                errors.Add(At(file, columnsNode, "list at least one attribute column"));
            }
            foreach (var columnNode in list)
            {
                var name = columnNode.Value ?? "";
                if (name == Profiles.ProfileTable.ProfileIdColumn)
                {
                    errors.Add(At(file, columnNode, $"'{name}' is the profile table's key and cannot be an attribute"));
                    continue;
                }
                if (columns.Exists(c => c.Name == name))
                {
                    errors.Add(At(file, columnNode, $"attribute '{name}' is listed twice for this source"));
                    continue;
                }
                if (source is null || SourceColumn(columnNode, source, file, errors, "attribute column") is not { } spec)
                {
                    continue;
                }
                if (attributeTypes.TryGetValue(name, out var type) && type != spec.Type)
                {
                    errors.Add(At(file, columnNode, $"attribute '{name}' is {DataSchema.Describe(spec.Type)} in source '{source.Name}' but {DataSchema.Describe(type)} in an earlier source"));
                    continue;
                }
                attributeTypes[name] = spec.Type;
                columns.Add(spec);
            }
        }
        else
        {
            errors.Add(At(file, item, "missing required key 'columns' (the attribute columns, such as [loyalty_tier, country])"));
        }
        // Without updated_at and a timestamp column the source is undated: a snapshot, as it stands at any as-of.
        if (errors.Count > before || source is null)
        {
            return null;
        }
        return new AttributeSource(source.Name, updatedAt, columns);
    }

    private static TraitDefinition? ReadTrait(
        YamlMappingNode item, IReadOnlyList<SourceDefinition> sources, Dictionary<string, ColumnType> attributeTypes, List<TraitDefinition> earlier,
        string file, List<WorkspaceError> errors)
    {
        var before = errors.Count;
        var reader = new YamlMappingReader(item, file, errors);
        reader.CheckKeys(TraitKeys);
        var name = reader.String("name", required: true);
        if (name is not null)
        {
            var nameNode = reader.Scalar("name")!;
            if (!TraitName().IsMatch(name))
            {
                errors.Add(At(file, nameNode, $"trait name '{name}' must be letters, digits and underscores, starting with a letter"));
            }
            else if (name == Profiles.ProfileTable.ProfileIdColumn)
            {
                errors.Add(At(file, nameNode, $"'{name}' is the profile table's key and cannot name a trait"));
            }
            else if (attributeTypes.ContainsKey(name))
            {
                errors.Add(At(file, nameNode, $"trait '{name}' has the name of an attribute; choose another name"));
            }
            else if (earlier.Find(t => t.Name == name) is { } other)
            {
                errors.Add(At(file, nameNode, $"trait '{name}' is already defined ({other.Origin})"));
            }
        }
        var source = ProfileSource(reader, sources, file, errors);
        string? timestamp = null;
        if (source is not null)
        {
            timestamp = source.TimestampColumn;
            if (timestamp is null)
            {
                errors.Add(At(file, reader.Scalar("source")!, $"source '{source.Name}' declares no timestamp column ({source.File}: timestamp), which traits need for windows and as-of"));
            }
        }

        TraitFunction? function = null;
        var functionNode = reader.Scalar("function", required: true);
        if (functionNode is not null)
        {
            function = TraitFunctions.Parse(functionNode.Value ?? "");
            if (function is null)
            {
                errors.Add(At(file, functionNode, $"unknown function '{functionNode.Value}'{Hint(functionNode.Value, [.. TraitFunctions.Names])}"));
            }
        }

        ColumnSpec? column = null;
        var columnNode = reader.Scalar("column");
        if (function is { } f)
        {
            if (columnNode is null && TraitFunctions.NeedsColumn(f))
            {
                errors.Add(At(file, functionNode!, $"function {TraitFunctions.Name(f)} needs a 'column' to aggregate"));
            }
            else if (columnNode is not null && TraitFunctions.TakesNoColumn(f))
            {
                errors.Add(At(file, columnNode, $"function {TraitFunctions.Name(f)} reads only the event time and takes no 'column'"));
            }
            else if (columnNode is not null && source is not null && SourceColumn(columnNode, source, file, errors, "column") is { } spec)
            {
                column = spec;
                if (f is TraitFunction.Sum or TraitFunction.Avg && spec.Type is not (ColumnType.Int64 or ColumnType.Double))
                {
                    errors.Add(At(file, columnNode, $"function {TraitFunctions.Name(f)} needs a number, but column '{spec.Name}' is {DataSchema.Describe(spec.Type)}"));
                }
            }
        }

        var conditions = new List<TraitCondition>();
        if (reader.Any("filter") is { } filterNode && source is not null)
        {
            ReadFilter(filterNode, source, conditions, file, errors);
            if (conditions.Count(c => c.Operator == FilterOperator.InLatest) > 1)
            {
                errors.Add(At(file, filterNode, "a trait's filter takes at most one 'in_latest' comparison (the latest values are ranked over the events its other conditions admit)"));
            }
        }
        var window = TraitWindow.AllHistory;
        if (reader.Any("window") is { } windowNode)
        {
            window = ReadWindow(windowNode, file, errors) ?? window;
        }
        if (errors.Count > before || name is null || source is null || function is null || timestamp is null)
        {
            return null;
        }
        return new TraitDefinition
        {
            Name = name,
            Description = reader.String("description") ?? "",
            Source = source.Name,
            Function = function.Value,
            Column = column?.Name,
            ColumnType = column?.Type,
            Timestamp = timestamp,
            Conditions = conditions,
            Window = window,
            Origin = $"{file}:{item.Start.Line}",
        };
    }

    /// <summary>
    /// <c>filter:</c> a mapping whose keys are columns (a value or a list of values: equal to it, or in it) plus
    /// <c>where:</c>, a list of <c>{ column, op, value }</c> comparisons. All must hold.
    /// </summary>
    private static void ReadFilter(YamlNode node, SourceDefinition source, List<TraitCondition> conditions, string file, List<WorkspaceError> errors)
    {
        if (node is not YamlMappingNode mapping)
        {
            errors.Add(At(file, node, "'filter' must be a mapping such as { type: [order_completed], where: [{ column: revenue, op: '>', value: 0 }] }"));
            return;
        }
        foreach (var (keyNode, valueNode) in mapping.Children)
        {
            var key = (YamlScalarNode)keyNode;
            if (key.Value == "where")
            {
                if (valueNode is not YamlSequenceNode list)
                {
                    errors.Add(At(file, valueNode, "'where' must be a list of { column, op, value } comparisons"));
                    continue;
                }
                foreach (var entry in list.Children)
                {
                    if (entry is not YamlMappingNode comparison)
                    {
                        errors.Add(At(file, entry, "expected a comparison such as { column: revenue, op: '>', value: 0 }"));
                        continue;
                    }
                    if (ReadComparison(comparison, source, file, errors) is { } condition)
                    {
                        conditions.Add(condition);
                    }
                }
                continue;
            }
            if (SourceColumn(key, source, file, errors, "filter column") is not { } spec)
            {
                continue;
            }
            var values = new List<object>();
            foreach (var valueScalar in StringList(valueNode, file, errors))
            {
                if (FilterValue(valueScalar, spec, file, errors) is { } value)
                {
                    values.Add(value);
                }
            }
            if (values.Count > 0)
            {
                conditions.Add(new TraitCondition(spec.Name, spec.Type, values.Count == 1 ? FilterOperator.Equal : FilterOperator.In, values));
            }
        }
    }

    private static TraitCondition? ReadComparison(YamlMappingNode node, SourceDefinition source, string file, List<WorkspaceError> errors)
    {
        var before = errors.Count;
        var reader = new YamlMappingReader(node, file, errors);
        reader.CheckKeys(ConditionKeys);
        var columnNode = reader.Scalar("column", required: true);
        var spec = columnNode is null ? null : SourceColumn(columnNode, source, file, errors, "filter column");
        FilterOperator? op = null;
        if (reader.Scalar("op", required: true) is { } opNode)
        {
            op = (opNode.Value ?? "").Trim().ToLowerInvariant().Replace(' ', '_') switch
            {
                "=" or "==" => FilterOperator.Equal,
                "!=" or "<>" => FilterOperator.NotEqual,
                "<" => FilterOperator.Less,
                "<=" => FilterOperator.LessOrEqual,
                ">" => FilterOperator.Greater,
                ">=" => FilterOperator.GreaterOrEqual,
                "in" => FilterOperator.In,
                "not_in" => FilterOperator.NotIn,
                "is_null" => FilterOperator.IsNull,
                "is_not_null" => FilterOperator.IsNotNull,
                "in_latest" => FilterOperator.InLatest,
                _ => null,
            };
            if (op is null)
            {
                errors.Add(At(file, opNode, $"unknown operator '{opNode.Value}'{Hint(opNode.Value, OperatorNames)}"));
            }
        }
        var values = new List<object>();
        var valueNode = reader.Any("value");
        if (op is FilterOperator.IsNull or FilterOperator.IsNotNull)
        {
            if (valueNode is not null)
            {
                errors.Add(At(file, valueNode, $"'{(op == FilterOperator.IsNull ? "is_null" : "is_not_null")}' takes no value"));
            }
        }
        else if (op is FilterOperator.InLatest)
        {
            // The constant is how many latest values, not a value of the column.
            if (valueNode is not YamlScalarNode { Value: var count } || !int.TryParse(count, NumberStyles.None, CultureInfo.InvariantCulture, out var n)
                || n < 1 || n > MaxLatestValues)
            {
                errors.Add(At(file, valueNode ?? node, $"'in_latest' takes how many of the latest values count, a whole number from 1 to {MaxLatestValues}, such as {{ column: campaign_id, op: in_latest, value: 3 }}"));
            }
            else
            {
                values.Add((long)n);
            }
            if (spec is not null && spec.Type is ColumnType.Double or ColumnType.Boolean)
            {
                errors.Add(At(file, columnNode!, $"'in_latest' ranks the values of an id column (a string, integer, date or timestamp), but column '{spec.Name}' is {DataSchema.Describe(spec.Type)}"));
            }
        }
        else if (op is not null)
        {
            if (valueNode is null)
            {
                errors.Add(At(file, node, "missing required key 'value'"));
            }
            else if (op is FilterOperator.In or FilterOperator.NotIn || valueNode is YamlScalarNode)
            {
                if (op is not (FilterOperator.In or FilterOperator.NotIn) || valueNode is YamlSequenceNode)
                {
                    foreach (var scalar in StringList(valueNode, file, errors))
                    {
                        if (spec is not null && FilterValue(scalar, spec, file, errors) is { } value)
                        {
                            values.Add(value);
                        }
                    }
                }
                else
                {
                    errors.Add(At(file, valueNode, "'in' and 'not_in' take a list of values, such as [a, b]"));
                }
            }
            else
            {
                errors.Add(At(file, valueNode, $"'{OperatorNames[(int)op]}' compares with a single value"));
            }
        }
        if (spec is not null && spec.Type == ColumnType.Boolean && op is FilterOperator.Less or FilterOperator.LessOrEqual or FilterOperator.Greater or FilterOperator.GreaterOrEqual)
        {
            errors.Add(At(file, reader.Scalar("op")!, $"column '{spec.Name}' is boolean: compare it with = or !="));
        }
        if (errors.Count > before || spec is null || op is null)
        {
            return null;
        }
        return new TraitCondition(spec.Name, spec.Type, op.Value, values);
    }

    /// <summary>A filter constant typed as its column (see <see cref="TraitCondition"/>).</summary>
    private static object? FilterValue(YamlScalarNode node, ColumnSpec column, string file, List<WorkspaceError> errors)
    {
        var text = node.Value ?? "";
        object? value = column.Type switch
        {
            ColumnType.String => text,
            ColumnType.Int64 => long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var l) ? l : null,
            ColumnType.Double => double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && double.IsFinite(d) ? d : null,
            ColumnType.Boolean => bool.TryParse(text, out var b) ? (b ? 1L : 0L) : null,
            ColumnType.Timestamp => DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t)
                ? (t - DateTimeOffset.UnixEpoch).Ticks / 10 : null,
            ColumnType.Date => DateOnly.TryParseExact(text, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var day)
                ? (long)(day.DayNumber - DateOnly.FromDateTime(DateTime.UnixEpoch).DayNumber) : null,
            _ => null,
        };
        if (value is null)
        {
            var example = column.Type switch
            {
                ColumnType.Int64 => "an integer",
                ColumnType.Double => "a number",
                ColumnType.Boolean => "true or false",
                ColumnType.Timestamp => "a time such as 2026-11-01T00:00:00Z",
                _ => "a date such as 2026-11-01",
            };
            errors.Add(At(file, node, $"'{text}' is not a value of column '{column.Name}' ({DataSchema.Describe(column.Type)}): expected {example}"));
        }
        return value;
    }

    private static TraitWindow? ReadWindow(YamlNode node, string file, List<WorkspaceError> errors)
    {
        const string shape = "a window is { last_days: N } or { from_days_ago: A, to_days_ago: B } with A > B >= 0";
        if (node is not YamlMappingNode mapping)
        {
            errors.Add(At(file, node, $"'window' must be a mapping: {shape}"));
            return null;
        }
        var before = errors.Count;
        var reader = new YamlMappingReader(mapping, file, errors);
        reader.CheckKeys(WindowKeys);
        int? Days(string key, int min)
        {
            if (reader.Scalar(key) is not { } scalar)
            {
                return null;
            }
            if (!int.TryParse(scalar.Value, NumberStyles.None, CultureInfo.InvariantCulture, out var days) || days < min || days > 36_500)
            {
                errors.Add(At(file, scalar, $"'{key}' must be a whole number of days from {min} to 36500, not '{scalar.Value}'"));
                return null;
            }
            return days;
        }
        var last = Days("last_days", 1);
        var from = Days("from_days_ago", 1);
        var to = Days("to_days_ago", 0);
        if (errors.Count > before)
        {
            return null;
        }
        if (last is { } n)
        {
            if ((reader.KeyNode("from_days_ago") ?? reader.KeyNode("to_days_ago")) is { } extra)
            {
                errors.Add(At(file, extra, $"use either last_days or from_days_ago/to_days_ago, not both: {shape}"));
                return null;
            }
            return new TraitWindow(n, 0);
        }
        if (from is null || to is null)
        {
            errors.Add(At(file, mapping, $"incomplete window: {shape}"));
            return null;
        }
        if (from <= to)
        {
            errors.Add(At(file, reader.Scalar("from_days_ago")!, $"from_days_ago ({from}) must be more than to_days_ago ({to}): the window runs from the older bound to the newer"));
            return null;
        }
        return new TraitWindow(from, to.Value);
    }

    [GeneratedRegex("^[A-Za-z][A-Za-z0-9_]*$")]
    private static partial Regex TraitName();
}
