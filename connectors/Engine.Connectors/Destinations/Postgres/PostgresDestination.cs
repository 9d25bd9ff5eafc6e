using System.Globalization;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Engine.Storage;
using Npgsql;
using NpgsqlTypes;

namespace Engine.Connectors.Destinations.Postgres;

/// <summary>
/// Segment membership upserted into a PostgreSQL table (<c>settings.table</c>, optionally <c>schema.table</c>; the
/// connection string comes from the environment variable that <c>credentials.connection</c> names).
/// <para><b>Layout</b> (created with <c>CREATE TABLE IF NOT EXISTS</c> when missing): one row per
/// <c>(segment, profile_id)</c>, the primary key: <c>segment text</c>, <c>profile_id bigint</c>, <c>member boolean</c>,
/// one column per <c>identify_by</c> type (text, its first value), one per mapped field (typed from the profile
/// column), <c>last_key text</c> (the idempotency key of the record applied last) and <c>updated_at timestamptz</c>.
/// An entry upserts <c>member = true</c> with the identifiers and fields; an exit upserts <c>member = false</c> and
/// keeps the identifiers and fields the row had (a new row takes the exit's). A removal is kept as a row, so the table
/// holds the current state of every profile the destination ever received, members and leavers alike.</para>
/// <para><b>Guarantees.</b> A batch is one <c>INSERT … SELECT FROM unnest(…) ON CONFLICT DO UPDATE</c> in a
/// transaction: applied whole or not at all. A row whose values would not change is not touched (not even
/// <c>updated_at</c>), so a batch sent again after a lost answer changes nothing. A table of another shape (a column
/// missing) is a fatal error: the destination never alters a table.</para>
/// </summary>
public sealed partial class PostgresDestination : IDestination
{
    private const string Credential = "connection";

    // Columns every table has, in table order around the identifier and field columns.
    private static readonly string[] FixedColumns = ["segment", "profile_id", "member", "last_key", "updated_at"];

    private readonly DestinationDefinition _definition;
    private readonly NpgsqlDataSource _dataSource;
    private readonly string _tableName;
    private readonly string _table;
    private readonly IReadOnlyList<string> _identifierTypes;
    private readonly IReadOnlyList<FieldColumn> _fields;
    private readonly string _createSql;
    private readonly string _addSql;
    private readonly string _removeSql;
    private readonly SemaphoreSlim _prepare = new(1, 1);
    private bool _prepared;

    /// <summary>
    /// A client for <paramref name="definition"/>, whose mapped fields have the profile column types
    /// <paramref name="fields"/> (destination field → type, in file order). Throws a fatal
    /// <see cref="DestinationException"/> when the table or a column name is not a plain identifier, or the
    /// connection string is missing or unreadable.
    /// </summary>
    public PostgresDestination(DestinationDefinition definition, IReadOnlyList<(string Field, ColumnType Type)> fields)
    {
        ArgumentNullException.ThrowIfNull(definition);
        ArgumentNullException.ThrowIfNull(fields);
        _definition = definition;
        _tableName = definition.Setting("table") ?? "";
        _table = QualifiedName(_tableName);
        _identifierTypes = definition.IdentifyBy;
        _fields = [.. fields.Select(f => new FieldColumn(f.Field, ColumnName(f.Field, "field"), f.Type))];
        var taken = new HashSet<string>(FixedColumns, StringComparer.Ordinal);
        foreach (var (name, kind) in _identifierTypes.Select(t => (t, "identifier type")).Concat(_fields.Select(f => (f.Field, "field"))))
        {
            // ColumnName refuses a name that is not a plain identifier; then the folded names must all differ.
            _ = ColumnName(name, kind);
            if (!taken.Add(Fold(name)))
            {
                throw Invalid("invalid_column", $"the {kind} '{name}' would be a second column named {Fold(name)} in table {_tableName} " +
                    $"(the table's own columns are {string.Join(", ", FixedColumns)}; an identifier type and a field cannot share a name)");
            }
        }
        _createSql = CreateSql();
        _addSql = UpsertSql(RecordOperation.Add);
        _removeSql = UpsertSql(RecordOperation.Remove);

        var connection = DestinationCredentials.Read(definition, Credential);
        NpgsqlConnectionStringBuilder builder;
        try
        {
            builder = new NpgsqlConnectionStringBuilder(connection);
        }
        catch (ArgumentException e)
        {
            // Not e.Message: it quotes part of the string, which may be the password.
            throw new DestinationException("invalid_connection", FailureKind.Fatal,
                $"destination '{definition.Name}': the connection string in {definition.Credentials[Credential]} is not an Npgsql connection string", inner: e);
        }
        var seconds = (int)Math.Clamp(Math.Ceiling(definition.Timeout.TotalSeconds), 1, 1024);
        // The destination's time limit bounds connecting and each statement on the server too, not only the wait here.
        builder.Timeout = seconds;
        builder.CommandTimeout = seconds;
        _dataSource = NpgsqlDataSource.Create(builder);
    }

