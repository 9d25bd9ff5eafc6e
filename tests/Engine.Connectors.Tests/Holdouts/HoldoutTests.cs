using System.Globalization;
using CsCheck;
using Engine.Connectors.Destinations;
using Engine.Connectors.Holdouts;
using Engine.TestKit;
using Engine.Workspaces;

namespace Engine.Connectors.Tests.Holdouts;

/// <summary>The control-group assignment: a fixed hash of destination, segment and profile; and the holdout settings.</summary>
public sealed class HoldoutAssignmentTests
{
    private static readonly Gen<string> Name = Gen.String[Gen.Char['a', 'z'], 1, 20];

    [Fact]
    public void The_bucket_depends_on_destination_segment_and_profile_only()
    {
        // Stable: the same triple gives the same bucket whenever, in whatever order, it is asked for; in range.
        Gen.Select(Name, Name, Gen.Long[0, long.MaxValue]).Sample((destination, segment, profile) =>
        {
            var bucket = HoldoutAssignment.Bucket(destination, segment, profile);
            return bucket is >= 0 and < HoldoutAssignment.Buckets
                && bucket == HoldoutAssignment.Bucket(new string(destination.AsSpan()), new string(segment.AsSpan()), profile);
        });
        // Independent of the batch and order a planner sees: assigning a shuffled list gives the same groups.
        Gen.Long[1, 1_000_000].Array[1, 500].Sample(profiles =>
        {
            var holdout = new HoldoutSettings(10, []);
            var forward = profiles.Distinct().ToDictionary(p => p, p => HoldoutAssignment.IsHeldOut(holdout, "email", "at_risk", p));
            var reversed = profiles.Reverse().Distinct().All(p => HoldoutAssignment.IsHeldOut(holdout, "email", "at_risk", p) == forward[p]);
            return reversed;
        }, iter: 50);
    }

    [Fact]
    public void The_bucket_is_the_documented_sha256_recomputed_by_DuckDB()
    {
        var cases = Enumerable.Range(0, 300).Select(i => (Destination: i % 3 == 0 ? "email_audiences" : "crm_export", Segment: i % 2 == 0 ? "at_risk" : "vip", Profile: (long)i * 7919 + 1)).ToList();
        var values = string.Join(", ", cases.Select(c => $"('{c.Destination}', '{c.Segment}', {c.Profile})"));
        var rows = DuckDb.Rows($"""
            SELECT d, s, p, (('0x' || left(sha256(d || '/' || s || '/' || p::VARCHAR), 16))::UBIGINT % 10000)::BIGINT
            FROM (VALUES {values}) t(d, s, p) ORDER BY d, s, p
            """);
        foreach (var row in rows)
        {
            Assert.Equal(Convert.ToInt64(row[3], CultureInfo.InvariantCulture),
                HoldoutAssignment.Bucket((string)row[0]!, (string)row[1]!, Convert.ToInt64(row[2], CultureInfo.InvariantCulture)));
        }
        Assert.Equal(cases.Count, rows.Count);
    }

    [Theory]
    [InlineData(10)]
    [InlineData(2.5)]
    [InlineData(50)]
    [InlineData(0.01)]
    public void The_share_held_out_is_the_configured_percentage(double percent)
    {
        // 200,000 profiles: the share held out is binomial(n, p); four standard deviations is a test that does not flake.
        const int n = 200_000;
        var holdout = new HoldoutSettings((decimal)percent, []);
        var held = 0;
        for (long profile = 1; profile <= n; profile++)
        {
            held += HoldoutAssignment.IsHeldOut(holdout, "email_audiences", "cart_abandoners", profile) ? 1 : 0;
        }
        var p = percent / 100;
        var sd = Math.Sqrt(n * p * (1 - p));
        Assert.InRange(held, n * p - 4 * sd, n * p + 4 * sd);
    }

    [Fact]
    public void Each_activation_draws_its_own_group()
    {
        // The same profiles are held out of one segment and sent another: groups of different activations are independent.
        var holdout = new HoldoutSettings(50, []);
        var both = Enumerable.Range(1, 10_000).Count(p => HoldoutAssignment.IsHeldOut(holdout, "email", "a", p) && HoldoutAssignment.IsHeldOut(holdout, "email", "b", p));
        Assert.InRange(both, 2_300, 2_700);
    }
}

