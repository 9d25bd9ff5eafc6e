using System.Buffers;
using System.Runtime.InteropServices;
using Apache.Arrow;

namespace Engine.Storage;

/// <summary>
/// An <see cref="ArrowBuffer"/> over a managed array, without copying it: a column built in a <c>long[]</c> becomes
/// an Arrow array as it stands. <c>new ArrowBuffer(MemoryMarshal.AsBytes(span).ToArray())</c> would hold the column
/// twice until the array is collected, which for a profile table of tens of millions of rows is gigabytes at the
/// stage's peak. The array must not be written once wrapped.
/// </summary>
public static class ManagedArrowBuffer
{
    public static ArrowBuffer Wrap<T>(T[] values) where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(values);
        return values.Length == 0 ? ArrowBuffer.Empty : new ArrowBuffer(new ByteView<T>(values).Memory);
    }

    /// <summary>The array's bytes as <see cref="Memory{T}"/>; pinning (for Arrow's C data interface) pins the array.</summary>
    private sealed class ByteView<T>(T[] values) : MemoryManager<byte> where T : unmanaged
    {
        public override Span<byte> GetSpan() => MemoryMarshal.AsBytes(values.AsSpan());

        public override unsafe MemoryHandle Pin(int elementIndex = 0)
        {
            var handle = GCHandle.Alloc(values, GCHandleType.Pinned);
            return new MemoryHandle((byte*)handle.AddrOfPinnedObject() + elementIndex, handle, this);
        }

        public override void Unpin()
        {
        }

        protected override void Dispose(bool disposing)
        {
        }
    }
}
