using System.Globalization;
using System.Numerics;
using Apache.Arrow;
using Engine.Storage;
using Engine.TestKit;

namespace Engine.Tests.Storage;

/// <summary>
/// The public data sets in ../shared/datasets/real read with a declared schema and checked against DuckDB's own CSV
/// reader over the same file: row counts, sums, null counts and text lengths.
/// </summary>
public sealed class CsvRealDataTests
{
    private static (LocalObjectStore Store, string Key, string Path) Real(string relative)
    {
        var root = SharedData.RequireRealDatasets();
        var path = Path.Combine(root, relative);
        Assert.True(File.Exists(path), $"{path} is missing from the shared data sets");
        return (new LocalObjectStore(root), relative, path);
    }

    private static double Sum(List<RecordBatch> batches, int column)
    {
        var sum = 0.0;
        foreach (var value in CsvRead.Column(batches, column))
        {
            sum += value switch
            {
                null => 0,
                long l => l,
                double d => d,
                bool b => b ? 1 : 0,
                _ => throw new NotSupportedException(),
            };
        }
        return sum;
    }

    private static long Nulls(List<RecordBatch> batches, int column) => batches.Sum(b => (long)b.Column(column).NullCount);

    private static long Rows(List<RecordBatch> batches) => batches.Sum(b => (long)b.Length);

    /// <summary>UTF-8 bytes of every non-null value of a string column (DuckDB's strlen).</summary>
    private static long Utf8Bytes(List<RecordBatch> batches, int column)
    {
        long total = 0;
        foreach (var batch in batches)
        {
            var array = (StringArray)batch.Column(column);
            for (var i = 0; i < array.Length; i++)
            {
                total += array.GetBytes(i).Length;
            }
        }
        return total;
    }

    private static BigInteger SumMicros(List<RecordBatch> batches, int column)
    {
        BigInteger total = 0;
        foreach (var value in CsvRead.Column(batches, column))
        {
            total += value is long micros ? micros : 0;
        }
        return total;
    }

    private static void AssertClose(double expected, double actual)
        => Assert.True(Math.Abs(expected - actual) <= 1e-9 * Math.Max(1, Math.Abs(expected)), $"expected {expected}, got {actual}");

    [Fact]
    public void Telco_churn_matches_duckdb_with_blank_total_charges_as_nulls()
    {
        var (store, key, path) = Real("telco-customer-churn/WA_Fn-UseC_-Telco-Customer-Churn.csv");
        var schema = new DataSchema([
            new("customerID", ColumnType.String, Required: true),
            new("SeniorCitizen", ColumnType.Boolean),
            new("Partner", ColumnType.Boolean),
            new("tenure", ColumnType.Int64),
            new("MonthlyCharges", ColumnType.Double),
            new("TotalCharges", ColumnType.Double),
            new("Churn", ColumnType.Boolean),
        ]);
        var batches = CsvRead.Batches(store, key, schema);
        var csv = SharedData.ReadCsvAllText(path);

        Assert.Equal(7043, Rows(batches));
        Assert.Equal(SharedData.DuckLong($"SELECT count(*) FROM {csv}"), Rows(batches));
        Assert.Equal(SharedData.DuckLong($"SELECT sum(strlen(customerID)) FROM {csv}"), Utf8Bytes(batches, 0));
        Assert.Equal(SharedData.DuckLong($"SELECT count_if(SeniorCitizen = '1') FROM {csv}"), (long)Sum(batches, 1));
        Assert.Equal(SharedData.DuckLong($"SELECT count_if(Partner = 'Yes') FROM {csv}"), (long)Sum(batches, 2));
        Assert.Equal(SharedData.DuckLong($"SELECT sum(tenure::BIGINT) FROM {csv}"), (long)Sum(batches, 3));
        AssertClose(SharedData.DuckDouble($"SELECT sum(MonthlyCharges::DOUBLE) FROM {csv}"), Sum(batches, 4));
        AssertClose(SharedData.DuckDouble($"SELECT sum(TRY_CAST(TotalCharges AS DOUBLE)) FROM {csv}"), Sum(batches, 5));
        // The blanks are a single space in this file; DuckDB's cast rejects them, the declared double reads them as null.
        Assert.Equal(11, Nulls(batches, 5));
        Assert.Equal(SharedData.DuckLong($"SELECT count_if(TRY_CAST(TotalCharges AS DOUBLE) IS NULL) FROM {csv}"), Nulls(batches, 5));
        Assert.Equal(SharedData.DuckLong($"SELECT count_if(Churn = 'Yes') FROM {csv}"), (long)Sum(batches, 6));
        Assert.Equal(0, Nulls(batches, 4));
    }

