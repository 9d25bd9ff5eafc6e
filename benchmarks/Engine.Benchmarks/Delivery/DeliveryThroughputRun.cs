using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Engine.Benchmarks.Infrastructure;
using Engine.Cli.Commands;
using Engine.Connectors.Delivery;
using Engine.Connectors.Destinations;
using Engine.Runs;
using Engine.Storage;
using Engine.Workspaces;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Engine.Benchmarks.Delivery;

/// <summary>
/// <c>--delivery-throughput [--people N] [--seconds S]</c>: how close the delivery workers come to a destination's
/// rate limit. A generated workspace is run once (not timed); then <c>engine deliver</c>'s runner sends every
/// profile to webhook destinations on an in-process Kestrel receiver that answers at once. First one destination
/// limited to 200 requests/s, then ten at once limited to 20, 40, … 200 requests/s (1,100 in all). Each destination's
/// batch size is set so its work lasts about S seconds at its rate; the rate achieved is measured at the receiver
/// (requests after the first over the time from the first to the last). Issue 6's targets: at least 95% of the
/// limit alone, at least 90% of each limit with ten at once. The ledger is the real SQLite one.
/// </summary>
internal static class DeliveryThroughputRun
{
    public static int Run(string[] args)
    {
        var people = (int)(Option(args, "--people") ?? 20_000);
        var seconds = Option(args, "--seconds") ?? 15;
        var work = Path.Combine(BenchmarkData.RepositoryRoot, "artifacts", "bench-data", $"delivery-throughput-{Environment.ProcessId}");
        try
        {
            return RunAsync(work, people, seconds).GetAwaiter().GetResult();
        }
        finally
        {
            if (Directory.Exists(work))
            {
                Directory.Delete(work, recursive: true);
            }
        }
    }

