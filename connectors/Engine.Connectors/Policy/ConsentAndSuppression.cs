using System.Text;
using Engine.Connectors.Destinations;
using Engine.Connectors.Matching;
using Engine.Identity;
using Engine.Storage;
using Engine.Workspaces;

namespace Engine.Connectors.Policy;

/// <summary>The answer of the consent data for a profile and channel.</summary>
public enum ConsentState
{
    /// <summary>No identifier of the profile has a record for the channel.</summary>
    Unknown,

    Granted,

    /// <summary>At least one identifier's latest record revokes the channel (a revocation outweighs any grant).</summary>
    Revoked,
}

/// <summary>
/// The latest consent per (identifier, channel), read from the workspace's consent source with each value
/// normalised by the identity rules, so a consent row written "  Ann@Example.com" matches the profile's
/// "ann@example.com". <see cref="RefreshAsync"/> reloads it when the source's files changed: consent is evaluated
/// at the moment a batch is sent, from the latest data.
/// </summary>
public sealed class ConsentStore : IDisposable
{
    private readonly Workspace _workspace;
    private readonly SourceDefinition _source;
    private readonly StorageResolver _storage;
    private readonly IReadOnlyList<string> _channels;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private Dictionary<string, (bool Granted, long Ts)> _latest = new(StringComparer.Ordinal);
    private string _signature = "";

    private ConsentStore(Workspace workspace, SourceDefinition source, StorageResolver storage, IReadOnlyList<string> channels)
    {
        _workspace = workspace;
        _source = source;
        _storage = storage;
        _channels = channels;
    }

    /// <summary>Consent rows read at the last load.</summary>
    public long Rows { get; private set; }

    /// <summary>Rows skipped at the last load: identifier types the identity rules do not know, or values that do not normalise.</summary>
    public long Skipped { get; private set; }

    /// <summary>How many times the consent data was (re)loaded.</summary>
    public int Loads { get; private set; }

    public static async Task<ConsentStore> LoadAsync(Workspace workspace, string source, StorageResolver storage, IReadOnlyList<string> channels, CancellationToken cancellationToken)
    {
        var definition = workspace.Sources.First(s => s.Name == source);
        var store = new ConsentStore(workspace, definition, storage, channels);
        await store.RefreshAsync(cancellationToken);
        return store;
    }

    /// <summary>Reloads the consent data if its files changed since the last load (names and sizes).</summary>
    public async Task RefreshAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            var dataset = await Dataset.OpenAsync(_storage.Resolve(_source.Location, _workspace.Directory), _source.Format, cancellationToken);
            var signature = string.Join("\n", dataset.Files.Select(f => $"{f.Key}\t{f.Size}"));
            if (signature == _signature && Loads > 0)
            {
                return;
            }
            var (latest, rows, skipped) = Read(dataset, cancellationToken);
            _latest = latest;
            Rows = rows;
            Skipped = skipped;
            _signature = signature;
            Loads++;
        }
        finally
        {
            _gate.Release();
        }
    }

    public void Dispose() => _gate.Dispose();

    /// <summary>The consent of the profile with <paramref name="identifiers"/> for <paramref name="channel"/>.</summary>
    public ConsentState Check(IReadOnlyList<ProfileIdentifier> identifiers, string channel)
    {
        var latest = _latest;
        var state = ConsentState.Unknown;
        foreach (var identifier in identifiers)
        {
            if (latest.TryGetValue(Key(identifier.Type, identifier.Value, channel), out var consent))
            {
                if (!consent.Granted)
                {
                    return ConsentState.Revoked;
                }
                state = ConsentState.Granted;
            }
        }
        return state;
    }

    private static string Key(string type, string value, string channel) => $"{type}\u001f{value}\u001f{channel}";

    private (Dictionary<string, (bool, long)> Latest, long Rows, long Skipped) Read(Dataset dataset, CancellationToken cancellationToken)
    {
        ColumnSpec Spec(string name) => _source.Schema.Find(name)!;
        var rules = _workspace.Identity;
        var states = DatasetScan.Run(
            dataset, [Spec("identifier_type"), Spec("identifier_value"), Spec("channel"), Spec("status"), Spec("ts")],
            () => (Latest: new Dictionary<string, (bool Granted, long Ts)>(StringComparer.Ordinal), Counts: new long[2], Buffer: new byte[1024]),
            (state, scan) =>
            {
                var batch = scan.Batch;
                for (var i = 0; i < batch.Length; i++)
                {
                    state.Counts[0]++;
                    var row = scan.FileRowOffset + i + 1;
                    var channel = ArrowValues.String(batch.Column(2), i);
                    if (channel is null || !_channels.Contains(channel))
                    {
                        throw new DataException(scan.Location, $"row {row}: consent channel '{channel}' is not one of {string.Join(", ", _channels)} (the channels of {DeliverySettings.FileName}); fix the row or add the channel there");
                    }
                    var status = ArrowValues.String(batch.Column(3), i);
                    if (status is not ("granted" or "revoked"))
                    {
                        throw new DataException(scan.Location, $"row {row}: consent status '{status}' is neither granted nor revoked");
                    }
                    if (ArrowValues.Value(batch.Column(4), i) is not DateTimeOffset ts)
                    {
                        throw new DataException(scan.Location, $"row {row}: consent row without a time (ts)");
                    }
                    var typeName = ArrowValues.String(batch.Column(0), i) ?? "";
                    var value = ArrowValues.String(batch.Column(1), i);
                    if (rules.Find(typeName) is not { } type || value is null)
                    {
                        state.Counts[1]++;
                        continue;
                    }
                    var utf8 = Encoding.UTF8.GetBytes(value);
                    if (state.Buffer.Length < IdentifierNormalizers.MaxOutputBytes(utf8.Length))
                    {
                        state.Buffer = new byte[IdentifierNormalizers.MaxOutputBytes(utf8.Length)];
                    }
                    if (type.Canonicalize(utf8, state.Buffer, out var written) != NormalizeStatus.Ok)
                    {
                        state.Counts[1]++;
                        continue;
                    }
                    var key = Key(typeName, Encoding.UTF8.GetString(state.Buffer, 0, written), channel);
                    var micros = (ts - DateTimeOffset.UnixEpoch).Ticks / 10;
                    var granted = status == "granted";
                    // The latest record wins; at the same instant a revocation does.
                    if (!state.Latest.TryGetValue(key, out var seen) || micros > seen.Ts || (micros == seen.Ts && !granted))
                    {
                        state.Latest[key] = (granted, micros);
                    }
                }
            },
            _source.ScanOptions(2), cancellationToken);
        var latest = new Dictionary<string, (bool, long)>(StringComparer.Ordinal);
        long rows = 0, skipped = 0;
        foreach (var state in states)
        {
            rows += state.Counts[0];
            skipped += state.Counts[1];
            foreach (var (key, consent) in state.Latest)
            {
                if (!latest.TryGetValue(key, out var seen) || consent.Ts > seen.Item2 || (consent.Ts == seen.Item2 && !consent.Granted))
                {
                    latest[key] = consent;
                }
            }
        }
        return (latest, rows, skipped);
    }
}

