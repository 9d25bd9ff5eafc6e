using System.Globalization;
using Engine.Ingest;
using Engine.Storage;
using Engine.Tests.Storage;
using Engine.Workspaces;
using Microsoft.Extensions.Logging.Abstractions;

namespace Engine.Tests.Workspaces;

/// <summary>
/// The example workspaces over real public data (datasets/workspaces/): each loads and validates, its locations reach
/// the shared files beside the repository, and ingest reads every source completely, with the row and null counts
/// DuckDB's own CSV reader finds in the same file. Skipped where the shared folder is missing.
/// </summary>
public sealed class RealDataWorkspaceTests
{
    private static Workspace LoadExample(string relative)
    {
        SharedData.RequireRealDatasets();
        var root = SharedData.RepositoryRoot();
        Assert.NotNull(root);
        return WorkspaceLoader.Load(Path.Combine(root.FullName, "datasets", "workspaces", relative));
    }

    private static async Task<IngestResult> Ingest(Workspace workspace)
    {
        using var storage = new StorageResolver();
        return await new IngestStage(storage, NullLogger.Instance).RunAsync(workspace, cancellationToken: TestContext.Current.CancellationToken);
    }

    /// <summary>DuckDB's reader over a source's file, told the same header and skipped lines, every column as text.</summary>
    private static string DuckCsv(Workspace workspace, SourceDefinition source)
    {
        var path = Path.GetFullPath(source.Location, workspace.Directory).Replace("'", "''", StringComparison.Ordinal);
        var csv = source.Csv ?? CsvReadOptions.Default;
        var names = string.Join(", ", source.Schema.Columns.Select(c => $"'{c.Name}'"));
        return csv.HasHeader
            ? $"read_csv('{path}', header=true, skip={csv.SkipLines}, all_varchar=true)"
            : $"read_csv('{path}', header=false, skip={csv.SkipLines}, all_varchar=true, names=[{names}])";
    }

    /// <summary>Rows and per-column nulls as ingest counted them, against DuckDB's count of the same file.</summary>
    private static void AssertMatchesDuckDb(Workspace workspace, IngestResult result)
    {
        Assert.Equal(workspace.Sources.Select(s => s.Name), result.Sources.Select(s => s.Name));
        foreach (var (source, stats) in workspace.Sources.Zip(result.Sources))
        {
            // One pass over the file: the row count, then each column's nulls.
            var columns = source.Schema.Columns;
            var counts = string.Concat(columns.Select(c => $", count(*) - count(\"{c.Name}\")"));
            var duck = ((string)SharedData.DuckScalar($"SELECT concat_ws(',', count(*){counts}) FROM {DuckCsv(workspace, source)}")!)
                .Split(',').Select(v => long.Parse(v, CultureInfo.InvariantCulture)).ToArray();
            Assert.Equal(duck[0], stats.Rows);
            for (var c = 0; c < columns.Count; c++)
            {
                var name = columns[c].Name;
                Assert.True(duck[c + 1] == stats.NullCounts[name], $"{source.Name}.{name}: DuckDB counts {duck[c + 1]} nulls, ingest {stats.NullCounts[name]}");
            }
        }
    }

