using System.Globalization;

namespace Engine.Benchmarks.Infrastructure;

/// <summary>
/// How much CPU other processes used while this one worked: the machine's busy time from <c>/proc/stat</c> minus this
/// process's own (<c>/proc/self/stat</c>), both in clock ticks, over the elapsed time. Benchmarks on a shared machine
/// report it, since a timing taken while something else ran is not comparable. A parent that waits for a child doing
/// the work counts the child's CPU as its own with <c>countChildren</c> (the kernel adds a child's time to the parent's
/// <c>cutime</c>/<c>cstime</c> once it has been waited for, so read <see cref="Cores"/> after the child exited).
/// </summary>
internal sealed class OtherCpu(bool countChildren = false)
{
    // USER_HZ: 100 on every Linux this runs on (sysconf(_SC_CLK_TCK)).
    private const double TicksPerSecond = 100;

    private readonly long _machineBusy = MachineBusyTicks();
    private readonly bool _countChildren = countChildren;
    private readonly long _own = OwnTicks(countChildren);
    private readonly long _started = System.Diagnostics.Stopwatch.GetTimestamp();

    /// <summary>Average cores' worth of other processes' CPU since this sampler was made; -1 where /proc is not available.</summary>
    public double Cores()
    {
        var machine = MachineBusyTicks();
        var own = OwnTicks(_countChildren);
        if (machine < 0 || own < 0 || _machineBusy < 0 || _own < 0)
        {
            return -1;
        }
        var seconds = System.Diagnostics.Stopwatch.GetElapsedTime(_started).TotalSeconds;
        return seconds <= 0 ? 0 : Math.Max(0, (machine - _machineBusy - (own - _own)) / TicksPerSecond / seconds);
    }

    private static long MachineBusyTicks()
    {
        try
        {
            // "cpu  user nice system idle iowait irq softirq steal guest guest_nice"; guest time is inside user.
            var fields = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries);
            long busy = 0;
            for (var i = 1; i <= 8 && i < fields.Length; i++)
            {
                if (i is not 4 and not 5)
                {
                    busy += long.Parse(fields[i], CultureInfo.InvariantCulture);
                }
            }
            return busy;
        }
        catch (IOException)
        {
            return -1;
        }
    }

    private static long OwnTicks(bool countChildren)
    {
        try
        {
            // Fields after the ")" that closes the command name: state is field 3, utime 14 and stime 15, and the
            // waited-for children's cutime 16 and cstime 17.
            var text = File.ReadAllText("/proc/self/stat");
            var fields = text[(text.LastIndexOf(')') + 2)..].Split(' ');
            var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
            return countChildren ? ticks + long.Parse(fields[13], CultureInfo.InvariantCulture) + long.Parse(fields[14], CultureInfo.InvariantCulture) : ticks;
        }
        catch (IOException)
        {
            return -1;
        }
    }
}
