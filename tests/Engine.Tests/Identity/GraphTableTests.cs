using System.Text;
using CsCheck;
using Engine.Identity;

namespace Engine.Tests.Identity;

/// <summary>Identifier keys, the identifier table and the edge set, each against a plain .NET collection.</summary>
public sealed class GraphTableTests
{
    [Fact]
    public void Key_depends_on_type_and_value_and_agrees_between_utf16_and_utf8()
    {
        var a = IdentifierKey.Compute(1, "ann@example.com".AsSpan());
        Assert.Equal(a, IdentifierKey.Compute(1, "ann@example.com"u8));
        Assert.NotEqual(a, IdentifierKey.Compute(2, "ann@example.com".AsSpan()));
        Assert.NotEqual(a, IdentifierKey.Compute(1, "bob@example.com".AsSpan()));
        Assert.Equal(a.GetHashCode(), IdentifierKey.Compute(1, "ann@example.com".AsSpan()).GetHashCode());
        Assert.True(a == IdentifierKey.Compute(1, "ann@example.com".AsSpan()));
        Assert.Equal(new UInt128(a.High, a.Low), a.ToUInt128());
    }

    [Fact]
    public void Key_of_a_long_value_is_hashed_from_a_pooled_buffer()
    {
        var value = new string('é', 2000);
        Assert.Equal(IdentifierKey.Compute(3, Encoding.UTF8.GetBytes(value)), IdentifierKey.Compute(3, value.AsSpan()));
    }

    // Keys drawn from a small pool so repeats are common; some runs are long enough to grow the table several times.
    private static readonly Gen<(int[] Picks, int Pool, int Expected)> GenPicks =
        Gen.Int[1, 3000].SelectMany(pool => Gen.Select(Gen.Int[0, pool - 1].Array[0, 5000], Gen.Int[0, 64], (picks, expected) => (picks, pool, expected)));

    private static IdentifierKey KeyOf(int value) => IdentifierKey.Compute((byte)(value % 5), BitConverter.GetBytes(value));

    [Fact]
    public void Table_assigns_dense_ids_in_first_seen_order_and_finds_them_after_growth()
    {
        GenPicks.Sample(sample =>
        {
            var table = new IdentifierTable(sample.Expected);
            var reference = new Dictionary<IdentifierKey, (int Id, byte Type)>();
            foreach (var pick in sample.Picks)
            {
                var key = KeyOf(pick);
                var id = table.GetOrAdd(key, (byte)(pick % 5));
                if (!reference.TryGetValue(key, out var expected))
                {
                    expected = (reference.Count, (byte)(pick % 5));
                    reference.Add(key, expected);
                }
                Assert.Equal(expected.Id, id);
            }
            Assert.Equal(reference.Count, table.Count);
            foreach (var (key, (id, type)) in reference)
            {
                Assert.True(table.TryGet(key, out var found));
                Assert.Equal(id, found);
                Assert.Equal(type, table.Types[id]);
            }
            Assert.False(table.TryGet(KeyOf(-1), out _));
            Assert.True(table.Count <= table.Capacity * 11 / 16 || table.Capacity == 16);
        });
    }

    [Fact]
    public void Key_order_sorts_ids_as_their_keys_sort()
    {
        GenPicks.Sample(sample =>
        {
            var table = new IdentifierTable(sample.Expected);
            foreach (var pick in sample.Picks)
            {
                table.GetOrAdd(KeyOf(pick), (byte)(pick % 5));
            }
            var keyOfId = new IdentifierKey[table.Count];
            foreach (var pick in sample.Picks)
            {
                Assert.True(table.TryGet(KeyOf(pick), out var id));
                keyOfId[id] = KeyOf(pick);
            }
            var ids = Enumerable.Range(0, table.Count).ToArray();
            Array.Sort(ids, table.KeyOrder());
            Assert.Equal(Enumerable.Range(0, table.Count).OrderBy(id => keyOfId[id].High).ThenBy(id => keyOfId[id].Low), ids);
        }, iter: 50);
    }