    /// <summary>The table as written in <c>settings.table</c>.</summary>
    public string TableName => _tableName;

    public async Task<IReadOnlyList<RecordResult>> SendAsync(DestinationBatch batch, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var results = new List<RecordResult>(batch.Records.Count);
        // One row per (segment, profile): ON CONFLICT DO UPDATE cannot touch a row twice in one statement.
        var rows = new Dictionary<(string, long), OutgoingRecord>();
        foreach (var record in batch.Records)
        {
            if (Convert(record) is { } problem)
            {
                results.Add(new RecordResult(record.Key, RecordStatus.Rejected, problem));
                continue;
            }
            rows[(record.Segment, record.ProfileId)] = record;
            results.Add(new RecordResult(record.Key, RecordStatus.Delivered));
        }
        if (rows.Count == 0)
        {
            return results;
        }
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(_definition.Timeout);
        try
        {
            await PrepareAsync(limit.Token);
            await using var connection = await _dataSource.OpenConnectionAsync(limit.Token);
            await using var transaction = await connection.BeginTransactionAsync(limit.Token);
            await using (var command = new NpgsqlCommand(batch.Operation == RecordOperation.Add ? _addSql : _removeSql, connection, transaction))
            {
                AddParameters(command, [.. rows.Values], batch.Operation);
                await command.ExecuteNonQueryAsync(limit.Token);
            }
            await transaction.CommitAsync(limit.Token);
        }
        catch (Exception e) when (Failure(e, cancellationToken) is { } failure)
        {
            throw failure;
        }
        return results;
    }

    /// <summary>Nothing to finish: every batch is committed as it is sent.</summary>
    public Task CompleteAsync(string runId, CancellationToken cancellationToken) => Task.CompletedTask;

    public async ValueTask DisposeAsync()
    {
        await _dataSource.DisposeAsync();
        _prepare.Dispose();
    }

    /// <summary>Creates the table when missing and checks that an existing one has every column; once per client.</summary>
    private async Task PrepareAsync(CancellationToken cancellationToken)
    {
        await _prepare.WaitAsync(cancellationToken);
        try
        {
            if (_prepared)
            {
                return;
            }
            await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
            // CREATE TABLE IF NOT EXISTS is not safe against itself in two sessions (both see no table, one fails on the
            // catalog's unique index): workers starting together wait for each other here.
            await using (var lockCommand = new NpgsqlCommand("SELECT pg_advisory_xact_lock(hashtextextended('engine.destination.postgres/' || @t, 0))",
                connection, transaction))
            {
                lockCommand.Parameters.Add(new NpgsqlParameter<string>("t", _table));
                await lockCommand.ExecuteNonQueryAsync(cancellationToken);
            }
            // Create only when missing: a role that may write the table need not be allowed to create tables.
            bool exists;
            await using (var find = new NpgsqlCommand("SELECT to_regclass(@t) IS NOT NULL", connection, transaction))
            {
                find.Parameters.Add(new NpgsqlParameter<string>("t", _table));
                exists = (bool)(await find.ExecuteScalarAsync(cancellationToken))!;
            }
            if (!exists)
            {
                await using var create = new NpgsqlCommand(_createSql, connection, transaction);
                await create.ExecuteNonQueryAsync(cancellationToken);
            }
            var columns = new HashSet<string>(StringComparer.Ordinal);
            await using (var read = new NpgsqlCommand(
                "SELECT attname::text FROM pg_attribute WHERE attrelid = to_regclass(@t) AND attnum > 0 AND NOT attisdropped", connection, transaction))
            {
                read.Parameters.Add(new NpgsqlParameter<string>("t", _table));
                await using var reader = await read.ExecuteReaderAsync(cancellationToken);
                while (await reader.ReadAsync(cancellationToken))
                {
                    columns.Add(reader.GetString(0));
                }
            }
            var missing = ExpectedColumns().Where(c => !columns.Contains(c)).ToList();
            if (missing.Count > 0)
            {
                throw new DestinationException("table_mismatch", FailureKind.Fatal,
                    $"destination '{_definition.Name}': table {_tableName} has no column{(missing.Count > 1 ? "s" : "")} {string.Join(", ", missing)}; " +
                    "the destination does not alter tables: add the columns, or name a new table in settings.table");
            }
            await transaction.CommitAsync(cancellationToken);
            _prepared = true;
        }
        finally
        {
            _prepare.Release();
        }
    }

