using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Engine.Scores;

public sealed partial class CompiledTreeEnsemble
{
    /// <summary>
    /// QuickScorer's form of the ensemble. Per feature, the distinct thresholds of the splits on it in ascending order,
    /// each with its run of splits (the tree, and the bits of the split's left-subtree leaves): one compare serves every
    /// split sharing a threshold, which LightGbm's binning makes common (6,000 splits, 1,268 thresholds in the
    /// benchmark's model). Per feature also the splits that send a missing value right. Per tree, the starting mask and
    /// where its leaves' values start.
    /// </summary>
    private sealed class QuickScorerModel
    {
        private QuickThreshold[] _thresholds = [];
        private QuickSplit[] _splits = [];
        private int[] _featureStart = [];
        private int[] _featureSplitStart = [];
        private QuickSplit[] _missingRight = [];
        private int[] _missingStart = [];
        private int[] _features = [];
        private uint[] _initialMasks = [];
        private int[] _leafStart = [];
        private double[] _leafValues = [];

        public static QuickScorerModel Build(TreeSet trees, int featureCount)
        {
            var treeCount = trees.Roots.Length;
            var initial = new uint[treeCount];
            var leafStart = new int[treeCount];
            var leafValues = new double[trees.LeafValues.Length];
            var byFeature = new List<(float Threshold, QuickSplit Split)>[featureCount];
            var missingByFeature = new List<QuickSplit>[featureCount];
            for (var f = 0; f < featureCount; f++)
            {
                byFeature[f] = [];
                missingByFeature[f] = [];
            }
            var leafBits = new (int First, int End)[trees.MaxLeaves * 2];
            for (var t = 0; t < treeCount; t++)
            {
                initial[t] = uint.MaxValue;
                leafStart[t] = trees.TreeLeafStart[t];
                var root = trees.Roots[t];
                if (root < 0)
                {
                    leafValues[leafStart[t]] = trees.LeafValues[~root];
                    continue;
                }
                // Number the leaves left to right (in order), so the leftmost reachable leaf is the lowest set bit.
                var position = 0;
                Number(trees, root, leafStart[t], ref position, leafValues, trees.TreeNodeStart[t], leafBits);
                for (var node = trees.TreeNodeStart[t]; node < trees.TreeNodeStart[t + 1]; node++)
                {
                    var (first, end) = leafBits[node - trees.TreeNodeStart[t]];
                    var split = new QuickSplit { LeftLeaves = (uint)(((1UL << (end - first)) - 1) << first), Tree = t };
                    var threshold = trees.Threshold[node];
                    if (float.IsNaN(threshold))
                    {
                        // `value <= NaN` is false for every value, NaN or a default: the split always goes right.
                        initial[t] &= ~split.LeftLeaves;
                        continue;
                    }
                    byFeature[trees.Feature[node]].Add((threshold, split));
                    if (!trees.MissingLeft[node])
                    {
                        missingByFeature[trees.Feature[node]].Add(split);
                    }
                }
            }

            var thresholds = new List<QuickThreshold>();
            var splits = new List<QuickSplit>();
            var missing = new List<QuickSplit>();
            var features = new List<int>();
            var featureStart = new List<int> { 0 };
            var featureSplitStart = new List<int>();
            var missingStart = new List<int> { 0 };
            for (var f = 0; f < featureCount; f++)
            {
                var list = byFeature[f];
                if (list.Count == 0)
                {
                    continue;
                }
                // Ascending thresholds: the first one no row exceeds ends the feature's walk. Ties by tree keep the
                // order deterministic (the result does not depend on it: clearing bits commutes).
                list.Sort((a, b) => a.Threshold != b.Threshold ? a.Threshold.CompareTo(b.Threshold) : a.Split.Tree.CompareTo(b.Split.Tree));
                features.Add(f);
                featureSplitStart.Add(splits.Count);
                for (var k = 0; k < list.Count; k++)
                {
                    splits.Add(list[k].Split);
                    if (k + 1 == list.Count || list[k + 1].Threshold != list[k].Threshold)
                    {
                        thresholds.Add(new QuickThreshold { Value = list[k].Threshold, SplitEnd = splits.Count });
                    }
                }
                featureStart.Add(thresholds.Count);
                missing.AddRange(missingByFeature[f]);
                missingStart.Add(missing.Count);
            }
            return new QuickScorerModel
            {
                _thresholds = [.. thresholds],
                _splits = [.. splits],
                _featureStart = [.. featureStart],
                _featureSplitStart = [.. featureSplitStart],
                _missingRight = [.. missing],
                _missingStart = [.. missingStart],
                _features = [.. features],
                _initialMasks = initial,
                _leafStart = leafStart,
                _leafValues = leafValues,
            };
        }

