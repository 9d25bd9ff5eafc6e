using System.Buffers;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Microsoft.ML;
using Microsoft.ML.Calibrators;
using Microsoft.ML.Data;
using Microsoft.ML.Trainers.FastTree;
using Microsoft.ML.Trainers.LightGbm;

namespace Engine.Scores;

/// <summary>
/// A trained ML.NET binary tree ensemble (LightGbm or FastTree, Platt-calibrated) compiled into flat arrays and
/// evaluated over a <see cref="FeatureBatch"/> many rows at a time, giving the same <c>Score</c> and
/// <c>Probability</c> ML.NET's <see cref="ITransformer.Transform"/> gives for the same feature vectors.
/// </summary>
/// <remarks>
/// <para>What ML.NET computes, read from its source (Microsoft.ML.FastTree 5.0.1: <c>InternalRegressionTree</c>,
/// <c>InternalTreeEnsemble</c>, <c>TreeEnsembleModelParameters.Map</c>; Microsoft.ML.LightGbm's <c>Booster</c>), and
/// what this class reproduces:</para>
/// <list type="bullet">
/// <item>At a node, a value goes left when <c>value &lt;= threshold</c> (float compare). A missing value (NaN) is first
/// replaced by the node's default value for missing, when the tree has such defaults: LightGbm's converter gives a node
/// whose split handles missing values (decision type) the threshold itself when missing goes left and
/// <c>(float)(threshold + 1.0)</c> when it goes right, and 0 to every other node; a tree whose defaults are all 0 keeps
/// none. Without defaults (every FastTree tree, and LightGbm trees without missing-value splits) NaN compares false
/// and goes right. Each node's NaN direction is fixed at compile time from these rules.</item>
/// <item>The raw score is the sum of the leaf values of the trees, in tree order, accumulated in <see cref="double"/>
/// from 0.0 and then cast to <see cref="float"/>. A tree without splits contributes 0. The ensemble's
/// <c>Bias</c> and <c>TreeWeights</c> take no part in ML.NET's scoring, so none here either.</item>
/// <item>The probability is Platt's <c>(float)(1 / (1 + exp(slope * (double)score + offset)))</c> of that float
/// score, NaN for a NaN score.</item>
/// </list>
/// <para>The defaults for missing values are not in ML.NET's public tree API: they are read once, here, by reflection.
/// Categorical splits are refused (the engine one-hot encodes categories before the model). Both the leaf found and
/// the summation order are ML.NET's, so scores are bit for bit the same.</para>
/// <para>Evaluation (<see cref="Kernel"/>): where AVX2 is available and no tree has more than 32 leaves, the ensemble
/// runs as QuickScorer (Lucchese et al., SIGIR 2015), vectorised over sixteen rows (AVX-512) or eight (AVX2): the splits
/// of every tree are listed by feature in ascending threshold order, each tree keeps a 32-bit mask of the leaves still
/// reachable (leaves numbered left to right), and a row whose value is above a threshold clears the left subtree of
/// every split on it. One compare serves all the rows of a vector and every split sharing the threshold, and a
/// feature's walk stops at the first threshold none of the rows exceeds. The exit leaf is the lowest set bit of each
/// tree's mask. No branch depends on the path a row takes. Otherwise a plain node-by-node descent, tree by tree over a
/// block of rows, computes the same values. Row blocks run in parallel; each row's result depends only on that row, so
/// any degree of parallelism gives the same bytes.</para>
/// </remarks>
public sealed partial class CompiledTreeEnsemble
{
    /// <summary>Rows per parallel work item: a multiple of the row alignment, many per batch.</summary>
    private const int BlockRows = 2048;

    private const int MaxQuickScorerLeaves = 32;

    // Node-by-node form, one entry per split of every tree. A child is a node index (>= 0) or ~leaf (< 0), leaves
    // indexing _leafValues; _treeRoot holds each tree's root in the same encoding.
    private readonly int[] _treeRoot;
    private readonly int[] _nodeFeature;
    private readonly float[] _nodeThreshold;
    private readonly int[] _nodeLeft;
    private readonly int[] _nodeRight;
    private readonly bool[] _nodeMissingLeft;
    private readonly double[] _leafValues;

