using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Engine.TestKit;

/// <summary>What a page did when <see cref="HeadlessChromium.OpenAsync"/> loaded it.</summary>
/// <param name="Value">The value the page's expression evaluated to (a string: the expression should return JSON text).</param>
/// <param name="Errors">Uncaught exceptions, <c>console.error</c> calls and the browser's own error log entries (a refused request, a CSP violation).</param>
/// <param name="Requests">Every URL the page requested, the page itself included.</param>
public sealed record PageResult(string Value, IReadOnlyList<string> Errors, IReadOnlyList<string> Requests);

/// <summary>
/// Debian's Chromium in headless mode, driven over the Chrome DevTools Protocol (a WebSocket; no extra package): a
/// test opens a page, collects its script errors, evaluates an expression in it and takes a screenshot.
/// </summary>
/// <remarks>
/// The browser is <c>/usr/bin/chromium</c> (or <c>ENGINE_TEST_CHROMIUM</c>). When it is missing, Debian's
/// <c>chromium</c> package is installed with apt-get (through <c>sudo -n</c> when not root), as
/// <see cref="PostgresServer"/> does for PostgreSQL; when that fails, the test fails with what to do. As root,
/// Chromium's sandbox cannot start, so it runs with <c>--no-sandbox</c> (the pages are the tests' own files).
/// </remarks>
public sealed partial class HeadlessChromium : IAsyncDisposable
{
    private const string DefaultPath = "/usr/bin/chromium";
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(30);

    private readonly Process _process;
    private readonly string _profile;
    private readonly ClientWebSocket _socket = new();
    private readonly ConcurrentDictionary<int, TaskCompletionSource<JsonObject>> _pending = new();
    private readonly Channel _events = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly StringBuilder _stderr = new();
    private Task _receiver = Task.CompletedTask;
    private int _nextId;

    private HeadlessChromium(Process process, string profile)
    {
        _process = process;
        _profile = profile;
    }

    /// <summary>The browser's version line (<c>chromium --version</c>).</summary>
    public string Version { get; private set; } = "";

    /// <summary>Starts a headless browser, installing Debian's package first when there is none.</summary>
    public static async Task<HeadlessChromium> StartAsync(CancellationToken cancellationToken = default)
    {
        var path = await EnsureInstalledAsync();
        var profile = Path.Combine(Path.GetTempPath(), $"engine-test-chromium-{Guid.NewGuid():N}");
        Directory.CreateDirectory(profile);
        var start = new ProcessStartInfo(path)
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (var argument in (string[])[
            "--headless", "--disable-gpu", "--no-first-run", "--no-default-browser-check", "--disable-extensions",
            "--disable-background-networking", "--disable-sync", "--disable-component-update", "--disable-dev-shm-usage",
            "--hide-scrollbars", "--mute-audio", "--remote-debugging-port=0", $"--user-data-dir={profile}", "about:blank"])
        {
            start.ArgumentList.Add(argument);
        }
        if (Environment.IsPrivilegedProcess)
        {
            start.ArgumentList.Insert(0, "--no-sandbox");
        }
        var process = Process.Start(start) ?? throw new InvalidOperationException($"cannot start {path}");
        var browser = new HeadlessChromium(process, profile);
        try
        {
            await browser.ConnectAsync(path, cancellationToken);
            return browser;
        }
        catch
        {
            await browser.DisposeAsync();
            throw;
        }
    }

