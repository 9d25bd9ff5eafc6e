using System.Text.Json;
using Engine.Connectors.Destinations;
using Engine.Connectors.Destinations.Files;
using Engine.Connectors.Destinations.Webhook;
using Engine.Connectors.Tests.ContractServers;
using Engine.Storage;
using Engine.TestKit;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Engine.Connectors.Tests.Destinations;

/// <summary>The file export to S3 (a real S3 protocol server), and what the webhook makes of answers it cannot use.</summary>
public sealed class FileAndWebhookTests : IClassFixture<S3Server>
{
    private readonly S3Server _s3;

    public FileAndWebhookTests(S3Server s3) => _s3 = s3;

    private static DestinationDefinition Definition(DestinationType type, Dictionary<string, string> settings, Dictionary<string, string>? credentials = null) => new()
    {
        Name = "out",
        File = "destinations/out.yaml",
        Type = type,
        Segments = ["vip"],
        Consent = ConsentRule.None,
        IdentifyBy = ["email"],
        Fields = [("ltv", "lifetime_value"), ("seen", "last_seen_at")],
        BatchSize = 100,
        RateLimit = new RateLimit(100, 1, 100),
        Timeout = TimeSpan.FromSeconds(5),
        Settings = settings,
        Credentials = credentials ?? [],
    };

    private static OutgoingRecord Record(long profile, RecordOperation operation = RecordOperation.Add) => new(
        $"r1/vip/out/{profile}/{(operation == RecordOperation.Add ? "entered" : "exited")}", "vip", profile, operation,
        [new ProfileIdentifier("email", $"p{profile}@example.com")],
        new Dictionary<string, object?> { ["ltv"] = profile * 1.5, ["seen"] = new DateTimeOffset(2026, 10, 1, 12, 0, 0, TimeSpan.Zero) });

    [Fact]
    public async Task A_parquet_export_to_S3_writes_one_part_per_batch_and_a_resent_batch_replaces_its_own()
    {
        using var store = _s3.CreateStore();
        var root = new StorageLocation(store, $"{_s3.RunPrefix}exports/{Guid.NewGuid():N}");
        await using var destination = new FileDestination(Definition(DestinationType.File, new() { ["path"] = "unused", ["format"] = "parquet" }), root,
            [("ltv", ColumnType.Double), ("seen", ColumnType.Timestamp)]);
        var first = new DestinationBatch("b1", "r1", RecordOperation.Add, [Record(1), Record(2)]);
        var second = new DestinationBatch("b2", "r1", RecordOperation.Remove, [Record(3, RecordOperation.Remove)]);
        var cancel = TestContext.Current.CancellationToken;
        Assert.All(await destination.SendAsync(first, cancel), r => Assert.Equal(RecordStatus.Delivered, r.Status));
        await destination.SendAsync(second, cancel);
        await destination.SendAsync(first, cancel);
        await destination.CompleteAsync("r1", cancel);

        var keys = (await store.ListAsync(root.Key + "/r1/", cancel)).Select(o => o.Key[(root.Key.Length + 4)..]).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(["_delivery.json", "part-b1.parquet", "part-b2.parquet"], keys);
        var marker = JsonDocument.Parse((await store.GetAsync(root.Key + "/r1/_delivery.json", cancel))!).RootElement;
        Assert.Equal(2, marker.GetProperty("parts").GetArrayLength());

        using var file = ParquetDataFile.Open(store, root.Key + "/r1/part-b1.parquet");
        Assert.Equal(2, file.RowCount);
        Assert.Equal(["key", "run_id", "segment", "profile_id", "change", "email", "ltv", "seen"], file.Schema.FieldsList.Select(f => f.Name));
    }

    [Fact]
    public async Task A_webhook_answer_that_cannot_be_read_is_retried_and_a_400_fails_only_what_it_names()
    {
        await using var server = new ScriptedServer();
        await server.StartAsync();
        Environment.SetEnvironmentVariable("ENGINE_TEST_HOOK_SECRET_FW", "k");
        await using var hook = new WebhookDestination(Definition(DestinationType.Webhook, new() { ["url"] = new Uri(server.BaseUrl, "hook").ToString() },
            new() { ["secret"] = "ENGINE_TEST_HOOK_SECRET_FW" }));
        var batch = new DestinationBatch("b1", "r1", RecordOperation.Add, [Record(1), Record(2)]);
        var cancel = TestContext.Current.CancellationToken;

        server.Next = (200, "<html>gateway says hello</html>");
        var garbage = await Assert.ThrowsAsync<DestinationException>(() => hook.SendAsync(batch, cancel));
        Assert.Equal(("invalid_response", FailureKind.Transient), (garbage.Reason, garbage.Kind));
        Assert.Contains("gateway says hello", garbage.Detail, StringComparison.Ordinal);

        server.Next = (400, """{"error":"bad batch"}""");
        var refused = await Assert.ThrowsAsync<DestinationException>(() => hook.SendAsync(batch, cancel));
        Assert.Equal(("http_400", FailureKind.Permanent), (refused.Reason, refused.Kind));

        server.Next = (400, """{"results":[{"key":"r1/vip/out/2/entered","status":"rejected","reason":"invalid address"}]}""");
        var results = await hook.SendAsync(batch, cancel);
        Assert.Equal([RecordStatus.Retry, RecordStatus.Rejected], results.Select(r => r.Status));
        Assert.Equal("invalid address", results[1].Reason);

        server.Next = (200, """{"results":[{"key":"r1/vip/out/1/entered","status":"retry","reason":"busy"}]}""");
        results = await hook.SendAsync(batch, cancel);
        Assert.Equal([RecordStatus.Retry, RecordStatus.Delivered], results.Select(r => r.Status));

        server.Next = (401, "");
        Assert.Equal(FailureKind.Fatal, (await Assert.ThrowsAsync<DestinationException>(() => hook.SendAsync(batch, cancel))).Kind);
    }

    /// <summary>Answers the next request with what the test sets.</summary>
    private sealed class ScriptedServer() : ContractServer(null)
    {
        public (int Status, string Body) Next { get; set; } = (200, "");

        protected override void Map(WebApplication app) => app.MapPost("/hook", async context =>
        {
            await context.Request.Body.CopyToAsync(Stream.Null);
            context.Response.StatusCode = Next.Status;
            await context.Response.WriteAsync(Next.Body);
        });
    }
}
