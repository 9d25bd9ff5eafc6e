namespace Engine.Connectors.Destinations;

/// <summary>Where delivery keeps its state: the ledger of what each destination acknowledged.</summary>
public enum LedgerKind
{
    /// <summary>A SQLite file (the default, one worker at a time per workspace).</summary>
    Sqlite,

    /// <summary>A PostgreSQL database, for several workers sharing one workspace.</summary>
    Postgres,
}

/// <summary>
/// <c>delivery.yaml</c> at the workspace root: where consent, the suppression list and time zones come from, and the
/// ledger. Optional: without it, consent is read from a source named <c>consent</c> when there is one, and the
/// ledger is <c>&lt;output&gt;/deliveries/ledger.db</c>.
/// </summary>
public sealed class DeliverySettings
{
    public const string FileName = "delivery.yaml";

    /// <summary>The source holding consent (<c>identifier_type</c>, <c>identifier_value</c>, <c>channel</c>, <c>status</c>, <c>ts</c>).</summary>
    public string? ConsentSource { get; init; }

    /// <summary>The channels consent rows may name; a row with another channel is an error naming its file and row.</summary>
    public IReadOnlyList<string> ConsentChannels { get; init; } = ["email", "sms", "ads"];

    /// <summary>A source of identifiers (<c>identifier_type</c>, <c>identifier_value</c>) never sent to any destination.</summary>
    public string? SuppressionSource { get; init; }

    /// <summary>The profile column holding each profile's IANA time zone or ISO country code, for quiet hours.</summary>
    public string? TimezoneColumn { get; init; }

    /// <summary>The time zone of a profile without one.</summary>
    public TimeZoneInfo DefaultTimezone { get; init; } = TimeZoneInfo.Utc;

    public LedgerKind Ledger { get; init; } = LedgerKind.Sqlite;

    /// <summary>The SQLite file (relative paths from the output folder); default <c>deliveries/ledger.db</c>.</summary>
    public string? LedgerPath { get; init; }

    /// <summary>The environment variable holding the PostgreSQL connection string of the ledger.</summary>
    public string? LedgerConnectionVariable { get; init; }

    /// <summary>The outcomes activations with a holdout are measured on (<c>outcomes:</c>), in file order.</summary>
    public IReadOnlyList<Holdouts.OutcomeDefinition> Outcomes { get; init; } = [];
}

/// <summary>A workspace's delivery configuration: its settings and destinations, checked against the workspace.</summary>
public sealed record DeliveryConfiguration(DeliverySettings Settings, IReadOnlyList<DestinationDefinition> Destinations)
{
    public DestinationDefinition? Find(string name) => Destinations.FirstOrDefault(d => d.Name == name);
}
