using Engine.Profiles;
using Engine.Segments;
using Engine.TestKit;
using Engine.Workspaces;

namespace Engine.Tests.Segments;

/// <summary>
/// Segments as a workspace declares them: errors at file, line and column (all of them at once), references
/// between segments, nesting and exclusion, and cycles.
/// </summary>
public sealed class SegmentSetTests : IAsyncLifetime
{
    private readonly TempDirectory _profiles = new("segment-set");
    private ProfileTable _table = null!;

    public async ValueTask InitializeAsync() => _table = await RandomProfiles.WriteAsync(_profiles.Path, rows: 500, seed: 3);

    public ValueTask DisposeAsync()
    {
        _profiles.Dispose();
        return ValueTask.CompletedTask;
    }

    private const string Source = """
        name: crm
        location: data/crm
        columns:
          customer_id: string
        identifiers:
          customer_id: customer_id

        """;

    private static Workspace Load(TempDirectory dir, params (string Name, string Yaml)[] segments)
    {
        File.WriteAllText(dir.Combine("workspace.yaml"), "name: test\n");
        Directory.CreateDirectory(dir.Combine("sources"));
        File.WriteAllText(dir.Combine("sources", "crm.yaml"), Source);
        Directory.CreateDirectory(dir.Combine("segments"));
        foreach (var (name, yaml) in segments)
        {
            File.WriteAllText(dir.Combine("segments", name + ".yaml"), yaml);
        }
        return WorkspaceLoader.Load(dir.Path);
    }

    private WorkspaceException Errors(params (string Name, string Yaml)[] segments)
    {
        using var dir = new TempDirectory("ws");
        var workspace = Load(dir, segments);
        return Assert.Throws<WorkspaceException>(() => SegmentSet.Compile(workspace.Segments, _table, RandomProfiles.AsOf));
    }

    [Fact]
    public void Errors_name_file_line_and_column_and_suggest_the_nearest_column()
    {
        var error = Errors(
            ("typo", "name: typo\ndescription: x\ncondition: ltv > 100 AND tierr = 'gold'\n"),
            ("mismatch", "name: mismatch\ndescription: x\ncondition: \"ltv > 'gold'\"\n"),
            ("syntax", "name: syntax\ndescription: x\ncondition: |\n  tier = 'gold'\n    AND (ltv > 10\n"),
            ("folded", "name: folded\ndescription: x\ncondition: >\n  tier = 'gold'\n  AND orders + 'x' > 1\n"),
            ("missing", "name: missing\ndescription: x\ncondition: in_segment('vipp')\n"),
            ("function", "name: function\ndescription: x\ncondition: lowr(tier) = 'gold'\n"));
        var messages = error.Errors.Select(e => e.ToString()).ToList();
        Assert.Contains("segments/typo.yaml:3:26: segment 'typo': unknown column 'tierr' (did you mean 'tier'?)", messages);
        Assert.Contains("segments/mismatch.yaml:3:19: segment 'mismatch': 'gold' is not a number, and is compared with a DOUBLE", messages);
        Assert.Contains("segments/syntax.yaml:5:18: segment 'syntax': expected ')', found the end of the condition", messages);
        Assert.Contains("segments/folded.yaml:5:16: segment 'folded': 'x' is not a number, and is compared with a BIGINT", messages);
        Assert.Contains("segments/missing.yaml:3:23: segment 'missing': unknown segment 'vipp'", messages);
        Assert.Contains("segments/function.yaml:3:12: segment 'function': unknown function 'lowr' (did you mean 'lower'?)", messages);
        Assert.Equal(6, messages.Count);
    }

    [Theory]
    [InlineData("ltv", "a DOUBLE")]
    [InlineData("tier + 1 > 2", "+ needs numbers")]
    [InlineData("tier > 3 AND", "expected a value")]
    [InlineData("ltv > 1; DROP TABLE x", "without ';'")]
    [InlineData("tier = 'gold", "unterminated string")]
    [InlineData("a = b = c", "cannot follow another comparison")]
    [InlineData("created_at - birthday > 3", "INTERVAL")]
    [InlineData("subscribed + 1 > 0", "+ needs numbers")]
    [InlineData("created_at > 'yesterday'", "not a timestamp")]
    [InlineData("tier LIKE country", "constant pattern")]
    [InlineData("ltv // 2 > 1", "integer division")]
    [InlineData("coalesce(tier, 1) = 'x'", "coalesce() needs arguments of one kind")]
    [InlineData("9999999999999999999 > ltv", "out of BIGINT's range")]
    public void Bad_conditions_are_rejected_before_evaluation(string condition, string expected)
    {
        var error = Assert.Throws<ConditionException>(() => new ConditionCompiler(_table, RandomProfiles.AsOf).Compile(condition));
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_cycle_of_references_is_an_error_naming_the_cycle()
    {
        var error = Errors(
            ("a", "name: a\ndescription: x\ncondition: in_segment('b') AND ltv > 1\n"),
            ("b", "name: b\ndescription: x\ncondition: in_segment('c')\n"),
            ("c", "name: c\ndescription: x\ncondition: NOT in_segment('a')\n"),
            ("self", "name: self\ndescription: x\ncondition: in_segment('self')\n"));
        var messages = error.Errors.Select(e => e.ToString()).ToList();
        Assert.Contains("segments/c.yaml:3:27: segment 'c': segments refer to each other in a cycle: a -> b -> c -> a", messages);
        Assert.Contains("segments/self.yaml:3:23: segment 'self': segments refer to each other in a cycle: self -> self", messages);
    }

    [Fact]
    public void References_nest_and_exclude_in_dependency_order()
    {
        using var dir = new TempDirectory("ws");
        // Files are read in name order; 'a_high_value_not_gold' needs the two after it.
        var workspace = Load(dir,
            ("a_high_value_not_gold", "name: a_high_value_not_gold\ndescription: x\ncondition: in_segment('high_value') AND NOT in_segment('gold')\n"),
            ("gold", "name: gold\ndescription: x\ncondition: tier = 'gold'\n"),
            ("high_value", "name: high_value\ndescription: x\ncondition: ltv > 1000\n"));
        var set = SegmentSet.Compile(workspace.Segments, _table, RandomProfiles.AsOf);
        Assert.Equal("a_high_value_not_gold", set.Order[^1].Name);
        var members = set.Evaluate(_table);
        var expected = RandomProfiles.DuckDbMembers(_profiles.Path, "ltv > 1000 AND NOT coalesce(tier = 'gold', FALSE)");
        Assert.Equal(expected, members.ProfileIds("a_high_value_not_gold"));
        Assert.NotEmpty(expected);
        Assert.Equal(RandomProfiles.DuckDbMembers(_profiles.Path, "tier = 'gold'"), members.ProfileIds("gold"));
    }

    [Fact]
    public void An_overflow_while_evaluating_names_the_segment_and_the_operator()
    {
        using var dir = new TempDirectory("ws");
        var workspace = Load(dir, ("huge", "name: huge\ndescription: x\ncondition: orders * 9223372036854775807 > 0\n"));
        var set = SegmentSet.Compile(workspace.Segments, _table, RandomProfiles.AsOf);
        var error = Assert.Throws<WorkspaceException>(() => set.Evaluate(_table));
        Assert.Equal("segments/huge.yaml:3:19: segment 'huge': BIGINT overflow in *", error.Errors.Single().ToString());
    }
}
