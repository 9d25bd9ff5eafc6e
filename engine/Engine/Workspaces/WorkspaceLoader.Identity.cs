using System.Globalization;
using System.Text.RegularExpressions;
using Engine.Identity;
using YamlDotNet.RepresentationModel;

namespace Engine.Workspaces;

/// <summary>Reads <c>identity.yaml</c>: identifier types in priority order, blocklists, shared-value thresholds.</summary>
public static partial class WorkspaceLoader
{
    private static readonly string[] IdentityKeys = ["identifier_types", "blocklist", "description"];
    private static readonly string[] IdentifierTypeKeys = ["normalizer", "limit", "shared_after", "strip_plus_tags", "gmail_dots", "default_region", "description"];
    private static readonly string[] NormalizerNames = ["id", "email", "phone", "composite"];

    /// <summary>The rules in <c>identity.yaml</c>, <see cref="IdentityRules.Default"/> when there is none, null when it has errors.</summary>
    private static IdentityRules? ReadIdentity(string root, List<WorkspaceError> errors)
    {
        if (!File.Exists(Path.Combine(root, IdentityRules.FileName)))
        {
            return IdentityRules.Default;
        }
        const string file = IdentityRules.FileName;
        var before = errors.Count;
        if (Parse(root, file, errors) is not { } node)
        {
            return null;
        }
        var reader = new YamlMappingReader(node, file, errors);
        reader.CheckKeys(IdentityKeys);

        // First the types (in file order = priority), then the blocklist, which names them.
        var specs = new List<TypeSpec>();
        var typeNames = new List<string>();
        if (reader.Mapping("identifier_types", required: true) is { } typesNode)
        {
            if (typesNode.Children.Count == 0)
            {
                errors.Add(At(file, typesNode, "declare at least one identifier type, highest priority first"));
            }
            foreach (var (keyNode, valueNode) in typesNode.Children)
            {
                typeNames.Add(((YamlScalarNode)keyNode).Value ?? "");
                if (ReadIdentifierType((YamlScalarNode)keyNode, valueNode, typeNames.Count == 1, file, errors) is { } spec)
                {
                    specs.Add(spec);
                }
            }
        }

        var useDefaults = true;
        var values = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        var patterns = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        if (reader.Mapping("blocklist") is { } blocklistNode)
        {
            foreach (var (keyNode, valueNode) in blocklistNode.Children)
            {
                var key = ((YamlScalarNode)keyNode).Value ?? "";
                if (key == "defaults")
                {
                    if (valueNode is YamlScalarNode scalar && bool.TryParse(scalar.Value, out var on))
                    {
                        useDefaults = on;
                    }
                    else
                    {
                        errors.Add(At(file, valueNode, "'defaults' must be true or false"));
                    }
                }
                else if (key == "patterns")
                {
                    if (valueNode is not YamlMappingNode patternsNode)
                    {
                        errors.Add(At(file, valueNode, "'patterns' must be a mapping of identifier type to a list of regular expressions"));
                        continue;
                    }
                    foreach (var (typeKey, list) in patternsNode.Children)
                    {
                        if (CheckTypeName((YamlScalarNode)typeKey, typeNames, file, errors, "blocklist patterns for") is { } type)
                        {
                            foreach (var patternNode in StringList(list, file, errors))
                            {
                                var pattern = patternNode.Value ?? "";
                                try
                                {
                                    _ = new Regex(pattern, RegexOptions.CultureInvariant);
                                    Add(patterns, type, pattern);
                                }
                                catch (ArgumentException e)
                                {
                                    errors.Add(At(file, patternNode, $"invalid pattern '{pattern}': {e.Message}"));
                                }
                            }
                        }
                    }
                }
                else if (CheckTypeName((YamlScalarNode)keyNode, typeNames, file, errors, "blocklist for") is { } type)
                {
                    foreach (var valueScalar in StringList(valueNode, file, errors))
                    {
                        if (!string.IsNullOrWhiteSpace(valueScalar.Value))
                        {
                            Add(values, type, valueScalar.Value);
                        }
                    }
                }
            }
        }

        if (errors.Count > before)
        {
            return null;
        }
        var types = new List<IdentifierType>(specs.Count);
        foreach (var spec in specs)
        {
            var blocklist = DefaultBlocklists.For(spec.Kind,
                values.TryGetValue(spec.Name, out var v) ? v : [],
                patterns.TryGetValue(spec.Name, out var p) ? p : [],
                useDefaults);
            types.Add(new IdentifierType(spec.Name, spec.Kind, spec.Normalizer, spec.Limit, spec.SharedAfter, blocklist));
        }
        return new IdentityRules(types);

        static void Add(Dictionary<string, List<string>> map, string type, string value)
        {
            if (!map.TryGetValue(type, out var list))
            {
                map[type] = list = [];
            }
            list.Add(value);
        }
    }

