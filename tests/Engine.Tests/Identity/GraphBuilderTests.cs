using Apache.Arrow;
using Apache.Arrow.Types;
using Engine.Identity;
using Engine.Storage;
using Engine.TestKit;
using Engine.Workspaces;

namespace Engine.Tests.Identity;

/// <summary>The graph builder: rows of identifier columns to identifier ids, star edges, skip counters and clusters.</summary>
public sealed class GraphBuilderTests
{
    private static readonly IdentityRules Rules = IdentityRules.Default;

    private static IdentifierType T(string name) => Rules.Find(name)!;

    private static StringArray Strings(params string?[] values)
    {
        var builder = new StringArray.Builder();
        foreach (var value in values)
        {
            if (value is null)
            {
                builder.AppendNull();
            }
            else
            {
                builder.Append(value);
            }
        }
        return builder.Build();
    }

    /// <summary>The same values dictionary-encoded by hand: distinct values in first-seen order, nulls as null indices.</summary>
    private static DictionaryArray Dictionary(params string?[] values)
    {
        var distinct = new List<string>();
        var indices = new Int32Array.Builder();
        foreach (var value in values)
        {
            if (value is null)
            {
                indices.AppendNull();
                continue;
            }
            var index = distinct.IndexOf(value);
            if (index < 0)
            {
                index = distinct.Count;
                distinct.Add(value);
            }
            indices.Append(index);
        }
        // An unused entry: must not become an identifier.
        distinct.Add("never-used@mail.co");
        return new DictionaryArray(new DictionaryType(Int32Type.Default, StringType.Default, false), indices.Build(), Strings([.. distinct]));
    }

    private static RecordBatch Batch(params (string Name, IArrowArray Array)[] columns)
    {
        var fields = new List<Field>();
        foreach (var (name, array) in columns)
        {
            fields.Add(new Field(name, array.Data.DataType, true));
        }
        return new RecordBatch(new Schema(fields, null), columns.Select(c => c.Array), columns[0].Array.Length);
    }

    /// <summary>The clusters as sets of node ids (singletons included), order-free.</summary>
    private static List<int[]> Clusters(StitchResult result)
    {
        var clusterOf = result.ClusterOf.ToArray();
        return [.. Enumerable.Range(0, clusterOf.Length).GroupBy(i => clusterOf[i]).Select(g => g.Order().ToArray()).OrderBy(g => g[0])];
    }

    private static int Id(IdentityGraphBuilder builder, string type, string canonical)
    {
        var typeId = builder.TypeId(type);
        Assert.True(builder.Table.TryGet(IdentifierKey.Compute(typeId, System.Text.Encoding.UTF8.GetBytes(canonical)), out var id), $"{type} not found");
        return id;
    }

    [Fact]
    public void Variants_of_one_person_build_one_cluster_and_junk_links_nothing()
    {
        using var batch = Batch(
            ("email", Strings("Ann@Mail.co", "  ann@mail.CO ", null, "test@test.com", "null", "", "not-an-email", "bob@mail.co")),
            ("customer_id", Strings("c1", null, "c1", "c2", "c3", "c4", "c5", null)),
            ("anonymous_id", Strings(null, "a1", "a1", "a2", "null", "  ", null, "a9")));
        var builder = new IdentityGraphBuilder(Rules);
        builder.AddBatch(batch, [(0, T("email")), (1, T("customer_id")), (2, T("anonymous_id"))]);

        Assert.Equal(8, builder.Rows);
        Assert.Equal(1, builder.SkippedCount("email", NormalizeStatus.Blocked)); // test@test.com
        Assert.Equal(2, builder.SkippedCount("email", NormalizeStatus.Invalid)); // "null" (no @), not-an-email
        Assert.Equal(1, builder.SkippedCount("email", NormalizeStatus.Empty)); // ""
        Assert.Equal(1, builder.SkippedCount("anonymous_id", NormalizeStatus.Blocked)); // "null"
        Assert.Equal(1, builder.SkippedCount("anonymous_id", NormalizeStatus.Empty)); // "  "
        Assert.Equal(0, builder.SkippedCount("customer_id", NormalizeStatus.Blocked));

        var ann = Id(builder, "email", "ann@mail.co");
        var c1 = Id(builder, "customer_id", "c1");
        var a1 = Id(builder, "anonymous_id", "a1");
        var result = builder.Stitch();
        Assert.Empty(result.Refused.ToArray());
        Assert.Equal(result.ClusterOf[ann], result.ClusterOf[c1]);
        Assert.Equal(result.ClusterOf[ann], result.ClusterOf[a1]);
        // Identifiers: ann, bob, c1..c5, a1, a2, a9. Clusters: {ann, c1, a1}, {bob, a9}, {c2, a2}, {c3}, {c4}, {c5}.
        Assert.Equal(10, builder.Table.Count);
        Assert.Equal(6, result.ClusterCount);
        var junkRows = new[] { Id(builder, "customer_id", "c3"), Id(builder, "customer_id", "c4"), Id(builder, "customer_id", "c5") };
        foreach (var id in junkRows)
        {
            Assert.Single(Clusters(result), c => c.Contains(id) && c.Length == 1);
        }
    }

