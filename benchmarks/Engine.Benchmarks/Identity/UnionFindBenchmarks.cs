using BenchmarkDotNet.Attributes;
using Engine.Identity;

namespace Engine.Benchmarks.Identity;

/// <summary>
/// Stitching a random identifier graph of 10M nodes and 20M edges (uniform random pairs, so one giant component
/// forms and Find walks are long, a worst case for memory latency). Times are per edge (OperationsPerInvoke), so
/// edges/s = 1e9 / Mean[ns]. Target: 35M edges/s per core. The baseline is a plain union-find loop (no prefetch, no
/// limits, no labelling) over the same sorted distinct edges.
/// </summary>
[MemoryDiagnoser]
public class UnionFindBenchmarks
{
    public const int Nodes = 10_000_000;
    public const int EdgeCount = 20_000_000;

    private byte[] _types = [];
    private ulong[] _raw = [];
    private ulong[] _edges = [];

    [GlobalSetup]
    public void Setup()
    {
        (_types, _raw) = GraphBenchData.Graph(Nodes, EdgeCount, seed: 42);
        _edges = GraphBenchData.Deduplicated(_raw);
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = EdgeCount, Description = "plain union-find loop")]
    public int PlainUnionFind() => PlainUnionFind(_edges, Nodes);

    [Benchmark(OperationsPerInvoke = EdgeCount, Description = "stitch, no limits")]
    public int StitchNoLimits() => Stitcher.Run(_types, _edges, GraphBenchData.Unlimited).ClusterCount;

    [Benchmark(OperationsPerInvoke = EdgeCount, Description = "stitch, limits (customer 1, email 5)")]
    public int StitchWithLimits() => Stitcher.Run(_types, _edges, GraphBenchData.Limited).ClusterCount;

    [Benchmark(OperationsPerInvoke = EdgeCount, Description = "edge set add + dedup (radix)")]
    public int Deduplicate()
    {
        var set = new EdgeSet(_raw.Length);
        GraphBenchData.AddPacked(set, _raw);
        return set.Deduplicate().Length;
    }

    /// <summary>The textbook loop, for a baseline and for CheckMode's answer.</summary>
    internal static int PlainUnionFind(ReadOnlySpan<ulong> edges, int nodes)
    {
        var unionFind = new UnionFind(nodes);
        var sets = nodes;
        foreach (var e in edges)
        {
            sets -= unionFind.Union(EdgeSet.First(e), EdgeSet.Second(e)) ? 1 : 0;
        }
        return sets;
    }
}

/// <summary>
/// Mapping 20M identifier keys (drawn from 10M distinct) to dense ids: the engine's open-addressing table, one key at a
/// time and batched with prefetch, against <c>Dictionary&lt;UInt128, int&gt;</c>. Both presized. Times are per lookup.
/// </summary>
[MemoryDiagnoser]
public class IdentifierTableBenchmarks
{
    public const int Distinct = 10_000_000;
    public const int Lookups = 20_000_000;

    private IdentifierKey[] _keys = [];
    private byte[] _types = [];
    private int[] _ids = [];

    [GlobalSetup]
    public void Setup()
    {
        (_keys, _types) = GraphBenchData.Lookups(Distinct, Lookups, seed: 7);
        _ids = new int[Lookups];
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Lookups, Description = "Dictionary<UInt128,int>")]
    public int Dictionary() => DictionaryIds(_keys, _ids, Distinct);

    [Benchmark(OperationsPerInvoke = Lookups, Description = "IdentifierTable, one at a time")]
    public int TableSingle()
    {
        var table = new IdentifierTable(Distinct);
        for (var i = 0; i < _keys.Length; i++)
        {
            _ids[i] = table.GetOrAdd(_keys[i], _types[i]);
        }
        return table.Count;
    }

    [Benchmark(OperationsPerInvoke = Lookups, Description = "IdentifierTable, batched + prefetch")]
    public int TableBatched()
    {
        var table = new IdentifierTable(Distinct);
        table.GetOrAdd(_keys, _types, _ids);
        return table.Count;
    }

    internal static int DictionaryIds(ReadOnlySpan<IdentifierKey> keys, Span<int> ids, int capacity)
    {
        var map = new Dictionary<UInt128, int>(capacity);
        for (var i = 0; i < keys.Length; i++)
        {
            ref var id = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(map, keys[i].ToUInt128(), out var exists);
            if (!exists)
            {
                id = map.Count - 1;
            }
            ids[i] = id;
        }
        return map.Count;
    }
}