        /// <summary>Numbers the leaves under <paramref name="node"/> in order and records each split's span of leaf positions.</summary>
        private static (int First, int End) Number(TreeSet trees, int node, int leafBase, ref int position, double[] leafValues, int nodeBase, (int, int)[] spans)
        {
            if (node < 0)
            {
                leafValues[leafBase + position] = trees.LeafValues[~node];
                position++;
                return (position - 1, position);
            }
            var (first, middle) = Number(trees, trees.Left[node], leafBase, ref position, leafValues, nodeBase, spans);
            var (_, end) = Number(trees, trees.Right[node], leafBase, ref position, leafValues, nodeBase, spans);
            // Kept as the left subtree's span: those are the leaves a value going right can no longer reach.
            spans[node - nodeBase] = (first, middle);
            return (first, end);
        }

        /// <summary>
        /// Adds every tree's leaf value to the sums of rows <paramref name="start"/> to <paramref name="end"/>, sixteen
        /// rows at a time with 512-bit vectors (the batch's padding makes the last sixteen readable);
        /// <paramref name="masks"/> holds a vector per tree.
        /// </summary>
        [SkipLocalsInit]
        public unsafe void SumTrees16(float* values, int stride, int start, int end, double* sums, Vector512<uint>* masks)
        {
            var treeCount = _initialMasks.Length;
            fixed (QuickThreshold* thresholds = _thresholds)
            fixed (QuickSplit* splits = _splits, missingRight = _missingRight)
            fixed (int* featureStart = _featureStart, featureSplitStart = _featureSplitStart, missingStart = _missingStart, features = _features, leafStart = _leafStart)
            fixed (uint* initial = _initialMasks)
            fixed (double* leafValues = _leafValues)
            {
                var tail = stackalloc double[16];
                for (var row = start; row < end; row += 16)
                {
                    for (var t = 0; t < treeCount; t++)
                    {
                        masks[t] = Vector512.Create(initial[t]);
                    }
                    for (var i = 0; i < _features.Length; i++)
                    {
                        var x = Vector512.Load(values + (nint)features[i] * stride + row);
                        var split = splits + featureSplitStart[i];
                        var last = thresholds + featureStart[i + 1];
                        for (var threshold = thresholds + featureStart[i]; threshold < last; threshold++)
                        {
                            // Right of the split where threshold < value (NaN compares false; handled below).
                            var right = Vector512.LessThan(Vector512.Create(threshold->Value), x).AsUInt32();
                            if (right == Vector512<uint>.Zero)
                            {
                                break;
                            }
                            for (var runEnd = splits + threshold->SplitEnd; split < runEnd; split++)
                            {
                                masks[split->Tree] = Vector512.AndNot(masks[split->Tree], right & Vector512.Create(split->LeftLeaves));
                            }
                        }
                        var missing = ~Vector512.Equals(x, x).AsUInt32();
                        if (missing != Vector512<uint>.Zero)
                        {
                            var missingEnd = missingRight + missingStart[i + 1];
                            for (var m = missingRight + missingStart[i]; m < missingEnd; m++)
                            {
                                masks[m->Tree] = Vector512.AndNot(masks[m->Tree], missing & Vector512.Create(m->LeftLeaves));
                            }
                        }
                    }

                    // The exit leaf of each tree is its mask's lowest set bit; its value is added in tree order, in
                    // double, as ML.NET does. The bit's index comes from the exponent of its exact float conversion.
                    var s0 = Vector256<double>.Zero;
                    var s1 = Vector256<double>.Zero;
                    var s2 = Vector256<double>.Zero;
                    var s3 = Vector256<double>.Zero;
                    for (var t = 0; t < treeCount; t++)
                    {
                        var mask = masks[t];
                        var lowest = (mask & (Vector512<uint>.Zero - mask)).AsInt32();
                        var exponent = (Vector512.ConvertToSingle(lowest).AsInt32() >>> 23) & Vector512.Create(0xFF);
                        var index = exponent + Vector512.Create(leafStart[t] - 127);
                        var lower = index.GetLower();
                        var upper = index.GetUpper();
                        s0 += Avx2.GatherVector256(leafValues, lower.GetLower(), 8);
                        s1 += Avx2.GatherVector256(leafValues, lower.GetUpper(), 8);
                        s2 += Avx2.GatherVector256(leafValues, upper.GetLower(), 8);
                        s3 += Avx2.GatherVector256(leafValues, upper.GetUpper(), 8);
                    }
                    var at = end - row >= 16 ? sums + (row - start) : tail;
                    s0.Store(at);
                    s1.Store(at + 4);
                    s2.Store(at + 8);
                    s3.Store(at + 12);
                    for (var k = 0; at == tail && k < end - row; k++)
                    {
                        sums[row - start + k] = tail[k];
                    }
                }
            }
        }

