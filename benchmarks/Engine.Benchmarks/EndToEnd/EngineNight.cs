using System.Globalization;
using Engine.Benchmarks.Identity;
using Engine.Benchmarks.Infrastructure;
using Engine.Runs;

namespace Engine.Benchmarks.EndToEnd;

/// <summary>What the engine side measured of one night: <c>engine run</c> in a child process, read back from its manifest.</summary>
internal sealed class EngineNight
{
    public int Night { get; set; }
    public DateTimeOffset AsOf { get; set; }
    public string Command { get; set; } = "";
    public List<StageTime> Stages { get; set; } = [];

    /// <summary>The sum of the manifest's stage durations.</summary>
    public double StageSeconds { get; set; }

    /// <summary>The child's wall time: process start, workspace load and checks, stages, manifest and run report.</summary>
    public double WallSeconds { get; set; }
    public long PeakBytes { get; set; }

    /// <summary>Each stage's own peak resident set, as the run recorded it in its manifest (the run resets the peak per stage).</summary>
    public Dictionary<string, long> StagePeakBytes { get; set; } = [];
    public double OtherCpuCores { get; set; }
    public string IdentityMode { get; set; } = "";
    public long Identifiers { get; set; }
    public long Profiles { get; set; }
    public Dictionary<string, long> Members { get; set; } = [];
    public Dictionary<string, long> Entered { get; set; } = [];
    public Dictionary<string, long> Exited { get; set; } = [];
    public Dictionary<string, SourceCounts> Sources { get; set; } = [];
    public Dictionary<string, string> Models { get; set; } = [];
    public string RunDir { get; set; } = "";
    public string Log { get; set; } = "";

