using System.Globalization;
using Engine.Profiles;
using Engine.Scores;
using Engine.Storage;
using YamlDotNet.RepresentationModel;

namespace Engine.Workspaces;

/// <summary>Reads <c>models/&lt;name&gt;.yaml</c>: label, features, population, trainer, validation, promotion, outputs.</summary>
public static partial class WorkspaceLoader
{
    private static readonly string[] ModelKeys = ["name", "description", "population", "label", "features", "trainer", "plugin", "model", "validation", "promotion", "outputs", "min_positives"];
    private static readonly string[] ExternalKeys = ["path", "format", "input", "output"];
    private static readonly string[] TrainingOnlyKeys = ["label", "trainer", "plugin", "validation", "promotion", "min_positives"];
    private static readonly string[] PluginKeys = ["assembly", "type"];
    private static readonly string[] LabelKeys = ["condition", "horizon_days", "traits"];
    private static readonly string[] TrainerKeys = ["algorithm", "trees", "leaves", "learning_rate", "min_examples_per_leaf", "max_examples", "seed"];
    private static readonly string[] ValidationKeys = ["folds", "training_windows"];
    private static readonly string[] PromotionKeys = ["auc_tolerance"];
    private static readonly string[] OutputKeys = ["score", "decile"];
    private static readonly string[] AlgorithmNames = ["lightgbm", "fasttree"];

    private static ModelDefinition? ReadModel(
        YamlMappingNode node, string file, string text, IReadOnlyList<SourceDefinition> sources, ProfilesDefinition? profiles, List<WorkspaceError> errors)
    {
        var before = errors.Count;
        var reader = new YamlMappingReader(node, file, errors);
        reader.CheckKeys(ModelKeys);
        var name = reader.String("name", required: true);
        var expected = Path.GetFileNameWithoutExtension(file);
        if (name is not null && name != expected)
        {
            errors.Add(At(file, reader.Scalar("name")!, $"model name '{name}' must match its file name ('{expected}')"));
        }
        else if (name is not null && !IdentifierName().IsMatch(name))
        {
            errors.Add(At(file, reader.Scalar("name")!, $"model name '{name}' must be letters, digits and underscores, starting with a letter"));
        }

        var population = reader.Scalar("population") is { } populationNode ? Condition(populationNode, text, file, errors, "population") : null;

        ExternalModel? external = null;
        if (reader.Mapping("model") is { } modelNode)
        {
            external = ReadExternal(modelNode, file, errors);
            foreach (var key in TrainingOnlyKeys)
            {
                if (reader.KeyNode(key) is { } keyNode)
                {
                    errors.Add(At(file, keyNode, $"an external model (model:) is trained elsewhere: remove '{key}'"));
                }
            }
        }
        LabelDefinition? label = null;
        if (reader.Mapping("label", required: reader.KeyNode("model") is null) is { } labelNode && reader.KeyNode("model") is null)
        {
            label = ReadLabel(labelNode, file, text, sources, profiles, errors);
        }

        var features = new List<FeatureReference>();
        if (reader.Any("features") is { } featuresNode)
        {
            foreach (var feature in StringList(featuresNode, file, errors))
            {
                var column = feature.Value ?? "";
                if (features.Exists(f => f.Column == column))
                {
                    errors.Add(At(file, feature, $"feature '{column}' is listed twice"));
                    continue;
                }
                features.Add(new FeatureReference(column, (int)feature.Start.Line, (int)feature.Start.Column));
            }
            if (features.Count == 0)
            {
                errors.Add(At(file, featuresNode, "list at least one feature (a profile column: an attribute or a trait)"));
            }
        }
        else
        {
            errors.Add(At(file, node, "missing required key 'features' (the profile columns the model reads, such as [orders_90d, lifetime_value])"));
        }

        var trainer = new TrainerOptions();
        if (reader.Mapping("trainer") is { } trainerNode)
        {
            trainer = ReadTrainer(trainerNode, file, errors);
        }
        PluginReference? plugin = null;
        if (reader.Mapping("plugin") is { } pluginNode)
        {
            var pluginReader = new YamlMappingReader(pluginNode, file, errors);
            pluginReader.CheckKeys(PluginKeys);
            var assembly = pluginReader.String("assembly", required: true);
            var type = pluginReader.String("type", required: true);
            if (reader.KeyNode("trainer") is { } trainerKey)
            {
                errors.Add(At(file, trainerKey, "a plug-in model builds its own trainer: remove 'trainer' (or 'plugin')"));
            }
            if (assembly is not null && type is not null)
            {
                var assemblyNode = pluginReader.Scalar("assembly")!;
                plugin = new PluginReference(assembly, type, (int)assemblyNode.Start.Line, (int)assemblyNode.Start.Column);
            }
        }
        var validation = new ValidationOptions();
        if (reader.Mapping("validation") is { } validationNode)
        {
            var validationReader = new YamlMappingReader(validationNode, file, errors);
            validationReader.CheckKeys(ValidationKeys);
            if (PositiveInt(validationReader.Scalar("folds"), "folds", "the number of cross-validation folds", file, errors) is { } folds)
            {
                if (folds < 2)
                {
                    errors.Add(At(file, validationReader.Scalar("folds")!, "'folds' must be at least 2"));
                }
                validation = validation with { Folds = folds };
            }
            if (PositiveInt(validationReader.Scalar("training_windows"), "training_windows", "the windows before the validation window to train on", file, errors) is { } windows)
            {
                validation = validation with { TrainingWindows = windows };
            }
        }
        var tolerance = 0.01;
        if (reader.Mapping("promotion") is { } promotionNode)
        {
            var promotionReader = new YamlMappingReader(promotionNode, file, errors);
            promotionReader.CheckKeys(PromotionKeys);
            tolerance = Fraction(promotionReader.Scalar("auc_tolerance"), "auc_tolerance", 0, 1, file, errors) ?? tolerance;
        }
        var minimumPositives = PositiveInt(reader.Scalar("min_positives"), "min_positives", "the fewest positive examples to train from", file, errors) ?? 50;

        var scoreColumn = $"{name}_score";
        var decileColumn = $"{name}_decile";
        if (reader.Mapping("outputs") is { } outputsNode)
        {
            var outputs = new YamlMappingReader(outputsNode, file, errors);
            outputs.CheckKeys(OutputKeys);
            scoreColumn = OutputName(outputs.Scalar("score"), file, errors) ?? scoreColumn;
            decileColumn = OutputName(outputs.Scalar("decile"), file, errors) ?? decileColumn;
        }

        if (errors.Count > before || name is null || (label is null && external is null))
        {
            return null;
        }
        return new ModelDefinition
        {
            Name = name,
            File = file,
            Description = reader.String("description") ?? "",
            Population = population,
            Label = label,
            Features = features,
            Trainer = trainer,
            Plugin = plugin,
            External = external,
            Validation = validation,
            AucTolerance = tolerance,
            MinimumPositives = minimumPositives,
            ScoreColumn = scoreColumn,
            DecileColumn = decileColumn,
        };
    }