    [Fact]
    public void The_canonical_graph_numbers_identifiers_by_first_sighting_then_key_and_spends_the_builder()
    {
        // The second batch repeats links of the first (repeats in the raw edge buffer at the handover) and meets new
        // values together on one row (positions tied, broken by key).
        using var first = Batch(
            ("email", Strings("ann@mail.co", "bob@mail.co", "ann@mail.co")),
            ("customer_id", Strings("c1", "c2", "c1")),
            ("anonymous_id", Strings("a1", null, "a3")));
        using var second = Batch(
            ("email", Strings("bob@mail.co", "cat@mail.co", "ann@mail.co")),
            ("customer_id", Strings("c2", "c3", null)),
            ("anonymous_id", Strings("a4", "a5", "a1")));
        (int, IdentifierType)[] columns = [(0, T("email")), (1, T("customer_id")), (2, T("anonymous_id"))];
        IdentityGraphBuilder Fed()
        {
            var builder = new IdentityGraphBuilder(Rules);
            builder.AddBatch(first, columns);
            builder.AddBatch(second, columns);
            return builder;
        }
        var reference = Fed();
        (string Type, string Value)[] known =
        [
            ("email", "ann@mail.co"), ("email", "bob@mail.co"), ("email", "cat@mail.co"), ("customer_id", "c1"), ("customer_id", "c2"),
            ("customer_id", "c3"), ("anonymous_id", "a1"), ("anonymous_id", "a3"), ("anonymous_id", "a4"), ("anonymous_id", "a5"),
        ];
        var n = reference.Table.Count;
        Assert.Equal(known.Length, n);
        var keyOf = new IdentifierKey[n];
        foreach (var (type, value) in known)
        {
            keyOf[Id(reference, type, value)] = IdentifierKey.Compute(reference.TypeId(type), System.Text.Encoding.UTF8.GetBytes(value));
        }
        var firstSeen = reference.FirstSeen.ToArray();
        var order = Enumerable.Range(0, n).OrderBy(id => firstSeen[id]).ThenBy(id => keyOf[id].High).ThenBy(id => keyOf[id].Low).ToArray();
        var rank = new int[n];
        for (var i = 0; i < n; i++)
        {
            rank[order[i]] = i;
        }
        var types = order.Select(id => reference.Table.Types[id]).ToArray();
        var edges = reference.Build().Edges.ToArray().Select(e => EdgeSet.Pack(rank[EdgeSet.First(e)], rank[EdgeSet.Second(e)])).Order().ToArray();

        var builder = Fed();
        var graph = builder.BuildCanonical();
        Assert.Equal(order, graph.Order);
        Assert.Equal(rank, graph.Rank);
        Assert.Equal(types, graph.NodeTypes);
        Assert.Equal(edges, graph.Edges);

        // Spent: its storage went to the graph; the counters stay.
        Assert.Equal(6, builder.Rows);
        Assert.Equal(0, builder.Table.Count);
        Assert.Throws<InvalidOperationException>(() => builder.AddBatch(first, columns));
        Assert.Throws<InvalidOperationException>(() => builder.AddEdge(0, 1));
        Assert.Throws<InvalidOperationException>(() => builder.AddCanonical(0, "c9"u8));
        Assert.Throws<InvalidOperationException>(() => builder.Build());
        Assert.Throws<InvalidOperationException>(() => builder.BuildCanonical());
    }

