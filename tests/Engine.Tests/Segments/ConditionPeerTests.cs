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

    public async ValueTask InitializeAsync() => _table = await RandomProfiles.WriteAsync(_directory.Path, rows: 3_000, seed: 7);

    public ValueTask DisposeAsync()
    {
        _directory.Dispose();
        return ValueTask.CompletedTask;
    }

    private List<long> Engine(string condition) =>
        RandomProfiles.Members(_table, new ConditionCompiler(_table, RandomProfiles.AsOf).Compile(condition).Evaluate(_table));

    private void AssertSameAsDuckDb(string condition)
    {
        var expected = RandomProfiles.DuckDbMembers(_directory.Path, condition);
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
            AssertSameAsDuckDb(new RandomConditions(random).Predicate(3));
        }
    }
}
