using System.Text;
using Apache.Arrow;

namespace Engine.Datasets;

/// <summary>What every block shares, read-only: options, calendar, the person-number permutation, the product catalogue.</summary>
internal sealed class GeneratorContext
{
    private const int ProductCount = 3000;

    public GeneratorContext(GeneratorOptions options)
    {
        Options = options;
        People = options.People;
        Seed = options.Seed;
        // The simulated window runs past AsOf by FutureDays; rows at or after AsOf are simulated but not written.
        Calendar = new Calendar(options.AsOf.AddDays(options.FutureDays), options.Days + options.FutureDays);
        UntilMicros = (options.AsOf.UtcTicks - DateTime.UnixEpoch.Ticks) / 10;
        FromMicros = options.WriteFrom is { } from ? (from.UtcTicks - DateTime.UnixEpoch.Ticks) / 10 : long.MinValue;
        Permutation = new Permutation((ulong)options.People, options.Seed);
        PhonePermutations = System.Array.ConvertAll(Vocabulary.Countries, c => new Permutation(c.Phone.Capacity, options.Seed + c.Index + 1));
        var keys = (ulong)options.Seed ^ 0xD1B54A32D192ED03UL;
        IdKey = Mix.SplitMix64(ref keys);
        AnonKey = Mix.SplitMix64(ref keys);
        EventsSchema = GeneratedDatasets.Events.ToArrow();
        ProfilesSchema = GeneratedDatasets.Profiles.ToArrow();
        ConsentSchema = GeneratedDatasets.Consent.ToArrow();
        TruthSchema = GeneratedDatasets.Truth.ToArrow();

        // The catalogue: popularity falls off like Zipf's law, prices are log-normal and end in .99.
        var rng = Rng.ForStream(options.Seed, -1);
        ProductIds = new byte[ProductCount][];
        ProductPrices = new double[ProductCount];
        var popularity = new double[ProductCount];
        for (var i = 0; i < ProductCount; i++)
        {
            ProductIds[i] = Encoding.ASCII.GetBytes($"P{10000 + i}");
            ProductPrices[i] = Math.Max(2, Math.Round(rng.LogNormal(22, 0.8))) + 0.99;
            popularity[i] = 1.0 / Math.Pow(i + 1, 1.05);
        }
        // Shuffle popularity so that product numbers say nothing about it.
        for (var i = ProductCount - 1; i > 0; i--)
        {
            var j = rng.Next(i + 1);
            (popularity[i], popularity[j]) = (popularity[j], popularity[i]);
        }
        ProductCumulative = Mix.Cumulative(popularity);
    }

    public GeneratorOptions Options { get; }

    public long People { get; }

    public long Seed { get; }

    public Calendar Calendar { get; }

    /// <summary>Rows at or after this time (UTC microseconds, the options' AsOf) are simulated but neither written nor in truth.</summary>
    public long UntilMicros { get; }

    /// <summary>Rows before this time are in truth but not written (long.MinValue: all are written).</summary>
    public long FromMicros { get; }

    public Permutation Permutation { get; }

    /// <summary>Per country, a permutation of its phone numbering capacity: unique numbers that look random at any scale.</summary>
    public Permutation[] PhonePermutations { get; }

    public ulong IdKey { get; }

    public ulong AnonKey { get; }

    public Schema EventsSchema { get; }

    public Schema ProfilesSchema { get; }

    public Schema ConsentSchema { get; }

    public Schema TruthSchema { get; }

    public byte[][] ProductIds { get; }

    public double[] ProductPrices { get; }

    public double[] ProductCumulative { get; }
}
