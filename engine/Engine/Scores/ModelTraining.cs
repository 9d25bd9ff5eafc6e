using System.Globalization;
using System.Security.Cryptography;
using Engine.Profiles;
using Engine.Segments;
using Engine.Storage;
using Engine.Workspaces;
using Microsoft.Extensions.Logging;
using Microsoft.ML;
using Engine.Diagnostics;

namespace Engine.Scores;

/// <summary>
/// A forecast model's examples: training at one cutoff, validation at the next, and the validation window's profile
/// table; <c>Available</c>, the training examples there were before the trainer's <c>max_examples</c> sampled them.
/// </summary>
internal sealed record ForecastExamples(
    TrainingExamples Training, TrainingExamples Validation, DateTimeOffset TrainingCutoff, DateTimeOffset ValidationCutoff, ProfileTable AtValidation, int[] ValidationRows,
    long Available);

/// <summary>What training a model produced and what became of it.</summary>
/// <param name="Record">The new version as the registry stored it (promoted or not, and why).</param>
/// <param name="Trained">The model itself.</param>
/// <param name="Previous">The version that scored before, if any.</param>
public sealed record TrainingOutcome(ModelRecord Record, TrainedModel Trained, ModelRecord? Previous)
{
    /// <summary>Milliseconds per step: examples, fit, validate, baseline (the scoring version on the same window), store.</summary>
    public Dictionary<string, long> TimingsMs { get; init; } = [];
}

/// <summary>
/// Trains a declared model and registers it: builds the examples point in time, trains and validates
/// (<see cref="ModelTrainer"/>), compares the result with the version that scores now, and promotes it only if its
/// validation ROC AUC is not worse by more than the model's tolerance.
/// </summary>
/// <remarks>
/// <para><b>Forecast labels</b> (<c>horizon_days: H</c>) are trained point in time. With as-of <c>T</c>, the
/// training examples are the population as of the cutoff <c>T - 2H</c>, their features the profile columns computed
/// as of that cutoff (the same profiles stage, with the cutoff as its as-of, so only earlier events and CRM rows
/// count), their label the label condition over the profile as of <c>T - H</c> with the label's traits counted over
/// <c>[T - 2H, T - H)</c>. The validation examples are the same one horizon later: cutoff <c>T - H</c>, label over
/// <c>[T - H, T)</c>. With <c>training_windows: N</c> the training examples come from N cutoffs one horizon apart,
/// <c>T - (N+1)H</c> to <c>T - 2H</c>, each labelled one horizon later. No label looks past as-of and no feature
/// past its cutoff. The identity graph used to gather a
/// person's rows is tonight's (it decides whose rows they are, not what they say).</para>
/// <para><b>Snapshot labels</b> read today's profile table (a churn flag in a CRM export) and are validated by k-fold
/// cross-validation.</para>
/// <para><b>Champion and challenger.</b> For a forecast model the current version is scored on the new validation
/// window too (when its features still exist), so both are compared on the same examples.</para>
/// </remarks>
public sealed partial class ModelTraining
{
    private readonly StorageResolver _storage;
    private readonly ILogger _logger;

    public ModelTraining(StorageResolver storage, ILogger logger)
    {
        _storage = storage;
        _logger = logger;
    }

    /// <summary>The run training, recorded in the version's record (null outside a run: <c>engine models train</c>).</summary>
    public string? RunId { get; init; }

    /// <summary>The run's identity output already in memory (the identity stage ran in this process); null: read from <c>identity/</c>.</summary>
    internal Engine.Profiles.ProfileLookup? Lookup { get; init; }

