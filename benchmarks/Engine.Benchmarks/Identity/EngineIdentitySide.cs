using Engine.Datasets;
using Engine.Identity;
using Engine.Storage;
using Engine.Workspaces;

namespace Engine.Benchmarks.Identity;

/// <summary>
/// The engine's identity core on a generated data folder, for the partition check against DuckDB
/// (<see cref="IdentityPeerCheck"/>): the events' user_id / email / anonymous_id and the profiles' customer_id / email
/// (/ phone) read with <see cref="IdentityGraphBuilder.FromDataset(Dataset, SourceDefinition, IdentityRules, IdentityGraphBuilder)"/>,
/// then stitched. The builder is kept so the check can look identifiers up by key.
/// </summary>
internal static class EngineIdentitySide
{
    /// <param name="dataDir">A folder written by <c>engine generate</c>.</param>
    /// <param name="rules">Identity rules with (at least) the types customer_id, email, phone, anonymous_id.</param>
    /// <param name="includePhone">Read profiles.phone as the phone type.</param>
    public static (IdentityGraphBuilder Builder, StitchResult Stitch, int Edges) Run(string dataDir, IdentityRules rules, bool includePhone)
    {
        var store = new LocalObjectStore(dataDir);
        var builder = new IdentityGraphBuilder(rules);
        var profileIdentifiers = new Dictionary<string, string> { ["customer_id"] = "customer_id", ["email"] = "email" };
        if (includePhone)
        {
            profileIdentifiers["phone"] = "phone";
        }
        (string Folder, DataSchema Schema, Dictionary<string, string> Identifiers)[] sources =
        [
            (GeneratedDatasets.EventsFolder, GeneratedDatasets.Events, new() { ["user_id"] = "customer_id", ["email"] = "email", ["anonymous_id"] = "anonymous_id" }),
            (GeneratedDatasets.ProfilesFolder, GeneratedDatasets.Profiles, profileIdentifiers),
        ];
        foreach (var (folder, schema, identifiers) in sources)
        {
            var dataset = Dataset.OpenAsync(new StorageLocation(store, folder)).GetAwaiter().GetResult();
            var source = new SourceDefinition { Name = folder, File = folder, Location = folder, Schema = schema, Identifiers = identifiers };
            IdentityGraphBuilder.FromDataset(dataset, source, rules, builder);
        }
        var graph = builder.Build();
        return (builder, Stitcher.Run(graph.NodeTypes, graph.Edges, builder.Policies()), graph.EdgeCount);
    }
}
