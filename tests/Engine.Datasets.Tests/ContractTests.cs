using Engine.Storage;

namespace Engine.Datasets.Tests;

/// <summary>DuckDB reads what the generator writes, with the contract's column names and types and the reported counts.</summary>
public sealed class ContractTests(GeneratedData data)
{
    [Theory]
    [InlineData(GeneratedDatasets.EventsFolder)]
    [InlineData(GeneratedDatasets.ProfilesFolder)]
    [InlineData(GeneratedDatasets.ConsentFolder)]
    [InlineData(GeneratedDatasets.TruthFolder)]
    public void Row_counts_match_the_summary(string dataset)
    {
        var expected = dataset switch
        {
            GeneratedDatasets.EventsFolder => data.Summary.Events,
            GeneratedDatasets.ProfilesFolder => data.Summary.ProfileRows,
            GeneratedDatasets.ConsentFolder => data.Summary.ConsentRows,
            _ => data.Summary.TruthRows,
        };
        Assert.True(expected > 0);
        Assert.Equal(expected, data.Scalar($"SELECT count(*) FROM {dataset}"));
    }

    [Theory]
    [InlineData(GeneratedDatasets.EventsFolder)]
    [InlineData(GeneratedDatasets.ProfilesFolder)]
    [InlineData(GeneratedDatasets.ConsentFolder)]
    [InlineData(GeneratedDatasets.TruthFolder)]
    public void Columns_match_the_declared_schema(string dataset)
    {
        var schema = dataset switch
        {
            GeneratedDatasets.EventsFolder => GeneratedDatasets.Events,
            GeneratedDatasets.ProfilesFolder => GeneratedDatasets.Profiles,
            GeneratedDatasets.ConsentFolder => GeneratedDatasets.Consent,
            _ => GeneratedDatasets.Truth,
        };
        var columns = data.Rows($"DESCRIBE {dataset}");
        Assert.Equal(schema.Columns.Count, columns.Count);
        for (var i = 0; i < columns.Count; i++)
        {
            Assert.Equal(schema.Columns[i].Name, (string)columns[i][0]!);
            var expected = schema.Columns[i].Type switch
            {
                ColumnType.String => "VARCHAR",
                ColumnType.Int64 => "BIGINT",
                ColumnType.Double => "DOUBLE",
                ColumnType.Timestamp => "TIMESTAMP WITH TIME ZONE",
                var other => other.ToString(),
            };
            Assert.Equal(expected, (string)columns[i][1]!);
        }
    }

    [Fact]
    public void Contract_columns_are_present()
    {
        string[] events = ["event_id", "ts", "type", "anonymous_id", "user_id", "email", "product_id", "revenue"];
        string[] profiles = ["customer_id", "email", "phone", "loyalty_tier", "subscription_status", "country", "created_at", "updated_at", "first_name", "last_name", "postcode"];
        string[] consent = ["identifier_type", "identifier_value", "channel", "status", "ts"];
        string[] truth = ["identifier_type", "identifier_value", "person_id", "linkable_id", "kind"];
        foreach (var (schema, names) in new[] { (GeneratedDatasets.Events, events), (GeneratedDatasets.Profiles, profiles), (GeneratedDatasets.Consent, consent), (GeneratedDatasets.Truth, truth) })
        {
            foreach (var name in names)
            {
                Assert.NotNull(schema.Find(name));
            }
        }
        Assert.Equal(ColumnType.Timestamp, GeneratedDatasets.Events.Find("ts")!.Type);
        Assert.Equal(ColumnType.Int64, GeneratedDatasets.Truth.Find("person_id")!.Type);
        Assert.Equal(ColumnType.Double, GeneratedDatasets.Events.Find("revenue")!.Type);
    }

    [Fact]
    public void Required_columns_have_no_nulls_and_event_ids_are_unique()
    {
        Assert.Equal(0, data.Scalar("SELECT count(*) FROM events WHERE event_id IS NULL OR ts IS NULL OR type IS NULL"));
        Assert.Equal(data.Summary.Events, data.Scalar("SELECT count(DISTINCT event_id) FROM events"));
        Assert.Equal(0, data.Scalar("SELECT count(*) FROM profiles WHERE customer_id IS NULL OR updated_at IS NULL OR created_at > updated_at"));
        Assert.Equal(0, data.Scalar("SELECT count(*) FROM consent WHERE identifier_type IS NULL OR channel IS NULL OR status NOT IN ('granted', 'revoked') OR ts IS NULL"));
        Assert.Equal(0, data.Scalar("SELECT count(*) FROM truth WHERE identifier_value IS NULL OR identifier_value = '' OR kind NOT IN ('person', 'bot', 'shared', 'junk')"));
    }

    [Fact]
    public void Timestamps_lie_in_the_window()
    {
        var options = GeneratedData.Options;
        var start = options.AsOf.AddDays(-options.Days).ToString("yyyy-MM-dd HH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture);
        var end = options.AsOf.ToString("yyyy-MM-dd HH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(0, data.Scalar($"SELECT count(*) FROM events WHERE ts < TIMESTAMPTZ '{start}' OR ts >= TIMESTAMPTZ '{end}'"));
        Assert.Equal(0, data.Scalar($"SELECT count(*) FROM profiles WHERE updated_at >= TIMESTAMPTZ '{end}'"));
        Assert.Equal(0, data.Scalar($"SELECT count(*) FROM consent WHERE ts >= TIMESTAMPTZ '{end}'"));
    }
}
