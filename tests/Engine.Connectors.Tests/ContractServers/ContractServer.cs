using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Engine.Connectors.Tests.ContractServers;

/// <summary>
/// Which faults a contract server injects, per request, decided by a seeded random stream (so a failing run can be
/// replayed): 429 with <c>Retry-After</c>, 5xx, answers slower than the client's time limit, connections dropped
/// before the request is applied, and connections dropped after it was applied (the answer is lost: the client must
/// not count it delivered, and sending it again must do no harm).
/// </summary>
public sealed class FaultPlan
{
    private readonly Random _random;
    private readonly Lock _gate = new();

    public FaultPlan(int seed = 1) => _random = new Random(seed);

    public static FaultPlan None { get; } = new();

    public double RateLimited { get; init; }
    public double ServerErrors { get; init; }
    public double Timeouts { get; init; }
    public double DropsBefore { get; init; }
    public double DropsAfter { get; init; }
    public TimeSpan RetryAfter { get; init; } = TimeSpan.FromMilliseconds(200);
    public TimeSpan TimeoutDelay { get; init; } = TimeSpan.FromSeconds(3);

    public int Injected429 { get; private set; }
    public int Injected5xx { get; private set; }
    public int InjectedTimeouts { get; private set; }
    public int InjectedDrops { get; private set; }

    /// <summary>The fault for a request before it is applied, or null.</summary>
    public string? Before()
    {
        lock (_gate)
        {
            var roll = _random.NextDouble();
            if ((roll -= RateLimited) < 0) { Injected429++; return "429"; }
            if ((roll -= ServerErrors) < 0) { Injected5xx++; return "503"; }
            if ((roll -= Timeouts) < 0) { InjectedTimeouts++; return "timeout"; }
            if ((roll -= DropsBefore) < 0) { InjectedDrops++; return "drop"; }
            return null;
        }
    }

    /// <summary>Whether to drop the connection after applying the request.</summary>
    public bool DropAfter()
    {
        lock (_gate)
        {
            if (_random.NextDouble() < DropsAfter)
            {
                InjectedDrops++;
                return true;
            }
            return false;
        }
    }
}

/// <summary>
/// An in-process HTTP server (Kestrel on 127.0.0.1, a free port) standing for an outside API that cannot exist here;
/// each subclass follows that API's documented contract: its routes, payloads, limits and error answers.
/// </summary>
public abstract class ContractServer : IAsyncDisposable
{
    private WebApplication? _app;

    protected ContractServer(FaultPlan? faults) => Faults = faults ?? FaultPlan.None;

    public FaultPlan Faults { get; }

    /// <summary>The server's base address, ending with a slash.</summary>
    public Uri BaseUrl { get; private set; } = new("http://127.0.0.1/");

    /// <summary>Requests that reached a handler (after injected faults).</summary>
    public int Requests => _requests;

    private int _requests;

    public async Task StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        _app = builder.Build();
        _app.Use(async (context, next) =>
        {
            switch (Faults.Before())
            {
                case "429":
                    context.Response.StatusCode = 429;
                    context.Response.Headers.RetryAfter = Faults.RetryAfter.TotalSeconds.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture);
                    return;
                case "503":
                    context.Response.StatusCode = 503;
                    return;
                case "timeout":
                    await Task.Delay(Faults.TimeoutDelay, context.RequestAborted).ContinueWith(_ => { }, TaskScheduler.Default);
                    context.Response.StatusCode = 504;
                    return;
                case "drop":
                    context.Abort();
                    return;
            }
            Interlocked.Increment(ref _requests);
            await next(context);
        });
        Map(_app);
        await _app.StartAsync();
        var address = _app.Services.GetService(typeof(IServer)) is IServer server
            ? server.Features.Get<IServerAddressesFeature>()!.Addresses.First()
            : throw new InvalidOperationException("no server");
        BaseUrl = new Uri(address.TrimEnd('/') + "/");
    }

    /// <summary>Adds the API's routes.</summary>
    protected abstract void Map(WebApplication app);

    /// <summary>
    /// Applied requests whose answer is dropped besides the fault plan's random drops, counted among those the plan
    /// let through (1 for the first, 2 for the second…): lost answers that do not depend on timing. A test that
    /// asserts an answer was lost names them here; the plan's random drops shift with the order requests arrive in.
    /// </summary>
    public IReadOnlySet<int> DropAnswersOf { get; set; } = new HashSet<int>();

    private int _applied;

    /// <summary>Called by handlers once a request is applied: may drop the connection so the answer is lost.</summary>
    protected bool LoseAnswer(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (Faults.DropAfter() || DropAnswersOf.Contains(Interlocked.Increment(ref _applied)))
        {
            context.Abort();
            return true;
        }
        return false;
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
        GC.SuppressFinalize(this);
    }
}
