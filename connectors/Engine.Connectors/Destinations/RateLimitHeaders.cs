using System.Globalization;
using System.Net.Http.Headers;

namespace Engine.Connectors.Destinations;

/// <summary>
/// Reads the rate-limit headers of an API's answer, for destinations whose APIs say when to come back in their own
/// headers rather than (or besides) <c>Retry-After</c>.
/// </summary>
internal static class RateLimitHeaders
{
    /// <summary><c>Retry-After</c> in seconds (whole or fractional) or as an HTTP date; null when absent or unreadable.</summary>
    public static TimeSpan? RetryAfter(HttpResponseHeaders headers, DateTimeOffset now)
    {
        if (headers.RetryAfter?.Delta is { } delta)
        {
            return delta;
        }
        if (headers.RetryAfter?.Date is { } date)
        {
            return date > now ? date - now : TimeSpan.Zero;
        }
        // Fractional seconds are not a valid typed header value, so read the raw text too.
        return Number(headers, "Retry-After") is { } seconds && seconds >= 0 ? TimeSpan.FromSeconds(seconds) : null;
    }

    /// <summary>A header's value as a number (the first value); null when absent or not a number.</summary>
    public static double? Number(HttpResponseHeaders headers, string name)
        => headers.TryGetValues(name, out var values)
           && double.TryParse(values.FirstOrDefault(), NumberStyles.Float, CultureInfo.InvariantCulture, out var value)
            ? value
            : null;

    /// <summary>A header's value as text (the first value), or null.</summary>
    public static string? Text(HttpResponseHeaders headers, string name)
        => headers.TryGetValues(name, out var values) ? values.FirstOrDefault() : null;
}
