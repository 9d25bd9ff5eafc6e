using Engine.Profiles;

namespace Engine.Scores;

/// <summary>
/// Labelled feature vectors, feature-major (slot <c>s</c> of example <c>i</c> at <c>s * Count + i</c>), with the
/// profile each came from: what a model is trained or validated on.
/// </summary>
public sealed class TrainingExamples
{
    public TrainingExamples(FeatureSchema schema, float[] features, bool[] labels, long[] profileIds, string description)
    {
        if (features.Length != schema.Count * labels.Length || profileIds.Length != labels.Length)
        {
            throw new ArgumentException($"{labels.Length} labels, {profileIds.Length} profile ids and {features.Length} feature values for {schema.Count} slots do not agree");
        }
        Schema = schema;
        Features = features;
        Labels = labels;
        ProfileIds = profileIds;
        Description = description;
    }

    public FeatureSchema Schema { get; }

    public float[] Features { get; }

    public bool[] Labels { get; }

    public long[] ProfileIds { get; }

    /// <summary>Where the examples come from, for reports: <c>cutoff 2026-07-04, horizon 60 days</c>.</summary>
    public string Description { get; }

    public int Count => Labels.Length;

    public long Positives
    {
        get
        {
            long positives = 0;
            foreach (var label in Labels)
            {
                positives += label ? 1 : 0;
            }
            return positives;
        }
    }

    /// <summary>The examples of <paramref name="table"/>'s <paramref name="rows"/> with their labels, vectors built as of <paramref name="asOf"/>.</summary>
    public static TrainingExamples From(FeatureSchema schema, ProfileTable table, int[] rows, bool[] labels, DateTimeOffset asOf, string description)
    {
        var features = new float[schema.Count * rows.Length];
        schema.Fill(table, rows, asOf, features);
        var ids = new long[rows.Length];
        var all = table.ProfileIds.Values;
        for (var i = 0; i < rows.Length; i++)
        {
            ids[i] = all[rows[i]];
        }
        return new TrainingExamples(schema, features, labels, ids, description);
    }

    /// <summary>The examples at <paramref name="indices"/>, in that order (a cross-validation fold).</summary>
    public TrainingExamples Subset(IReadOnlyList<int> indices, string description)
    {
        var n = indices.Count;
        var features = new float[Schema.Count * n];
        var labels = new bool[n];
        var ids = new long[n];
        for (var s = 0; s < Schema.Count; s++)
        {
            var from = Features.AsSpan(s * Count, Count);
            var to = features.AsSpan(s * n, n);
            for (var i = 0; i < n; i++)
            {
                to[i] = from[indices[i]];
            }
        }
        for (var i = 0; i < n; i++)
        {
            labels[i] = Labels[indices[i]];
            ids[i] = ProfileIds[indices[i]];
        }
        return new TrainingExamples(Schema, features, labels, ids, description);
    }
}
