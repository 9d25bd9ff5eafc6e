using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Engine.Scores;

public sealed partial class CompiledTreeEnsemble
{
    /// <summary>
    /// QuickScorer's form of the ensemble: per feature, the splits on it in ascending threshold order, each with the
    /// bits of its left subtree's leaves; per tree, the starting mask and where its leaves' values start.
    /// </summary>
    private sealed class QuickScorerModel
    {
        private QuickNode[] _nodes = [];
        private int[] _featureStart = [];
        private QuickNode[] _missingRight = [];
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
            var byFeature = new List<QuickNode>[featureCount];
            var missingByFeature = new List<QuickNode>[featureCount];
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
                    var split = new QuickNode
                    {
                        Threshold = trees.Threshold[node],
                        LeftLeaves = (uint)(((1UL << (end - first)) - 1) << first),
                        Tree = t,
                    };
                    if (float.IsNaN(split.Threshold))
                    {
                        // `value <= NaN` is false for every value, NaN or a default: the split always goes right.
                        initial[t] &= ~split.LeftLeaves;
                        continue;
                    }
                    byFeature[trees.Feature[node]].Add(split);
                    if (!trees.MissingLeft[node])
                    {
                        missingByFeature[trees.Feature[node]].Add(split);
                    }
                }
            }

            var nodes = new List<QuickNode>();
            var missing = new List<QuickNode>();
            var features = new List<int>();
            var featureStart = new List<int> { 0 };
            var missingStart = new List<int> { 0 };
            for (var f = 0; f < featureCount; f++)
            {
                if (byFeature[f].Count == 0)
                {
                    continue;
                }
                // Ascending thresholds: the first one no row exceeds ends the feature's walk. Ties by tree keep the
                // order deterministic (the result does not depend on it: clearing bits commutes).
                byFeature[f].Sort((a, b) => a.Threshold != b.Threshold ? a.Threshold.CompareTo(b.Threshold) : a.Tree.CompareTo(b.Tree));
                features.Add(f);
                nodes.AddRange(byFeature[f]);
                featureStart.Add(nodes.Count);
                missing.AddRange(missingByFeature[f]);
                missingStart.Add(missing.Count);
            }
            return new QuickScorerModel
            {
                _nodes = [.. nodes],
                _featureStart = [.. featureStart],
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
        /// Adds every tree's leaf value to the sums of rows <paramref name="start"/> to <paramref name="end"/>, eight
        /// rows at a time (the batch's padding makes the last eight readable); <paramref name="masks"/> holds a vector per tree.
        /// </summary>
        [SkipLocalsInit]
        public unsafe void SumTrees(float* values, int stride, int start, int end, double* sums, Vector256<uint>* masks)
        {
            var treeCount = _initialMasks.Length;
            fixed (QuickNode* nodes = _nodes, missingRight = _missingRight)
            fixed (int* featureStart = _featureStart, missingStart = _missingStart, features = _features, leafStart = _leafStart)
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
                        var node = nodes + featureStart[i];
                        var last = nodes + featureStart[i + 1];
                        for (; node < last; node++)
                        {
                            // Right of the split where threshold < value (NaN compares false; handled below).
                            var right = Vector256.LessThan(Vector256.Create(node->Threshold), x).AsUInt32();
                            if (right == Vector256<uint>.Zero)
                            {
                                break;
                            }
                            masks[node->Tree] = Vector256.AndNot(masks[node->Tree], right & Vector256.Create(node->LeftLeaves));
                        }
                        var missing = ~Vector256.Equals(x, x).AsUInt32();
                        if (missing != Vector256<uint>.Zero)
                        {
                            var missingEnd = missingRight + missingStart[i + 1];
                            for (var split = missingRight + missingStart[i]; split < missingEnd; split++)
                            {
                                masks[split->Tree] = Vector256.AndNot(masks[split->Tree], missing & Vector256.Create(split->LeftLeaves));
                            }
                        }
                    }

                    // The exit leaf of each tree is its mask's lowest set bit; its value is added in tree order, in
                    // double, as ML.NET does. The bit's index comes from the exponent of its exact float conversion.
                    var low = Vector256<double>.Zero;
                    var high = Vector256<double>.Zero;
                    for (var t = 0; t < treeCount; t++)
                    {
                        var mask = masks[t];
                        var lowest = (mask & (Vector256<uint>.Zero - mask)).AsInt32();
                        var exponent = (Vector256.ConvertToSingle(lowest).AsInt32() >>> 23) & Vector256.Create(0xFF);
                        var index = exponent + Vector256.Create(leafStart[t] - 127);
                        low += Avx2.GatherVector256(leafValues, index.GetLower(), 8);
                        high += Avx2.GatherVector256(leafValues, index.GetUpper(), 8);
                    }
                    var at = sums + (row - start);
                    if (end - row >= 8)
                    {
                        low.Store(at);
                        high.Store(at + 4);
                    }
                    else
                    {
                        low.Store(tail);
                        high.Store(tail + 4);
                        for (var k = 0; k < end - row; k++)
                        {
                            at[k] = tail[k];
                        }
                    }
                }
            }
        }
    }
}
