using Microsoft.Extensions.Logging;

namespace Engine.Diagnostics;

/// <summary>
/// The engine's log events, source-generated (no boxing, no formatting unless enabled). Event ids are grouped by
/// stage: 1xxx runs, 2xxx ingest, 3xxx identity. Messages never carry raw personal identifiers.
/// </summary>
public static partial class Log
{
    [LoggerMessage(1000, LogLevel.Information, "Run {RunId} started for workspace {Workspace} (as of {AsOf:O})")]
    public static partial void RunStarted(ILogger logger, string runId, string workspace, DateTimeOffset asOf);

    [LoggerMessage(1001, LogLevel.Information, "Run {RunId} {Status} in {Seconds:F1} s; manifest {Manifest}")]
    public static partial void RunFinished(ILogger logger, string runId, string status, double seconds, string manifest);

    [LoggerMessage(1002, LogLevel.Information, "Stage {Stage} started")]
    public static partial void StageStarted(ILogger logger, string stage);

    [LoggerMessage(1003, LogLevel.Information, "Stage {Stage} finished in {Seconds:F2} s: {Rows} rows")]
    public static partial void StageFinished(ILogger logger, string stage, double seconds, long rows);

    [LoggerMessage(1004, LogLevel.Error, "Stage {Stage} failed: {Message}")]
    public static partial void StageFailed(ILogger logger, string stage, string message);

    [LoggerMessage(1005, LogLevel.Information, "Run {RunId} resumed (attempt {Attempt}); reusing the stages done: {Stages}")]
    public static partial void RunResumed(ILogger logger, string runId, int attempt, string stages);

    [LoggerMessage(1006, LogLevel.Information, "Run {RunId} already succeeded (as of {AsOf:O}): nothing to run")]
    public static partial void RunAlreadySucceeded(ILogger logger, string runId, DateTimeOffset asOf);

    [LoggerMessage(2000, LogLevel.Information, "Source {Source}: {Files} file(s), {Bytes} bytes at {Location}")]
    public static partial void SourceOpened(ILogger logger, string source, int files, long bytes, string location);

    [LoggerMessage(2001, LogLevel.Debug, "Read {Rows} rows from {File}")]
    public static partial void FileRead(ILogger logger, long rows, string file);

    [LoggerMessage(2002, LogLevel.Debug, "Checked {Rows} rows of {File} at its footer")]
    public static partial void FileChecked(ILogger logger, long rows, string file);

    [LoggerMessage(2003, LogLevel.Information, "Source {Source}: {FromFooter} file(s) checked at their footers, {Scanned} scanned")]
    public static partial void SourceChecked(ILogger logger, string source, int fromFooter, int scanned);

    [LoggerMessage(3000, LogLevel.Information, "Identity: {Mode} ({Reason})")]
    public static partial void IdentityMode(ILogger logger, string mode, string reason);

    [LoggerMessage(3001, LogLevel.Information, "Identity: source {Source}: {Files} file(s), {Rows} rows")]
    public static partial void IdentitySourceRead(ILogger logger, string source, int files, long rows);

    [LoggerMessage(3002, LogLevel.Information, "Identity: {Identifiers} identifiers, {Edges} links, {Profiles} profiles (largest {Largest} identifiers)")]
    public static partial void IdentityFinished(ILogger logger, long identifiers, long edges, long profiles, long largest);

    [LoggerMessage(4000, LogLevel.Information, "Profiles: source {Source}: {Rows} rows, {WithoutProfile} without a profile")]
    public static partial void ProfilesSourceRead(ILogger logger, string source, long rows, long withoutProfile);

    [LoggerMessage(4001, LogLevel.Information, "Profiles: {Profiles} profiles, {Attributes} attributes, {Traits} traits")]
    public static partial void ProfilesFinished(ILogger logger, long profiles, int attributes, int traits);

    [LoggerMessage(5000, LogLevel.Information, "Scores: model {Model} version {Version} trained, validation ROC AUC {Auc:F4}: {Decision}")]
    public static partial void ModelTrained(ILogger logger, string model, int version, double auc, string decision);

    [LoggerMessage(5001, LogLevel.Information, "Scores: model {Model} version {Version} scored {Scored} profiles ({Seconds:F2} s with any training)")]
    public static partial void ModelScored(ILogger logger, string model, int version, long scored, double seconds);

    [LoggerMessage(5002, LogLevel.Warning, "Scores: {Message}")]
    public static partial void ModelFailed(ILogger logger, string message);
}
