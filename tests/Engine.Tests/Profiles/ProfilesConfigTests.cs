using Engine.Profiles;
using Engine.Workspaces;

namespace Engine.Tests.Profiles;

/// <summary><c>profiles.yaml</c> loading: the format read back, and every mistake reported at its file, line and column with a hint.</summary>
public sealed class ProfilesConfigTests
{
    [Fact]
    public void A_valid_file_loads_attributes_survivorship_and_traits()
    {
        using var workspace = new ProfilesWorkspace();
        workspace.Write("profiles.yaml", """
            survivorship: priority
            attributes:
              - source: crm
                columns: [tier, country, score]
            traits:
              - name: orders_quarter
                source: events
                function: count
                filter:
                  type: [order_completed, refund]
                  where:
                    - { column: revenue, op: '>', value: 0 }
                    - { column: ts, op: '>=', value: '2026-01-01T00:00:00Z' }
                    - { column: product_id, op: is_not_null }
                window: { from_days_ago: 180, to_days_ago: 90 }
              - { name: ltv, source: events, function: sum, column: revenue }
            """);
        var profiles = WorkspaceLoader.Load(workspace.Path).Profiles;
        Assert.Equal(Survivorship.Priority, profiles.Survivorship);
        Assert.Equal(["tier", "country", "score"], profiles.Attributes.Select(a => a.Name));
        Assert.Equal("updated_at", profiles.AttributeSources[0].UpdatedAt); // the source's timestamp by default
        var orders = profiles.Traits[0];
        Assert.Equal(TraitFunction.Count, orders.Function);
        Assert.Equal(new TraitWindow(180, 90), orders.Window);
        Assert.Equal("ts", orders.Timestamp);
        Assert.Equal(4, orders.Conditions.Count);
        Assert.Equal(FilterOperator.In, orders.Conditions[0].Operator);
        Assert.Equal(0.0, orders.Conditions[1].Values[0]);
        Assert.Equal(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds() * 1000, orders.Conditions[2].Values[0]);
        Assert.Equal(Engine.Storage.ColumnType.Double, ColumnTypeOf(profiles, "ltv"));
        Assert.Equal(TraitWindow.AllHistory, profiles.Traits[1].Window);
    }

    private static Engine.Storage.ColumnType ColumnTypeOf(ProfilesDefinition profiles, string trait) => profiles.Traits.Single(t => t.Name == trait).OutputType;

    [Fact]
    public void No_profiles_yaml_means_no_attributes_and_no_traits()
    {
        using var workspace = new ProfilesWorkspace();
        var profiles = WorkspaceLoader.Load(workspace.Path).Profiles;
        Assert.Empty(profiles.AttributeSources);
        Assert.Empty(profiles.Traits);
    }

