using CsCheck;
using Engine.Identity;

namespace Engine.Tests.Identity;

/// <summary>Union-find with path halving and union by size against a naive relabelling implementation.</summary>
public sealed class UnionFindTests
{
    [Fact]
    public void Union_find_equals_naive_relabelling()
    {
        var gen = Gen.Int[1, 60].SelectMany(n => Gen.Select(Gen.Int[0, n - 1], Gen.Int[0, n - 1]).Array[0, 120].Select(ops => (n, ops)));
        gen.Sample(sample =>
        {
            var unionFind = new UnionFind(sample.n);
            var naive = new int[sample.n];
            for (var i = 0; i < naive.Length; i++)
            {
                naive[i] = i;
            }
            foreach (var (a, b) in sample.ops)
            {
                var expectedMerge = naive[a] != naive[b];
                Assert.Equal(expectedMerge, unionFind.Union(a, b));
                if (expectedMerge)
                {
                    var from = naive[b];
                    for (var i = 0; i < naive.Length; i++)
                    {
                        if (naive[i] == from)
                        {
                            naive[i] = naive[a];
                        }
                    }
                }
                // Same set exactly when same naive label; the root's size is the set's size.
                var x = unionFind.Find(a);
                Assert.Equal(naive.Count(l => l == naive[a]), unionFind.SizeOfRoot(x));
            }
            for (var i = 0; i < sample.n; i++)
            {
                for (var j = 0; j < sample.n; j++)
                {
                    Assert.Equal(naive[i] == naive[j], unionFind.Find(i) == unionFind.Find(j));
                }
            }
            var labels = new int[sample.n];
            var sets = unionFind.Label(labels);
            Assert.Equal(naive.Distinct().Count(), sets);
            for (var i = 0; i < sample.n; i++)
            {
                Assert.Equal(Enumerable.Range(0, sample.n).First(j => naive[j] == naive[i]), labels[i]);
            }
            // Labelling leaves the structure usable.
            Assert.Equal(unionFind.Find(0), unionFind.Find(labels[0]));
        });
    }

    [Fact]
    public void Equal_sizes_link_under_the_smaller_root()
    {
        var unionFind = new UnionFind(4);
        unionFind.Union(3, 2);
        Assert.Equal(2, unionFind.Find(3));
        unionFind.Union(1, 0);
        Assert.Equal(0, unionFind.Find(1));
        unionFind.Union(3, 1);
        Assert.Equal(0, unionFind.Find(3));
        Assert.Equal(4, unionFind.SizeOfRoot(0));
    }
}