    /// <summary>Runs one night and reads its manifest; throws with the log's tail when the run fails.</summary>
    public static EngineNight Run(string engine, string workspaceDir, string runsDir, int night, DateTimeOffset asOf, bool fullRefresh, string log)
    {
        var runId = $"night-{night}";
        var args = new List<string> { "run", "--workspace", workspaceDir, "--run-id", runId, "--as-of", asOf.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture) };
        if (fullRefresh)
        {
            args.Add("--full-refresh");
        }
        Console.WriteLine($"// engine night {night}: {Path.GetFileName(engine)} {string.Join(' ', args)} (log: {log})");
        var measured = MeasuredProcess.Run(engine, args, log);
        if (measured.ExitCode != 0)
        {
            throw new InvalidOperationException($"engine night {night} failed (exit code {measured.ExitCode}); the end of {log}:\n{MeasuredProcess.Tail(log)}");
        }
        var runDir = Path.Combine(runsDir, runId);
        var manifest = RunManifest.Parse(File.ReadAllBytes(Path.Combine(runDir, RunManifest.FileName)));
        if (manifest.Status != RunStatus.Succeeded)
        {
            throw new InvalidOperationException($"engine night {night}: the manifest says {manifest.Status}: {manifest.Error}");
        }
        var result = new EngineNight
        {
            Night = night,
            AsOf = asOf,
            Command = $"engine {string.Join(' ', args)}",
            WallSeconds = measured.WallSeconds,
            PeakBytes = measured.PeakBytes,
            OtherCpuCores = measured.OtherCpuCores,
            RunDir = runDir,
            Log = log,
            IdentityMode = manifest.Identity?.Mode ?? "",
            Identifiers = manifest.Identity?.Identifiers ?? 0,
            Profiles = manifest.Identity?.Profiles ?? 0,
        };
        double Stage(string name) => manifest.Stages.Where(s => s.Name == name).Sum(s => s.DurationMs) / 1000.0;
        // With models, the scores stage also writes profiles/ once the score columns are in: that write is the profiles'
        // work, so the scores row keeps only the models' own time (the training stage's, and scoring), the rest goes to
        // profiles.
        var modelSeconds = manifest.Scores?.Models.Values.Sum(m => m.Seconds) ?? 0;
        var training = manifest.Training?.Models ?? [];
        var scoresStage = Stage("scores");
        var profileTimings = manifest.Profiles?.TimingsMs ?? [];
        var profiles = new StageTime
        {
            Stage = "profiles",
            Seconds = Stage("profiles") + scoresStage - modelSeconds,
            Parts = [.. profileTimings.Select(p => new PartReport(p.Key, p.Value / 1000.0)), new("write profiles/ (in the scores stage)", scoresStage - modelSeconds)],
        };
        var segments = manifest.Segments;
        result.Stages =
        [
            new StageTime { Stage = "ingest", Seconds = Stage("ingest") },
            new StageTime
            {
                Stage = "identity",
                Seconds = Stage("identity"),
                Parts = manifest.Identity?.TimingsMs.Select(p => new PartReport(p.Key, p.Value / 1000.0)).ToList() ?? [],
            },
            profiles,
            new StageTime
            {
                Stage = "scores",
                Seconds = Stage("training") + modelSeconds,
                Parts =
                [
                    .. training.SelectMany(m => (IEnumerable<PartReport>)[
                        new PartReport($"{m.Key} (trained, in the training stage)", m.Value.Seconds),
                        .. m.Value.TimingsMs.Select(t => new PartReport($"{m.Key}: {t.Key}", t.Value / 1000.0))]),
                    .. manifest.Scores?.Models.Select(m => new PartReport($"{m.Key} ({(m.Value.TrainedVersion is null || training.ContainsKey(m.Key) ? "scored" : "trained and scored")})", m.Value.Seconds)) ?? [],
                ],
            },
            new StageTime
            {
                Stage = "segments",
                Seconds = Stage("segments"),
                Parts = segments is null ? [] :
                [
                    new("evaluate (bitmaps)", segments.EvaluateMs / 1000.0),
                    new("member ids+deltas (merge)", segments.DeltasMs / 1000.0),
                    new("read previous, write segments/ and deltas/", Stage("segments") - (segments.EvaluateMs + segments.DeltasMs) / 1000.0),
                ],
            },
        ];
        result.StageSeconds = manifest.Stages.Sum(s => s.DurationMs) / 1000.0;
        foreach (var stage in manifest.Stages)
        {
            if (stage.PeakMemoryBytes is { } peak)
            {
                result.StagePeakBytes[stage.Name] = peak;
            }
        }
        // The run resets the process's peak at each stage's start, so a peak just before a reset can fall between two
        // samples from outside; the stages' own peaks cover that.
        result.PeakBytes = Math.Max(result.PeakBytes, result.StagePeakBytes.Values.DefaultIfEmpty(0).Max());
        foreach (var segment in segments?.Segments ?? [])
        {
            result.Members[segment.Name] = segment.Members;
            result.Entered[segment.Name] = segment.Entered;
            result.Exited[segment.Name] = segment.Exited;
        }
        foreach (var input in manifest.Inputs)
        {
            result.Sources[input.Source] = new SourceCounts
            {
                Rows = input.Rows,
                NullCounts = new(input.NullCounts),
                MinMicros = input.MinTimestamp is { } min ? (min.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / TimeSpan.TicksPerMicrosecond : null,
                MaxMicros = input.MaxTimestamp is { } max ? (max.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / TimeSpan.TicksPerMicrosecond : null,
            };
        }
        foreach (var (name, model) in manifest.Scores?.Models ?? [])
        {
            result.Models[name] = $"version {model.Version}, {(model.TrainedVersion is { } v ? $"trained version {v} ({model.Decision}, validation AUC {model.ValidationRocAuc:F3})" : "not trained")}, {model.Scored:N0} scored by {model.Scorer}"
                + (model.Error is null ? "" : $", error: {model.Error}");
        }
        Console.WriteLine($"// engine night {night}: {result.WallSeconds:F1} s, peak {result.PeakBytes / 1048576.0:N0} MB"
            + (result.StagePeakBytes.Count == 0 ? "" : $" ({string.Join(", ", result.StagePeakBytes.Select(p => $"{p.Key} {p.Value / 1048576.0:N0}"))})"));
        return result;
    }
}
