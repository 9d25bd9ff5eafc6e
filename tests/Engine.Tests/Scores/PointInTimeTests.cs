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
        void Write(string path, string text)
        {
            var full = Path.Combine(root, path);
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            File.WriteAllText(full, text);
        }
        Write("workspace.yaml", "name: pit\nversion: 1\noutput: output\n");
        Write("profiles.yaml", ProfilesYaml);
        Write("sources/events.yaml", SourceYaml("events", events, GeneratedDatasets.Events, "ts", "identifiers:\n  anonymous_id: anonymous_id\n  user_id: customer_id\n  email: email\n"));
        Write("sources/profiles.yaml", SourceYaml("profiles", Path.Combine(data, GeneratedDatasets.ProfilesFolder), GeneratedDatasets.Profiles, "updated_at",
            "identifiers:\n  customer_id: customer_id\n  email: email\n"));
        using var storage = new StorageResolver();
        await new RunExecutor(storage, NullLogger.Instance).ExecuteAsync(WorkspaceLoader.Load(root),
            new RunOptions { RunId = "r1", AsOf = AsOf }, cancellationToken: TestContext.Current.CancellationToken);
        Write("models/churn.yaml", ModelYaml);
        var workspace = WorkspaceLoader.Load(root);
        ModelChecks.Check(workspace);
        var identity = storage.Resolve(Path.Combine(root, "output", "runs", "r1", "identity"));
        return await new ModelTraining(storage, NullLogger.Instance).BuildForecastAsync(
            workspace, workspace.Models[0], identity, AsOf, 2, null, TestContext.Current.CancellationToken);
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
