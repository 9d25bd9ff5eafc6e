using Apache.Arrow;
using Apache.Arrow.Types;
using Engine.Storage;
using Engine.TestKit;

namespace Engine.Tests.Storage;

/// <summary>Which string columns come back as Arrow dictionaries (DictionaryReading.WhenEncoded) and which as plain strings.</summary>
public class DictionaryReadingTests
{
    private const int Rows = 300_000;

    // low: 3 distinct values, dictionary-encoded. high_dict: all distinct with dictionary encoding on, so the writer
    // falls back to plain pages once its dictionary page is full. high_plain: all distinct, written plain.
    private static async Task<StorageLocation> WriteAsync(TempDirectory dir)
    {
        var low = new StringArray.Builder();
        var highDict = new StringArray.Builder();
        var highPlain = new StringArray.Builder();
        for (var i = 0; i < Rows; i++)
        {
            low.Append((i % 3) switch { 0 => "page_view", 1 => "add_to_cart", _ => "order_completed" });
            highDict.Append($"id-{i:D10}-{i * 7919 % 1000003}");
            highPlain.Append($"other-{i:D10}");
        }
        var schema = new Schema([new Field("low", StringType.Default, true), new Field("high_dict", StringType.Default, true), new Field("high_plain", StringType.Default, true)], null);
        using var batch = new RecordBatch(schema, [low.Build(), highDict.Build(), highPlain.Build()], Rows);
        var location = new StorageLocation(new LocalObjectStore(dir.Path), "data");
        await using var writer = await ParquetDatasetWriter.CreateAsync(location, schema, new ParquetWriteOptions { PlainColumns = new HashSet<string> { "high_plain" } });
        writer.Write(batch);
        await writer.CommitAsync();
        return location;
    }

    [Fact]
    public async Task Only_columns_that_stayed_dictionary_encoded_are_read_as_dictionaries()
    {
        using var dir = new TempDirectory("dict");
        var location = await WriteAsync(dir);
        var dataset = await Dataset.OpenAsync(location, cancellationToken: TestContext.Current.CancellationToken);
        using var file = ParquetDataFile.Open(location.Store, dataset.Files[0].Key);
        var batch = file.ReadRowGroup(0, file.ResolveColumns(["low", "high_dict", "high_plain"])).First();
        var low = Assert.IsType<DictionaryArray>(batch.Column(0));
        Assert.Equal(3, low.Dictionary.Length);
        Assert.Equal("order_completed", ((StringArray)low.Dictionary).GetString(((Int32Array)low.Indices).GetValue(2)!.Value));
        Assert.IsType<StringArray>(batch.Column(1)); // fell back to plain pages: a dictionary would be rebuilt row by row
        Assert.IsType<StringArray>(batch.Column(2));
    }

    [Fact]
    public async Task Never_reads_every_string_column_as_plain_strings()
    {
        using var dir = new TempDirectory("dict");
        var location = await WriteAsync(dir);
        var dataset = await Dataset.OpenAsync(location, cancellationToken: TestContext.Current.CancellationToken);
        using var file = ParquetDataFile.Open(location.Store, dataset.Files[0].Key, ParquetReadOptions.Default with { Dictionaries = DictionaryReading.Never });
        var batch = file.ReadRowGroup(0, file.ResolveColumns(["low"])).First();
        var strings = Assert.IsType<StringArray>(batch.Column(0));
        Assert.Equal("add_to_cart", strings.GetString(1));
    }
}