    [Fact]
    public void Bank_churn_modelling_matches_duckdb()
    {
        var (store, key, path) = Real("bank-churn-modelling/Churn_Modelling.csv");
        var schema = new DataSchema([
            new("RowNumber", ColumnType.Int64, Required: true),
            new("CustomerId", ColumnType.Int64, Required: true),
            new("Surname", ColumnType.String),
            new("CreditScore", ColumnType.Int64),
            new("Geography", ColumnType.String),
            new("Age", ColumnType.Int64),
            new("Balance", ColumnType.Double),
            new("HasCrCard", ColumnType.Boolean),
            new("IsActiveMember", ColumnType.Boolean),
            new("EstimatedSalary", ColumnType.Double),
            new("Exited", ColumnType.Boolean),
        ]);
        var batches = CsvRead.Batches(store, key, schema, new CsvReadOptions { BatchSize = 4096 });
        var csv = SharedData.ReadCsvAllText(path);

        Assert.Equal(10_000, Rows(batches));
        Assert.Equal(3, batches.Count);
        Assert.Equal(SharedData.DuckLong($"SELECT count(*) FROM {csv}"), Rows(batches));
        Assert.Equal(SharedData.DuckLong($"SELECT sum(RowNumber::BIGINT) FROM {csv}"), (long)Sum(batches, 0));
        Assert.Equal(SharedData.DuckLong($"SELECT sum(CustomerId::BIGINT) FROM {csv}"), (long)Sum(batches, 1));
        Assert.Equal(SharedData.DuckLong($"SELECT sum(strlen(Surname)) FROM {csv}"), Utf8Bytes(batches, 2));
        Assert.Equal(SharedData.DuckLong($"SELECT sum(CreditScore::BIGINT) FROM {csv}"), (long)Sum(batches, 3));
        Assert.Equal(SharedData.DuckLong($"SELECT count_if(Geography = 'France') FROM {csv}"),
            CsvRead.Column(batches, 4).Count(v => (string?)v == "France"));
        Assert.Equal(SharedData.DuckLong($"SELECT sum(Age::BIGINT) FROM {csv}"), (long)Sum(batches, 5));
        AssertClose(SharedData.DuckDouble($"SELECT sum(Balance::DOUBLE) FROM {csv}"), Sum(batches, 6));
        Assert.Equal(SharedData.DuckLong($"SELECT count_if(HasCrCard = '1') FROM {csv}"), (long)Sum(batches, 7));
        Assert.Equal(SharedData.DuckLong($"SELECT count_if(IsActiveMember = '1') FROM {csv}"), (long)Sum(batches, 8));
        AssertClose(SharedData.DuckDouble($"SELECT sum(EstimatedSalary::DOUBLE) FROM {csv}"), Sum(batches, 9));
        Assert.Equal(SharedData.DuckLong($"SELECT count_if(Exited = '1') FROM {csv}"), (long)Sum(batches, 10));
        for (var c = 0; c < schema.Columns.Count; c++)
        {
            Assert.Equal(0, Nulls(batches, c));
        }
    }

    [Fact]
    public void Olist_orders_timestamps_match_duckdb()
    {
        var (store, key, path) = Real("olist-ecommerce-sample/olist_orders_dataset.csv");
        string[] timestamps = ["order_purchase_timestamp", "order_approved_at", "order_delivered_carrier_date", "order_delivered_customer_date", "order_estimated_delivery_date"];
        var columns = new List<ColumnSpec> { new("order_id", ColumnType.String, Required: true), new("customer_id", ColumnType.String, Required: true), new("order_status", ColumnType.String) };
        columns.AddRange(timestamps.Select(t => new ColumnSpec(t, ColumnType.Timestamp)));
        var batches = CsvRead.Batches(store, key, new DataSchema(columns));
        var csv = SharedData.ReadCsvAllText(path);

        Assert.Equal(SharedData.DuckLong($"SELECT count(*) FROM {csv}"), Rows(batches));
        Assert.Equal(8135, Rows(batches));
        Assert.Equal(SharedData.DuckLong($"SELECT count(DISTINCT order_status) FROM {csv}"), CsvRead.Column(batches, 2).Distinct().LongCount());
        for (var i = 0; i < timestamps.Length; i++)
        {
            var column = 3 + i;
            var nulls = SharedData.DuckLong($"SELECT count_if({timestamps[i]} IS NULL) FROM {csv}");
            Assert.Equal(nulls, Nulls(batches, column));
            var sum = (string)SharedData.DuckScalar($"SELECT CAST(sum(epoch_us(CAST({timestamps[i]} AS TIMESTAMP))::HUGEINT) AS VARCHAR) FROM {csv}")!;
            Assert.Equal(BigInteger.Parse(sum, CultureInfo.InvariantCulture), SumMicros(batches, column));
        }
        Assert.True(Nulls(batches, 4) > 0, "order_approved_at has blanks in this sample");
    }

