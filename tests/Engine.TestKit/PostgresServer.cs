using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using Npgsql;
using Xunit;

namespace Engine.TestKit;

/// <summary>
/// A real PostgreSQL server for tests: initdb into a temporary directory, started on 127.0.0.1 with a free port, a test
/// database created (and a schema per test on request), everything stopped and deleted on dispose. Usable as an xunit
/// assembly or collection fixture.
/// </summary>
/// <remarks>
/// The binaries are looked for on PATH (<c>initdb</c>, its <c>pg_ctl</c> and <c>postgres</c> beside it) and then under
/// Debian's <c>/usr/lib/postgresql/&lt;version&gt;/bin</c>, newest first. When there are none, Debian's <c>postgresql</c>
/// package is installed with apt-get (through <c>sudo -n</c> when not root): the tests install what they need. initdb
/// refuses to run as root, so as root the server runs as the <c>postgres</c> account (which the package creates)
/// through <c>runuser</c>, in a directory that account owns. Anything that stops the server from starting fails the
/// fixture, and with it every test that uses it, with the reason.
/// When <c>ENGINE_TEST_POSTGRES</c> holds a connection string, the tests use that server instead: the fixture creates
/// its database there (the user needs CREATEDB) and drops it afterwards.
/// </remarks>
public sealed partial class PostgresServer : IAsyncLifetime
{
    /// <summary>The database superuser of the local server, and the account it runs under when the tests run as root.</summary>
    public const string Account = "postgres";

    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(90);

    private string? _directory;
    private string? _bin;
    private bool _asAccount;
    private bool _running;
    private string _adminConnectionString = "";
    private string? _database;

    /// <summary>A connection string to the test database (<c>engine_test_…</c>), created empty for this fixture.</summary>
    public string ConnectionString { get; private set; } = "";

    /// <summary>True when the tests run against the server that <c>ENGINE_TEST_POSTGRES</c> names.</summary>
    public bool IsExternal { get; private set; }

    /// <summary>The server's major version.</summary>
    public int MajorVersion { get; private set; }

