using System.Globalization;

namespace Engine.Diagnostics;

/// <summary>
/// The process's memory as Linux reports it: <c>VmHWM</c> (peak resident set, "high water mark") and <c>VmRSS</c> from
/// <c>/proc/self/status</c>, which count managed heap, native allocations (ParquetSharp, DuckDB) and the runtime alike,
/// unlike the GC's own figures. The run resets the peak at each stage's start (<see cref="StartStage"/>), so each stage
/// records its own. -1 where /proc is not available.
/// </summary>
public static class ProcessMemory
{
    /// <summary>Peak resident set size of this process since it started or since the last <see cref="ResetPeak"/>, in bytes.</summary>
    public static long PeakBytes() => Status("VmHWM:");

    /// <summary>Current resident set size of this process, in bytes.</summary>
    public static long CurrentBytes() => Status("VmRSS:");

    /// <summary>Peak resident set size (VmHWM) of another running process, in bytes; -1 once it has exited.</summary>
    public static long PeakBytes(int pid) => Read($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/status", "VmHWM:");

    /// <summary>Physical memory of the machine (MemTotal), in bytes.</summary>
    public static long PhysicalBytes() => Read("/proc/meminfo", "MemTotal:");

    /// <summary>
    /// Sets the peak back to the current resident set (Linux 4.0 and later: writing 5 to <c>/proc/self/clear_refs</c>),
    /// so that the next <see cref="PeakBytes()"/> is the peak since now. False where that is not possible; the peak then
    /// stays the process's.
    /// </summary>
    public static bool ResetPeak()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            return false;
        }
    }

    /// <summary>
    /// Starts measuring a stage's own peak: collects what the work before it left behind (garbage, but resident until a
    /// full collection frees it) and resets the peak. Pass the result to <see cref="StagePeakBytes"/> when the stage ends.
    /// </summary>
    /// <remarks>
    /// A full collection, not an aggressive one: that would also compact the whole heap (1-1.5 s between stages at ten
    /// million people) and hand every freed page back to the system, where a virtual machine that returns freed pages
    /// to its host makes the next stage pay about 0.6 s per GB to map them again (0.03 s to clear memory still mapped).
    /// What the heap keeps for reuse stays resident, so a stage's peak counts it.
    /// </remarks>
    public static bool StartStage()
    {
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        return ResetPeak();
    }

    /// <summary>The peak since <see cref="StartStage"/> (whose result is <paramref name="started"/>); null where it could not be measured.</summary>
    public static long? StagePeakBytes(bool started) => started && PeakBytes() is > 0 and var peak ? peak : null;

    private static long Status(string field) => Read("/proc/self/status", field);

    private static long Read(string file, string field)
    {
        try
        {
            foreach (var line in File.ReadLines(file))
            {
                if (line.StartsWith(field, StringComparison.Ordinal))
                {
                    // "VmHWM:	  123456 kB"
                    var parts = line[field.Length..].Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
                    return long.Parse(parts[0], CultureInfo.InvariantCulture) * 1024;
                }
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
        return -1;
    }
}