    /// <summary>
    /// Trains <paramref name="model"/> as of <paramref name="asOf"/> and adds it to <paramref name="registry"/>.
    /// <paramref name="profiles"/> is tonight's profile table (snapshot labels train on it; a forecast label needs none);
    /// <paramref name="identity"/> the run's <c>identity/</c> output (forecast labels rebuild profiles from it).
    /// </summary>
    public async Task<TrainingOutcome> TrainAsync(
        Workspace workspace, ModelDefinition model, StorageLocation identity, ProfileTable? profiles, DateTimeOffset asOf, ModelRegistry registry,
        int parallelism, IProgress<string>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(workspace);
        ArgumentNullException.ThrowIfNull(model);
        var label = model.Label ?? throw new ModelException(model.Name, "an external model is trained elsewhere; the engine only scores with it");
        var threads = Math.Max(1, parallelism);
        var previous = await registry.CurrentAsync(model.Name, cancellationToken);
        var record = new ModelRecord
        {
            Model = model.Name,
            TrainedAt = DateTimeOffset.UtcNow,
            RunId = RunId,
            AsOf = asOf,
            Label = label.Condition.Text.Trim(),
            HorizonDays = label.HorizonDays,
            Population = model.Population?.Text.Trim(),
            Algorithm = model.Plugin is { } reference ? $"plug-in {reference.Type}" : model.Trainer.Algorithm.ToString().ToLowerInvariant(),
            Trainer = model.Trainer,
            DefinitionHash = DefinitionHash(workspace, model),
        };

        var plugin = model.Plugin is null ? null : PluginLoader.Create(model, workspace.Directory);
        record.ProbabilityColumn = plugin?.ProbabilityColumn ?? "Probability";
        TrainedModel trained;
        double? baseline = previous?.Metrics.RocAuc;
        string baselineSource = "its own validation";
        var timings = new Dictionary<string, long>();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        if (label.HorizonDays is not null)
        {
            var examples = await BuildForecastAsync(workspace, model, identity, asOf, parallelism, progress, cancellationToken, previous);
            timings["examples"] = clock.ElapsedMilliseconds;
            var (training, validation) = (examples.Training, examples.Validation);
            record.TrainingCutoff = examples.TrainingCutoff;
            record.ValidationCutoff = examples.ValidationCutoff;
            progress?.Report($"{model.Name}: training on {training.Count:N0}{Of(training.Count, examples.Available)} examples ({training.Positives:N0} positive), validating on {validation.Count:N0}");
            trained = ModelTrainer.TrainAndValidate(model, training, validation, threads, plugin, timings);
            trained.Metrics.TrainingExamplesAvailable = examples.Available;
            clock.Restart();

            if (previous is not null && await ScoreOnAsync(registry, previous, examples.AtValidation, examples.ValidationRows, validation.Labels.ToArray(), examples.ValidationCutoff, cancellationToken) is { } previousAuc)
            {
                baseline = previousAuc;
                baselineSource = $"the same validation window ({validation.Description})";
            }
            timings["baseline"] = clock.ElapsedMilliseconds;
        }
        else
        {
            if (profiles is null)
            {
                throw new ArgumentNullException(nameof(profiles), $"model '{model.Name}' has a snapshot label: it trains on tonight's profile table");
            }
            var rows = Population(model, profiles, asOf, parallelism);
            var schema = FeatureSchema.Learn(model.Name, model.Features.Select(f => f.Column).ToList(), profiles, rows);
            CheckFinite(model, schema, profiles, rows, asOf);
            var available = rows.Length;
            rows = ExampleSample.For(available, model.Trainer).Keep(rows, profiles, asOf);
            var labels = Labels(model, profiles, asOf, rows, parallelism);
            var examples = TrainingExamples.From(schema, profiles, rows, labels, asOf, $"the profiles as of {Day(asOf)}");
            timings["examples"] = clock.ElapsedMilliseconds;
            progress?.Report($"{model.Name}: {model.Validation.Folds}-fold cross-validation over {examples.Count:N0}{Of(examples.Count, available)} examples ({examples.Positives:N0} positive)");
            clock.Restart();
            trained = ModelTrainer.CrossValidate(model, examples, threads, plugin);
            trained.Metrics.TrainingExamplesAvailable = available;
            timings["cross_validation"] = clock.ElapsedMilliseconds;
        }
        record.Features = trained.Features;
        record.Metrics = trained.Metrics;

        var auc = trained.Metrics.RocAuc;
        bool promote;
        if (previous is null || baseline is null)
        {
            promote = true;
            record.Decision = $"promoted: the first version (validation ROC AUC {auc:F4})";
        }
        else
        {
            promote = auc >= baseline.Value - model.AucTolerance;
            record.Decision = promote
                ? $"promoted: validation ROC AUC {auc:F4} against {baseline:F4} for version {previous.Version} on {baselineSource} (tolerance {model.AucTolerance})"
                : $"not promoted: validation ROC AUC {auc:F4} is worse than version {previous.Version}'s {baseline:F4} on {baselineSource} by more than the tolerance {model.AucTolerance}; version {previous.Version} keeps scoring";
        }
        clock.Restart();
        var stored = await registry.AddAsync(new MLContext(model.Trainer.Seed), trained, record, promote, cancellationToken);
        timings["store"] = clock.ElapsedMilliseconds;
        Log.ModelTrained(_logger, model.Name, stored.Version, auc, stored.Decision);
        return new TrainingOutcome(stored, trained, previous) { TimingsMs = timings };
    }