    // QuickScorer form (null when a tree has more than 32 leaves, or without AVX2).
    private readonly QuickScorerModel? _quick;
    private readonly ScoringKernel _kernel;

    private CompiledTreeEnsemble(string modelKind, int featureCount, double slope, double offset, TreeSet trees, ScoringKernel widest)
    {
        ModelKind = modelKind;
        FeatureCount = featureCount;
        PlattSlope = slope;
        PlattOffset = offset;
        TreeCount = trees.Roots.Length;
        _treeRoot = trees.Roots;
        _nodeFeature = trees.Feature;
        _nodeThreshold = trees.Threshold;
        _nodeLeft = trees.Left;
        _nodeRight = trees.Right;
        _nodeMissingLeft = trees.MissingLeft;
        _leafValues = trees.LeafValues;
        _kernel = ScoringKernel.NodeDescent;
        if (widest >= ScoringKernel.QuickScorer8 && Avx2.IsSupported && trees.MaxLeaves <= MaxQuickScorerLeaves)
        {
            _quick = QuickScorerModel.Build(trees, featureCount);
            _kernel = widest >= ScoringKernel.QuickScorer16 && Vector512.IsHardwareAccelerated ? ScoringKernel.QuickScorer16 : ScoringKernel.QuickScorer8;
        }
    }

    /// <summary>The length of the feature vector the model was trained on; a batch must have exactly this many features.</summary>
    public int FeatureCount { get; }

    /// <summary>The number of trees.</summary>
    public int TreeCount { get; }

    /// <summary>The ML.NET model parameters' type, e.g. <c>LightGbmBinaryModelParameters</c>.</summary>
    public string ModelKind { get; }

    /// <summary>Platt calibration's slope: probability = 1 / (1 + exp(slope * score + offset)).</summary>
    public double PlattSlope { get; }

    /// <summary>Platt calibration's offset.</summary>
    public double PlattOffset { get; }

    /// <summary>Splits in all trees, and how many of them send a missing value left (the rest send it right).</summary>
    internal (int Splits, int MissingLeft) SplitCounts => (_nodeMissingLeft.Length, _nodeMissingLeft.Count(left => left));

    /// <summary>
    /// The evaluation in use: <c>quickscorer-avx512</c> (sixteen rows per vector), <c>quickscorer-avx2</c> (eight) or
    /// <c>node-descent</c> (trees of more than 32 leaves, or no AVX2).
    /// </summary>
    public string Kernel => _kernel switch
    {
        ScoringKernel.QuickScorer16 => "quickscorer-avx512",
        ScoringKernel.QuickScorer8 => "quickscorer-avx2",
        _ => "node-descent",
    };

    /// <summary>
    /// Compiles the model returned by <c>Fit</c> of an ML.NET LightGbm or FastTree binary classification trainer (or a
    /// <see cref="TransformerChain{TLastTransformer}"/> holding only that trainer's transformer).
    /// </summary>
    /// <exception cref="NotSupportedException">The model is not one this class reproduces exactly: another trainer or
    /// calibrator, a pipeline with other transforms, categorical splits; the message says which.</exception>
    public static CompiledTreeEnsemble FromModel(ITransformer trained) => FromModel(trained, ScoringKernel.QuickScorer16);

