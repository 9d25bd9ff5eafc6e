using Engine.Connectors.Ledger;

namespace Engine.Connectors.Destinations;

/// <summary>
/// A destination's own small state per run (an upload job's name, whether it was started), kept where delivery keeps
/// its ledger so that it survives a worker's restart. Clients hold no state of their own (see <see cref="IDestination"/>):
/// what must outlive the process goes here.
/// </summary>
public interface IDestinationState
{
    /// <summary>The value stored under <paramref name="name"/> for <paramref name="runId"/>, or null.</summary>
    Task<string?> GetAsync(string runId, string name, CancellationToken cancellationToken);

    /// <summary>Stores <paramref name="value"/> under <paramref name="name"/> for <paramref name="runId"/>, replacing any earlier value.</summary>
    Task SetAsync(string runId, string name, string value, CancellationToken cancellationToken);
}

/// <summary>One destination's state in the delivery ledger (<see cref="IDeliveryLedger.GetStateAsync"/>).</summary>
public sealed class LedgerDestinationState : IDestinationState
{
    private readonly IDeliveryLedger _ledger;
    private readonly string _destination;

    public LedgerDestinationState(IDeliveryLedger ledger, string destination)
    {
        ArgumentNullException.ThrowIfNull(ledger);
        ArgumentNullException.ThrowIfNull(destination);
        _ledger = ledger;
        _destination = destination;
    }

    public Task<string?> GetAsync(string runId, string name, CancellationToken cancellationToken)
        => _ledger.GetStateAsync(runId, _destination, name, cancellationToken);

    public Task SetAsync(string runId, string name, string value, CancellationToken cancellationToken)
        => _ledger.SetStateAsync(runId, _destination, name, value, cancellationToken);
}