    [Fact]
    public void Skip_counters_split_blocked_empty_and_invalid_emails()
    {
        using var batch = Batch(("email", Strings("test@test.com", "", "   ", "no-at-sign.example.com", "a@@b", null, "ok@mail.co")));
        var builder = new IdentityGraphBuilder(Rules);
        builder.AddBatch(batch, [(0, T("email"))]);
        Assert.Equal(1, builder.SkippedCount("email", NormalizeStatus.Blocked));
        Assert.Equal(2, builder.SkippedCount("email", NormalizeStatus.Empty));
        Assert.Equal(2, builder.SkippedCount("email", NormalizeStatus.Invalid));
        Assert.Equal(0, builder.SkippedCount("email", NormalizeStatus.TooLong));
        Assert.Equal(1, builder.Table.Count);
        Assert.Equal(0, builder.Build().EdgeCount);
    }

    [Fact]
    public void A_shared_anonymous_id_does_not_merge_two_customers()
    {
        using var batch = Batch(
            ("customer_id", Strings("c1", "c2", "c1", "c2")),
            ("email", Strings("one@mail.co", "two@mail.co", null, null)),
            ("anonymous_id", Strings("tablet", "tablet", "phone-1", "phone-2")));
        var builder = new IdentityGraphBuilder(Rules);
        builder.AddBatch(batch, [(0, T("customer_id")), (1, T("email")), (2, T("anonymous_id"))]);
        var result = builder.Stitch();

        var c1 = Id(builder, "customer_id", "c1");
        var c2 = Id(builder, "customer_id", "c2");
        var tablet = Id(builder, "anonymous_id", "tablet");
        Assert.NotEqual(result.ClusterOf[c1], result.ClusterOf[c2]);
        Assert.Equal(result.ClusterOf[c1], result.ClusterOf[Id(builder, "email", "one@mail.co")]);
        Assert.Equal(result.ClusterOf[c2], result.ClusterOf[Id(builder, "email", "two@mail.co")]);
        Assert.Equal(result.ClusterOf[c1], result.ClusterOf[Id(builder, "anonymous_id", "phone-1")]);
        Assert.Equal(result.ClusterOf[c2], result.ClusterOf[Id(builder, "anonymous_id", "phone-2")]);
        // The tablet is seen with two customers (two profiles by the time cookies are judged): shared, not a link.
        Assert.True(result.IsShared(tablet));
        Assert.Equal(1, result.SharedPerType[builder.TypeId("anonymous_id")]);
        Assert.Empty(result.Refused.ToArray());
        Assert.Equal(3, result.ClusterCount);

        // Without the shared-value guard, the customer_id limit is what refuses the tablet's second link.
        var unguarded = new IdentityGraphBuilder(Rules);
        unguarded.AddBatch(batch, [(0, T("customer_id")), (1, T("email")), (2, T("anonymous_id"))]);
        var graph = unguarded.Build();
        var policies = unguarded.Policies().Select(p => p with { SharedAfter = null }).ToArray();
        var limited = Stitcher.Run(graph.NodeTypes, graph.Edges, policies);
        var refused = Assert.Single(limited.Refused.ToArray());
        Assert.Equal(unguarded.TypeId("customer_id"), refused.LimitedType);
        Assert.True(refused.First == tablet || refused.Second == tablet);
        Assert.Equal(2, limited.ClusterCount);
    }