    private sealed record TypeSpec(string Name, NormalizerKind Kind, IIdentifierNormalizer Normalizer, int? Limit, int? SharedAfter);

    private static TypeSpec? ReadIdentifierType(YamlScalarNode keyNode, YamlNode valueNode, bool first, string file, List<WorkspaceError> errors)
    {
        var before = errors.Count;
        var name = keyNode.Value ?? "";
        if (!IdentifierName().IsMatch(name))
        {
            errors.Add(At(file, keyNode, $"identifier type name '{name}' must be letters, digits and underscores, starting with a letter"));
        }
        else if (name is "defaults" or "patterns")
        {
            // The blocklist section uses these two names for its own settings.
            errors.Add(At(file, keyNode, $"'{name}' is reserved (the blocklist uses it); choose another identifier type name"));
        }

        // `email: email` is short for `email: { normalizer: email }`.
        YamlScalarNode? normalizerNode;
        YamlMappingReader? reader = null;
        if (valueNode is YamlScalarNode shorthand)
        {
            normalizerNode = shorthand;
        }
        else if (valueNode is YamlMappingNode mapping)
        {
            reader = new YamlMappingReader(mapping, file, errors);
            reader.CheckKeys(IdentifierTypeKeys);
            normalizerNode = reader.Scalar("normalizer", required: true);
        }
        else
        {
            errors.Add(At(file, valueNode, $"identifier type '{name}': expected a normalizer name or a mapping with 'normalizer'"));
            return null;
        }

        NormalizerKind? kind = null;
        if (normalizerNode is not null)
        {
            kind = normalizerNode.Value?.Trim().ToLowerInvariant() switch
            {
                "id" => NormalizerKind.Id,
                "email" => NormalizerKind.Email,
                "phone" => NormalizerKind.Phone,
                "composite" => NormalizerKind.Composite,
                _ => null,
            };
            if (kind is null)
            {
                var typed = normalizerNode.Value ?? "";
                var hint = Suggestions.Nearest(typed, NormalizerNames);
                errors.Add(At(file, normalizerNode, $"unknown normalizer '{typed}'{(hint is null ? $" (known: {string.Join(", ", NormalizerNames)})" : $" (did you mean '{hint}'?)")}"));
            }
        }

        int? limit = null, sharedAfter = null;
        var stripPlusTags = false;
        var gmailDots = false;
        var region = "US";
        if (reader is not null)
        {
            limit = PositiveInt(reader.Scalar("limit"), "limit", "leave it out for no limit", file, errors);
            if (reader.Scalar("shared_after") is { } sharedNode)
            {
                sharedAfter = PositiveInt(sharedNode, "shared_after", "leave it out to never treat values as shared", file, errors);
                if (first)
                {
                    errors.Add(At(file, sharedNode, $"'shared_after' counts profiles formed by higher-priority types, and '{name}' has the highest priority; move it down or remove 'shared_after'"));
                }
            }
            stripPlusTags = OnlyFor(reader, "strip_plus_tags", NormalizerKind.Email, kind, file, errors);
            gmailDots = OnlyFor(reader, "gmail_dots", NormalizerKind.Email, kind, file, errors);
            if (reader.Scalar("default_region") is { } regionNode)
            {
                if (kind is { } k && k != NormalizerKind.Phone)
                {
                    errors.Add(At(file, regionNode, "'default_region' applies to the phone normalizer only"));
                }
                else if (!PhoneNormalizer.IsSupportedRegion(regionNode.Value ?? ""))
                {
                    errors.Add(At(file, regionNode, $"unknown region code '{regionNode.Value}' (expected a two-letter ISO 3166 code such as US, GB, DE or FR)"));
                }
                else
                {
                    region = regionNode.Value!.ToUpperInvariant();
                }
            }
        }

        if (errors.Count > before || kind is null)
        {
            return null;
        }
        IIdentifierNormalizer normalizer = kind switch
        {
            NormalizerKind.Email => new EmailNormalizer(stripPlusTags, gmailDots),
            NormalizerKind.Phone => new PhoneNormalizer(region),
            NormalizerKind.Composite => CompositeNormalizer.Instance,
            _ => IdNormalizer.Instance,
        };
        return new TypeSpec(name, kind.Value, normalizer, limit, sharedAfter);
    }

