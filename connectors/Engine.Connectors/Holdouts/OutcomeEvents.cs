using System.Text;
using Apache.Arrow;
using Engine.Connectors.Matching;
using Engine.Identity;
using Engine.Storage;
using Engine.Workspaces;

namespace Engine.Connectors.Holdouts;

/// <summary>
/// Reads the outcome events of a workspace's sources and maps them to profiles: one scan per source for all its
/// outcomes, the matching rows' identifiers normalised with the identity rules, then one read of a run's
/// <c>identity/</c> for just those identifiers. Also checks each filter value against the data: a value no row has
/// (an event type spelled wrong) is an error at its line in <c>delivery.yaml</c>, with the nearest value seen.
/// </summary>
internal static class OutcomeEvents
{
    /// <summary>Distinct values kept per filter column for the spelling check (event types are a short list).</summary>
    private const int MaxDistinct = 10_000;

    /// <summary>
    /// Per outcome, per profile of <paramref name="profiles"/>, the sorted times (microseconds) of its outcome events in
    /// [<paramref name="fromMicros"/>, <paramref name="untilMicros"/>).
    /// </summary>
    public static async Task<Dictionary<string, Dictionary<long, List<long>>>> ReadAsync(Workspace workspace, StorageResolver storage, StorageLocation identity,
        IReadOnlyList<OutcomeDefinition> outcomes, IReadOnlySet<long> profiles, long fromMicros, long untilMicros, CancellationToken cancellationToken)
    {
        var result = outcomes.ToDictionary(o => o.Name, _ => new Dictionary<long, List<long>>(), StringComparer.Ordinal);
        var rules = workspace.Identity;
        var rows = new List<(long Ts, List<(int Type, string Value)> Identifiers, List<string> Outcomes)>();
        foreach (var group in outcomes.GroupBy(o => o.Source))
        {
            var source = workspace.Sources.First(s => s.Name == group.Key);
            var list = group.ToArray();
            var found = Scan(workspace, source, list, fromMicros, untilMicros, await OpenAsync(workspace, storage, source, cancellationToken), cancellationToken);
            CheckValues(list, found.Seen, source);
            foreach (var row in found.Rows)
            {
                rows.Add((row.Ts, row.Identifiers, [.. row.Outcomes.Select(i => list[i].Name)]));
            }
        }
        if (rows.Count == 0)
        {
            return result;
        }

        // The identifiers of the matching rows, and their profiles in the run's identity output.
        var wanted = new Dictionary<string, long>[rules.Types.Count];
        for (var t = 0; t < wanted.Length; t++)
        {
            wanted[t] = new Dictionary<string, long>(StringComparer.Ordinal);
        }
        foreach (var row in rows)
        {
            foreach (var (type, value) in row.Identifiers)
            {
                wanted[type][value] = -1;
            }
        }
        var lookups = wanted.Select(w => w.GetAlternateLookup<ReadOnlySpan<char>>()).ToArray();
        var dataset = await Dataset.OpenAsync(identity, DataFormat.Parquet, cancellationToken);
        var chars = new char[1024];
        IdentityOutput.ReadIdentifiers(dataset, rules, (_, typeId, value, profileId, _) =>
        {
            if (typeId < 0 || profileId < 0)
            {
                return;
            }
            if (chars.Length < value.Length)
            {
                chars = new char[value.Length * 2];
            }
            var n = Encoding.UTF8.GetChars(value, chars);
            if (lookups[typeId].ContainsKey(chars.AsSpan(0, n)))
            {
                lookups[typeId][chars.AsSpan(0, n)] = profileId;
            }
        }, cancellationToken);

        foreach (var row in rows)
        {
            // The most trusted identifier with a profile decides (identifiers are listed by priority).
            var profile = -1L;
            foreach (var (type, value) in row.Identifiers)
            {
                if (wanted[type][value] is var id and >= 0)
                {
                    profile = id;
                    break;
                }
            }
            if (profile < 0 || !profiles.Contains(profile))
            {
                continue;
            }
            foreach (var name in row.Outcomes)
            {
                var times = result[name];
                (times.TryGetValue(profile, out var list) ? list : times[profile] = []).Add(row.Ts);
            }
        }
        foreach (var times in result.Values)
        {
            foreach (var list in times.Values)
            {
                list.Sort();
            }
        }
        return result;
    }