    private IEnumerable<string> ExpectedColumns()
        => [.. FixedColumns[..3], .. _identifierTypes.Select(Fold), .. _fields.Select(f => Fold(f.Field)), .. FixedColumns[3..]];

    private string CreateSql()
    {
        var columns = new List<string> { "segment text NOT NULL", "profile_id bigint NOT NULL", "member boolean NOT NULL" };
        columns.AddRange(_identifierTypes.Select(t => $"{ColumnName(t, "identifier type")} text"));
        columns.AddRange(_fields.Select(f => $"{f.Column} {SqlType(f.Type)}"));
        columns.Add("last_key text NOT NULL");
        columns.Add("updated_at timestamptz NOT NULL");
        columns.Add("PRIMARY KEY (segment, profile_id)");
        return $"CREATE TABLE IF NOT EXISTS {_table} ({string.Join(", ", columns)})";
    }

    /// <summary>
    /// The batch's statement: every column an array parameter, unnested into rows. An entry sets the identifiers and
    /// fields; an exit only the membership (a new row takes them all). The WHERE leaves a row alone when nothing would
    /// change, which is what makes sending a batch again harmless.
    /// </summary>
    private string UpsertSql(RecordOperation operation)
    {
        var data = new List<(string Column, string Parameter)>();
        data.AddRange(_identifierTypes.Select((t, i) => (ColumnName(t, "identifier type"), $"i{i}")));
        data.AddRange(_fields.Select((f, i) => (f.Column, $"f{i}")));
        var insertColumns = string.Join(", ", ["segment", "profile_id", "member", .. data.Select(d => d.Column), "last_key", "updated_at"]);
        var aliases = string.Join(", ", ["segment", "profile_id", .. data.Select(d => d.Parameter), "last_key"]);
        var arrays = string.Join(", ", ["@segment", "@profile_id", .. data.Select(d => "@" + d.Parameter), "@last_key"]);
        var select = string.Join(", ", ["u.segment", "u.profile_id", "@member", .. data.Select(d => "u." + d.Parameter), "u.last_key", "now()"]);
        string[] updated = operation == RecordOperation.Add ? ["member", .. data.Select(d => d.Column), "last_key"] : ["member", "last_key"];
        var set = string.Join(", ", updated.Append("updated_at").Select(c => $"{c} = excluded.{c}"));
        var before = string.Join(", ", updated.Select(c => $"t.{c}"));
        var after = string.Join(", ", updated.Select(c => $"excluded.{c}"));
        return $"""
            INSERT INTO {_table} AS t ({insertColumns})
            SELECT {select} FROM unnest({arrays}) AS u ({aliases})
            ON CONFLICT (segment, profile_id) DO UPDATE SET {set}
            WHERE ({before}) IS DISTINCT FROM ({after})
            """;
    }

