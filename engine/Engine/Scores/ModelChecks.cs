using Engine.Profiles;
using Engine.Segments;
using Engine.Storage;
using Engine.Workspaces;

namespace Engine.Scores;

/// <summary>
/// Checks a workspace's models against its profile columns without data, as <c>engine validate</c> and the start of
/// every run do: features that are profile columns, conditions that compile, output columns that collide with
/// nothing, and the point-in-time guard. Every problem is reported at its file, line and column.
/// </summary>
/// <remarks>
/// <para><b>The point-in-time guard.</b> A forecast model is trained on features computed as of a past cutoff and a
/// label observed after it. Traits are computed from events before the cutoff, and dated attributes from the CRM
/// rows updated before it, so neither can see the future. An attribute of an <i>undated</i> source (a snapshot
/// export without <c>updated_at</c>) holds today's value whatever the cutoff: a customer's status after they
/// cancelled, say. Training on it would teach the model the answer, so it is refused as a feature of a forecast
/// model. So is another model's score (trained on data up to today) and, for a snapshot label, any column the label
/// condition reads.</para>
/// </remarks>
public static class ModelChecks
{
    /// <summary>Throws <see cref="WorkspaceException"/> listing every problem of the workspace's models.</summary>
    public static void Check(Workspace workspace)
    {
        ArgumentNullException.ThrowIfNull(workspace);
        var errors = new List<WorkspaceError>();
        var profileColumns = workspace.Profiles.OutputColumns.ToList();
        var profileNames = profileColumns.Select(c => c.Name).ToList();
        var outputs = new Dictionary<string, ModelDefinition>(StringComparer.OrdinalIgnoreCase);
        foreach (var model in workspace.Models)
        {
            foreach (var output in new[] { model.ScoreColumn, model.DecileColumn })
            {
                if (profileNames.Contains(output, StringComparer.OrdinalIgnoreCase))
                {
                    errors.Add(new WorkspaceError(model.File, 0, 0, $"model '{model.Name}': its output column '{output}' is already a profile column ({ProfilesDefinition.FileName}); name it under 'outputs'"));
                }
                else if (!outputs.TryAdd(output, model))
                {
                    errors.Add(new WorkspaceError(model.File, 0, 0, $"model '{model.Name}': its output column '{output}' is also written by model '{outputs[output].Name}' ({outputs[output].File})"));
                }
            }
        }
        var scoreColumns = workspace.Models.SelectMany(m => new[] { m.ScoreColumn, m.DecileColumn }).ToHashSet(StringComparer.OrdinalIgnoreCase);

        foreach (var model in workspace.Models)
        {
            var features = ProfileTable.Empty(profileColumns);
            if (model.Population is { } population)
            {
                Compile(model, population, features, "population", errors);
            }
            var labelColumns = new HashSet<string>();
            if (model.Label is { } label)
            {
                var labelTable = model.IsForecast
                    ? ProfileTable.Empty(workspace.Profiles.Attributes.Concat(label.Traits.Select(t => new ColumnSpec(t.Name, t.OutputType))))
                    : features;
                Compile(model, label.Condition, labelTable, "label condition", errors);
                labelColumns = model.IsForecast ? [] : LabelColumns(label.Condition);
            }
            foreach (var feature in model.Features)
            {
                var at = (File: model.File, feature.Line, feature.ColumnNumber);
                if (scoreColumns.Contains(feature.Column))
                {
                    errors.Add(new WorkspaceError(at.File, at.Line, at.ColumnNumber, $"model '{model.Name}': feature '{feature.Column}' is a model's output; a model's features are attributes and traits"));
                    continue;
                }
                var column = profileColumns.Find(c => c.Name == feature.Column);
                if (column is null)
                {
                    var hint = Suggestions.Nearest(feature.Column, profileNames);
                    errors.Add(new WorkspaceError(at.File, at.Line, at.ColumnNumber,
                        $"model '{model.Name}': feature '{feature.Column}' is not a profile column{(hint is null ? $" (attributes and traits of {ProfilesDefinition.FileName})" : $" (did you mean '{hint}'?)")}"));
                    continue;
                }
                if (model.External is not null && column.Type == ColumnType.String)
                {
                    errors.Add(new WorkspaceError(at.File, at.Line, at.ColumnNumber,
                        $"model '{model.Name}': feature '{feature.Column}' is a string; an external model reads a vector of numbers, so its features must be numbers, booleans, dates or times"));
                }
                if (labelColumns.Contains(feature.Column))
                {
                    errors.Add(new WorkspaceError(at.File, at.Line, at.ColumnNumber,
                        $"model '{model.Name}': feature '{feature.Column}' is read by the label condition; a model cannot learn its label from the label itself"));
                }
                if (model.IsForecast && UndatedSource(workspace.Profiles, feature.Column) is { } undated)
                {
                    errors.Add(new WorkspaceError(at.File, at.Line, at.ColumnNumber,
                        $"model '{model.Name}': feature '{feature.Column}' comes from source '{undated}', which has no updated_at: its value at the training cutoff "
                        + "is unknown, so training on today's value would leak what happened after the cutoff. Give the source an update time, or drop the feature"));
                }
            }
        }
        if (errors.Count > 0)
        {
            throw new WorkspaceException(errors);
        }
    }

    private static void Compile(ModelDefinition model, ConditionText condition, ProfileTable table, string what, List<WorkspaceError> errors)
    {
        try
        {
            new ConditionCompiler(table, DateTimeOffset.UnixEpoch, _ => false).Compile(condition.Text);
        }
        catch (ConditionException e)
        {
            var (line, column) = condition.Positions.Locate(Math.Max(0, e.Position));
            errors.Add(new WorkspaceError(model.File, line, column, $"model '{model.Name}': {what}: {e.Message}"));
        }
    }

    /// <summary>The columns a snapshot label reads (unquoted names as SQL matches them, case-insensitively).</summary>
    private static HashSet<string> LabelColumns(ConditionText condition)
    {
        var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        try
        {
            foreach (var column in ConditionColumns.Of(ConditionParser.Parse(condition.Text)))
            {
                names.Add(column.Name);
            }
        }
        catch (ConditionException)
        {
            // Reported by Compile.
        }
        return names;
    }

    /// <summary>The undated attribute source an attribute comes from, if any (null for traits and dated attributes).</summary>
    private static string? UndatedSource(ProfilesDefinition profiles, string column)
    {
        foreach (var source in profiles.AttributeSources)
        {
            if (!source.IsDated && source.Columns.Any(c => c.Name == column))
            {
                return source.Source;
            }
        }
        return null;
    }
}