    /// <summary>The training and validation examples of a forecast model, point in time (see the class remarks).</summary>
    /// <remarks>
    /// Built in one scan of the events for every cutoff, each cutoff's state kept only for the profiles its examples
    /// need: those in the population at that cutoff, and (when the label reads traits) those in it one cutoff earlier,
    /// whose label this cutoff gives. Who they are comes first, from the attributes alone, when the population and
    /// label conditions read nothing else (a subscription status: a few percent of the profiles); otherwise every
    /// profile is built, a cutoff at a time. The examples are the same either way, row for row.
    /// </remarks>
    internal async Task<ForecastExamples> BuildForecastAsync(
        Workspace workspace, ModelDefinition model, StorageLocation identity, DateTimeOffset asOf, int parallelism,
        IProgress<string>? progress, CancellationToken cancellationToken, ModelRecord? previous = null)
    {
        var label = model.Label ?? throw new ArgumentException($"model '{model.Name}' is external", nameof(model));
        var horizon = label.HorizonDays ?? throw new ArgumentException($"model '{model.Name}' has a snapshot label", nameof(model));
        var windows = model.Validation.TrainingWindows;
        var validationCutoff = asOf.AddDays(-horizon);
        var trainingCutoff = asOf.AddDays(-(windows + 1) * horizon);
        var stage = new ProfilesStage(_storage, _logger);
        // Only the traits the examples read: each trait is a pass's worth of state per profile, at every cutoff.
        var definitions = ReadBy(workspace.Profiles, model, previous);
        var combined = new ProfilesDefinition(definitions.Survivorship, definitions.AttributeSources, [.. definitions.Traits, .. label.Traits]);

        // cutoffs[k]: k < windows the training windows, oldest first; k = windows the validation window; k = windows + 1
        // as-of itself, where only the validation window's label is read.
        var cutoffs = new DateTimeOffset[windows + 2];
        for (var k = 0; k <= windows + 1; k++)
        {
            cutoffs[k] = asOf.AddDays(-(windows + 1 - k) * horizon);
        }
        var lookup = Lookup;
        if (lookup is null)
        {
            progress?.Report($"{model.Name}: reading identities");
            lookup = await ProfilesStage.ReadLookupAsync(workspace, identity, parallelism, cancellationToken);
        }
        var profiles = lookup.Profiles;

        // Who is in the population at each cutoff, and who has the label, from the attributes alone where the
        // conditions read no trait: a pass over the attribute sources per cutoff, one bit per profile kept.
        var traitNames = new HashSet<string>(workspace.Profiles.Traits.Select(t => t.Name).Concat(label.Traits.Select(t => t.Name)), StringComparer.OrdinalIgnoreCase);
        var populationByAttributes = model.Population is { } population && !NamesIn(population).Overlaps(traitNames);
        var labelByAttributes = !NamesIn(label.Condition).Overlaps(traitNames);
        var populationBits = new ulong[]?[windows + 1];
        var labelBits = new ulong[]?[windows + 2];
        if (populationByAttributes || labelByAttributes)
        {
            var read = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            if (populationByAttributes)
            {
                read.UnionWith(NamesIn(model.Population!));
            }
            if (labelByAttributes)
            {
                read.UnionWith(NamesIn(label.Condition));
            }
            var attributesRead = new ProfilesDefinition(definitions.Survivorship,
                [.. definitions.AttributeSources.Select(s => s with { Columns = [.. s.Columns.Where(c => read.Contains(c.Name))] })], []);
            for (var k = 0; k <= windows + 1; k++)
            {
                var forPopulation = populationByAttributes && k <= windows;
                var forLabel = labelByAttributes && k >= 1;
                if (!forPopulation && !forLabel)
                {
                    continue;
                }
                progress?.Report($"{model.Name}: {(forPopulation ? "population" : "")}{(forPopulation && forLabel ? " and " : "")}{(forLabel ? "labels" : "")} as of {Day(cutoffs[k])}");
                var (table, _) = (await stage.BuildAtAsync(workspace, attributesRead, lookup, [new ProfileCutoff(cutoffs[k], null)], parallelism, null, cancellationToken))[0];
                if (forPopulation)
                {
                    populationBits[k] = Evaluate(model, model.Population!, table, cutoffs[k], parallelism, "population");
                }
                if (forLabel)
                {
                    labelBits[k] = LabelBits(model, table, cutoffs[k], parallelism);
                }
            }
        }

        // The trainer's max_examples: each training window keeps about its share, chosen here, before the events are
        // read, where the population comes from the attributes (only the sampled profiles are built then); otherwise
        // once the window's population is known. The same examples either way: the sample is a hash of profile and
        // cutoff, its rate the window's population's size.
        var samples = new ExampleSample?[windows];
        if (populationByAttributes && model.Trainer.MaxExamples is not null)
        {
            for (var k = 0; k < windows; k++)
            {
                var bits = populationBits[k]!;
                var sample = ExampleSample.For(bits.Sum(w => (long)System.Numerics.BitOperations.PopCount(w)), model.Trainer, windows);
                samples[k] = sample;
                if (!sample.All)
                {
                    foreach (var row in RowSubset.RowsOf(bits))
                    {
                        if (!sample.Keeps(lookup.ProfileIds[row], cutoffs[k]))
                        {
                            bits[row >> 6] &= ~(1UL << (row & 63));
                        }
                    }
                }
            }
        }

        // The cutoffs the events build, newest first, each over the rows it needs (null: every profile).
        var builds = new List<(int Cutoff, RowSubset? Rows)>();
        for (var k = labelByAttributes ? windows : windows + 1; k >= 0; k--)
        {
            var needed = new List<ulong[]?>();
            if (k <= windows)
            {
                needed.Add(populationByAttributes ? populationBits[k] : null);
            }
            if (!labelByAttributes && k >= 1)
            {
                needed.Add(populationByAttributes ? populationBits[k - 1] : null);
            }
            builds.Add((k, needed.Contains(null) ? null : new RowSubset(RowSubset.RowsOf(Union(needed!, profiles)), profiles)));
        }

        // Newest first: the label a cutoff gives the one before it is kept as one bit per profile. The schema is learnt
        // from the newest training window: the categories as they stand nearest to tonight.
        var later = labelByAttributes ? labelBits[windows + 1] : null;
        var parts = new TrainingExamples[windows];
        FeatureSchema? schema = null;
        ProfileTable? atValidation = null;
        int[] validationRows = [];
        bool[] validationLabels = [];
        try
        {
            for (var next = 0; next < builds.Count;)
            {
                // As many cutoffs in one scan as hold no more rows than one profile table: with a population of a few
                // percent that is all of them; with every profile, one at a time.
                var group = new List<(int Cutoff, RowSubset? Rows)> { builds[next++] };
                var rows = (long)(group[0].Rows?.Count ?? profiles);
                while (next < builds.Count && rows + (builds[next].Rows?.Count ?? profiles) <= profiles)
                {
                    rows += builds[next].Rows?.Count ?? profiles;
                    group.Add(builds[next++]);
                }
                progress?.Report($"{model.Name}: profiles as of {string.Join(", ", group.Select(g => Day(cutoffs[g.Cutoff])))} ({rows:N0} rows)");
                var tables = await stage.BuildAtAsync(workspace, combined, lookup, [.. group.Select(g => new ProfileCutoff(cutoffs[g.Cutoff], g.Rows))], parallelism, null, cancellationToken);
                for (var g = 0; g < group.Count; g++)
                {
                    var (k, subset) = group[g];
                    var table = tables[g].Table;
                    if (k <= windows)
                    {
                        var members = Population(model, table, cutoffs[k], parallelism);
                        if (k < windows)
                        {
                            // Sampled from the window's whole population when not sampled before the read. When it was,
                            // the table still holds the earlier window's sampled rows (whose labels it gives), some of
                            // them in this window's population but not in its sample: the same sample leaves them out.
                            var sample = samples[k] ??= ExampleSample.For(members.Length, model.Trainer, windows);
                            members = sample.Keep(members, table, cutoffs[k]);
                        }
                        var labels = Pick(later!, members, subset);
                        if (k == windows)
                        {
                            (atValidation, validationRows, validationLabels) = (table, members, labels);
                        }
                        else
                        {
                            schema ??= FeatureSchema.Learn(model.Name, model.Features.Select(f => f.Column).ToList(), table, members);
                            CheckFinite(model, schema, table, members, cutoffs[k]);
                            parts[k] = TrainingExamples.From(schema, table, members, labels, cutoffs[k], "");
                        }
                    }
                    if (k >= 1)
                    {
                        later = labelByAttributes ? labelBits[k] : Global(LabelBits(model, table, cutoffs[k], parallelism), subset, profiles);
                    }
                }
            }
            var first = cutoffs[0];
            var training = TrainingExamples.Concatenate(parts, windows == 1
                ? $"cutoff {Day(first)} (label {Day(first)} to {Day(validationCutoff)})"
                : $"{windows} cutoffs {Day(first)} to {Day(cutoffs[windows - 1])}, {horizon} days apart (labels to {Day(validationCutoff)})");
            CheckFinite(model, schema!, atValidation!, validationRows, validationCutoff);
            var validation = TrainingExamples.From(schema!, atValidation!, validationRows, validationLabels, validationCutoff,
                $"cutoff {Day(validationCutoff)} (label {Day(validationCutoff)} to {Day(asOf)})");
            return new ForecastExamples(training, validation, trainingCutoff, validationCutoff, atValidation!, validationRows, samples.Sum(s => s!.Value.Available));
        }
        finally
        {
            foreach (var part in parts)
            {
                part?.Dispose();
            }
        }
    }

