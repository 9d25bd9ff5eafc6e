using Engine.Connectors.Delivery;
using Engine.Connectors.Destinations;
using Engine.Connectors.Destinations.Postgres;
using Engine.Connectors.Ledger;
using Engine.Connectors.Matching;
using Engine.Connectors.Tests.Ledger;
using Engine.Storage;
using Engine.TestKit;
using Engine.Workspaces;
using Npgsql;

namespace Engine.Connectors.Tests.Destinations;

/// <summary>
/// The PostgreSQL table destination against a real server (<see cref="PostgresServer"/>): each test works in a schema
/// of its own, reads the table back with SQL, and checks what each kind of failure becomes.
/// </summary>
[Collection(SharedPostgres.Name)]
public sealed class PostgresDestinationTests(PostgresServer server)
{
    private const string Run = "run1";

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Entries_then_exits_upsert_one_row_per_member_and_a_batch_sent_again_changes_nothing()
    {
        var connection = await server.CreateSchemaAsync("pgdest");
        var definition = Definition(connection, identifyBy: ["email"], fields: [("tier", "loyalty_tier"), ("orders", "orders")]);
        await using var destination = new PostgresDestination(definition, [("tier", ColumnType.String), ("orders", ColumnType.Int64)]);

        var entries = Batch(RecordOperation.Add, [.. new long[] { 1, 2, 3 }.Select(p => Record(RecordOperation.Add, p, "vip",
            new Dictionary<string, object?> { ["tier"] = p == 3 ? null : "gold", ["orders"] = p * 10 }))]);
        var first = await destination.SendAsync(entries, Cancel);
        var afterEntries = await RowsAsync(connection, "members");
        var again = await destination.SendAsync(entries, Cancel);
        var afterRepeat = await RowsAsync(connection, "members");

        Assert.All(first.Concat(again), r => Assert.Equal(RecordStatus.Delivered, r.Status));
        Assert.Equal(entries.Records.Select(r => r.Key), first.Select(r => r.Key));
        Assert.Equal(
            [
                "vip|1|True|p1@example.com|gold|10|" + entries.Records[0].Key,
                "vip|2|True|p2@example.com|gold|20|" + entries.Records[1].Key,
                "vip|3|True|p3@example.com|null|30|" + entries.Records[2].Key,
            ],
            afterEntries.Select(r => r.Line));
        // Not even updated_at moves: the repeat touched no row.
        Assert.Equal(afterEntries, afterRepeat);

        // Profile 2 leaves, with fields that changed since: an exit keeps the row's fields and only drops the membership.
        var exits = Batch(RecordOperation.Remove, [Record(RecordOperation.Remove, 2, "vip", new Dictionary<string, object?> { ["tier"] = "silver", ["orders"] = 99L })]);
        var removed = await destination.SendAsync(exits, Cancel);
        var afterExit = await RowsAsync(connection, "members");
        await destination.SendAsync(exits, Cancel);
        var afterExitRepeat = await RowsAsync(connection, "members");

        Assert.Equal(RecordStatus.Delivered, Assert.Single(removed).Status);
        Assert.Equal("vip|2|False|p2@example.com|gold|20|" + exits.Records[0].Key, afterExit[1].Line);
        Assert.True(afterExit[1].UpdatedAt >= afterEntries[1].UpdatedAt);
        Assert.Equal(afterEntries[0], afterExit[0]);
        Assert.Equal(afterEntries[2], afterExit[2]);
        Assert.Equal(afterExit, afterExitRepeat);
    }