        /// <summary><see cref="SumTrees16"/> eight rows at a time with 256-bit vectors (AVX2).</summary>
        [SkipLocalsInit]
        public unsafe void SumTrees8(float* values, int stride, int start, int end, double* sums, Vector256<uint>* masks)
        {
            var treeCount = _initialMasks.Length;
            fixed (QuickThreshold* thresholds = _thresholds)
            fixed (QuickSplit* splits = _splits, missingRight = _missingRight)
            fixed (int* featureStart = _featureStart, featureSplitStart = _featureSplitStart, missingStart = _missingStart, features = _features, leafStart = _leafStart)
            fixed (uint* initial = _initialMasks)
            fixed (double* leafValues = _leafValues)
            {
                var tail = stackalloc double[8];
                for (var row = start; row < end; row += 8)
                {
                    for (var t = 0; t < treeCount; t++)
                    {
                        masks[t] = Vector256.Create(initial[t]);
                    }
                    for (var i = 0; i < _features.Length; i++)
                    {
                        var x = Vector256.Load(values + (nint)features[i] * stride + row);
                        var split = splits + featureSplitStart[i];
                        var last = thresholds + featureStart[i + 1];
                        for (var threshold = thresholds + featureStart[i]; threshold < last; threshold++)
                        {
                            var right = Vector256.LessThan(Vector256.Create(threshold->Value), x).AsUInt32();
                            if (right == Vector256<uint>.Zero)
                            {
                                break;
                            }
                            for (var runEnd = splits + threshold->SplitEnd; split < runEnd; split++)
                            {
                                masks[split->Tree] = Vector256.AndNot(masks[split->Tree], right & Vector256.Create(split->LeftLeaves));
                            }
                        }
                        var missing = ~Vector256.Equals(x, x).AsUInt32();
                        if (missing != Vector256<uint>.Zero)
                        {
                            var missingEnd = missingRight + missingStart[i + 1];
                            for (var m = missingRight + missingStart[i]; m < missingEnd; m++)
                            {
                                masks[m->Tree] = Vector256.AndNot(masks[m->Tree], missing & Vector256.Create(m->LeftLeaves));
                            }
                        }
                    }
                    var s0 = Vector256<double>.Zero;
                    var s1 = Vector256<double>.Zero;
                    for (var t = 0; t < treeCount; t++)
                    {
                        var mask = masks[t];
                        var lowest = (mask & (Vector256<uint>.Zero - mask)).AsInt32();
                        var exponent = (Vector256.ConvertToSingle(lowest).AsInt32() >>> 23) & Vector256.Create(0xFF);
                        var index = exponent + Vector256.Create(leafStart[t] - 127);
                        s0 += Avx2.GatherVector256(leafValues, index.GetLower(), 8);
                        s1 += Avx2.GatherVector256(leafValues, index.GetUpper(), 8);
                    }
                    var at = end - row >= 8 ? sums + (row - start) : tail;
                    s0.Store(at);
                    s1.Store(at + 4);
                    for (var k = 0; at == tail && k < end - row; k++)
                    {
                        sums[row - start + k] = tail[k];
                    }
                }
            }
        }
    }
}
