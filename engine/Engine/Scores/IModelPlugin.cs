using Microsoft.ML;

namespace Engine.Scores;

/// <summary>
/// A model written in C# by a data scientist: the engine builds the examples (point in time, features as declared in
/// the model's file), validates, registers, promotes and scores; the plug-in only says how to learn. Declare it in
/// <c>models/&lt;name&gt;.yaml</c> with <c>plugin: { assembly: plugins/MyModels.dll, type: MyModels.Propensity }</c>
/// beside the usual label and features. The class needs a public parameterless constructor.
/// </summary>
/// <example>
/// <code>
/// public sealed class Propensity : IModelPlugin
/// {
///     public IEstimator&lt;ITransformer&gt; BuildPipeline(MLContext ml, FeatureSchema features) =&gt;
///         ml.Transforms.NormalizeMinMax("Features")
///             .Append(ml.BinaryClassification.Trainers.SdcaLogisticRegression("Label", "Features"));
/// }
/// </code>
/// </example>
public interface IModelPlugin
{
    /// <summary>
    /// The ML.NET pipeline that learns the label: it reads the <c>Features</c> vector (float, one slot per
    /// <see cref="FeatureSchema.Slots"/> entry, NaN where a value is missing) and the boolean <c>Label</c>, and must end
    /// in a binary classifier whose output has a calibrated <see cref="ProbabilityColumn"/>.
    /// </summary>
    IEstimator<ITransformer> BuildPipeline(MLContext ml, FeatureSchema features);

    /// <summary>The output column that holds the probability written as the model's score.</summary>
    string ProbabilityColumn => "Probability";
}
