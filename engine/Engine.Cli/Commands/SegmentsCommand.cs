using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Engine.Identity;
using Engine.Profiles;
using Engine.Runs;
using Engine.Segments;
using Engine.Storage;
using Engine.Workspaces;
using Spectre.Console;

namespace Engine.Cli.Commands;

/// <summary>
/// <c>engine segments preview</c>: the workspace's segments as they are written now, evaluated over the latest run's
/// profiles without writing anything: each segment's size, its change against that run's members, its overlap with
/// the other segments, and a sample of members with their identifiers masked.
/// </summary>
internal static class SegmentsCommand
{
    // Beyond this many segments the overlap matrix would not fit a terminal: each segment's largest overlaps instead.
    private const int MatrixLimit = 8;

    public static Command Create()
    {
        var workspace = ValidateCommand.WorkspaceOption();
        var name = new Argument<string?>("name") { Description = "One segment to preview (default: all)", Arity = ArgumentArity.ZeroOrOne };
        var runId = new Option<string?>("--run-id") { Description = "The run whose profiles to evaluate (default: the latest run with profiles)" };
        var sample = new Option<int>("--sample") { Description = "Members to show per segment, identifiers masked", DefaultValueFactory = _ => 5 };
        var preview = new Command("preview", "Evaluate the segments as written now over the latest run's profiles, and show sizes, changes, overlaps and a masked sample")
        {
            workspace, name, runId, sample,
        };
        preview.SetAction(async (parse, cancellationToken) =>
        {
            using var context = EngineCommandLine.Context(parse);
            var loaded = WorkspaceLoader.Load(parse.GetValue(workspace)!);
            var only = parse.GetValue(name);
            if (only is not null && !loaded.Segments.Any(s => s.Name == only))
            {
                var hint = Suggestions.Nearest(only, loaded.Segments.Select(s => s.Name));
                throw new EngineException($"workspace '{loaded.Name}' has no segment '{only}'{(hint is null ? "" : $" (did you mean '{hint}'?)")}");
            }
            var runs = context.Storage.Resolve(loaded.Output, loaded.Directory).Child("runs");
            var chosen = parse.GetValue(runId);
            RunManifest? manifest = null;
            if (chosen is null)
            {
                manifest = await RunHistory.FindPreviousAsync(runs, "", DateTimeOffset.MaxValue, ProfilesStage.Folder, cancellationToken)
                    ?? throw new EngineException($"workspace '{loaded.Name}' has no run with profiles yet under {runs}; run 'engine run' first");
                chosen = manifest.RunId;
            }
            var run = runs.Child(chosen);
            var clock = Stopwatch.StartNew();
            var table = await ProfileTable.ReadAsync(run.Child(ProfilesStage.Folder), cancellationToken);
            var readSeconds = clock.Elapsed.TotalSeconds;
            manifest ??= await RunHistory.ReadAsync(runs, chosen, cancellationToken);
            var asOf = manifest?.AsOf ?? DateTimeOffset.UtcNow;

            clock.Restart();
            var set = SegmentSet.Compile(loaded.Segments, table, asOf);
            var members = set.Evaluate(table);
            var evaluateSeconds = clock.Elapsed.TotalSeconds;
            var before = manifest?.Stages.Exists(s => s.Name == "segments" && s.Status == RunStatus.Succeeded) == true
                ? await SegmentsStage.ReadMembersAsync(run.Child(SegmentsStage.MembersFolder), cancellationToken)
                : null;

            var shown = loaded.Segments.Where(s => only is null || s.Name == only).Select(s => s.Name).ToList();
            context.Output.WriteLine($"{table.Count:N0} profiles from run {chosen} (as of {asOf:yyyy-MM-dd HH:mm} UTC), read in {readSeconds:F2} s; {loaded.Segments.Count} segment(s) evaluated in {evaluateSeconds:F2} s");
            PrintSizes(context.Results, shown, members, before, chosen);
            PrintOverlaps(context.Results, context.Output, shown, loaded.Segments.Select(s => s.Name).ToList(), members);
            var count = parse.GetValue(sample);
            if (count > 0)
            {
                await PrintSamplesAsync(context.Results, context.Output, loaded.Identity, run, shown, members, count, cancellationToken);
            }
            return EngineCommandLine.Success;
        });
        return new Command("segments", "Inspect segments") { preview };
    }