    private static int? PositiveInt(YamlScalarNode? node, string key, string instead, string file, List<WorkspaceError> errors)
    {
        if (node is null)
        {
            return null;
        }
        if (int.TryParse(node.Value, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value >= 1)
        {
            return value;
        }
        errors.Add(At(file, node, $"'{key}' must be a whole number of at least 1 ({instead}), not '{node.Value}'"));
        return null;
    }

    private static bool OnlyFor(YamlMappingReader reader, string key, NormalizerKind applies, NormalizerKind? kind, string file, List<WorkspaceError> errors)
    {
        var node = reader.Scalar(key);
        var value = reader.Bool(key) ?? false;
        if (node is not null && kind is { } k && k != applies)
        {
            errors.Add(At(file, node, $"'{key}' applies to the {applies.ToString().ToLowerInvariant()} normalizer only"));
        }
        return value;
    }

    private static string? CheckTypeName(YamlScalarNode node, List<string> typeNames, string file, List<WorkspaceError> errors, string what)
    {
        var name = node.Value ?? "";
        if (typeNames.Contains(name))
        {
            return name;
        }
        errors.Add(At(file, node, $"{what} '{name}': no such identifier type{TypeHint(name, typeNames)}"));
        return null;
    }

    private static string TypeHint(string name, IReadOnlyList<string> typeNames)
    {
        var hint = Suggestions.Nearest(name, typeNames);
        return hint is null ? $" (defined: {string.Join(", ", typeNames)})" : $" (did you mean '{hint}'?)";
    }

    /// <summary>The scalars of a YAML list (a single scalar is read as a list of one); other shapes are errors.</summary>
    private static List<YamlScalarNode> StringList(YamlNode node, string file, List<WorkspaceError> errors)
    {
        var result = new List<YamlScalarNode>();
        if (node is YamlScalarNode single)
        {
            result.Add(single);
        }
        else if (node is YamlSequenceNode sequence)
        {
            foreach (var item in sequence.Children)
            {
                if (item is YamlScalarNode scalar)
                {
                    result.Add(scalar);
                }
                else
                {
                    errors.Add(At(file, item, "expected a single value in this list"));
                }
            }
        }
        else
        {
            errors.Add(At(file, node, "expected a list of values, such as [\"a\", \"b\"]"));
        }
        return result;
    }

    /// <summary>Checks that an identifier type a source names is defined, and whether it is composite.</summary>
    private static void CheckSourceIdentifierType(YamlScalarNode node, IdentityRules? rules, bool composite, bool rulesFromFile, string file, List<WorkspaceError> errors)
    {
        if (rules is null)
        {
            return; // identity.yaml has errors of its own; checking against it would only repeat them.
        }
        var name = node.Value ?? "";
        var type = rules.Find(name);
        if (type is null)
        {
            var names = rules.Types.Select(t => t.Name).Where(n => (rules.Find(n)!.Kind == NormalizerKind.Composite) == composite).ToList();
            errors.Add(At(file, node, rulesFromFile
                ? $"identifier type '{name}' is not defined in identity.yaml{TypeHint(name, names)}"
                : $"identifier type '{name}' is not defined{TypeHint(name, names)}; define your identifier types in identity.yaml to add it"));
        }
        else if (composite && type.Kind != NormalizerKind.Composite)
        {
            errors.Add(At(file, node, $"'{name}' is not a composite identifier type (its normalizer is {type.Kind.ToString().ToLowerInvariant()}); map its column under 'identifiers'"));
        }
        else if (!composite && type.Kind == NormalizerKind.Composite)
        {
            errors.Add(At(file, node, $"'{name}' is a composite identifier type; list its columns under 'composite_identifiers'"));
        }
    }
}
