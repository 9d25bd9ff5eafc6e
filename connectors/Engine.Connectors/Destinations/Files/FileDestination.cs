using System.Text;
using System.Text.Json;
using Apache.Arrow;
using Apache.Arrow.Types;
using Engine.Connectors.Destinations.Webhook;
using Engine.Storage;
using ParquetSharp;
using ParquetSharp.Arrow;

namespace Engine.Connectors.Destinations.Files;

/// <summary>
/// File export, CSV or Parquet, to the local file system or S3 (<c>settings.path</c>, relative paths from the
/// workspace's output folder). Each batch becomes one part file, <c>&lt;path&gt;/&lt;run_id&gt;/part-&lt;batch_id&gt;.csv</c>,
/// written whole and atomically, so an acknowledged batch is durable and a batch sent again after a restart
/// replaces its own file instead of adding rows. When the run is complete, <c>_delivery.json</c> lists the parts.
/// Columns: <c>key</c>, <c>run_id</c>, <c>segment</c>, <c>profile_id</c>, <c>change</c>, one column per
/// <c>identify_by</c> type (its first value in order), then the mapped fields.
/// </summary>
public sealed class FileDestination : IDestination
{
    private readonly DestinationDefinition _definition;
    private readonly StorageLocation _root;
    private readonly bool _parquet;
    private readonly IReadOnlyList<(string Field, Engine.Storage.ColumnType Type)> _fields;

    public FileDestination(DestinationDefinition definition, StorageLocation root, IReadOnlyList<(string Field, Engine.Storage.ColumnType Type)> fields)
    {
        _definition = definition;
        _root = root;
        _fields = fields;
        _parquet = definition.Setting("format") == "parquet";
    }

    private string Extension => _parquet ? ".parquet" : ".csv";

    public async Task<IReadOnlyList<RecordResult>> SendAsync(DestinationBatch batch, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var location = _root.Child($"{batch.RunId}/part-{batch.BatchId}{Extension}");
        var content = _parquet ? Parquet(batch) : Csv(batch);
        try
        {
            await location.Store.PutAsync(location.Key, content, cancellationToken);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or EngineException)
        {
            throw new DestinationException("write_failed", FailureKind.Transient, $"{location}: {e.Message}", inner: e);
        }
        return [.. batch.Records.Select(r => new RecordResult(r.Key, RecordStatus.Delivered))];
    }

    public async Task CompleteAsync(string runId, CancellationToken cancellationToken)
    {
        var folder = _root.Child(runId);
        var parts = (await folder.Store.ListAsync(folder.Key, cancellationToken))
            .Where(o => Path.GetFileName(o.Key).StartsWith("part-", StringComparison.Ordinal) && o.Key.EndsWith(Extension, StringComparison.Ordinal))
            .Select(o => Path.GetFileName(o.Key)).Order(StringComparer.Ordinal).ToList();
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            writer.WriteStartObject();
            writer.WriteString("run_id", runId);
            writer.WriteString("destination", _definition.Name);
            writer.WriteString("format", _parquet ? "parquet" : "csv");
            writer.WriteStartArray("parts");
            foreach (var part in parts)
            {
                writer.WriteStringValue(part);
            }
            writer.WriteEndArray();
            writer.WriteEndObject();
        }
        var marker = folder.Child("_delivery.json");
        await marker.Store.PutAsync(marker.Key, buffer.ToArray(), cancellationToken);
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private string[] Header()
        => ["key", "run_id", "segment", "profile_id", "change", .. _definition.IdentifyBy, .. _fields.Select(f => f.Field)];

    private static string Change(OutgoingRecord record) => record.Operation == RecordOperation.Add ? Delivery.DeliveryKeys.Entered : Delivery.DeliveryKeys.Exited;

    private static string? Identifier(OutgoingRecord record, string type)
    {
        foreach (var identifier in record.Identifiers)
        {
            if (identifier.Type == type)
            {
                return identifier.Value;
            }
        }
        return null;
    }

    private byte[] Csv(DestinationBatch batch)
    {
        var text = new StringBuilder();
        void Row(IEnumerable<string?> values)
        {
            var first = true;
            foreach (var value in values)
            {
                if (!first)
                {
                    text.Append(',');
                }
                first = false;
                var v = value ?? "";
                // RFC 4180: quote a value holding a comma, quote, line break, or leading/trailing space.
                if (v.AsSpan().IndexOfAny(",\"\r\n") >= 0 || (v.Length > 0 && (char.IsWhiteSpace(v[0]) || char.IsWhiteSpace(v[^1]))))
                {
                    text.Append('"').Append(v.Replace("\"", "\"\"", StringComparison.Ordinal)).Append('"');
                }
                else
                {
                    text.Append(v);
                }
            }
            text.Append("\r\n");
        }
        Row(Header());
        foreach (var record in batch.Records)
        {
            Row([record.Key, batch.RunId, record.Segment, record.ProfileId.ToString(System.Globalization.CultureInfo.InvariantCulture), Change(record),
                .. _definition.IdentifyBy.Select(t => Identifier(record, t)),
                .. _fields.Select(f => JsonValues.Text(record.Fields.GetValueOrDefault(f.Field)))]);
        }
        return System.Text.Encoding.UTF8.GetBytes(text.ToString());
    }