    /// <summary><see cref="FromModel(ITransformer)"/> with at most the <paramref name="widest"/> kernel (tests run each one).</summary>
    internal static CompiledTreeEnsemble FromModel(ITransformer trained, ScoringKernel widest)
    {
        ArgumentNullException.ThrowIfNull(trained);
        var predictor = FindPredictor(trained);
        if (predictor.FeatureColumnType is not VectorDataViewType { IsKnownSize: true, ItemType: NumberDataViewType itemType } vector
            || itemType.RawType != typeof(float))
        {
            throw new NotSupportedException(
                $"The model's feature column '{predictor.FeatureColumnName}' is {predictor.FeatureColumnType}; a vector of Single of known size is needed.");
        }

        var model = predictor.Model;
        object subModel = model;
        ICalibrator? calibrator = null;
        if (model is CalibratedModelParametersBase calibrated)
        {
            subModel = calibrated.SubModel;
            calibrator = calibrated.Calibrator;
        }
        // Both keep TreeEnsembleModelParameters' scoring (the sum of the trees); FastForest divides by the tree
        // count and Tweedie exponentiates, so those are left out rather than approximated.
        if (subModel is not (LightGbmBinaryModelParameters or FastTreeBinaryModelParameters))
        {
            throw new NotSupportedException(
                $"Model parameters of type {subModel.GetType().Name} are not supported by the compiled tree evaluator: " +
                "only LightGbm and FastTree binary classification (LightGbmBinaryModelParameters, FastTreeBinaryModelParameters). " +
                "Score other models with ML.NET's Transform.");
        }
        if (calibrator is not PlattCalibrator platt)
        {
            throw new NotSupportedException(
                $"The model's calibrator is {(calibrator is null ? "missing" : calibrator.GetType().Name)}; the compiled tree evaluator reproduces " +
                "the PlattCalibrator that LightGbm and FastTree binary trainers attach.");
        }
        var ensemble = ((TreeEnsembleModelParametersBasedOnRegressionTree)subModel).TrainedTreeEnsemble;
        var trees = TreeSet.Read(ensemble, vector.Size);
        return new CompiledTreeEnsemble(subModel.GetType().Name, vector.Size, platt.Slope, platt.Offset, trees, widest);
    }

    private static ISingleFeaturePredictionTransformer<object> FindPredictor(ITransformer trained)
    {
        if (trained is ISingleFeaturePredictionTransformer<object> predictor)
        {
            return predictor;
        }
        if (trained is IEnumerable<ITransformer> chain)
        {
            var parts = chain.ToList();
            if (parts.Count == 1)
            {
                return FindPredictor(parts[0]);
            }
            throw new NotSupportedException(
                $"The model is a pipeline of {parts.Count} transformers ({string.Join(", ", parts.Select(p => p.GetType().Name))}); " +
                "the compiled tree evaluator takes a pipeline that is only the trainer over one Features vector. Featurize in engine code " +
                "(FeatureBatch) before the model, or pass the chain's LastTransformer if the other steps are done elsewhere.");
        }
        throw new NotSupportedException(
            $"{trained.GetType().Name} is not a prediction transformer; the compiled tree evaluator takes what a LightGbm or FastTree " +
            "binary classification trainer's Fit returns.");
    }

    /// <summary>
    /// Scores every row of <paramref name="batch"/> on every core: the raw score and the calibrated probability, as
    /// ML.NET's <c>Score</c> and <c>Probability</c> columns. The compiled model is immutable: calls may run concurrently.
    /// </summary>
    /// <param name="batch">Rows to score; its feature count must be <see cref="FeatureCount"/>.</param>
    /// <param name="score">At least <c>batch.RowCount</c> values.</param>
    /// <param name="probability">At least <c>batch.RowCount</c> values, or empty to skip calibration.</param>
    public void Score(FeatureBatch batch, Span<float> score, Span<float> probability) =>
        Score(batch, score, probability, Environment.ProcessorCount);