    private void AddParameters(NpgsqlCommand command, IReadOnlyList<OutgoingRecord> rows, RecordOperation operation)
    {
        command.Parameters.Add(new NpgsqlParameter<string[]>("segment", NpgsqlDbType.Array | NpgsqlDbType.Text) { TypedValue = [.. rows.Select(r => r.Segment)] });
        command.Parameters.Add(new NpgsqlParameter<long[]>("profile_id", NpgsqlDbType.Array | NpgsqlDbType.Bigint) { TypedValue = [.. rows.Select(r => r.ProfileId)] });
        command.Parameters.Add(new NpgsqlParameter<bool>("member", operation == RecordOperation.Add));
        for (var i = 0; i < _identifierTypes.Count; i++)
        {
            var type = _identifierTypes[i];
            command.Parameters.Add(new NpgsqlParameter<string?[]>($"i{i}", NpgsqlDbType.Array | NpgsqlDbType.Text)
            {
                TypedValue = [.. rows.Select(r => r.Identifiers.FirstOrDefault(id => id.Type == type).Value)],
            });
        }
        for (var i = 0; i < _fields.Count; i++)
        {
            var field = _fields[i];
            var values = rows.Select(r => Value(r.Fields.GetValueOrDefault(field.Field), field.Type)).ToList();
            command.Parameters.Add(field.Type switch
            {
                ColumnType.Int64 => Array<long>($"f{i}", NpgsqlDbType.Bigint, values),
                ColumnType.Double => Array<double>($"f{i}", NpgsqlDbType.Double, values),
                ColumnType.Boolean => Array<bool>($"f{i}", NpgsqlDbType.Boolean, values),
                ColumnType.Timestamp => Array<DateTime>($"f{i}", NpgsqlDbType.TimestampTz, values),
                ColumnType.Date => Array<DateOnly>($"f{i}", NpgsqlDbType.Date, values),
                _ => new NpgsqlParameter<string?[]>($"f{i}", NpgsqlDbType.Array | NpgsqlDbType.Text) { TypedValue = [.. values.Cast<string?>()] },
            });
        }
        command.Parameters.Add(new NpgsqlParameter<string[]>("last_key", NpgsqlDbType.Array | NpgsqlDbType.Text) { TypedValue = [.. rows.Select(r => r.Key)] });
    }

    private static NpgsqlParameter<T?[]> Array<T>(string name, NpgsqlDbType type, List<object?> values) where T : struct
        => new(name, NpgsqlDbType.Array | type) { TypedValue = [.. values.Select(v => (T?)v)] };

    /// <summary>Why a record's fields cannot be written to their columns, or null when they can.</summary>
    private string? Convert(OutgoingRecord record)
    {
        foreach (var field in _fields)
        {
            var value = record.Fields.GetValueOrDefault(field.Field);
            var converted = Value(value, field.Type);
            if (value is not null && converted is null)
            {
                return $"invalid_field: field '{field.Field}' holds a {value.GetType().Name}, which a {SqlType(field.Type)} column cannot take";
            }
            // PostgreSQL text cannot hold NUL: one such value would fail the whole batch.
            if (converted is string text && text.Contains('\0', StringComparison.Ordinal))
            {
                return $"invalid_field: field '{field.Field}' holds a NUL character, which PostgreSQL text cannot store";
            }
        }
        return null;
    }

    /// <summary>A field's value as its column's parameter takes it, or null when it is null or of no fitting type.</summary>
    private static object? Value(object? value, ColumnType type) => (type, value) switch
    {
        (_, null) => null,
        (ColumnType.Int64, long l) => l,
        (ColumnType.Int64, int i) => (long)i,
        (ColumnType.Double, double d) => d,
        (ColumnType.Double, float f) => (double)f,
        (ColumnType.Double, long l) => (double)l,
        (ColumnType.Boolean, bool b) => b,
        // timestamptz takes UTC instants only.
        (ColumnType.Timestamp, DateTimeOffset t) => t.UtcDateTime,
        (ColumnType.Timestamp, DateTime t) => t.Kind == DateTimeKind.Unspecified ? DateTime.SpecifyKind(t, DateTimeKind.Utc) : t.ToUniversalTime(),
        (ColumnType.Date, DateOnly d) => d,
        (ColumnType.Date, DateTime t) => DateOnly.FromDateTime(t),
        (ColumnType.String, string s) => s,
        (ColumnType.String, IFormattable f) => f.ToString(null, CultureInfo.InvariantCulture),
        (ColumnType.String, bool b) => b ? "true" : "false",
        _ => null,
    };

    private static string SqlType(ColumnType type) => type switch
    {
        ColumnType.Int64 => "bigint",
        ColumnType.Double => "double precision",
        ColumnType.Boolean => "boolean",
        ColumnType.Timestamp => "timestamptz",
        ColumnType.Date => "date",
        _ => "text",
    };

