using System.Buffers;

namespace Engine.Identity;

/// <summary>
/// The canonical value of every identifier, in id order, spilled to a local scratch file as the graph is built: the
/// graph itself holds only 128-bit keys, and the identity output needs each value exactly once more, when it is
/// written. Records are a LEB128 length and the UTF-8 bytes. Append-only, one writer; read back once, in order.
/// </summary>
public sealed class CanonicalValueLog : IDisposable
{
    private const int BufferSize = 1 << 20;

    private readonly string _path;
    private readonly FileStream _file;
    private readonly byte[] _buffer = new byte[BufferSize];
    private int _used;

    /// <summary>Creates the log as a new file in <paramref name="directory"/> (deleted on dispose).</summary>
    public CanonicalValueLog(string directory)
    {
        Directory.CreateDirectory(directory);
        _path = Path.Combine(directory, $"identity-values-{Guid.NewGuid():N}.bin");
        // DeleteOnClose: the scratch file goes away even when the process dies.
        _file = new FileStream(_path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.DeleteOnClose | FileOptions.SequentialScan);
    }

    /// <summary>Values appended.</summary>
    public long Count { get; private set; }

    /// <summary>Bytes appended (lengths included).</summary>
    public long Bytes { get; private set; }

    /// <summary>Appends the value of the next id.</summary>
    public void Append(ReadOnlySpan<byte> value)
    {
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
        }
        else
        {
            WriteLength(_buffer, ref _used, value.Length);
            value.CopyTo(_buffer.AsSpan(_used));
            _used += value.Length;
        }
        Count++;
        Bytes += need - 5 + LengthBytes(value.Length);
    }

    /// <summary>Reads every value back in id order; <paramref name="visit"/> gets the id and the value's bytes.</summary>
    public void ReadAll(Action<long, ReadOnlySpan<byte>> visit) => ReadAll(visit, static (v, id, value) => v(id, value));

    /// <summary>Reads every value back in id order with a state object (no closure per call).</summary>
    public void ReadAll<TState>(TState state, ReadOnlySpanAction<TState> visit)
    {
        ArgumentNullException.ThrowIfNull(visit);
        Flush();
        _file.Flush();
        _file.Position = 0;
        var buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        try
        {
            var filled = 0;
            var position = 0;
            long id = 0;
            while (id < Count)
            {
                // Make sure a whole length prefix, then a whole value, is in the buffer.
                if (filled - position < 5 && !Refill(buffer, ref filled, ref position, 5))
                {
                    break;
                }
                var length = ReadLength(buffer, ref position);
                if (filled - position < length)
                {
                    if (length > buffer.Length)
                    {
                        var big = new byte[length];
                        var have = filled - position;
                        buffer.AsSpan(position, have).CopyTo(big);
                        _file.ReadExactly(big, have, length - have);
                        visit(state, id++, big);
                        filled = position = 0;
                        continue;
                    }
                    Refill(buffer, ref filled, ref position, length);
                }
                visit(state, id++, buffer.AsSpan(position, length));
                position += length;
            }
            if (id != Count)
            {
                throw new IOException($"identity scratch file {_path} ended after {id} of {Count} values");
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            _file.Position = _file.Length;
        }
    }

    /// <summary>A visitor of one value: the state, the id and the bytes (valid only during the call).</summary>
    public delegate void ReadOnlySpanAction<in TState>(TState state, long id, ReadOnlySpan<byte> value);

    private bool Refill(byte[] buffer, ref int filled, ref int position, int need)
    {
        var have = filled - position;
        buffer.AsSpan(position, have).CopyTo(buffer);
        filled = have;
        position = 0;
        while (filled < need)
        {
            var read = _file.Read(buffer, filled, buffer.Length - filled);
            if (read == 0)
            {
                return filled > 0;
            }
            filled += read;
        }
        return true;
    }

    private void Flush()
    {
        if (_used > 0)
        {
            _file.Write(_buffer, 0, _used);
            _used = 0;
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

    private static int ReadLength(byte[] buffer, ref int position)
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

    private static int LengthBytes(int length) => length < 0x80 ? 1 : length < 0x4000 ? 2 : length < 0x200000 ? 3 : length < 0x10000000 ? 4 : 5;

    public void Dispose() => _file.Dispose();
}