/// <summary>A global suppression list: identifiers (normalised by the identity rules) that no destination receives.</summary>
public sealed class SuppressionList
{
    private readonly HashSet<string> _identifiers;

    private SuppressionList(HashSet<string> identifiers) => _identifiers = identifiers;

    public static SuppressionList Empty { get; } = new([]);

    public int Count => _identifiers.Count;

    public static async Task<SuppressionList> LoadAsync(Workspace workspace, string source, StorageResolver storage, CancellationToken cancellationToken)
    {
        var definition = workspace.Sources.First(s => s.Name == source);
        var dataset = await Dataset.OpenAsync(storage.Resolve(definition.Location, workspace.Directory), definition.Format, cancellationToken);
        var rules = workspace.Identity;
        var sets = DatasetScan.Run(
            dataset, [definition.Schema.Find("identifier_type")!, definition.Schema.Find("identifier_value")!],
            () => new HashSet<string>(StringComparer.Ordinal),
            (set, scan) =>
            {
                var buffer = new byte[1024];
                for (var i = 0; i < scan.Batch.Length; i++)
                {
                    var typeName = ArrowValues.String(scan.Batch.Column(0), i) ?? "";
                    if (rules.Find(typeName) is not { } type || ArrowValues.String(scan.Batch.Column(1), i) is not { } value)
                    {
                        continue;
                    }
                    var utf8 = Encoding.UTF8.GetBytes(value);
                    if (buffer.Length < IdentifierNormalizers.MaxOutputBytes(utf8.Length))
                    {
                        buffer = new byte[IdentifierNormalizers.MaxOutputBytes(utf8.Length)];
                    }
                    // A blocked value (a role address on the blocklist) is still suppressed: compare it normalised.
                    var status = type.Normalizer.Normalize(utf8, buffer, out var written);
                    if (status == NormalizeStatus.Ok)
                    {
                        set.Add($"{typeName}\u001f{Encoding.UTF8.GetString(buffer, 0, written)}");
                    }
                }
            },
            definition.ScanOptions(2), cancellationToken);
        var all = new HashSet<string>(StringComparer.Ordinal);
        foreach (var set in sets)
        {
            all.UnionWith(set);
        }
        return new SuppressionList(all);
    }

    public bool Contains(IReadOnlyList<ProfileIdentifier> identifiers)
    {
        foreach (var identifier in identifiers)
        {
            if (_identifiers.Contains($"{identifier.Type}\u001f{identifier.Value}"))
            {
                return true;
            }
        }
        return false;
    }
}
