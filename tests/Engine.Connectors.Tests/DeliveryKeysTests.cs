using Engine.Connectors.Delivery;

namespace Engine.Connectors.Tests;

public sealed class DeliveryKeysTests
{
    [Fact]
    public void A_batch_key_depends_on_its_records_and_their_order_only()
    {
        var a = DeliveryKeys.Batch("meta", ["r/s/meta/1/entered", "r/s/meta/2/entered"]);
        Assert.Equal(a, DeliveryKeys.Batch("meta", ["r/s/meta/1/entered", "r/s/meta/2/entered"]));
        Assert.NotEqual(a, DeliveryKeys.Batch("meta", ["r/s/meta/1/entered"]));
        Assert.NotEqual(a, DeliveryKeys.Batch("braze", ["r/s/meta/1/entered", "r/s/meta/2/entered"]));
        Assert.StartsWith("meta-", a, StringComparison.Ordinal);
        Assert.Equal("run1/vip/meta/42/exited", DeliveryKeys.Record("run1", "vip", "meta", 42, DeliveryKeys.Exited));
    }
}