    /// <summary>
    /// The exception to throw for <paramref name="e"/>, or null to let it through. Retrying helps with a lost
    /// connection, a time-out, a server going down, a serialization failure or deadlock; nothing helps with refused
    /// credentials or a table of the wrong shape (fatal: the records wait for the next delivery); a data error fails
    /// the batch (permanent).
    /// </summary>
    private DestinationException? Failure(Exception e, CancellationToken caller)
    {
        var table = $"table {_tableName}";
        switch (e)
        {
            case DestinationException:
                return null;
            case OperationCanceledException when !caller.IsCancellationRequested:
                return new DestinationException("timeout", FailureKind.Transient, $"{table}: no answer within {_definition.Timeout.TotalSeconds:0.#} s", inner: e);
            case PostgresException p:
                var kind = p.SqlState switch
                {
                    "40001" or "40P01" or "55P03" or "57014" => FailureKind.Transient,
                    // Refused, no such database or schema, a read-only standby: the same every time.
                    "42501" or "3D000" or "3F000" or "25006" => FailureKind.Fatal,
                    var s when s.StartsWith("08", StringComparison.Ordinal) || s.StartsWith("53", StringComparison.Ordinal)
                        || s.StartsWith("57P", StringComparison.Ordinal) || s.StartsWith("58", StringComparison.Ordinal) => FailureKind.Transient,
                    // Credentials, then the table's shape (undefined column, no unique index for ON CONFLICT, wrong type).
                    var s when s.StartsWith("28", StringComparison.Ordinal) || s.StartsWith("42", StringComparison.Ordinal) => FailureKind.Fatal,
                    var s when s.StartsWith("22", StringComparison.Ordinal) || s.StartsWith("23", StringComparison.Ordinal) => FailureKind.Permanent,
                    _ => p.IsTransient ? FailureKind.Transient : FailureKind.Permanent,
                };
                // MessageText, not Detail: the detail may quote a row's values.
                return new DestinationException($"postgres_{p.SqlState}", kind, $"destination '{_definition.Name}', {table}: {p.MessageText}", inner: e);
            case NpgsqlException { InnerException: TimeoutException }:
                return new DestinationException("timeout", FailureKind.Transient, $"{table}: no answer within {_definition.Timeout.TotalSeconds:0.#} s", inner: e);
            case NpgsqlException n:
                // A client-side failure that is not transient (TLS refused, an authentication method not supported) is configuration.
                return new DestinationException("connection_failed", n.IsTransient ? FailureKind.Transient : FailureKind.Fatal, $"{table}: {n.Message}", inner: e);
            case SocketException or IOException or TimeoutException:
                return new DestinationException("connection_failed", FailureKind.Transient, $"{table}: {e.Message}", inner: e);
            default:
                return null;
        }
    }

    /// <summary>
    /// <paramref name="name"/> (<c>table</c> or <c>schema.table</c>) quoted for SQL. Only plain identifiers are taken,
    /// folded to lower case as PostgreSQL folds unquoted names, so the table is the one <c>SELECT * FROM name</c> finds.
    /// </summary>
    private string QualifiedName(string name)
    {
        var parts = name.Split('.');
        if (parts.Length > 2 || !parts.All(p => PlainIdentifier().IsMatch(p)))
        {
            throw Invalid("invalid_table", $"settings.table '{name}' is not a table name: a plain identifier (letters, digits and _, not starting " +
                "with a digit, at most 63 characters), optionally schema-qualified as schema.table");
        }
        return string.Join('.', parts.Select(p => Quote(Fold(p))));
    }

    private string ColumnName(string name, string kind) => PlainIdentifier().IsMatch(name)
        ? Quote(Fold(name))
        : throw Invalid("invalid_column", $"the {kind} '{name}' cannot be a column of table {_tableName}: column names are plain identifiers " +
            "(letters, digits and _, not starting with a digit, at most 63 characters)");

    private DestinationException Invalid(string reason, string detail)
        => new(reason, FailureKind.Fatal, $"destination '{_definition.Name}': {detail}");

    private static string Fold(string identifier) => identifier.ToLowerInvariant();

    // Npgsql's own quoting (double quotes, embedded ones doubled); the identifiers are plain already, so this only
    // keeps keywords such as "order" or "user" usable as column names.
    private static string Quote(string identifier)
    {
        using var builder = new NpgsqlCommandBuilder();
        return builder.QuoteIdentifier(identifier);
    }

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]{0,62}$")]
    private static partial Regex PlainIdentifier();

    private sealed record FieldColumn(string Field, string Column, ColumnType Type);
}
