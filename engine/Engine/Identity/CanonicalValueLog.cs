using System.IO.MemoryMappedFiles;

namespace Engine.Identity;

/// <summary>
/// The canonical value of every identifier, in id order, spilled to a local scratch file as the graph is built: the
/// graph itself holds only 128-bit keys, and the identity output needs each value exactly once more, when it is
/// written. Records are a LEB128 length and the UTF-8 bytes. Append-only, one writer; read back in any order of ids
/// (<see cref="ReadInOrder"/>, through a memory map and each record's offset).
/// </summary>
public sealed class CanonicalValueLog : IDisposable
{
    private const int BufferSize = 1 << 20;

    private readonly string _path;
    private readonly FileStream _file;
    private readonly byte[] _buffer = new byte[BufferSize];
    private int _used;
    private long _flushed;
    private long[] _offsets;
    private readonly Lock _gate = new();

    /// <summary>
    /// Creates the log as a new file in <paramref name="directory"/> (deleted on dispose), with room for the offsets of
    /// <paramref name="expected"/> values before it grows.
    /// </summary>
    public CanonicalValueLog(string directory, int expected = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(expected);
        _offsets = new long[Math.Max(expected, 1024)];
        Directory.CreateDirectory(directory);
        _path = Path.Combine(directory, $"identity-values-{Guid.NewGuid():N}.bin");
        // DeleteOnClose: the scratch file goes away even when the process dies.
        _file = new FileStream(_path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.DeleteOnClose | FileOptions.SequentialScan);
    }

    /// <summary>Values appended.</summary>
    public long Count { get; private set; }


    /// <summary>Appends the value of the next id.</summary>
    public void Append(ReadOnlySpan<byte> value)
    {
        if (Count == _offsets.Length)
        {
            System.Array.Resize(ref _offsets, _offsets.Length * 2);
        }
        _offsets[Count] = _flushed + _used;
        var need = value.Length + 5;
        if (_used + need > _buffer.Length)
        {
            Flush();
        }
        if (need > _buffer.Length)
        {
            WriteLength(_buffer, ref _used, value.Length);
            Flush();
            _file.Write(value);
            _flushed += value.Length;
        }
        else
        {
            WriteLength(_buffer, ref _used, value.Length);
            value.CopyTo(_buffer.AsSpan(_used));
            _used += value.Length;
        }
        Count++;
    }

    /// <summary>A visitor of one value: the state, the id and the bytes (valid only during the call).</summary>
    public delegate void ReadOnlySpanAction<in TState>(TState state, long id, ReadOnlySpan<byte> value);

    private void Flush()
    {
        if (_used > 0)
        {
            _file.Write(_buffer, 0, _used);
            _flushed += _used;
            _used = 0;
        }
    }

    // Ids read through one memory-mapped window. A mapping's pages count in the process's resident set until it is
    // unmapped, so one map of the whole file would have added all of it (over a GB at 10M people) by the end of the
    // write; a window per chunk holds only the chunk's stretch of the file, which is short, since the output's order
    // (where values were first met) is close to the order their ids were given in.
    internal const int WindowIds = 1 << 16;

    /// <summary>
    /// Visits the values of the ids in <paramref name="order"/>, in that order (e.g. key order while the log is in
    /// the order ids were assigned): the file is memory-mapped, a window per chunk of ids, and each record found by its
    /// offset, so a value is one read from the page cache, not a seek. Once appending is over, several threads may
    /// read at once (an output written as several files in parallel).
    /// </summary>
    public unsafe void ReadInOrder<TState>(ReadOnlySpan<int> order, TState state, ReadOnlySpanAction<TState> visit)
    {
        ArgumentNullException.ThrowIfNull(visit);
        long length;
        MemoryMappedFile? mapped = null;
        lock (_gate)
        {
            Flush();
            _file.Flush();
            length = _file.Length;
            if (length > 0)
            {
                mapped = MemoryMappedFile.CreateFromFile(_file, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: true);
            }
        }
        if (mapped is null)
        {
            foreach (var id in order)
            {
                visit(state, id, []);
            }
            return;
        }
        using var map = mapped;
        for (var first = 0; first < order.Length; first += WindowIds)
        {
            var chunk = order.Slice(first, Math.Min(WindowIds, order.Length - first));
            // The chunk's stretch of the file: records lie end to end in id order, so one ends where the next begins.
            long low = long.MaxValue, high = 0;
            foreach (var id in chunk)
            {
                if ((uint)id >= (ulong)Count)
                {
                    throw new ArgumentOutOfRangeException(nameof(order), id, "no value was logged for this id");
                }
                low = Math.Min(low, _offsets[id]);
                high = Math.Max(high, id + 1 < Count ? _offsets[id + 1] : length);
            }
            using var view = map.CreateViewAccessor(low, high - low, MemoryMappedFileAccess.Read);
            byte* start = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref start);
            try
            {
                // The view begins at a page boundary at or before low.
                var window = start + view.PointerOffset;
                foreach (var id in chunk)
                {
                    var at = _offsets[id] - low;
                    var record = new ReadOnlySpan<byte>(window + at, (int)Math.Min(int.MaxValue, high - low - at));
                    var position = 0;
                    var size = ReadLength(record, ref position);
                    visit(state, id, record.Slice(position, size));
                }
            }
            finally
            {
                view.SafeMemoryMappedViewHandle.ReleasePointer();
            }
        }
    }

    private static void WriteLength(byte[] buffer, ref int position, int length)
    {
        var v = (uint)length;
        while (v >= 0x80)
        {
            buffer[position++] = (byte)(v | 0x80);
            v >>= 7;
        }
        buffer[position++] = (byte)v;
    }

    private static int ReadLength(ReadOnlySpan<byte> buffer, ref int position)
    {
        var result = 0;
        var shift = 0;
        while (true)
        {
            var b = buffer[position++];
            result |= (b & 0x7F) << shift;
            if (b < 0x80)
            {
                return result;
            }
            shift += 7;
        }
    }


    public void Dispose() => _file.Dispose();
}