    private static LabelDefinition? ReadLabel(
        YamlMappingNode node, string file, string text, IReadOnlyList<SourceDefinition> sources, ProfilesDefinition? profiles, List<WorkspaceError> errors)
    {
        var before = errors.Count;
        var reader = new YamlMappingReader(node, file, errors);
        reader.CheckKeys(LabelKeys);
        var condition = reader.Scalar("condition", required: true) is { } conditionNode ? Condition(conditionNode, text, file, errors, "label condition") : null;
        var horizon = PositiveInt(reader.Scalar("horizon_days"), "horizon_days", "the days after the cutoff the label looks at", file, errors);
        var traits = new List<TraitDefinition>();
        if (reader.Any("traits") is { } traitsNode)
        {
            if (horizon is null)
            {
                errors.Add(At(file, traitsNode, "label traits count events over the horizon after a cutoff: set 'horizon_days' too"));
            }
            // Label traits live beside the profile's columns in the label's table, so their names must not collide.
            var attributeTypes = new Dictionary<string, ColumnType>(StringComparer.Ordinal);
            var earlier = new List<TraitDefinition>();
            if (profiles is not null)
            {
                foreach (var attribute in profiles.Attributes)
                {
                    attributeTypes[attribute.Name] = attribute.Type;
                }
                earlier.AddRange(profiles.Traits);
            }
            var profileTraits = earlier.Count;
            foreach (var item in Items(traitsNode, "traits", file, errors))
            {
                if (new YamlMappingReader(item, file, errors).KeyNode("window") is { } windowKey)
                {
                    errors.Add(At(file, windowKey, "a label trait's window is the horizon (horizon_days after the cutoff); it takes no 'window'"));
                    continue;
                }
                if (ReadTrait(item, sources, attributeTypes, earlier, file, errors) is { } trait)
                {
                    earlier.Add(trait with { Window = new TraitWindow(horizon ?? 1, 0) });
                }
            }
            traits.AddRange(earlier.Skip(profileTraits));
        }
        if (errors.Count > before || condition is null)
        {
            return null;
        }
        return new LabelDefinition { Condition = condition, HorizonDays = horizon, Traits = traits };
    }

