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

public sealed class LimiterTests
{
    [Fact]
    public void The_bucket_starts_with_the_burst_and_refuses_beyond_it()
    {
        using var limiter = Engine.Connectors.Delivery.DestinationWorker.Limiter(new Engine.Connectors.Destinations.RateLimit(5, 10, 3));
        using var burst = limiter.AttemptAcquire(3);
        Assert.True(burst.IsAcquired);
        using var more = limiter.AttemptAcquire(1);
        Assert.False(more.IsAcquired);
    }

    [Fact]
    public void A_rate_above_a_token_per_millisecond_holds_a_whole_tick_of_tokens_whatever_the_burst()
    {
        // 2,000 requests/s with a burst of 1: the timer adds 2 tokens a millisecond, so the bucket must hold 2.
        using var limiter = Engine.Connectors.Delivery.DestinationWorker.Limiter(new Engine.Connectors.Destinations.RateLimit(2_000, 1, 1));
        using var tick = limiter.AttemptAcquire(2);
        Assert.True(tick.IsAcquired);
    }
}
