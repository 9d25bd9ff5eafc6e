using System.Globalization;
using Engine.Profiles;
using Engine.Segments;
using Engine.TestKit;

namespace Engine.Tests.Segments;

/// <summary>
/// The segment engine's contract: for every condition, its members are exactly the rows DuckDB returns for
/// <c>SELECT profile_id FROM profiles WHERE &lt;condition&gt;</c> over the same Parquet, NULLs included.
/// </summary>
public sealed class ConditionPeerTests : IAsyncLifetime
{
    private readonly TempDirectory _directory = new("conditions");
    private ProfileTable _table = null!;

    public async ValueTask InitializeAsync() => _table = await SegmentProfiles.WriteAsync(_directory.Path, rows: 3_000, seed: 7);

    public ValueTask DisposeAsync()
    {
        _directory.Dispose();
        return ValueTask.CompletedTask;
    }

    private List<long> Engine(string condition) =>
        SegmentProfiles.Members(_table, new ConditionCompiler(_table, SegmentProfiles.AsOf).Compile(condition).Evaluate(_table));

    private void AssertSameAsDuckDb(string condition)
    {
        var expected = SegmentProfiles.DuckDbMembers(_directory.Path, condition);
        var actual = Engine(condition);
        Assert.True(expected.SequenceEqual(actual),
            $"{condition}: DuckDB {expected.Count} members, engine {actual.Count}; first difference at profile " +
            $"{expected.Except(actual).Concat(actual.Except(expected)).DefaultIfEmpty(-1).Min()}");
    }

    [Theory]
    [InlineData("ltv > 500")]
    [InlineData("tier = 'gold' AND ltv > 1000")]
    [InlineData("tier IN ('gold', 'platinum') OR churn_score >= 0.7")]
    [InlineData("NOT (tier = 'gold')")]
    [InlineData("tier <> 'gold' OR tier IS NULL")]
    [InlineData("tier NOT IN ('gold', NULL)")]
    [InlineData("orders IN (1, 2, NULL)")]
    [InlineData("orders NOT IN (1, 2)")]
    [InlineData("orders BETWEEN 2 AND 5")]
    [InlineData("orders NOT BETWEEN NULL AND 3")]
    [InlineData("email LIKE '%@example.com'")]
    [InlineData("email NOT LIKE 'a_@%'")]
    [InlineData("country ILIKE 'ö%'")]
    [InlineData("upper(tier) = 'GOLD'")]
    [InlineData("lower(country) < 'fr'")]
    [InlineData("length(email) >= 14")]
    [InlineData("coalesce(tier, 'none') = 'none'")]
    [InlineData("coalesce(orders, opens, 0) * 1.5 > 4")]
    [InlineData("orders * 0.1 = 0.3")]
    [InlineData("ltv / orders > 100")]
    [InlineData("ltv / orders < 0")]
    [InlineData("orders % opens = 1")]
    [InlineData("orders // opens >= 2")]
    [InlineData("-orders > -3 AND abs(orders - 5) <= 2")]
    [InlineData("created_at >= now() - INTERVAL 30 DAY")]
    [InlineData("created_at < now() - INTERVAL '1 month 2 days'")]
    [InlineData("created_at > '2025-06-01'")]
    [InlineData("birthday < DATE '1970-01-01'")]
    [InlineData("current_date - birthday > 20000")]
    [InlineData("birthday + 365 > DATE '2000-01-01'")]
    [InlineData("birthday + INTERVAL 1 YEAR > created_at")]
    [InlineData("subscribed")]
    [InlineData("NOT subscribed")]
    [InlineData("subscribed = (ltv > 100)")]
    [InlineData("subscribed IS NULL AND tier IS NOT NULL")]
    [InlineData("(orders > 3) IS NULL")]
    [InlineData("NULL")]
    [InlineData("NOT NULL OR ltv > 1")]
    [InlineData("TRUE AND NOT FALSE")]
    [InlineData("tier = country")]
    [InlineData("tier < country OR email > tier")]
    [InlineData("ltv > orders * 100.5")]
    [InlineData("churn_score > 0.7 AND coalesce(subscribed, FALSE)")]
    [InlineData("profile_id % 7 = 3")]
    [InlineData("orders = '3'")]
    [InlineData("ltv between 100 and 200.5 and Tier = 'gold'")]
    [InlineData("\"tier\" = 'silver' -- a comment\n AND ltv > 0")]
    public void Matches_duckdb(string condition) => AssertSameAsDuckDb(condition);

    [Fact]
    public void Random_conditions_match_duckdb()
    {
        var random = new Random(20261130);
        for (var i = 0; i < 400; i++)
        {
            AssertSameAsDuckDb(new ConditionGenerator(random).Predicate(3));
        }
    }

    /// <summary>Well-typed random conditions over <see cref="SegmentProfiles"/>' columns, NULLs in play.</summary>
    private sealed class ConditionGenerator(Random random)
    {
        private static readonly string[] Ops = ["=", "<>", "<", "<=", ">", ">="];

        private T Pick<T>(params T[] items) => items[random.Next(items.Length)];

        public string Predicate(int depth)
        {
            var choice = random.Next(depth > 0 ? 14 : 10);
            return choice switch
            {
                0 or 1 => $"{Number(2)} {Pick(Ops)} {Number(2)}",
                2 => $"{Text()} {Pick(Ops)} '{Pick(SegmentProfiles.Tiers.Concat(SegmentProfiles.Countries).Append("m").ToArray())}'",
                3 => $"{Text()} {Pick("", "NOT ")}IN ({string.Join(", ", Enumerable.Range(0, random.Next(1, 4)).Select(_ => random.Next(6) == 0 ? "NULL" : $"'{Pick(SegmentProfiles.Tiers)}'"))})",
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
}
