using Npgsql;
using NpgsqlTypes;

namespace Engine.Connectors.Ledger;

/// <summary>
/// The ledger in PostgreSQL, shared by several worker processes at once. Claims lock rows with
/// <c>FOR UPDATE SKIP LOCKED</c> and never wait on a lock, so two workers never claim the same record and a claim never
/// deadlocks; every other change locks rows in key order. Times come from the database's clock, one clock for every
/// worker, so a lease does not depend on which machine wrote it.
/// </summary>
public sealed class PostgresLedger : IDeliveryLedger
{
    // Microseconds since the Unix epoch at the start of the statement (how both ledgers store times).
    private const string Now = "(extract(epoch FROM statement_timestamp()) * 1000000)::bigint";

    // Orphaned batches looked at per claim: more than one, so a batch another worker is taking does not hide the rest.
    private const int OrphanCandidates = 8;

    private readonly NpgsqlDataSource _dataSource;

    /// <summary>A ledger over the database that <paramref name="connectionString"/> names (an Npgsql connection string).</summary>
    public PostgresLedger(string connectionString)
    {
        _dataSource = NpgsqlDataSource.Create(connectionString);
    }

    /// <summary>Creates the tables when missing; workers starting together create them once.</summary>
    public async Task InitializeAsync(CancellationToken cancellationToken)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        // CREATE TABLE IF NOT EXISTS is not safe against itself in two sessions (both see no table, one fails on the
        // catalog's unique index): the lock makes the second wait and then find the tables.
        await using (var command = new NpgsqlCommand("SELECT pg_advisory_xact_lock(hashtextextended('engine.delivery_ledger.schema', 0));" +
            // Keys sort by their bytes, as in SQLite, whatever the database's collation (and the indexes serve that order).
            LedgerSql.Schema(integer: "BIGINT", text: "TEXT COLLATE \"C\""), connection, transaction))
        {
            await command.ExecuteNonQueryAsync(cancellationToken);
        }
        await transaction.CommitAsync(cancellationToken);
    }

    public async Task<bool> IsPlannedAsync(string runId, string destination, CancellationToken cancellationToken)
    {
        await using var command = _dataSource.CreateCommand("SELECT EXISTS (SELECT 1 FROM delivery_plans WHERE run_id = @r AND destination = @d)");
        command.Parameters.Add(Parameter("r", runId));
        command.Parameters.Add(Parameter("d", destination));
        return (bool)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    public async Task PlanAsync(string runId, string destination, IReadOnlyList<PlannedRecord> records, IReadOnlyList<FinalOutcome> known,
        IReadOnlyList<string> segments, CancellationToken cancellationToken)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        // Two workers planning the same run for the same destination: the second waits, then finds every key present.
        await using (var plan = new NpgsqlCommand("SELECT pg_advisory_xact_lock(hashtextextended('engine.delivery_ledger.plan/' || @r || '/' || @d, 0))",
            connection, transaction))
        {
            plan.Parameters.Add(Parameter("r", runId));
            plan.Parameters.Add(Parameter("d", destination));
            await plan.ExecuteNonQueryAsync(cancellationToken);
        }
        if (records.Count > 0)
        {
            await InsertPendingAsync(connection, transaction, records, cancellationToken);
        }
        await FinishCoreAsync(connection, transaction, known, cancellationToken);
        await using (var command = new NpgsqlCommand($"""
            INSERT INTO synced_segments (destination, segment, first_run_id)
            SELECT @d, segment, @r FROM unnest(@s) AS s (segment) ON CONFLICT DO NOTHING;
            INSERT INTO delivery_plans (run_id, destination, planned_at) VALUES (@r, @d, {Now}) ON CONFLICT DO NOTHING;
            """, connection, transaction))
        {
            command.Parameters.Add(Parameter("r", runId));
            command.Parameters.Add(Parameter("d", destination));
            command.Parameters.Add(Parameter("s", segments.ToArray()));
            await command.ExecuteNonQueryAsync(cancellationToken);
        }
        await transaction.CommitAsync(cancellationToken);
    }

    /// <summary>
    /// Inserts the records that are not there yet: binary COPY into a temporary table, then one INSERT ... SELECT that
    /// leaves existing keys alone (a plan may hold a million records; one statement per record would take minutes).
    /// </summary>
    private static async Task InsertPendingAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, IReadOnlyList<PlannedRecord> records,
        CancellationToken cancellationToken)
    {
        await using (var create = new NpgsqlCommand("""
            CREATE TEMPORARY TABLE ledger_plan (
                key TEXT COLLATE "C" NOT NULL, run_id TEXT NOT NULL, destination TEXT NOT NULL, segment TEXT NOT NULL,
                profile_id BIGINT NOT NULL, change TEXT NOT NULL, channel TEXT) ON COMMIT DROP
            """, connection, transaction))
        {
            await create.ExecuteNonQueryAsync(cancellationToken);
        }
        await using (var writer = await connection.BeginBinaryImportAsync(
            "COPY ledger_plan (key, run_id, destination, segment, profile_id, change, channel) FROM STDIN (FORMAT BINARY)", cancellationToken))
        {
            foreach (var record in records)
            {
                await writer.StartRowAsync(cancellationToken);
                await writer.WriteAsync(record.Key, NpgsqlDbType.Text, cancellationToken);
                await writer.WriteAsync(record.RunId, NpgsqlDbType.Text, cancellationToken);
                await writer.WriteAsync(record.Destination, NpgsqlDbType.Text, cancellationToken);
                await writer.WriteAsync(record.Segment, NpgsqlDbType.Text, cancellationToken);
                await writer.WriteAsync(record.ProfileId, NpgsqlDbType.Bigint, cancellationToken);
                await writer.WriteAsync(record.Change, NpgsqlDbType.Text, cancellationToken);
                if (record.Channel is null)
                {
                    await writer.WriteNullAsync(cancellationToken);
                }
                else
                {
                    await writer.WriteAsync(record.Channel, NpgsqlDbType.Text, cancellationToken);
                }
            }
            await writer.CompleteAsync(cancellationToken);
        }
        // In key order: the primary key's index then fills page after page instead of all over.
        await using var insert = new NpgsqlCommand($"""
            INSERT INTO delivery_records (key, run_id, destination, segment, profile_id, change, channel, state, attempts, planned_at)
            SELECT key, run_id, destination, segment, profile_id, change, channel, 'pending', 0, {Now} FROM ledger_plan ORDER BY key
            ON CONFLICT (key) DO NOTHING
            """, connection, transaction);
        await insert.ExecuteNonQueryAsync(cancellationToken);
    }

    public async Task<IReadOnlySet<string>> SyncedSegmentsAsync(string destination, CancellationToken cancellationToken)
    {
        var result = new HashSet<string>(StringComparer.Ordinal);
        await using var command = _dataSource.CreateCommand("SELECT segment FROM synced_segments WHERE destination = @d");
        command.Parameters.Add(Parameter("d", destination));
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            result.Add(reader.GetString(0));
        }
        return result;
    }

    public async Task<IReadOnlyList<string>> PlannedRunsAsync(CancellationToken cancellationToken)
    {
        var result = new List<string>();
        await using var command = _dataSource.CreateCommand("SELECT run_id FROM delivery_plans GROUP BY run_id ORDER BY min(planned_at), run_id");
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            result.Add(reader.GetString(0));
        }
        return result;
    }

    public async Task<IReadOnlyList<LedgerRecord>> ClaimAsync(string runId, string destination, string change, int limit, TimeSpan lease,
        Func<IReadOnlyList<string>, string> newBatchId, CancellationToken cancellationToken)
    {
        var leaseMicros = (long)lease.TotalMicroseconds;
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var records = await ClaimOrphanAsync(connection, transaction, runId, destination, change, leaseMicros, cancellationToken)
            ?? await ClaimPendingAsync(connection, transaction, runId, destination, change, limit, leaseMicros, newBatchId, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return records;
    }

    /// <summary>
    /// A batch a dead worker left in flight, taken whole under its own id, or null when there is none to take. A batch
    /// is taken by one claimer only (a transaction-level advisory lock on its id, tried, never waited for) and only when
    /// every one of its in-flight rows could be locked: a row locked elsewhere means its worker is still finishing or
    /// renewing it, and a batch is never split.
    /// </summary>
    private static async Task<IReadOnlyList<LedgerRecord>?> ClaimOrphanAsync(NpgsqlConnection connection, NpgsqlTransaction transaction,
        string runId, string destination, string change, long leaseMicros, CancellationToken cancellationToken)
    {
        var candidates = new List<string>();
        await using (var find = new NpgsqlCommand($"""
            SELECT DISTINCT batch_id FROM delivery_records
            WHERE run_id = @r AND destination = @d AND change = @c AND state = 'in_flight' AND lease_until < {Now}
            ORDER BY batch_id LIMIT {OrphanCandidates}
            """, connection, transaction))
        {
            find.Parameters.Add(Parameter("r", runId));
            find.Parameters.Add(Parameter("d", destination));
            find.Parameters.Add(Parameter("c", change));
            await using var reader = await find.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                candidates.Add(reader.GetString(0));
            }
        }
        foreach (var batchId in candidates)
        {
            await using (var tryLock = new NpgsqlCommand("SELECT pg_try_advisory_xact_lock(hashtextextended('engine.delivery_ledger.batch/' || @b, 0))",
                connection, transaction))
            {
                tryLock.Parameters.Add(Parameter("b", batchId));
                if (!(bool)(await tryLock.ExecuteScalarAsync(cancellationToken))!)
                {
                    // Another worker is taking this batch right now.
                    continue;
                }
            }
            // Both counts in one snapshot; the locked rows are re-checked against their latest version, so a batch
            // renewed or claimed since the search above locks fewer rows than it has and is left alone.
            await using (var take = new NpgsqlCommand($"""
                WITH locked AS (
                    SELECT key FROM delivery_records WHERE batch_id = @b AND state = 'in_flight' AND lease_until < {Now}
                    ORDER BY key FOR UPDATE SKIP LOCKED)
                SELECT (SELECT count(*) FROM locked), (SELECT count(*) FROM delivery_records WHERE batch_id = @b AND state = 'in_flight')
                """, connection, transaction))
            {
                take.Parameters.Add(Parameter("b", batchId));
                await using var reader = await take.ExecuteReaderAsync(cancellationToken);
                await reader.ReadAsync(cancellationToken);
                var locked = reader.GetInt64(0);
                if (locked == 0 || locked != reader.GetInt64(1))
                {
                    continue;
                }
            }
            await using var renew = new NpgsqlCommand($"""
                WITH claimed AS (
                    UPDATE delivery_records SET lease_until = {Now} + @l WHERE batch_id = @b AND state = 'in_flight'
                    RETURNING {LedgerSql.Columns})
                SELECT {LedgerSql.Columns} FROM claimed ORDER BY key
                """, connection, transaction);
            renew.Parameters.Add(Parameter("b", batchId));
            renew.Parameters.Add(Parameter("l", leaseMicros));
            await using var records = await renew.ExecuteReaderAsync(cancellationToken);
            return await LedgerSql.ReadAsync(records, cancellationToken);
        }
        return null;
    }

    private static async Task<IReadOnlyList<LedgerRecord>> ClaimPendingAsync(NpgsqlConnection connection, NpgsqlTransaction transaction,
        string runId, string destination, string change, int limit, long leaseMicros, Func<IReadOnlyList<string>, string> newBatchId,
        CancellationToken cancellationToken)
    {
        var keys = new List<string>();
        // Rows another worker is claiming are skipped, not waited for: it takes those, this claim takes the next ones.
        await using (var pending = new NpgsqlCommand("""
            SELECT key FROM delivery_records WHERE run_id = @r AND destination = @d AND change = @c AND state = 'pending'
            ORDER BY key LIMIT @n FOR UPDATE SKIP LOCKED
            """, connection, transaction))
        {
            pending.Parameters.Add(Parameter("r", runId));
            pending.Parameters.Add(Parameter("d", destination));
            pending.Parameters.Add(Parameter("c", change));
            pending.Parameters.Add(Parameter("n", (long)Math.Max(limit, 0)));
            await using var reader = await pending.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                keys.Add(reader.GetString(0));
            }
        }
        if (keys.Count == 0)
        {
            return [];
        }
        var batchId = newBatchId(keys);
        await using var mark = new NpgsqlCommand($"""
            WITH claimed AS (
                UPDATE delivery_records SET state = 'in_flight', batch_id = @b, lease_until = {Now} + @l WHERE key = ANY(@k)
                RETURNING {LedgerSql.Columns})
            SELECT {LedgerSql.Columns} FROM claimed ORDER BY key
            """, connection, transaction);
        mark.Parameters.Add(Parameter("b", batchId));
        mark.Parameters.Add(Parameter("l", leaseMicros));
        mark.Parameters.Add(Parameter("k", keys.ToArray()));
        await using var records = await mark.ExecuteReaderAsync(cancellationToken);
        return await LedgerSql.ReadAsync(records, cancellationToken);
    }

    public async Task RenewAsync(string batchId, TimeSpan lease, CancellationToken cancellationToken)
    {
        await using var command = _dataSource.CreateCommand($"""
            UPDATE delivery_records SET lease_until = {Now} + @l
            WHERE key IN (SELECT key FROM delivery_records WHERE batch_id = @b AND state = 'in_flight' ORDER BY key FOR UPDATE)
            """);
        command.Parameters.Add(Parameter("b", batchId));
        command.Parameters.Add(Parameter("l", (long)lease.TotalMicroseconds));
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    public async Task FinishAsync(IReadOnlyList<FinalOutcome> outcomes, CancellationToken cancellationToken)
    {
        if (outcomes.Count == 0)
        {
            return;
        }
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await FinishCoreAsync(connection, transaction, outcomes, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
    }

    private static async Task FinishCoreAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, IReadOnlyList<FinalOutcome> outcomes,
        CancellationToken cancellationToken)
    {
        if (outcomes.Count == 0)
        {
            return;
        }
        // One row per key, the first outcome given for it (as SQLite's update one after another leaves it).
        var seen = new HashSet<string>(outcomes.Count, StringComparer.Ordinal);
        var keys = new List<string>(outcomes.Count);
        var names = new List<string>(outcomes.Count);
        var reasons = new List<string?>(outcomes.Count);
        var errors = new List<string?>(outcomes.Count);
        var attempts = new List<int>(outcomes.Count);
        foreach (var o in outcomes)
        {
            if (seen.Add(o.Key))
            {
                keys.Add(o.Key);
                names.Add(o.Outcome);
                reasons.Add(o.Reason);
                errors.Add(o.Error);
                attempts.Add(o.Attempts);
            }
        }
        // Rows are locked in key order first (as every change here does), so two transactions never wait on each other
        // in a cycle. A final outcome is never overwritten: a record acknowledged once stays acknowledged.
        await using var update = new NpgsqlCommand($"""
            SELECT count(*) FROM (SELECT key FROM delivery_records WHERE key = ANY(@k) AND state <> 'final' ORDER BY key FOR UPDATE) AS locked;
            UPDATE delivery_records AS r
            SET state = 'final', outcome = f.outcome, reason = f.reason, error = f.error, attempts = f.attempts, finished_at = {Now}, lease_until = NULL
            FROM unnest(@k, @o, @re, @e, @a) AS f (key, outcome, reason, error, attempts)
            WHERE r.key = f.key AND r.state <> 'final';
            """, connection, transaction);
        update.Parameters.Add(Parameter("k", keys.ToArray()));
        update.Parameters.Add(Parameter("o", names.ToArray()));
        update.Parameters.Add(new NpgsqlParameter<string?[]>("re", NpgsqlDbType.Array | NpgsqlDbType.Text) { TypedValue = [.. reasons] });
        update.Parameters.Add(new NpgsqlParameter<string?[]>("e", NpgsqlDbType.Array | NpgsqlDbType.Text) { TypedValue = [.. errors] });
        update.Parameters.Add(Parameter("a", attempts.ToArray()));
        await update.ExecuteNonQueryAsync(cancellationToken);
    }

    public async Task<long> OpenCountAsync(string runId, string destination, CancellationToken cancellationToken)
    {
        await using var command = _dataSource.CreateCommand("SELECT count(*) FROM delivery_records WHERE run_id = @r AND destination = @d AND state <> 'final'");
        command.Parameters.Add(Parameter("r", runId));
        command.Parameters.Add(Parameter("d", destination));
        return (long)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    public async Task<IReadOnlyList<LedgerRecord>> RecordsAsync(string runId, CancellationToken cancellationToken)
    {
        await using var command = _dataSource.CreateCommand($"SELECT {LedgerSql.Columns} FROM delivery_records WHERE run_id = @r ORDER BY key");
        command.Parameters.Add(Parameter("r", runId));
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await LedgerSql.ReadAsync(reader, cancellationToken);
    }

    public async Task<Dictionary<long, int>> DeliveredSinceAsync(string channel, long sinceMicros, CancellationToken cancellationToken)
    {
        var result = new Dictionary<long, int>();
        await using var command = _dataSource.CreateCommand("""
            SELECT profile_id, count(*) FROM delivery_records
            WHERE channel = @c AND outcome = 'delivered' AND change = 'entered' AND finished_at >= @s GROUP BY profile_id
            """);
        command.Parameters.Add(Parameter("c", channel));
        command.Parameters.Add(Parameter("s", sinceMicros));
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            result[reader.GetInt64(0)] = (int)reader.GetInt64(1);
        }
        return result;
    }

    public async Task MarkCompletedAsync(string runId, string destination, CancellationToken cancellationToken)
    {
        await using var command = _dataSource.CreateCommand($"UPDATE delivery_plans SET completed_at = {Now} WHERE run_id = @r AND destination = @d");
        command.Parameters.Add(Parameter("r", runId));
        command.Parameters.Add(Parameter("d", destination));
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    public async Task<bool> IsCompletedAsync(string runId, string destination, CancellationToken cancellationToken)
    {
        await using var command = _dataSource.CreateCommand(
            "SELECT EXISTS (SELECT 1 FROM delivery_plans WHERE run_id = @r AND destination = @d AND completed_at IS NOT NULL)");
        command.Parameters.Add(Parameter("r", runId));
        command.Parameters.Add(Parameter("d", destination));
        return (bool)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    public async Task<string?> GetStateAsync(string runId, string destination, string name, CancellationToken cancellationToken)
    {
        await using var command = _dataSource.CreateCommand("SELECT value FROM destination_state WHERE run_id = @r AND destination = @d AND name = @n");
        command.Parameters.Add(Parameter("r", runId));
        command.Parameters.Add(Parameter("d", destination));
        command.Parameters.Add(Parameter("n", name));
        return await command.ExecuteScalarAsync(cancellationToken) as string;
    }

    public async Task SetStateAsync(string runId, string destination, string name, string value, CancellationToken cancellationToken)
    {
        await using var command = _dataSource.CreateCommand("""
            INSERT INTO destination_state (run_id, destination, name, value) VALUES (@r, @d, @n, @v)
            ON CONFLICT (run_id, destination, name) DO UPDATE SET value = excluded.value
            """);
        command.Parameters.Add(Parameter("r", runId));
        command.Parameters.Add(Parameter("d", destination));
        command.Parameters.Add(Parameter("n", name));
        command.Parameters.Add(Parameter("v", value));
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    public ValueTask DisposeAsync() => _dataSource.DisposeAsync();

    // Typed parameters: no boxing, and the database type follows from the CLR type (text, bigint, text[], integer[]).
    private static NpgsqlParameter<T> Parameter<T>(string name, T value) => new(name, value);
}
