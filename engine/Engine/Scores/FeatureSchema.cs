using System.Text;
using System.Text.Json.Serialization;
using Apache.Arrow;
using Engine.Profiles;
using Engine.Storage;

namespace Engine.Scores;

/// <summary>How a profile column becomes feature slots.</summary>
public enum FeatureKind
{
    /// <summary>An integer, a double or a boolean (1 / 0): one slot, the value; NULL is missing (NaN).</summary>
    Number,

    /// <summary>A date or a timestamp: one slot, the days before as-of, so that the same feature means the same at every cutoff.</summary>
    DaysBefore,

    /// <summary>A string: one slot per category seen in training, 1 where the value is that category (one-hot).</summary>
    Category,
}

/// <summary>One slot of the feature vector: a column, and for a category the value it stands for.</summary>
public sealed record FeatureSlot(
    [property: JsonPropertyName("column")] string Column,
    [property: JsonPropertyName("kind")] FeatureKind Kind,
    [property: JsonPropertyName("category")] string? Category = null)
{
    /// <summary>The slot's name in metrics and feature importance: the column, or <c>column=value</c>.</summary>
    [JsonIgnore]
    public string Name => Category is null ? Column : $"{Column}={Category}";
}

/// <summary>A feature column and the profile-table type it was trained with.</summary>
public sealed record FeatureColumn(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("type")] ColumnType Type);

/// <summary>
/// The feature vector a model reads, and how to build it from a profile table: numbers as they are, dates and times
/// as days before as-of, strings one-hot over the categories seen in training (a value not seen then sets no slot).
/// It is learnt once from the training rows and stored with the model, so that scoring builds exactly the vector the
/// model was trained on, into a <see cref="FeatureBatch"/>.
/// </summary>
public sealed class FeatureSchema
{
    /// <summary>A string column with more distinct values than this in training is an identifier, not a category.</summary>
    public const int MaxCategories = 100;

    private const double MicrosPerDay = 86_400_000_000.0;

    [JsonConstructor]
    public FeatureSchema(IReadOnlyList<FeatureColumn> columns, IReadOnlyList<FeatureSlot> slots)
    {
        Columns = columns;
        Slots = slots;
    }

    /// <summary>The profile columns read, in the model file's order.</summary>
    [JsonPropertyName("columns")] public IReadOnlyList<FeatureColumn> Columns { get; }

    /// <summary>The vector's slots, column by column.</summary>
    [JsonPropertyName("slots")] public IReadOnlyList<FeatureSlot> Slots { get; }

    [JsonIgnore] public int Count => Slots.Count;

    /// <summary>
    /// Learns the schema of <paramref name="features"/> from the <paramref name="rows"/> of <paramref name="table"/>
    /// (the training examples). Throws <see cref="ModelException"/> naming the model and the column for a column the
    /// table lacks and for a string column with more than <see cref="MaxCategories"/> values.
    /// </summary>
    public static FeatureSchema Learn(string model, IReadOnlyList<string> features, ProfileTable table, ReadOnlySpan<int> rows)
    {
        var columns = new List<FeatureColumn>(features.Count);
        var slots = new List<FeatureSlot>();
        foreach (var name in features)
        {
            var column = table.Find(name) ?? throw new ModelException(model, $"feature '{name}' is not a profile column");
            columns.Add(new FeatureColumn(name, column.Type));
            switch (column.Type)
            {
                case ColumnType.Int64 or ColumnType.Double or ColumnType.Boolean:
                    slots.Add(new FeatureSlot(name, FeatureKind.Number));
                    break;
                case ColumnType.Date or ColumnType.Timestamp:
                    slots.Add(new FeatureSlot(name, FeatureKind.DaysBefore));
                    break;
                default:
                    foreach (var category in Categories(model, name, (DictionaryArray)column.Values, rows))
                    {
                        slots.Add(new FeatureSlot(name, FeatureKind.Category, category));
                    }
                    break;
            }
        }
        return new FeatureSchema(columns, slots);
    }

