using Apache.Arrow;
using Apache.Arrow.Types;
using Engine.Storage;

namespace Engine.TestKit;

/// <summary>Small hand-built datasets for behaviour tests: a few rows of events with chosen columns and nulls.</summary>
public static class SmallDatasets
{
    /// <summary>The columns <see cref="WriteEventsAsync"/> writes.</summary>
    public static readonly string EventsSourceYaml = """
        name: events
        location: data/events
        format: parquet
        timestamp: ts
        columns:
          event_id: { type: string, required: true }
          ts: { type: timestamp, required: true }
          type: string
          email: string
          revenue: double
        identifiers:
          email: email

        """;

    /// <summary>
    /// Writes <paramref name="rows"/> events to <paramref name="directory"/> as a Parquet dataset. Row i has
    /// event_id "e{i}", ts 2026-01-01 + i minutes, and a null email on every third row.
    /// <paramref name="nullEventIdAt"/> puts a null event_id at that row; <paramref name="revenueAsString"/> writes
    /// revenue as text (a type mismatch); <paramref name="dropEmail"/> leaves the email column out.
    /// </summary>
    public static async Task WriteEventsAsync(string directory, int rows, int? nullEventIdAt = null, bool revenueAsString = false, bool dropEmail = false, long rowGroupRows = 1024 * 1024)
    {
        var ids = new StringArray.Builder();
        var ts = new TimestampArray.Builder(new TimestampType(TimeUnit.Microsecond, "UTC"));
        var types = new StringArray.Builder();
        var emails = new StringArray.Builder();
        var revenue = new DoubleArray.Builder();
        var revenueText = new StringArray.Builder();
        var start = new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
        for (var i = 0; i < rows; i++)
        {
            if (i == nullEventIdAt)
            {
                ids.AppendNull();
            }
            else
            {
                ids.Append($"e{i}");
            }
            ts.Append(start.AddMinutes(i));
            types.Append(i % 5 == 0 ? "order_completed" : "page_view");
            if (i % 3 == 0)
            {
                emails.AppendNull();
            }
            else
            {
                emails.Append($"person{i}@example.com");
            }
            revenue.Append(i % 5 == 0 ? 10.5 * i : 0);
            revenueText.Append((10.5 * i).ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        var fields = new List<Field>
        {
            new("event_id", StringType.Default, true),
            new("ts", new TimestampType(TimeUnit.Microsecond, "UTC"), true),
            new("type", StringType.Default, true),
        };
        var arrays = new List<IArrowArray> { ids.Build(), ts.Build(), types.Build() };
        if (!dropEmail)
        {
            fields.Add(new Field("email", StringType.Default, true));
            arrays.Add(emails.Build());
        }
        fields.Add(new Field("revenue", revenueAsString ? StringType.Default : DoubleType.Default, true));
        arrays.Add(revenueAsString ? revenueText.Build() : revenue.Build());
        var schema = new Schema(fields, null);
        using var batch = new RecordBatch(schema, arrays, rows);
        var location = new StorageLocation(new LocalObjectStore(directory), "");
        await using var writer = await ParquetDatasetWriter.CreateAsync(location, schema, new ParquetWriteOptions { RowGroupRows = rowGroupRows });
        writer.Write(batch);
        await writer.CommitAsync();
    }
}