    [Fact]
    public async Task The_table_is_created_with_typed_columns_and_values_arrive_typed()
    {
        var connection = await server.CreateSchemaAsync("pgdest");
        // Mixed case, as someone might write it: the names fold to lower case, as unquoted names do in SQL.
        var schema = $"Audience_{Guid.NewGuid():N}";
        var definition = Definition(connection, table: $"{schema}.Loyalty", fields: [("seen_at", "last_seen"), ("score", "score"), ("opted", "opted_in"),
            ("born", "birthday"), ("nickname", "nickname"), ("visits", "visits")]);
        await ExecuteAsync(connection, $"CREATE SCHEMA {schema}");
        await using var destination = new PostgresDestination(definition,
            [("seen_at", ColumnType.Timestamp), ("score", ColumnType.Double), ("opted", ColumnType.Boolean), ("born", ColumnType.Date),
             ("nickname", ColumnType.String), ("visits", ColumnType.Int64)]);
        var seen = new DateTimeOffset(2026, 3, 14, 15, 9, 26, 535, TimeSpan.FromHours(2)).AddTicks(8_970);
        var record = Record(RecordOperation.Add, 7, "vip", new Dictionary<string, object?>
        {
            ["seen_at"] = seen, ["score"] = 0.125, ["opted"] = true, ["born"] = new DateOnly(1990, 2, 28), ["nickname"] = null, ["visits"] = null,
        });

        var results = await destination.SendAsync(Batch(RecordOperation.Add, [record]), Cancel);

        Assert.Equal(RecordStatus.Delivered, Assert.Single(results).Status);
        var types = await QueryAsync(connection,
            $"SELECT column_name || ' ' || data_type FROM information_schema.columns WHERE table_schema = '{schema.ToLowerInvariant()}' AND table_name = 'loyalty' ORDER BY ordinal_position",
            r => r.GetString(0));
        Assert.Equal(
            [
                "segment text", "profile_id bigint", "member boolean", "seen_at timestamp with time zone", "score double precision", "opted boolean",
                "born date", "nickname text", "visits bigint", "last_key text", "updated_at timestamp with time zone",
            ],
            types);
        var row = Assert.Single(await QueryAsync(connection, $"SELECT seen_at, score, opted, born, nickname, visits FROM {schema}.loyalty",
            r => (r.GetFieldValue<DateTimeOffset>(0), r.GetDouble(1), r.GetBoolean(2), r.GetFieldValue<DateOnly>(3), r.IsDBNull(4), r.IsDBNull(5))));
        // The same instant, to the microsecond (535.897 ms), whatever the offset it was written with.
        Assert.Equal(seen, row.Item1);
        Assert.Equal((0.125, true, new DateOnly(1990, 2, 28), true, true), (row.Item2, row.Item3, row.Item4, row.Item5, row.Item6));
    }

    [Fact]
    public async Task A_value_the_column_cannot_take_rejects_its_record_and_the_rest_are_written()
    {
        var connection = await server.CreateSchemaAsync("pgdest");
        var definition = Definition(connection, fields: [("visits", "visits"), ("nickname", "nickname")]);
        await using var destination = new PostgresDestination(definition, [("visits", ColumnType.Int64), ("nickname", ColumnType.String)]);
        var batch = Batch(RecordOperation.Add,
        [
            Record(RecordOperation.Add, 1, "vip", new Dictionary<string, object?> { ["visits"] = 3L, ["nickname"] = "ok" }),
            Record(RecordOperation.Add, 2, "vip", new Dictionary<string, object?> { ["visits"] = "three", ["nickname"] = "ok" }),
            Record(RecordOperation.Add, 3, "vip", new Dictionary<string, object?> { ["visits"] = 1L, ["nickname"] = "a\0b" }),
        ]);

        var results = await destination.SendAsync(batch, Cancel);

        Assert.Equal([RecordStatus.Delivered, RecordStatus.Rejected, RecordStatus.Rejected], results.Select(r => r.Status));
        Assert.Contains("'visits'", results[1].Reason, StringComparison.Ordinal);
        Assert.Contains("NUL", results[2].Reason, StringComparison.Ordinal);
        Assert.Equal([1L], await QueryAsync(connection, "SELECT profile_id FROM members", r => r.GetInt64(0)));
    }

