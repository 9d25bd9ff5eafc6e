using System.Diagnostics;
using Engine.Datasets;
using Engine.Identity;
using Engine.Storage;

namespace Engine.Benchmarks.Identity;

/// <summary>What the engine side of the identity scale run measured.</summary>
internal sealed class EngineIdentityResult
{
    public double ReadHashSeconds { get; set; }
    public double DedupSeconds { get; set; }
    public double StitchSeconds { get; set; }
    public double TotalSeconds => ReadHashSeconds + DedupSeconds + StitchSeconds;

    /// <summary>Source rows read (events and profiles).</summary>
    public long Rows { get; set; }
    public long Identifiers { get; set; }

    /// <summary>Star edges added by the builder, repeats included.</summary>
    public long RawEdges { get; set; }

    /// <summary>Distinct undirected edges stitched.</summary>
    public long Edges { get; set; }
    public long Clusters { get; set; }
    public long Refused { get; set; }

    /// <summary>The builder (its table maps identifier keys to ids) and the stitch result, for the partition check.</summary>
    public IdentityGraphBuilder? Builder { get; set; }
    public StitchResult? Stitch { get; set; }
}

/// <summary>
/// The engine's identity core on a generated data folder, for the partition check against DuckDB (IdentityPeerCheck): the events' user_id / email / anonymous_id and the
/// profiles' customer_id / email / phone read with <see cref="DatasetScan"/> straight into an
/// <see cref="IdentityGraphBuilder"/> (canonicalise, hash, dense ids, star edges; no .NET object per row), then the
/// edges deduplicated and stitched. Three timed parts: read+hash, dedup, stitch.
/// </summary>
internal static class EngineIdentitySide
{
    /// <param name="dataDir">A folder written by <c>engine generate</c>.</param>
    /// <param name="rules">Identity rules with (at least) the types customer_id, email, phone, anonymous_id.</param>
    /// <param name="includePhone">Read profiles.phone as the phone type.</param>
    /// <param name="keepGraph">Keep the builder and stitch result on the result (for the partition check).</param>
    public static EngineIdentityResult Run(string dataDir, IdentityRules rules, bool includePhone, bool keepGraph, Action<string>? log = null)
    {
        var result = new EngineIdentityResult();
        var customer = Find(rules, "customer_id");
        var email = Find(rules, "email");
        var phone = Find(rules, "phone");
        var anonymous = Find(rules, "anonymous_id");
        var store = new LocalObjectStore(dataDir);
        var events = Dataset.OpenAsync(new StorageLocation(store, GeneratedDatasets.EventsFolder)).GetAwaiter().GetResult();
        var profiles = Dataset.OpenAsync(new StorageLocation(store, GeneratedDatasets.ProfilesFolder)).GetAwaiter().GetResult();

        var builder = new IdentityGraphBuilder(rules);
        var gate = new Lock();
        var clock = Stopwatch.StartNew();

        void Scan(Dataset dataset, ColumnSpec[] columns, (int Column, IdentifierType Type)[] identifiers)
        {
            DatasetScan.Run(dataset, columns, () => 0, (_, scan) =>
            {
                lock (gate)
                {
                    var before = builder.Edges.Count;
                    builder.AddBatch(scan.Batch, identifiers);
                    result.RawEdges += builder.Edges.Count - before;
                    result.Rows += scan.Batch.Length;
                }
            }, ScanOptions.Default with { Parallelism = 1 });
        }

        Scan(events, [Column(GeneratedDatasets.Events, "user_id"), Column(GeneratedDatasets.Events, "email"), Column(GeneratedDatasets.Events, "anonymous_id")],
            [(0, customer), (1, email), (2, anonymous)]);
        if (includePhone)
        {
            Scan(profiles, [Column(GeneratedDatasets.Profiles, "customer_id"), Column(GeneratedDatasets.Profiles, "email"), Column(GeneratedDatasets.Profiles, "phone")],
                [(0, customer), (1, email), (2, phone)]);
        }
        else
        {
            Scan(profiles, [Column(GeneratedDatasets.Profiles, "customer_id"), Column(GeneratedDatasets.Profiles, "email")],
                [(0, customer), (1, email)]);
        }
        result.ReadHashSeconds = clock.Elapsed.TotalSeconds;
        result.Identifiers = builder.Table.Count;
        log?.Invoke($"engine read+hash      {result.ReadHashSeconds,8:F2} s  {result.Rows:N0} rows, {result.Identifiers:N0} identifiers, {result.RawEdges:N0} star edges");

        clock.Restart();
        var graph = builder.Build();
        result.DedupSeconds = clock.Elapsed.TotalSeconds;
        result.Edges = graph.EdgeCount;
        log?.Invoke($"engine dedup          {result.DedupSeconds,8:F2} s  {result.Edges:N0} distinct edges");

        clock.Restart();
        var stitch = Stitcher.Run(graph.NodeTypes, graph.Edges, builder.Policies());
        result.StitchSeconds = clock.Elapsed.TotalSeconds;
        result.Clusters = stitch.ClusterCount;
        result.Refused = stitch.Refused.Length;
        log?.Invoke($"engine stitch         {result.StitchSeconds,8:F2} s  {result.Clusters:N0} clusters, {result.Refused:N0} edges refused by limits");
        if (keepGraph)
        {
            result.Builder = builder;
            result.Stitch = stitch;
        }
        return result;
    }

    private static IdentifierType Find(IdentityRules rules, string name) =>
        rules.Find(name) ?? throw new ArgumentException($"the identity rules define no '{name}' type", nameof(rules));

    private static ColumnSpec Column(DataSchema schema, string name) =>
        schema.Find(name) ?? throw new InvalidOperationException($"the generated schema has no column '{name}'");
}
