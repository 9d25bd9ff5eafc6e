using System.Diagnostics;
using System.Text;

namespace Engine.TestKit;

/// <summary>
/// Installing what a test fixture needs from Debian's packages (PostgreSQL, Chromium): apt-get as root, or through
/// <c>sudo -n</c> otherwise, one fixture process at a time (a lock file), first without refreshing the package lists
/// (quick when they are there), then with (a fresh image has none).
/// </summary>
internal static class DebianPackages
{
    public static readonly TimeSpan InstallTimeout = TimeSpan.FromMinutes(10);

    /// <summary>Runs <c>apt-get install</c> for <paramref name="packages"/>; returns the exit code and everything apt printed.</summary>
    public static async Task<(int ExitCode, string Log)> InstallAsync(params string[] packages)
    {
        string[] install = ["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-q", "--no-install-recommends", .. packages];
        string[] update = ["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "update", "-q"];
        var log = new StringBuilder();
        var (exitCode, output) = await RunAsAdministratorAsync(install);
        log.AppendLine(output);
        if (exitCode != 0)
        {
            (exitCode, output) = await RunAsAdministratorAsync(update);
            log.AppendLine(output);
            if (exitCode == 0)
            {
                (exitCode, output) = await RunAsAdministratorAsync(install);
                log.AppendLine(output);
            }
        }
        return (exitCode, log.ToString());
    }

    /// <summary>How the install was attempted, for failure messages.</summary>
    public static string How => Environment.IsPrivilegedProcess ? "" : ", through sudo -n";

    /// <summary>An exclusive lock on <paramref name="path"/>, waited for up to the install time limit (parallel test processes).</summary>
    public static async Task<FileStream> AcquireLockAsync(string path)
    {
        var deadline = DateTime.UtcNow + InstallTimeout;
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

    private static async Task<(int ExitCode, string Output)> RunAsAdministratorAsync(string[] command)
    {
        try
        {
            var (file, arguments) = Environment.IsPrivilegedProcess ? (command[0], command[1..]) : ("sudo", (string[])["-n", .. command]);
            var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var argument in arguments)
            {
                start.ArgumentList.Add(argument);
            }
            using var process = Process.Start(start) ?? throw new InvalidOperationException($"cannot start {file}");
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            try
            {
                await process.WaitForExitAsync().WaitAsync(InstallTimeout);
            }
            catch (TimeoutException)
            {
                process.Kill(entireProcessTree: true);
                return (-1, $"{string.Join(' ', command)} did not finish within {InstallTimeout.TotalMinutes:0} minutes");
            }
            return (process.ExitCode, $"{await stdout}{await stderr}");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            // No apt-get (not Debian) or no sudo: the caller's message says what to do.
            return (-1, e.Message);
        }
    }
}
