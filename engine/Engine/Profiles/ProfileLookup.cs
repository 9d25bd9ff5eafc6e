using System.Numerics;
using Engine.Identity;
using Engine.Storage;

namespace Engine.Profiles;

/// <summary>
/// The run's <c>identity/</c> output as a hash table: identifier key (type, canonical value) → profile row, where
/// rows number the distinct non-null profile ids in ascending order. A shared value (NULL profile) is kept with row
/// -1, so it maps to nothing. Read-only once built: scan workers look keys up concurrently without locks.
/// </summary>
internal sealed class ProfileLookup
{
    private readonly IdentifierTable? _table;
    private readonly int[] _rowOf;
    private readonly int _identifiers;

    // Where to read the table back from when it was let go and a row must be resolved after all, and the read.
    private readonly (StorageLocation Location, IdentityRules Rules)? _output;
    private ProfileLookup? _readBack;

    private ProfileLookup(IdentifierTable? table, int[] rowOf, long[] profileIds, RowProfiles? rows = null, (StorageLocation, IdentityRules)? output = null)
    {
        _table = table;
        _identifiers = rowOf.Length;
        _rowOf = table is null ? [] : rowOf;
        ProfileIds = profileIds;
        Rows = rows;
        _output = output;
    }

    /// <summary>Each row's profile row for the source files the identity stage read in this process; null when the lookup was read from <c>identity/</c>.</summary>
    public RowProfiles? Rows { get; }

    /// <summary>
    /// Whether identifiers can be looked up here (<see cref="RowOf"/>, <see cref="RowsOf"/>): not when every row the
    /// identity stage read has its profile in <see cref="Rows"/>, and the table was let go (see <see cref="ResolvingAsync"/>).
    /// </summary>
    public bool CanResolve => _table is not null;

    /// <summary>
    /// A lookup that can resolve identifiers into these same profile rows: this one, or, when its table was let go,
    /// <c>identity/</c> read back (once), for rows that must be resolved after all — a file that changed or appeared
    /// since the identity stage read it.
    /// </summary>
    public async Task<ProfileLookup> ResolvingAsync(int parallelism, CancellationToken cancellationToken)
    {
        if (_table is not null)
        {
            return this;
        }
        if (_readBack is null)
        {
            var (location, rules) = _output!.Value;
            var read = Read(await Dataset.OpenAsync(location, DataFormat.Parquet, cancellationToken), rules, parallelism, cancellationToken);
            if (!read.ProfileIds.AsSpan().SequenceEqual(ProfileIds))
            {
                throw new DataException(location.ToString(), "does not hold the profiles this run's identity stage made: was it replaced during the run? Run again");
            }
            _readBack = read;
        }
        return _readBack;
    }

    /// <summary>The profile ids, ascending: row i of the profile table is <c>ProfileIds[i]</c>.</summary>
    public long[] ProfileIds { get; }

    public int Profiles => ProfileIds.Length;

    /// <summary>Identifiers read.</summary>
    public int Identifiers => _identifiers;

    /// <summary>The profile row of an identifier, or -1 when it is unknown or shared.</summary>
    public int RowOf(in IdentifierKey key) => Table.TryGet(key, out var id) ? _rowOf[id] : -1;

    private IdentifierTable Table => _table ?? throw new InvalidOperationException("this lookup let its table go: use ResolvingAsync");

    /// <summary>
    /// <see cref="RowOf"/> for many keys, looked up in chunks with the table's slots prefetched
    /// (<see cref="IdentifierTable.TryGet(ReadOnlySpan{IdentifierKey}, Span{int})"/>): independent lookups keep several
    /// cache misses in flight instead of one at a time.
    /// </summary>
    public void RowsOf(ReadOnlySpan<IdentifierKey> keys, Span<int> rows)
    {
        Table.TryGet(keys, rows);
        for (var i = 0; i < rows.Length; i++)
        {
            rows[i] = rows[i] < 0 ? -1 : _rowOf[rows[i]];
        }
    }

