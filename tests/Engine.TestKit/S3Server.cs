using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using Engine.Storage.S3;
using Xunit;

namespace Engine.TestKit;

/// <summary>
/// A real S3 protocol server for tests: the npm package <c>s3rver</c> started on 127.0.0.1 with a free port, a
/// temporary data directory and a test bucket. Usable as an xunit assembly or collection fixture.
/// s3rver itself verifies only V2 signatures (for V4 it checks just that the access key exists), so it is started
/// through <c>run-s3rver.js</c>, which verifies V4 signatures in front of it: a wrong secret is rejected as on AWS.
/// </summary>
/// <remarks>
/// When <c>ENGINE_TEST_S3_BUCKET</c> is set the same tests run against that bucket instead (MinIO, R2, AWS):
/// <c>ENGINE_TEST_S3_ENDPOINT</c> names the endpoint (unset: AWS S3), <c>ENGINE_TEST_S3_ACCESS_KEY</c> and
/// <c>ENGINE_TEST_S3_SECRET_KEY</c> the keys (unset: the standard AWS variables and profiles), <c>ENGINE_TEST_S3_REGION</c>
/// the region. Each run works under its own prefix there and deletes it afterwards.
/// s3rver is installed with npm into <c>&lt;repo&gt;/.tools/s3rver</c> (git-ignored) the first time it is needed.
/// </remarks>
public sealed partial class S3Server : IAsyncLifetime
{
    /// <summary>The pinned s3rver version.</summary>
    public const string S3rverVersion = "3.7.1";