    private static async Task<Dataset> OpenAsync(Workspace workspace, StorageResolver storage, SourceDefinition source, CancellationToken cancellationToken)
    {
        try
        {
            return await Dataset.OpenAsync(storage.Resolve(source.Location, workspace.Directory), source.Format, cancellationToken);
        }
        catch (DataException e)
        {
            throw new DataException(e.Location, $"{e.Message} (source '{source.Name}', {source.File})", e);
        }
    }

    private sealed class ScanState
    {
        public List<(long Ts, List<(int Type, string Value)> Identifiers, List<int> Outcomes)> Rows { get; } = [];

        /// <summary>Per filter column (position in the scan), the distinct values seen.</summary>
        public Dictionary<int, HashSet<string>> Seen { get; } = [];
    }

    private static (List<(long Ts, List<(int Type, string Value)> Identifiers, List<int> Outcomes)> Rows, Dictionary<string, HashSet<string>> Seen) Scan(
        Workspace workspace, SourceDefinition source, OutcomeDefinition[] outcomes, long fromMicros, long untilMicros, Dataset dataset,
        CancellationToken cancellationToken)
    {
        var rules = workspace.Identity;
        var specs = new List<ColumnSpec>();
        int Position(string column)
        {
            var at = specs.FindIndex(s => s.Name == column);
            if (at >= 0)
            {
                return at;
            }
            specs.Add(source.Schema.Find(column) ?? throw new EngineException($"source '{source.Name}': column '{column}' is not declared ({source.File})"));
            return specs.Count - 1;
        }
        var time = Position(source.TimestampColumn!);
        var filters = outcomes.Select(o => o.Filters.Select(f => (Column: Position(f.Column), Values: f.Values.ToHashSet(StringComparer.Ordinal))).ToArray()).ToArray();
        var filterColumns = filters.SelectMany(f => f.Select(c => c.Column)).Distinct().ToArray();
        // Identifier columns, most trusted type first.
        var identifiers = source.Identifiers
            .Select(p => (Column: Position(p.Key), Type: rules.PriorityOf(p.Value), Region: source.PhoneRegionColumns.TryGetValue(p.Key, out var region) ? Position(region) : -1))
            .Where(i => i.Type >= 0)
            .OrderBy(i => i.Type)
            .ToArray();

        var states = DatasetScan.Run(dataset, specs, () => new ScanState(), (state, scan) =>
        {
            var batch = scan.Batch;
            foreach (var column in filterColumns)
            {
                var seen = state.Seen.TryGetValue(column, out var set) ? set : state.Seen[column] = new HashSet<string>(StringComparer.Ordinal);
                var array = batch.Column(column);
                // Event types arrive dictionary-encoded: the dictionary is the batch's distinct values.
                var values = array is DictionaryArray { Dictionary: StringArray entries } ? entries : array;
                for (var i = 0; i < values.Length && seen.Count < MaxDistinct; i++)
                {
                    if (ArrowValues.String(values, i) is { } value)
                    {
                        seen.Add(value);
                    }
                }
            }
            // Each condition judged once per dictionary entry (or per row for plain strings), then per row by index.
            var matchers = new Matcher[filters.Length][];
            for (var o = 0; o < filters.Length; o++)
            {
                matchers[o] = [.. filters[o].Select(f => new Matcher(batch.Column(f.Column), f.Values))];
            }
            if (batch.Column(time) is not TimestampArray times)
            {
                throw new DataException(scan.Location, $"column '{source.TimestampColumn}' is not a timestamp");
            }
            var buffer = new byte[256];
            List<int>? matched = null;
            for (var i = 0; i < batch.Length; i++)
            {
                if (times.GetTimestamp(i) is not { } at)
                {
                    continue;
                }
                var ts = (at.ToUniversalTime() - DateTimeOffset.UnixEpoch).Ticks / 10;
                if (ts < fromMicros || ts >= untilMicros)
                {
                    continue;
                }
                for (var o = 0; o < filters.Length; o++)
                {
                    var pass = true;
                    foreach (var matcher in matchers[o])
                    {
                        if (!matcher.Matches(i))
                        {
                            pass = false;
                            break;
                        }
                    }
                    if (pass)
                    {
                        (matched ??= []).Add(o);
                    }
                }
                if (matched is null)
                {
                    continue;
                }
                var ids = new List<(int, string)>();
                foreach (var (column, type, regionColumn) in identifiers)
                {
                    if (ArrowValues.String(batch.Column(column), i) is not { } raw)
                    {
                        continue;
                    }
                    var utf8 = Encoding.UTF8.GetBytes(raw);
                    var size = IdentifierNormalizers.MaxOutputBytes(utf8.Length);
                    if (buffer.Length < size)
                    {
                        buffer = new byte[size];
                    }
                    var region = regionColumn >= 0 ? ArrowValues.String(batch.Column(regionColumn), i) : null;
                    if (rules.Types[type].Canonicalize(utf8, region, buffer, out var written) == NormalizeStatus.Ok)
                    {
                        ids.Add((type, Encoding.UTF8.GetString(buffer, 0, written)));
                    }
                }
                if (ids.Count > 0)
                {
                    state.Rows.Add((ts, ids, matched));
                }
                matched = null;
            }
        }, source.ScanOptions(Environment.ProcessorCount), cancellationToken);

        var rows = states.SelectMany(s => s.Rows).ToList();
        var seenByName = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        foreach (var column in filterColumns)
        {
            var set = new HashSet<string>(StringComparer.Ordinal);
            foreach (var state in states)
            {
                if (state.Seen.TryGetValue(column, out var part))
                {
                    set.UnionWith(part);
                }
            }
            seenByName[specs[column].Name] = set;
        }
        return (rows, seenByName);
    }

