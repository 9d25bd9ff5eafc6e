using System.Runtime.InteropServices;

namespace Engine;

/// <summary>
/// Large zeroed arrays whose pages are mapped writable up front. A fresh array's pages come from the kernel unmapped;
/// an array that is read before it is written (a hash table probed for a key before the key is added, a counter
/// incremented in place) first maps each page to the shared zero page, and the first write to it then takes a second
/// fault that copies it and flushes the old mapping from every core's TLB by inter-processor interrupt. At ten million
/// people the identity table alone (3 GB) took 786,000 of those, 7% of its read's CPU time, mostly in interrupts that a
/// virtual machine makes costly. Populating the pages writable in one call per worker (Linux 5.14's
/// <c>MADV_POPULATE_WRITE</c>) costs only the page allocations, which the writes would have paid anyway.
/// </summary>
internal static partial class FreshArrays
{
    // Below this the pages are few, and the GC's small-object memory is mostly reused rather than fresh.
    private const long PopulatedBytes = 16 << 20;

    private const int PageSize = 4096;
    private const int MadvPopulateWrite = 23;

    /// <summary>A zeroed array of <paramref name="length"/> elements, its pages mapped writable (<see cref="Populate{T}"/>).</summary>
    public static T[] Zeroed<T>(int length, int parallelism = 1) where T : unmanaged
    {
        var array = new T[length];
        Populate(array, parallelism);
        return array;
    }

    /// <summary>
    /// Maps the pages of <paramref name="array"/> writable, on up to <paramref name="parallelism"/> threads, without
    /// changing its contents. Only a hint: small arrays, other systems and older kernels are left as they are.
    /// </summary>
    public static unsafe void Populate<T>(T[] array, int parallelism = 1) where T : unmanaged
    {
        var bytes = (long)array.Length * sizeof(T);
        if (bytes < PopulatedBytes || !OperatingSystem.IsLinux())
        {
            return;
        }
        // Pinned while the kernel walks it: the call must see the array where it is.
        var handle = GCHandle.Alloc(array, GCHandleType.Pinned);
        try
        {
            var start = (handle.AddrOfPinnedObject() + PageSize - 1) & ~(nint)(PageSize - 1);
            var pages = (handle.AddrOfPinnedObject() + (nint)bytes - start) / PageSize;
            var parts = (int)Math.Clamp(parallelism, 1, Math.Max(1, pages / 4096));
            Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, part =>
            {
                var from = pages * part / parts;
                var to = pages * (part + 1) / parts;
                // A kernel without MADV_POPULATE_WRITE says EINVAL: the writes then fault the pages in as before.
                _ = Advise(start + (nint)(from * PageSize), (nuint)((to - from) * PageSize), MadvPopulateWrite);
            });
        }
        finally
        {
            handle.Free();
        }
    }

    [LibraryImport("libc", EntryPoint = "madvise")]
    private static partial int Advise(nint address, nuint length, int advice);
}
