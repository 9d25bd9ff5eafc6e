namespace Engine.Connectors;

/// <summary>
/// A profile's time zone from what a CRM holds: an IANA name (<c>Europe/Berlin</c>), or an ISO 3166 country code
/// taken to mean the zone most of its people live in (a country spanning several zones gets its most populous one:
/// US → America/New_York, AU → Australia/Sydney). Unknown values give null (the caller's default applies).
/// </summary>
public static class TimeZones
{
    private static readonly Dictionary<string, string> CountryZones = new(StringComparer.OrdinalIgnoreCase)
    {
        ["US"] = "America/New_York", ["CA"] = "America/Toronto", ["MX"] = "America/Mexico_City", ["BR"] = "America/Sao_Paulo",
        ["AR"] = "America/Argentina/Buenos_Aires", ["GB"] = "Europe/London", ["IE"] = "Europe/Dublin", ["FR"] = "Europe/Paris",
        ["DE"] = "Europe/Berlin", ["NL"] = "Europe/Amsterdam", ["BE"] = "Europe/Brussels", ["ES"] = "Europe/Madrid",
        ["PT"] = "Europe/Lisbon", ["IT"] = "Europe/Rome", ["CH"] = "Europe/Zurich", ["AT"] = "Europe/Vienna",
        ["SE"] = "Europe/Stockholm", ["NO"] = "Europe/Oslo", ["DK"] = "Europe/Copenhagen", ["FI"] = "Europe/Helsinki",
        ["PL"] = "Europe/Warsaw", ["CZ"] = "Europe/Prague", ["GR"] = "Europe/Athens", ["TR"] = "Europe/Istanbul",
        ["IN"] = "Asia/Kolkata", ["CN"] = "Asia/Shanghai", ["JP"] = "Asia/Tokyo", ["KR"] = "Asia/Seoul",
        ["SG"] = "Asia/Singapore", ["AU"] = "Australia/Sydney", ["NZ"] = "Pacific/Auckland", ["ZA"] = "Africa/Johannesburg",
    };

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, TimeZoneInfo?> Cache = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>The zone a value names, or null.</summary>
    public static TimeZoneInfo? Find(string value) => Cache.GetOrAdd(value.Trim(), static v =>
    {
        if (v.Length == 2 && CountryZones.TryGetValue(v, out var zone))
        {
            v = zone;
        }
        if (v.Length == 0)
        {
            return null;
        }
        try
        {
            return TimeZoneInfo.FindSystemTimeZoneById(v);
        }
        catch (Exception e) when (e is TimeZoneNotFoundException or InvalidTimeZoneException)
        {
            return null;
        }
    });
}