    /// <summary>
    /// A fresh empty schema in the test database, for a test that needs tables of its own: returns a connection string
    /// whose search path is that schema, so unqualified names create and find tables there. (A schema costs
    /// milliseconds; a database per test would cost a few hundred.)
    /// </summary>
    public async Task<string> CreateSchemaAsync(string label = "t")
    {
        var name = NewName(label);
        await using (var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(ConnectionString) { Pooling = false }.ToString()))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand($"CREATE SCHEMA {name}", connection);
            await command.ExecuteNonQueryAsync();
        }
        return new NpgsqlConnectionStringBuilder(ConnectionString) { SearchPath = name }.ToString();
    }

    private async Task<string> CreateDatabaseAsync(string label)
    {
        var name = NewName(label);
        await using (var connection = new NpgsqlConnection(_adminConnectionString))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand($"CREATE DATABASE {name}", connection);
            await command.ExecuteNonQueryAsync();
        }
        _database = name;
        return new NpgsqlConnectionStringBuilder(_adminConnectionString) { Database = name, Pooling = true }.ToString();
    }

    private static string NewName(string label)
    {
        var name = $"engine_{label}_{Guid.NewGuid():N}".ToLowerInvariant();
        return DatabaseName().IsMatch(name) ? name : throw new ArgumentException($"'{label}' does not make a plain identifier", nameof(label));
    }

    [GeneratedRegex("^[a-z_][a-z0-9_]{0,62}$")]
    private static partial Regex DatabaseName();

    public async ValueTask InitializeAsync()
    {
        if (Environment.GetEnvironmentVariable("ENGINE_TEST_POSTGRES") is { Length: > 0 } external)
        {
            IsExternal = true;
            _adminConnectionString = new NpgsqlConnectionStringBuilder(external) { Pooling = false }.ToString();
        }
        else
        {
            await StartLocalAsync();
        }
        await using (var connection = new NpgsqlConnection(_adminConnectionString))
        {
            await connection.OpenAsync();
            MajorVersion = connection.PostgreSqlVersion.Major;
        }
        ConnectionString = await CreateDatabaseAsync("test");
    }

    private async Task StartLocalAsync()
    {
        _bin = await EnsureInstalledAsync();
        _asAccount = Environment.IsPrivilegedProcess;
        // The postgres account must reach the directory: root's own TMPDIR may be closed to it, /tmp never is.
        _directory = Path.Combine(_asAccount ? "/tmp" : Path.GetTempPath(), $"engine-test-postgres-{Guid.NewGuid():N}");
        Directory.CreateDirectory(_directory);
        if (_asAccount)
        {
            await RunCheckedAsync("chown", [Account, _directory], CommandTimeout, asAccount: false);
        }
        var data = Path.Combine(_directory, "data");
        await InitDbAsync(data);

        // A free port can be taken between asking for it and binding it: try again with another.
        for (var attempt = 1; ; attempt++)
        {
            var port = FreePort();
            var log = Path.Combine(_directory, $"postgres-{port}.log");
            // Durability is worth nothing in a throwaway server: no fsync, no full page writes.
            var options = $"-p {port} -c listen_addresses=127.0.0.1 -k '{_directory}' -c fsync=off -c synchronous_commit=off -c full_page_writes=off";
            var (exitCode, output) = await RunAsync(Tool("pg_ctl"), ["start", "-D", data, "-l", log, "-w", "-t", "60", "-o", options], CommandTimeout, asAccount: true);
            if (exitCode == 0)
            {
                _running = true;
                // Trust on the loopback interface only, for a server that lives as long as the test run.
                _adminConnectionString = new NpgsqlConnectionStringBuilder
                {
                    Host = "127.0.0.1",
                    Port = port,
                    Username = Account,
                    Database = "postgres",
                    Pooling = false,
                    IncludeErrorDetail = true,
                }.ToString();
                return;
            }
            var serverLog = File.Exists(log) ? await File.ReadAllTextAsync(log) : "";
            if (attempt < 3 && serverLog.Contains("could not bind", StringComparison.Ordinal))
            {
                continue;
            }
            throw new InvalidOperationException($"PostgreSQL did not start (pg_ctl exit code {exitCode}):\n{output}\n{serverLog}");
        }
    }

    private async Task InitDbAsync(string data)
    {
        string[] common = ["-D", data, "-U", Account, "--auth=trust", "--encoding=UTF8", "--no-sync"];
        // Text sorts by a natural language's rules here, as on most production servers, so that code which relies on
        // byte order has to say so (COLLATE "C"); ICU locales exist from PostgreSQL 15 on and need no OS locale.
        if (await ServerMajorVersionAsync() >= 15)
        {
            var (exitCode, _) = await RunAsync(Tool("initdb"), [.. common, "--locale-provider=icu", "--icu-locale=en-US", "--locale=C.UTF-8"],
                CommandTimeout, asAccount: true);
            if (exitCode == 0)
            {
                return;
            }
        }
        // Built without ICU (initdb cleans up after a failure): the C locale then.
        await RunCheckedAsync(Tool("initdb"), [.. common, "--locale=C"], CommandTimeout, asAccount: true);
    }

    private async Task<int> ServerMajorVersionAsync()
    {
        var (_, output) = await RunCheckedAsync(Tool("postgres"), ["--version"], CommandTimeout, asAccount: false);
        var match = VersionLine().Match(output);
        return match.Success ? int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture) : 0;
    }

    [GeneratedRegex(@"\(PostgreSQL\) (\d+)")]
    private static partial Regex VersionLine();

    private string Tool(string name) => Path.Combine(_bin!, name);

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>The folder that holds initdb, pg_ctl and postgres, installing Debian's package first when there is none.</summary>
    private static async Task<string> EnsureInstalledAsync()
    {
        if (FindBinaries() is { } found && (!Environment.IsPrivilegedProcess || await AccountExistsAsync()))
        {
            return found;
        }
        // Test processes may start together: one installs, the others wait on the lock and then find it installed.
        await using var lockFile = await DebianPackages.AcquireLockAsync(Path.Combine(Path.GetTempPath(), "engine-test-postgresql-install.lock"));
        if (FindBinaries() is { } again && (!Environment.IsPrivilegedProcess || await AccountExistsAsync()))
        {
            return again;
        }
        var (exitCode, log) = await DebianPackages.InstallAsync("postgresql");
        if (FindBinaries() is { } installed && exitCode == 0)
        {
            return installed;
        }
        throw new InvalidOperationException(
            "PostgreSQL is needed for these tests: no initdb on PATH nor under /usr/lib/postgresql/<version>/bin, and installing Debian's " +
            $"package failed (apt-get install postgresql{DebianPackages.How}; exit code {exitCode}). " +
            $"Install PostgreSQL, or set ENGINE_TEST_POSTGRES to a server's connection string.\n{log}");
    }

    /// <summary>initdb on PATH (its link followed to the real folder), else the newest of Debian's versioned folders.</summary>
    private static string? FindBinaries()
    {
        static bool Complete(string dir) => File.Exists(Path.Combine(dir, "initdb")) && File.Exists(Path.Combine(dir, "pg_ctl"))
            && File.Exists(Path.Combine(dir, "postgres"));

        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var initdb = new FileInfo(Path.Combine(dir, "initdb"));
            if (!initdb.Exists)
            {
                continue;
            }
            var real = initdb.ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? initdb.FullName;
            if (Path.GetDirectoryName(real) is { } folder && Complete(folder))
            {
                return folder;
            }
        }
        var debian = new DirectoryInfo("/usr/lib/postgresql");
        if (!debian.Exists)
        {
            return null;
        }
        return debian.GetDirectories()
            .Select(d => (Version: int.TryParse(d.Name, CultureInfo.InvariantCulture, out var v) ? v : -1, Bin: Path.Combine(d.FullName, "bin")))
            .Where(v => v.Version >= 0 && Complete(v.Bin))
            .OrderByDescending(v => v.Version)
            .Select(v => v.Bin)
            .FirstOrDefault();
    }

    private static async Task<bool> AccountExistsAsync()
    {
        var (exitCode, _) = await RunProcessAsync("id", ["-u", Account], CommandTimeout);
        return exitCode == 0;
    }

    private async Task<(int ExitCode, string Output)> RunCheckedAsync(string file, string[] arguments, TimeSpan timeout, bool asAccount)
    {
        var (exitCode, output) = await RunAsync(file, arguments, timeout, asAccount);
        if (exitCode != 0)
        {
            throw new InvalidOperationException($"{Path.GetFileName(file)} {string.Join(' ', arguments)} failed (exit code {exitCode}):\n{output}");
        }
        return (exitCode, output);
    }

    /// <summary>Runs a command, as the <c>postgres</c> account when the tests run as root and it is a server command.</summary>
    private Task<(int ExitCode, string Output)> RunAsync(string file, string[] arguments, TimeSpan timeout, bool asAccount) =>
        asAccount && _asAccount
            ? RunProcessAsync("runuser", ["-u", Account, "--", file, .. arguments], timeout, _directory)
            : RunProcessAsync(file, arguments, timeout, _directory);

    private static async Task<(int ExitCode, string Output)> RunProcessAsync(string file, string[] arguments, TimeSpan timeout, string? workingDirectory = null)
    {
        var start = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            // The postgres account may not be allowed into the test's working directory.
            WorkingDirectory = workingDirectory ?? Path.GetTempPath(),
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"cannot start {file}");
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync().WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            process.Kill(entireProcessTree: true);
            throw new InvalidOperationException($"{file} {string.Join(' ', arguments)} did not finish within {timeout.TotalSeconds:0} s");
        }
        return (process.ExitCode, $"{await output}{await error}");
    }

    public async ValueTask DisposeAsync()
    {
        if (IsExternal && _database is not null)
        {
            try
            {
                await using var connection = new NpgsqlConnection(_adminConnectionString);
                await connection.OpenAsync();
                // FORCE: a pooled connection a test left open would otherwise keep the database.
                await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS {_database} WITH (FORCE)", connection);
                await drop.ExecuteNonQueryAsync();
            }
            catch (NpgsqlException)
            {
                // A leftover engine_test_* database on a shared server is harmless and named as a test database.
            }
        }
        if (_running && _directory is not null)
        {
            // Immediate: nothing here is worth a checkpoint, the data directory is deleted next.
            await RunAsync(Tool("pg_ctl"), ["stop", "-D", Path.Combine(_directory, "data"), "-m", "immediate", "-w"], CommandTimeout, asAccount: true);
            _running = false;
        }
        if (_directory is not null && Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
        _directory = null;
    }
}
