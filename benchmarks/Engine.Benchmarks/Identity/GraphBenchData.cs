using Engine.Identity;

namespace Engine.Benchmarks.Identity;

/// <summary>Deterministic random identifier graphs and keys (SplitMix64), the same on every run and machine.</summary>
internal static class GraphBenchData
{
    /// <summary>customer_id (limit 1), email (limit 5), phone, anonymous_id: ranks 0 … 3.</summary>
    public static readonly IdentifierTypePolicy[] Limited = [new(0, 1), new(1, 5), new(2, null), new(3, null)];

    /// <summary>The same ranks without limits.</summary>
    public static readonly IdentifierTypePolicy[] Unlimited = [new(0, null), new(1, null), new(2, null), new(3, null)];

    public static ulong Next(ref ulong state)
    {
        var z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary><paramref name="nodes"/> typed nodes (about 1 in 4 of each type) and <paramref name="edges"/> uniform random pairs.</summary>
    public static (byte[] Types, ulong[] RawEdges) Graph(int nodes, int edges, ulong seed)
    {
        var state = seed;
        var types = new byte[nodes];
        for (var i = 0; i < nodes; i++)
        {
            types[i] = (byte)(Next(ref state) & 3);
        }
        var raw = new ulong[edges];
        for (var i = 0; i < edges; i++)
        {
            var r = Next(ref state);
            var a = (int)((uint)r % (uint)nodes);
            var b = (int)((uint)(r >> 32) % (uint)nodes);
            raw[i] = EdgeSet.Pack(a, b == a ? (a + 1) % nodes : b);
        }
        return (types, raw);
    }

    /// <summary>The distinct edges of <paramref name="raw"/>, sorted.</summary>
    public static ulong[] Deduplicated(ulong[] raw)
    {
        var set = new EdgeSet(raw.Length);
        AddPacked(set, raw);
        return set.Deduplicate().ToArray();
    }

    public static void AddPacked(EdgeSet set, ReadOnlySpan<ulong> packed)
    {
        foreach (var e in packed)
        {
            set.Add(EdgeSet.First(e), EdgeSet.Second(e));
        }
    }

    /// <summary><paramref name="lookups"/> keys drawn uniformly from <paramref name="distinct"/> hashed identifiers.</summary>
    public static (IdentifierKey[] Keys, byte[] Types) Lookups(int distinct, int lookups, ulong seed)
    {
        var state = seed;
        var keys = new IdentifierKey[lookups];
        var types = new byte[lookups];
        Span<byte> value = stackalloc byte[24];
        for (var i = 0; i < lookups; i++)
        {
            var pick = Next(ref state) % (ulong)distinct;
            // A plausible identifier: "user" + 8 digits' worth of bytes, hashed as the engine would.
            "user"u8.CopyTo(value);
            BitConverter.TryWriteBytes(value[4..], pick);
            types[i] = (byte)(pick & 3);
            keys[i] = IdentifierKey.Compute(types[i], value[..12]);
        }
        return (keys, types);
    }
}
