namespace Engine.Datasets.Tests;

/// <summary>
/// The mess identity resolution and segmentation must cope with is really there (with tolerances: these are
/// properties of a 5,000-person sample, not exact rates).
/// </summary>
public sealed class RealismTests(GeneratedData data)
{
    private const string JunkEmails = "(SELECT identifier_value FROM truth WHERE kind = 'junk' AND identifier_type = 'email')";
    private const string JunkIds = "(SELECT identifier_value FROM truth WHERE kind = 'junk' AND identifier_type = 'customer_id')";

    private double Share(string part, string whole) => data.Double($"SELECT ({part})::DOUBLE / ({whole})");

    [Fact]
    public void Volume_is_a_few_dozen_events_per_person()
    {
        var perPerson = (double)data.Summary.Events / data.Summary.People;
        Assert.InRange(perPerson, 20, 70);
        Assert.True(data.Summary.ProfileRows > data.Summary.People / 2);
        Assert.True(data.Summary.ConsentRows > data.Summary.People / 2);
    }

    [Fact]
    public void Nearly_everyone_is_in_the_truth()
    {
        // Only people whose every trace is a shared or junk value (one visit on the family tablet) are missing.
        var people = data.Scalar("SELECT count(DISTINCT person_id) FROM truth");
        Assert.InRange(people, GeneratedData.Options.People * 98 / 100, GeneratedData.Options.People);
        Assert.Equal(1, data.Scalar("SELECT min(person_id) FROM truth"));
        Assert.InRange(data.Scalar("SELECT max(person_id) FROM truth"), GeneratedData.Options.People - 5, GeneratedData.Options.People);
    }

    [Fact]
    public void Some_people_browse_and_never_identify()
    {
        var share = Share(
            "SELECT count(*) FROM (SELECT person_id FROM truth WHERE kind = 'person' GROUP BY 1 HAVING bool_and(identifier_type = 'anonymous_id'))",
            "SELECT count(DISTINCT person_id) FROM truth WHERE kind = 'person'");
        Assert.InRange(share, 0.15, 0.45);
    }

    [Fact]
    public void Bots_browse_a_lot_and_never_identify()
    {
        var bots = data.Scalar("SELECT count(DISTINCT person_id) FROM truth WHERE kind = 'bot'");
        Assert.InRange(bots, GeneratedData.Options.People / 200, GeneratedData.Options.People / 20);
        Assert.Equal(0, data.Scalar($"""
            SELECT count(*) FROM events e JOIN truth t ON t.identifier_type = 'anonymous_id' AND t.identifier_value = e.anonymous_id AND t.kind = 'bot'
            WHERE e.email IS NOT NULL OR (e.user_id IS NOT NULL AND trim(e.user_id) NOT IN {JunkIds})
            """));
        var botEventsPerBot = data.Double("""
            SELECT count(*)::DOUBLE / count(DISTINCT t.person_id) FROM events e
            JOIN truth t ON t.identifier_type = 'anonymous_id' AND t.identifier_value = e.anonymous_id AND t.kind = 'bot'
            """);
        Assert.True(botEventsPerBot > 3.0 * data.Summary.Events / data.Summary.People, $"bots average {botEventsPerBot:F0} events");
    }

    [Fact]
    public void Shared_devices_link_different_people()
    {
        Assert.True(data.Scalar("SELECT count(*) FROM truth WHERE kind = 'shared' AND identifier_type = 'anonymous_id'") > 10);
        // A shared tablet's cookie carries the logins of several customers.
        Assert.True(data.Scalar($"""
            SELECT count(*) FROM (
              SELECT e.anonymous_id FROM events e
              JOIN truth t ON t.identifier_type = 'anonymous_id' AND t.identifier_value = e.anonymous_id AND t.kind = 'shared'
              WHERE e.user_id IS NOT NULL AND trim(e.user_id) NOT IN {JunkIds}
              GROUP BY 1 HAVING count(DISTINCT trim(e.user_id)) >= 2)
            """) > 0);
        Assert.True(data.Scalar("SELECT count(*) FROM truth WHERE kind = 'shared' AND identifier_type = 'email'") > 0, "no family address");
    }

