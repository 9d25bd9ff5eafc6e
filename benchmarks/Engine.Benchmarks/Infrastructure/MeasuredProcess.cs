using Engine.Diagnostics;
using System.Diagnostics;

namespace Engine.Benchmarks.Infrastructure;

/// <summary>What <see cref="MeasuredProcess.Run"/> measured of one child process.</summary>
/// <param name="ExitCode">The child's exit code.</param>
/// <param name="WallSeconds">From start to exit, process start and runtime load included.</param>
/// <param name="PeakBytes">The child's VmHWM, sampled every <see cref="MeasuredProcess.SampleInterval"/> (-1 when never read).</param>
/// <param name="OtherCpuCores">Other processes' CPU while the child ran (the child's and this process's own excluded).</param>
internal sealed record MeasuredRun(int ExitCode, double WallSeconds, long PeakBytes, double OtherCpuCores);

/// <summary>
/// Runs another executable (the published <c>engine</c> command line) as a child process and measures it from outside:
/// wall time, peak resident set and the other processes' CPU meanwhile. A process's VmHWM can only be read while it
/// exists, so it is sampled from <c>/proc/&lt;pid&gt;/status</c> until the child exits; being a high-water mark, a
/// sample misses only growth in the child's last <see cref="SampleInterval"/>.
/// </summary>
internal static class MeasuredProcess
{
    public static readonly TimeSpan SampleInterval = TimeSpan.FromMilliseconds(50);

    /// <summary>Runs <paramref name="exe"/> with <paramref name="args"/>, its standard output and error appended to <paramref name="log"/>.</summary>
    public static MeasuredRun Run(string exe, IEnumerable<string> args, string log)
    {
        var start = new ProcessStartInfo(exe) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(log))!);
        using var writer = new StreamWriter(log, append: true) { AutoFlush = true };
        var gate = new object();
        void Write(string? line)
        {
            if (line is not null)
            {
                lock (gate)
                {
                    writer.WriteLine(line);
                }
            }
        }
        writer.WriteLine($"$ {exe} {string.Join(' ', start.ArgumentList)}");
        var others = new OtherCpu(countChildren: true);
        var clock = Stopwatch.StartNew();
        using var child = Process.Start(start) ?? throw new InvalidOperationException($"could not start {exe}");
        child.OutputDataReceived += (_, e) => Write(e.Data);
        child.ErrorDataReceived += (_, e) => Write(e.Data);
        child.BeginOutputReadLine();
        child.BeginErrorReadLine();
        var peak = -1L;
        while (!child.WaitForExit(SampleInterval))
        {
            peak = Math.Max(peak, ProcessMemory.PeakBytes(child.Id));
        }
        child.WaitForExit();
        var seconds = clock.Elapsed.TotalSeconds;
        return new MeasuredRun(child.ExitCode, seconds, peak, others.Cores());
    }

    /// <summary>The last <paramref name="lines"/> lines of a log, for an error message.</summary>
    public static string Tail(string log, int lines = 30) =>
        File.Exists(log) ? string.Join('\n', File.ReadLines(log).TakeLast(lines)) : "";
}