    [Fact]
    public async Task A_table_missing_a_column_is_fatal_and_names_the_table_and_the_column()
    {
        var connection = await server.CreateSchemaAsync("pgdest");
        await ExecuteAsync(connection, "CREATE TABLE members (segment text, profile_id bigint, member boolean, tier text, updated_at timestamptz, PRIMARY KEY (segment, profile_id))");
        var definition = Definition(connection, fields: [("tier", "loyalty_tier")]);
        await using var destination = new PostgresDestination(definition, [("tier", ColumnType.String)]);

        var e = await Assert.ThrowsAsync<DestinationException>(() => destination.SendAsync(
            Batch(RecordOperation.Add, [Record(RecordOperation.Add, 1, "vip", new Dictionary<string, object?> { ["tier"] = "gold" })]), Cancel));

        Assert.Equal((FailureKind.Fatal, "table_mismatch"), (e.Kind, e.Reason));
        Assert.Contains("table members has no column last_key", e.Message, StringComparison.Ordinal);
        // Nothing altered, nothing written.
        Assert.Empty(await QueryAsync(connection, "SELECT profile_id FROM members", r => r.GetInt64(0)));
        Assert.DoesNotContain("last_key", await QueryAsync(connection,
            "SELECT column_name::text FROM information_schema.columns WHERE table_name = 'members' AND table_schema = current_schema()", r => r.GetString(0)));
    }

    [Fact]
    public async Task A_value_the_table_refuses_fails_the_batch_for_good_and_writes_none_of_it()
    {
        var connection = await server.CreateSchemaAsync("pgdest");
        // The table was made by hand with a narrower column than the destination would have chosen.
        await ExecuteAsync(connection, "CREATE TABLE members (segment text, profile_id bigint, member boolean, tier varchar(4), last_key text, " +
            "updated_at timestamptz, PRIMARY KEY (segment, profile_id))");
        var definition = Definition(connection, fields: [("tier", "loyalty_tier")]);
        await using var destination = new PostgresDestination(definition, [("tier", ColumnType.String)]);

        var e = await Assert.ThrowsAsync<DestinationException>(() => destination.SendAsync(Batch(RecordOperation.Add,
        [
            Record(RecordOperation.Add, 1, "vip", new Dictionary<string, object?> { ["tier"] = "gold" }),
            Record(RecordOperation.Add, 2, "vip", new Dictionary<string, object?> { ["tier"] = "platinum" }),
        ]), Cancel));

        Assert.Equal((FailureKind.Permanent, "postgres_22001"), (e.Kind, e.Reason));
        Assert.Empty(await QueryAsync(connection, "SELECT profile_id FROM members", r => r.GetInt64(0)));
    }

    [Fact]
    public async Task An_unknown_role_or_one_without_rights_is_fatal()
    {
        var connection = await server.CreateSchemaAsync("pgdest");
        var role = $"engine_reader_{Guid.NewGuid():N}";
        var schema = new NpgsqlConnectionStringBuilder(connection).SearchPath;
        // Allowed to look in the schema, not to create in it.
        await ExecuteAsync(connection, $"CREATE ROLE {role} LOGIN; GRANT USAGE ON SCHEMA {schema} TO {role}");
        try
        {
            var unknown = new NpgsqlConnectionStringBuilder(connection) { Username = $"nobody_{Guid.NewGuid():N}", Password = "wrong" }.ToString();
            var powerless = new NpgsqlConnectionStringBuilder(connection) { Username = role, Password = "wrong" }.ToString();
            var batch = Batch(RecordOperation.Add, [Record(RecordOperation.Add, 1, "vip")]);

            await using var asUnknown = new PostgresDestination(Definition(unknown), []);
            var refused = await Assert.ThrowsAsync<DestinationException>(() => asUnknown.SendAsync(batch, Cancel));
            await using var asPowerless = new PostgresDestination(Definition(powerless), []);
            var denied = await Assert.ThrowsAsync<DestinationException>(() => asPowerless.SendAsync(batch, Cancel));

            Assert.Equal(FailureKind.Fatal, refused.Kind);
            Assert.StartsWith("postgres_28", refused.Reason, StringComparison.Ordinal);
            Assert.Equal((FailureKind.Fatal, "postgres_42501"), (denied.Kind, denied.Reason));
            Assert.Contains("table members", denied.Message, StringComparison.Ordinal);
            Assert.DoesNotContain("wrong", refused.Message + denied.Message, StringComparison.Ordinal);
        }
        finally
        {
            await ExecuteAsync(connection, $"DROP OWNED BY {role}; DROP ROLE {role}");
        }
    }

