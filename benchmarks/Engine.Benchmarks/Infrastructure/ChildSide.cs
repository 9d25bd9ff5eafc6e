using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace Engine.Benchmarks.Infrastructure;

/// <summary>
/// The scale runs' plumbing: each side runs in a child process of this executable (so peak memory is its own) and
/// leaves its report as JSON in the work folder; options are read as <c>--name value</c>.
/// </summary>
internal static class ChildSide
{
    /// <summary>Runs this executable with <c>sideFlag side args…</c>, waits, and reads the report it wrote to <paramref name="report"/>.</summary>
    public static T Run<T>(string sideFlag, string side, IEnumerable<string> args, string report, JsonSerializerOptions json)
    {
        var exe = Environment.ProcessPath ?? throw new InvalidOperationException("cannot find this process's executable");
        var start = new ProcessStartInfo(exe) { UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(exe) == "dotnet")
        {
            start.ArgumentList.Add(typeof(ChildSide).Assembly.Location);
        }
        start.ArgumentList.Add(sideFlag);
        start.ArgumentList.Add(side);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        Console.WriteLine($"// {side}: child process");
        using var child = Process.Start(start) ?? throw new InvalidOperationException($"could not start the {side} side");
        child.WaitForExit();
        if (child.ExitCode != 0)
        {
            throw new InvalidOperationException($"the {side} side failed (exit code {child.ExitCode})");
        }
        return JsonSerializer.Deserialize<T>(File.ReadAllText(report), json)
            ?? throw new InvalidOperationException($"the {side} side wrote no report");
    }

    public static string? StringOption(string[] args, string name)
    {
        var index = Array.IndexOf(args, name);
        return index >= 0 && index + 1 < args.Length ? args[index + 1] : null;
    }

    public static long? LongOption(string[] args, string name) =>
        StringOption(args, name) is { } text ? long.Parse(text, NumberStyles.AllowThousands, CultureInfo.InvariantCulture) : null;
}