    /// <summary>The values of a string column among the rows, most frequent first (ties by value), at most <see cref="MaxCategories"/>.</summary>
    private static List<string> Categories(string model, string name, DictionaryArray values, ReadOnlySpan<int> rows)
    {
        var indices = (Int32Array)values.Indices;
        var dictionary = (StringArray)values.Dictionary;
        var counts = new long[dictionary.Length];
        foreach (var row in rows)
        {
            if (indices.IsValid(row))
            {
                counts[indices.Values[row]]++;
            }
        }
        var seen = new List<(string Value, long Count)>();
        for (var i = 0; i < counts.Length; i++)
        {
            if (counts[i] > 0)
            {
                seen.Add((dictionary.GetString(i), counts[i]));
            }
        }
        if (seen.Count > MaxCategories)
        {
            throw new ModelException(model, $"feature '{name}' is a string with {seen.Count:N0} distinct values in training; a string feature must be a category "
                + $"(at most {MaxCategories} values). Use a number instead, such as a trait that counts or measures it");
        }
        seen.Sort((a, b) => a.Count != b.Count ? b.Count.CompareTo(a.Count) : string.CompareOrdinal(a.Value, b.Value));
        return seen.ConvertAll(s => s.Value);
    }

    /// <summary>
    /// Checks that <paramref name="table"/> has every feature column with the type the model was trained on; throws
    /// <see cref="ModelException"/> naming the first that is missing or changed.
    /// </summary>
    public void Check(string model, ProfileTable table)
    {
        foreach (var column in Columns)
        {
            var found = table.Find(column.Name) ?? throw new ModelException(model, $"feature '{column.Name}' is not a column of tonight's profile table");
            if (found.Type != column.Type)
            {
                throw new ModelException(model, $"feature '{column.Name}' was {DataSchema.Describe(column.Type)} in training but is {DataSchema.Describe(found.Type)} now");
            }
        }
    }

    /// <summary>
    /// Writes the vectors of the given rows of <paramref name="table"/> into <paramref name="batch"/> (its row count
    /// becomes <c>rows.Length</c>). Non-finite doubles are written as they are; see <see cref="CountNonFinite"/>.
    /// </summary>
    public void Fill(ProfileTable table, ReadOnlySpan<int> rows, DateTimeOffset asOf, FeatureBatch batch)
    {
        ArgumentNullException.ThrowIfNull(table);
        ArgumentNullException.ThrowIfNull(batch);
        if (batch.FeatureCount != Count)
        {
            throw new ArgumentException($"the batch has {batch.FeatureCount} features, not {Count}", nameof(batch));
        }
        var n = rows.Length;
        batch.RowCount = n;
        var asOfMicros = (asOf.ToUniversalTime() - DateTimeOffset.UnixEpoch).Ticks / 10;
        var asOfDays = (int)Math.Floor(asOfMicros / MicrosPerDay);
        var slot = 0;
        foreach (var column in Columns)
        {
            var values = table.Find(column.Name)!.Values;
            if (values is DictionaryArray strings)
            {
                slot += FillCategories(column.Name, slot, strings, rows, batch);
                continue;
            }
            var target = batch.Feature(slot++);
            switch (values)
            {
                case Int64Array longs:
                    for (var i = 0; i < n; i++)
                    {
                        var r = rows[i];
                        target[i] = longs.IsValid(r) ? longs.Values[r] : float.NaN;
                    }
                    break;
                case DoubleArray doubles:
                    for (var i = 0; i < n; i++)
                    {
                        var r = rows[i];
                        target[i] = doubles.IsValid(r) ? (float)doubles.Values[r] : float.NaN;
                    }
                    break;
                case BooleanArray booleans:
                    for (var i = 0; i < n; i++)
                    {
                        target[i] = booleans.GetValue(rows[i]) is { } b ? (b ? 1f : 0f) : float.NaN;
                    }
                    break;
                case TimestampArray timestamps:
                    var micros = timestamps.Values;
                    for (var i = 0; i < n; i++)
                    {
                        var r = rows[i];
                        target[i] = timestamps.IsValid(r) ? (float)((asOfMicros - micros[r]) / MicrosPerDay) : float.NaN;
                    }
                    break;
                case Date32Array dates:
                    for (var i = 0; i < n; i++)
                    {
                        var r = rows[i];
                        target[i] = dates.IsValid(r) ? asOfDays - dates.Values[r] : float.NaN;
                    }
                    break;
                default:
                    throw new InvalidOperationException($"feature '{column.Name}' has an unsupported array type {values.GetType().Name}");
            }
        }
    }

