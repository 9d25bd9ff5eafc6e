using System.Text.RegularExpressions;
using Engine.Cli.Commands;
using Engine.Identity;
using Engine.Workspaces;

namespace Engine.Benchmarks.EndToEnd;

/// <summary>
/// The end-to-end run's workspace: <c>engine init</c>'s example workspace (<see cref="WorkspaceTemplate"/>, compiled in)
/// over the generated data, with its sources, profile attributes, twenty-one traits, churn model, segments and
/// destinations as shipped, and one change, in its identity rules, so that DuckDB's label propagation can compute the
/// same partition: the types customer_id, email and anonymous_id with the built-in normalisers and blocklists and
/// <b>no per-profile limits and no shared-value guard</b>, and the CRM's phone and name + postcode left out
/// (SQL only approximates libphonenumber, and the composite and the limits are sequential decisions label propagation
/// cannot make). This is the configuration <c>IdentityPeerCheck</c> proves equal to the DuckDB peer; without the
/// change, the engine's default rules form about 2% more profiles than connected components at 1M people, and no
/// count downstream could be compared.
/// </summary>
internal static partial class E2eWorkspace
{
    /// <summary>The identity rules written in place of the example's.</summary>
    public const string IdentityYaml = """
        # The end-to-end benchmark's identity rules: the example workspace's types that DuckDB's label propagation can
        # reproduce, with no limits and no shared-value guard (connected components), built-in blocklists on.
        identifier_types:
          customer_id: { normalizer: id }
          email: { normalizer: email, strip_plus_tags: false, gmail_dots: false }
          anonymous_id: { normalizer: id }
        blocklist:
          defaults: true

        """;

    /// <summary>Writes the workspace into <paramref name="folder"/> over <paramref name="dataDir"/> and checks it loads as intended.</summary>
    public static Workspace Write(string folder, string dataDir)
    {
        foreach (var (path, content) in WorkspaceTemplate.Files("e2e-scale", dataDir))
        {
            var text = path switch
            {
                "identity.yaml" => IdentityYaml,
                "sources/profiles.yaml" => WithoutPhoneAndComposite(content),
                _ => content,
            };
            var full = Path.Combine(folder, path);
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            File.WriteAllText(full, text);
        }
        var workspace = WorkspaceLoader.Load(folder);
        // The edits above are text edits of a template that may change: check what they produced.
        var types = workspace.Identity.Types;
        if (!types.Select(t => t.Name).SequenceEqual(["customer_id", "email", "anonymous_id"]) || types.Any(t => t.Limit is not null || t.SharedAfter is not null))
        {
            throw new InvalidOperationException($"the benchmark workspace's identity rules are not the intended ones: {string.Join(", ", types.Select(t => $"{t.Name} limit={t.Limit} shared_after={t.SharedAfter}"))}");
        }
        foreach (var source in workspace.Sources)
        {
            var expected = source.Name switch
            {
                "events" => new[] { "anonymous_id", "email", "user_id" },
                "profiles" => ["customer_id", "email"],
                _ => [],
            };
            if (!source.Identifiers.Keys.Order(StringComparer.Ordinal).SequenceEqual(expected) || source.CompositeIdentifiers.Count > 0)
            {
                throw new InvalidOperationException($"source '{source.Name}' maps identifier columns [{string.Join(", ", source.Identifiers.Keys)}] (composites {source.CompositeIdentifiers.Count}); expected [{string.Join(", ", expected)}] and none");
            }
        }
        if (workspace.Models.Count == 0)
        {
            throw new InvalidOperationException("the example workspace has no model any more: the scores stage would not run");
        }
        return workspace;
    }

    /// <summary>The CRM source without its phone identifier and its name + postcode composite (and their comments).</summary>
    private static string WithoutPhoneAndComposite(string yaml)
    {
        var lines = yaml.Split('\n').ToList();
        lines.RemoveAll(line => PhoneLine().IsMatch(line) || line.StartsWith("# A phone's region_column", StringComparison.Ordinal)
            || line.StartsWith("# country code; without it", StringComparison.Ordinal));
        var composite = lines.FindIndex(line => line.StartsWith("composite_identifiers:", StringComparison.Ordinal));
        if (composite >= 0)
        {
            var end = composite + 1;
            while (end < lines.Count && lines[end].StartsWith("  ", StringComparison.Ordinal))
            {
                end++;
            }
            // The comment line above the block goes too.
            var from = composite > 0 && lines[composite - 1].StartsWith('#') ? composite - 1 : composite;
            lines.RemoveRange(from, end - from);
        }
        return string.Join('\n', lines);
    }

    [GeneratedRegex(@"^\s+phone:\s*\{\s*type:\s*phone")]
    private static partial Regex PhoneLine();

    /// <summary>The columns the workspace's models add to the profiles (no DuckDB peer computes them).</summary>
    public static HashSet<string> ScoreColumns(Workspace workspace) =>
        workspace.Models.SelectMany(m => m.OutputColumns).Select(c => c.Name).ToHashSet(StringComparer.Ordinal);

    /// <summary>
    /// The segments DuckDB can evaluate (name, condition): those whose condition, or a segment it names with
    /// <c>in_segment</c>, does not use a score column; the rest are the engine's alone.
    /// </summary>
    public static (List<SegmentDefinition> Compared, List<SegmentDefinition> EngineOnly) SplitSegments(Workspace workspace)
    {
        var scores = ScoreColumns(workspace);
        var byName = workspace.Segments.ToDictionary(s => s.Name, StringComparer.Ordinal);
        bool UsesScores(SegmentDefinition segment, int depth) =>
            depth <= byName.Count
            && (WordPattern().Matches(segment.Condition).Any(m => scores.Contains(m.Value))
                || Segments.DuckDbSegmentSql.References(segment.Condition).Any(r => byName.TryGetValue(r, out var other) && UsesScores(other, depth + 1)));
        var compared = workspace.Segments.Where(s => !UsesScores(s, 0)).OrderBy(s => s.Name, StringComparer.Ordinal).ToList();
        var engineOnly = workspace.Segments.Where(s => UsesScores(s, 0)).OrderBy(s => s.Name, StringComparer.Ordinal).ToList();
        return (compared, engineOnly);
    }

    [GeneratedRegex(@"[A-Za-z_][A-Za-z0-9_]*")]
    private static partial Regex WordPattern();

    /// <summary>The engine's identity rules as the run will use them, for the report.</summary>
    public static string Describe(IdentityRules rules) =>
        string.Join(", ", rules.Types.Select(t => $"{t.Name} ({t.Kind.ToString().ToLowerInvariant()}, no limit)"));
}
