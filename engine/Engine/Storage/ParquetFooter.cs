using System.Buffers.Binary;

namespace Engine.Storage;

/// <summary>
/// Reads the one figure of a Parquet footer that ParquetSharp cannot give: whether a column chunk's statistics carry
/// a null count. Its <c>Statistics.NullCount</c> reads an absent count as 0 (there is no <c>HasNullCount</c>), and
/// writers do leave it out: parquet-mr, for one, writes an empty statistics struct for a chunk whose values are too
/// long for statistics. So the footer's Thrift (compact protocol) is walked here, skipping everything but
/// <c>FileMetaData.row_groups[].columns[].meta_data.statistics.null_count</c>.
/// </summary>
internal static class ParquetFooter
{
    private const int MaxDepth = 64;

    /// <summary>
    /// The null count of every column chunk ([row group][leaf column]), null where its statistics carry none; null
    /// altogether when <paramref name="file"/>'s tail is not a plain footer (an encrypted one: "PARE") or cannot be
    /// walked. Reads the footer's bytes again: one small read locally; on S3 the stream keeps the tail block the
    /// reader already fetched.
    /// </summary>
    public static long?[][]? NullCounts(Stream file)
    {
        var length = file.Length;
        if (length < 12)
        {
            return null;
        }
        Span<byte> tail = stackalloc byte[8];
        file.Seek(length - 8, SeekOrigin.Begin);
        file.ReadExactly(tail);
        if (!tail[4..].SequenceEqual("PAR1"u8))
        {
            return null;
        }
        var size = BinaryPrimitives.ReadInt32LittleEndian(tail);
        if (size <= 0 || size > length - 12)
        {
            return null;
        }
        var metadata = new byte[size];
        file.Seek(length - 8 - size, SeekOrigin.Begin);
        file.ReadExactly(metadata);
        return NullCounts(metadata);
    }

    /// <summary>The null counts of a serialised <c>FileMetaData</c>; null when it cannot be walked.</summary>
    public static long?[][]? NullCounts(ReadOnlySpan<byte> metadata)
    {
        try
        {
            var reader = new CompactReader(metadata);
            return FileMetaData(ref reader);
        }
        catch (FormatException)
        {
            return null;
        }
    }

    // Compact protocol type ids.
    private const byte Stop = 0, BoolTrue = 1, BoolFalse = 2, Byte = 3, I16 = 4, I32 = 5, I64 = 6, Double = 7, Binary = 8,
        List = 9, Set = 10, Map = 11, Struct = 12, Uuid = 13;

    private static long?[][] FileMetaData(ref CompactReader reader)
    {
        long?[][] rowGroups = [];
        short field = 0;
        while (reader.FieldHeader(ref field) is var type && type != Stop)
        {
            if (field == 4 && type == List)
            {
                var (count, element) = reader.ListHeader();
                Expect(element == Struct);
                rowGroups = new long?[count][];
                for (var g = 0; g < count; g++)
                {
                    rowGroups[g] = RowGroup(ref reader);
                }
            }
            else
            {
                reader.Skip(type, 0);
            }
        }
        return rowGroups;
    }

    private static long?[] RowGroup(ref CompactReader reader)
    {
        long?[] columns = [];
        short field = 0;
        while (reader.FieldHeader(ref field) is var type && type != Stop)
        {
            if (field == 1 && type == List)
            {
                var (count, element) = reader.ListHeader();
                Expect(element == Struct);
                columns = new long?[count];
                for (var c = 0; c < count; c++)
                {
                    columns[c] = ColumnChunk(ref reader);
                }
            }
            else
            {
                reader.Skip(type, 1);
            }
        }
        return columns;
    }

    private static long? ColumnChunk(ref CompactReader reader)
    {
        long? nulls = null;
        short field = 0;
        while (reader.FieldHeader(ref field) is var type && type != Stop)
        {
            if (field == 3 && type == Struct)
            {
                nulls = ColumnMetaData(ref reader);
            }
            else
            {
                reader.Skip(type, 2);
            }
        }
        return nulls;
    }

    private static long? ColumnMetaData(ref CompactReader reader)
    {
        long? nulls = null;
        short field = 0;
        while (reader.FieldHeader(ref field) is var type && type != Stop)
        {
            if (field == 12 && type == Struct)
            {
                nulls = Statistics(ref reader);
            }
            else
            {
                reader.Skip(type, 3);
            }
        }
        return nulls;
    }