    private static void PrintSizes(IAnsiConsole console, List<string> shown, SegmentMembers members, Dictionary<string, long[]>? before, string runId)
    {
        var sizes = new Table().AddColumns("segment", "members", "share", $"vs run {Markup.Escape(runId)}", "entered", "exited", "ms");
        foreach (var segment in shown)
        {
            var now = members.ProfileIds(segment);
            var share = members.Table.Count == 0 ? 0 : (double)now.Length / members.Table.Count;
            string change = "new", entered = "", exited = "";
            if (before is not null && before.TryGetValue(segment, out var previous))
            {
                var (e, x) = SegmentsStage.Difference(now, previous);
                var delta = now.Length - previous.Length;
                change = delta.ToString("+#,0;-#,0;0", CultureInfo.InvariantCulture);
                entered = e.Length.ToString("N0", CultureInfo.InvariantCulture);
                exited = x.Length.ToString("N0", CultureInfo.InvariantCulture);
            }
            else if (before is null)
            {
                change = "(no members in that run)";
            }
            sizes.AddRow(Markup.Escape(segment), now.Length.ToString("N0", CultureInfo.InvariantCulture), share.ToString("P1", CultureInfo.InvariantCulture),
                Markup.Escape(change), entered, exited, members.Milliseconds[segment].ToString("F1", CultureInfo.InvariantCulture));
        }
        console.Write(sizes);
    }

    /// <summary>Members two segments share: a popcount of the AND of their bitmaps.</summary>
    private static long Overlap(ulong[] a, ulong[] b)
    {
        long count = 0;
        for (var w = 0; w < a.Length; w++)
        {
            count += (long)ulong.PopCount(a[w] & b[w]);
        }
        return count;
    }

    private static void PrintOverlaps(IAnsiConsole console, TextWriter output, List<string> shown, List<string> all, SegmentMembers members)
    {
        if (all.Count < 2)
        {
            return;
        }
        if (all.Count <= MatrixLimit)
        {
            output.WriteLine("Overlap (members in both):");
            var matrix = new Table().AddColumn("");
            foreach (var column in all)
            {
                matrix.AddColumn(Markup.Escape(column));
            }
            foreach (var row in shown)
            {
                matrix.AddRow([Markup.Escape(row), .. all.Select(column => Overlap(members.Bits[row], members.Bits[column]).ToString("N0", CultureInfo.InvariantCulture))]);
            }
            console.Write(matrix);
            return;
        }
        output.WriteLine("Largest overlaps (members in both, share of the segment):");
        var largest = new Table().AddColumns("segment", "overlaps most with");
        foreach (var row in shown)
        {
            var size = members.Count(row);
            var top = all.Where(c => c != row)
                .Select(c => (Name: c, Both: Overlap(members.Bits[row], members.Bits[c])))
                .Where(o => o.Both > 0)
                .OrderByDescending(o => o.Both).ThenBy(o => o.Name, StringComparer.Ordinal).Take(3)
                .Select(o => $"{o.Name} {o.Both:N0} ({(size == 0 ? 0 : (double)o.Both / size):P0})");
            largest.AddRow(Markup.Escape(row), Markup.Escape(string.Join(", ", top)));
        }
        console.Write(largest);
    }

    /// <summary>
    /// A few members per segment (spread over the segment, the same on every preview) with their identifiers from the
    /// run's identity output, masked: enough to recognise the kind of people in it, never enough to identify them.
    /// </summary>
    private static async Task PrintSamplesAsync(
        IAnsiConsole console, TextWriter output, IdentityRules rules, StorageLocation run, List<string> shown, SegmentMembers members, int count, CancellationToken cancellationToken)
    {
        var samples = new Dictionary<string, long[]>(StringComparer.Ordinal);
        var wanted = new HashSet<long>();
        foreach (var segment in shown)
        {
            var ids = members.ProfileIds(segment);
            var step = Math.Max(1, ids.Length / count);
            samples[segment] = [.. Enumerable.Range(0, Math.Min(count, ids.Length)).Select(i => ids[i * step])];
            wanted.UnionWith(samples[segment]);
        }
        var identifiers = new Dictionary<long, List<(int Type, string Text)>>();
        var dataset = await Dataset.OpenAsync(run.Child(IdentityStage.Folder), DataFormat.Parquet, cancellationToken);
        IdentityOutput.ReadIdentifiers(dataset, rules, (_, typeId, value, profileId, _) =>
        {
            if (profileId > 0 && typeId >= 0 && wanted.Contains(profileId))
            {
                if (!identifiers.TryGetValue(profileId, out var list))
                {
                    identifiers[profileId] = list = [];
                }
                var type = rules.Types[typeId];
                list.Add((typeId, $"{type.Name} {IdentifierMask.Mask(type.Kind, Encoding.UTF8.GetString(value))}"));
            }
        }, cancellationToken);
        foreach (var segment in shown)
        {
            output.WriteLine($"Sample of {segment}:");
            var table = new Table().AddColumns("profile_id", "identifiers (masked)");
            foreach (var id in samples[segment])
            {
                // The most trusted identifiers first (the rules' priority order).
                var list = (identifiers.GetValueOrDefault(id) ?? []).OrderBy(i => i.Type).Select(i => i.Text).ToList();
                table.AddRow(id.ToString(CultureInfo.InvariantCulture), Markup.Escape(string.Join(", ", list.Take(4)) + (list.Count > 4 ? $", … {list.Count - 4} more" : "")));
            }
            console.Write(table);
        }
    }
}
