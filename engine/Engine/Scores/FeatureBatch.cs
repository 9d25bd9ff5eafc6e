using System.Buffers;
using System.Diagnostics.CodeAnalysis;

namespace Engine.Scores;

/// <summary>
/// A block of up to <see cref="Capacity"/> rows of a model's feature vector, feature-major: feature <c>f</c>'s values
/// for every row are contiguous (<see cref="Feature"/>), so the compiled evaluator loads eight rows of one feature with
/// one vector load. <see cref="float.NaN"/> means missing. An optional <c>Label</c> (boolean) and <c>Weight</c> per
/// row make it training data. Buffers come from <see cref="ArrayPool{T}"/> and the batch is meant to be refilled:
/// set <see cref="RowCount"/>, write the columns, score, repeat; <see cref="Dispose"/> returns the buffers.
/// </summary>
public sealed class FeatureBatch : IDisposable
{
    /// <summary>Each column is padded to a multiple of this many rows, so a vector load of the last rows stays inside it.</summary>
    internal const int RowAlignment = 16;

    private float[]? _values;
    private bool[]? _labels;
    private float[]? _weights;
    private int _rowCount;

    /// <param name="featureCount">The length of the feature vector (the model's <c>Features</c> column).</param>
    /// <param name="capacity">The most rows the batch holds.</param>
    /// <param name="withLabels">Whether the batch carries a boolean label per row (training data).</param>
    /// <param name="withWeights">Whether the batch carries an example weight per row.</param>
    public FeatureBatch(int featureCount, int capacity, bool withLabels = false, bool withWeights = false)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(featureCount);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        FeatureCount = featureCount;
        Capacity = capacity;
        Stride = checked((capacity + RowAlignment - 1) / RowAlignment * RowAlignment);
        _values = ArrayPool<float>.Shared.Rent(checked(Stride * featureCount));
        _labels = withLabels ? ArrayPool<bool>.Shared.Rent(capacity) : null;
        _weights = withWeights ? ArrayPool<float>.Shared.Rent(capacity) : null;
    }

    /// <summary>The length of each row's feature vector.</summary>
    public int FeatureCount { get; }

    /// <summary>The most rows the batch holds.</summary>
    public int Capacity { get; }

    /// <summary>Distance, in values, from one feature's column to the next (<see cref="Capacity"/> rounded up).</summary>
    internal int Stride { get; }

    /// <summary>Whether each row has a label (<see cref="Labels"/>).</summary>
    public bool HasLabels => _labels is not null;

    /// <summary>Whether each row has an example weight (<see cref="Weights"/>).</summary>
    public bool HasWeights => _weights is not null;

    /// <summary>The rows in use, 0 to <see cref="Capacity"/>. Setting it keeps whatever the columns held (set, then fill).</summary>
    public int RowCount
    {
        get => _rowCount;
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(value, Capacity);
            _rowCount = value;
        }
    }

    /// <summary>Feature <paramref name="feature"/>'s values for the rows in use; NaN is missing.</summary>
    public Span<float> Feature(int feature)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(feature);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(feature, FeatureCount);
        return Values.AsSpan(feature * Stride, _rowCount);
    }

    /// <summary>The label of each row in use.</summary>
    public Span<bool> Labels => (_labels ?? ThrowNo<bool>("labels")).AsSpan(0, _rowCount);

    /// <summary>The example weight of each row in use.</summary>
    public Span<float> Weights => (_weights ?? ThrowNo<float>("weights")).AsSpan(0, _rowCount);

    /// <summary>One value: feature <paramref name="feature"/> of row <paramref name="row"/>.</summary>
    public float this[int row, int feature]
    {
        get => Feature(feature)[row];
        set => Feature(feature)[row] = value;
    }

    /// <summary>Copies row <paramref name="row"/>'s feature vector into <paramref name="destination"/>.</summary>
    public void GetRow(int row, Span<float> destination)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)row, (uint)_rowCount, nameof(row));
        ArgumentOutOfRangeException.ThrowIfLessThan(destination.Length, FeatureCount, nameof(destination));
        var values = Values;
        for (var f = 0; f < FeatureCount; f++)
        {
            destination[f] = values[f * Stride + row];
        }
    }

    /// <summary>Writes row <paramref name="row"/>'s feature vector (one value per feature).</summary>
    public void SetRow(int row, ReadOnlySpan<float> source)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)row, (uint)_rowCount, nameof(row));
        ArgumentOutOfRangeException.ThrowIfNotEqual(source.Length, FeatureCount, nameof(source));
        var values = Values;
        for (var f = 0; f < FeatureCount; f++)
        {
            values[f * Stride + row] = source[f];
        }
    }

    /// <summary>The whole buffer, padding included: column <c>f</c> starts at <c>f * Stride</c>.</summary>
    internal float[] Values => _values ?? throw new ObjectDisposedException(nameof(FeatureBatch));

    /// <summary>Returns the buffers to the pool; the batch cannot be used afterwards.</summary>
    public void Dispose()
    {
        if (_values is { } values)
        {
            _values = null;
            ArrayPool<float>.Shared.Return(values);
        }
        if (_labels is { } labels)
        {
            _labels = null;
            ArrayPool<bool>.Shared.Return(labels);
        }
        if (_weights is { } weights)
        {
            _weights = null;
            ArrayPool<float>.Shared.Return(weights);
        }
        _rowCount = 0;
    }

    [DoesNotReturn]
    private T[] ThrowNo<T>(string what) => _values is null
        ? throw new ObjectDisposedException(nameof(FeatureBatch))
        : throw new InvalidOperationException($"This feature batch was made without {what}.");
}