    /// <summary>Per-worker buffer of (key, profile id) pairs read from <c>identity/</c>.</summary>
    private sealed class Chunk
    {
        public IdentifierKey[] Keys = new IdentifierKey[4096];
        public long[] Profiles = new long[4096];
        public int Count;

        public void Add(IdentifierKey key, long profile)
        {
            if (Count == Keys.Length)
            {
                System.Array.Resize(ref Keys, Count * 2);
                System.Array.Resize(ref Profiles, Count * 2);
            }
            Keys[Count] = key;
            Profiles[Count] = profile;
            Count++;
        }
    }

    /// <summary>
    /// Reads <paramref name="identity"/>: hashing runs on every worker, the table is filled once they are done. Types
    /// the rules do not define are skipped (no source can produce their keys).
    /// </summary>
    public static ProfileLookup Read(Dataset identity, IdentityRules rules, int parallelism, CancellationToken cancellationToken)
    {
        var chunks = IdentityOutput.ScanIdentifiers(identity, rules, () => new Chunk(), (chunk, typeId, value, profileId, _) =>
        {
            // A type the rules do not define: no source can produce its keys.
            if (typeId >= 0)
            {
                chunk.Add(IdentifierKey.Compute((byte)typeId, value), profileId);
            }
        }, ScanOptions.Default with { Parallelism = parallelism }, cancellationToken);

        var total = 0;
        foreach (var chunk in chunks)
        {
            total += chunk.Count;
        }
        var all = new long[total];
        var n = 0;
        foreach (var chunk in chunks)
        {
            for (var i = 0; i < chunk.Count; i++)
            {
                all[n++] = chunk.Profiles[i];
            }
        }
        var rows = ProfileRows(all);

        var table = new IdentifierTable(total);
        var rowOf = new int[total];
        var types = new byte[4096];
        var ids = new int[4096];
        foreach (var chunk in chunks)
        {
            if (ids.Length < chunk.Count)
            {
                types = new byte[chunk.Count];
                ids = new int[chunk.Count];
            }
            var first = table.Count;
            // Batched: the table computes and prefetches a chunk's buckets before probing them.
            table.GetOrAdd(chunk.Keys.AsSpan(0, chunk.Count), types.AsSpan(0, chunk.Count), ids.AsSpan(0, chunk.Count));
            for (var i = 0; i < chunk.Count; i++)
            {
                var id = ids[i];
                if (id != first + i)
                {
                    throw new DataException(identity.Location.ToString(), "an identifier appears twice: the identity output is damaged; run with --full-refresh");
                }
                rowOf[id] = chunk.Profiles[i] < 0 ? -1 : rows.RowOf(chunk.Profiles[i]);
            }
        }
        return new ProfileLookup(table, rowOf, rows.ProfileIds);
    }

    /// <summary>
    /// The lookup straight from the identity stage's own state, as <see cref="Read"/> would read it back from the
    /// output it wrote: <paramref name="table"/> (identifier key → the builder's id), <paramref name="rank"/> (builder
    /// id → node) and <paramref name="profileOf"/> (node → profile id, negative for a shared value). The table is
    /// taken over, not copied.
    /// </summary>
    public static ProfileLookup FromIdentity(IdentifierTable table, int[] rank, long[] profileOf)
        => FromIdentity(table, rank, profileOf, null, false, null, 1);

