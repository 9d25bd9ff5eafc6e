using Engine.Storage;

namespace Engine.Profiles;

/// <summary>
/// Each row's profile row, for the source files the identity stage read in this process (<see cref="Identity.RowHubs"/>):
/// the profiles stage and model training take a row's profile from here instead of resolving its identifier columns,
/// which they then do not read at all. A file is found by key and size, so a file that changed or appeared since the
/// identity stage read it is resolved as usual.
/// </summary>
internal sealed class RowProfiles(int filesGiven)
{
    private readonly Dictionary<(string Source, string Key), (long Size, int[] Rows)> _files = [];

    /// <summary>Files held.</summary>
    public int Files => _files.Count;

    /// <summary>Whether every file the identity stage was given to read is held (none left to resolve, e.g. for a shared value).</summary>
    public bool EveryFileRecorded => _files.Count == filesGiven;

    public void Add(string source, DataFile file, int[] rows) => _files[(source, file.Key)] = (file.Size, rows);

    /// <summary>The profile row (-1: none) of every row of <paramref name="file"/> of <paramref name="source"/>, or null when the identity stage did not read it as it is now.</summary>
    public int[]? Of(string source, DataFile file) =>
        _files.TryGetValue((source, file.Key), out var held) && held.Size == file.Size ? held.Rows : null;
}
