using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Engine.Connectors.Destinations.Webhook;
using Engine.TestKit;
using Engine.WebhookReceiver;
using Receiver = Engine.WebhookReceiver.WebhookReceiver;

namespace Engine.Connectors.Tests.Destinations;

/// <summary>
/// The reference receiver (<c>connectors/Engine.WebhookReceiver</c>, which <c>make run</c> starts for its webhook)
/// holds to the webhook contract: signatures and timestamps checked, idempotency keys honoured across restarts, each
/// record stored once and answered by key.
/// </summary>
public sealed class WebhookReceiverTests
{
    private static readonly byte[] Secret = Encoding.UTF8.GetBytes("receiver-test-secret");

    private static byte[] Body(string batch, params (string Key, string Change)[] records)
    {
        var json = new JsonObject
        {
            ["batch_id"] = batch, ["run_id"] = "night1", ["destination"] = "hook",
            ["records"] = new JsonArray([.. records.Select((r, i) => (JsonNode)new JsonObject
            {
                ["key"] = r.Key, ["segment"] = "vip", ["profile_id"] = i + 1, ["change"] = r.Change,
                ["identifiers"] = new JsonObject(), ["fields"] = new JsonObject(),
            })]),
        };
        return Encoding.UTF8.GetBytes(json.ToJsonString());
    }

    private static string Now() => DateTimeOffset.UtcNow.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);

    private static ReceiverAnswer Post(Receiver receiver, byte[] body, string key, string? timestamp = null, byte[]? secret = null)
    {
        var ts = timestamp ?? Now();
        return receiver.Receive(body, ts, "sha256=" + WebhookDestination.Sign(secret ?? Secret, ts, body), key);
    }

    [Fact]
    public void A_signed_batch_is_stored_once_per_record_and_a_repeated_key_gets_the_first_answer_even_after_a_restart()
    {
        using var dir = new TempDirectory("receiver");
        var body = Body("b1", ("k1", "entered"), ("k2", "exited"), ("k3", "sideways"));
        byte[] first;
        using (var receiver = new Receiver(dir.Path, Secret, TimeSpan.FromMinutes(5), TimeProvider.System))
        {
            var answer = Post(receiver, body, "b1");
            Assert.Equal(200, answer.Status);
            first = answer.Body;
            var results = JsonNode.Parse(first)!["results"]!.AsArray().ToDictionary(r => r!["key"]!.GetValue<string>(), r => r!["status"]!.GetValue<string>());
            Assert.Equal(new Dictionary<string, string> { ["k1"] = "ok", ["k2"] = "ok", ["k3"] = "rejected" }, results);
            // The same batch again (its answer was lost): the same answer, nothing applied twice.
            Assert.Equal(first, Post(receiver, body, "b1").Body);
            // A record sent again in another batch is acknowledged and not stored twice.
            Assert.Equal(200, Post(receiver, Body("b2", ("k1", "entered")), "b2").Status);
            Assert.Contains("2 records in 2 batches", receiver.Summary(), StringComparison.Ordinal);
            Assert.Contains("1 repeated batches", receiver.Summary(), StringComparison.Ordinal);
            Assert.Contains("1 duplicate records, 1 rejected", receiver.Summary(), StringComparison.Ordinal);
        }
        using (var restarted = new Receiver(dir.Path, Secret, TimeSpan.FromMinutes(5), TimeProvider.System))
        {
            Assert.Equal(2, restarted.StoredRecords);
            Assert.Equal(first, Post(restarted, body, "b1").Body);
        }
        var stored = File.ReadAllLines(Path.Combine(dir.Path, Receiver.RecordsFileName)).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.Equal(["k1", "k2"], stored.Select(l => l["record"]!["key"]!.GetValue<string>()));
        Assert.All(stored, l => Assert.Equal("night1", l["run_id"]!.GetValue<string>()));
    }

    [Fact]
    public void Forged_stale_or_keyless_calls_are_refused_and_apply_nothing()
    {
        using var dir = new TempDirectory("receiver");
        using var receiver = new Receiver(dir.Path, Secret, TimeSpan.FromMinutes(5), TimeProvider.System);
        var body = Body("b1", ("k1", "entered"));
        Assert.Equal(401, Post(receiver, body, "b1", secret: Encoding.UTF8.GetBytes("wrong")).Status);
        Assert.Equal(401, receiver.Receive(body, Now(), "sha256=00", "b1").Status);
        var old = DateTimeOffset.UtcNow.AddMinutes(-10).ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
        Assert.Equal(401, Post(receiver, body, "b1", timestamp: old).Status);
        Assert.Equal(400, Post(receiver, body, "").Status);
        Assert.Equal(400, Post(receiver, Encoding.UTF8.GetBytes("""{"records": [{"segment": "vip"}]}"""), "b9").Status);
        Assert.Equal(0, new FileInfo(Path.Combine(dir.Path, Receiver.RecordsFileName)).Length);
        // The refusals left the key free: the genuine call is applied.
        Assert.Equal(200, Post(receiver, body, "b1").Status);
        Assert.Contains("1 records in 1 batch", receiver.Summary(), StringComparison.Ordinal);
    }
}
