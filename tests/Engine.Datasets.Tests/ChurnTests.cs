using System.Globalization;

namespace Engine.Datasets.Tests;

/// <summary>
/// Churn is predictable from behaviour: subscribers who cancel show falling activity in the weeks before they
/// cancel, which people who stay do not. Activity is counted per true person (through the truth table) over all
/// their events, and measured strictly before the cancellation, so the check is not the trivial "no events after".
/// </summary>
public sealed class ChurnTests(GeneratedData data)
{
    [Fact]
    public void Churners_activity_falls_before_they_cancel_and_retained_customers_does_not()
    {
        var asOf = GeneratedData.Options.AsOf.ToString("yyyy-MM-dd HH:mm:ssZ", CultureInfo.InvariantCulture);
        var rows = data.Rows($"""
            WITH activity AS (
              SELECT e.ts, coalesce(tu.person_id, ta.person_id, te.person_id) AS pid
              FROM events e
              LEFT JOIN truth tu ON tu.identifier_type = 'customer_id' AND tu.identifier_value = trim(e.user_id)
              LEFT JOIN truth ta ON ta.identifier_type = 'anonymous_id' AND ta.identifier_value = trim(e.anonymous_id)
              LEFT JOIN truth te ON te.identifier_type = 'email' AND te.identifier_value = lower(trim(e.email))
            ),
            statuses AS (
              SELECT t.person_id AS pid, p.subscription_status AS s, p.updated_at AS u
              FROM profiles p JOIN truth t ON t.identifier_type = 'customer_id' AND t.identifier_value = trim(p.customer_id)
            ),
            latest AS (SELECT pid, arg_max(s, u) AS s, max(u) AS u FROM statuses GROUP BY pid),
            churned AS (
              SELECT l.pid, l.u AS r FROM latest l
              WHERE l.s = 'cancelled' AND l.u >= TIMESTAMPTZ '{asOf}' - INTERVAL 180 DAY
                AND EXISTS (SELECT 1 FROM statuses s WHERE s.pid = l.pid AND s.s = 'active' AND s.u < l.u)
            ),
            retained AS (
              SELECT l.pid, (SELECT to_timestamp(avg(epoch(r))) FROM churned) AS r FROM latest l
              WHERE l.s = 'active'
                AND EXISTS (SELECT 1 FROM statuses s WHERE s.pid = l.pid AND s.s = 'active' AND s.u < TIMESTAMPTZ '{asOf}' - INTERVAL 180 DAY)
            ),
            groups AS (SELECT 'churned' AS g, * FROM churned UNION ALL SELECT 'retained', * FROM retained)
            SELECT g.g, count(DISTINCT g.pid),
              count(a.ts) FILTER (WHERE a.ts >= g.r - INTERVAL 56 DAY AND a.ts < g.r),
              count(a.ts) FILTER (WHERE a.ts >= g.r - INTERVAL 168 DAY AND a.ts < g.r - INTERVAL 112 DAY)
            FROM groups g LEFT JOIN activity a ON a.pid = g.pid
            GROUP BY 1 ORDER BY 1
            """);
        Assert.Equal(2, rows.Count);
        var (churnedPeople, churnedRecent, churnedEarlier) = (Convert.ToInt64(rows[0][1], CultureInfo.InvariantCulture), Convert.ToDouble(rows[0][2], CultureInfo.InvariantCulture), Convert.ToDouble(rows[0][3], CultureInfo.InvariantCulture));
        var (retainedPeople, retainedRecent, retainedEarlier) = (Convert.ToInt64(rows[1][1], CultureInfo.InvariantCulture), Convert.ToDouble(rows[1][2], CultureInfo.InvariantCulture), Convert.ToDouble(rows[1][3], CultureInfo.InvariantCulture));
        Assert.True(churnedPeople >= 30, $"only {churnedPeople} churners");
        Assert.True(retainedPeople >= 100, $"only {retainedPeople} retained subscribers");
        var churnedTrend = churnedRecent / churnedEarlier;
        var retainedTrend = retainedRecent / retainedEarlier;
        Assert.True(churnedTrend < 0.85 * retainedTrend, $"activity trend before cancelling {churnedTrend:F2}, retained {retainedTrend:F2}");
        // Not trivially separable: churners were still active in the eight weeks before they cancelled.
        Assert.True(churnedRecent > 0.2 * churnedEarlier, $"churners went silent long before cancelling ({churnedRecent} vs {churnedEarlier})");
    }

    [Fact]
    public void Unresolved_support_tickets_are_commoner_among_churners()
    {
        var rows = data.Rows("""
            WITH tickets AS (
              SELECT t.person_id AS pid, e.ticket_id, bool_or(e.type = 'support_ticket_resolved') AS resolved
              FROM events e JOIN truth t ON t.identifier_type = 'customer_id' AND t.identifier_value = trim(e.user_id)
              WHERE e.ticket_id IS NOT NULL GROUP BY ALL
            ),
            statuses AS (
              SELECT t.person_id AS pid, arg_max(p.subscription_status, p.updated_at) AS s, bool_or(p.subscription_status = 'active') AS was_active
              FROM profiles p JOIN truth t ON t.identifier_type = 'customer_id' AND t.identifier_value = trim(p.customer_id)
              GROUP BY 1
            )
            SELECT s.s = 'cancelled' AS churned, count(DISTINCT s.pid),
              count(DISTINCT s.pid) FILTER (WHERE k.pid IS NOT NULL AND NOT k.resolved)
            FROM statuses s LEFT JOIN tickets k ON k.pid = s.pid
            WHERE s.was_active
            GROUP BY 1 ORDER BY 1
            """);
        var retainedShare = Convert.ToDouble(rows[0][2], CultureInfo.InvariantCulture) / Convert.ToDouble(rows[0][1], CultureInfo.InvariantCulture);
        var churnedShare = Convert.ToDouble(rows[1][2], CultureInfo.InvariantCulture) / Convert.ToDouble(rows[1][1], CultureInfo.InvariantCulture);
        Assert.True(churnedShare > 1.3 * retainedShare, $"unresolved tickets: churned {churnedShare:P1}, others {retainedShare:P1}");
    }
}