    [Fact]
    public void Node_order_sorts_ids_by_first_position_then_key_with_the_packed_sort_or_without()
    {
        // Positions over a few sources and files, rows often shared (values first met on one row tie, broken by key);
        // large samples (a million ids) take the packed sort's parallel halves, a bit budget of 0 the comparison sort.
        var gen = Gen.Select(Gen.Int[1, 3000], Gen.Int[0, 5], Gen.Int).Select((n, large, seed) => (N: large == 0 ? (1 << 20) + n : n, Seed: seed));
        gen.Sample(sample =>
        {
            var random = new Random(sample.Seed);
            var table = new IdentifierTable();
            var keyOfId = new IdentifierKey[sample.N];
            var positions = new long[sample.N];
            for (var i = 0; i < sample.N; i++)
            {
                keyOfId[i] = KeyOf(i);
                Assert.Equal(i, table.GetOrAdd(keyOfId[i], 0));
                positions[i] = IdentityGraphBuilder.Position(random.Next(0, 3), random.Next(0, 5) * 1000, random.Next(0, Math.Max(1, sample.N / 3)));
            }
            var expected = Enumerable.Range(0, sample.N).OrderBy(id => positions[id]).ThenBy(id => keyOfId[id].High).ThenBy(id => keyOfId[id].Low).ToArray();
            foreach (var bits in (int[])[64, 0])
            {
                Assert.Equal(expected, CanonicalGraph.NodeOrder(table, [.. positions, long.MaxValue], bits));
            }
        }, iter: 24);
    }

    [Fact]
    public void A_table_grown_past_a_million_slots_on_every_core_keeps_every_id_and_type()
    {
        // 1.6M keys: the doublings from 1M slots on rehash in parallel.
        const int N = 1_600_000;
        var table = new IdentifierTable();
        for (var i = 0; i < N; i++)
        {
            Assert.Equal(i, table.GetOrAdd(KeyOf(i), (byte)(i % 7)));
        }
        Assert.True(table.Capacity >= 1 << 21);
        for (var i = 0; i < N; i++)
        {
            Assert.True(table.TryGet(KeyOf(i), out var id));
            Assert.Equal(i, id);
            Assert.Equal((byte)(i % 7), table.TypeOf(id));
        }
        Assert.False(table.TryGet(KeyOf(-1), out _));
        Assert.Equal(N, table.Count);
    }

    [Fact]
    public void Table_records_each_identifiers_type()
    {
        var table = new IdentifierTable();
        for (var i = 0; i < 1000; i++)
        {
            Assert.Equal(i, table.GetOrAdd(KeyOf(i), (byte)(i % 5)));
        }
        for (var i = 0; i < 1000; i++)
        {
            Assert.Equal((byte)(i % 5), table.TypeOf(i));
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => table.TypeOf(1000));
    }

    [Fact]
    public void Batched_get_or_add_equals_one_at_a_time()
    {
        GenPicks.Sample(sample =>
        {
            var keys = new IdentifierKey[sample.Picks.Length];
            var types = new byte[keys.Length];
            for (var i = 0; i < keys.Length; i++)
            {
                keys[i] = KeyOf(sample.Picks[i]);
                types[i] = (byte)(sample.Picks[i] % 5);
            }
            var single = new IdentifierTable();
            var batched = new IdentifierTable(sample.Expected);
            var ids = new int[keys.Length];
            // Two halves, so the second batch meets keys already present.
            var half = keys.Length / 2;
            batched.GetOrAdd(keys.AsSpan(0, half), types.AsSpan(0, half), ids.AsSpan(0, half));
            batched.GetOrAdd(keys.AsSpan(half), types.AsSpan(half), ids.AsSpan(half));
            for (var i = 0; i < keys.Length; i++)
            {
                Assert.Equal(single.GetOrAdd(keys[i], types[i]), ids[i]);
            }
            Assert.Equal(single.Count, batched.Count);
            Assert.True(single.Types.SequenceEqual(batched.Types));
        });
    }