    /// <summary>One-hot: each dictionary entry is mapped to its slot once, then every row sets at most one slot.</summary>
    private int FillCategories(string column, int first, DictionaryArray values, ReadOnlySpan<int> rows, FeatureBatch batch)
    {
        var width = 0;
        while (first + width < Slots.Count && Slots[first + width].Column == column)
        {
            batch.Feature(first + width).Clear();
            width++;
        }
        var dictionary = (StringArray)values.Dictionary;
        var slotOf = new int[dictionary.Length];
        for (var d = 0; d < dictionary.Length; d++)
        {
            slotOf[d] = -1;
            var text = dictionary.GetString(d);
            for (var k = 0; k < width; k++)
            {
                if (string.Equals(Slots[first + k].Category, text, StringComparison.Ordinal))
                {
                    slotOf[d] = k;
                    break;
                }
            }
        }
        // One write per row straight into the batch's buffer: slot first + k of row i is at (first + k) * Stride + i.
        var indices = (Int32Array)values.Indices;
        var buffer = batch.Values;
        var stride = batch.Stride;
        for (var i = 0; i < rows.Length; i++)
        {
            var r = rows[i];
            if (indices.IsValid(r) && slotOf[indices.Values[r]] is var k and >= 0)
            {
                buffer[(first + k) * stride + i] = 1f;
            }
        }
        return width;
    }

    /// <summary>The slots' names (<c>column</c> or <c>column=value</c>), as ML.NET's slot names.</summary>
    [JsonIgnore] public IReadOnlyList<string> SlotNames => Slots.Select(s => s.Name).ToList();

    /// <summary>
    /// The number of infinite or NaN values in the double feature columns among <paramref name="rows"/>, per column
    /// (only columns with any), with the first profile id holding one: training refuses them (a sum that overflowed,
    /// a ratio divided by zero), where NULL is the way to say "missing".
    /// </summary>
    public IReadOnlyList<(string Column, long Count, long FirstProfileId)> CountNonFinite(ProfileTable table, ReadOnlySpan<int> rows)
    {
        var result = new List<(string, long, long)>();
        foreach (var column in Columns)
        {
            if (table.Find(column.Name)?.Values is not DoubleArray doubles)
            {
                continue;
            }
            long count = 0;
            long first = 0;
            foreach (var r in rows)
            {
                if (doubles.IsValid(r) && !double.IsFinite(doubles.Values[r]))
                {
                    if (count++ == 0)
                    {
                        first = table.ProfileIds.Values[r];
                    }
                }
            }
            if (count > 0)
            {
                result.Add((column.Name, count, first));
            }
        }
        return result;
    }

    /// <summary>A one-line description: <c>12 columns, 31 slots (loyalty_tier: 4 categories, ...)</c>.</summary>
    public override string ToString()
    {
        var text = new StringBuilder($"{Columns.Count} columns, {Count} slots");
        var categories = Slots.Where(s => s.Kind == FeatureKind.Category).GroupBy(s => s.Column).Select(g => $"{g.Key}: {g.Count()} categories").ToList();
        if (categories.Count > 0)
        {
            text.Append(" (").Append(string.Join(", ", categories)).Append(')');
        }
        return text.ToString();
    }
}