    [Fact]
    public async Task Olist_maps_customers_and_orders_with_two_identifier_types()
    {
        var workspace = LoadExample("olist");
        Assert.Equal(["customer_unique_id", "customer_id"], workspace.Identity.Types.Select(t => t.Name));
        Assert.Equal([1, null], workspace.Identity.Types.Select(t => t.Limit));
        var customers = workspace.Sources.Single(s => s.Name == "customers");
        Assert.Equal("customer_unique_id", customers.Identifiers["customer_unique_id"]);
        Assert.Equal("customer_id", customers.Identifiers["customer_id"]);
        Assert.Equal("customer_id", workspace.Sources.Single(s => s.Name == "orders").Identifiers["customer_id"]);

        var result = await Ingest(workspace);
        AssertMatchesDuckDb(workspace, result);
        // SOURCE.md: 8,135 orders, one customers row per order's customer_id.
        Assert.Equal([8135L, 8135L], result.Sources.Select(s => s.Rows));
        var orders = result.Sources.Single(s => s.Name == "orders");
        var path = Path.GetFullPath(workspace.Sources.Single(s => s.Name == "orders").Location, workspace.Directory);
        var range = $"FROM read_csv('{path}', header=true, all_varchar=true)";
        Assert.Equal(
            DateTime.SpecifyKind((DateTime)SharedData.DuckScalar($"SELECT min(order_purchase_timestamp::TIMESTAMP) {range}")!, DateTimeKind.Utc),
            orders.MinTimestamp!.Value.UtcDateTime);
        Assert.Equal(
            DateTime.SpecifyKind((DateTime)SharedData.DuckScalar($"SELECT max(order_purchase_timestamp::TIMESTAMP) {range}")!, DateTimeKind.Utc),
            orders.MaxTimestamp!.Value.UtcDateTime);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(20)]
    [InlineData(40)]
    public async Task Ncvoter_level_has_five_parties_each_with_its_own_voter_type_and_the_shared_composite(int level)
    {
        var workspace = LoadExample($"ncvoter/ocp{level}");
        Assert.Equal(["party_0", "party_1", "party_2", "party_3", "party_4"], workspace.Sources.Select(s => s.Name));
        Assert.Equal(["voter_0", "voter_1", "voter_2", "voter_3", "voter_4", "name_postcode"], workspace.Identity.Types.Select(t => t.Name));
        for (var p = 0; p < 5; p++)
        {
            var source = workspace.Sources[p];
            Assert.EndsWith($"_ocp_{level}_myp_{p}_nump_5.csv", source.Location, StringComparison.Ordinal);
            Assert.Equal($"voter_{p}", source.Identifiers["recid"]);
            Assert.Equal(["givenname", "surname", "postcode"], source.CompositeIdentifiers["name_postcode"]);
            Assert.Equal(["recid", "givenname", "surname", "suburb", "postcode"], source.Schema.Columns.Select(c => c.Name));
            // Only the ocp_0 files open with the wrong 19-column header line.
            Assert.Equal(level == 0 ? 1 : 0, source.Csv?.SkipLines ?? 0);
            Assert.Equal(level != 0, source.Csv?.HasHeader ?? true);
        }

        var result = await Ingest(workspace);
        AssertMatchesDuckDb(workspace, result);
        Assert.All(result.Sources, s => Assert.Equal(5000, s.Rows));
        // One party-4 record has neither suburb nor postcode, at every level.
        Assert.Equal(1, result.Sources[4].NullCounts["postcode"]);

        // What identity reads: the identifier columns only, suburb left out, so a header-less file's fields must be
        // found by their declared positions, not by the projection's.
        using var storage = new StorageResolver();
        var party4 = workspace.Sources[4];
        var dataset = await Dataset.OpenAsync(storage.Resolve(party4.Location, workspace.Directory), party4.Format, TestContext.Current.CancellationToken);
        var columns = new[] { "recid", "givenname", "surname", "postcode" }.Select(n => party4.Schema.Find(n)!).ToArray();
        var counts = DatasetScan.Run(dataset, columns, () => new long[3], (seen, scan) =>
        {
            var recids = (Apache.Arrow.StringArray)scan.Batch.Column(0);
            var postcodes = (Apache.Arrow.StringArray)scan.Batch.Column(3);
            for (var i = 0; i < scan.Batch.Length; i++)
            {
                seen[0]++;
                seen[1] += recids.GetString(i) is { Length: 8 } recid && recid.All(char.IsAsciiDigit) ? 1 : 0;
                seen[2] += postcodes.IsNull(i) ? 1 : 0;
            }
        }, party4.ScanOptions(1), TestContext.Current.CancellationToken).Single();
        Assert.Equal([5000L, 5000L, 1L], counts);
    }
}
