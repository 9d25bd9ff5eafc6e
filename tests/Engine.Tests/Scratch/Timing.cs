using System.Diagnostics;
using Engine.Identity;
using Engine.Storage;
namespace Engine.Tests.Scratch;
public sealed class Timing
{
    [Fact]
    public async Task Time()
    {
        if (!Directory.Exists("/tmp/w2/data/events")) return;
        using var storage = new StorageResolver();
        var ds = await Dataset.OpenAsync(storage.Resolve("/tmp/w2/data/events"), DataFormat.Parquet, TestContext.Current.CancellationToken);
        ColumnSpec[] cols = [new("anonymous_id", ColumnType.String), new("user_id", ColumnType.String), new("email", ColumnType.String)];
        var lines = new List<string>();
        foreach (var p in new[] { 1, 2 })
        {
            var clock = Stopwatch.StartNew();
            long rows = 0;
            DatasetScan.Run(ds, cols, () => 0, (_, scan) => Interlocked.Add(ref rows, scan.Batch.Length), ScanOptions.Default with { Parallelism = p }, TestContext.Current.CancellationToken);
            lines.Add($"scan p={p}: {rows} rows {clock.Elapsed.TotalSeconds:F2}s");
        }
        {
            var clock = Stopwatch.StartNew();
            var rules = IdentityRules.Default;
            var b = new IdentityGraphBuilder(rules);
            var src = new Engine.Workspaces.SourceDefinition { Name = "events", File = "x", Location = "/tmp/w2/data/events", Schema = new DataSchema(cols),
                Identifiers = new Dictionary<string, string> { ["anonymous_id"] = "anonymous_id", ["user_id"] = "customer_id", ["email"] = "email" } };
            IdentityGraphBuilder.FromDataset(ds, src, rules, b);
            lines.Add($"builder: {b.Table.Count} ids {b.Edges.Count} edges {clock.Elapsed.TotalSeconds:F2}s");
        }
        {
            var ws = Engine.Workspaces.WorkspaceLoader.Load("/tmp/w2");
            var src = ws.Sources.Single(x => x.Name == "profiles");
            var pds = await Dataset.OpenAsync(storage.Resolve(src.Location, ws.Directory), DataFormat.Parquet, TestContext.Current.CancellationToken);
            var clock = Stopwatch.StartNew();
            var b = new IdentityGraphBuilder(ws.Identity);
            IdentityGraphBuilder.FromDataset(pds, src, ws.Identity, b);
            lines.Add($"profiles builder: {b.Rows} rows {b.Table.Count} ids {clock.Elapsed.TotalSeconds:F2}s");
            var noPhone = new Engine.Workspaces.SourceDefinition { Name = "p", File = "x", Location = src.Location, Schema = src.Schema, Identifiers = new Dictionary<string, string> { ["customer_id"] = "customer_id", ["email"] = "email" } };
            clock.Restart();
            b = new IdentityGraphBuilder(ws.Identity);
            IdentityGraphBuilder.FromDataset(pds, noPhone, ws.Identity, b);
            lines.Add($"profiles without phone/composite: {clock.Elapsed.TotalSeconds:F2}s");
        }
        File.WriteAllLines("/tmp/timing.txt", lines);
    }
}