    /// <summary>
    /// <see cref="FromIdentity(IdentifierTable, int[], long[])"/>, with the rows the stage read given their profile
    /// rows (<see cref="Rows"/>) from <paramref name="hubs"/>. When those cover every file of every source
    /// (<paramref name="everyFileRead"/>: not an incremental read), the table is let go — 3 GB at ten million people —
    /// and read back from <paramref name="output"/> only if a row must be resolved after all.
    /// </summary>
    public static ProfileLookup FromIdentity(
        IdentifierTable table, int[] rank, long[] profileOf, RowHubs? hubs, bool everyFileRead,
        (StorageLocation Location, IdentityRules Rules)? output, int parallelism)
    {
        var map = ProfileRows(profileOf);
        var rowOf = new int[table.Count];
        // On every worker: each identifier's node is a random read into the node → profile array (54M of them at ten
        // million people), a cache miss apiece.
        var parts = Math.Clamp(parallelism, 1, Math.Max(1, rowOf.Length / (1 << 16)));
        Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, part =>
        {
            var to = (int)((long)rowOf.Length * (part + 1) / parts);
            for (var id = (int)((long)rowOf.Length * part / parts); id < to; id++)
            {
                var profile = profileOf[rank[id]];
                rowOf[id] = profile < 0 ? -1 : map.RowOf(profile);
            }
        });
        var rows = hubs?.ToProfileRows(rowOf, parallelism);
        var letGo = rows is { EveryFileRecorded: true } && everyFileRead && output is not null;
        return new ProfileLookup(letGo ? null : table, rowOf, map.ProfileIds, rows, output);
    }

    /// <summary>Profile id → row: the distinct profile ids, ascending, and each one's place among them.</summary>
    private sealed class ProfileRowMap(long[] profileIds, int[]? direct)
    {
        public long[] ProfileIds { get; } = profileIds;

        /// <summary>The row of <paramref name="profile"/>, one of <see cref="ProfileIds"/>.</summary>
        public int RowOf(long profile) => direct is not null ? direct[profile] : System.Array.BinarySearch(ProfileIds, profile);
    }

    /// <summary>The distinct profile ids of <paramref name="profiles"/> (negative: none), ascending, and each one's row.</summary>
    private static ProfileRowMap ProfileRows(ReadOnlySpan<long> profiles)
    {
        long max = -1;
        foreach (var profile in profiles)
        {
            max = Math.Max(max, profile);
        }
        if (max < 0)
        {
            return new ProfileRowMap([], null);
        }
        long[] profileIds;
        if (max < 8L * profiles.Length + 1024)
        {
            // Profile ids are never reused, so they stay within a small multiple of the profiles alive: a bit per id
            // finds the distinct ones, in order, in two passes (at ten million people, 54M identifiers' ids in a 3 MB
            // bitmap) where a sort of them took seconds.
            var present = new ulong[(max >> 6) + 1];
            foreach (var profile in profiles)
            {
                if (profile >= 0)
                {
                    present[profile >> 6] |= 1UL << (int)(profile & 63);
                }
            }
            var distinct = 0;
            foreach (var word in present)
            {
                distinct += BitOperations.PopCount(word);
            }
            profileIds = new long[distinct];
            var k = 0;
            for (var w = 0; w < present.Length; w++)
            {
                for (var bits = present[w]; bits != 0; bits &= bits - 1)
                {
                    profileIds[k++] = ((long)w << 6) + BitOperations.TrailingZeroCount(bits);
                }
            }
        }
        else
        {
            var sorted = profiles.ToArray().AsSpan();
            sorted.Sort();
            var distinct = 0;
            for (var i = 0; i < sorted.Length; i++)
            {
                if (sorted[i] >= 0 && (distinct == 0 || sorted[i] != sorted[distinct - 1]))
                {
                    sorted[distinct++] = sorted[i];
                }
            }
            profileIds = sorted[..distinct].ToArray();
        }

        // A direct array from id to row beats a binary search per identifier (21 dependent probes at 2.4M profiles)
        // while the ids are dense enough.
        if (profileIds[^1] >= 4L * profileIds.Length + 1024)
        {
            return new ProfileRowMap(profileIds, null);
        }
        var direct = new int[profileIds[^1] + 1];
        direct.AsSpan().Fill(-1);
        for (var r = 0; r < profileIds.Length; r++)
        {
            direct[profileIds[r]] = r;
        }
        return new ProfileRowMap(profileIds, direct);
    }
}
