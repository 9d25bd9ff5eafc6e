using System.Diagnostics;
using Engine.Datasets;
using Engine.Identity;
using Engine.Storage;

namespace Engine.Benchmarks.Identity;

/// <summary>
/// CheckMode's proof that the identity scale run compares like with like: on a few thousand generated people, the
/// engine's identity core with its per-profile limits and shared-value guard switched off must find exactly the
/// partition DuckDB's label propagation finds (<see cref="DuckDbIdentityPeer"/>), over the identifiers of types
/// customer_id, email and anonymous_id. Phones are left out of both sides: SQL only approximates libphonenumber, and
/// a phone read differently would change which identifiers it links.
/// </summary>
internal static class IdentityPeerCheck
{
    private const int Examples = 5;

    public static async Task<int> RunAsync(long people)
    {
        var folder = Path.Combine(Path.GetTempPath(), $"engine-identity-check-{Guid.NewGuid():N}");
        try
        {
            await new SyntheticGenerator(new GeneratorOptions { People = people, Seed = 1 })
                .GenerateAsync(new StorageLocation(new LocalObjectStore(Path.Combine(folder, "data")), ""));
            return Run(Path.Combine(folder, "data"), Path.Combine(folder, "duckdb-tmp"), people);
        }
        finally
        {
            if (Directory.Exists(folder))
            {
                Directory.Delete(folder, recursive: true);
            }
        }
    }

    /// <summary>The default rules' types, normalisers and blocklists, with no limits and no shared-value threshold.</summary>
    public static IdentityRules Unlimited()
    {
        var types = new List<IdentifierType>();
        foreach (var type in IdentityRules.Default.Types)
        {
            types.Add(new IdentifierType(type.Name, type.Kind, type.Normalizer, limit: null, sharedAfter: null, type.Blocklist));
        }
        return new IdentityRules(types);
    }

    private static int Run(string dataDir, string duckTemp, long people)
    {
        var rules = Unlimited();
        for (var t = 0; t < DuckDbIdentityPeer.TypeNames.Length; t++)
        {
            // The peer numbers types as the rules do, so both sides hash a value to the same IdentifierKey.
            if (rules.PriorityOf(DuckDbIdentityPeer.TypeNames[t]) != t)
            {
                Console.WriteLine($"identity vs DuckDB: type '{DuckDbIdentityPeer.TypeNames[t]}' is not at priority {t} in the default rules");
                return 1;
            }
        }
        var clock = Stopwatch.StartNew();
        var engine = EngineIdentitySide.Run(dataDir, rules, includePhone: false);
        var engineSeconds = clock.Elapsed.TotalSeconds;
        using var peer = new DuckDbIdentityPeer(new DuckDbPeerOptions(Environment.ProcessorCount, "2GB", duckTemp, IncludePhone: false));
        var duck = peer.Run(dataDir);

        var table = engine.Builder.Table;
        var clusterOf = engine.Stitch.ClusterOf.ToArray();
        // Engine cluster (its smallest identifier id) -> DuckDB cluster, and back: a partition is equal to another when
        // both maps are functions over the same identifiers.
        var duckOfEngine = new long[table.Count];
        Array.Fill(duckOfEngine, -1L);
        var engineOfDuck = new Dictionary<long, int>();
        var seen = new bool[table.Count];
        long matched = 0, onlyDuck = 0, split = 0, joined = 0;
        var examples = new List<string>();
        peer.ReadClusters((type, value, cluster) =>
        {
            var key = IdentifierKey.Compute(type, value.AsSpan());
            if (!table.TryGet(key, out var id))
            {
                onlyDuck++;
                Example($"only in DuckDB: {DuckDbIdentityPeer.TypeNames[type]} {Mask(value)} (key {key.ToString()[..12]})");
                return;
            }
            matched++;
            seen[id] = true;
            var engineCluster = clusterOf[id];
            if (duckOfEngine[engineCluster] < 0)
            {
                duckOfEngine[engineCluster] = cluster;
            }
            else if (duckOfEngine[engineCluster] != cluster)
            {
                split++;
                Example($"engine joins what DuckDB splits: {DuckDbIdentityPeer.TypeNames[type]} {Mask(value)} (key {key.ToString()[..12]})");
            }
            if (!engineOfDuck.TryAdd(cluster, engineCluster) && engineOfDuck[cluster] != engineCluster)
            {
                joined++;
                Example($"DuckDB joins what the engine splits: {DuckDbIdentityPeer.TypeNames[type]} {Mask(value)} (key {key.ToString()[..12]})");
            }
        });
        var onlyEngine = table.Count - matched;
        for (var id = 0; id < seen.Length && onlyEngine > 0; id++)
        {
            if (!seen[id])
            {
                Example($"only in the engine: {DuckDbIdentityPeer.TypeNames[table.TypeOf(id)]} identifier id {id} (the engine keeps hashes, not values)");
            }
        }
        var same = onlyDuck == 0 && onlyEngine == 0 && split == 0 && joined == 0 && engine.Stitch.ClusterCount == duck.Clusters;
        Console.WriteLine($"identity vs DuckDB {people,8:N0} people  {table.Count,10:N0} identifiers  {engine.Edges:N0} edges  engine {engineSeconds:F2} s, DuckDB {duck.TotalSeconds:F2} s ({duck.Iterations} passes)  "
            + $"{engine.Stitch.ClusterCount:N0} / {duck.Clusters:N0} clusters  {(same ? "same partition" : "PARTITIONS DIFFER")}");
        if (!same)
        {
            Console.WriteLine($"  identifiers only in DuckDB {onlyDuck:N0}, only in the engine {onlyEngine:N0}; engine clusters split by DuckDB {split:N0}, DuckDB clusters split by the engine {joined:N0}");
            foreach (var example in examples)
            {
                Console.WriteLine("  " + example);
            }
        }
        return same ? 0 : 1;

        void Example(string text)
        {
            if (examples.Count < Examples)
            {
                examples.Add(text);
            }
        }
    }

    /// <summary>A value with most characters hidden: its first character, its length, and for emails the domain's first character.</summary>
    internal static string Mask(string value)
    {
        if (value.Length == 0)
        {
            return "(empty)";
        }
        var at = value.IndexOf('@', StringComparison.Ordinal);
        return at > 0 && at + 1 < value.Length
            ? $"{value[0]}***@{value[at + 1]}*** ({value.Length} chars)"
            : $"{value[0]}*** ({value.Length} chars)";
    }
}
