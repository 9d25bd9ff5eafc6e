namespace Engine.Storage.S3;

/// <summary>
/// A seekable read-only view of one S3 object that turns reads into ranged GETs. The object is never downloaded up
/// front: small reads fetch at least one block (read-ahead) and are served from a few cached blocks; the block that
/// holds the object's end is kept apart, because Parquet reads its footer first and comes back to it.
/// Large reads (pre-buffered column chunks, whose extent the Parquet reader knows) are fetched exactly, straight into
/// the caller's buffer: reading ahead of them would only fetch bytes of columns that were not asked for.
/// </summary>
internal sealed class S3ReadStream : Stream
{
    private const int RecentBlocks = 2;

    private readonly S3ObjectStore _store;
    private readonly string _key;
    private readonly long _length;
    private readonly int _blockSize;
    private readonly int _directReadSize;
    // Arrow's reader may call from several threads (pre-buffering, threaded decode); Seek+Read pairs are serialised
    // by its ReadAt, but this lock keeps the cache consistent whatever the caller does.
    private readonly Lock _lock = new();
    private readonly Block?[] _recent = new Block?[RecentBlocks];
    private Block? _tail;
    private int _nextSlot;
    private long _position;
    private bool _disposed;

    public S3ReadStream(S3ObjectStore store, string key, long length, int blockSize, int directReadSize)
    {
        _directReadSize = directReadSize;
        _store = store;
        _key = key;
        _length = length;
        _blockSize = blockSize;
    }

    public override bool CanRead => !_disposed;

    public override bool CanSeek => !_disposed;

    public override bool CanWrite => false;

    public override long Length
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _length;
        }
    }

    public override long Position
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _position;
        }
        set
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            _position = value;
        }
    }

    public override long Seek(long offset, SeekOrigin origin)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var target = origin switch
        {
            SeekOrigin.Begin => offset,
            SeekOrigin.Current => _position + offset,
            SeekOrigin.End => _length + offset,
            _ => throw new ArgumentOutOfRangeException(nameof(origin)),
        };
        if (target < 0)
        {
            throw new IOException($"{_store.Describe(_key)}: seek before the beginning of the object");
        }
        _position = target;
        return target;
    }

    public override int Read(byte[] buffer, int offset, int count)
    {
        ValidateBufferArguments(buffer, offset, count);
        return Read(buffer.AsSpan(offset, count));
    }

    public override int Read(Span<byte> buffer)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var total = 0;
            while (!buffer.IsEmpty && _position < _length)
            {
                var copied = CopyFromCache(_position, buffer);
                if (copied == 0)
                {
                    var wanted = (int)Math.Min(buffer.Length, _length - _position);
                    if (wanted < _directReadSize)
                    {
                        LoadBlock(_position);
                        continue;
                    }
                    copied = _store.ReadRange(_key, _position, buffer[..wanted]);
                    if (copied == 0)
                    {
                        throw ChangedWhileReading();
                    }
                }
                buffer = buffer[copied..];
                _position += copied;
                total += copied;
            }
            return total;
        }
    }

    private int CopyFromCache(long position, Span<byte> destination)
    {
        if (_tail is { } tail && tail.Contains(position))
        {
            return tail.CopyTo(position, destination);
        }
        foreach (var block in _recent)
        {
            if (block is not null && block.Contains(position))
            {
                return block.CopyTo(position, destination);
            }
        }
        return 0;
    }

    private void LoadBlock(long position)
    {
        var end = Math.Min(_length, position + _blockSize);
        // Near the end, read the last whole block instead: footer reads walk backwards from the end.
        var start = end - position < _blockSize ? Math.Max(0, end - _blockSize) : position;
        var data = new byte[end - start];
        if (_store.ReadRange(_key, start, data) != data.Length)
        {
            throw ChangedWhileReading();
        }
        var block = new Block(start, data);
        if (end == _length)
        {
            _tail = block;
        }
        else
        {
            _recent[_nextSlot] = block;
            _nextSlot = (_nextSlot + 1) % RecentBlocks;
        }
    }

    private DataException ChangedWhileReading()
        => new(_store.Describe(_key), $"the object ended before its size of {_length} bytes: it was replaced while being read; read it again");

    public override void Flush() { }

    public override void SetLength(long value) => throw new NotSupportedException("S3 objects are read-only streams");

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException("S3 objects are read-only streams");

    protected override void Dispose(bool disposing)
    {
        _disposed = true;
        _tail = null;
        Array.Clear(_recent);
        base.Dispose(disposing);
    }

    private sealed class Block(long offset, byte[] data)
    {
        public bool Contains(long position) => position >= offset && position < offset + data.Length;

        public int CopyTo(long position, Span<byte> destination)
        {
            var source = data.AsSpan((int)(position - offset));
            var count = Math.Min(source.Length, destination.Length);
            source[..count].CopyTo(destination);
            return count;
        }
    }
}
