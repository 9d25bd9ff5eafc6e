using Engine.Datasets;
using Engine.Scores;
using Engine.TestKit;
using Engine.Workspaces;

namespace Engine.Tests.Scores;

/// <summary>
/// A workspace's models checked without data (<c>engine validate</c>, the start of a run): each problem at its file,
/// line and column, naming the model and the column — the point-in-time guard among them.
/// </summary>
public sealed class ModelChecksTests : IDisposable
{
    private readonly TempDirectory _dir = new("model-checks");

    public void Dispose() => _dir.Dispose();

    private const string ProfilesYaml = """
        attributes:
          - { source: profiles, updated_at: updated_at, columns: [loyalty_tier, subscription_status, country] }
          - { source: snapshot, columns: [plan, churned] }
        traits:
          - { name: orders_90d, source: events, function: count, filter: { type: order_completed }, window: { last_days: 90 } }
          - { name: lifetime_value, source: events, function: sum, column: revenue, filter: { type: order_completed } }
        """;

    private Workspace Load(string model)
    {
        var root = _dir.Combine("ws");
        void Write(string path, string text)
        {
            var full = Path.Combine(root, path);
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            File.WriteAllText(full, text);
        }
        Write("workspace.yaml", "name: checks\nversion: 1\n");
        Write("profiles.yaml", ProfilesYaml);
        Write("sources/events.yaml", PointInTimeTests.SourceYaml("events", "/nowhere/events", GeneratedDatasets.Events, "ts", "identifiers:\n  user_id: customer_id\n"));
        Write("sources/profiles.yaml", PointInTimeTests.SourceYaml("profiles", "/nowhere/profiles", GeneratedDatasets.Profiles, "updated_at", "identifiers:\n  customer_id: customer_id\n"));
        // An export of today's state with no update time: what a warehouse table snapshot looks like.
        Write("sources/snapshot.yaml", """
            name: snapshot
            location: /nowhere/snapshot
            columns:
              customer_id: string
              plan: string
              churned: boolean
            identifiers:
              customer_id: customer_id

            """);
        Write("models/churn.yaml", model);
        return WorkspaceLoader.Load(root);
    }

    private string Error(string model)
    {
        var e = Assert.Throws<WorkspaceException>(() => ModelChecks.Check(Load(model)));
        return Assert.Single(e.Errors).ToString();
    }

    [Fact]
    public void A_forecast_model_refuses_a_feature_whose_value_at_the_cutoff_is_unknown()
    {
        var error = Error("""
            name: churn
            label:
              horizon_days: 30
              condition: subscription_status = 'cancelled'
            features: [orders_90d, plan]

            """);
        Assert.StartsWith("models/churn.yaml:5:24: model 'churn': feature 'plan' comes from source 'snapshot', which has no updated_at", error, StringComparison.Ordinal);
        Assert.Contains("leak", error, StringComparison.Ordinal);
    }

    [Fact]
    public void The_same_undated_column_is_fine_for_a_snapshot_label_that_does_not_read_it()
    {
        ModelChecks.Check(Load("""
            name: churn
            label:
              condition: churned
            features: [orders_90d, plan, lifetime_value]

            """));
    }

    [Fact]
    public void A_snapshot_label_refuses_its_own_column_as_a_feature()
    {
        var error = Error("""
            name: churn
            label:
              condition: CHURNED AND plan IS NOT NULL
            features: [orders_90d, churned]

            """);
        Assert.Equal("models/churn.yaml:4:24: model 'churn': feature 'churned' is read by the label condition; a model cannot learn its label from the label itself", error);
    }

    [Fact]
    public void An_unknown_feature_is_named_with_the_nearest_column()
    {
        var error = Error("""
            name: churn
            label:
              horizon_days: 30
              condition: subscription_status = 'cancelled'
            features: [orders_90d, lifetime_valu]

            """);
        Assert.Equal("models/churn.yaml:5:24: model 'churn': feature 'lifetime_valu' is not a profile column (did you mean 'lifetime_value'?)", error);
    }

    [Fact]
    public void A_label_condition_is_type_checked_at_its_line_and_column()
    {
        var error = Error("""
            name: churn
            label:
              horizon_days: 30
              condition: orders_next > 'gold'
              traits:
                - { name: orders_next, source: events, function: count, filter: { type: order_completed } }
            features: [orders_90d]

            """);
        Assert.StartsWith("models/churn.yaml:4:28: model 'churn': label condition:", error, StringComparison.Ordinal);
    }

    [Fact]
    public void A_forecast_label_sees_only_attributes_and_its_own_traits()
    {
        var error = Error("""
            name: churn
            label:
              horizon_days: 30
              condition: orders_90d = 0
            features: [orders_90d]

            """);
        Assert.StartsWith("models/churn.yaml:4:14: model 'churn': label condition:", error, StringComparison.Ordinal);
        Assert.Contains("orders_90d", error, StringComparison.Ordinal);
    }

    [Fact]
    public void A_score_is_not_a_feature_and_outputs_do_not_collide_with_profile_columns()
    {
        var error = Error("""
            name: churn
            label:
              horizon_days: 30
              condition: subscription_status = 'cancelled'
            features: [churn_score]

            """);
        Assert.Equal("models/churn.yaml:5:12: model 'churn': feature 'churn_score' is a model's output; a model's features are attributes and traits", error);
        var collision = Error("""
            name: churn
            label:
              horizon_days: 30
              condition: subscription_status = 'cancelled'
            features: [orders_90d]
            outputs: { score: lifetime_value }

            """);
        Assert.Contains("its output column 'lifetime_value' is already a profile column", collision, StringComparison.Ordinal);
    }

    [Fact]
    public void An_external_model_takes_no_training_keys_and_reads_numbers_only()
    {
        var e = Assert.Throws<WorkspaceException>(() => Load("""
            name: churn
            model: { path: external/churn.onnx }
            trainer: { trees: 10 }
            features: [orders_90d]

            """));
        Assert.Equal("models/churn.yaml:3:1: an external model (model:) is trained elsewhere: remove 'trainer'", Assert.Single(e.Errors).ToString());
        var error = Error("""
            name: churn
            model: { path: external/churn.onnx, output: probabilities }
            features: [orders_90d, country]

            """);
        Assert.Equal("models/churn.yaml:3:24: model 'churn': feature 'country' is a string; an external model reads a vector of numbers, so its features must be numbers, booleans, dates or times", error);
    }

    [Fact]
    public void Model_file_errors_name_the_line()
    {
        var e = Assert.Throws<WorkspaceException>(() => Load("""
            name: churn
            label:
              horizon_days: 0
              condition: subscription_status = 'cancelled'
            features: [orders_90d]
            trainer: { algorithm: xgboost, leaves: 1, max_examples: 1e6 }

            """));
        var messages = e.Errors.Select(x => x.ToString()).ToList();
        Assert.Contains(messages, m => m.StartsWith("models/churn.yaml:3:17: 'horizon_days' must be a whole number of at least 1", StringComparison.Ordinal));
        Assert.Contains(messages, m => m.StartsWith("models/churn.yaml:6:23: unknown algorithm 'xgboost'", StringComparison.Ordinal));
        Assert.Contains(messages, m => m.StartsWith("models/churn.yaml:6:40: 'leaves' must be at least 2", StringComparison.Ordinal));
        Assert.Contains("models/churn.yaml:6:57: 'max_examples' must be a whole number of at least 1 (the most training examples, beyond which a sample is trained on), not '1e6'", messages);
    }
}
