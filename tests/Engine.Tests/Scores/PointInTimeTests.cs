using System.Globalization;
using Engine.Datasets;
using Engine.Runs;
using Engine.Scores;
using Engine.Storage;
using Engine.TestKit;
using Engine.Tests.Identity;
using Engine.Workspaces;
using Microsoft.Extensions.Logging.Abstractions;

namespace Engine.Tests.Scores;

/// <summary>
/// Forecast models are trained point in time: the training examples' features are what the profile looked like at
/// the cutoff, whatever happened after it, and a feature whose value at the cutoff is unknown (an undated snapshot
/// column) is refused before any data is read.
/// </summary>
public sealed class PointInTimeTests
{
    private static readonly DateTimeOffset AsOf = new(2026, 11, 1, 0, 0, 0, TimeSpan.Zero);

    private const string ProfilesYaml = """
        attributes:
          - { source: profiles, updated_at: updated_at, columns: [loyalty_tier, subscription_status, country, created_at] }
        traits:
          - { name: orders_90d, source: events, function: count, filter: { type: order_completed }, window: { last_days: 90 } }
          - { name: lifetime_value, source: events, function: sum, column: revenue, filter: { type: order_completed } }
          - { name: page_views_30d, source: events, function: count, filter: { type: page_view }, window: { last_days: 30 } }
          - { name: last_seen_at, source: events, function: last_seen }
          - { name: days_since_last_seen, source: events, function: recency_days }
        """;

    private const string ModelYaml = """
        name: churn
        description: Active subscribers cancelling within 30 days.
        population: subscription_status = 'active'
        label:
          horizon_days: 30
          condition: subscription_status = 'cancelled' OR orders_next = 0
          traits:
            - { name: orders_next, source: events, function: count, filter: { type: order_completed } }
        features: [orders_90d, lifetime_value, page_views_30d, last_seen_at, days_since_last_seen, loyalty_tier, country, created_at]
        min_positives: 1
        validation: { training_windows: 2 }
        """;

    [Fact]
    public async Task Training_features_are_the_profile_at_the_cutoff_whatever_happens_after_it()
    {
        using var dir = new TempDirectory("point-in-time");
        var data = dir.Combine("data");
        await GeneratedWorkspace.GenerateAsync(data, 2_000, seed: 5);
        // Two training windows (cutoffs 90 and 60 days before as-of). The same events, and then the same events again
        // with the last 20 days before the later training cutoff copied into the 20 days after it: more orders, views and later visits, all after the cutoff. The copy is read
        // last, so that profile ids (numbered in the order identifiers are first read) stay the same.
        var lastTrainingCutoff = AsOf.AddDays(-60);
        var events = Path.Combine(data, GeneratedDatasets.EventsFolder);
        var more = dir.Combine("more-events");
        Directory.CreateDirectory(more);
        foreach (var file in Directory.EnumerateFiles(events, "*.parquet"))
        {
            File.Copy(file, Path.Combine(more, Path.GetFileName(file)));
        }
        var cutoff = lastTrainingCutoff.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture);
        using (var db = DuckDb.Open())
        {
            DuckDb.Execute(db, $"""
                COPY (SELECT * REPLACE (ts + INTERVAL 20 DAY AS ts) FROM read_parquet('{Path.Combine(events, "*.parquet")}')
                      WHERE ts >= TIMESTAMPTZ '{cutoff}Z' - INTERVAL 20 DAY AND ts < TIMESTAMPTZ '{cutoff}Z')
                TO '{Path.Combine(more, "part-99999-after-cutoff.parquet")}' (FORMAT parquet);
                """);
        }

        var before = await ExamplesAsync(dir.Combine("ws-1"), data, events);
        var after = await ExamplesAsync(dir.Combine("ws-2"), data, more);

