using System.Diagnostics;
using Engine.Identity;

namespace Engine.Benchmarks.Identity;

/// <summary>
/// CheckMode's identity cases: each benchmark once on a smaller graph, timed, with its answer checked — the stitcher's
/// cluster count against the plain union-find loop, limits never exceeded, and the id table's ids against the
/// dictionary's.
/// </summary>
internal static class IdentityCheck
{
    public static int Run(int nodes)
    {
        var failures = 0;
        var edgeCount = nodes * 2;
        var (types, raw) = GraphBenchData.Graph(nodes, edgeCount, seed: 42);
        var clock = Stopwatch.StartNew();
        var set = new EdgeSet(raw.Length);
        GraphBenchData.AddPacked(set, raw);
        var edges = set.Deduplicate().ToArray();
        Report("edge dedup", raw.Length, clock.Elapsed.TotalSeconds, "edges", $"{edges.Length:N0} distinct");

        clock.Restart();
        var expected = UnionFindBenchmarks.PlainUnionFind(edges, nodes);
        Report("union-find plain", edges.Length, clock.Elapsed.TotalSeconds, "edges", $"{expected:N0} clusters");

        clock.Restart();
        var free = Stitcher.Run(types, edges, GraphBenchData.Unlimited);
        var ok = free.ClusterCount == expected;
        failures += ok ? 0 : 1;
        Report("stitch no limits", edges.Length, clock.Elapsed.TotalSeconds, "edges", $"{free.ClusterCount:N0} clusters {(ok ? "answers equal" : "ANSWERS DIFFER")}");

        clock.Restart();
        var limited = Stitcher.Run(types, edges, GraphBenchData.Limited);
        var seconds = clock.Elapsed.TotalSeconds;
        ok = WithinLimits(limited, types);
        failures += ok ? 0 : 1;
        Report("stitch limits", edges.Length, seconds, "edges", $"{limited.ClusterCount:N0} clusters, {limited.Refused.Length:N0} refused {(ok ? "limits held" : "LIMIT BROKEN")}");

        var (keys, keyTypes) = GraphBenchData.Lookups(nodes, edgeCount, seed: 7);
        var dictionaryIds = new int[keys.Length];
        var tableIds = new int[keys.Length];
        var before = GC.GetAllocatedBytesForCurrentThread();
        clock.Restart();
        var distinct = IdentifierTableBenchmarks.DictionaryIds(keys, dictionaryIds, nodes);
        var dictionarySeconds = clock.Elapsed.TotalSeconds;
        var dictionaryBytes = GC.GetAllocatedBytesForCurrentThread() - before;
        Report("Dictionary<UInt128,int>", keys.Length, dictionarySeconds, "lookups", $"{(double)dictionaryBytes / distinct:F1} bytes/identifier");

        clock.Restart();
        var table = new IdentifierTable(nodes);
        table.GetOrAdd(keys, keyTypes, tableIds);
        var tableSeconds = clock.Elapsed.TotalSeconds;
        ok = table.Count == distinct && tableIds.AsSpan().SequenceEqual(dictionaryIds);
        failures += ok ? 0 : 1;
        Report("IdentifierTable batched", keys.Length, tableSeconds, "lookups",
            $"{(double)table.AllocatedBytes / table.Count:F1} bytes/identifier  ratio {tableSeconds / dictionarySeconds:F2}x  {(ok ? "answers equal" : "ANSWERS DIFFER")}");
        return failures;
    }

    private static bool WithinLimits(StitchResult result, byte[] types)
    {
        // Per cluster label, counts of the two limited types (customer_id: 1, email: 5).
        var counts = new int[types.Length * 2];
        var clusterOf = result.ClusterOf;
        for (var i = 0; i < types.Length; i++)
        {
            if (types[i] < 2 && ++counts[clusterOf[i] * 2 + types[i]] > (types[i] == 0 ? 1 : 5))
            {
                return false;
            }
        }
        return true;
    }

    private static void Report(string name, long items, double seconds, string unit, string note) =>
        Console.WriteLine($"{name,-24} {items,12:N0} {unit,-7} {seconds,8:F3} s  {items / seconds,14:N0} {unit}/s  {note}");
}
