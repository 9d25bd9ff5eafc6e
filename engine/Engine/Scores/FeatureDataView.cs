using Microsoft.ML;
using Microsoft.ML.Data;

namespace Engine.Scores;

/// <summary>
/// An ML.NET <see cref="IDataView"/> over one or more <see cref="FeatureBatch"/>es: a <c>Features</c> column (a vector
/// of <see cref="float"/> of the batches' fixed size, with slot names when given), and <c>Label</c>
/// (<see cref="bool"/>) and <c>Weight</c> (<see cref="float"/>) when the batches carry them. This is how training data
/// reaches ML.NET (<c>Trainers.LightGbm(...).Fit(view)</c>) and how ML.NET's own <see cref="ITransformer.Transform"/>
/// scores (the reference the compiled evaluator is tested against, and the path for models it does not compile).
/// The view reads the batches in place, as they are when a cursor opens; a cursor copies one row's features into the
/// caller's <see cref="VBuffer{T}"/>, reusing its array, and allocates nothing per row.
/// </summary>
public sealed class FeatureDataView : IDataView
{
    /// <summary>The feature vector column's name (ML.NET trainers' default).</summary>
    public const string FeaturesColumn = "Features";

    /// <summary>The label column's name (ML.NET trainers' default).</summary>
    public const string LabelColumn = "Label";

    /// <summary>The example weight column's name.</summary>
    public const string WeightColumn = "Weight";

    private readonly FeatureBatch[] _batches;
    private readonly int _featureCount;

    /// <summary>A view of one batch.</summary>
    public FeatureDataView(FeatureBatch batch, IReadOnlyList<string>? featureNames = null)
        : this([batch], featureNames)
    {
    }

    /// <summary>A view of several batches, one after another; they must agree on features, labels and weights.</summary>
    public FeatureDataView(IReadOnlyList<FeatureBatch> batches, IReadOnlyList<string>? featureNames = null)
    {
        ArgumentNullException.ThrowIfNull(batches);
        if (batches.Count == 0)
        {
            throw new ArgumentException("A feature data view needs at least one batch.", nameof(batches));
        }
        _batches = [.. batches];
        var first = _batches[0];
        foreach (var batch in _batches)
        {
            if (batch.FeatureCount != first.FeatureCount || batch.HasLabels != first.HasLabels || batch.HasWeights != first.HasWeights)
            {
                throw new ArgumentException(
                    $"Every batch of a view must have the same shape: {first.FeatureCount} features, labels {first.HasLabels}, weights {first.HasWeights}; " +
                    $"one has {batch.FeatureCount} features, labels {batch.HasLabels}, weights {batch.HasWeights}.", nameof(batches));
            }
        }
        _featureCount = first.FeatureCount;
        if (featureNames is not null && featureNames.Count != _featureCount)
        {
            throw new ArgumentException($"{featureNames.Count} feature names for {_featureCount} features.", nameof(featureNames));
        }

        var builder = new DataViewSchema.Builder();
        DataViewSchema.Annotations? annotations = null;
        if (featureNames is not null)
        {
            var names = featureNames.ToArray();
            var annotationBuilder = new DataViewSchema.Annotations.Builder();
            // ML.NET's "SlotNames" annotation (its AddSlotNames helper is internal).
            annotationBuilder.Add("SlotNames", new VectorDataViewType(TextDataViewType.Instance, _featureCount), (ref VBuffer<ReadOnlyMemory<char>> value) =>
            {
                var editor = VBufferEditor.Create(ref value, names.Length);
                for (var i = 0; i < names.Length; i++)
                {
                    editor.Values[i] = names[i].AsMemory();
                }
                value = editor.Commit();
            });
            annotations = annotationBuilder.ToAnnotations();
        }
        builder.AddColumn(FeaturesColumn, new VectorDataViewType(NumberDataViewType.Single, _featureCount), annotations);
        if (first.HasLabels)
        {
            builder.AddColumn(LabelColumn, BooleanDataViewType.Instance);
        }
        if (first.HasWeights)
        {
            builder.AddColumn(WeightColumn, NumberDataViewType.Single);
        }
        Schema = builder.ToSchema();
    }

    /// <inheritdoc />
    public DataViewSchema Schema { get; }