    private static long? Statistics(ref CompactReader reader)
    {
        long? nulls = null;
        short field = 0;
        while (reader.FieldHeader(ref field) is var type && type != Stop)
        {
            if (field == 3 && type == I64)
            {
                nulls = reader.ZigZag();
            }
            else
            {
                reader.Skip(type, 4);
            }
        }
        return nulls;
    }

    private static void Expect(bool condition)
    {
        if (!condition)
        {
            throw new FormatException("unexpected Thrift type in the Parquet footer");
        }
    }

    /// <summary>A forward reader over Thrift compact protocol bytes; malformed input throws <see cref="FormatException"/>.</summary>
    private ref struct CompactReader(ReadOnlySpan<byte> bytes)
    {
        private readonly ReadOnlySpan<byte> _bytes = bytes;
        private int _position;

        /// <summary>The next field's type (0 at the struct's end), advancing <paramref name="field"/> to its id.</summary>
        public byte FieldHeader(ref short field)
        {
            var header = ReadByte();
            var type = (byte)(header & 0x0F);
            if (type == Stop)
            {
                return Stop;
            }
            var delta = header >> 4;
            field = delta != 0 ? (short)(field + delta) : (short)ZigZag();
            return type;
        }

        public (int Count, byte Element) ListHeader()
        {
            var header = ReadByte();
            var count = header >> 4;
            if (count == 15)
            {
                var size = Varint();
                // Each element takes at least a byte: a larger count is corrupt, not a huge list.
                if (size > (ulong)(_bytes.Length - _position))
                {
                    throw new FormatException("list longer than the Parquet footer");
                }
                count = (int)size;
            }
            return (count, (byte)(header & 0x0F));
        }

        public long ZigZag()
        {
            var value = Varint();
            return (long)(value >> 1) ^ -(long)(value & 1);
        }

        /// <summary>Skips one value of <paramref name="type"/>.</summary>
        public void Skip(byte type, int depth)
        {
            if (depth > MaxDepth)
            {
                throw new FormatException("Parquet footer nested too deeply");
            }
            switch (type)
            {
                case BoolTrue or BoolFalse:
                    // A struct field's boolean is in its header; a list element's takes a byte (see SkipElement).
                    break;
                case Byte:
                    Advance(1);
                    break;
                case I16 or I32 or I64:
                    Varint();
                    break;
                case Double:
                    Advance(8);
                    break;
                case Binary:
                    Advance(Length());
                    break;
                case Uuid:
                    Advance(16);
                    break;
                case List or Set:
                {
                    var (count, element) = ListHeader();
                    for (var i = 0; i < count; i++)
                    {
                        SkipElement(element, depth + 1);
                    }
                    break;
                }
                case Map:
                {
                    var size = Varint();
                    if (size == 0)
                    {
                        break;
                    }
                    if (size > (ulong)(_bytes.Length - _position))
                    {
                        throw new FormatException("map longer than the Parquet footer");
                    }
                    var types = ReadByte();
                    for (ulong i = 0; i < size; i++)
                    {
                        SkipElement((byte)(types >> 4), depth + 1);
                        SkipElement((byte)(types & 0x0F), depth + 1);
                    }
                    break;
                }
                case Struct:
                {
                    short field = 0;
                    while (FieldHeader(ref field) is var inner && inner != Stop)
                    {
                        Skip(inner, depth + 1);
                    }
                    break;
                }
                default:
                    throw new FormatException($"unknown Thrift type {type} in the Parquet footer");
            }
        }

        private void SkipElement(byte type, int depth)
        {
            if (type is BoolTrue or BoolFalse)
            {
                Advance(1);
                return;
            }
            Skip(type, depth);
        }

        private int Length()
        {
            var length = Varint();
            if (length > int.MaxValue)
            {
                throw new FormatException("binary longer than the Parquet footer");
            }
            return (int)length;
        }

        private ulong Varint()
        {
            ulong value = 0;
            for (var shift = 0; shift < 64; shift += 7)
            {
                var b = ReadByte();
                value |= (ulong)(b & 0x7F) << shift;
                if ((b & 0x80) == 0)
                {
                    return value;
                }
            }
            throw new FormatException("varint too long in the Parquet footer");
        }

        private byte ReadByte()
        {
            if (_position >= _bytes.Length)
            {
                throw new FormatException("Parquet footer ends early");
            }
            return _bytes[_position++];
        }

        private void Advance(int count)
        {
            if (count < 0 || count > _bytes.Length - _position)
            {
                throw new FormatException("Parquet footer ends early");
            }
            _position += count;
        }
    }
}
