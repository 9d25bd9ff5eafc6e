using System.Text.Json;
using System.Text.Json.Serialization;
using Engine.Storage;

namespace Engine.Datasets;

/// <summary>
/// <c>_generator.json</c> beside the datasets of a generation that can grow (<see cref="GeneratorOptions.FutureDays"/>):
/// who was simulated (people, seed), over which window, and how far the written history reaches now. Each
/// <see cref="SyntheticGenerator.AppendDayAsync"/> moves <see cref="AsOf"/> one day on. Written last, after the datasets.
/// </summary>
public sealed class GeneratorState
{
    public const string FileName = "_generator.json";

    [JsonPropertyName("people")] public long People { get; set; }
    [JsonPropertyName("seed")] public long Seed { get; set; }

    /// <summary>People per random stream (a knob of the tests; the command line always uses the default).</summary>
    [JsonPropertyName("block_size")] public int BlockSize { get; set; }

    /// <summary>The start of the simulated window (the first generation's as-of minus its days).</summary>
    [JsonPropertyName("window_start")] public DateTimeOffset WindowStart { get; set; }

    /// <summary>The end (exclusive) of the history written so far: what a run over this data takes as its as-of.</summary>
    [JsonPropertyName("as_of")] public DateTimeOffset AsOf { get; set; }

    /// <summary>The end of the simulated window: the last day an append can write ends here.</summary>
    [JsonPropertyName("simulated_until")] public DateTimeOffset SimulatedUntil { get; set; }

    /// <summary>The state a generation with <paramref name="options"/> leaves.</summary>
    public static GeneratorState From(GeneratorOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return new GeneratorState
        {
            People = options.People,
            Seed = options.Seed,
            BlockSize = options.BlockSize,
            WindowStart = options.AsOf.AddDays(-options.Days).ToUniversalTime(),
            AsOf = options.AsOf.ToUniversalTime(),
            SimulatedUntil = options.AsOf.AddDays(options.FutureDays).ToUniversalTime(),
        };
    }

    /// <summary>The state of the data set at <paramref name="output"/>, or null when it has none (it cannot grow).</summary>
    public static async Task<GeneratorState?> ReadAsync(StorageLocation output, CancellationToken cancellationToken = default)
    {
        var location = output.Child(FileName);
        if (await location.Store.GetAsync(location.Key, cancellationToken) is not { } bytes)
        {
            return null;
        }
        try
        {
            return JsonSerializer.Deserialize(bytes, GeneratorStateJsonContext.Default.GeneratorState)
                ?? throw new DataException(location.ToString(), "empty generator state");
        }
        catch (JsonException e)
        {
            throw new DataException(location.ToString(), $"unreadable generator state: {e.Message}", e);
        }
    }

    /// <summary>Writes the state beside the datasets at <paramref name="output"/> (one atomic object write).</summary>
    public Task WriteAsync(StorageLocation output, CancellationToken cancellationToken = default)
    {
        var location = output.Child(FileName);
        return location.Store.PutAsync(location.Key, JsonSerializer.SerializeToUtf8Bytes(this, GeneratorStateJsonContext.Default.GeneratorState), cancellationToken);
    }
}

[JsonSourceGenerationOptions(WriteIndented = true)]
[JsonSerializable(typeof(GeneratorState))]
internal sealed partial class GeneratorStateJsonContext : JsonSerializerContext;
