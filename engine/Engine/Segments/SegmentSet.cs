using System.Diagnostics;
using Engine.Profiles;
using Engine.Workspaces;

namespace Engine.Segments;

/// <summary>
/// A workspace's segments compiled for one profile table: every condition type-checked, references between segments
/// resolved and ordered (a segment after the ones it names with <c>in_segment</c>), cycles rejected. Every problem is
/// reported at once, each at its file, line and column, before anything is evaluated or written.
/// </summary>
public sealed class SegmentSet
{
    private readonly Dictionary<string, CompiledCondition> _compiled;

    private SegmentSet(IReadOnlyList<SegmentDefinition> order, Dictionary<string, CompiledCondition> compiled)
    {
        Order = order;
        _compiled = compiled;
    }

    /// <summary>The segments in evaluation order: each after every segment it refers to.</summary>
    public IReadOnlyList<SegmentDefinition> Order { get; }

    public CompiledCondition this[string name] => _compiled[name];

    /// <summary>
    /// Checks every segment of <paramref name="workspace"/> against the profile columns its <c>profiles.yaml</c>
    /// and models declare, without data: what <c>engine validate</c> and the start of a run do, so that a bad condition stops
    /// a run before it reads anything. Throws <see cref="WorkspaceException"/> listing every error.
    /// </summary>
    public static void Check(Workspace workspace)
    {
        ArgumentNullException.ThrowIfNull(workspace);
        Compile(workspace.Segments, ProfileTable.Empty(workspace.ProfileColumns), DateTimeOffset.UnixEpoch);
    }

    /// <summary>Compiles <paramref name="segments"/> over <paramref name="table"/>; throws <see cref="WorkspaceException"/> listing every error.</summary>
    public static SegmentSet Compile(IReadOnlyList<SegmentDefinition> segments, ProfileTable table, DateTimeOffset asOf)
    {
        ArgumentNullException.ThrowIfNull(segments);
        var byName = new Dictionary<string, SegmentDefinition>(StringComparer.Ordinal);
        foreach (var segment in segments)
        {
            byName.TryAdd(segment.Name, segment);
        }
        var errors = new List<WorkspaceError>();
        var compiled = new Dictionary<string, CompiledCondition>(StringComparer.Ordinal);
        foreach (var segment in segments)
        {
            try
            {
                compiled[segment.Name] = new ConditionCompiler(table, asOf, byName.ContainsKey).Compile(segment.Condition);
            }
            catch (ConditionException e)
            {
                errors.Add(ErrorAt(segment, e.Position, e.Message));
            }
        }

        // Depth-first over the references; a reference back to a segment still on the path closes a cycle.
        var order = new List<SegmentDefinition>();
        var state = new Dictionary<string, int>(StringComparer.Ordinal); // 1 on the path, 2 done
        var path = new List<string>();
        void Visit(SegmentDefinition segment)
        {
            state[segment.Name] = 1;
            path.Add(segment.Name);
            if (compiled.TryGetValue(segment.Name, out var condition))
            {
                foreach (var (name, position) in condition.Dependencies)
                {
                    switch (state.GetValueOrDefault(name))
                    {
                        case 1:
                            var cycle = string.Join(" -> ", path.Skip(path.IndexOf(name)).Append(name));
                            errors.Add(ErrorAt(segment, position, $"segments refer to each other in a cycle: {cycle}"));
                            break;
                        case 0:
                            Visit(byName[name]);
                            break;
                    }
                }
            }
            path.RemoveAt(path.Count - 1);
            state[segment.Name] = 2;
            order.Add(segment);
        }
        foreach (var segment in segments)
        {
            if (state.GetValueOrDefault(segment.Name) == 0)
            {
                Visit(segment);
            }
        }
        if (errors.Count > 0)
        {
            throw new WorkspaceException(errors);
        }
        return new SegmentSet(order, compiled);
    }

    private static WorkspaceError ErrorAt(SegmentDefinition segment, int position, string message)
    {
        var (line, column) = position >= 0 ? segment.ConditionPositions.Locate(position) : (segment.ConditionLine, 0);
        return new WorkspaceError(segment.File, line, column, $"segment '{segment.Name}': {message}");
    }

    /// <summary>Evaluates every segment in order: the members of each, one bit per row of <paramref name="table"/>.</summary>
    public SegmentMembers Evaluate(ProfileTable table, int parallelism = 0)
    {
        ArgumentNullException.ThrowIfNull(table);
        var members = new Dictionary<string, ulong[]>(StringComparer.Ordinal);
        var timings = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var segment in Order)
        {
            var clock = Stopwatch.StartNew();
            try
            {
                members[segment.Name] = _compiled[segment.Name].Evaluate(table, members, parallelism);
            }
            catch (ConditionException e)
            {
                throw new WorkspaceException([ErrorAt(segment, e.Position, e.Message)]);
            }
            timings[segment.Name] = clock.Elapsed.TotalMilliseconds;
        }
        return new SegmentMembers(table, members, timings);
    }
}

/// <summary>The members of each segment over one profile table.</summary>
public sealed class SegmentMembers(ProfileTable table, IReadOnlyDictionary<string, ulong[]> bits, IReadOnlyDictionary<string, double> milliseconds)
{
    public ProfileTable Table { get; } = table;

    /// <summary>Per segment, one bit per row of <see cref="Table"/>.</summary>
    public IReadOnlyDictionary<string, ulong[]> Bits { get; } = bits;

    /// <summary>How long each segment took to evaluate.</summary>
    public IReadOnlyDictionary<string, double> Milliseconds { get; } = milliseconds;

    public long Count(string segment) => Count(Bits[segment]);

    /// <summary>The profile ids of <paramref name="segment"/>'s members, ascending.</summary>
    public long[] ProfileIds(string segment) => ProfileIds(Bits[segment], Table.ProfileIds.Values);

    /// <summary>Rows set in a bitmap.</summary>
    public static long Count(ReadOnlySpan<ulong> bits)
    {
        long count = 0;
        foreach (var word in bits)
        {
            count += (long)ulong.PopCount(word);
        }
        return count;
    }

    /// <summary>The ids of the rows set in <paramref name="bits"/> (one bit per row of <paramref name="ids"/>), in row order.</summary>
    public static long[] ProfileIds(ReadOnlySpan<ulong> bits, ReadOnlySpan<long> ids)
    {
        var result = new long[Count(bits)];
        var n = 0;
        for (var w = 0; w < bits.Length; w++)
        {
            var word = bits[w];
            while (word != 0)
            {
                result[n++] = ids[(w << 6) + System.Numerics.BitOperations.TrailingZeroCount(word)];
                word &= word - 1;
            }
        }
        return result;
    }
}
