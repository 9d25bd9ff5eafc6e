using System.Data.Common;
using Microsoft.Data.Sqlite;

namespace Engine.Connectors.Ledger;

/// <summary>
/// The ledger in a SQLite file (the embedded default): one connection, WAL journal, every change in a transaction,
/// so a process killed at any point leaves either the change or nothing. One worker process per file at a time
/// (the delivery lock sees to it); several workers share a PostgreSQL ledger instead.
/// </summary>
public sealed class SqliteLedger : IDeliveryLedger
{
    private readonly SqliteConnection _connection;
    private readonly SemaphoreSlim _gate = new(1, 1);

    public SqliteLedger(string path)
    {
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!);
        _connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        Path = path;
    }

    public string Path { get; }

    public async Task InitializeAsync(CancellationToken cancellationToken)
    {
        await _connection.OpenAsync(cancellationToken);
        // WAL with synchronous=NORMAL: a killed process loses no committed transaction (the failure delivery is built
        // for); a power cut may lose the last few, whose records are then sent again. FULL would fsync every batch's
        // commits and cap a worker at the disk's fsync rate.
        await ExecuteAsync("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000;", cancellationToken);
        await ExecuteAsync(LedgerSql.Schema(integer: "INTEGER", text: "TEXT"), cancellationToken);
    }

    public Task<bool> IsPlannedAsync(string runId, string destination, CancellationToken cancellationToken) => Locked(async () =>
        await ScalarAsync("SELECT count(*) FROM delivery_plans WHERE run_id = $r AND destination = $d", cancellationToken, ("$r", runId), ("$d", destination)) > 0);

    public Task PlanAsync(string runId, string destination, IReadOnlyList<PlannedRecord> records, IReadOnlyList<FinalOutcome> known,
        IReadOnlyList<string> segments, CancellationToken cancellationToken) => Locked(async () =>
    {
        var now = LedgerSql.Now();
        await using var transaction = (SqliteTransaction)await _connection.BeginTransactionAsync(cancellationToken);
        await using (var insert = Command("""
            INSERT OR IGNORE INTO delivery_records (key, run_id, destination, segment, profile_id, change, channel, state, attempts, planned_at)
            VALUES ($k, $r, $d, $s, $p, $c, $ch, 'pending', 0, $t)
            """, transaction))
        {
            var k = insert.Parameters.Add("$k", SqliteType.Text);
            var r = insert.Parameters.Add("$r", SqliteType.Text);
            var d = insert.Parameters.Add("$d", SqliteType.Text);
            var s = insert.Parameters.Add("$s", SqliteType.Text);
            var p = insert.Parameters.Add("$p", SqliteType.Integer);
            var c = insert.Parameters.Add("$c", SqliteType.Text);
            var ch = insert.Parameters.Add("$ch", SqliteType.Text);
            insert.Parameters.AddWithValue("$t", now);
            foreach (var record in records)
            {
                k.Value = record.Key;
                r.Value = record.RunId;
                d.Value = record.Destination;
                s.Value = record.Segment;
                p.Value = record.ProfileId;
                c.Value = record.Change;
                ch.Value = (object?)record.Channel ?? DBNull.Value;
                await insert.ExecuteNonQueryAsync(cancellationToken);
            }
        }
        await FinishCoreAsync(known, transaction, onlyOpen: true, cancellationToken);
        await using (var synced = Command("INSERT OR IGNORE INTO synced_segments (destination, segment, first_run_id) VALUES ($d, $s, $r)", transaction))
        {
            synced.Parameters.AddWithValue("$d", destination);
            synced.Parameters.AddWithValue("$r", runId);
            var s = synced.Parameters.Add("$s", SqliteType.Text);
            foreach (var segment in segments)
            {
                s.Value = segment;
                await synced.ExecuteNonQueryAsync(cancellationToken);
            }
        }
        await using (var plan = Command("INSERT OR IGNORE INTO delivery_plans (run_id, destination, planned_at) VALUES ($r, $d, $t)", transaction))
        {
            plan.Parameters.AddWithValue("$r", runId);
            plan.Parameters.AddWithValue("$d", destination);
            plan.Parameters.AddWithValue("$t", now);
            await plan.ExecuteNonQueryAsync(cancellationToken);
        }
        await transaction.CommitAsync(cancellationToken);
        return 0;
    });

    public Task<IReadOnlySet<string>> SyncedSegmentsAsync(string destination, CancellationToken cancellationToken) => Locked(async () =>
    {
        var result = new HashSet<string>(StringComparer.Ordinal);
        await using var command = Command("SELECT segment FROM synced_segments WHERE destination = $d");
        command.Parameters.AddWithValue("$d", destination);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            result.Add(reader.GetString(0));
        }
        return (IReadOnlySet<string>)result;
    });

    public Task<IReadOnlyList<string>> PlannedRunsAsync(CancellationToken cancellationToken) => Locked(async () =>
    {
        var result = new List<string>();
        await using var command = Command("SELECT run_id FROM delivery_plans GROUP BY run_id ORDER BY min(planned_at), run_id");
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            result.Add(reader.GetString(0));
        }
        return (IReadOnlyList<string>)result;
    });

    public Task<IReadOnlyList<LedgerRecord>> ClaimAsync(string runId, string destination, string change, int limit, TimeSpan lease,
        Func<IReadOnlyList<string>, string> newBatchId, CancellationToken cancellationToken) => Locked(async () =>
    {
        var now = LedgerSql.Now();
        var until = now + (long)lease.TotalMicroseconds;
        await using var transaction = (SqliteTransaction)await _connection.BeginTransactionAsync(cancellationToken);
        // A batch a dead worker left in flight goes out again whole, under its own id.
        string? orphan;
        await using (var find = Command("""
            SELECT batch_id FROM delivery_records
            WHERE run_id = $r AND destination = $d AND change = $c AND state = 'in_flight' AND state <> 'final' AND lease_until < $now
            ORDER BY batch_id LIMIT 1
            """, transaction))
        {
            find.Parameters.AddWithValue("$r", runId);
            find.Parameters.AddWithValue("$d", destination);
            find.Parameters.AddWithValue("$c", change);
            find.Parameters.AddWithValue("$now", now);
            orphan = await find.ExecuteScalarAsync(cancellationToken) as string;
        }
        string batchId;
        if (orphan is not null)
        {
            batchId = orphan;
        }
        else
        {
            var keys = new List<string>();
            await using (var pending = Command("""
                SELECT key FROM delivery_records WHERE run_id = $r AND destination = $d AND change = $c AND state = 'pending' AND state <> 'final'
                ORDER BY key LIMIT $n
                """, transaction))
            {
                pending.Parameters.AddWithValue("$r", runId);
                pending.Parameters.AddWithValue("$d", destination);
                pending.Parameters.AddWithValue("$c", change);
                pending.Parameters.AddWithValue("$n", limit);
                await using var reader = await pending.ExecuteReaderAsync(cancellationToken);
                while (await reader.ReadAsync(cancellationToken))
                {
                    keys.Add(reader.GetString(0));
                }
            }
            if (keys.Count == 0)
            {
                return (IReadOnlyList<LedgerRecord>)[];
            }
            batchId = newBatchId(keys);
            // One statement for the batch: the pending keys of this run, destination and change from the first to the
            // last selected are exactly those selected (one connection, inside the transaction).
            await using var mark = Command("""
                UPDATE delivery_records SET state = 'in_flight', batch_id = $b, lease_until = $u
                WHERE run_id = $r AND destination = $d AND change = $c AND state = 'pending' AND state <> 'final' AND key >= $first AND key <= $last
                """, transaction);
            mark.Parameters.AddWithValue("$b", batchId);
            mark.Parameters.AddWithValue("$r", runId);
            mark.Parameters.AddWithValue("$d", destination);
            mark.Parameters.AddWithValue("$c", change);
            mark.Parameters.AddWithValue("$first", keys[0]);
            mark.Parameters.AddWithValue("$last", keys[^1]);
            mark.Parameters.AddWithValue("$u", until);
            await mark.ExecuteNonQueryAsync(cancellationToken);
        }
        if (orphan is not null)
        {
            // A new batch got its lease with its records; a reclaimed one takes a fresh lease here.
            await using var lease = Command("UPDATE delivery_records SET lease_until = $u WHERE batch_id = $b AND state = 'in_flight'", transaction);
            lease.Parameters.AddWithValue("$u", until);
            lease.Parameters.AddWithValue("$b", batchId);
            await lease.ExecuteNonQueryAsync(cancellationToken);
        }
        var records = await ReadRecordsAsync($"SELECT {LedgerSql.Columns} FROM delivery_records WHERE batch_id = $b AND state = 'in_flight' ORDER BY key",
            transaction, cancellationToken, ("$b", batchId));
        await transaction.CommitAsync(cancellationToken);
        return records;
    });

    public Task RenewAsync(string batchId, TimeSpan lease, CancellationToken cancellationToken) => Locked(async () =>
    {
        await using var command = Command("UPDATE delivery_records SET lease_until = $u WHERE batch_id = $b AND state = 'in_flight'");
        command.Parameters.AddWithValue("$u", LedgerSql.Now() + (long)lease.TotalMicroseconds);
        command.Parameters.AddWithValue("$b", batchId);
        await command.ExecuteNonQueryAsync(cancellationToken);
        return 0;
    });

    public Task FinishAsync(IReadOnlyList<FinalOutcome> outcomes, CancellationToken cancellationToken) => outcomes.Count == 0 ? Task.CompletedTask : Locked(async () =>
    {
        await using var transaction = (SqliteTransaction)await _connection.BeginTransactionAsync(cancellationToken);
        await FinishCoreAsync(outcomes, transaction, onlyOpen: true, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return 0;
    });

    private async Task FinishCoreAsync(IReadOnlyList<FinalOutcome> outcomes, SqliteTransaction transaction, bool onlyOpen, CancellationToken cancellationToken)
    {
        if (outcomes.Count == 0)
        {
            return;
        }
        // A final outcome is never overwritten: a record acknowledged once stays acknowledged. Outcomes alike go in one
        // statement (the keys as a JSON array), so a delivered batch costs one UPDATE, not one per record.
        await using var update = Command($"""
            UPDATE delivery_records SET state = 'final', outcome = $o, reason = $re, error = $e, attempts = $a, finished_at = $t, lease_until = NULL
            WHERE key IN (SELECT value FROM json_each($keys)){(onlyOpen ? " AND state <> 'final'" : "")}
            """, transaction);
        var keys = update.Parameters.Add("$keys", SqliteType.Text);
        var o = update.Parameters.Add("$o", SqliteType.Text);
        var re = update.Parameters.Add("$re", SqliteType.Text);
        var e = update.Parameters.Add("$e", SqliteType.Text);
        var a = update.Parameters.Add("$a", SqliteType.Integer);
        update.Parameters.AddWithValue("$t", LedgerSql.Now());
        // A key given twice keeps its first outcome, as one statement per record would.
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var group in outcomes.Where(x => seen.Add(x.Key)).GroupBy(x => (x.Outcome, x.Reason, x.Error, x.Attempts)))
        {
            keys.Value = System.Text.Json.JsonSerializer.Serialize(group.Select(x => x.Key), LedgerJsonContext.Default.IEnumerableString);
            o.Value = group.Key.Outcome;
            re.Value = (object?)group.Key.Reason ?? DBNull.Value;
            e.Value = (object?)group.Key.Error ?? DBNull.Value;
            a.Value = group.Key.Attempts;
            await update.ExecuteNonQueryAsync(cancellationToken);
        }
    }

    public Task<long> OpenCountAsync(string runId, string destination, CancellationToken cancellationToken) => Locked(() =>
        ScalarAsync("SELECT count(*) FROM delivery_records WHERE run_id = $r AND destination = $d AND state <> 'final'", cancellationToken, ("$r", runId), ("$d", destination)));

    public Task<IReadOnlyList<LedgerRecord>> RecordsAsync(string runId, CancellationToken cancellationToken) => Locked(() =>
        ReadRecordsAsync($"SELECT {LedgerSql.Columns} FROM delivery_records WHERE run_id = $r ORDER BY key", null, cancellationToken, ("$r", runId)));

    public Task<Dictionary<long, int>> DeliveredSinceAsync(string channel, long sinceMicros, CancellationToken cancellationToken) => Locked(async () =>
    {
        var result = new Dictionary<long, int>();
        await using var command = Command("""
            SELECT profile_id, count(*) FROM delivery_records
            WHERE channel = $c AND outcome = 'delivered' AND change = 'entered' AND finished_at >= $s GROUP BY profile_id
            """);
        command.Parameters.AddWithValue("$c", channel);
        command.Parameters.AddWithValue("$s", sinceMicros);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            result[reader.GetInt64(0)] = (int)reader.GetInt64(1);
        }
        return result;
    });

    public Task MarkCompletedAsync(string runId, string destination, CancellationToken cancellationToken) => Locked(async () =>
    {
        await using var command = Command("UPDATE delivery_plans SET completed_at = $t WHERE run_id = $r AND destination = $d");
        command.Parameters.AddWithValue("$t", LedgerSql.Now());
        command.Parameters.AddWithValue("$r", runId);
        command.Parameters.AddWithValue("$d", destination);
        await command.ExecuteNonQueryAsync(cancellationToken);
        return 0;
    });

    public Task<bool> IsCompletedAsync(string runId, string destination, CancellationToken cancellationToken) => Locked(async () =>
        await ScalarAsync("SELECT count(*) FROM delivery_plans WHERE run_id = $r AND destination = $d AND completed_at IS NOT NULL", cancellationToken,
            ("$r", runId), ("$d", destination)) > 0);

    public Task<string?> GetStateAsync(string runId, string destination, string name, CancellationToken cancellationToken) => Locked(async () =>
    {
        await using var command = Command("SELECT value FROM destination_state WHERE run_id = $r AND destination = $d AND name = $n");
        command.Parameters.AddWithValue("$r", runId);
        command.Parameters.AddWithValue("$d", destination);
        command.Parameters.AddWithValue("$n", name);
        return await command.ExecuteScalarAsync(cancellationToken) as string;
    });

    public Task SetStateAsync(string runId, string destination, string name, string value, CancellationToken cancellationToken) => Locked(async () =>
    {
        await using var command = Command("""
            INSERT INTO destination_state (run_id, destination, name, value) VALUES ($r, $d, $n, $v)
            ON CONFLICT (run_id, destination, name) DO UPDATE SET value = excluded.value
            """);
        command.Parameters.AddWithValue("$r", runId);
        command.Parameters.AddWithValue("$d", destination);
        command.Parameters.AddWithValue("$n", name);
        command.Parameters.AddWithValue("$v", value);
        await command.ExecuteNonQueryAsync(cancellationToken);
        return 0;
    });

    public async ValueTask DisposeAsync()
    {
        await _connection.DisposeAsync();
        _gate.Dispose();
    }

    private async Task<T> Locked<T>(Func<Task<T>> action)
    {
        await _gate.WaitAsync();
        try
        {
            return await action();
        }
        finally
        {
            _gate.Release();
        }
    }

    private SqliteCommand Command(string sql, SqliteTransaction? transaction = null)
    {
        var command = _connection.CreateCommand();
        command.CommandText = sql;
        command.Transaction = transaction;
        return command;
    }

    private async Task ExecuteAsync(string sql, CancellationToken cancellationToken)
    {
        await using var command = Command(sql);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private async Task<long> ScalarAsync(string sql, CancellationToken cancellationToken, params (string Name, object Value)[] parameters)
    {
        await using var command = Command(sql);
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }
        return Convert.ToInt64(await command.ExecuteScalarAsync(cancellationToken), System.Globalization.CultureInfo.InvariantCulture);
    }

    private async Task<IReadOnlyList<LedgerRecord>> ReadRecordsAsync(string sql, SqliteTransaction? transaction, CancellationToken cancellationToken,
        params (string Name, object Value)[] parameters)
    {
        await using var command = Command(sql, transaction);
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await LedgerSql.ReadAsync(reader, cancellationToken);
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(IEnumerable<string>))]
internal sealed partial class LedgerJsonContext : System.Text.Json.Serialization.JsonSerializerContext;