    [Fact]
    public void Dictionary_encoded_columns_give_the_same_graph_as_plain_strings()
    {
        string?[] emails = ["Ann@Mail.co", " ann@mail.co", "test@test.com", null, "bob@mail.co", "not-an-email", "", "bob@mail.co"];
        string?[] customers = ["c1", null, "c2", "c2", "c3", "c3", null, "c3"];
        string?[] anonymous = ["a1", "a1", "a2", null, "a3", "null", "a4", "a3"];

        using var plain = Batch(("email", Strings(emails)), ("customer_id", Strings(customers)), ("anonymous_id", Strings(anonymous)));
        using var encoded = Batch(("email", Dictionary(emails)), ("customer_id", Dictionary(customers)), ("anonymous_id", Strings(anonymous)));
        (int, IdentifierType)[] columns = [(0, T("email")), (1, T("customer_id")), (2, T("anonymous_id"))];

        var a = new IdentityGraphBuilder(Rules);
        a.AddBatch(plain, columns);
        var b = new IdentityGraphBuilder(Rules);
        b.AddBatch(encoded, columns);

        // Same insertion order of first sightings, so the same ids, types and edges.
        var ga = a.Build();
        var gb = b.Build();
        Assert.Equal(ga.NodeTypes.ToArray(), gb.NodeTypes.ToArray());
        Assert.Equal(ga.Edges.ToArray(), gb.Edges.ToArray());
        for (var t = 0; t < Rules.Types.Count; t++)
        {
            Assert.Equal(a.Skipped[t], b.Skipped[t]);
        }
        Assert.False(b.Table.TryGet(IdentifierKey.Compute(b.TypeId("email"), "never-used@mail.co"u8), out _));
        Assert.True(ga.EdgeCount > 0);
    }

    [Fact]
    public void A_composite_identifier_links_rows_differing_only_in_case_and_spaces()
    {
        var rules = new IdentityRules(
        [
            .. IdentityRules.Default.Types,
            new IdentifierType("name_postcode", NormalizerKind.Composite, CompositeNormalizer.Instance, null, null, Blocklist.Empty),
        ]);
        using var batch = Batch(
            ("email", Strings("ann@mail.co", "ann.work@mail.co", "other@mail.co", "partial@mail.co")),
            ("first_name", Strings("Ann", " ann ", "Ann", "Ann")),
            ("last_name", Strings("Van  Dyke", "van dyke", "Smith", null)),
            ("postcode", Strings("SW1A 1AA", "sw1a  1aa ", "SW1A 1AA", "SW1A 1AA")));
        var builder = new IdentityGraphBuilder(rules);
        builder.AddBatch(batch, [(0, rules.Find("email")!)], [([1, 2, 3], rules.Find("name_postcode")!)]);
        var result = builder.Stitch();

        var first = builder.Table;
        Assert.True(first.TryGet(IdentifierKey.Compute(builder.TypeId("email"), "ann@mail.co"u8), out var ann));
        Assert.True(first.TryGet(IdentifierKey.Compute(builder.TypeId("email"), "ann.work@mail.co"u8), out var work));
        Assert.True(first.TryGet(IdentifierKey.Compute(builder.TypeId("email"), "other@mail.co"u8), out var other));
        Assert.Equal(result.ClusterOf[ann], result.ClusterOf[work]);
        Assert.NotEqual(result.ClusterOf[ann], result.ClusterOf[other]);
        Assert.Equal(1, builder.SkippedCount("name_postcode", NormalizeStatus.Empty)); // the null last name
        Assert.Equal(4 + 2, builder.Table.Count); // four emails, two composites
    }

