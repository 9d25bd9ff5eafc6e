using System.Globalization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Engine.WebhookReceiver;

/// <summary>The command line: options, the Kestrel host, and the closing summary.</summary>
public static class ReceiverProgram
{
    private const string Usage = "usage: Engine.WebhookReceiver --url http://HOST:PORT/PATH --store DIR --secret-env VARIABLE [--tolerance-seconds N]";

    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(error);
        var options = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i] is "--url" or "--store" or "--secret-env" or "--tolerance-seconds" && i + 1 < args.Length)
            {
                options[args[i]] = args[++i];
            }
            else
            {
                await error.WriteLineAsync($"unknown argument '{args[i]}'\n{Usage}");
                return 2;
            }
        }
        if (!options.TryGetValue("--url", out var urlText) || !Uri.TryCreate(urlText, UriKind.Absolute, out var url) || url.Scheme != Uri.UriSchemeHttp
            || !options.TryGetValue("--store", out var store) || !options.TryGetValue("--secret-env", out var variable))
        {
            await error.WriteLineAsync(Usage);
            return 2;
        }
        var secret = Environment.GetEnvironmentVariable(variable);
        if (string.IsNullOrEmpty(secret))
        {
            // The same variable the destination reads its secret from; never printed.
            await error.WriteLineAsync($"the environment variable {variable} (the shared secret) is not set");
            return 1;
        }
        var tolerance = TimeSpan.FromSeconds(options.TryGetValue("--tolerance-seconds", out var t) ? int.Parse(t, CultureInfo.InvariantCulture) : 300);

        using var receiver = new WebhookReceiver(store, System.Text.Encoding.UTF8.GetBytes(secret), tolerance, TimeProvider.System);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls($"http://{url.Authority}");
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = 64 * 1024 * 1024);
        await using var app = builder.Build();
        app.MapPost(url.AbsolutePath, async context =>
        {
            using var buffer = new MemoryStream();
            await context.Request.Body.CopyToAsync(buffer, context.RequestAborted);
            var answer = receiver.Receive(
                buffer.ToArray(),
                context.Request.Headers["X-Engine-Timestamp"].ToString(),
                context.Request.Headers["X-Engine-Signature"].ToString(),
                context.Request.Headers["Idempotency-Key"].ToString());
            context.Response.StatusCode = answer.Status;
            context.Response.ContentType = "application/json";
            await context.Response.Body.WriteAsync(answer.Body, context.RequestAborted);
        });
        app.MapGet(url.AbsolutePath, async context =>
        {
            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync(receiver.StatsJson(), context.RequestAborted);
        });
        try
        {
            await app.StartAsync(cancellationToken);
        }
        catch (IOException e)
        {
            await error.WriteLineAsync($"cannot listen on {url.Authority}: {e.Message}");
            return 1;
        }
        await output.WriteLineAsync($"webhook receiver: listening on {url} ({receiver.StoredRecords:N0} records already in {receiver.RecordsFile})");
        await output.FlushAsync(cancellationToken);
        try
        {
            await app.WaitForShutdownAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
        }
        await output.WriteLineAsync(receiver.Summary());
        await output.FlushAsync(CancellationToken.None);
        return 0;
    }
}
