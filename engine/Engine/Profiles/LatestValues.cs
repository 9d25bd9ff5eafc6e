using System.Text;
using Engine.Storage;
using Engine.Workspaces;

namespace Engine.Profiles;

/// <summary>
/// Resolves the <see cref="FilterOperator.InLatest"/> conditions of a profiles definition into IN lists: for each
/// such trait, the N latest distinct values of the column, ranked by the first event before as-of that carries the
/// value and passes the trait's other conditions (newest first; equal times: the larger value first). Its window does
/// not narrow the ranking: "the last three campaigns" are the same whichever window counts the opens. One scan per
/// source over the time column and the filter columns only, before the profiles stage's main scan.
/// </summary>
internal static class LatestValues
{
    /// <summary>
    /// Returns <paramref name="definition"/> with every <c>in_latest</c> condition replaced by an <c>in</c> over the
    /// values found (an empty list, which no event passes, when there are none), and the values per trait name.
    /// </summary>
    public static async Task<(ProfilesDefinition Definition, Dictionary<string, List<string>> Values)> ResolveAsync(
        ProfilesDefinition definition, Func<SourceDefinition, Task<Dataset>> open, IReadOnlyList<SourceDefinition> sources,
        long asOf, int parallelism, CancellationToken cancellationToken)
    {
        var found = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        if (!definition.Traits.Any(t => t.Conditions.Any(c => c.Operator == FilterOperator.InLatest)))
        {
            return (definition, found);
        }
        var traits = definition.Traits.ToArray();
        foreach (var source in sources)
        {
            var wanted = new List<int>();
            for (var t = 0; t < traits.Length; t++)
            {
                if (traits[t].Source == source.Name && traits[t].Conditions.Any(c => c.Operator == FilterOperator.InLatest))
                {
                    wanted.Add(t);
                }
            }
            if (wanted.Count == 0)
            {
                continue;
            }
            var specs = new List<ColumnSpec>();
            int Position(string column)
            {
                var index = specs.FindIndex(s => s.Name == column);
                if (index < 0)
                {
                    index = specs.Count;
                    specs.Add(source.Schema.Find(column)
                        ?? throw new EngineException($"source '{source.Name}': column '{column}' is not declared in its columns ({source.File})"));
                }
                return index;
            }
            var plans = wanted.Select(t =>
            {
                var trait = traits[t];
                var latest = trait.Conditions.Single(c => c.Operator == FilterOperator.InLatest);
                return new TraitPlan(
                    t, Position(trait.Timestamp), Position(latest.Column), (int)(long)latest.Values[0],
                    [.. trait.Conditions.Where(c => c.Operator != FilterOperator.InLatest).Select(c => (c, Position(c.Column)))]);
            }).ToArray();

            var states = DatasetScan.Run(
                await open(source), specs, () => new Worker(specs, plans, asOf), (worker, scan) => worker.Consume(scan),
                source.ScanOptions(Math.Max(1, parallelism)), cancellationToken);

            for (var p = 0; p < plans.Length; p++)
            {
                var plan = plans[p];
                var trait = traits[plan.Trait];
                var latest = trait.Conditions.Single(c => c.Operator == FilterOperator.InLatest);
                var kind = BatchColumn.KindOf(latest.Type);
                List<object> values;
                if (kind == ValueKind.String)
                {
                    var firstSeen = new Dictionary<string, long>(StringComparer.Ordinal);
                    foreach (var worker in states)
                    {
                        MergeMin(firstSeen, worker.Strings[p]);
                    }
                    values = [.. firstSeen.OrderByDescending(e => e.Value).ThenByDescending(e => e.Key, StringComparer.Ordinal)
                        .Take(plan.Count).Select(e => (object)e.Key)];
                }
                else
                {
                    var firstSeen = new Dictionary<long, long>();
                    foreach (var worker in states)
                    {
                        MergeMin(firstSeen, worker.Longs[p]);
                    }
                    values = [.. firstSeen.OrderByDescending(e => e.Value).ThenByDescending(e => e.Key).Take(plan.Count).Select(e => (object)e.Key)];
                }
                found[trait.Name] = [.. values.Select(v => Describe(v, latest.Type))];
                traits[plan.Trait] = trait with
                {
                    Conditions = [.. trait.Conditions.Select(c => c.Operator == FilterOperator.InLatest ? c with { Operator = FilterOperator.In, Values = values } : c)],
                };
            }
        }
        return (new ProfilesDefinition(definition.Survivorship, definition.AttributeSources, traits), found);
    }

    private static void MergeMin<TKey>(Dictionary<TKey, long> target, Dictionary<TKey, long> source) where TKey : notnull
    {
        foreach (var (key, ts) in source)
        {
            if (!target.TryGetValue(key, out var seen) || ts < seen)
            {
                target[key] = ts;
            }
        }
    }