    [Fact]
    public async Task A_missing_variable_a_table_name_that_is_not_an_identifier_and_clashing_columns_are_refused_before_connecting()
    {
        var unset = new DestinationDefinition
        {
            Name = "warehouse", File = "destinations/warehouse.yaml", Type = DestinationType.Postgres, Segments = ["vip"], IdentifyBy = [],
            BatchSize = 100, RateLimit = new RateLimit(100, 1, 100), Settings = new Dictionary<string, string> { ["table"] = "members" },
            Credentials = new Dictionary<string, string> { ["connection"] = "ENGINE_TEST_UNSET_" + Guid.NewGuid().ToString("N").ToUpperInvariant() },
        };
        var missing = Assert.Throws<DestinationException>(() => new PostgresDestination(unset, []));
        const string Secret = "Host=127.0.0.1;Password=hunter2";
        var badTable = Assert.Throws<DestinationException>(() => new PostgresDestination(Definition(Secret, table: "members; DROP TABLE x"), []));
        var tooDeep = Assert.Throws<DestinationException>(() => new PostgresDestination(Definition(Secret, table: "a.b.c"), []));
        var clash = Assert.Throws<DestinationException>(() => new PostgresDestination(
            Definition(Secret, identifyBy: ["email"], fields: [("Email", "email")]), [("Email", ColumnType.String)]));
        var reserved = Assert.Throws<DestinationException>(() => new PostgresDestination(
            Definition(Secret, fields: [("member", "is_member")]), [("member", ColumnType.Boolean)]));
        var unreadable = Assert.Throws<DestinationException>(() => new PostgresDestination(Definition("hunter2;Frobnicate=hunter2"), []));

        Assert.All([missing, badTable, tooDeep, clash, reserved, unreadable], e => Assert.Equal(FailureKind.Fatal, e.Kind));
        Assert.Equal("missing_credential", missing.Reason);
        Assert.Contains(unset.Credentials["connection"], missing.Message, StringComparison.Ordinal);
        Assert.Equal(("invalid_table", "invalid_table"), (badTable.Reason, tooDeep.Reason));
        Assert.Contains("'members; DROP TABLE x' is not a table name", badTable.Message, StringComparison.Ordinal);
        Assert.Equal(("invalid_column", "invalid_column"), (clash.Reason, reserved.Reason));
        Assert.Contains("second column named email", clash.Message, StringComparison.Ordinal);
        Assert.Equal("invalid_connection", unreadable.Reason);
        Assert.DoesNotContain("hunter2", unreadable.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_statement_held_up_past_the_time_limit_is_a_transient_timeout()
    {
        var connection = await server.CreateSchemaAsync("pgdest");
        var definition = Definition(connection, timeout: TimeSpan.FromMilliseconds(700));
        await using var destination = new PostgresDestination(definition, []);
        var batch = Batch(RecordOperation.Add, [Record(RecordOperation.Add, 1, "vip")]);
        await destination.SendAsync(batch, Cancel);

        // Another session holds the table locked: the upsert waits, and the destination gives up at its limit.
        await using var blocker = new NpgsqlConnection(connection);
        await blocker.OpenAsync(Cancel);
        await using var transaction = await blocker.BeginTransactionAsync(Cancel);
        await using (var lockTable = new NpgsqlCommand("LOCK TABLE members IN ACCESS EXCLUSIVE MODE", blocker, transaction))
        {
            await lockTable.ExecuteNonQueryAsync(Cancel);
        }
        var e = await Assert.ThrowsAsync<DestinationException>(() => destination.SendAsync(
            Batch(RecordOperation.Remove, [Record(RecordOperation.Remove, 1, "vip")]), Cancel));
        await transaction.RollbackAsync(Cancel);

        Assert.Equal((FailureKind.Transient, "timeout"), (e.Kind, e.Reason));
        Assert.Equal([true], await QueryAsync(connection, "SELECT member FROM members", r => r.GetBoolean(0)));
    }

    [Fact]
    public async Task A_delivery_through_the_worker_leaves_every_record_delivered_and_the_table_equal_to_the_changes()
    {
        var connection = await server.CreateSchemaAsync("pgdest");
        var definition = Definition(connection, identifyBy: ["customer_id"], fields: [("tier", "loyalty_tier")], batchSize: 64);
        var identifiers = new Dictionary<long, IReadOnlyList<ProfileIdentifier>>();
        var fields = new Dictionary<long, IReadOnlyDictionary<string, object?>>();
        for (var p = 1; p <= 400; p++)
        {
            identifiers[p] = [new("customer_id", $"c{p}"), new("email", $"p{p}@example.com")];
            fields[p] = new Dictionary<string, object?> { ["loyalty_tier"] = p % 4 == 0 ? null : "gold" };
        }
        var deltas = new List<Delta>();
        deltas.AddRange(Enumerable.Range(1, 300).Select(p => new Delta("vip", p, DeliveryKeys.Entered)));
        deltas.AddRange(Enumerable.Range(250, 100).Select(p => new Delta("churn-risk", p, DeliveryKeys.Entered)));
        deltas.AddRange(Enumerable.Range(351, 50).Select(p => new Delta("vip", p, DeliveryKeys.Exited)));
        await using var destination = new PostgresDestination(definition, [("tier", ColumnType.String)]);
        using var folder = new TempDirectory("pgdest");

        var result = await LedgerDelivery.RunAsync(definition, destination, ProfileDirectory.FromMemory(identifiers, fields), deltas, folder.Combine("ledger.db"), Cancel);

        Assert.Null(result.Worker.StoppedBy);
        Assert.Equal(deltas.Count, result.Records.Count);
        Assert.All(result.Records, r => Assert.Equal(("final", Outcomes.Delivered), (r.State, r.Outcome)));
        Assert.True(result.Report.Completed);
        Assert.Equal((400, 50), (result.Report.Added, result.Report.Removed));
        Assert.True(result.Worker.Batches > deltas.Count / 64);
        var expected = result.Records
            .Select(r => $"{r.Segment}|{r.ProfileId}|{r.Change == DeliveryKeys.Entered}|c{r.ProfileId}|{(r.ProfileId % 4 == 0 ? "null" : "gold")}|{r.Key}")
            .Order(StringComparer.Ordinal);
        var rows = await RowsAsync(connection, "members", identifierColumn: "customer_id");
        Assert.Equal(expected, rows.Select(r => r.Line).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task A_destination_file_loads_and_the_factory_builds_a_table_typed_from_the_profile_columns()
    {
        var connection = await server.CreateSchemaAsync("pgdest");
        using var dir = new TempDirectory("pgdest-workspace");
        void Write(string path, string text)
        {
            var full = dir.Combine(path);
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            File.WriteAllText(full, text);
        }
        Write("workspace.yaml", "name: shop\nversion: 1\n");
        Write("identity.yaml", "identifier_types:\n  customer_id: { normalizer: id }\n  email: { normalizer: email }\n");
        Write("sources/crm.yaml", """
            name: crm
            location: data/crm
            format: parquet
            timestamp: updated_at
            columns:
              customer_id: string
              email: string
              tier: string
              joined_at: timestamp
              updated_at: timestamp
            identifiers:
              customer_id: customer_id
              email: email
            """);
        Write("profiles.yaml", "attributes:\n  - { source: crm, columns: [tier, joined_at] }\n");
        Write("segments/vip.yaml", "name: vip\ndescription: gold\ncondition: tier = 'gold'\n");
        var variable = AdDelivery.Variable(connection);
        Write("destinations/warehouse.yaml", $"""
            name: warehouse
            type: postgres
            segments: [vip]
            mode: upsert
            identify_by: [customer_id]
            fields: {"{"} tier: tier, joined: joined_at {"}"}
            settings: {"{"} table: vip_members {"}"}
            credentials: {"{"} connection: {variable} {"}"}
            """);
        var workspace = WorkspaceLoader.Load(dir.Path);
        var definition = Assert.Single(DestinationsLoader.Load(workspace).Destinations);
        using var storage = new StorageResolver();

        await using var client = DestinationFactory.Create(definition, new DestinationContext(workspace, storage, storage.Resolve(dir.Path)));
        var joined = new DateTimeOffset(2025, 1, 2, 3, 4, 5, TimeSpan.Zero);
        await client.SendAsync(Batch(RecordOperation.Add,
            [Record(RecordOperation.Add, 5, "vip", new Dictionary<string, object?> { ["tier"] = "gold", ["joined"] = joined })]), Cancel);

        Assert.Equal((DestinationType.Postgres, 5_000, ConsentRule.None), (definition.Type, definition.BatchSize, definition.Consent));
        Assert.IsType<PostgresDestination>(client);
        Assert.Equal(["customer_id text", "tier text", "joined timestamp with time zone"], await QueryAsync(connection,
            "SELECT column_name || ' ' || data_type FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'vip_members' " +
            "AND column_name IN ('customer_id', 'tier', 'joined') ORDER BY ordinal_position", r => r.GetString(0)));
        Assert.Equal([(5L, "c5", joined)], await QueryAsync(connection, "SELECT profile_id, customer_id, joined FROM vip_members",
            r => (r.GetInt64(0), r.GetString(1), r.GetFieldValue<DateTimeOffset>(2))));
    }

    private static DestinationDefinition Definition(string connectionString, string table = "members", IReadOnlyList<string>? identifyBy = null,
        IReadOnlyList<(string Field, string Column)>? fields = null, int batchSize = 5_000, TimeSpan? timeout = null) => new()
        {
            Name = "warehouse",
            File = "destinations/warehouse.yaml",
            Type = DestinationType.Postgres,
            Segments = ["vip", "churn-risk"],
            Consent = ConsentRule.None,
            IdentifyBy = identifyBy ?? [],
            Fields = fields ?? [],
            BatchSize = batchSize,
            RateLimit = new RateLimit(1_000, 1, 1_000),
            // A failure that should not happen fails the test quickly instead of being retried for minutes.
            Retry = new RetrySettings(2, TimeSpan.FromMilliseconds(10), TimeSpan.FromMilliseconds(50)),
            Timeout = timeout ?? TimeSpan.FromSeconds(30),
            Settings = new Dictionary<string, string> { ["table"] = table },
            Credentials = new Dictionary<string, string> { ["connection"] = AdDelivery.Variable(connectionString) },
        };

    private static OutgoingRecord Record(RecordOperation operation, long profile, string segment, IReadOnlyDictionary<string, object?>? fields = null)
        => new(DeliveryKeys.Record(Run, segment, "warehouse", profile, operation == RecordOperation.Add ? DeliveryKeys.Entered : DeliveryKeys.Exited),
            segment, profile, operation, [new ProfileIdentifier("customer_id", $"c{profile}"), new ProfileIdentifier("email", $"p{profile}@example.com")],
            fields ?? new Dictionary<string, object?>());

    private static DestinationBatch Batch(RecordOperation operation, IReadOnlyList<OutgoingRecord> records)
        => new(DeliveryKeys.Batch("warehouse", [.. records.Select(r => r.Key)]), Run, operation, records);

    /// <summary>A row of the table as text (segment|profile|member|identifier|fields…|last_key), with its updated_at.</summary>
    private sealed record TableRow(string Line, DateTime UpdatedAt);

    private static Task<List<TableRow>> RowsAsync(string connection, string table, string identifierColumn = "email")
        => QueryAsync(connection, $"SELECT * FROM {table} ORDER BY segment, profile_id", r =>
        {
            var values = new List<string>();
            for (var i = 0; i < r.FieldCount - 1; i++)
            {
                values.Add(r.IsDBNull(i) ? "null" : Convert.ToString(r.GetValue(i), System.Globalization.CultureInfo.InvariantCulture)!);
            }
            Assert.Equal("updated_at", r.GetName(r.FieldCount - 1));
            Assert.Equal(identifierColumn, r.GetName(3));
            return new TableRow(string.Join('|', values), r.GetDateTime(r.FieldCount - 1));
        });

    private static async Task<List<T>> QueryAsync<T>(string connection, string sql, Func<NpgsqlDataReader, T> read)
    {
        await using var dataSource = NpgsqlDataSource.Create(connection);
        await using var command = dataSource.CreateCommand(sql);
        await using var reader = await command.ExecuteReaderAsync(Cancel);
        var result = new List<T>();
        while (await reader.ReadAsync(Cancel))
        {
            result.Add(read(reader));
        }
        return result;
    }

    private static async Task ExecuteAsync(string connection, string sql)
    {
        await using var dataSource = NpgsqlDataSource.Create(connection);
        await using var command = dataSource.CreateCommand(sql);
        await command.ExecuteNonQueryAsync(Cancel);
    }
}