    private byte[] Parquet(DestinationBatch batch)
    {
        var records = batch.Records;
        var schema = new Schema.Builder();
        var arrays = new List<IArrowArray>();
        void Strings(string name, Func<OutgoingRecord, string?> value)
        {
            var builder = new StringArray.Builder();
            foreach (var record in records)
            {
                if (value(record) is { } v)
                {
                    builder.Append(v);
                }
                else
                {
                    builder.AppendNull();
                }
            }
            schema.Field(f => f.Name(name).DataType(StringType.Default).Nullable(true));
            arrays.Add(builder.Build());
        }
        Strings("key", r => r.Key);
        Strings("run_id", _ => batch.RunId);
        Strings("segment", r => r.Segment);
        var ids = new Int64Array.Builder();
        foreach (var record in records)
        {
            ids.Append(record.ProfileId);
        }
        schema.Field(f => f.Name("profile_id").DataType(Int64Type.Default).Nullable(false));
        arrays.Add(ids.Build());
        Strings("change", Change);
        foreach (var type in _definition.IdentifyBy)
        {
            Strings(type, r => Identifier(r, type));
        }
        foreach (var (field, type) in _fields)
        {
            object? Value(OutgoingRecord r) => r.Fields.GetValueOrDefault(field);
            switch (type)
            {
                case Engine.Storage.ColumnType.Int64:
                    var longs = new Int64Array.Builder();
                    foreach (var r in records) { if (Value(r) is long l) longs.Append(l); else longs.AppendNull(); }
                    schema.Field(f => f.Name(field).DataType(Int64Type.Default).Nullable(true));
                    arrays.Add(longs.Build());
                    break;
                case Engine.Storage.ColumnType.Double:
                    var doubles = new DoubleArray.Builder();
                    foreach (var r in records) { if (Value(r) is double d) doubles.Append(d); else doubles.AppendNull(); }
                    schema.Field(f => f.Name(field).DataType(DoubleType.Default).Nullable(true));
                    arrays.Add(doubles.Build());
                    break;
                case Engine.Storage.ColumnType.Boolean:
                    var bools = new BooleanArray.Builder();
                    foreach (var r in records) { if (Value(r) is bool b) bools.Append(b); else bools.AppendNull(); }
                    schema.Field(f => f.Name(field).DataType(BooleanType.Default).Nullable(true));
                    arrays.Add(bools.Build());
                    break;
                case Engine.Storage.ColumnType.Timestamp:
                    var times = new TimestampArray.Builder(new TimestampType(Apache.Arrow.Types.TimeUnit.Microsecond, "UTC"));
                    foreach (var r in records) { if (Value(r) is DateTimeOffset t) times.Append(t); else times.AppendNull(); }
                    schema.Field(f => f.Name(field).DataType(new TimestampType(Apache.Arrow.Types.TimeUnit.Microsecond, "UTC")).Nullable(true));
                    arrays.Add(times.Build());
                    break;
                case Engine.Storage.ColumnType.Date:
                    var dates = new Date32Array.Builder();
                    foreach (var r in records) { if (Value(r) is DateOnly d) dates.Append(d); else dates.AppendNull(); }
                    schema.Field(f => f.Name(field).DataType(Date32Type.Default).Nullable(true));
                    arrays.Add(dates.Build());
                    break;
                default:
                    Strings(field, r => Value(r) is { } v ? JsonValues.Text(v) : null);
                    break;
            }
        }
        var built = schema.Build();
        using var stream = new MemoryStream();
        using (var properties = new WriterPropertiesBuilder().Compression(Compression.Snappy).Build())
        using (var arrowProperties = new ArrowWriterPropertiesBuilder().Build())
        using (var writer = new FileWriter(stream, built, properties, arrowProperties, leaveOpen: true))
        using (var recordBatch = new RecordBatch(built, arrays, records.Count))
        {
            writer.WriteRecordBatch(recordBatch);
            writer.Close();
        }
        return stream.ToArray();
    }
}