    /// <summary>" of N" when the examples are a sample of N, for progress lines.</summary>
    private static string Of(long count, long available)
        => count < available ? string.Create(CultureInfo.InvariantCulture, $" of {available:N0}") : "";

    /// <summary>Every name-like word of a condition (quoted or not): which columns it can read.</summary>
    private static HashSet<string> NamesIn(ConditionText condition)
    {
        var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (System.Text.RegularExpressions.Match word in Words().Matches(condition.Text))
        {
            names.Add(word.Groups[1].Success ? word.Groups[1].Value : word.Value);
        }
        return names;
    }

    private static ulong[] Union(List<ulong[]> bits, int profiles)
    {
        var union = new ulong[(profiles + 63) >> 6];
        foreach (var part in bits)
        {
            for (var w = 0; w < union.Length; w++)
            {
                union[w] |= part[w];
            }
        }
        return union;
    }

    /// <summary>One bit per profile from one bit per row of a table over <paramref name="subset"/>.</summary>
    private static ulong[] Global(ulong[] bits, RowSubset? subset, int profiles)
    {
        if (subset is null)
        {
            return bits;
        }
        var global = new ulong[(profiles + 63) >> 6];
        foreach (var local in RowSubset.RowsOf(bits))
        {
            var row = subset.Rows[local];
            global[row >> 6] |= 1UL << (row & 63);
        }
        return global;
    }

