namespace Engine.Identity;

/// <summary>
/// What became of each link of a <see cref="CanonicalGraph"/>, decided once for the manifest's counts and for
/// <c>identity/links</c>: linked (a link kept from the previous run counts as linked, whatever the shared-value guard
/// says now), refused because an end is a shared value, or refused by a type's limit.
/// </summary>
public sealed class LinkOutcomes
{
    public const byte Linked = 0;
    public const byte RefusedLimit = 1;
    public const byte RefusedShared = 2;

    private LinkOutcomes(byte[] outcome, byte[] reasonType)
    {
        Outcome = outcome;
        ReasonType = reasonType;
    }

    /// <summary>Per link (in <see cref="CanonicalGraph.Edges"/> order): <see cref="Linked"/>, <see cref="RefusedLimit"/> or <see cref="RefusedShared"/>.</summary>
    public byte[] Outcome { get; }

    /// <summary>Per refused link, the type id behind it: the type whose limit would break, or the shared value's type.</summary>
    public byte[] ReasonType { get; }

    /// <summary>Classifies every link of <paramref name="graph"/> from the stitch and the links pinned by the previous run (both sorted by packed value).</summary>
    public static LinkOutcomes Classify(CanonicalGraph graph, StitchResult result, ReadOnlySpan<ulong> pinned)
    {
        ArgumentNullException.ThrowIfNull(graph);
        ArgumentNullException.ThrowIfNull(result);
        // Refused edges sorted by packed value, with the type whose limit they would break, for a merge walk.
        var refused = result.Refused;
        var refusedEdges = new ulong[refused.Length];
        var refusedTypes = new byte[refused.Length];
        for (var i = 0; i < refused.Length; i++)
        {
            refusedEdges[i] = EdgeSet.Pack(refused[i].First, refused[i].Second);
            refusedTypes[i] = refused[i].LimitedType;
        }
        Array.Sort(refusedEdges, refusedTypes);
        var edges = graph.Edges;
        var outcome = new byte[edges.Length];
        var reasonType = new byte[edges.Length];
        int r = 0, p = 0;
        for (var i = 0; i < edges.Length; i++)
        {
            var e = edges[i];
            while (p < pinned.Length && pinned[p] < e)
            {
                p++;
            }
            while (r < refusedEdges.Length && refusedEdges[r] < e)
            {
                r++;
            }
            if (p < pinned.Length && pinned[p] == e)
            {
                continue;
            }
            int a = EdgeSet.First(e), b = EdgeSet.Second(e);
            if (result.IsShared(a) || result.IsShared(b))
            {
                outcome[i] = RefusedShared;
                reasonType[i] = graph.NodeTypes[result.IsShared(b) ? b : a];
            }
            else if (r < refusedEdges.Length && refusedEdges[r] == e)
            {
                outcome[i] = RefusedLimit;
                reasonType[i] = refusedTypes[r];
            }
        }
        return new LinkOutcomes(outcome, reasonType);
    }
}
