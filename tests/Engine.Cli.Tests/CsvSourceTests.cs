using System.Text.Json;
using Engine.TestKit;

namespace Engine.Cli.Tests;

/// <summary>CSV sources in a workspace: a real public CRM-style export, and a bad row named by its line.</summary>
public class CsvSourceTests
{
    private static string RealData(string relative)
    {
        var path = Path.Combine(Path.GetDirectoryName(S3Server.RepositoryRoot())!, "shared", "datasets", "real", relative);
        if (!File.Exists(path))
        {
            Assert.Skip($"the shared data sets are not beside this checkout ({path})");
        }
        return path;
    }

    private const string TelcoSource = """
        name: telco
        description: "IBM Telco customers (CSV export)"
        location: LOCATION
        format: csv
        columns:
          customerID: { type: string, required: true }
          gender: string
          SeniorCitizen: int64
          tenure: int64
          Contract: string
          MonthlyCharges: double
          TotalCharges: double
          Churn: string
        identifiers:
          customerID: customer_id

        """;

    [Fact]
    public async Task A_real_csv_export_is_ingested_with_its_blanks_as_nulls()
    {
        var telco = RealData("telco-customer-churn/WA_Fn-UseC_-Telco-Customer-Churn.csv");
        using var ws = new SmallWorkspace(TelcoSource.Replace("LOCATION", telco, StringComparison.Ordinal));
        File.Delete(ws.Combine("sources", "events.yaml"));
        File.WriteAllText(ws.Combine("sources", "telco.yaml"), TelcoSource.Replace("LOCATION", telco, StringComparison.Ordinal));

        var (code, _, error) = await CliHarness.RunAsync("run", "--workspace", ws.Path, "--run-id", "csv");
        Assert.True(code == 0, error);
        var input = JsonDocument.Parse(await File.ReadAllBytesAsync(ws.Manifest("csv"), TestContext.Current.CancellationToken)).RootElement.GetProperty("inputs")[0];
        Assert.Equal("csv", input.GetProperty("format").GetString());
        Assert.Equal(7043, input.GetProperty("rows").GetInt64());
        // The 11 new customers have a blank TotalCharges: null, as DuckDB's read_csv reads them.
        Assert.Equal(11, input.GetProperty("null_counts").GetProperty("TotalCharges").GetInt64());
    }

    [Fact]
    public async Task A_bad_csv_value_is_named_by_file_line_and_column()
    {
        using var ws = new SmallWorkspace("""
            name: crm
            location: data/crm
            format: csv
            columns:
              customer_id: { type: string, required: true }
              spend: double
              joined: timestamp

            """);
        Directory.CreateDirectory(ws.Combine("data", "crm"));
        var file = ws.Combine("data", "crm", "export.csv");
        await File.WriteAllTextAsync(file, "customer_id,spend,joined\nc1,10.5,2026-01-01T00:00:00Z\n\"c2\",\"1,0\",2026-01-02\nc3,abc,2026-01-03\n", TestContext.Current.CancellationToken);

        var (code, _, error) = await CliHarness.RunAsync("run", "--workspace", ws.Path);
        Assert.Equal(1, code);
        var line = Assert.Single(error.Split('\n'), l => l.StartsWith("error: ", StringComparison.Ordinal));
        Assert.StartsWith($"error: {file}:3: column 'spend': '1,0' is not a valid double", line, StringComparison.Ordinal);
    }
}
