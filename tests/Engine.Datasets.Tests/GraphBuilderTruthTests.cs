using System.Globalization;
using Apache.Arrow;
using Engine.Identity;

namespace Engine.Datasets.Tests;

/// <summary>The identity graph builder and stitcher on the generated data, scored against the truth dataset.</summary>
public sealed class GraphBuilderTruthTests(GeneratedData data)
{
    private static StringArray Column(List<object?[]> rows, int index)
    {
        var builder = new StringArray.Builder();
        foreach (var row in rows)
        {
            if (row[index] is null)
            {
                builder.AppendNull();
            }
            else
            {
                builder.Append(Convert.ToString(row[index], CultureInfo.InvariantCulture));
            }
        }
        return builder.Build();
    }

    private static RecordBatch Batch(List<object?[]> rows, params string[] names)
    {
        var fields = names.Select(n => new Field(n, Apache.Arrow.Types.StringType.Default, true)).ToList();
        return new RecordBatch(new Schema(fields, null), names.Select((_, i) => (IArrowArray)Column(rows, i)), rows.Count);
    }

    private static long Pairs(long n) => n * (n - 1) / 2;

    [Fact]
    public void Default_rules_stitch_the_generated_people_with_high_precision()
    {
        var rules = IdentityRules.Default;
        var builder = new IdentityGraphBuilder(rules);
        using (var events = Batch(data.Rows("SELECT user_id, email, anonymous_id FROM events"), "user_id", "email", "anonymous_id"))
        {
            builder.AddBatch(events, [(0, rules.Find("customer_id")!), (1, rules.Find("email")!), (2, rules.Find("anonymous_id")!)]);
        }
        using (var profiles = Batch(data.Rows("SELECT customer_id, email, phone FROM profiles"), "customer_id", "email", "phone"))
        {
            builder.AddBatch(profiles, [(0, rules.Find("customer_id")!), (1, rules.Find("email")!), (2, rules.Find("phone")!)]);
        }
        var result = builder.Stitch();

        var perPair = new Dictionary<(long Person, int Cluster), long>();
        var perCluster = new Dictionary<int, long>();
        var perPerson = new Dictionary<long, long>();
        var perLinkable = new Dictionary<long, long>();
        var perLinkablePair = new Dictionary<(long Linkable, int Cluster), long>();
        var found = 0;
        var truth = data.Rows("SELECT identifier_type, identifier_value, person_id, linkable_id FROM truth WHERE person_id IS NOT NULL");
        foreach (var row in truth)
        {
            var type = builder.TypeId((string)row[0]!);
            var key = IdentifierKey.Compute(type, ((string)row[1]!).AsSpan());
            if (!builder.Table.TryGet(key, out var id))
            {
                continue;
            }
            found++;
            var person = Convert.ToInt64(row[2], CultureInfo.InvariantCulture);
            var cluster = result.ClusterOf[id];
            perPair[(person, cluster)] = perPair.GetValueOrDefault((person, cluster)) + 1;
            perCluster[cluster] = perCluster.GetValueOrDefault(cluster) + 1;
            perPerson[person] = perPerson.GetValueOrDefault(person) + 1;
            if (row[3] is not null)
            {
                var linkable = Convert.ToInt64(row[3], CultureInfo.InvariantCulture);
                perLinkable[linkable] = perLinkable.GetValueOrDefault(linkable) + 1;
                perLinkablePair[(linkable, cluster)] = perLinkablePair.GetValueOrDefault((linkable, cluster)) + 1;
            }
        }
        var truePositives = perPair.Values.Sum(Pairs);
        var predicted = perCluster.Values.Sum(Pairs);
        var actual = perPerson.Values.Sum(Pairs);
        var precision = predicted == 0 ? 1.0 : (double)truePositives / predicted;
        var recall = actual == 0 ? 1.0 : (double)truePositives / actual;
        // Recall against what the rows can link at all (truth's linkable_id: components recomputed from the rows).
        var linkableActual = perLinkable.Values.Sum(Pairs);
        var linkableRecall = linkableActual == 0 ? 1.0 : (double)perLinkablePair.Values.Sum(Pairs) / linkableActual;
        TestContext.Current.SendDiagnosticMessage(
            $"graph builder on {GeneratedData.Options.People} people: {builder.Table.Count} identifiers, {result.Edges} edges, {result.ClusterCount} clusters, "
            + $"{result.Refused.Length} refused; truth identifiers found {found}/{truth.Count}; pairwise precision {precision:F4} recall {recall:F4} (of linkable pairs {linkableRecall:F4}); wrongly joined pairs {predicted - truePositives}");
        // Not yet exact: the stitcher does not apply IdentifierType.SharedAfter, so a shared value (a household tablet's
        // anonymous_id) that no limit catches still joins two people. The goal is precision 1.0 (no two people in one
        // cluster); until shared-value detection lands this is a floor against regressions.
        Assert.True(precision >= 0.99, $"pairwise precision {precision:F4}");
        Assert.True(found > truth.Count / 2, $"only {found} of {truth.Count} truth identifiers found");
    }
}
