using Engine.Connectors.Destinations;
using Engine.Connectors.Matching;

namespace Engine.Connectors.Policy;

/// <summary>Why a record was not sent (the <c>reason</c> of a <c>suppressed</c> outcome).</summary>
public static class SuppressionReasons
{
    public const string SuppressionList = "suppression_list";
    public const string ConsentRevoked = "consent_revoked";
    public const string NoConsent = "no_consent";
    public const string FrequencyCap = "frequency_cap";
    public const string QuietHours = "quiet_hours";
}

/// <summary>
/// The checks made when a batch is about to be sent, for one destination: the global suppression list, consent for
/// the destination's channel (from the latest consent data), the frequency cap per profile and channel, and quiet
/// hours in the profile's time zone. Only entries are checked: a removal is always sent (taking someone out of an
/// audience is what a revocation wants), and membership itself never changes here.
/// </summary>
public sealed class SendPolicy
{
    private readonly DestinationDefinition _destination;
    private readonly ConsentStore? _consent;
    private readonly SuppressionList _suppression;
    private readonly FrequencyCounter? _caps;
    private readonly string? _timezoneColumn;
    private readonly TimeZoneInfo _defaultZone;

    public SendPolicy(DestinationDefinition destination, ConsentStore? consent, SuppressionList suppression, FrequencyCounter? caps,
        string? timezoneColumn, TimeZoneInfo defaultZone)
    {
        if (destination.Consent != ConsentRule.None && consent is null)
        {
            throw new ArgumentException($"destination '{destination.Name}' needs consent data", nameof(consent));
        }
        _destination = destination;
        _consent = consent;
        _suppression = suppression;
        _caps = caps;
        _timezoneColumn = timezoneColumn;
        _defaultZone = defaultZone;
    }

    /// <summary>Refreshes the consent data if it changed: called before each batch.</summary>
    public Task RefreshAsync(CancellationToken cancellationToken) => _consent?.RefreshAsync(cancellationToken) ?? Task.CompletedTask;

    /// <summary>The reason <paramref name="record"/> may not be sent now, or null when it may.</summary>
    public string? Check(OutgoingRecord record, ProfileDirectory profiles, DateTimeOffset now)
    {
        if (record.Operation == RecordOperation.Remove)
        {
            return null;
        }
        var identifiers = profiles.Identifiers(record.ProfileId);
        if (_suppression.Contains(identifiers))
        {
            return SuppressionReasons.SuppressionList;
        }
        if (_destination.Consent != ConsentRule.None)
        {
            switch (_consent!.Check(identifiers, _destination.Channel!))
            {
                case ConsentState.Revoked:
                    return SuppressionReasons.ConsentRevoked;
                case ConsentState.Unknown when _destination.Consent == ConsentRule.Required:
                    return SuppressionReasons.NoConsent;
            }
        }
        if (_destination.QuietHours is { } quiet)
        {
            var zone = _timezoneColumn is not null && profiles.Field(record.ProfileId, _timezoneColumn) is string name
                ? TimeZones.Find(name) ?? _defaultZone
                : _defaultZone;
            if (quiet.Contains(TimeOnly.FromDateTime(TimeZoneInfo.ConvertTime(now, zone).DateTime)))
            {
                return SuppressionReasons.QuietHours;
            }
        }
        if (_caps is not null && !_caps.TryReserve(record.ProfileId))
        {
            return SuppressionReasons.FrequencyCap;
        }
        return null;
    }

    /// <summary>Gives back the cap reservation of an entry that was not delivered after all.</summary>
    public void Release(OutgoingRecord record)
    {
        if (record.Operation == RecordOperation.Add)
        {
            _caps?.Release(record.ProfileId);
        }
    }
}

/// <summary>
/// Sends per profile on one channel within the cap's window: the ledger's delivered entries, plus the entries this
/// worker has reserved since. A reservation is taken before sending and given back if the record is not delivered.
/// Several workers on a PostgreSQL ledger each count what the ledger held when they started plus their own sends.
/// </summary>
public sealed class FrequencyCounter
{
    private readonly Dictionary<long, int> _sends;
    private readonly int _limit;
    private readonly Lock _gate = new();

    public FrequencyCounter(Dictionary<long, int> sends, int limit)
    {
        _sends = sends;
        _limit = limit;
    }

    public bool TryReserve(long profile)
    {
        lock (_gate)
        {
            _sends.TryGetValue(profile, out var count);
            if (count >= _limit)
            {
                return false;
            }
            _sends[profile] = count + 1;
            return true;
        }
    }

    public void Release(long profile)
    {
        lock (_gate)
        {
            if (_sends.TryGetValue(profile, out var count) && count > 0)
            {
                _sends[profile] = count - 1;
            }
        }
    }
}
