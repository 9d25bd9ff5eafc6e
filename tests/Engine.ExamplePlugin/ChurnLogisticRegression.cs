using Engine.Scores;
using Microsoft.ML;
using Microsoft.ML.Transforms;

namespace Engine.ExamplePlugin;

/// <summary>
/// A churn model as a data scientist might write it when trees are not what they want: missing values replaced by
/// the column mean, features scaled to [0, 1], then a logistic regression (SDCA), whose output is calibrated.
/// The engine builds the examples, validates, registers and scores; this class only says how to learn.
/// </summary>
public sealed class ChurnLogisticRegression : IModelPlugin
{
    public IEstimator<ITransformer> BuildPipeline(MLContext ml, FeatureSchema features) =>
        ml.Transforms.ReplaceMissingValues("Features", replacementMode: MissingValueReplacingEstimator.ReplacementMode.Mean)
            .Append(ml.Transforms.NormalizeMinMax("Features"))
            .Append(ml.BinaryClassification.Trainers.SdcaLogisticRegression(labelColumnName: "Label", featureColumnName: "Features"));
}
