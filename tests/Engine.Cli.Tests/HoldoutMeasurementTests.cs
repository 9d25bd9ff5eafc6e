using System.Globalization;
using System.Text.Json.Nodes;
using Engine.TestKit;

namespace Engine.Cli.Tests;

/// <summary>
/// The closed loop on a generated workspace: the example email destination holds out 30 % of each segment, which is
/// never sent (entries or exits) and is recorded in the activation events; conversions written into the event source
/// afterwards (treated members at 50 %, held-out members at 20 %) are found by <c>engine measure</c> exactly, and the
/// lift's interval holds the lift they were written with.
/// </summary>
public sealed class HoldoutMeasurementTests
{
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    private static long L(object? value) => Convert.ToInt64(value, Invariant);

    [Fact]
    public async Task Held_out_members_are_never_sent_and_measure_counts_later_conversions_exactly()
    {
        var cancellationToken = TestContext.Current.CancellationToken;
        using var dir = new TempDirectory("holdout");
        var ws = dir.Combine("demo");
        Check(await CliHarness.RunAsync("init", ws));
        Check(await CliHarness.RunAsync("generate", "--people", "2000", "--seed", "7", "--days", "120", "--out", Path.Combine(ws, "data")));
        await File.AppendAllTextAsync(Path.Combine(ws, "delivery.yaml"), """

            outcomes:
              purchase: { source: events, filter: { type: order_completed }, window_days: 7 }

            """, cancellationToken);
        var destinationFile = Path.Combine(ws, "destinations", "email_audiences.yaml");
        var destination = (await File.ReadAllTextAsync(destinationFile, cancellationToken)).Replace("batch_size: 5000\n", "batch_size: 5000\nholdout: { percent: 30, outcomes: [purchase] }\n", StringComparison.Ordinal);
        Assert.Contains("holdout:", destination, StringComparison.Ordinal);
        await File.WriteAllTextAsync(destinationFile, destination, cancellationToken);
        Check(await CliHarness.RunAsync("run", "--workspace", ws, "--run-id", "night1", "--as-of", "2026-11-01", "--deliver"));

        var output = Path.Combine(ws, "output");
        string Events(string run) => Path.Combine(output, "deliveries", run, "events", "*.parquet");
        const string Bucket = "(('0x' || left(sha256(destination || '/' || segment || '/' || profile_id::VARCHAR), 16))::UBIGINT % 10000)";

        // The control group is exactly the profiles whose documented hash falls below 30 %, recomputed by DuckDB.
        var groups = DuckDb.Rows($"""
            SELECT count(*), count(*) FILTER (WHERE outcome = 'held_out'),
                   count(*) FILTER (WHERE ({Bucket} < 3000) <> (outcome = 'held_out')),
                   count(*) FILTER (WHERE holdout_group IS DISTINCT FROM CASE WHEN outcome = 'held_out' THEN 'control' ELSE 'treatment' END),
                   count(*) - count(DISTINCT key)
            FROM read_parquet('{Events("night1")}') WHERE destination = 'email_audiences'
            """).Single();
        Assert.True(L(groups[1]) > 20, $"{groups[1]} held out of {groups[0]}");
        Assert.Equal([0L, 0L, 0L], new[] { L(groups[2]), L(groups[3]), L(groups[4]) });
        Assert.Equal(0L, L(DuckDb.Rows($"SELECT count(*) FROM read_parquet('{Events("night1")}') WHERE destination = 'crm_export' AND holdout_group IS NOT NULL").Single()[0]));
        var report = JsonNode.Parse(await File.ReadAllBytesAsync(Path.Combine(output, "deliveries", "night1", "report.json"), cancellationToken))!;
        Assert.Equal(L(groups[1]), report["destinations"]!["email_audiences"]!["held_out"]!.GetValue<long>());
        // Never sent: no exported row belongs to a held-out member.
        string Exports(string run) => Path.Combine(output, "exports", "email_audiences", run, "part-*.csv");
        Assert.Equal(0L, L(DuckDb.Rows($"""
            SELECT count(*) FROM read_csv('{Exports("night1")}') x JOIN read_parquet('{Events("night1")}') e
              ON e.destination = 'email_audiences' AND e.segment = x.segment AND e.profile_id = x.profile_id AND e.outcome = 'held_out'
            """).Single()[0]));

        // Later outcomes, written into the event source with raw identifiers (the customer id, else the email in
        // capitals with spaces, else the cookie): treated entries convert when profile_id is even, held-out ones when
        // it is a multiple of 5, two days after the run. Decoys that must not count: an order nine days later (after
        // the window), a page view, and an order the day before the run.
        // The conversions are written for the members of the segment with the largest control group; members of the
        // other segments convert when they are members of that one too.
        var target = (string)DuckDb.Rows($"""
            SELECT segment FROM read_parquet('{Events("night1")}') WHERE destination = 'email_audiences' AND change = 'entered' AND holdout_group = 'control'
            GROUP BY segment ORDER BY count(*) DESC, segment LIMIT 1
            """).Single()[0]!;
        const string Converts = "((holdout_group = 'treatment' AND profile_id % 2 = 0) OR (holdout_group = 'control' AND profile_id % 5 = 0))";
        var identity = Path.Combine(output, "runs", "night1", "identity", "*.parquet");
        var eventsDir = Path.Combine(ws, "data", "events");
        File.Delete(Path.Combine(eventsDir, "_dataset.json"));
        DuckDb.Rows($"""
            COPY (
              WITH entries AS (
                SELECT DISTINCT profile_id, holdout_group FROM read_parquet('{Events("night1")}')
                WHERE destination = 'email_audiences' AND change = 'entered' AND segment = '{target}'),
              ids AS (
                SELECT profile_id,
                       min(identifier_value) FILTER (WHERE identifier_type = 'customer_id') AS customer_id,
                       min(identifier_value) FILTER (WHERE identifier_type = 'email') AS email,
                       min(identifier_value) FILTER (WHERE identifier_type = 'anonymous_id') AS anonymous_id
                FROM read_parquet('{identity}') WHERE profile_id IS NOT NULL GROUP BY profile_id),
              people AS (
                SELECT e.profile_id, e.holdout_group, i.customer_id,
                       CASE WHEN i.customer_id IS NULL THEN '  ' || upper(i.email) || ' ' END AS email,
                       CASE WHEN i.customer_id IS NULL AND i.email IS NULL THEN i.anonymous_id END AS anonymous_id
                FROM entries e JOIN ids i USING (profile_id)),
              rows AS (
                SELECT profile_id, 'order_completed' AS type, TIMESTAMPTZ '2026-11-03 10:00:00+00' AS ts, customer_id, email, anonymous_id FROM people
                WHERE {Converts}
                UNION ALL
                SELECT profile_id, 'order_completed', TIMESTAMPTZ '2026-11-10 10:00:00+00', customer_id, email, anonymous_id FROM people WHERE profile_id % 2 = 1
                UNION ALL
                SELECT profile_id, 'page_view', TIMESTAMPTZ '2026-11-02 10:00:00+00', customer_id, email, anonymous_id FROM people WHERE profile_id % 3 = 0
                UNION ALL
                SELECT profile_id, 'order_completed', TIMESTAMPTZ '2026-10-31 10:00:00+00', customer_id, email, anonymous_id FROM people WHERE profile_id % 7 = 0)
              SELECT 'late-' || row_number() OVER () AS event_id, ts, type, anonymous_id, customer_id AS user_id, email,
                     NULL::VARCHAR AS product_id, 25.0::DOUBLE AS revenue, NULL::VARCHAR AS order_id, 1::BIGINT AS quantity,
                     NULL::VARCHAR AS campaign_id, NULL::VARCHAR AS ticket_id, 'desktop' AS device, NULL::VARCHAR AS detail
              FROM rows ORDER BY profile_id, ts
            ) TO '{Path.Combine(eventsDir, "late-outcomes.parquet")}' (FORMAT parquet)
            """);

        var (code, printed, error) = await CliHarness.RunAsync("measure", "--workspace", ws, "--as-of", "2026-11-10");
        Assert.True(code == 0, error + printed);
        Assert.Contains("email_audiences", printed, StringComparison.Ordinal);
        var measurement = JsonNode.Parse(await File.ReadAllBytesAsync(Path.Combine(output, "runs", "night1", "measurement.json"), cancellationToken))!;
        Assert.Equal("newcombe_hybrid_score", measurement["method"]!.GetValue<string>());
        Assert.Equal(["night1"], measurement["runs_read"]!.AsArray().Select(r => r!.GetValue<string>()));

        // Expected, per segment, from the events alone: entries per group, and the conversions written above.
        var expected = DuckDb.Rows($"""
            WITH entries AS (SELECT * FROM read_parquet('{Events("night1")}') WHERE destination = 'email_audiences' AND change = 'entered'),
                 converters AS (SELECT DISTINCT profile_id FROM entries WHERE segment = '{target}' AND {Converts})
            SELECT segment, holdout_group, count(*), count(*) FILTER (WHERE profile_id IN (SELECT profile_id FROM converters)), count(*) FILTER (WHERE outcome = 'delivered')
            FROM entries GROUP BY ALL ORDER BY ALL
            """).ToDictionary(r => ((string)r[0]!, (string)r[1]!), r => (Entries: L(r[2]), Converted: L(r[3]), Delivered: L(r[4])));
        var activations = measurement["activations"]!.AsArray();
        Assert.Equal(expected.Keys.Select(k => k.Item1).Distinct().Order(StringComparer.Ordinal), activations.Select(a => a!["segment"]!.GetValue<string>()));
        JsonNode? targeted = null;
        foreach (var activation in activations)
        {
            var segment = activation!["segment"]!.GetValue<string>();
            Assert.Equal("email_audiences", activation["destination"]!.GetValue<string>());
            Assert.Equal(30m, activation["holdout_percent"]!.GetValue<decimal>());
            var treatment = expected.GetValueOrDefault((segment, "treatment"));
            var control = expected.GetValueOrDefault((segment, "control"));
            Assert.Equal(treatment.Entries, activation["treatment_entries"]!.GetValue<long>());
            Assert.Equal(control.Entries, activation["control_entries"]!.GetValue<long>());
            Assert.Equal(treatment.Delivered, activation["delivered"]!.GetValue<long>());
            var purchase = Assert.Single(activation["outcomes"]!.AsArray())!;
            Assert.Equal(("purchase", 7, 0L), (purchase["outcome"]!.GetValue<string>(), purchase["window_days"]!.GetValue<int>(), purchase["open"]!.GetValue<long>()));
            Assert.Equal((treatment.Entries, treatment.Converted), (purchase["treatment"]!["entries"]!.GetValue<long>(), purchase["treatment"]!["converted"]!.GetValue<long>()));
            Assert.Equal((control.Entries, control.Converted), (purchase["control"]!["entries"]!.GetValue<long>(), purchase["control"]!["converted"]!.GetValue<long>()));
            if (treatment.Entries > 0 && control.Entries > 0)
            {
                var lift = (double)treatment.Converted / treatment.Entries - (double)control.Converted / control.Entries;
                Assert.Equal(lift, purchase["lift"]!.GetValue<double>(), 12);
                Assert.True(purchase["lift_low"]!.GetValue<double>() <= lift && lift <= purchase["lift_high"]!.GetValue<double>());
                if (segment == target)
                {
                    targeted = purchase;
                }
            }
        }
        // The lift the conversions were written with (50 % against 20 %) lies in that activation's interval, which excludes 0.
        Assert.NotNull(targeted);
        Assert.True(targeted["control"]!["entries"]!.GetValue<long>() >= 30, targeted.ToJsonString());
        Assert.InRange(0.3, targeted["lift_low"]!.GetValue<double>(), targeted["lift_high"]!.GetValue<double>());
        Assert.True(targeted["lift_low"]!.GetValue<double>() > 0, targeted.ToJsonString());

        // Measured too early, every window is still open and nothing is counted.
        (code, printed, error) = await CliHarness.RunAsync("measure", "--workspace", ws, "--run-id", "night1", "--as-of", "2026-11-05");
        Assert.True(code == 0, error + printed);
        var early = JsonNode.Parse(await File.ReadAllBytesAsync(Path.Combine(output, "runs", "night1", "measurement.json"), cancellationToken))!;
        Assert.All(early["activations"]!.AsArray(), a => Assert.Equal(0L, a!["outcomes"]![0]!["treatment"]!["entries"]!.GetValue<long>()));

        // The next night: the cart abandoners leave (nobody carted on 1 November); held-out members' exits are not sent either.
        Check(await CliHarness.RunAsync("run", "--workspace", ws, "--run-id", "night2", "--as-of", "2026-11-02", "--deliver"));
        var exits = DuckDb.Rows($"""
            SELECT count(*), count(*) FILTER (WHERE outcome = 'held_out'), count(*) FILTER (WHERE ({Bucket} < 3000) <> (outcome = 'held_out'))
            FROM read_parquet('{Events("night2")}') WHERE destination = 'email_audiences' AND change = 'exited'
            """).Single();
        Assert.True(L(exits[1]) > 0, $"{exits[1]} held-out exits of {exits[0]}");
        Assert.Equal(0L, L(exits[2]));
        Assert.Equal(0L, L(DuckDb.Rows($"""
            SELECT count(*) FROM read_csv('{Exports("night2")}') x JOIN read_parquet('{Events("night2")}') e
              ON e.destination = 'email_audiences' AND e.segment = x.segment AND e.profile_id = x.profile_id AND e.outcome = 'held_out'
            """).Single()[0]));
        // The run's report shows the holdouts (measured as of night2: the night1 windows are still open then).
        var runReport = JsonNode.Parse(await File.ReadAllBytesAsync(Path.Combine(output, "runs", "night2", "report.json"), cancellationToken))!;
        Assert.Equal(["night1", "night2"], runReport["holdouts"]!["runs_read"]!.AsArray().Select(r => r!.GetValue<string>()));
        Assert.Contains("<h2>Holdouts</h2>", await File.ReadAllTextAsync(Path.Combine(output, "runs", "night2", "report.html"), cancellationToken), StringComparison.Ordinal);

        // Bad input: an event type no event has is named at its line and column, with the nearest type seen.
        var deliveryFile = Path.Combine(ws, "delivery.yaml");
        var delivery = await File.ReadAllTextAsync(deliveryFile, cancellationToken);
        await File.WriteAllTextAsync(deliveryFile, delivery.Replace("type: order_completed", "type: order_complete", StringComparison.Ordinal), cancellationToken);
        var lines = (await File.ReadAllLinesAsync(deliveryFile, cancellationToken)).ToList();
        var line = lines.FindIndex(l => l.Contains("order_complete", StringComparison.Ordinal));
        (code, _, error) = await CliHarness.RunAsync("measure", "--workspace", ws);
        Assert.Equal(1, code);
        Assert.Contains($"delivery.yaml:{line + 1}:{lines[line].IndexOf("order_complete", StringComparison.Ordinal) + 1}: outcome 'purchase': no row of source 'events' has type 'order_complete' (did you mean 'order_completed'?)",
            error, StringComparison.Ordinal);
        await File.WriteAllTextAsync(deliveryFile, delivery, cancellationToken);

        // A malformed holdout is refused by validate, at its position.
        await File.WriteAllTextAsync(destinationFile, destination.Replace("percent: 30", "percent: 0", StringComparison.Ordinal), cancellationToken);
        var destinationLines = destination.Split('\n').ToList();
        var at = destinationLines.FindIndex(l => l.StartsWith("holdout:", StringComparison.Ordinal));
        (code, _, error) = await CliHarness.RunAsync("validate", "--workspace", ws);
        Assert.Equal(1, code);
        Assert.Contains($"destinations/email_audiences.yaml:{at + 1}:{destinationLines[at].IndexOf("30", StringComparison.Ordinal) + 1}: holdout percent '0' must be a number above 0 and below 100",
            error, StringComparison.Ordinal);
    }

    private static string Check((int ExitCode, string Output, string Error) result)
    {
        Assert.True(result.ExitCode == 0, result.Error + result.Output);
        return result.Output;
    }
}