    /// <summary>False: rows come in batch order.</summary>
    public bool CanShuffle => false;

    /// <summary>The rows of every batch, as the batches are now.</summary>
    public long? GetRowCount()
    {
        long rows = 0;
        foreach (var batch in _batches)
        {
            rows += batch.RowCount;
        }
        return rows;
    }

    /// <inheritdoc />
    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        ArgumentNullException.ThrowIfNull(columnsNeeded);
        var active = new bool[Schema.Count];
        foreach (var column in columnsNeeded)
        {
            if (column.Index < 0 || column.Index >= Schema.Count || Schema[column.Index].Name != column.Name)
            {
                throw new ArgumentException($"Column '{column.Name}' is not a column of this view.", nameof(columnsNeeded));
            }
            active[column.Index] = true;
        }
        return new Cursor(this, active);
    }

    /// <summary>One cursor: the rows are in memory already and ML.NET reads them faster in order than split.</summary>
    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
        [GetRowCursor(columnsNeeded, rand)];

    private sealed class Cursor : DataViewRowCursor
    {
        private readonly FeatureDataView _view;
        private readonly bool[] _active;
        private readonly int[] _rowCounts;
        private long _position = -1;
        private int _batch;
        private int _row = -1;
        private bool _done;

        public Cursor(FeatureDataView view, bool[] active)
        {
            _view = view;
            _active = active;
            // Row counts as the cursor opens: a batch refilled meanwhile must not change how far this cursor goes.
            _rowCounts = new int[view._batches.Length];
            for (var i = 0; i < _rowCounts.Length; i++)
            {
                _rowCounts[i] = view._batches[i].RowCount;
            }
        }

        public override DataViewSchema Schema => _view.Schema;

        public override long Position => _position;

        public override long Batch => 0;

        public override bool MoveNext()
        {
            if (_done)
            {
                return false;
            }
            _row++;
            while (_batch < _rowCounts.Length && _row >= _rowCounts[_batch])
            {
                _batch++;
                _row = 0;
            }
            if (_batch >= _rowCounts.Length)
            {
                _done = true;
                _position = -1;
                _row = -1;
                return false;
            }
            _position++;
            return true;
        }

        public override bool IsColumnActive(DataViewSchema.Column column) =>
            column.Index >= 0 && column.Index < _active.Length && _active[column.Index];

        public override ValueGetter<DataViewRowId> GetIdGetter() => (ref DataViewRowId value) =>
        {
            CheckOnRow();
            value = new DataViewRowId((ulong)_position, 0);
        };

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (!IsColumnActive(column))
            {
                throw new InvalidOperationException($"Column '{column.Name}' was not asked for when the cursor was opened.");
            }
            Delegate getter = column.Name switch
            {
                FeaturesColumn => (ValueGetter<VBuffer<float>>)GetFeatures,
                LabelColumn => (ValueGetter<bool>)GetLabel,
                WeightColumn => (ValueGetter<float>)GetWeight,
                _ => throw new InvalidOperationException($"Column '{column.Name}' is not a column of this view."),
            };
            return getter as ValueGetter<TValue>
                ?? throw new InvalidOperationException($"Column '{column.Name}' is {column.Type}, not {typeof(TValue).Name}.");
        }

        private void GetFeatures(ref VBuffer<float> value)
        {
            CheckOnRow();
            var batch = _view._batches[_batch];
            var count = _view._featureCount;
            // Dense, in the caller's buffer when it is large enough (the usual case after the first row).
            var editor = VBufferEditor.Create(ref value, count);
            var values = batch.Values;
            var stride = batch.Stride;
            var destination = editor.Values;
            for (int f = 0, at = _row; f < count; f++, at += stride)
            {
                destination[f] = values[at];
            }
            value = editor.Commit();
        }

        private void GetLabel(ref bool value)
        {
            CheckOnRow();
            value = _view._batches[_batch].Labels[_row];
        }

        private void GetWeight(ref float value)
        {
            CheckOnRow();
            value = _view._batches[_batch].Weights[_row];
        }

        private void CheckOnRow()
        {
            if (_position < 0)
            {
                throw new InvalidOperationException("The cursor is not on a row: call MoveNext first, and only while it returns true.");
            }
        }
    }
}