/// <summary>Wilson and Newcombe intervals against the published values.</summary>
public sealed class ProportionsTests
{
    [Theory]
    // Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table I, method 3 (score, no correction).
    [InlineData(81, 263, 0.2553, 0.3662)]
    [InlineData(15, 148, 0.0624, 0.1605)]
    [InlineData(0, 20, 0.0000, 0.1611)]
    [InlineData(1, 29, 0.0061, 0.1718)]
    public void Wilson_matches_Newcombe_1998(long x, long n, double low, double high)
    {
        var interval = Proportions.Wilson(x, n)!.Value;
        Assert.Equal(low, interval.Low, 4);
        Assert.Equal(high, interval.High, 4);
    }

    [Theory]
    // Newcombe (1998), "Interval estimation for the difference between independent proportions", Table II, method 10.
    [InlineData(56, 70, 48, 80, 0.0524, 0.3339)]
    [InlineData(9, 10, 3, 10, 0.1705, 0.8090)]
    [InlineData(5, 56, 0, 29, -0.0381, 0.1926)]
    [InlineData(0, 10, 0, 20, -0.1611, 0.2775)]
    [InlineData(0, 10, 0, 10, -0.2775, 0.2775)]
    [InlineData(10, 10, 0, 20, 0.6791, 1.0000)]
    [InlineData(10, 10, 0, 10, 0.6075, 1.0000)]
    public void Newcombe_matches_the_published_table(long x1, long n1, long x2, long n2, double low, double high)
    {
        var interval = Proportions.NewcombeDifference(x1, n1, x2, n2)!.Value;
        Assert.Equal(low, interval.Low, 4);
        Assert.Equal(high, interval.High, 4);
    }

    [Fact]
    public void Empty_groups_have_no_interval_and_intervals_hold_their_estimate()
    {
        Assert.Null(Proportions.Wilson(0, 0));
        Assert.Null(Proportions.NewcombeDifference(1, 2, 0, 0));
        Gen.Select(Gen.Int[1, 500], Gen.Int[1, 500]).SelectMany((n1, n2) => Gen.Select(Gen.Int[0, n1], Gen.Int[0, n2], (x1, x2) => (x1, n1, x2, n2))).Sample(t =>
        {
            var interval = Proportions.NewcombeDifference(t.x1, t.n1, t.x2, t.n2)!.Value;
            var d = (double)t.x1 / t.n1 - (double)t.x2 / t.n2;
            return interval.Low <= d + 1e-12 && d <= interval.High + 1e-12 && interval.Low >= -1 && interval.High <= 1;
        });
    }
}

/// <summary>The holdout and outcome settings, checked at file, line and column.</summary>
public sealed class HoldoutSettingsTests
{
    private static TempDirectory Workspace(string delivery, string destination)
    {
        var dir = new TempDirectory("holdouts");
        void Write(string path, string text)
        {
            var full = dir.Combine(path);
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            File.WriteAllText(full, text);
        }
        Write("workspace.yaml", "name: shop\nversion: 1\n");
        Write("identity.yaml", "identifier_types:\n  customer_id: { normalizer: id }\n  email: { normalizer: email }\n");
        Write("sources/events.yaml", """
            name: events
            location: data/events
            format: parquet
            timestamp: ts
            columns:
              ts: timestamp
              type: string
              detail: string
              revenue: double
              user_id: string
            identifiers:
              user_id: customer_id
            """);
        Write("profiles.yaml", "traits:\n  - { name: orders, source: events, function: count, filter: { type: order_completed } }\n");
        Write("segments/buyers.yaml", "name: buyers\ndescription: bought\ncondition: orders > 0\n");
        Write("delivery.yaml", delivery);
        Write("destinations/mail.yaml", destination);
        return dir;
    }

    private const string Destination = """
        name: mail
        type: file
        segments: [buyers]
        consent: none
        identify_by: [customer_id]
        settings: { path: exports/mail }
        """;