        Assert.Equal(AsOf.AddDays(-90), before.TrainingCutoff);
        Assert.True(before.Training.Count > 100, $"{before.Training.Count} training examples");
        Assert.Equal(before.Training.ProfileIds, after.Training.ProfileIds);
        Assert.Equal(before.Training.Schema.Slots, after.Training.Schema.Slots);
        // Features as of the cutoff: identical, value for value.
        Assert.Equal(Values(before.Training), Values(after.Training));
        // The copied events are seen where they belong: in the labels (orders in the 30 days after the cutoff) and in
        // the validation window's features, which are computed as of 30 days later.
        Assert.NotEqual(before.Training.Labels.ToArray(), after.Training.Labels.ToArray());
        Assert.NotEqual(Values(before.Validation), Values(after.Validation));
    }

    [Fact]
    public void Training_builds_only_the_traits_its_features_population_and_label_read()
    {
        using var dir = new TempDirectory("read-by");
        void Write(string path, string text)
        {
            var full = dir.Combine(path);
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            File.WriteAllText(full, text);
        }
        Write("workspace.yaml", "name: read-by\nversion: 1\noutput: output\n");
        Write("profiles.yaml", ProfilesYaml);
        Write("sources/events.yaml", SourceYaml("events", dir.Combine("events"), GeneratedDatasets.Events, "ts", "identifiers:\n  anonymous_id: anonymous_id\n"));
        Write("sources/profiles.yaml", SourceYaml("profiles", dir.Combine("profiles"), GeneratedDatasets.Profiles, "updated_at", "identifiers:\n  customer_id: customer_id\n"));
        // The population names a trait in other case (unquoted names are case-insensitive); no feature is page_views_30d.
        Write("models/churn.yaml", ModelYaml
            .Replace("population: subscription_status = 'active'", "population: subscription_status = 'active' AND LIFETIME_VALUE > 0", StringComparison.Ordinal)
            .Replace("features: [orders_90d, lifetime_value, page_views_30d, last_seen_at, days_since_last_seen,", "features: [orders_90d,", StringComparison.Ordinal));
        var workspace = WorkspaceLoader.Load(dir.Path);
        var model = workspace.Models[0];
        Assert.Equal(["orders_90d", "lifetime_value"], ModelTraining.ReadBy(workspace.Profiles, model, null).Traits.Select(t => t.Name));
        // The version scoring now is compared on the same window, so its features are built too.
        var previous = new ModelRecord { Features = new FeatureSchema([new FeatureColumn("days_since_last_seen", ColumnType.Int64)], []) };
        Assert.Equal(["orders_90d", "lifetime_value", "days_since_last_seen"], ModelTraining.ReadBy(workspace.Profiles, model, previous).Traits.Select(t => t.Name));
    }

    /// <summary>
    /// Training builds every cutoff in one scan, each over the profiles its examples need, found first from the
    /// attributes: the examples must be those of a full profile table built at each cutoff on its own, row for row.
    /// The model's label reads only attributes, or a label trait (so the later cutoff also builds the earlier one's
    /// population); the population is an attribute condition or absent (every profile); one feature ranks the latest
    /// campaigns, which differ by cutoff. With <c>max_examples</c>, the sample is chosen before the events are read
    /// (population by attributes) or after (no population): either way it must be the reference's rows that the
    /// sample keeps, a window's share of the limit each.
    /// </summary>
    [Theory]
    [InlineData("subscription_status = 'cancelled'", "subscription_status = 'active'", null)]
    [InlineData("subscription_status = 'cancelled' OR orders_next = 0", "subscription_status = 'active'", null)]
    [InlineData("subscription_status = 'cancelled'", null, null)]
    [InlineData("orders_next = 0", "subscription_status IN ('active', 'cancelled') AND country <> 'DE'", null)]
    [InlineData("subscription_status = 'cancelled' OR orders_next = 0", "subscription_status = 'active'", 250)]
    [InlineData("orders_next = 0", "subscription_status IN ('active', 'cancelled') AND country <> 'DE'", 250)]
    [InlineData("subscription_status = 'cancelled'", null, 1000)]
    public async Task Training_examples_are_those_of_a_full_profile_table_at_each_cutoff(string label, string? population, int? maxExamples)
    {
        using var dir = new TempDirectory("forecast-subsets");
        var data = dir.Combine("data");
        await GeneratedWorkspace.GenerateAsync(data, 2_000, seed: 7);
        var model = ModelYaml
            .Replace("condition: subscription_status = 'cancelled' OR orders_next = 0", $"condition: {label}", StringComparison.Ordinal)
            .Replace("population: subscription_status = 'active'\n", population is null ? "" : $"population: {population}\n", StringComparison.Ordinal)
            .Replace("features: [orders_90d,", "features: [opened_last_campaign, orders_90d,", StringComparison.Ordinal)
            + (maxExamples is { } max ? $"\ntrainer: {{ max_examples: {max} }}\n" : "");
        var profiles = ProfilesYaml + """

              - { name: opened_last_campaign, source: events, function: distinct_count, column: campaign_id, filter: { type: email_open, where: [{ column: campaign_id, op: in_latest, value: 1 }] } }
            """;
        var root = dir.Combine("ws");
        using var storage = new StorageResolver();
        var (workspace, identity) = await WorkspaceWithModelAsync(storage, root, data, Path.Combine(data, GeneratedDatasets.EventsFolder), profiles, model);
        var ct = TestContext.Current.CancellationToken;

        using var examples = await new ModelTraining(storage, NullLogger.Instance).BuildForecastAsync(workspace, workspace.Models[0], identity, AsOf, 2, null, ct)
            is var built ? built.Training : throw new InvalidOperationException();
        using var validation = built.Validation;

        // The reference: a full table at each cutoff, the population and label evaluated over it.
        var definition = workspace.Models[0];
        var windows = definition.Validation.TrainingWindows;
        var horizon = definition.Label!.HorizonDays!.Value;
        var everything = new Engine.Profiles.ProfilesDefinition(workspace.Profiles.Survivorship, workspace.Profiles.AttributeSources,
            [.. workspace.Profiles.Traits, .. definition.Label.Traits]);
        var stage = new Engine.Profiles.ProfilesStage(storage, NullLogger.Instance);
        var tables = new Engine.Profiles.ProfileTable[windows + 2];
        for (var k = 0; k <= windows + 1; k++)
        {
            tables[k] = (await stage.BuildAsync(workspace, everything, identity, AsOf.AddDays(-(windows + 1 - k) * horizon), 2, null, ct)).Table;
        }
        TrainingExamples Reference(int k, FeatureSchema? schema)
        {
            var cutoff = AsOf.AddDays(-(windows + 1 - k) * horizon);
            var rows = ModelTraining.Population(definition, tables[k], cutoff, 2);
            if (k < windows)
            {
                var sample = ExampleSample.For(rows.Length, definition.Trainer, windows);
                rows = [.. rows.Where(r => sample.Keeps(tables[k].ProfileIds.Values[r], cutoff))];
            }
            var labels = ModelTraining.Evaluate(definition, definition.Label.Condition, tables[k + 1], cutoff.AddDays(horizon), 2, "label");
            schema ??= FeatureSchema.Learn(definition.Name, definition.Features.Select(f => f.Column).ToList(), tables[k], rows);
            return TrainingExamples.From(schema, tables[k], rows, [.. rows.Select(r => (labels[r >> 6] & (1UL << (r & 63))) != 0)], cutoff, "");
        }
        using var newest = Reference(windows - 1, null);
        var parts = new List<TrainingExamples>();
        for (var k = 0; k < windows - 1; k++)
        {
            parts.Add(Reference(k, newest.Schema));
        }
        parts.Add(newest);
        using var expected = TrainingExamples.Concatenate(parts, "");
        using var expectedValidation = Reference(windows, newest.Schema);

        Assert.True(expected.Positives > 0 && expected.Positives < expected.Count, $"{expected.Positives} of {expected.Count} positive");
        if (maxExamples is { } most)
        {
            // A sample, near the limit (a hash decides each example, so the count is near it, not at it).
            Assert.InRange(examples.Count, most * 0.8, most * 1.2);
            Assert.True(built.Available > 2 * examples.Count, $"{built.Available} examples available, {examples.Count} kept");
        }
        else
        {
            Assert.Equal(examples.Count, built.Available);
        }
        Assert.Equal(expected.Schema.Slots, examples.Schema.Slots);
        foreach (var (want, got) in new[] { (expected, examples), (expectedValidation, validation) })
        {
            Assert.Equal(want.ProfileIds, got.ProfileIds);
            Assert.Equal(want.Labels.ToArray(), got.Labels.ToArray());
            Assert.Equal(Values(want), Values(got));
        }
    }

    /// <summary>Every feature value of the examples, slot by slot.</summary>
    private static float[] Values(TrainingExamples examples)
    {
        var values = new List<float>();
        for (var s = 0; s < examples.Schema.Count; s++)
        {
            values.AddRange(examples.Batch.Feature(s).ToArray());
        }
        return [.. values];
    }

    private static async Task<ForecastExamples> ExamplesAsync(string root, string data, string events)
    {
        using var storage = new StorageResolver();
        var (workspace, identity) = await WorkspaceWithModelAsync(storage, root, data, events, ProfilesYaml, ModelYaml);
        return await new ModelTraining(storage, NullLogger.Instance).BuildForecastAsync(
            workspace, workspace.Models[0], identity, AsOf, 2, null, TestContext.Current.CancellationToken);
    }

    /// <summary>A workspace over the generated data with one run as of <see cref="AsOf"/> (its identity/), then the model added.</summary>
    private static async Task<(Workspace Workspace, StorageLocation Identity)> WorkspaceWithModelAsync(
        StorageResolver storage, string root, string data, string events, string profiles, string model)
    {
        void Write(string path, string text)
        {
            var full = Path.Combine(root, path);
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            File.WriteAllText(full, text);
        }
        Write("workspace.yaml", "name: pit\nversion: 1\noutput: output\n");
        Write("profiles.yaml", profiles);
        Write("sources/events.yaml", SourceYaml("events", events, GeneratedDatasets.Events, "ts", "identifiers:\n  anonymous_id: anonymous_id\n  user_id: customer_id\n  email: email\n"));
        Write("sources/profiles.yaml", SourceYaml("profiles", Path.Combine(data, GeneratedDatasets.ProfilesFolder), GeneratedDatasets.Profiles, "updated_at",
            "identifiers:\n  customer_id: customer_id\n  email: email\n"));
        await new RunExecutor(storage, NullLogger.Instance).ExecuteAsync(WorkspaceLoader.Load(root),
            new RunOptions { RunId = "r1", AsOf = AsOf }, cancellationToken: TestContext.Current.CancellationToken);
        Write("models/churn.yaml", model);
        var workspace = WorkspaceLoader.Load(root);
        ModelChecks.Check(workspace);
        return (workspace, storage.Resolve(Path.Combine(root, "output", "runs", "r1", "identity")));
    }

    internal static string SourceYaml(string name, string location, DataSchema schema, string? timestamp, string identifiers)
    {
        var text = new System.Text.StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"name: {name}\nlocation: '{location}'\nformat: parquet\n");
        if (timestamp is not null)
        {
            text.Append(CultureInfo.InvariantCulture, $"timestamp: {timestamp}\n");
        }
        text.Append("columns:\n");
        foreach (var column in schema.Columns)
        {
            text.Append(CultureInfo.InvariantCulture, $"  {column.Name}: {DataSchema.Describe(column.Type)}\n");
        }
        return text.Append(identifiers).ToString();
    }
}