    private static ExternalModel? ReadExternal(YamlMappingNode node, string file, List<WorkspaceError> errors)
    {
        var before = errors.Count;
        var reader = new YamlMappingReader(node, file, errors);
        reader.CheckKeys(ExternalKeys);
        var path = reader.String("path", required: true);
        var format = path is not null && path.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase) ? ExternalFormat.Onnx : ExternalFormat.MlNet;
        if (reader.Scalar("format") is { } formatNode)
        {
            switch (formatNode.Value)
            {
                case "onnx": format = ExternalFormat.Onnx; break;
                case "mlnet": format = ExternalFormat.MlNet; break;
                default: errors.Add(At(file, formatNode, $"unknown format '{formatNode.Value}'{Hint(formatNode.Value, ["mlnet", "onnx"])}")); break;
            }
        }
        var input = reader.String("input") ?? "Features";
        var output = reader.String("output") ?? (format == ExternalFormat.Onnx ? "Probability.output" : "Probability");
        if (errors.Count > before || path is null)
        {
            return null;
        }
        var pathNode = reader.Scalar("path")!;
        return new ExternalModel(path, format, input, output, (int)pathNode.Start.Line, (int)pathNode.Start.Column);
    }

    private static TrainerOptions ReadTrainer(YamlMappingNode node, string file, List<WorkspaceError> errors)
    {
        var reader = new YamlMappingReader(node, file, errors);
        reader.CheckKeys(TrainerKeys);
        var options = new TrainerOptions();
        if (reader.Scalar("algorithm") is { } algorithmNode)
        {
            switch (algorithmNode.Value)
            {
                case "lightgbm": options = options with { Algorithm = TrainerAlgorithm.LightGbm }; break;
                case "fasttree": options = options with { Algorithm = TrainerAlgorithm.FastTree }; break;
                default: errors.Add(At(file, algorithmNode, $"unknown algorithm '{algorithmNode.Value}'{Hint(algorithmNode.Value, AlgorithmNames)}")); break;
            }
        }
        if (PositiveInt(reader.Scalar("trees"), "trees", "boosting rounds", file, errors) is { } trees)
        {
            options = options with { Trees = trees };
        }
        if (PositiveInt(reader.Scalar("leaves"), "leaves", "leaves per tree", file, errors) is { } leaves)
        {
            if (leaves < 2)
            {
                errors.Add(At(file, reader.Scalar("leaves")!, "'leaves' must be at least 2"));
            }
            options = options with { Leaves = leaves };
        }
        if (Fraction(reader.Scalar("learning_rate"), "learning_rate", 0, 1, file, errors) is { } rate)
        {
            options = options with { LearningRate = rate };
        }
        if (PositiveInt(reader.Scalar("min_examples_per_leaf"), "min_examples_per_leaf", "the fewest examples a leaf holds", file, errors) is { } minimum)
        {
            options = options with { MinimumExamplesPerLeaf = minimum };
        }
        if (PositiveInt(reader.Scalar("max_examples"), "max_examples", "the most training examples, beyond which a sample is trained on", file, errors) is { } most)
        {
            options = options with { MaxExamples = most };
        }
        if (reader.Scalar("seed") is { } seedNode)
        {
            if (int.TryParse(seedNode.Value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var seed))
            {
                options = options with { Seed = seed };
            }
            else
            {
                errors.Add(At(file, seedNode, $"'seed' must be a whole number, not '{seedNode.Value}'"));
            }
        }
        return options;
    }

    private static ConditionText? Condition(YamlScalarNode node, string text, string file, List<WorkspaceError> errors, string what)
    {
        if (string.IsNullOrWhiteSpace(node.Value))
        {
            errors.Add(At(file, node, $"the {what} is empty"));
            return null;
        }
        return new ConditionText(node.Value!, TextPositions.ForScalar(node, text));
    }

    /// <summary>A number in (low, high]: a rate or a tolerance.</summary>
    private static double? Fraction(YamlScalarNode? node, string key, double low, double high, string file, List<WorkspaceError> errors)
    {
        if (node is null)
        {
            return null;
        }
        if (double.TryParse(node.Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && value >= low && value <= high && !(value == low && key == "learning_rate"))
        {
            return value;
        }
        errors.Add(At(file, node, $"'{key}' must be a number between {low.ToString(CultureInfo.InvariantCulture)} and {high.ToString(CultureInfo.InvariantCulture)}, not '{node.Value}'"));
        return null;
    }

    private static string? OutputName(YamlScalarNode? node, string file, List<WorkspaceError> errors)
    {
        if (node is null)
        {
            return null;
        }
        if (node.Value is { } value && TraitName().IsMatch(value))
        {
            return value;
        }
        errors.Add(At(file, node, $"output column '{node.Value}' must be letters, digits and underscores, starting with a letter"));
        return null;
    }
}