    private async Task ConnectAsync(string path, CancellationToken cancellationToken)
    {
        // Chromium names its DevTools endpoint on standard error once it listens: "DevTools listening on ws://…".
        var endpoint = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        _process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                endpoint.TrySetException(new InvalidOperationException($"{path} exited before it listened:\n{Stderr()}"));
                return;
            }
            lock (_stderr)
            {
                _stderr.AppendLine(e.Data);
            }
            if (DevToolsLine().Match(e.Data) is { Success: true } match)
            {
                endpoint.TrySetResult(match.Groups[1].Value);
            }
        };
        _process.OutputDataReceived += (_, _) => { };
        _process.BeginErrorReadLine();
        _process.BeginOutputReadLine();
        string url;
        try
        {
            url = await endpoint.Task.WaitAsync(StartTimeout, cancellationToken);
        }
        catch (TimeoutException)
        {
            throw new InvalidOperationException($"{path} did not open its DevTools endpoint within {StartTimeout.TotalSeconds:0} s:\n{Stderr()}");
        }
        await _socket.ConnectAsync(new Uri(url), cancellationToken);
        _receiver = Task.Run(ReceiveAsync, CancellationToken.None);
        Version = (await SendAsync("Browser.getVersion", null, null, cancellationToken))["product"]?.GetValue<string>() ?? "";
    }

    [GeneratedRegex(@"DevTools listening on (ws://\S+)")]
    private static partial Regex DevToolsLine();

    private string Stderr()
    {
        lock (_stderr)
        {
            return _stderr.ToString();
        }
    }

    /// <summary>
    /// Opens <paramref name="url"/> in a new tab <paramref name="width"/> pixels wide, waits for its load event, with
    /// <paramref name="screenshot"/> saves a PNG of the whole page there (as loaded, before the expression runs), then
    /// evaluates <paramref name="expression"/> (which should return a string, e.g. <c>JSON.stringify(…)</c>).
    /// </summary>
    public async Task<PageResult> OpenAsync(string url, string expression, string? screenshot = null, int width = 1280, CancellationToken cancellationToken = default)
    {
        var target = (await SendAsync("Target.createTarget", new JsonObject { ["url"] = "about:blank" }, null, cancellationToken))["targetId"]!.GetValue<string>();
        var session = (await SendAsync("Target.attachToTarget", new JsonObject { ["targetId"] = target, ["flatten"] = true }, null, cancellationToken))["sessionId"]!.GetValue<string>();
        var errors = new List<string>();
        var requests = new List<string>();
        var loaded = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        void OnEvent(string method, JsonObject parameters)
        {
            lock (errors)
            {
                switch (method)
                {
                    case "Runtime.exceptionThrown":
                        var details = parameters["exceptionDetails"];
                        errors.Add($"exception: {details?["exception"]?["description"]?.GetValue<string>() ?? details?["text"]?.GetValue<string>()}");
                        break;
                    case "Runtime.consoleAPICalled" when parameters["type"]?.GetValue<string>() is "error" or "assert":
                        var arguments = (parameters["args"]?.AsArray() ?? []).Select(Describe);
                        errors.Add($"console.{parameters["type"]}: {string.Join(' ', arguments)}");
                        break;
                    case "Log.entryAdded" when Level(parameters) == "error":
                        var entry = parameters["entry"]!;
                        errors.Add($"log ({entry["source"]}): {entry["text"]} {entry["url"]}");
                        break;
                    case "Network.requestWillBeSent":
                        requests.Add(parameters["request"]?["url"]?.GetValue<string>() ?? "");
                        break;
                    case "Network.loadingFailed":
                        errors.Add($"request failed: {parameters["errorText"]}");
                        break;
                    case "Page.loadEventFired":
                        loaded.TrySetResult();
                        break;
                }
            }
        }
        _events.Subscribe(session, OnEvent);
        try
        {
            foreach (var domain in (string[])["Runtime.enable", "Log.enable", "Network.enable", "Page.enable"])
            {
                await SendAsync(domain, null, session, cancellationToken);
            }
            await SendAsync("Emulation.setDeviceMetricsOverride", new JsonObject { ["width"] = width, ["height"] = 900, ["deviceScaleFactor"] = 1, ["mobile"] = false }, session, cancellationToken);
            var navigation = await SendAsync("Page.navigate", new JsonObject { ["url"] = url }, session, cancellationToken);
            if (navigation["errorText"]?.GetValue<string>() is { Length: > 0 } navigationError)
            {
                throw new InvalidOperationException($"{url}: {navigationError}");
            }
            await loaded.Task.WaitAsync(StartTimeout, cancellationToken);
            if (screenshot is not null)
            {
                // The whole page: the viewport made as tall as the content, then one capture.
                var metrics = await SendAsync("Page.getLayoutMetrics", null, session, cancellationToken);
                var height = (int)Math.Ceiling(metrics["cssContentSize"]?["height"]?.GetValue<double>() ?? 900);
                await SendAsync("Emulation.setDeviceMetricsOverride", new JsonObject { ["width"] = width, ["height"] = Math.Min(height, 16_000), ["deviceScaleFactor"] = 1, ["mobile"] = false }, session, cancellationToken);
                var shot = await SendAsync("Page.captureScreenshot", new JsonObject { ["format"] = "png", ["captureBeyondViewport"] = true }, session, cancellationToken);
                Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(screenshot))!);
                await File.WriteAllBytesAsync(screenshot, Convert.FromBase64String(shot["data"]!.GetValue<string>()), cancellationToken);
            }
            var evaluated = await SendAsync("Runtime.evaluate", new JsonObject { ["expression"] = expression, ["returnByValue"] = true, ["awaitPromise"] = true }, session, cancellationToken);
            if (evaluated["exceptionDetails"] is { } failed)
            {
                throw new InvalidOperationException($"the expression threw: {failed.ToJsonString()}");
            }
            var value = evaluated["result"]?["value"]?.GetValue<string>() ?? throw new InvalidOperationException($"the expression returned no string: {evaluated.ToJsonString()}");
            lock (errors)
            {
                return new PageResult(value, [.. errors], [.. requests]);
            }
        }
        finally
        {
            _events.Unsubscribe(session);
            await SendAsync("Target.closeTarget", new JsonObject { ["targetId"] = target }, null, CancellationToken.None);
        }
    }

    /// <summary>A log entry's level.</summary>
    private static string? Level(JsonObject parameters) => parameters["entry"] is JsonObject entry ? entry["level"]?.GetValue<string>() : null;

    /// <summary>A console argument as text: its value, or the description of an object.</summary>
    private static string Describe(JsonNode? argument) => argument?["value"]?.ToJsonString() ?? argument?["description"]?.GetValue<string>() ?? "";

    /// <summary>Sends a command (to a page's session when <paramref name="session"/> is given) and waits for its answer.</summary>
    private async Task<JsonObject> SendAsync(string method, JsonObject? parameters, string? session, CancellationToken cancellationToken)
    {
        var id = Interlocked.Increment(ref _nextId);
        var answer = new TaskCompletionSource<JsonObject>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[id] = answer;
        var message = new JsonObject { ["id"] = id, ["method"] = method, ["params"] = parameters ?? new JsonObject() };
        if (session is not null)
        {
            message["sessionId"] = session;
        }
        await _socket.SendAsync(Encoding.UTF8.GetBytes(message.ToJsonString()), WebSocketMessageType.Text, true, cancellationToken);
        try
        {
            return await answer.Task.WaitAsync(StartTimeout, cancellationToken);
        }
        catch (TimeoutException)
        {
            throw new InvalidOperationException($"Chromium did not answer {method} within {StartTimeout.TotalSeconds:0} s:\n{Stderr()}");
        }
        finally
        {
            _pending.TryRemove(id, out _);
        }
    }

    private async Task ReceiveAsync()
    {
        var buffer = new byte[1 << 16];
        using var message = new MemoryStream();
        try
        {
            while (_socket.State == WebSocketState.Open && !_stop.IsCancellationRequested)
            {
                var part = await _socket.ReceiveAsync(buffer, _stop.Token);
                if (part.MessageType == WebSocketMessageType.Close)
                {
                    break;
                }
                message.Write(buffer, 0, part.Count);
                if (!part.EndOfMessage)
                {
                    continue;
                }
                var node = JsonNode.Parse(message.GetBuffer().AsSpan(0, (int)message.Length))!.AsObject();
                message.SetLength(0);
                if (node["id"] is { } id && _pending.TryGetValue(id.GetValue<int>(), out var answer))
                {
                    if (node["error"] is { } error)
                    {
                        answer.TrySetException(new InvalidOperationException($"DevTools error: {error.ToJsonString()}"));
                    }
                    else
                    {
                        answer.TrySetResult(node["result"]?.AsObject() ?? []);
                    }
                }
                else if (node["method"]?.GetValue<string>() is { } method)
                {
                    _events.Publish(node["sessionId"]?.GetValue<string>(), method, node["params"]?.AsObject() ?? []);
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException)
        {
            // The browser closed or is being closed.
        }
        foreach (var pending in _pending.Values)
        {
            pending.TrySetException(new InvalidOperationException($"the DevTools connection closed:\n{Stderr()}"));
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (_socket.State == WebSocketState.Open)
            {
                // Browser.close answers, then the process ends by itself; a browser that hangs is killed below.
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                try
                {
                    await SendAsync("Browser.close", null, null, timeout.Token);
                }
                catch (Exception e) when (e is OperationCanceledException or InvalidOperationException or WebSocketException)
                {
                }
            }
            using var exit = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            try
            {
                await _process.WaitForExitAsync(exit.Token);
            }
            catch (OperationCanceledException)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync();
            }
        }
        finally
        {
            await _stop.CancelAsync();
            await _receiver;
            _socket.Dispose();
            _process.Dispose();
            _stop.Dispose();
            try
            {
                Directory.Delete(_profile, recursive: true);
            }
            catch (IOException)
            {
                // A crash dump still being written; the folder is under the temp folder and named as the tests'.
            }
        }
    }

    /// <summary>The browser's path, installing Debian's <c>chromium</c> first when it is missing.</summary>
    public static async Task<string> EnsureInstalledAsync()
    {
        var path = Environment.GetEnvironmentVariable("ENGINE_TEST_CHROMIUM") is { Length: > 0 } configured ? configured : DefaultPath;
        if (File.Exists(path))
        {
            return path;
        }
        // Test processes may start together: one installs, the others wait on the lock and then find it installed.
        await using var lockFile = await DebianPackages.AcquireLockAsync(Path.Combine(Path.GetTempPath(), "engine-test-chromium-install.lock"));
        if (File.Exists(path))
        {
            return path;
        }
        // DejaVu: without a font the screenshot's text is boxes (the image may have none; the package is small).
        var (exitCode, log) = await DebianPackages.InstallAsync("chromium", "fonts-dejavu-core");
        if (exitCode == 0 && File.Exists(path))
        {
            return path;
        }
        throw new InvalidOperationException(
            $"Chromium is needed for this test: {path} does not exist, and installing Debian's package failed (apt-get install chromium" +
            $"{DebianPackages.How}; exit code {exitCode}). Install it (apt-get install chromium), " +
            $"or set ENGINE_TEST_CHROMIUM to a Chromium or Chrome binary.\n{log}");
    }

    /// <summary>DevTools events, handed to the page session that subscribed (events of other sessions are dropped).</summary>
    private sealed class Channel
    {
        private readonly ConcurrentDictionary<string, Action<string, JsonObject>> _handlers = new(StringComparer.Ordinal);

        public void Subscribe(string session, Action<string, JsonObject> handler) => _handlers[session] = handler;

        public void Unsubscribe(string session) => _handlers.TryRemove(session, out _);

        public void Publish(string? session, string method, JsonObject parameters)
        {
            if (session is not null && _handlers.TryGetValue(session, out var handler))
            {
                handler(method, parameters);
            }
        }
    }
}
