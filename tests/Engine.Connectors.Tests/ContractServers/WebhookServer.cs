using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Engine.Connectors.Tests.ContractServers;

/// <summary>
/// A receiver of the engine's webhook contract (README, "Webhook destinations"): <c>POST /hook</c> with a JSON batch,
/// <c>X-Engine-Timestamp</c> and <c>X-Engine-Signature</c> checked (401 when wrong), <c>Idempotency-Key</c> honoured
/// (a repeated key gets the first answer and applies nothing), per-record results, and one record in
/// <see cref="RejectEvery"/> refused as invalid.
/// </summary>
public sealed class WebhookServer : ContractServer
{
    private readonly byte[] _secret;
    private readonly ConcurrentDictionary<string, byte[]> _answers = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    public WebhookServer(string secret, FaultPlan? faults = null) : base(faults) => _secret = Encoding.UTF8.GetBytes(secret);

    /// <summary>Records whose profile id is a multiple of this are rejected ("invalid address"); 0: none.</summary>
    public int RejectEvery { get; init; }

    /// <summary>Times each record was applied (added or removed), by key.</summary>
    public ConcurrentDictionary<string, int> Applied { get; } = new(StringComparer.Ordinal);

    /// <summary>Records refused per-record, by key (each counted once).</summary>
    public ConcurrentDictionary<string, int> Rejected { get; } = new(StringComparer.Ordinal);

    /// <summary>Requests answered from the idempotency store (a batch sent again whose first answer was lost).</summary>
    public int Replays => _replays;

    private int _replays;

    public Uri Url => new(BaseUrl, "hook");

    protected override void Map(WebApplication app) => app.MapPost("/hook", async context =>
    {
        using var buffer = new MemoryStream();
        await context.Request.Body.CopyToAsync(buffer, context.RequestAborted);
        var body = buffer.ToArray();
        var timestamp = context.Request.Headers["X-Engine-Timestamp"].ToString();
        using (var hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, _secret))
        {
            hmac.AppendData(Encoding.UTF8.GetBytes(timestamp + "."));
            hmac.AppendData(body);
            if (context.Request.Headers["X-Engine-Signature"].ToString() != "sha256=" + Convert.ToHexStringLower(hmac.GetHashAndReset()))
            {
                context.Response.StatusCode = 401;
                await context.Response.WriteAsync("""{"error":"bad signature"}""");
                return;
            }
        }
        var key = context.Request.Headers["Idempotency-Key"].ToString();
        if (key.Length == 0)
        {
            context.Response.StatusCode = 400;
            await context.Response.WriteAsync("""{"error":"Idempotency-Key is required"}""");
            return;
        }
        byte[] answer;
        lock (_gate)
        {
            if (_answers.TryGetValue(key, out var stored))
            {
                _replays++;
                answer = stored;
            }
            else
            {
                answer = Apply(body);
                _answers[key] = answer;
            }
        }
        if (LoseAnswer(context))
        {
            return;
        }
        context.Response.ContentType = "application/json";
        await context.Response.Body.WriteAsync(answer);
    });

    private byte[] Apply(byte[] body)
    {
        using var json = JsonDocument.Parse(body);
        using var output = new MemoryStream();
        using (var writer = new Utf8JsonWriter(output))
        {
            writer.WriteStartObject();
            writer.WriteStartArray("results");
            foreach (var record in json.RootElement.GetProperty("records").EnumerateArray())
            {
                var recordKey = record.GetProperty("key").GetString()!;
                var profile = record.GetProperty("profile_id").GetInt64();
                writer.WriteStartObject();
                writer.WriteString("key", recordKey);
                if (RejectEvery > 0 && profile % RejectEvery == 0)
                {
                    Rejected.AddOrUpdate(recordKey, 1, (_, n) => n + 1);
                    writer.WriteString("status", "rejected");
                    writer.WriteString("reason", "invalid address");
                }
                else
                {
                    Applied.AddOrUpdate(recordKey, 1, (_, n) => n + 1);
                    writer.WriteString("status", "ok");
                }
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
            writer.WriteEndObject();
        }
        return output.ToArray();
    }
}