    /// <summary>The bit of each of <paramref name="rows"/> (rows of a table over <paramref name="subset"/>) in one bit per profile.</summary>
    private static bool[] Pick(ulong[] bits, int[] rows, RowSubset? subset)
    {
        var picked = new bool[rows.Length];
        for (var i = 0; i < rows.Length; i++)
        {
            var r = subset?.Rows[rows[i]] ?? rows[i];
            picked[i] = (bits[r >> 6] & (1UL << (r & 63))) != 0;
        }
        return picked;
    }

    /// <summary>
    /// <paramref name="profiles"/> with only the traits that <paramref name="model"/>'s features, population and label
    /// condition read, and those of the <paramref name="previous"/> version's features (it is scored on the same
    /// validation window). Conditions are matched by every name-like word in their text, which can only keep a
    /// trait too many. Attributes all stay: one pass over the profile sources gives them all.
    /// </summary>
    internal static ProfilesDefinition ReadBy(ProfilesDefinition profiles, ModelDefinition model, ModelRecord? previous)
    {
        var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        names.UnionWith(model.Features.Select(f => f.Column));
        if (previous?.Features is { } features)
        {
            names.UnionWith(features.Columns.Select(c => c.Name));
        }
        foreach (var condition in new[] { model.Population, model.Label?.Condition })
        {
            if (condition is not null)
            {
                names.UnionWith(NamesIn(condition));
            }
        }
        var traits = profiles.Traits.Where(t => names.Contains(t.Name)).ToList();
        return traits.Count == profiles.Traits.Count ? profiles : new ProfilesDefinition(profiles.Survivorship, profiles.AttributeSources, traits);
    }

    [System.Text.RegularExpressions.GeneratedRegex("\"([^\"]+)\"|[A-Za-z_][A-Za-z0-9_]*")]
    private static partial System.Text.RegularExpressions.Regex Words();

