using System.Buffers;
using System.Runtime.CompilerServices;

namespace Engine.Identity;

/// <summary>
/// Scratch arrays for the identity stage's sorts and passes: small ones from <see cref="ArrayPool{T}.Shared"/>, large
/// ones allocated and left to the GC. The shared pool keeps whatever it is given, up to 2^30 elements, for the life of
/// the process (trimmed only under memory pressure or after a minute unused), so a buffer the size of the whole edge
/// list, rented once, would outlive the stage and sit beside every later one.
/// </summary>
internal static class Scratch
{
    // 8 MB: larger buffers are per stage, not per batch, and an allocation costs nothing next to the pass that fills it.
    private const int PooledBytes = 8 << 20;

    /// <summary>An array of at least <paramref name="length"/> elements, contents undefined.</summary>
    public static T[] Rent<T>(int length) =>
        (long)length * Unsafe.SizeOf<T>() <= PooledBytes ? ArrayPool<T>.Shared.Rent(length) : GC.AllocateUninitializedArray<T>(length);

    /// <summary>Gives back an array from <see cref="Rent{T}"/>: to the pool if it came from there, otherwise to the GC.</summary>
    public static void Return<T>(T[] array)
    {
        if ((long)array.Length * Unsafe.SizeOf<T>() <= PooledBytes)
        {
            ArrayPool<T>.Shared.Return(array);
        }
    }
}