    [Fact]
    public void Every_mistake_is_reported_at_its_line_and_column_with_the_nearest_name()
    {
        string[] lines =
        [
            /* 1 */ "attributes:",
            /* 2 */ "  - source: crm",
            /* 3 */ "    columns: [tier, contry]",
            /* 4 */ "  - { source: crmm, columns: [tier] }",
            /* 5 */ "traits:",
            /* 6 */ "  - { name: t1, source: events, function: sums, column: revenue }",
            /* 7 */ "  - { name: t2, source: events, function: sum }",
            /* 8 */ "  - { name: t3, source: events, function: sum, column: product_id }",
            /* 9 */ "  - { name: profile_id, source: events, function: count }",
            /* 10 */ "  - { name: tier, source: events, function: count }",
            /* 11 */ "  - { name: t6, source: events, function: count, window: { from_days_ago: 30, to_days_ago: 60 } }",
            /* 12 */ "  - { name: t7, source: events, function: min, column: revnue }",
            /* 13 */ "  - { name: t8, source: events, function: count, filter: { typ: [a] } }",
            /* 14 */ "  - { name: t9, source: events, function: count, filter: { where: [{ column: revenue, op: '=>', value: 1 }] } }",
            /* 15 */ "  - { name: t10, source: events, function: recency_days, column: revenue }",
            /* 16 */ "  - { name: t11, source: events, function: count, filter: { where: [{ column: revenue, op: '>', value: abc }] } }",
            /* 17 */ "  - { name: ok, source: events, function: count }",
            /* 18 */ "  - { name: ok, source: events, function: count }",
            /* 19 */ "  - { name: t12, source: events, function: count, window: { last_days: 0 } }",
            /* 20 */ "  - { name: t13, source: events, function: count, colum: revenue }",
            /* 21 */ "  - { name: t14, source: event, function: count }",
            /* 22 */ "  - { name: t15, source: events, function: distinct_cuont, column: revenue }",
            /* 23 */ "  - { name: t16, source: events, function: count, window: { last_day: 7 } }",
            /* 24 */ "  - { name: t17, source: events, function: count, filter: { where: [{ column: type, op: in_latest, value: 0 }] } }",
            /* 25 */ "  - { name: t18, source: events, function: count, filter: { where: [{ column: revenue, op: in_latest, value: 3 }] } }",
            /* 26 */ "  - { name: t19, source: events, function: count, filter: { where: [{ column: type, op: in_latest, value: 1 }, { column: product_id, op: in_latest, value: 2 }] } }",
        ];
        (int Line, string Token, string Message)[] expected =
        [
            (3, "contry", "attribute column 'contry' is not a column of source 'crm' (did you mean 'country'?)"),
            (4, "crmm", "unknown source 'crmm' (did you mean 'crm'?)"),
            (6, "sums", "unknown function 'sums' (did you mean 'sum'?)"),
            (7, "sum", "function sum needs a 'column' to aggregate"),
            (8, "product_id", "function sum needs a number, but column 'product_id' is string"),
            (9, "profile_id", "'profile_id' is the profile table's key and cannot name a trait"),
            (10, "tier", "trait 'tier' has the name of an attribute"),
            (11, "30", "from_days_ago (30) must be more than to_days_ago (60)"),
            (12, "revnue", "column 'revnue' is not a column of source 'events' (did you mean 'revenue'?)"),
            (13, "typ", "filter column 'typ' is not a column of source 'events' (did you mean 'type'?)"),
            (14, "'=>'", "unknown operator '=>'"),
            (15, "revenue", "function recency_days reads only the event time and takes no 'column'"),
            (16, "abc", "'abc' is not a value of column 'revenue' (double)"),
            (18, "ok", "trait 'ok' is already defined (profiles.yaml:17)"),
            (19, "0", "'last_days' must be a whole number of days from 1"),
            (20, "colum", "unknown key 'colum' (did you mean 'column'?)"),
            (21, "event,", "unknown source 'event' (did you mean 'events'?)"),
            (22, "distinct_cuont", "unknown function 'distinct_cuont' (did you mean 'distinct_count'?)"),
            (23, "last_day", "unknown key 'last_day' (did you mean 'last_days'?)"),
            (24, "0 }", "'in_latest' takes how many of the latest values count, a whole number from 1 to 1000"),
            (25, "revenue", "'in_latest' ranks the values of an id column (a string, integer, date or timestamp), but column 'revenue' is double"),
            (26, "{ where", "a trait's filter takes at most one 'in_latest' comparison"),
        ];
        using var workspace = new ProfilesWorkspace();
        workspace.Write("profiles.yaml", string.Join("\n", lines) + "\n");
        var error = Assert.Throws<WorkspaceException>(() => WorkspaceLoader.Load(workspace.Path));
        var reported = error.Errors.Select(e => e.ToString()).ToList();
        foreach (var (line, token, message) in expected)
        {
            var column = lines[line - 1].IndexOf(token, lines[line - 1].IndexOf("name:", StringComparison.Ordinal) is var n and >= 0 ? n + 5 : 0, StringComparison.Ordinal) + 1;
            var where = $"profiles.yaml:{line}:{column}: ";
            Assert.True(reported.Exists(r => r.StartsWith(where, StringComparison.Ordinal) && r.Contains(message, StringComparison.Ordinal)),
                $"expected '{where}{message}' among:\n{string.Join("\n", reported)}");
        }
        Assert.Equal(expected.Length, reported.Count);
    }

    [Fact]
    public void Bad_survivorship_and_a_source_without_identifiers_are_reported()
    {
        using var workspace = new ProfilesWorkspace();
        workspace.Write("sources/plain.yaml", "name: plain\nlocation: data/plain\nformat: csv\ntimestamp: ts\ncolumns:\n  ts: timestamp\n  x: string\n");
        workspace.Write("profiles.yaml", "survivorship: recent\ntraits:\n  - { name: n, source: plain, function: count }\n");
        var error = Assert.Throws<WorkspaceException>(() => WorkspaceLoader.Load(workspace.Path));
        var reported = error.Errors.Select(e => e.ToString()).ToList();
        Assert.Contains("profiles.yaml:1:15: unknown survivorship 'recent' (did you mean 'recency'?)", reported);
        var column = "  - { name: n, source: plain, function: count }".IndexOf("plain", StringComparison.Ordinal) + 1;
        Assert.Contains(reported, r => r.StartsWith($"profiles.yaml:3:{column}: source 'plain' declares no identifiers", StringComparison.Ordinal));
    }
}