    /// <summary>The ROC AUC of a stored version on the given examples, or null when its features are no longer there.</summary>
    private static async Task<double?> ScoreOnAsync(
        ModelRegistry registry, ModelRecord version, ProfileTable table, int[] rows, bool[] labels, DateTimeOffset asOf, CancellationToken cancellationToken)
    {
        try
        {
            version.Features.Check(version.Model, table);
        }
        catch (ModelException)
        {
            return null;
        }
        var ml = new MLContext(version.Trainer.Seed);
        var model = await registry.LoadAsync(ml, version, cancellationToken);
        using var examples = TrainingExamples.From(version.Features, table, rows, labels, asOf, "");
        var predictions = model.Transform(examples.ToDataView());
        return ml.BinaryClassification.Evaluate(predictions, ModelTrainer.LabelColumn, probabilityColumnName: version.ProbabilityColumn).AreaUnderRocCurve;
    }

    /// <summary>The rows of the population (every row without one).</summary>
    internal static int[] Population(ModelDefinition model, ProfileTable table, DateTimeOffset asOf, int parallelism)
    {
        if (model.Population is null)
        {
            var all = new int[table.Count];
            for (var i = 0; i < all.Length; i++)
            {
                all[i] = i;
            }
            return all;
        }
        var bits = Evaluate(model, model.Population, table, asOf, parallelism, "population");
        var rows = new List<int>();
        for (var w = 0; w < bits.Length; w++)
        {
            var word = bits[w];
            while (word != 0)
            {
                rows.Add((w << 6) + System.Numerics.BitOperations.TrailingZeroCount(word));
                word &= word - 1;
            }
        }
        return [.. rows];
    }

    /// <summary>The label of each of <paramref name="rows"/>: the label condition is TRUE for it (FALSE and NULL are negative).</summary>
    private static bool[] Labels(ModelDefinition model, ProfileTable table, DateTimeOffset asOf, int[] rows, int parallelism)
        => Pick(LabelBits(model, table, asOf, parallelism), rows, null);

    /// <summary>One bit per row of <paramref name="table"/>: the label condition is TRUE for it.</summary>
    private static ulong[] LabelBits(ModelDefinition model, ProfileTable table, DateTimeOffset asOf, int parallelism)
        => Evaluate(model, model.Label!.Condition, table, asOf, parallelism, "label condition");


    internal static ulong[] Evaluate(ModelDefinition model, ConditionText condition, ProfileTable table, DateTimeOffset asOf, int parallelism, string what)
    {
        try
        {
            return new ConditionCompiler(table, asOf, _ => false).Compile(condition.Text).Evaluate(table, null, parallelism);
        }
        catch (ConditionException e)
        {
            var (line, column) = condition.Positions.Locate(Math.Max(0, e.Position));
            throw new WorkspaceException([new WorkspaceError(model.File, line, column, $"model '{model.Name}': {what}: {e.Message}")]);
        }
    }

    private static void CheckFinite(ModelDefinition model, FeatureSchema schema, ProfileTable table, int[] rows, DateTimeOffset asOf)
    {
        var bad = schema.CountNonFinite(table, rows);
        if (bad.Count > 0)
        {
            var (column, count, first) = bad[0];
            throw new ModelException(model.Name, $"feature '{column}' holds {count:N0} infinite or NaN value(s) as of {Day(asOf)} (the first in profile {first}); "
                + "a feature must be a finite number or NULL (missing). Fix the trait or attribute that produces it");
        }
    }

    /// <summary>Why a run trains <paramref name="model"/> tonight (no version yet, or its definition changed), or null when its latest version is of its definition.</summary>
    public static string? WhyTrain(Workspace workspace, ModelDefinition model, IReadOnlyList<ModelRecord> versions)
    {
        ArgumentNullException.ThrowIfNull(versions);
        return versions.Count == 0 ? "no version yet"
            : versions[^1].DefinitionHash != DefinitionHash(workspace, model) ? "the definition changed"
            : null;
    }

    /// <summary>A hash of the model's definition, so that a run retrains a model whose definition changed.</summary>
    public static string DefinitionHash(Workspace workspace, ModelDefinition model)
    {
        ArgumentNullException.ThrowIfNull(workspace);
        ArgumentNullException.ThrowIfNull(model);
        // The model's file and the traits its features are: a change to either retrains.
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var file in new[] { model.File, ProfilesDefinition.FileName })
        {
            var path = Path.Combine(workspace.Directory, file);
            hash.AppendData(File.Exists(path) ? File.ReadAllBytes(path) : []);
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset())[..16];
    }

    private static string Day(DateTimeOffset time) => time.UtcDateTime.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
}
