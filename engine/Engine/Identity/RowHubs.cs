using Engine.Profiles;
using Engine.Storage;

namespace Engine.Identity;

/// <summary>
/// Each row's hub, as the identity stage reads it: per source file and row, the builder id of the row's most trusted
/// identifier (the one <see cref="IdentityGraphBuilder.Apply"/> links the row's others to), or -1 when it has none,
/// and whether the row holds another identifier after it. Once the graph is stitched, <see cref="ToProfileRows"/>
/// turns the hubs into each row's profile row, so that the stages after identity in the same run find a row's
/// profile with an array read instead of decoding, normalising, hashing and looking up its identifier columns again.
/// </summary>
/// <remarks>
/// Four bytes and a bit per row: 2 GB at ten million people (half a billion events). Filled by the scan's workers side
/// by side: each batch writes its own rows, and the bits it shares a word with a neighbouring batch are set atomically.
/// </remarks>
internal sealed class RowHubs
{
    private readonly List<SourceHubs> _sources = [];

    /// <summary>The recorder of one source's read, over the files of <paramref name="dataset"/> (as scanned: file indexes are its).</summary>
    public SourceHubs Source(string source, Dataset dataset)
    {
        var hubs = new SourceHubs(source, dataset.Files);
        _sources.Add(hubs);
        return hubs;
    }

    /// <summary>
    /// Turns every recorded file's hubs, in place, into each row's profile row (<paramref name="rowOf"/>: builder id →
    /// profile row, -1 for a shared value). A file is left out — its rows then resolved from their identifiers — when
    /// it was not read whole, or when a row's hub is a shared value and the row holds another identifier: that row's
    /// profile is the next identifier's, which the hub alone cannot tell. The recorder is spent afterwards.
    /// </summary>
    public RowProfiles ToProfileRows(int[] rowOf, int parallelism)
    {
        var files = _sources.SelectMany(s => s.Files.OfType<FileHubs>().Select(f => (s.Name, File: f))).ToArray();
        var converted = new int[]?[files.Length];
        Parallel.For(0, files.Length, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, parallelism) }, i =>
        {
            converted[i] = files[i].File.ToProfileRows(rowOf);
        });
        var result = new RowProfiles(filesGiven: _sources.Sum(s => s.Files.Length));
        for (var i = 0; i < files.Length; i++)
        {
            if (converted[i] is { } rows)
            {
                result.Add(files[i].Name, files[i].File.File, rows);
            }
        }
        _sources.Clear();
        return result;
    }
}

/// <summary>One source's share of <see cref="RowHubs"/>: a <see cref="FileHubs"/> per file, made when its first batch is applied.</summary>
internal sealed class SourceHubs
{
    private readonly IReadOnlyList<DataFile> _dataFiles;

    public SourceHubs(string name, IReadOnlyList<DataFile> files)
    {
        Name = name;
        _dataFiles = files;
        Files = new FileHubs?[files.Count];
    }

    public string Name { get; }

    /// <summary>By file index of the scanned dataset; null for a file not read.</summary>
    public FileHubs?[] Files { get; }

    /// <summary>
    /// The hubs of file <paramref name="fileIndex"/>, made on first use, for <paramref name="fileRows"/> rows (from
    /// a Parquet footer); -1 when the count is not known up front (CSV, whose file one worker reads in order): the
    /// file's hubs then grow as its batches come.
    /// </summary>
    public FileHubs File(int fileIndex, long fileRows) => Volatile.Read(ref Files[fileIndex]) ?? Make(fileIndex, fileRows);

    private readonly Lock _making = new();

    private FileHubs Make(int fileIndex, long fileRows)
    {
        // Once per file, by the first worker to reach it: the others wait rather than allocate a second array.
        lock (_making)
        {
            return Files[fileIndex] ??= new FileHubs(_dataFiles[fileIndex], fileRows);
        }
    }
}

/// <summary>One file's hubs: per row, the hub's builder id or -1, and a bit set when another identifier follows the hub.</summary>
internal sealed class FileHubs
{
    private int[] _hubs;
    private ulong[] _others;
    private readonly bool _sized;
    private long _recorded;

    /// <param name="file">The file.</param>
    /// <param name="rows">Its rows, or -1 when not known up front.</param>
    public FileHubs(DataFile file, long rows)
    {
        File = file;
        _sized = rows >= 0;
        var length = checked((int)(_sized ? rows : 1024));
        _hubs = GC.AllocateUninitializedArray<int>(length);
        _others = new ulong[(length + 63) / 64];
    }

    public DataFile File { get; }

    /// <summary>Records <paramref name="count"/> rows from <paramref name="first"/> with the same identifiers: their hub, and whether another follows it.</summary>
    public void Set(long first, int count, int hub, bool others)
    {
        var end = checked((int)(first + count));
        if (end > _hubs.Length)
        {
            if (_sized)
            {
                throw new InvalidOperationException($"{File.Key}: row {end - 1} is past the {_hubs.Length} rows its footer counts");
            }
            var length = (int)Math.Min(Array.MaxLength, Math.Max(end, 2L * _hubs.Length));
            Array.Resize(ref _hubs, length);
            Array.Resize(ref _others, (length + 63) / 64);
        }
        _hubs.AsSpan((int)first, count).Fill(hub);
        if (others)
        {
            // Word by word, atomically: the first and last words may hold another batch's rows, set by another worker.
            for (var r = first; r < end;)
            {
                var word = (int)(r >> 6);
                var to = Math.Min(end, ((long)word + 1) << 6);
                var bits = to - r == 64 ? ulong.MaxValue : ((1UL << (int)(to - r)) - 1) << (int)(r & 63);
                Interlocked.Or(ref _others[word], bits);
                r = to;
            }
        }
    }

    /// <summary>Counts rows recorded, so that a file not read whole is never taken for one that was.</summary>
    public void Recorded(int rows) => Interlocked.Add(ref _recorded, rows);

    /// <summary>The rows' profile rows, written over the hubs; null when the file must be resolved from its identifiers (see <see cref="RowHubs.ToProfileRows"/>).</summary>
    public int[]? ToProfileRows(int[] rowOf)
    {
        if (_sized && _recorded != _hubs.Length)
        {
            return null;
        }
        var hubs = _hubs.AsSpan(0, (int)_recorded);
        // A person's rows come together: look each hub up once per run of equal hubs.
        var last = int.MinValue;
        var profile = -1;
        for (var r = 0; r < hubs.Length; r++)
        {
            var hub = hubs[r];
            if (hub != last)
            {
                last = hub;
                profile = hub < 0 ? -1 : rowOf[hub];
            }
            if (profile < 0 && hub >= 0 && (_others[r >> 6] & (1UL << (r & 63))) != 0)
            {
                return null;
            }
            hubs[r] = profile;
        }
        if (_hubs.Length != _recorded)
        {
            // A grown array (CSV) is cut to the file's rows, so that its length says how many the file had.
            Array.Resize(ref _hubs, (int)_recorded);
        }
        return _hubs;
    }
}