    [Fact]
    public void A_holdout_and_its_outcomes_load()
    {
        using var dir = Workspace("""
            outcomes:
              purchase: { source: events, filter: { type: order_completed }, window_days: 14 }
              churn:
                description: Cancelled the subscription.
                source: events
                filter: { type: subscription_changed, detail: [cancelled, paused] }
                window_days: 30
            """, Destination + "\nholdout: { percent: 12.5, outcomes: [churn] }\n");
        var configuration = DestinationsLoader.Load(WorkspaceLoader.Load(dir.Path));
        var holdout = Assert.Single(configuration.Destinations).Holdout!;
        Assert.Equal(12.5m, holdout.Percent);
        Assert.Equal(1250, holdout.HeldOutBuckets);
        Assert.Equal(["churn"], holdout.Outcomes);
        var churn = configuration.Settings.Outcomes.Single(o => o.Name == "churn");
        Assert.Equal(30, churn.WindowDays);
        Assert.Equal([("type", "subscription_changed"), ("detail", "cancelled,paused")], churn.Filters.Select(f => (f.Column, string.Join(",", f.Values))));
        // Where the value is written, for errors found later in the data.
        Assert.Equal((6, 21), (churn.Filters[0].Line, churn.Filters[0].Position));

        // Without 'outcomes', a holdout is measured on every outcome declared.
        File.WriteAllText(dir.Combine("destinations", "mail.yaml"), Destination + "\nholdout: { percent: 10 }\n");
        Assert.Equal(["purchase", "churn"], Assert.Single(DestinationsLoader.Load(WorkspaceLoader.Load(dir.Path)).Destinations).Holdout!.Outcomes);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("100")]
    [InlineData("150")]
    [InlineData("-5")]
    [InlineData("ten")]
    [InlineData("2.555")]
    public void A_percent_outside_0_to_100_is_refused_at_its_position(string percent)
    {
        using var dir = Workspace("outcomes:\n  purchase: { source: events, filter: { type: order_completed }, window_days: 14 }\n",
            Destination + $"\nholdout: {{ percent: {percent} }}\n");
        var error = Assert.Throws<WorkspaceException>(() => DestinationsLoader.Load(WorkspaceLoader.Load(dir.Path)));
        var line = Destination.Split('\n').Length + 1;
        Assert.Equal($"destinations/mail.yaml:{line}:21: holdout percent '{percent}' must be a number above 0 and below 100, in steps of 0.01 (such as 10 or 2.5)",
            Assert.Single(error.Errors).ToString());
    }

    [Fact]
    public void Outcome_mistakes_are_reported_at_their_line_and_column()
    {
        string[] lines =
        [
            /* 1 */ "outcomes:",
            /* 2 */ "  purchase: { source: event, filter: { type: order_completed }, window_days: 14 }",
            /* 3 */ "  refund: { source: events, filter: { typ: refund }, window_days: 0 }",
            /* 4 */ "  spend: { source: events, filter: { revenue: '10' }, window_days: 7, colour: red }",
            /* 5 */ "  Bad-Name: { source: events, filter: { type: x }, window_days: 7 }",
        ];
        using var dir = Workspace(string.Join("\n", lines) + "\n", Destination + "\nholdout: { percent: 10, outcomes: [purchse] }\n");
        var error = Assert.Throws<WorkspaceException>(() => DestinationsLoader.Load(WorkspaceLoader.Load(dir.Path)));
        var reported = error.Errors.Select(e => e.ToString()).ToList();
        (int Line, string Token, string Message)[] expected =
        [
            (2, "event,", "unknown source 'event' (did you mean 'events'?)"),
            (3, "typ:", "source 'events' has no column 'typ' (did you mean 'type'?)"),
            (3, "0 }", "'0' is not a whole number from 1 to 3,650 (days after entering the segment)"),
            (4, "revenue", "an outcome filter compares text: column 'revenue' of source 'events' is double"),
            (4, "colour", "unknown key 'colour'"),
            (5, "Bad-Name", "outcome name 'Bad-Name' must be lower-case letters"),
        ];
        foreach (var (line, token, message) in expected)
        {
            var where = $"delivery.yaml:{line}:{lines[line - 1].IndexOf(token, StringComparison.Ordinal) + 1}: ";
            Assert.True(reported.Exists(r => r.StartsWith(where, StringComparison.Ordinal) && r.Contains(message, StringComparison.Ordinal)),
                $"expected '{where}{message}' among:\n{string.Join("\n", reported)}");
        }
        Assert.Contains(reported, r => r.StartsWith("destinations/mail.yaml:", StringComparison.Ordinal) && r.Contains("unknown outcome 'purchse'", StringComparison.Ordinal));
    }

    [Fact]
    public void A_holdout_without_any_outcome_declared_is_refused()
    {
        using var dir = Workspace("ledger: { type: sqlite }\n", Destination + "\nholdout: { percent: 10 }\n");
        var error = Assert.Throws<WorkspaceException>(() => DestinationsLoader.Load(WorkspaceLoader.Load(dir.Path)));
        Assert.Contains("a holdout is measured on outcomes, and delivery.yaml declares none", Assert.Single(error.Errors).ToString(), StringComparison.Ordinal);
    }
}