    [Fact]
    public async Task Workers_applying_side_by_side_build_what_one_worker_builds()
    {
        // Many small row groups drawing from small pools of values: workers meet the same new values at the same time,
        // claim table slots side by side and grow the table under each other. The canonical graph, the values logged
        // in id order and the counts must be exactly one worker's.
        using var directory = new TempDirectory("graph-builder-parallel");
        var random = new Random(7);
        const int Rows = 30_000;
        var customers = new StringArray.Builder();
        var emails = new StringArray.Builder();
        var anonymous = new StringArray.Builder();
        for (var i = 0; i < Rows; i++)
        {
            var repeat = i > 0 && random.Next(3) == 0; // runs of equal rows, as an event stream has
            var c = repeat ? null : random.Next(10) < 3 ? null : $"c{random.Next(3000)}";
            var e = random.Next(20) switch { 0 => "test@example.com", < 5 => null, _ => $"U{random.Next(5000)}@Mail.co" };
            var a = $"a{random.Next(20000)}";
            customers.Append(c);
            emails.Append(e);
            anonymous.Append(a);
            while (repeat && i + 1 < Rows && random.Next(2) == 0)
            {
                customers.Append(c);
                emails.Append(e);
                anonymous.Append(a);
                i++;
            }
        }
        var schema = new Schema([new Field("customer_id", StringType.Default, true), new Field("email", StringType.Default, true), new Field("anonymous_id", StringType.Default, true)], null);
        using (var batch = new RecordBatch(schema, [customers.Build(), emails.Build(), anonymous.Build()], Rows))
        {
            var location = new StorageLocation(new LocalObjectStore(System.IO.Path.Combine(directory.Path, "data")), "");
            await using var writer = await ParquetDatasetWriter.CreateAsync(location, schema, new ParquetWriteOptions { RowGroupRows = 97 }, TestContext.Current.CancellationToken);
            writer.Write(batch);
            await writer.CommitAsync(TestContext.Current.CancellationToken);
        }
        var dataset = await Dataset.OpenAsync(new StorageLocation(new LocalObjectStore(System.IO.Path.Combine(directory.Path, "data")), ""), cancellationToken: TestContext.Current.CancellationToken);
        var source = new SourceDefinition
        {
            Name = "events",
            File = "sources/events.yaml",
            Location = "data",
            Schema = new DataSchema([new ColumnSpec("customer_id", ColumnType.String), new ColumnSpec("email", ColumnType.String), new ColumnSpec("anonymous_id", ColumnType.String)]),
            Identifiers = new Dictionary<string, string> { ["customer_id"] = "customer_id", ["email"] = "email", ["anonymous_id"] = "anonymous_id" },
        };
        string Build(int parallelism, int round)
        {
            using var values = new CanonicalValueLog(System.IO.Path.Combine(directory.Path, $"scratch-{parallelism}-{round}"));
            var builder = new IdentityGraphBuilder(Rules, 0, values);
            IdentityGraphBuilder.FromDataset(dataset, source, 1, Rules, builder, ScanOptions.Default with { Parallelism = parallelism }, null, TestContext.Current.CancellationToken);
            var skipped = string.Join(",", builder.Skipped.SelectMany(t => t));
            var graph = builder.BuildCanonical();
            var nodes = new List<string>();
            values.ReadInOrder(graph.Order, nodes, (list, _, value) => list.Add(System.Text.Encoding.UTF8.GetString(value)));
            return $"{builder.Rows}|{skipped}|{string.Join(",", graph.NodeTypes.ToArray())}|{string.Join(",", nodes)}|{string.Join(",", graph.Edges)}";
        }
        var one = Build(1, 0);
        Assert.Contains("u17@mail.co", one, StringComparison.Ordinal); // canonical values: lower-cased emails
        for (var round = 0; round < 6; round++)
        {
            Assert.Equal(one, Build(4, round));
        }
    }

    [Fact]
    public async Task FromDataset_scans_the_identifier_columns_of_a_source()
    {
        using var directory = new TempDirectory("graph-builder");
        await SmallDatasets.WriteEventsAsync(directory.Path, 30, rowGroupRows: 8);
        var dataset = await Dataset.OpenAsync(new StorageLocation(new LocalObjectStore(directory.Path), ""), cancellationToken: TestContext.Current.CancellationToken);
        var source = new SourceDefinition
        {
            Name = "events",
            File = "sources/events.yaml",
            Location = directory.Path,
            Schema = new DataSchema([new ColumnSpec("event_id", ColumnType.String, true), new ColumnSpec("email", ColumnType.String)]),
            Identifiers = new Dictionary<string, string> { ["email"] = "email" },
        };
        var builder = new IdentityGraphBuilder(Rules);
        IdentityGraphBuilder.FromDataset(dataset, source, Rules, builder);
        Assert.Equal(30, builder.Rows);
        // The generated emails are person{i}@example.com: a reserved domain, blocked; every third is null (not counted).
        Assert.Equal(20, builder.SkippedCount("email", NormalizeStatus.Blocked));
        Assert.Equal(0, builder.Table.Count);
        Assert.Equal(0, builder.Build().EdgeCount);
    }
}
