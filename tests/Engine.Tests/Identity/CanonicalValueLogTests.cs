using System.Text;
using CsCheck;
using Engine.Identity;
using Engine.TestKit;

namespace Engine.Tests.Identity;

public sealed class CanonicalValueLogTests
{
    [Fact]
    public void Values_come_back_in_any_order_including_empty_and_larger_than_the_buffer()
    {
        using var dir = new TempDirectory("value-log");
        using var log = new CanonicalValueLog(dir.Path);
        string[] values = ["ann@mail.co.uk", "", "+447700900123", new string('x', 3 << 20), "zoë", "c1"];
        foreach (var value in values)
        {
            log.Append(Encoding.UTF8.GetBytes(value));
        }
        Assert.Equal(values.Length, log.Count);
        int[] order = [5, 3, 0, 0, 1, 4, 2];
        var seen = new List<(long, string)>();
        log.ReadInOrder(order, seen, (list, id, value) => list.Add((id, Encoding.UTF8.GetString(value))));
        Assert.Equal(order.Select(i => ((long)i, values[i])), seen);
        Assert.Throws<ArgumentOutOfRangeException>(() => log.ReadInOrder([values.Length], seen, (_, _, _) => { }));
    }

    [Fact]
    public void Values_come_back_through_several_windows_whatever_the_order()
    {
        // More ids than two windows hold, so windows start mid-page; values of varied length, some empty.
        using var dir = new TempDirectory("value-log");
        using var log = new CanonicalValueLog(dir.Path, expected: 1000);
        var values = Enumerable.Range(0, (2 * CanonicalValueLog.WindowIds) + 777).Select(i => new string('v', i % 37) + i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        values[5] = "";
        foreach (var value in values)
        {
            log.Append(Encoding.UTF8.GetBytes(value));
        }
        var sequential = Enumerable.Range(0, values.Length).ToArray();
        var backwards = sequential.Reverse().ToArray();
        var shuffled = sequential.ToArray();
        new Random(7).Shuffle(shuffled);
        foreach (var order in new[] { sequential, backwards, shuffled })
        {
            var seen = new List<string>();
            log.ReadInOrder(order, seen, (list, id, value) => list.Add(Encoding.UTF8.GetString(value)));
            Assert.Equal(order.Select(i => values[i]), seen);
        }
    }

    [Fact]
    public void Random_values_round_trip_through_a_permutation()
    {
        Gen.String.Array[0, 300].Select(Gen.Int).Sample((values, seed) =>
        {
            using var dir = new TempDirectory("value-log");
            using var log = new CanonicalValueLog(dir.Path);
            foreach (var value in values)
            {
                log.Append(Encoding.UTF8.GetBytes(value));
            }
            var order = Enumerable.Range(0, values.Length).ToArray();
            new Random(seed).Shuffle(order);
            var back = new string[values.Length];
            log.ReadInOrder(order, back, (array, id, value) => array[id] = Encoding.UTF8.GetString(value));
            Assert.Equal(values.Select(v => Encoding.UTF8.GetString(Encoding.UTF8.GetBytes(v))), back);
        }, iter: 50);
    }
}
