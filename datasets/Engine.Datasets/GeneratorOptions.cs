namespace Engine.Datasets;

/// <summary>What to generate. The same options always produce byte-identical files, whatever <see cref="Parallelism"/>.</summary>
public sealed record GeneratorOptions
{
    /// <summary>The default end of the simulated history: fixed, never "now", so that a seed always means the same data.</summary>
    public static readonly DateTimeOffset DefaultAsOf = new(2026, 11, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>
    /// The most people one data set can hold: ids, email digits and phone numbers are derived from a permutation of
    /// the person number, and the smallest phone numbering plan used (Australian mobiles) has room for this many
    /// people with two numbers each.
    /// </summary>
    public const long MaxPeople = 20_000_000;

    /// <summary>How many simulated people (crawler bots included, about 2%).</summary>
    public required long People { get; init; }

    /// <summary>The random seed.</summary>
    public required long Seed { get; init; }

    /// <summary>Days of history before <see cref="AsOf"/>.</summary>
    public int Days { get; init; } = 365;

    /// <summary>The end (exclusive) of the simulated history; every timestamp is before it.</summary>
    public DateTimeOffset AsOf { get; init; } = DefaultAsOf;

    /// <summary>
    /// Days simulated after <see cref="AsOf"/> and held back: the same people's next days, which
    /// <see cref="SyntheticGenerator.AppendDayAsync"/> writes later, a day at a time. The simulation covers
    /// <c>AsOf - Days</c> to <c>AsOf + FutureDays</c>; only rows before <see cref="AsOf"/> are written. 0 (the default):
    /// the history simply ends at <see cref="AsOf"/>.
    /// </summary>
    public int FutureDays { get; init; }

    /// <summary>
    /// When set, only rows at or after this time (and before <see cref="AsOf"/>) are written to <c>events/</c>,
    /// <c>profiles/</c> (by <c>updated_at</c>) and <c>consent/</c>: the slice an append adds. <c>truth/</c> still
    /// covers every row before <see cref="AsOf"/>.
    /// </summary>
    public DateTimeOffset? WriteFrom { get; init; }

    /// <summary>How many blocks of people are generated at once (the output does not depend on it).</summary>
    public int Parallelism { get; init; } = Environment.ProcessorCount;

    /// <summary>People per block: each block has its own random stream; households never cross blocks.</summary>
    internal int BlockSize { get; init; } = 4096;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first invalid option.</summary>
    internal void Validate()
    {
        if (People < 1 || People > MaxPeople)
        {
            throw new ArgumentOutOfRangeException(nameof(People), People, $"People must be between 1 and {MaxPeople:N0}.");
        }
        if (Days < 1 || Days > 3650)
        {
            throw new ArgumentOutOfRangeException(nameof(Days), Days, "Days (the history length) must be between 1 and 3650.");
        }
        if (Parallelism < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(Parallelism), Parallelism, "Parallelism must be at least 1.");
        }
        if (BlockSize < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(BlockSize), BlockSize, "BlockSize must be at least 1.");
        }
        if (FutureDays < 0 || FutureDays > 3650)
        {
            throw new ArgumentOutOfRangeException(nameof(FutureDays), FutureDays, "FutureDays must be between 0 and 3650.");
        }
        var start = AsOf.UtcDateTime.AddDays(-Days);
        if (start.Year < 1971 || AsOf.UtcDateTime.AddDays(FutureDays).Year > 9000)
        {
            throw new ArgumentOutOfRangeException(nameof(AsOf), AsOf, "AsOf minus Days must lie between 1971 and 9000.");
        }
        if (WriteFrom is { } from && (from >= AsOf || from.UtcDateTime < start))
        {
            throw new ArgumentOutOfRangeException(nameof(WriteFrom), WriteFrom, "WriteFrom must lie between AsOf minus Days and AsOf.");
        }
    }
}

/// <summary>What a generation wrote.</summary>
/// <param name="People">People simulated.</param>
/// <param name="Events">Rows in <c>events/</c>.</param>
/// <param name="ProfileRows">Rows in <c>profiles/</c>.</param>
/// <param name="ConsentRows">Rows in <c>consent/</c>.</param>
/// <param name="TruthRows">Rows in <c>truth/</c>.</param>
/// <param name="Elapsed">Wall-clock time.</param>
public sealed record GenerationSummary(long People, long Events, long ProfileRows, long ConsentRows, long TruthRows, TimeSpan Elapsed);

/// <summary>Progress of a generation, reported after each block of people is written.</summary>
/// <param name="PeopleDone">People written so far.</param>
/// <param name="PeopleTotal">People to write.</param>
/// <param name="EventsWritten">Event rows written so far.</param>
public readonly record struct GenerationProgress(long PeopleDone, long PeopleTotal, long EventsWritten);