    /// <summary>One filter condition over one batch's column: for a dictionary array, decided once per entry.</summary>
    private readonly struct Matcher
    {
        private readonly IArrowArray _array;
        private readonly HashSet<string> _values;
        private readonly IArrowArray? _indices;
        private readonly bool[]? _entries;

        public Matcher(IArrowArray array, HashSet<string> values)
        {
            _array = array;
            _values = values;
            if (array is DictionaryArray { Dictionary: StringArray dictionary } d)
            {
                _indices = d.Indices;
                _entries = new bool[dictionary.Length];
                for (var e = 0; e < _entries.Length; e++)
                {
                    _entries[e] = !dictionary.IsNull(e) && values.Contains(dictionary.GetString(e));
                }
            }
        }

        public bool Matches(int row)
        {
            if (_entries is null)
            {
                return ArrowValues.String(_array, row) is { } value && _values.Contains(value);
            }
            if (_array.IsNull(row))
            {
                return false;
            }
            return _entries[Matching.ArrowValues.Index(_indices!, row)];
        }
    }

    /// <summary>Every filter value must occur in the source: one that never does is a typo, reported at its line.</summary>
    private static void CheckValues(OutcomeDefinition[] outcomes, Dictionary<string, HashSet<string>> seen, SourceDefinition source)
    {
        var errors = new List<WorkspaceError>();
        foreach (var outcome in outcomes)
        {
            foreach (var filter in outcome.Filters)
            {
                var values = seen.GetValueOrDefault(filter.Column) ?? [];
                if (values.Count >= MaxDistinct)
                {
                    continue;
                }
                foreach (var value in filter.Values.Where(v => !values.Contains(v)))
                {
                    var hint = Suggestions.Nearest(value, values) is { } nearest ? $" (did you mean '{nearest}'?)"
                        : values.Count is > 0 and <= 30 ? $" (it has: {string.Join(", ", values.Order(StringComparer.Ordinal))})" : "";
                    errors.Add(new WorkspaceError(outcome.File, filter.Line, filter.Position,
                        $"outcome '{outcome.Name}': no row of source '{source.Name}' has {filter.Column} '{value}'{hint}"));
                }
            }
        }
        if (errors.Count > 0)
        {
            throw new WorkspaceException(errors);
        }
    }
}