    /// <summary>s3rver's built-in access key and secret.</summary>
    public const string S3rverKey = "S3RVER";

    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);

    private Process? _process;
    private TempDirectory? _dataDirectory;
    private readonly StringBuilder _serverOutput = new();

    /// <summary>The bucket tests write to.</summary>
    public string Bucket { get; private set; } = "engine-test";

    /// <summary>Options for stores over <see cref="Bucket"/> with valid credentials.</summary>
    public S3StoreOptions Options { get; private set; } = new();

    /// <summary>True when the tests run against an endpoint named by the environment rather than s3rver.</summary>
    public bool IsExternal { get; private set; }

    /// <summary>Every key this run writes starts with this prefix (empty on s3rver, whose bucket is private to the run).</summary>
    public string RunPrefix { get; private set; } = "";

    /// <summary>The endpoint, as a URI (null for AWS S3 itself).</summary>
    public Uri? Endpoint => Options.Endpoint;

    /// <summary>A store over the test bucket; <paramref name="configure"/> may change the options (wrong keys, block size).</summary>
    public S3ObjectStore CreateStore(Func<S3StoreOptions, S3StoreOptions>? configure = null)
        => new(Bucket, configure is null ? Options : configure(Options));

    /// <summary>A fresh prefix no other test uses.</summary>
    public string NewPrefix(string label = "t")
    {
        var name = $"{label}-{Guid.NewGuid().ToString("N")[..12]}";
        return RunPrefix.Length == 0 ? name : $"{RunPrefix}/{name}";
    }

    public async ValueTask InitializeAsync()
    {
        if (Environment.GetEnvironmentVariable("ENGINE_TEST_S3_BUCKET") is { Length: > 0 } bucket)
        {
            UseExternal(bucket);
        }
        else
        {
            await StartS3rverAsync();
        }
        await WaitUntilAnsweringAsync();
    }

    private void UseExternal(string bucket)
    {
        static string? Get(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } value ? value : null;

        var options = S3StoreOptions.FromEnvironment();
        if (Get("ENGINE_TEST_S3_ENDPOINT") is { } endpoint)
        {
            options = options with { Endpoint = new Uri(endpoint) };
        }
        if (Get("ENGINE_TEST_S3_ACCESS_KEY") is { } accessKey)
        {
            options = options with { AccessKey = accessKey, SecretKey = Get("ENGINE_TEST_S3_SECRET_KEY"), SessionToken = null };
        }
        if (Get("ENGINE_TEST_S3_REGION") is { } region)
        {
            options = options with { Region = region };
        }
        Bucket = bucket;
        Options = options with { MaxErrorRetry = 2 };
        IsExternal = true;
        RunPrefix = $"engine-tests/{DateTime.UtcNow:yyyyMMddHHmmss}-{Guid.NewGuid().ToString("N")[..8]}";
    }

    private async Task StartS3rverAsync()
    {
        var package = await EnsureInstalledAsync();
        _dataDirectory = new TempDirectory("s3rver");
        var data = Directory.CreateDirectory(_dataDirectory.Combine("data")).FullName;
        var wrapper = _dataDirectory.Combine("run-s3rver.js");
        await using (var resource = typeof(S3Server).Assembly.GetManifestResourceStream("Engine.TestKit.run-s3rver.js")
            ?? throw new InvalidOperationException("the run-s3rver.js resource is missing from the test kit"))
        await using (var file = File.Create(wrapper))
        {
            await resource.CopyToAsync(file);
        }

        var start = new ProcessStartInfo("node")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        // s3rver's LIST continuation tokens use DES, which OpenSSL 3 (Node 17 and later) only has in its legacy provider.
        if (await NodeMajorVersionAsync() >= 17)
        {
            start.ArgumentList.Add("--openssl-legacy-provider");
        }
        foreach (var argument in new[] { wrapper, package, data, "127.0.0.1", Bucket, Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture) })
        {
            start.ArgumentList.Add(argument);
        }
        var listening = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                return;
            }
            lock (_serverOutput)
            {
                _serverOutput.AppendLine(e.Data);
            }
            if (ListeningLine().Match(e.Data) is { Success: true } match)
            {
                listening.TrySetResult(int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (_serverOutput)
                {
                    _serverOutput.AppendLine(e.Data);
                }
            }
        };
        process.EnableRaisingEvents = true;
        process.Exited += (_, _) => listening.TrySetException(new InvalidOperationException($"s3rver exited with code {process.ExitCode} before listening:\n{ServerOutput}"));
        try
        {
            process.Start();
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException("cannot start 'node' (Node.js is needed for the s3rver test server): install Node.js 18 or later", e);
        }
        _process = process;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        int port;
        try
        {
            port = await listening.Task.WaitAsync(StartTimeout);
        }
        catch (TimeoutException e)
        {
            throw new InvalidOperationException($"s3rver did not start listening within {StartTimeout.TotalSeconds:0} s:\n{ServerOutput}", e);
        }
        Options = new S3StoreOptions
        {
            Endpoint = new Uri($"http://127.0.0.1:{port}"),
            Region = "us-east-1",
            AccessKey = S3rverKey,
            SecretKey = S3rverKey,
            AddressingStyle = S3AddressingStyle.Path,
            MaxErrorRetry = 1,
        };
    }

    /// <summary>What s3rver printed so far (for diagnosing a failed start).</summary>
    public string ServerOutput
    {
        get
        {
            lock (_serverOutput)
            {
                return _serverOutput.ToString();
            }
        }
    }

    [GeneratedRegex(@"listening on [^\s:]+:(\d+)")]
    private static partial Regex ListeningLine();

    private async Task WaitUntilAnsweringAsync()
    {
        using var store = CreateStore();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (true)
        {
            try
            {
                await store.ListAsync(NewPrefix("probe"));
                return;
            }
            catch (DataException) when (DateTime.UtcNow < deadline && !IsExternal)
            {
                await Task.Delay(100);
            }
        }
    }

    private static async Task<int> NodeMajorVersionAsync()
    {
        var info = new ProcessStartInfo("node", "--version") { RedirectStandardOutput = true, UseShellExecute = false };
        Process process;
        try
        {
            process = Process.Start(info) ?? throw new InvalidOperationException("cannot start 'node'");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException("cannot start 'node' (Node.js is needed for the s3rver test server): install Node.js 18 or later", e);
        }
        using (process)
        {
            var version = (await process.StandardOutput.ReadToEndAsync()).Trim().TrimStart('v');
            await process.WaitForExitAsync();
            var dot = version.IndexOf('.', StringComparison.Ordinal);
            return int.TryParse(dot < 0 ? version : version[..dot], System.Globalization.CultureInfo.InvariantCulture, out var major) ? major : 0;
        }
    }

    /// <summary>The folder of the s3rver package, installing the pinned version first when it is missing.</summary>
    private static async Task<string> EnsureInstalledAsync()
    {
        var prefix = Path.Combine(RepositoryRoot(), ".tools", "s3rver");
        var package = Path.Combine(prefix, "node_modules", "s3rver");
        if (IsInstalled(package))
        {
            return package;
        }
        Directory.CreateDirectory(prefix);
        // Test processes may start together: one installs, the others wait on the lock and then find it installed.
        await using var lockFile = await AcquireLockAsync(Path.Combine(prefix, ".install.lock"));
        if (IsInstalled(package))
        {
            return package;
        }
        var npm = new ProcessStartInfo("npm")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[] { "install", "--prefix", prefix, $"s3rver@{S3rverVersion}", "--no-audit", "--no-fund", "--no-progress" })
        {
            npm.ArgumentList.Add(argument);
        }
        using var process = Process.Start(npm) ?? throw new InvalidOperationException("cannot start npm");
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        await process.WaitForExitAsync(timeout.Token);
        if (process.ExitCode != 0 || !IsInstalled(package))
        {
            throw new InvalidOperationException($"npm install s3rver@{S3rverVersion} failed (exit code {process.ExitCode}):\n{await output}\n{await error}");
        }
        return package;
    }

    private static bool IsInstalled(string package)
    {
        var manifest = Path.Combine(package, "package.json");
        return File.Exists(manifest) && File.ReadAllText(manifest).Contains($"\"version\": \"{S3rverVersion}\"", StringComparison.Ordinal);
    }

    private static async Task<FileStream> AcquireLockAsync(string path)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(4);
        while (true)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.DeleteOnClose);
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(250);
            }
        }
    }

    /// <summary>The repository root: the nearest folder above the test binaries that holds Engine.sln.</summary>
    public static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Engine.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException($"Engine.sln not found above {AppContext.BaseDirectory}");
    }

    public async ValueTask DisposeAsync()
    {
        if (IsExternal)
        {
            try
            {
                using var store = CreateStore();
                var left = await store.ListAsync(RunPrefix);
                await store.DeleteAsync([.. left.Select(o => o.Key)]);
            }
            catch (DataException)
            {
                // Leftovers of a test run under engine-tests/ are harmless; a lifecycle rule may expire them.
            }
        }
        if (_process is { } process)
        {
            try
            {
                if (!process.HasExited)
                {
                    process.Kill(entireProcessTree: true);
                    await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
                }
            }
            catch (Exception e) when (e is InvalidOperationException or TimeoutException or System.ComponentModel.Win32Exception)
            {
                // Already gone.
            }
            process.Dispose();
            _process = null;
        }
        _dataDirectory?.Dispose();
    }
}
