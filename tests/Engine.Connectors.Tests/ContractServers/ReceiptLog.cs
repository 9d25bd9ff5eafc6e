namespace Engine.Connectors.Tests.ContractServers;

/// <summary>
/// What a contract server received, item by item (an item is one membership change as the API sees it, such as
/// "user 42: add vip"): how often each arrived in a request the server applied, and how often the answer to that
/// request was lost on purpose (the fault plan's drop after applying). An item received more often than once plus its
/// lost answers was sent again after the client had its acknowledgement: a duplicate delivery.
/// </summary>
public sealed class ReceiptLog
{
    private readonly Dictionary<string, (int Received, int Lost)> _items = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    /// <summary>Records the items of one applied request.</summary>
    public void Record(IEnumerable<string> items, bool answerLost)
    {
        lock (_gate)
        {
            foreach (var item in items)
            {
                var (received, lost) = _items.GetValueOrDefault(item);
                _items[item] = (received + 1, lost + (answerLost ? 1 : 0));
            }
        }
    }

    /// <summary>Times the item arrived in an applied request.</summary>
    public int Received(string item)
    {
        lock (_gate)
        {
            return _items.GetValueOrDefault(item).Received;
        }
    }

    /// <summary>Times the client was told the item was applied (answers not lost).</summary>
    public int Acknowledged(string item)
    {
        lock (_gate)
        {
            var (received, lost) = _items.GetValueOrDefault(item);
            return received - lost;
        }
    }

    /// <summary>Every item received at least once.</summary>
    public IReadOnlyList<string> Items
    {
        get
        {
            lock (_gate)
            {
                return [.. _items.Keys.Order(StringComparer.Ordinal)];
            }
        }
    }

    /// <summary>All receipts, repeats included.</summary>
    public int Total
    {
        get
        {
            lock (_gate)
            {
                return _items.Values.Sum(v => v.Received);
            }
        }
    }
}