    /// <summary>A value as the manifest shows it: strings as they are, dates and times in ISO 8601.</summary>
    private static string Describe(object value, ColumnType type) => type switch
    {
        ColumnType.String => (string)value,
        ColumnType.Timestamp => DateTimeOffset.UnixEpoch.AddTicks((long)value * 10).ToString("yyyy-MM-ddTHH:mm:ss.ffffffZ", System.Globalization.CultureInfo.InvariantCulture),
        ColumnType.Date => DateOnly.FromDayNumber(DateOnly.FromDateTime(DateTime.UnixEpoch).DayNumber + (int)(long)value).ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture),
        _ => ((long)value).ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    /// <summary>One trait's ranking: its index, the time and ranked columns' positions, how many values, its other conditions.</summary>
    private sealed record TraitPlan(int Trait, int Time, int Column, int Count, (TraitCondition Condition, int Column)[] Conditions);

    /// <summary>One scan worker: the first time each value was seen, per trait.</summary>
    private sealed class Worker
    {
        private readonly TraitPlan[] _plans;
        private readonly long _asOf;
        private readonly BatchColumn[] _columns;
        private readonly BoundCondition[][] _conditions;
        private byte[] _pass = [];
        private long[] _entryFirst = [];
        private char[] _chars = new char[256];

        public Worker(List<ColumnSpec> specs, TraitPlan[] plans, long asOf)
        {
            _plans = plans;
            _asOf = asOf;
            _columns = [.. specs.Select((s, i) => new BatchColumn(s.Name, s.Type, i))];
            _conditions = [.. plans.Select(p => p.Conditions.Select(c => new BoundCondition(c.Condition, _columns[c.Column])).ToArray())];
            Strings = [.. plans.Select(_ => new Dictionary<string, long>(StringComparer.Ordinal))];
            Longs = [.. plans.Select(_ => new Dictionary<long, long>())];
        }

        public Dictionary<string, long>[] Strings { get; }

        public Dictionary<long, long>[] Longs { get; }

        public void Consume(ScanBatch scan)
        {
            var n = scan.Batch.Length;
            foreach (var column in _columns)
            {
                column.Load(scan.Batch, scan.Location);
            }
            if (_pass.Length < n)
            {
                _pass = new byte[n];
            }
            var pass = _pass.AsSpan(0, n);
            for (var p = 0; p < _plans.Length; p++)
            {
                var plan = _plans[p];
                var time = _columns[plan.Time];
                var ts = time.Longs;
                var timeValid = time.Valid;
                var column = _columns[plan.Column];
                var valid = column.Valid;
                for (var i = 0; i < n; i++)
                {
                    pass[i] = timeValid[i] != 0 && ts[i] < _asOf && valid[i] != 0 ? (byte)1 : (byte)0;
                }
                foreach (var condition in _conditions[p])
                {
                    condition.Apply(pass);
                }
                if (column.Kind == ValueKind.String)
                {
                    AddStrings(column, pass, ts, Strings[p]);
                }
                else
                {
                    var values = column.Longs;
                    var firstSeen = Longs[p];
                    for (var i = 0; i < n; i++)
                    {
                        if (pass[i] != 0)
                        {
                            ref var seen = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(firstSeen, values[i], out var exists);
                            seen = exists ? Math.Min(seen, ts[i]) : ts[i];
                        }
                    }
                }
            }
        }

        /// <summary>
        /// Folds the passing rows' strings into <paramref name="firstSeen"/>. A dictionary column is reduced per entry
        /// first, so each distinct value is decoded once per batch; lookups go by span, allocating only for new values.
        /// </summary>
        private void AddStrings(BatchColumn column, ReadOnlySpan<byte> pass, ReadOnlySpan<long> ts, Dictionary<string, long> firstSeen)
        {
            var lookup = firstSeen.GetAlternateLookup<ReadOnlySpan<char>>();
            var codes = column.Codes;
            if (column.IsDictionary)
            {
                var entries = column.Entries.Length;
                if (_entryFirst.Length < entries)
                {
                    _entryFirst = new long[Math.Max(entries, 64)];
                }
                var first = _entryFirst.AsSpan(0, entries);
                first.Fill(long.MaxValue);
                for (var i = 0; i < pass.Length; i++)
                {
                    if (pass[i] != 0 && ts[i] < first[codes[i]])
                    {
                        first[codes[i]] = ts[i];
                    }
                }
                for (var e = 0; e < entries; e++)
                {
                    if (first[e] != long.MaxValue)
                    {
                        Fold(lookup, column.Entry(e), first[e]);
                    }
                }
                return;
            }
            for (var i = 0; i < pass.Length; i++)
            {
                if (pass[i] != 0)
                {
                    Fold(lookup, column.Entry(codes[i]), ts[i]);
                }
            }
        }

        private void Fold(Dictionary<string, long>.AlternateLookup<ReadOnlySpan<char>> lookup, ReadOnlySpan<byte> utf8, long ts)
        {
            if (_chars.Length < utf8.Length)
            {
                _chars = new char[Math.Max(utf8.Length, _chars.Length * 2)];
            }
            var chars = _chars.AsSpan(0, Encoding.UTF8.GetChars(utf8, _chars));
            if (lookup.TryGetValue(chars, out var seen))
            {
                if (ts < seen)
                {
                    lookup[chars] = ts;
                }
            }
            else
            {
                lookup[chars] = ts;
            }
        }
    }
}
