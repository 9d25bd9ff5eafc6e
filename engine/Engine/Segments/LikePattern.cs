namespace Engine.Segments;

/// <summary>
/// A SQL LIKE pattern: <c>%</c> matches any run of characters, <c>_</c> exactly one (a Unicode code point), anything
/// else itself; no escape character unless one is given (DuckDB's default). ILIKE compares lower-cased.
/// Used once per distinct string, so it favours clarity over speed.
/// </summary>
internal sealed class LikePattern
{
    private const int AnyRun = -1;
    private const int AnyOne = -2;

    private readonly int[] _tokens;
    private readonly bool _caseInsensitive;

    public LikePattern(string pattern, string? escape, bool caseInsensitive, int position)
    {
        _caseInsensitive = caseInsensitive;
        var tokens = new List<int>();
        var runes = Runes(caseInsensitive ? pattern.ToLowerInvariant() : pattern);
        var escapeRune = escape is null ? -1 : Runes(caseInsensitive ? escape.ToLowerInvariant() : escape)[0];
        for (var i = 0; i < runes.Length; i++)
        {
            var r = runes[i];
            if (r == escapeRune)
            {
                if (i + 1 >= runes.Length)
                {
                    throw new ConditionException(position, "the LIKE pattern ends with its escape character");
                }
                tokens.Add(runes[++i]);
            }
            else
            {
                tokens.Add(r switch { '%' => AnyRun, '_' => AnyOne, _ => r });
            }
        }
        _tokens = [.. tokens];
    }

    private static int[] Runes(string text) => [.. text.EnumerateRunes().Select(r => r.Value)];

    public bool Matches(string value)
    {
        var text = Runes(_caseInsensitive ? value.ToLowerInvariant() : value);
        // Greedy matching with backtracking to the last '%': linear for patterns without '%', O(n·m) at worst.
        int t = 0, p = 0, star = -1, resume = 0;
        while (t < text.Length)
        {
            if (p < _tokens.Length && (_tokens[p] == AnyOne || _tokens[p] == text[t]))
            {
                t++;
                p++;
            }
            else if (p < _tokens.Length && _tokens[p] == AnyRun)
            {
                star = p++;
                resume = t;
            }
            else if (star >= 0)
            {
                p = star + 1;
                t = ++resume;
            }
            else
            {
                return false;
            }
        }
        while (p < _tokens.Length && _tokens[p] == AnyRun)
        {
            p++;
        }
        return p == _tokens.Length;
    }
}