    private static async Task<int> RunAsync(string work, int people, double seconds)
    {
        var data = BenchmarkData.Ensure(people);
        var ws = Path.Combine(work, "workspace");
        foreach (var (path, content) in WorkspaceTemplate.Files("delivery", data))
        {
            // The model and the example destinations are not what is measured here.
            if (path.StartsWith("models/", StringComparison.Ordinal) || path.StartsWith("destinations/", StringComparison.Ordinal))
            {
                continue;
            }
            var full = Path.Combine(ws, path);
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            await File.WriteAllTextAsync(full, content);
        }
        await File.WriteAllTextAsync(Path.Combine(ws, "segments", "at_risk.yaml"), "name: at_risk\ndescription: unused here\ncondition: FALSE\n");
        await File.WriteAllTextAsync(Path.Combine(ws, "segments", "everyone.yaml"), "name: everyone\ndescription: every profile\ncondition: profile_id IS NOT NULL\n");
        // Each rate scenario's destination gets a slice of the profiles sized for about S seconds of requests of
        // BatchSize records at its rate.
        const int BatchSize = 10;
        var rates = Enumerable.Range(1, 10).Select(i => i * 20).ToArray();
        foreach (var rate in rates)
        {
            var permille = Math.Min(1000, (int)Math.Ceiling(rate * seconds * BatchSize * 1000 / (people * 2.5)));
            await File.WriteAllTextAsync(Path.Combine(ws, "segments", $"share_{rate}.yaml"),
                $"name: share_{rate}\ndescription: about {permille} in 1,000 profiles\ncondition: profile_id % 1000 < {permille}\n");
        }
        using var storage = new StorageResolver();
        var clock = Stopwatch.StartNew();
        var manifest = (await new RunExecutor(storage, NullLogger.Instance).ExecuteAsync(WorkspaceLoader.Load(ws),
            new RunOptions { RunId = "night", AsOf = new DateTimeOffset(2026, 11, 1, 0, 0, 0, TimeSpan.Zero) })).Manifest;
        var members = manifest.Segments!.Segments.First(s => s.Name == "everyone").Members;
        Console.WriteLine($"// setup (not timed): {people:N0} people, run in {clock.Elapsed.TotalSeconds:F1} s, {members:N0} profiles in segment 'everyone'");

        await using var receiver = await Receiver.StartAsync();
        Environment.SetEnvironmentVariable("ENGINE_BENCH_WEBHOOK_SECRET", "bench");
        var results = new List<(string Scenario, string Destination, double Limit, long Requests, double Achieved)>();
        // --ceiling: only the ceiling (for profiling the worker).
        var scenarios = Environment.GetCommandLineArgs().Contains("--ceiling")
            ? []
            : new[] { ("alone", new[] { 200 }), ("ten at once", rates) };
        foreach (var (scenario, scenarioRates) in scenarios)
        {
            var folder = Path.Combine(ws, "destinations");
            if (Directory.Exists(folder))
            {
                Directory.Delete(folder, recursive: true);
            }
            Directory.CreateDirectory(folder);
            var ledger = Path.Combine(ws, "output", "deliveries");
            if (Directory.Exists(ledger))
            {
                Directory.Delete(ledger, recursive: true);
            }
            foreach (var rate in scenarioRates)
            {
                var name = $"hook_{rate}";
                await File.WriteAllTextAsync(Path.Combine(folder, name + ".yaml"), $"""
                    name: {name}
                    type: webhook
                    segments: [share_{rate}]
                    consent: none
                    identify_by: [customer_id, email, phone, anonymous_id]
                    batch_size: {BatchSize}
                    rate_limit: {"{"} requests: {rate}, per_seconds: 1, burst: 1 {"}"}
                    concurrency: 4
                    settings: {"{"} url: "{receiver.Url}{name}" {"}"}
                    credentials: {"{"} secret: ENGINE_BENCH_WEBHOOK_SECRET {"}"}
                    """);
            }
            receiver.Reset();
            var workspace = WorkspaceLoader.Load(ws);
            clock.Restart();
            var delivery = await new DeliveryRunner(workspace, DestinationsLoader.Load(workspace), storage).RunAsync(new DeliveryOptions(), CancellationToken.None);
            var elapsed = clock.Elapsed.TotalSeconds;
            long records = 0;
            foreach (var rate in scenarioRates)
            {
                var name = $"hook_{rate}";
                var times = receiver.Arrivals(name);
                var achieved = times.Count > 1 ? (times.Count - 1) / (times[^1] - times[0]).TotalSeconds : 0;
                results.Add((scenario, name, rate, times.Count, achieved));
                var report = delivery.Report!.Destinations[name];
                var expected = manifest.Segments!.Segments.First(s => s.Name == $"share_{rate}").Members;
                records += expected;
                if (report.Added + report.Unmatched != expected || report.Open > 0)
                {
                    Console.Error.WriteLine($"// {name}: delivered {report.Added:N0} and {report.Unmatched:N0} unmatched of {expected:N0} records");
                    return 1;
                }
            }
            Console.WriteLine($"// {scenario}: {scenarioRates.Length} destination(s), {records:N0} records in batches of {BatchSize} in {elapsed:F1} s");
        }

        // The ceiling: how many records a second the worker, the policy and the ledger pass with no network at all
        // (a client that acknowledges in-process), one destination, no rate limit to speak of.
        var ceiling = await CeilingAsync(ws, storage, members);
        if (scenarios.Length == 0)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"ceiling: {ceiling.Records / ceiling.Seconds:N0} records/s"));
            return 0;
        }

        Console.WriteLine();
        Console.WriteLine($"delivery throughput, {Environment.ProcessorCount} cores; webhook destinations on an in-process receiver, {BatchSize} records a request; SQLite ledger; token bucket burst 1");
        Console.WriteLine($"{"scenario",-12} {"destination",-12} {"limit/s",8} {"requests",9} {"achieved/s",11} {"share",7}");
        var ok = true;
        foreach (var (scenario, destination, limit, requests, achieved) in results)
        {
            var share = achieved / limit;
            var target = scenario == "alone" ? 0.95 : 0.90;
            ok &= share >= target;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{scenario,-12} {destination,-12} {limit,8:N0} {requests,9:N0} {achieved,11:N1} {share,7:P1}{(share >= target ? "" : $"  below {target:P0}")}"));
        }
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"ceiling without the network (one destination, batches of 100, an in-process client): {ceiling.Records / ceiling.Seconds:N0} records/s, {ceiling.Records / 100 / ceiling.Seconds:N0} requests/s"));
        Console.WriteLine($"targets (issue 6): alone >= 95% of the limit, ten at once >= 90% of each: {(ok ? "met" : "NOT met")}");
        var file = Path.Combine(BenchmarkData.RepositoryRoot, "artifacts", "bench", $"delivery-throughput-{DateTime.UtcNow:yyyyMMdd'T'HHmmss'Z'}.json");
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        await File.WriteAllTextAsync(file, JsonSerializer.Serialize(results.Select(r => new { scenario = r.Scenario, destination = r.Destination, limit = r.Limit, requests = r.Requests, achieved = r.Achieved })));
        Console.WriteLine($"// written: {Path.GetRelativePath(BenchmarkData.RepositoryRoot, file)}");
        return 0;
    }

    private static async Task<(long Records, double Seconds)> CeilingAsync(string ws, StorageResolver storage, long members)
    {
        var folder = Path.Combine(ws, "destinations");
        if (Directory.Exists(folder))
        {
            Directory.Delete(folder, recursive: true);
        }
        Directory.CreateDirectory(folder);
        if (Directory.Exists(Path.Combine(ws, "output", "deliveries")))
        {
            Directory.Delete(Path.Combine(ws, "output", "deliveries"), recursive: true);
        }
        await File.WriteAllTextAsync(Path.Combine(folder, "ceiling.yaml"), """
            name: ceiling
            type: webhook
            segments: [everyone]
            consent: none
            identify_by: [customer_id, email, phone, anonymous_id]
            batch_size: 100
            rate_limit: { requests: 1000000, per_seconds: 1 }
            concurrency: 4
            settings: { url: "http://127.0.0.1:9/unused" }
            credentials: { secret: ENGINE_BENCH_WEBHOOK_SECRET }
            """);
        var workspace = WorkspaceLoader.Load(ws);
        var clock = Stopwatch.StartNew();
        long sent = 0, first = 0, last = 0;
        var delivery = await new DeliveryRunner(workspace, DestinationsLoader.Load(workspace), storage).RunAsync(new DeliveryOptions
        {
            Clients = _ => new InProcessClient(() =>
            {
                Interlocked.Increment(ref sent);
                var now = Stopwatch.GetTimestamp();
                Interlocked.CompareExchange(ref first, now, 0);
                Interlocked.Exchange(ref last, now);
            }),
        }, CancellationToken.None);
        var total = clock.Elapsed.TotalSeconds;
        var seconds = Stopwatch.GetElapsedTime(first, last).TotalSeconds;
        var report = delivery.Report!.Destinations["ceiling"];
        Console.WriteLine($"// ceiling: {report.Added:N0} delivered, {report.Unmatched:N0} unmatched; {sent:N0} requests over {seconds:F1} s from the first to the last ({total:F1} s with planning and the report)");
        return (report.Added, seconds);
    }

    /// <summary>A client that acknowledges every record at once, in-process: what is left is the worker's own cost.</summary>
    private sealed class InProcessClient(Action onSend) : IDestination
    {
        public Task<IReadOnlyList<RecordResult>> SendAsync(DestinationBatch batch, CancellationToken cancellationToken)
        {
            onSend();
            return Task.FromResult<IReadOnlyList<RecordResult>>([.. batch.Records.Select(r => new RecordResult(r.Key, RecordStatus.Delivered))]);
        }

        public Task CompleteAsync(string runId, CancellationToken cancellationToken) => Task.CompletedTask;

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    private static double? Option(string[] args, string name)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? double.Parse(args[i + 1], CultureInfo.InvariantCulture) : null;
    }

    /// <summary>A webhook receiver that acknowledges every call at once and notes when each arrived, per path.</summary>
    private sealed class Receiver : IAsyncDisposable
    {
        private readonly WebApplication _app;
        private readonly ConcurrentDictionary<string, ConcurrentQueue<DateTime>> _arrivals = new();

        private Receiver(WebApplication app, string url)
        {
            _app = app;
            Url = url;
        }

        public string Url { get; }

        public static async Task<Receiver> StartAsync()
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            var app = builder.Build();
            Receiver? receiver = null;
            app.MapPost("/hook/{name}", async (string name, HttpRequest request) =>
            {
                receiver!._arrivals.GetOrAdd(name, _ => new()).Enqueue(DateTime.UtcNow);
                await request.Body.CopyToAsync(Stream.Null);
                return Results.Ok();
            });
            await app.StartAsync();
            var address = ((IServer)app.Services.GetService(typeof(IServer))!).Features.Get<IServerAddressesFeature>()!.Addresses.First();
            receiver = new Receiver(app, address.TrimEnd('/') + "/hook/");
            return receiver;
        }

        public void Reset() => _arrivals.Clear();

        public List<DateTime> Arrivals(string name) => _arrivals.TryGetValue(name, out var queue) ? [.. queue.Order()] : [];

        public async ValueTask DisposeAsync()
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
    }
}
