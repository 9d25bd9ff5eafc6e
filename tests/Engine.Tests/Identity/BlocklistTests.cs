using System.Text;
using Engine.Identity;

namespace Engine.Tests.Identity;

public class BlocklistTests
{
    private static NormalizeStatus Canonicalize(string type, string raw)
    {
        var input = Encoding.UTF8.GetBytes(raw);
        var destination = new byte[IdentifierNormalizers.MaxOutputBytes(input.Length)];
        return IdentityRules.Default.Find(type)!.Canonicalize(input, destination, out _);
    }

    // The junk the generator writes (datasets/Engine.Datasets/Identifiers.cs) and more that real data carries.
    [Theory]
    [InlineData("email", "test@test.com")]
    [InlineData("email", "TEST@TEST.COM")]
    [InlineData("email", " Test@Test.com ")]
    [InlineData("email", "test@example.com")]
    [InlineData("email", "noemail@noemail.com")]
    [InlineData("email", "noemail@shop.com")]
    [InlineData("email", "none@anything.org")]
    [InlineData("email", "no@email.com")]
    [InlineData("email", "asdf@asdf.com")]
    [InlineData("email", "x@x.com")]
    [InlineData("email", "a@a.com")]
    [InlineData("email", "aaa@aa.com")]
    [InlineData("email", "noreply@shop.com")]
    [InlineData("email", "do-not-reply@shop.com")]
    [InlineData("email", "null")]
    [InlineData("email", "n/a")]
    [InlineData("customer_id", "undefined")]
    [InlineData("customer_id", "NULL")]
    [InlineData("customer_id", "null")]
    [InlineData("customer_id", "0")]
    [InlineData("customer_id", "-1")]
    [InlineData("customer_id", "guest")]
    [InlineData("customer_id", "undefined ")]
    [InlineData("customer_id", "N/A")]
    [InlineData("customer_id", "-")]
    [InlineData("customer_id", "Unknown")]
    [InlineData("anonymous_id", "00000000-0000-0000-0000-000000000000")]
    [InlineData("anonymous_id", "None")]
    [InlineData("phone", "0000000000")]
    [InlineData("phone", "000-000-0000")]
    [InlineData("phone", "000 000 0000")]
    [InlineData("phone", "1111111111")]
    [InlineData("phone", "9999999999")]
    [InlineData("phone", "1234567890")]
    [InlineData("phone", "+44 7777 777777")]
    [InlineData("phone", "n/a")]
    [InlineData("phone", "unknown")]
    [InlineData("phone", "-")]
    public void Default_blocklists_keep_junk_from_linking(string type, string raw)
        => Assert.NotEqual(NormalizeStatus.Ok, Canonicalize(type, raw));

    [Theory]
    [InlineData("email", "ann.lee@example.co.uk")]
    [InlineData("email", "testa@shop.com")]
    [InlineData("email", "anna@annashop.com")]
    [InlineData("email", "no.one@shop.com")]
    [InlineData("email", "a@b.com")]
    [InlineData("email", "nora@gmail.com")]
    [InlineData("customer_id", "C-1001")]
    [InlineData("customer_id", "10")]
    [InlineData("customer_id", "nullable")]
    [InlineData("anonymous_id", "3f2b8c1e-0000-4000-8000-000000000001")]
    [InlineData("phone", "(415) 555-2671")]
    [InlineData("phone", "+44 7911 123456")]
    [InlineData("phone", "+49 151 12345678")]
    public void Default_blocklists_let_ordinary_values_through(string type, string raw)
        => Assert.Equal(NormalizeStatus.Ok, Canonicalize(type, raw));

    [Fact]
    public void Workspace_values_and_patterns_are_added_to_or_replace_the_defaults()
    {
        var withDefaults = DefaultBlocklists.For(NormalizerKind.Email, ["shop@ourcompany.com"], ["@ourcompany\\.com$"]);
        Assert.True(withDefaults.IsBlocked("shop@ourcompany.com"u8));
        Assert.True(withDefaults.IsBlocked("ann@ourcompany.com"u8));
        Assert.True(withDefaults.IsBlocked("test@test.com"u8));
        Assert.False(withDefaults.IsBlocked("ann@shop.com"u8));

        var withoutDefaults = DefaultBlocklists.For(NormalizerKind.Email, ["shop@ourcompany.com"], [], defaults: false);
        Assert.True(withoutDefaults.IsBlocked("SHOP@ourcompany.com"u8));
        Assert.False(withoutDefaults.IsBlocked("test@test.com"u8));
    }

    [Fact]
    public void Long_and_non_ascii_values_are_checked_too()
    {
        var list = new Blocklist(["ÄNN@x.de"], ["^zoë"]);
        Assert.True(list.IsBlocked(Encoding.UTF8.GetBytes("Änn@x.de")));
        Assert.True(list.IsBlocked(Encoding.UTF8.GetBytes("ÄNN@X.DE")));
        Assert.True(list.IsBlocked(Encoding.UTF8.GetBytes("zoë@x.de")));
        Assert.False(list.IsBlocked(Encoding.UTF8.GetBytes(new string('a', 1000) + "@x.de")));
        Assert.True(new Blocklist([], ["^a+@"]).IsBlocked(Encoding.UTF8.GetBytes(new string('a', 1000) + "@x.de")));
    }

    [Fact]
    public void Email_and_id_paths_do_not_allocate_per_value()
    {
        var rules = IdentityRules.Default;
        var email = rules.Find("email")!;
        var customer = rules.Find("customer_id")!;
        var anonymous = rules.Find("anonymous_id")!;
        var emails = new[] { " Ann.Lee@Example.org ", "bob@shop.de", "TEST@TEST.COM", "null" }.Select(Encoding.UTF8.GetBytes).ToArray();
        var ids = new[] { " C-1001 ", "NULL", "00000000-0000-0000-0000-000000000000", "3f2b8c1e-1111-4000-8000-000000000001" }.Select(Encoding.UTF8.GetBytes).ToArray();
        var destination = new byte[256];
        var sink = 0;
        void Pass()
        {
            foreach (var value in emails)
            {
                sink += (int)email.Canonicalize(value, destination, out _);
            }
            foreach (var value in ids)
            {
                sink += (int)customer.Canonicalize(value, destination, out _) + (int)anonymous.Canonicalize(value, destination, out _);
            }
        }
        Pass(); // warm up: first calls may initialise statics and compile regexes.
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 100; i++)
        {
            Pass();
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.True(sink > 0);
    }

    [Fact]
    public void A_limit_or_threshold_of_zero_is_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new IdentifierType("email", NormalizerKind.Email, new EmailNormalizer(), 0, null, Blocklist.Empty));
        Assert.Throws<ArgumentOutOfRangeException>(() => new IdentifierType("email", NormalizerKind.Email, new EmailNormalizer(), null, 0, Blocklist.Empty));
    }

    [Fact]
    public void A_phone_is_read_in_the_region_given_for_it()
    {
        var phone = IdentityRules.Default.Find("phone")!;
        var destination = new byte[64];
        Assert.Equal(NormalizeStatus.Ok, phone.Canonicalize("0151 12345678"u8, "DE", destination, out var written));
        Assert.Equal("+4915112345678", Encoding.UTF8.GetString(destination, 0, written));
        Assert.Equal(NormalizeStatus.Blocked, phone.Canonicalize("0000 0000000"u8, "DE", destination, out _));
    }

    [Fact]
    public void An_invalid_pattern_throws_with_the_regex_error()
        => Assert.ThrowsAny<ArgumentException>(() => new Blocklist([], ["(unclosed"]));
}