    [Fact]
    public void Junk_values_appear_on_many_rows()
    {
        Assert.True(Share($"SELECT count(*) FROM events WHERE trim(user_id) IN {JunkIds}", "SELECT count(*) FROM events WHERE user_id IS NULL OR trim(user_id) IN " + JunkIds) > 0.01);
        Assert.True(data.Scalar($"SELECT count(*) FROM events WHERE lower(trim(email)) IN {JunkEmails}") > 50);
        Assert.True(data.Scalar("SELECT count(*) FROM events WHERE email = ''") > 50);
        Assert.True(data.Scalar("SELECT count(*) FROM events WHERE anonymous_id = '00000000-0000-0000-0000-000000000000'") > 50);
        Assert.True(Share("SELECT count(*) FROM profiles p JOIN truth t ON t.identifier_type = 'phone' AND t.kind = 'junk' AND t.identifier_value = CASE WHEN p.phone IN ('n/a', 'null', 'unknown', '-') THEN p.phone ELSE t.identifier_value END WHERE p.phone IN ('0000000000', '000-000-0000', '1234567890', 'n/a', 'null', 'unknown', '000 000 0000', '9999999999', '-')",
            "SELECT count(*) FROM profiles") > 0.0);
        Assert.True(Share("SELECT count(*) FROM profiles WHERE phone IN ('0000000000', '000-000-0000', '1234567890', 'n/a', 'null', 'unknown', '000 000 0000', '9999999999', '-')", "SELECT count(*) FROM profiles") > 0.02);
        Assert.True(data.Scalar("SELECT count(*) FROM profiles WHERE phone = ''") > 10);
        Assert.True(data.Scalar($"SELECT count(*) FROM profiles WHERE lower(trim(email)) IN {JunkEmails}") > 10);
        Assert.True(data.Scalar("SELECT count(*) FROM consent WHERE identifier_value = '' OR lower(trim(identifier_value)) IN ('test@test.com', 'null', 'unknown', 'n/a', 'none', 'noemail@noemail.com', 'no@email.com', 'asdf@asdf.com', 'x@x.com')") > 0);
    }

    [Fact]
    public void Emails_vary_in_case_spacing_and_plus_addressing()
    {
        Assert.True(data.Scalar("SELECT count(*) FROM truth WHERE identifier_type = 'email' AND kind = 'person' AND identifier_value LIKE '%+%@%'") > 20);
        Assert.True(data.Scalar("SELECT count(*) FROM events WHERE email <> lower(email) AND lower(trim(email)) NOT IN ('test@test.com', 'null')") > 50);
        Assert.True(data.Scalar("SELECT count(*) FROM profiles WHERE email = upper(email) AND email LIKE '%@%'") > 5);
        Assert.True(data.Scalar("SELECT count(*) FROM profiles WHERE email <> trim(email)") > 10);
        Assert.True(data.Scalar("SELECT count(*) FROM consent WHERE identifier_type = 'email' AND identifier_value <> lower(trim(identifier_value))") > 10);
        // Work and personal, old and new: several addresses per person.
        Assert.True(Share(
            "SELECT count(*) FROM (SELECT person_id FROM truth WHERE kind = 'person' AND identifier_type = 'email' GROUP BY 1 HAVING count(*) >= 2)",
            "SELECT count(DISTINCT person_id) FROM truth WHERE kind = 'person' AND identifier_type = 'email'") > 0.05);
    }

    [Fact]
    public void Phones_come_in_national_and_international_formats()
    {
        Assert.True(data.Scalar("SELECT count(*) FROM profiles WHERE phone LIKE '+%'") > 50);
        Assert.True(data.Scalar("SELECT count(*) FROM profiles WHERE phone LIKE '00%' AND phone NOT LIKE '000%'") > 10);
        Assert.True(data.Scalar("SELECT count(*) FROM profiles WHERE regexp_matches(phone, '^\\(?0?[1-9]') AND phone NOT LIKE '+%'") > 50);
        Assert.True(data.Scalar("SELECT count(*) FROM profiles WHERE phone LIKE '% %' AND phone NOT IN ('000 000 0000')") > 50);
        Assert.True(data.Scalar("SELECT count(*) FROM profiles WHERE phone LIKE '%-%' AND phone NOT IN ('000-000-0000', '-')") > 20);
        Assert.Equal(0, data.Scalar("SELECT count(*) FROM consent WHERE identifier_type = 'phone' AND identifier_value NOT LIKE '+%'"));
    }

    [Fact]
    public void Crm_has_history_and_duplicate_records_of_the_same_person()
    {
        Assert.True(data.Double("SELECT count(*)::DOUBLE / count(DISTINCT customer_id) FROM profiles") > 1.5);
        var people = data.Scalar("SELECT count(DISTINCT person_id) FROM truth WHERE identifier_type = 'customer_id'");
        var duplicated = data.Scalar("SELECT count(*) FROM (SELECT person_id FROM truth WHERE identifier_type = 'customer_id' GROUP BY 1 HAVING count(*) >= 2)");
        Assert.InRange((double)duplicated / people, 0.03, 0.2);
        // Some duplicates share nothing usable with the main record: the truth knows, the data cannot link them.
        Assert.True(data.Scalar("SELECT count(*) FROM (SELECT person_id FROM truth WHERE identifier_type = 'customer_id' GROUP BY 1 HAVING count(DISTINCT linkable_id) >= 2)") > 0);
        // Duplicates differ slightly: a nickname, a typo, case or postcode formatting.
        Assert.True(data.Scalar("""
            SELECT count(*) FROM profiles a JOIN profiles b ON a.customer_id < b.customer_id AND a.last_name = b.last_name
              AND replace(lower(a.postcode), ' ', '') = replace(lower(b.postcode), ' ', '') AND a.postcode <> b.postcode
            """) > 0);
        Assert.Equal(4, data.Scalar("SELECT count(DISTINCT loyalty_tier) FROM profiles"));
        Assert.Equal(5, data.Scalar("SELECT count(DISTINCT subscription_status) FROM profiles"));
        Assert.True(data.Scalar("SELECT count(*) FROM (SELECT customer_id FROM profiles GROUP BY 1 HAVING count(DISTINCT subscription_status) >= 3)") > 20);
    }

