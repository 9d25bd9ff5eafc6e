using Engine.Profiles;

namespace Engine.Scores;

/// <summary>
/// Labelled feature vectors (a <see cref="FeatureBatch"/> with labels) with the profile each came from: what a model
/// is trained or validated on. Owns its batch.
/// </summary>
public sealed class TrainingExamples : IDisposable
{
    public TrainingExamples(FeatureSchema schema, FeatureBatch batch, long[] profileIds, string description)
    {
        ArgumentNullException.ThrowIfNull(schema);
        ArgumentNullException.ThrowIfNull(batch);
        if (batch.FeatureCount != schema.Count || !batch.HasLabels || profileIds.Length != batch.RowCount)
        {
            throw new ArgumentException($"a batch of {batch.RowCount} rows x {batch.FeatureCount} features (labels: {batch.HasLabels}) and {profileIds.Length} profile ids for {schema.Count} slots do not agree");
        }
        Schema = schema;
        Batch = batch;
        ProfileIds = profileIds;
        Description = description;
    }

    public FeatureSchema Schema { get; }

    /// <summary>The vectors and their labels.</summary>
    public FeatureBatch Batch { get; }

    public ReadOnlySpan<bool> Labels => Batch.Labels;

    public long[] ProfileIds { get; }

    /// <summary>Where the examples come from, for reports: <c>cutoff 2026-07-04 (label … to …)</c>.</summary>
    public string Description { get; }

    public int Count => Batch.RowCount;

    public long Positives
    {
        get
        {
            long positives = 0;
            foreach (var label in Batch.Labels)
            {
                positives += label ? 1 : 0;
            }
            return positives;
        }
    }

    /// <summary>The examples of <paramref name="table"/>'s <paramref name="rows"/> with their labels, vectors built as of <paramref name="asOf"/>.</summary>
    public static TrainingExamples From(FeatureSchema schema, ProfileTable table, int[] rows, bool[] labels, DateTimeOffset asOf, string description)
    {
        ArgumentNullException.ThrowIfNull(schema);
        ArgumentNullException.ThrowIfNull(table);
        var batch = new FeatureBatch(schema.Count, Math.Max(1, rows.Length), withLabels: true);
        schema.Fill(table, rows, asOf, batch);
        labels.CopyTo(batch.Labels);
        var ids = new long[rows.Length];
        var all = table.ProfileIds.Values;
        for (var i = 0; i < rows.Length; i++)
        {
            ids[i] = all[rows[i]];
        }
        return new TrainingExamples(schema, batch, ids, description);
    }

    /// <summary>The examples of several parts (training windows), one after another, in a batch of their own.</summary>
    public static TrainingExamples Concatenate(IReadOnlyList<TrainingExamples> parts, string description)
    {
        ArgumentNullException.ThrowIfNull(parts);
        var schema = parts[0].Schema;
        var n = parts.Sum(p => p.Count);
        var batch = new FeatureBatch(schema.Count, Math.Max(1, n), withLabels: true) { RowCount = n };
        var ids = new long[n];
        var at = 0;
        foreach (var part in parts)
        {
            for (var s = 0; s < schema.Count; s++)
            {
                part.Batch.Feature(s).CopyTo(batch.Feature(s)[at..]);
            }
            part.Labels.CopyTo(batch.Labels[at..]);
            part.ProfileIds.CopyTo(ids, at);
            at += part.Count;
        }
        return new TrainingExamples(schema, batch, ids, description);
    }

    /// <summary>The examples at <paramref name="indices"/>, in that order (a cross-validation fold).</summary>
    public TrainingExamples Subset(IReadOnlyList<int> indices, string description)
    {
        var n = indices.Count;
        var batch = new FeatureBatch(Schema.Count, Math.Max(1, n), withLabels: true) { RowCount = n };
        for (var s = 0; s < Schema.Count; s++)
        {
            var from = Batch.Feature(s);
            var to = batch.Feature(s);
            for (var i = 0; i < n; i++)
            {
                to[i] = from[indices[i]];
            }
        }
        var labels = batch.Labels;
        var ids = new long[n];
        for (var i = 0; i < n; i++)
        {
            labels[i] = Batch.Labels[indices[i]];
            ids[i] = ProfileIds[indices[i]];
        }
        return new TrainingExamples(Schema, batch, ids, description);
    }

    /// <summary>The examples as an ML.NET data view: <c>Features</c> (with the slots' names) and <c>Label</c>.</summary>
    public FeatureDataView ToDataView() => new(Batch, Schema.SlotNames);

    public void Dispose() => Batch.Dispose();
}
