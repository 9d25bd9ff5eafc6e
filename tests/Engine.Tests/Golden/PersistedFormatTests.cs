using System.Text;
using Engine.Runs;
using Engine.Storage;

namespace Engine.Tests.Golden;

/// <summary>
/// Golden tests: the files other tools read (DESIGN.md's data contracts) keep their field names and shapes.
/// A change that breaks one of these breaks warehouses, notebooks and connector workers reading the output.
/// </summary>
public class PersistedFormatTests
{
    [Fact]
    public void Dataset_manifest_format_is_frozen()
    {
        var manifest = new DatasetManifest
        {
            Rows = 12,
            Files = [new DatasetManifestFile { Path = "country=DE/part-00000.parquet", Rows = 12, Bytes = 3456 }],
        };
        const string expected = """
            {
              "format": "parquet",
              "files": [
                {
                  "path": "country=DE/part-00000.parquet",
                  "rows": 12,
                  "bytes": 3456
                }
              ],
              "rows": 12
            }
            """;
        Assert.Equal(expected, Encoding.UTF8.GetString(manifest.ToUtf8Json()));
        var parsed = DatasetManifest.Parse(Encoding.UTF8.GetBytes(expected), "golden");
        Assert.Equal("country=DE/part-00000.parquet", parsed.Files[0].Path);
    }

    [Fact]
    public void Run_manifest_format_is_frozen()
    {
        var at = new DateTimeOffset(2026, 11, 23, 6, 0, 0, TimeSpan.Zero);
        var manifest = new RunManifest
        {
            RunId = "night-1",
            Workspace = "demo",
            AsOf = at,
            StartedAt = at,
            FinishedAt = at.AddSeconds(2),
            EngineVersion = "1.0.0",
            Inputs =
            [
                new RunInput
                {
                    Source = "events", Location = "/data/events", Format = "parquet", Files = 1, Rows = 10, Bytes = 999,
                    MinTimestamp = at.AddDays(-1), MaxTimestamp = at, NullCounts = new() { ["email"] = 3 },
                },
            ],
            Stages = [new StageRecord { Name = "ingest", StartedAt = at, DurationMs = 1500, RowsIn = 10, RowsOut = 10, Counts = new() { ["files"] = 1 } }],
        };
        const string expected = """
            {
              "run_id": "night-1",
              "workspace": "demo",
              "as_of": "2026-11-23T06:00:00+00:00",
              "status": "succeeded",
              "started_at": "2026-11-23T06:00:00+00:00",
              "finished_at": "2026-11-23T06:00:02+00:00",
              "engine_version": "1.0.0",
              "attempts": 1,
              "inputs": [
                {
                  "source": "events",
                  "location": "/data/events",
                  "format": "parquet",
                  "files": 1,
                  "rows": 10,
                  "bytes": 999,
                  "min_ts": "2026-11-22T06:00:00+00:00",
                  "max_ts": "2026-11-23T06:00:00+00:00",
                  "null_counts": {
                    "email": 3
                  }
                }
              ],
              "stages": [
                {
                  "name": "ingest",
                  "status": "succeeded",
                  "started_at": "2026-11-23T06:00:00+00:00",
                  "duration_ms": 1500,
                  "attempt": 1,
                  "rows_in": 10,
                  "rows_out": 10,
                  "counts": {
                    "files": 1
                  }
                }
              ]
            }
            """;
        Assert.Equal(expected, Encoding.UTF8.GetString(manifest.ToUtf8Json()));
    }

    [Theory]
    [InlineData(RunStatus.Succeeded, "succeeded")]
    [InlineData(RunStatus.Failed, "failed")]
    public void Persisted_status_values_are_frozen(string value, string persisted) => Assert.Equal(persisted, value);
}