/// <summary>The SQL both ledgers share: the schema and the record columns.</summary>
internal static class LedgerSql
{
    public const string Columns =
        "key, run_id, destination, segment, profile_id, change, channel, state, outcome, reason, error, batch_id, attempts, planned_at, finished_at";

    /// <summary>Now, in UTC microseconds (how both ledgers store times).</summary>
    public static long Now() => (DateTimeOffset.UtcNow - DateTimeOffset.UnixEpoch).Ticks / 10;

    public static string Schema(string integer, string text) => $"""
        CREATE TABLE IF NOT EXISTS delivery_records (
            key {text} PRIMARY KEY,
            run_id {text} NOT NULL,
            destination {text} NOT NULL,
            segment {text} NOT NULL,
            profile_id {integer} NOT NULL,
            change {text} NOT NULL,
            channel {text},
            state {text} NOT NULL,
            outcome {text},
            reason {text},
            error {text},
            batch_id {text},
            attempts {integer} NOT NULL DEFAULT 0,
            lease_until {integer},
            planned_at {integer} NOT NULL,
            finished_at {integer});
        CREATE INDEX IF NOT EXISTS delivery_records_open ON delivery_records (run_id, destination, change, state, key) WHERE state <> 'final';
        CREATE INDEX IF NOT EXISTS delivery_records_batch ON delivery_records (batch_id) WHERE state = 'in_flight';
        CREATE INDEX IF NOT EXISTS delivery_records_caps ON delivery_records (channel, finished_at) WHERE channel IS NOT NULL AND outcome = 'delivered' AND change = 'entered';
        CREATE TABLE IF NOT EXISTS delivery_plans (
            run_id {text} NOT NULL,
            destination {text} NOT NULL,
            planned_at {integer} NOT NULL,
            completed_at {integer},
            PRIMARY KEY (run_id, destination));
        CREATE TABLE IF NOT EXISTS synced_segments (
            destination {text} NOT NULL,
            segment {text} NOT NULL,
            first_run_id {text} NOT NULL,
            PRIMARY KEY (destination, segment));
        CREATE TABLE IF NOT EXISTS destination_state (
            run_id {text} NOT NULL,
            destination {text} NOT NULL,
            name {text} NOT NULL,
            value {text} NOT NULL,
            PRIMARY KEY (run_id, destination, name));
        """;

    public static async Task<IReadOnlyList<LedgerRecord>> ReadAsync(DbDataReader reader, CancellationToken cancellationToken)
    {
        var result = new List<LedgerRecord>();
        while (await reader.ReadAsync(cancellationToken))
        {
            string? Text(int i) => reader.IsDBNull(i) ? null : reader.GetString(i);
            result.Add(new LedgerRecord(
                reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), reader.GetInt64(4), reader.GetString(5),
                Text(6), reader.GetString(7), Text(8), Text(9), Text(10), Text(11), (int)reader.GetInt64(12), reader.GetInt64(13),
                reader.IsDBNull(14) ? null : reader.GetInt64(14)));
        }
        return result;
    }
}