    [Fact]
    public void Edge_set_deduplication_equals_a_hash_set_sorted()
    {
        // Small id ranges give many repeats and self-edges; large ones exercise every radix digit.
        var gen = Gen.Int[1, 1 << 30].SelectMany(range =>
            Gen.Select(Gen.Int[0, range - 1], Gen.Int[0, range - 1]).Array[0, 9000].Select(edges => (range, edges)));
        Gen.Select(gen, Gen.Bool).Sample((sample, parallel) =>
        {
            var set = new EdgeSet();
            var reference = new HashSet<ulong>();
            var half = sample.edges.Length / 2;
            for (var i = 0; i < half; i++)
            {
                var (a, b) = sample.edges[i];
                set.Add(a, b);
            }
            var rest = sample.edges.AsSpan(half);
            var xs = new int[rest.Length];
            var ys = new int[rest.Length];
            for (var i = 0; i < rest.Length; i++)
            {
                (xs[i], ys[i]) = rest[i];
            }
            set.AddRange(xs, ys);
            foreach (var (a, b) in sample.edges)
            {
                if (a != b)
                {
                    reference.Add(((ulong)Math.Min(a, b) << 32) | (uint)Math.Max(a, b));
                }
            }
            var expected = reference.ToArray();
            Array.Sort(expected);
            // Parallel: halves sorted on two threads and merged, whatever the size.
            Assert.Equal(expected, set.Deduplicate(parallelThreshold: parallel ? 0 : int.MaxValue).ToArray());
            Assert.Equal(expected.Length, set.Count);
            Assert.Equal(expected, set.Deduplicate().ToArray()); // idempotent
        }, iter: 300);
    }

    [Fact]
    public void Relabelled_edges_deduplicate_to_the_relabelled_distinct_edges()
    {
        // Raw edges with repeats, renamed through a random permutation before the one sort, against the distinct edges
        // renamed afterwards: the builder's handover relies on the two being equal.
        Gen.Int[1, 2000].SelectMany(n => Gen.Select(Gen.Select(Gen.Int[0, n - 1], Gen.Int[0, n - 1]).Array[0, 9000], Gen.Int, (edges, seed) => (n, edges, seed)))
            .Sample(sample =>
            {
                var map = Enumerable.Range(0, sample.n).ToArray();
                new Random(sample.seed).Shuffle(map);
                var raw = new EdgeSet();
                var distinct = new EdgeSet();
                foreach (var (a, b) in sample.edges)
                {
                    raw.Add(a, b);
                    distinct.Add(a, b);
                }
                var expected = new EdgeSet();
                foreach (var e in distinct.Deduplicate())
                {
                    expected.Add(map[EdgeSet.First(e)], map[EdgeSet.Second(e)]);
                }
                raw.Relabel(map);
                Assert.Equal(expected.Deduplicate().ToArray(), raw.Deduplicate().ToArray());
            }, iter: 200);
    }

    [Fact]
    public void Edge_sort_equals_array_sort_on_any_64_bit_values()
    {
        Gen.ULong.Array[0, 20_000].Sample(values =>
        {
            var expected = (ulong[])values.Clone();
            Array.Sort(expected);
            EdgeSet.Sort(values);
            Assert.Equal(expected, values);
        }, iter: 100);
    }

    [Fact]
    public void Edge_sets_from_workers_merge()
    {
        var a = new EdgeSet();
        var b = new EdgeSet();
        a.Add(3, 1);
        a.Add(1, 3);
        b.Add(2, 2);
        b.Add(1, 3);
        b.Add(0, 7);
        var all = new EdgeSet();
        all.AddFrom(a);
        all.AddFrom(b);
        Assert.Equal([EdgeSet.Pack(0, 7), EdgeSet.Pack(1, 3)], all.Deduplicate().ToArray());
        Assert.Equal(1, EdgeSet.First(EdgeSet.Pack(3, 1)));
        Assert.Equal(3, EdgeSet.Second(EdgeSet.Pack(3, 1)));
        Assert.Throws<ArgumentException>(() => all.Add(-1, 2));
    }
}
