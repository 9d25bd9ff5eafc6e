using System.Globalization;

namespace Engine.TestKit;

/// <summary>Well-typed random segment conditions over <see cref="RandomProfiles"/>' columns, NULLs in play.</summary>
public sealed class RandomConditions(Random random)
{
    private static readonly string[] Ops = ["=", "<>", "<", "<=", ">", ">="];

    private T Pick<T>(params T[] items) => items[random.Next(items.Length)];

    public string Predicate(int depth)
    {
        var choice = random.Next(depth > 0 ? 14 : 10);
        return choice switch
        {
            0 or 1 => $"{Number(2)} {Pick(Ops)} {Number(2)}",
            2 => $"{Text()} {Pick(Ops)} '{Pick(RandomProfiles.Tiers.Concat(RandomProfiles.Countries).Append("m").ToArray())}'",
            3 => $"{Text()} {Pick("", "NOT ")}IN ({string.Join(", ", Enumerable.Range(0, random.Next(1, 4)).Select(_ => random.Next(6) == 0 ? "NULL" : $"'{Pick(RandomProfiles.Tiers)}'"))})",
            4 => $"{Pick("email", "tier", "country", "lower(country)")} {Pick("", "NOT ")}{Pick("LIKE", "ILIKE")} '{Pick("%", "g%", "%d", "_%e%", "a_@%", "%.com", "%ö%", "__")}'",
            5 => $"{Pick(Number(1), Text(), Time(), "subscribed")} IS {Pick("", "NOT ")}NULL",
            6 => $"{Number(1)} {Pick("", "NOT ")}BETWEEN {Number(0)} AND {Number(0)}",
            7 => Pick($"created_at {Pick(Ops)} now() - INTERVAL {random.Next(0, 400)} DAY", $"birthday {Pick(Ops)} DATE '19{random.Next(50, 99)}-0{random.Next(1, 9)}-1{random.Next(0, 9)}'",
                    $"current_date - birthday {Pick(Ops)} {random.Next(5000, 25000)}", $"{Time()} {Pick(Ops)} {Time()}"),
            8 => Pick("subscribed", "NOT subscribed", "subscribed = TRUE", "subscribed <> (orders > 3)", "coalesce(subscribed, orders > 5)"),
            9 => $"{Number(1)} {Pick("", "NOT ")}IN ({string.Join(", ", Enumerable.Range(0, random.Next(1, 4)).Select(_ => random.Next(5) == 0 ? "NULL" : random.Next(-2, 8).ToString(CultureInfo.InvariantCulture)))})",
            10 or 11 => $"({Predicate(depth - 1)}) {Pick("AND", "OR")} ({Predicate(depth - 1)})",
            12 => $"NOT ({Predicate(depth - 1)})",
            _ => Pick("NULL", "TRUE", "FALSE", $"({Predicate(depth - 1)}) AND NULL", $"({Predicate(depth - 1)}) OR NULL"),
        };
    }

    private string Number(int depth)
    {
        var choice = random.Next(depth > 0 ? 16 : 9);
        return choice switch
        {
            0 => "ltv",
            1 => "orders",
            2 => "opens",
            3 => "churn_score",
            4 => random.Next(-3, 12).ToString(CultureInfo.InvariantCulture),
            5 => $"{random.Next(0, 20)}.{random.Next(0, 100):D2}",
            6 => $"{random.Next(1, 9)}e{random.Next(0, 3)}",
            7 => "length(email)",
            8 => "NULL",
            9 or 10 => $"({Number(depth - 1)} {Pick("+", "-", "*")} {Number(depth - 1)})",
            11 => $"({Number(depth - 1)} / {Number(depth - 1)})",
            12 => $"(orders {Pick("%", "//")} {Pick("opens", "3", "0", "-2")})",
            13 => $"abs({Number(depth - 1)})",
            14 => $"coalesce({Number(depth - 1)}, {Number(depth - 1)})",
            _ => $"-{Pick("orders", "ltv", "(opens + 1)")}",
        };
    }

    private string Text() => Pick("tier", "country", "email", "lower(tier)", "upper(country)", "coalesce(tier, country)", "coalesce(tier, 'none')");

    private string Time() => Pick("created_at", "birthday", "now()", "created_at + INTERVAL 2 MONTH", "birthday - INTERVAL '3 days'", "birthday + 30", "TIMESTAMP '2026-01-01 08:00:00'", "coalesce(created_at, birthday)");
}