    /// <summary><see cref="Score(FeatureBatch, Span{float}, Span{float})"/> on at most <paramref name="maxDegreeOfParallelism"/> threads.</summary>
    public unsafe void Score(FeatureBatch batch, Span<float> score, Span<float> probability, int maxDegreeOfParallelism)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxDegreeOfParallelism);
        if (batch.FeatureCount != FeatureCount)
        {
            throw new ArgumentException($"The batch has {batch.FeatureCount} features; the model was trained on {FeatureCount}.", nameof(batch));
        }
        var rows = batch.RowCount;
        ArgumentOutOfRangeException.ThrowIfLessThan(score.Length, rows, nameof(score));
        if (!probability.IsEmpty)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(probability.Length, rows, nameof(probability));
        }
        if (rows == 0)
        {
            return;
        }
        var blocks = (rows + BlockRows - 1) / BlockRows;
        fixed (float* values = batch.Values)
        fixed (float* scores = score)
        fixed (float* probabilities = probability)
        {
            var job = new Job(values, batch.Stride, rows, scores, probability.IsEmpty ? null : probabilities);
            if (maxDegreeOfParallelism == 1 || blocks == 1)
            {
                var scratch = RentScratch();
                try
                {
                    for (var b = 0; b < blocks; b++)
                    {
                        ScoreBlock(job, b, scratch);
                    }
                }
                finally
                {
                    ArrayPool<double>.Shared.Return(scratch);
                }
                return;
            }
            Parallel.For(
                0,
                blocks,
                new ParallelOptions { MaxDegreeOfParallelism = maxDegreeOfParallelism },
                RentScratch,
                (b, _, scratch) =>
                {
                    ScoreBlock(job, (int)b, scratch);
                    return scratch;
                },
                scratch => ArrayPool<double>.Shared.Return(scratch));
        }
    }

    /// <summary>A worker's scratch: the row sums of a block, and QuickScorer's leaf masks (a vector per tree).</summary>
    private double[] RentScratch() => ArrayPool<double>.Shared.Rent(BlockRows + (_quick is null ? 0 : TreeCount * 8 + 8));

    private unsafe void ScoreBlock(in Job job, int block, double[] scratch)
    {
        var start = block * BlockRows;
        var end = Math.Min(start + BlockRows, job.Rows);
        fixed (double* sums = scratch)
        {
            if (_quick is { } quick)
            {
                // The masks after the sums, aligned to 64 bytes for the vector loads and stores.
                var masks = ((nint)(sums + BlockRows) + 63) & ~(nint)63;
                if (_kernel == ScoringKernel.QuickScorer16)
                {
                    quick.SumTrees16(job.Values, job.Stride, start, end, sums, (Vector512<uint>*)masks);
                }
                else
                {
                    quick.SumTrees8(job.Values, job.Stride, start, end, sums, (Vector256<uint>*)masks);
                }
            }
            else
            {
                SumTreesByDescent(job.Values, job.Stride, start, end, sums);
            }
            Finish(job, start, end, sums);
        }
    }

    /// <summary>The float score and its calibrated probability, as ML.NET computes them from the double sum.</summary>
    private unsafe void Finish(in Job job, int start, int end, double* sums)
    {
        for (var row = start; row < end; row++)
        {
            var score = (float)sums[row - start];
            job.Scores[row] = score;
            if (job.Probabilities is not null)
            {
                job.Probabilities[row] = float.IsNaN(score) ? score : (float)(1.0 / (1.0 + Math.Exp(PlattSlope * score + PlattOffset)));
            }
        }
    }

    /// <summary>Every tree's leaf value added to each row's sum, tree by tree over the block (so a tree's nodes stay in cache).</summary>
    private unsafe void SumTreesByDescent(float* values, int stride, int start, int end, double* sums)
    {
        var count = end - start;
        new Span<double>(sums, count).Clear();
        fixed (int* features = _nodeFeature, lefts = _nodeLeft, rights = _nodeRight)
        fixed (float* thresholds = _nodeThreshold)
        fixed (bool* missingLeft = _nodeMissingLeft)
        fixed (double* leaves = _leafValues)
        {
            for (var t = 0; t < _treeRoot.Length; t++)
            {
                var root = _treeRoot[t];
                for (var i = 0; i < count; i++)
                {
                    var row = start + i;
                    var node = root;
                    while (node >= 0)
                    {
                        var value = values[(nint)features[node] * stride + row];
                        // ML.NET: a NaN becomes the node's default for missing, then `value <= threshold` goes left.
                        var left = value <= thresholds[node] || (float.IsNaN(value) && missingLeft[node]);
                        node = left ? lefts[node] : rights[node];
                    }
                    sums[i] += leaves[~node];
                }
            }
        }
    }

    /// <summary>The evaluations, narrowest first.</summary>
    internal enum ScoringKernel
    {
        NodeDescent,
        QuickScorer8,
        QuickScorer16,
    }

    private readonly unsafe struct Job(float* values, int stride, int rows, float* scores, float* probabilities)
    {
        public readonly float* Values = values;
        public readonly int Stride = stride;
        public readonly int Rows = rows;
        public readonly float* Scores = scores;
        public readonly float* Probabilities = probabilities;
    }

    /// <summary>The trees as read from ML.NET, flattened: node arrays over all trees, leaves likewise.</summary>
    private sealed class TreeSet
    {
        // ML.NET keeps each tree's defaults for missing values on its internal tree only.
        private static readonly FieldInfo? InternalTreeField = typeof(RegressionTreeBase).GetField("_tree", BindingFlags.NonPublic | BindingFlags.Instance);

        public required int[] Roots { get; init; }
        public required int[] TreeNodeStart { get; init; }
        public required int[] TreeLeafStart { get; init; }
        public required int[] Feature { get; init; }
        public required float[] Threshold { get; init; }
        public required int[] Left { get; init; }
        public required int[] Right { get; init; }
        public required bool[] MissingLeft { get; init; }
        public required double[] LeafValues { get; init; }
        public required int MaxLeaves { get; init; }

        public static TreeSet Read(RegressionTreeEnsemble ensemble, int featureCount)
        {
            var trees = ensemble.Trees;
            int nodeTotal = 0, leafTotal = 0;
            foreach (var tree in trees)
            {
                nodeTotal += tree.NumberOfNodes;
                leafTotal += Math.Max(1, tree.LeafValues.Count);
            }
            var roots = new int[trees.Count];
            var nodeStart = new int[trees.Count + 1];
            var leafStart = new int[trees.Count + 1];
            var feature = new int[nodeTotal];
            var threshold = new float[nodeTotal];
            var left = new int[nodeTotal];
            var right = new int[nodeTotal];
            var missingLeft = new bool[nodeTotal];
            var leafValues = new double[leafTotal];
            int node = 0, leaf = 0, maxLeaves = 1;
            for (var t = 0; t < trees.Count; t++)
            {
                var tree = trees[t];
                nodeStart[t] = node;
                leafStart[t] = leaf;
                var nodes = tree.NumberOfNodes;
                // ML.NET: a tree without splits (or whose root's left child is the root) contributes 0.
                if (nodes == 0 || tree.LeftChild[0] == 0)
                {
                    roots[t] = ~leaf;
                    leafValues[leaf++] = 0.0;
                    continue;
                }
                for (var n = 0; n < nodes; n++)
                {
                    if (tree.CategoricalSplitFlags[n])
                    {
                        throw new NotSupportedException(
                            $"Tree {t} splits on categorical features at node {n} (slots {string.Join(", ", tree.GetCategoricalSplitFeaturesAt(n))}): " +
                            "categorical splits are not supported by the compiled tree evaluator. One-hot encode categories in the features and " +
                            "train without categorical splits (LightGbm's UseCategoricalSplit = false).");
                    }
                }
                var defaults = DefaultsForMissing(tree);
                var leaves = tree.LeafValues.Count;
                if (leaves != nodes + 1)
                {
                    throw Malformed(t, $"{nodes} splits and {leaves} leaves");
                }
                maxLeaves = Math.Max(maxLeaves, leaves);
                for (var n = 0; n < nodes; n++)
                {
                    var f = tree.NumericalSplitFeatureIndexes[n];
                    if ((uint)f >= (uint)featureCount)
                    {
                        throw Malformed(t, $"node {n} splits on feature {f} of {featureCount}");
                    }
                    var thr = tree.NumericalSplitThresholds[n];
                    feature[node + n] = f;
                    threshold[node + n] = thr;
                    left[node + n] = Child(tree.LeftChild[n], node, leaf, nodes, leaves, t);
                    right[node + n] = Child(tree.RightChild[n], node, leaf, nodes, leaves, t);
                    // ML.NET replaces a NaN by the node's default (when the tree has defaults) before `<=`; without
                    // defaults NaN <= threshold is false. Either way the direction is fixed per node.
                    missingLeft[node + n] = defaults is not null && defaults[n] <= thr;
                }
                for (var l = 0; l < leaves; l++)
                {
                    leafValues[leaf + l] = tree.LeafValues[l];
                }
                roots[t] = node;
                CheckShape(left, right, node, nodes, leaf, leaves, t);
                node += nodes;
                leaf += leaves;
            }
            nodeStart[trees.Count] = node;
            leafStart[trees.Count] = leaf;
            return new TreeSet
            {
                Roots = roots,
                TreeNodeStart = nodeStart,
                TreeLeafStart = leafStart,
                Feature = feature,
                Threshold = threshold,
                Left = left,
                Right = right,
                MissingLeft = missingLeft,
                LeafValues = leafValues,
                MaxLeaves = maxLeaves,
            };
        }

        private static int Child(int child, int nodeBase, int leafBase, int nodes, int leaves, int tree)
        {
            if (child >= 0)
            {
                return child < nodes ? nodeBase + child : throw Malformed(tree, $"child node {child} of {nodes}");
            }
            var leaf = ~child;
            return leaf < leaves ? ~(leafBase + leaf) : throw Malformed(tree, $"leaf {leaf} of {leaves}");
        }

        /// <summary>Every node reached once from the root and every leaf once: a tree, so a descent always ends.</summary>
        private static void CheckShape(int[] left, int[] right, int nodeBase, int nodes, int leafBase, int leaves, int tree)
        {
            var seenNodes = new bool[nodes];
            var seenLeaves = new bool[leaves];
            var stack = new Stack<int>();
            stack.Push(nodeBase);
            while (stack.Count > 0)
            {
                var n = stack.Pop();
                if (n < 0)
                {
                    var l = ~n - leafBase;
                    if (seenLeaves[l])
                    {
                        throw Malformed(tree, $"leaf {l} is reached twice");
                    }
                    seenLeaves[l] = true;
                    continue;
                }
                if (seenNodes[n - nodeBase])
                {
                    throw Malformed(tree, $"node {n - nodeBase} is reached twice");
                }
                seenNodes[n - nodeBase] = true;
                stack.Push(right[n]);
                stack.Push(left[n]);
            }
            if (Array.IndexOf(seenNodes, false) >= 0 || Array.IndexOf(seenLeaves, false) >= 0)
            {
                throw Malformed(tree, "some nodes or leaves are not reachable from the root");
            }
        }

        private static float[]? DefaultsForMissing(RegressionTree tree)
        {
            // Reflection, once per tree while compiling, never while scoring: the public RegressionTree does not expose
            // InternalRegressionTree.DefaultValueForMissing, and without it NaN routing in LightGbm models would differ.
            var inner = InternalTreeField?.GetValue(tree);
            var field = inner?.GetType().GetField("DefaultValueForMissing", BindingFlags.Public | BindingFlags.Instance);
            if (inner is null || field is null || field.FieldType != typeof(float[]))
            {
                throw new NotSupportedException(
                    "This ML.NET version does not keep a tree's defaults for missing values where the compiled tree evaluator reads them " +
                    "(RegressionTreeBase._tree.DefaultValueForMissing); without them NaN features could be routed differently from ML.NET.");
            }
            var defaults = (float[]?)field.GetValue(inner);
            return defaults is not null && defaults.Length < tree.NumberOfNodes
                ? throw Malformed(-1, $"{defaults.Length} defaults for missing values for {tree.NumberOfNodes} nodes")
                : defaults;
        }

        private static InvalidDataException Malformed(int tree, string what) =>
            new($"The model's tree {tree} is malformed: {what}.");
    }

    /// <summary>A distinct threshold of a feature in QuickScorer's lists, and where its run of splits ends.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct QuickThreshold
    {
        public float Value;
        public int SplitEnd;
    }

    /// <summary>A split in QuickScorer's lists: where a value goes right of it, the tree's <see cref="LeftLeaves"/> become unreachable.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct QuickSplit
    {
        public uint LeftLeaves;
        public int Tree;
    }
}
