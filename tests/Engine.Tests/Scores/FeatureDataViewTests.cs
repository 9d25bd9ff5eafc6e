using Engine.Scores;
using Engine.TestKit;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Trainers.LightGbm;

namespace Engine.Tests.Scores;

/// <summary><see cref="FeatureBatch"/> and the ML.NET view over it: what a cursor reads is what was put in, and ML.NET trains on it.</summary>
public sealed class FeatureDataViewTests
{
    [Fact]
    public void A_cursor_reads_back_every_value_label_and_weight_across_batches()
    {
        var data = new ScoringData(12, seed: 9);
        using var first = new FeatureBatch(12, 100, withLabels: true, withWeights: true);
        using var second = new FeatureBatch(12, 50, withLabels: true, withWeights: true);
        data.Fill(first, 0, 100);
        data.Fill(second, 100, 37);
        var view = new FeatureDataView([first, second], data.FeatureNames());

        Assert.Equal(137, view.GetRowCount());
        Assert.False(view.CanShuffle);
        Assert.Equal(["Features", "Label", "Weight"], view.Schema.Select(c => c.Name));
        var features = view.Schema["Features"];
        Assert.Equal(new VectorDataViewType(NumberDataViewType.Single, 12), features.Type);

        using var cursor = view.GetRowCursor(view.Schema);
        var getFeatures = cursor.GetGetter<VBuffer<float>>(features);
        var getLabel = cursor.GetGetter<bool>(view.Schema["Label"]);
        var getWeight = cursor.GetGetter<float>(view.Schema["Weight"]);
        var getId = cursor.GetIdGetter();
        var expected = new float[12];
        VBuffer<float> vector = default;
        float[]? buffer = null;
        var row = 0L;
        Assert.Equal(-1, cursor.Position);
        while (cursor.MoveNext())
        {
            Assert.Equal(row, cursor.Position);
            var expectedLabel = data.MakeRow(row, expected);
            getFeatures(ref vector);
            Assert.True(vector.IsDense);
            Assert.Equal(12, vector.Length);
            // Bitwise, so NaN equals NaN.
            Assert.Equal(expected.Select(BitConverter.SingleToInt32Bits), vector.DenseValues().Select(BitConverter.SingleToInt32Bits));
            bool label = default;
            getLabel(ref label);
            Assert.Equal(expectedLabel, label);
            float weight = default;
            getWeight(ref weight);
            Assert.Equal(0.5f + row % 3, weight);
            DataViewRowId id = default;
            getId(ref id);
            Assert.Equal((ulong)row, id.Low);
            // The getter writes into the caller's array once it has one: no allocation per row.
            var array = ValuesArray(vector);
            Assert.Same(buffer ?? array, array);
            buffer = array;
            row++;
        }
        Assert.Equal(137, row);
        Assert.False(cursor.MoveNext());
    }

    private static float[] ValuesArray(VBuffer<float> vector) =>
        (float[])typeof(VBuffer<float>).GetField("_values", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!.GetValue(vector)!;

    [Fact]
    public void Slot_names_are_the_feature_names()
    {
        using var batch = new FeatureBatch(3, 4) { RowCount = 4 };
        var view = new FeatureDataView(batch, ["tenure_days", "orders_90d", "is_subscribed"]);
        VBuffer<ReadOnlyMemory<char>> names = default;
        view.Schema["Features"].GetSlotNames(ref names);
        Assert.Equal(["tenure_days", "orders_90d", "is_subscribed"], names.DenseValues().Select(n => n.ToString()));
    }

    [Fact]
    public void A_batch_without_labels_has_only_the_features_column_and_refuses_wrong_use()
    {
        using var batch = new FeatureBatch(4, 8);
        new ScoringData(4, 1).Fill(batch, 0, 8);
        var view = new FeatureDataView(batch);
        Assert.Equal(["Features"], view.Schema.Select(c => c.Name));
        Assert.Throws<InvalidOperationException>(() => batch.Labels.Length);

        using var cursor = view.GetRowCursor([]);
        var features = view.Schema["Features"];
        Assert.False(cursor.IsColumnActive(features));
        Assert.Throws<InvalidOperationException>(() => cursor.GetGetter<VBuffer<float>>(features));

        using var active = view.GetRowCursor([features]);
        Assert.Throws<InvalidOperationException>(() => active.GetGetter<float>(features));
        var getter = active.GetGetter<VBuffer<float>>(features);
        VBuffer<float> value = default;
        Assert.Throws<InvalidOperationException>(() => getter(ref value));
    }

    [Fact]
    public void Batches_of_different_shapes_cannot_share_a_view()
    {
        using var a = new FeatureBatch(4, 8, withLabels: true);
        using var b = new FeatureBatch(4, 8);
        Assert.Throws<ArgumentException>(() => new FeatureDataView([a, b]));
        Assert.Throws<ArgumentException>(() => new FeatureDataView(a, ["only one name"]));
    }

    [Fact]
    public void A_batch_rejects_rows_beyond_its_capacity_and_is_unusable_after_dispose()
    {
        var batch = new FeatureBatch(2, 5);
        Assert.Throws<ArgumentOutOfRangeException>(() => batch.RowCount = 6);
        batch.RowCount = 5;
        batch.SetRow(4, [1f, float.NaN]);
        Span<float> row = stackalloc float[2];
        batch.GetRow(4, row);
        Assert.Equal(1f, row[0]);
        Assert.True(float.IsNaN(row[1]));
        Assert.Equal(1f, batch.Feature(0)[4]);
        batch.Dispose();
        Assert.Throws<ObjectDisposedException>(() => batch.Feature(0).Length);
    }

    [Fact]
    public void LightGbm_trains_over_the_view_and_learns_the_signal()
    {
        var ml = new MLContext(seed: 1);
        var data = new ScoringData(14, seed: 4);
        using var training = new FeatureBatch(14, 6000, withLabels: true, withWeights: true);
        data.Fill(training, 0, 6000);
        var model = ml.BinaryClassification.Trainers.LightGbm(new LightGbmBinaryTrainer.Options
        {
            NumberOfIterations = 30,
            NumberOfLeaves = 15,
            NumberOfThreads = 1,
            ExampleWeightColumnName = FeatureDataView.WeightColumn,
        }).Fit(new FeatureDataView(training, data.FeatureNames()));

        using var test = new FeatureBatch(14, 3000, withLabels: true);
        data.Fill(test, 500_000, 3000);
        var metrics = ml.BinaryClassification.Evaluate(model.Transform(new FeatureDataView(test)));
        Assert.True(metrics.AreaUnderRocCurve > 0.7, $"AUC {metrics.AreaUnderRocCurve:F3}");
    }
}