    [Fact]
    public void Consent_is_granted_and_revoked_per_channel()
    {
        foreach (var channel in new[] { "email", "sms", "ads" })
        {
            var granted = data.Scalar($"SELECT count(*) FROM consent WHERE channel = '{channel}' AND status = 'granted'");
            var revoked = data.Scalar($"SELECT count(*) FROM consent WHERE channel = '{channel}' AND status = 'revoked'");
            Assert.True(revoked > 0, $"no {channel} revocation");
            Assert.True(granted > revoked, $"{channel}: {granted} granted, {revoked} revoked");
        }
        // Consent for the same identifier changes over time.
        Assert.True(data.Scalar("SELECT count(*) FROM (SELECT lower(trim(identifier_value)) FROM consent WHERE channel = 'email' GROUP BY 1 HAVING count(DISTINCT status) = 2)") > 10);
    }

    [Fact]
    public void Shopping_has_baskets_abandoned_carts_and_seasonality()
    {
        Assert.Equal(0, data.Scalar("SELECT count(*) FROM events WHERE type = 'order_completed' AND (revenue IS NULL OR revenue <= 0 OR quantity < 1 OR order_id IS NULL)"));
        var carts = data.Scalar("SELECT count(*) FROM events WHERE type = 'add_to_cart'");
        var checkouts = data.Scalar("SELECT count(*) FROM events WHERE type = 'checkout_started'");
        var orders = data.Scalar("SELECT count(*) FROM events WHERE type = 'order_completed'");
        Assert.True(orders > 300);
        Assert.True(carts > checkouts && checkouts > orders, $"{carts} carts, {checkouts} checkouts, {orders} orders");
        Assert.Equal(orders, data.Scalar("SELECT count(DISTINCT order_id) FROM events WHERE type = 'order_completed'"));
        // Cookies that put something in the cart and never bought.
        Assert.True(data.Scalar("""
            SELECT count(*) FROM (SELECT anonymous_id FROM events WHERE anonymous_id IS NOT NULL GROUP BY 1
              HAVING bool_or(type = 'add_to_cart') AND NOT bool_or(type = 'order_completed'))
            """) > 100);
        Assert.True(data.Double("SELECT stddev(revenue) FROM events WHERE type = 'order_completed'") > 10);
        // November-December peak against February, per day.
        var peak = data.Double("SELECT count(*) / 40.0 FROM events WHERE type = 'order_completed' AND ts >= TIMESTAMPTZ '2025-11-20 00:00:00Z' AND ts < TIMESTAMPTZ '2025-12-30 00:00:00Z'");
        var february = data.Double("SELECT count(*) / 28.0 FROM events WHERE type = 'order_completed' AND ts >= TIMESTAMPTZ '2026-02-01 00:00:00Z' AND ts < TIMESTAMPTZ '2026-03-01 00:00:00Z'");
        Assert.True(peak > 1.3 * february, $"peak {peak:F1} orders/day, February {february:F1}");
        // The weekly cycle: Sundays browse more than Tuesdays.
        var sunday = data.Scalar("SELECT count(*) FROM events WHERE type = 'page_view' AND dayofweek(ts) = 0");
        var tuesday = data.Scalar("SELECT count(*) FROM events WHERE type = 'page_view' AND dayofweek(ts) = 2");
        Assert.True(sunday > tuesday * 1.1, $"{sunday} Sunday page views, {tuesday} Tuesday");
    }

    [Fact]
    public void Email_engagement_support_and_subscriptions_are_recorded()
    {
        var opens = data.Scalar("SELECT count(*) FROM events WHERE type = 'email_open'");
        var clicks = data.Scalar("SELECT count(*) FROM events WHERE type = 'email_click'");
        Assert.True(opens > 1000 && clicks > 100 && clicks < opens / 2, $"{opens} opens, {clicks} clicks");
        Assert.Equal(0, data.Scalar("SELECT count(*) FROM events WHERE type IN ('email_open', 'email_click') AND (campaign_id IS NULL OR email IS NULL)"));
        var opened = data.Scalar("SELECT count(*) FROM events WHERE type = 'support_ticket_opened'");
        var resolved = data.Scalar("SELECT count(*) FROM events WHERE type = 'support_ticket_resolved'");
        Assert.True(opened > 50 && resolved > opened / 3 && resolved < opened, $"{opened} tickets opened, {resolved} resolved");
        Assert.True(data.Scalar("SELECT count(DISTINCT detail) FROM events WHERE type = 'subscription_changed'") >= 4);
        Assert.True(data.Scalar("SELECT count(*) FROM events WHERE type = 'login'") > 500);
        Assert.True(data.Scalar("SELECT count(*) FROM events WHERE type = 'signup'") > 100);
    }
}