    [Fact]
    public void Olist_reviews_with_multi_line_comments_match_duckdb()
    {
        var (store, key, path) = Real("olist-ecommerce-sample/olist_order_reviews_dataset.csv");
        var schema = new DataSchema([
            new("review_id", ColumnType.String, Required: true),
            new("order_id", ColumnType.String, Required: true),
            new("review_score", ColumnType.Int64, Required: true),
            new("review_comment_title", ColumnType.String),
            new("review_comment_message", ColumnType.String),
            new("review_creation_date", ColumnType.Timestamp),
            new("review_answer_timestamp", ColumnType.Timestamp),
        ]);
        var batches = CsvRead.Batches(store, key, schema, new CsvReadOptions { BatchSize = 1000 });
        var csv = SharedData.ReadCsvAllText(path);

        Assert.Equal(8225, Rows(batches));
        Assert.Equal(SharedData.DuckLong($"SELECT count(*) FROM {csv}"), Rows(batches));
        Assert.Equal(SharedData.DuckLong($"SELECT sum(review_score::BIGINT) FROM {csv}"), (long)Sum(batches, 2));
        Assert.Equal(SharedData.DuckLong($"SELECT count_if(review_comment_message IS NULL) FROM {csv}"), Nulls(batches, 4));
        Assert.Equal(SharedData.DuckLong($"SELECT sum(strlen(review_comment_message)) FROM {csv}"), Utf8Bytes(batches, 4));
        Assert.Equal(SharedData.DuckLong($"SELECT sum(strlen(review_comment_title)) FROM {csv}"), Utf8Bytes(batches, 3));
        Assert.Contains(CsvRead.Column(batches, 4), v => v is string s && s.Contains("\r\n", StringComparison.Ordinal));
    }

    [Fact]
    public void A_bad_value_in_the_last_row_of_a_real_multi_line_file_names_its_physical_line()
    {
        var (_, _, path) = Real("olist-ecommerce-sample/olist_order_reviews_dataset.csv");
        var text = File.ReadAllText(path);
        var lastLineStart = text.LastIndexOf('\n', text.Length - 2) + 1;
        var lastLine = text[lastLineStart..];
        var fields = lastLine.Split(',');
        fields[2] = "five";
        var broken = text[..lastLineStart] + string.Join(',', fields);
        var expectedLine = text[..lastLineStart].Count(c => c == '\n') + 1;
        Assert.Equal(8885, expectedLine);

        using var dir = new TempDirectory("csv-real");
        File.WriteAllText(dir.Combine("reviews.csv"), broken);
        using var store = new LocalObjectStore(dir.Path);
        var schema = new DataSchema([new("review_id", ColumnType.String), new("review_score", ColumnType.Int64)]);
        var e = Assert.Throws<DataException>(() => CsvRead.Batches(store, "reviews.csv", schema));
        Assert.Equal($"{dir.Combine("reviews.csv")}:{expectedLine}: column 'review_score': 'five' is not a valid int64", e.Message);
    }

    [Fact]
    public void Febrl_crlf_file_with_spaced_header_names_matches_duckdb()
    {
        // Header names and values carry a leading space (", given_name"); names match after trimming, numbers parse
        // around the spaces, and string values are kept exactly as written, as DuckDB keeps them.
        var (store, key, path) = Real("febrl/febrl_dataset4a.csv");
        var schema = new DataSchema([
            new("rec_id", ColumnType.String, Required: true),
            new("given_name", ColumnType.String),
            new("postcode", ColumnType.Int64),
            new("soc_sec_id", ColumnType.Int64),
        ]);
        var batches = CsvRead.Batches(store, key, schema);
        var csv = $"read_csv('{path}', header=false, skip=1, all_varchar=true)";

        Assert.Equal(5000, Rows(batches));
        Assert.Equal(SharedData.DuckLong($"SELECT count(*) FROM {csv}"), Rows(batches));
        Assert.Equal(SharedData.DuckLong($"SELECT sum(trim(column07)::BIGINT) FROM {csv}"), (long)Sum(batches, 2));
        Assert.Equal(SharedData.DuckLong($"SELECT sum(trim(column10)::BIGINT) FROM {csv}"), (long)Sum(batches, 3));
        Assert.Equal(SharedData.DuckLong($"SELECT sum(strlen(column01)) FROM {csv}"), Utf8Bytes(batches, 1));
        Assert.Equal(SharedData.DuckLong($"SELECT count_if(column01 IS NULL) FROM {csv}"), Nulls(batches, 1));
    }

    [Fact]
    public void Historical_persons_50k_read_whole_and_match_duckdb()
    {
        var (store, key, path) = Real("splink-person-dedupe/historical_figures_with_errors_50k.csv");
        var schema = new DataSchema([
            new("unique_id", ColumnType.String, Required: true),
            new("cluster", ColumnType.String),
            new("full_name", ColumnType.String),
            new("first_name", ColumnType.String),
            new("surname", ColumnType.String),
            new("dob", ColumnType.String),
            new("birth_place", ColumnType.String),
            new("postcode_fake", ColumnType.String),
            new("gender", ColumnType.String),
            new("occupation", ColumnType.String),
        ]);
        var batches = CsvRead.Batches(store, key, schema);
        var csv = SharedData.ReadCsvAllText(path);

        Assert.Equal(SharedData.DuckLong($"SELECT count(*) FROM {csv}"), Rows(batches));
        for (var c = 0; c < schema.Columns.Count; c++)
        {
            var name = schema.Columns[c].Name;
            Assert.Equal(SharedData.DuckLong($"SELECT count_if({name} IS NULL) FROM {csv}"), Nulls(batches, c));
            Assert.Equal(SharedData.DuckLong($"SELECT coalesce(sum(strlen({name})), 0) FROM {csv}"), Utf8Bytes(batches, c));
        }
    }
}
