using System.Text;
using Engine.Identity;
using Engine.TestKit;
using Engine.Workspaces;

namespace Engine.Tests.Workspaces;

public class IdentityRulesLoadingTests
{
    private const string Source = """
        name: crm
        location: data/crm
        columns:
          customer_id: string
          email: string
          phone: string
          first_name: string
          last_name: string
          postcode: string
          visits: int64
        identifiers:
          customer_id: customer_id
          email: email
          phone: phone

        """;

    private static TempDirectory Workspace(string? identity, string source = Source)
    {
        var dir = new TempDirectory("ws");
        File.WriteAllText(dir.Combine("workspace.yaml"), "name: shop\n");
        Directory.CreateDirectory(dir.Combine("sources"));
        File.WriteAllText(dir.Combine("sources/crm.yaml"), source);
        if (identity is not null)
        {
            File.WriteAllText(dir.Combine("identity.yaml"), identity);
        }
        return dir;
    }

    private static List<string> Errors(string? identity, string source = Source)
    {
        using var dir = Workspace(identity, source);
        var error = Assert.Throws<WorkspaceException>(() => WorkspaceLoader.Load(dir.Path));
        return error.Errors.Select(e => e.ToString()).ToList();
    }

    private const string Good = """
        # highest priority first
        identifier_types:
          customer_id: { normalizer: id, limit: 1 }
          email: { normalizer: email, limit: 5, strip_plus_tags: true, gmail_dots: true }
          phone: { normalizer: phone, limit: 3, default_region: gb }
          anonymous_id: { normalizer: id, shared_after: 3 }
          name_postcode: { normalizer: composite, limit: 1 }
          loyalty_card: id
        blocklist:
          defaults: true
          email: ["shop@ourcompany.com"]
          customer_id: guest-0
          patterns: { email: ["^noreply@", "@ourcompany\\.com$"] }

        """;

    [Fact]
    public void Without_identity_yaml_the_default_rules_apply()
    {
        using var dir = Workspace(null);
        var workspace = WorkspaceLoader.Load(dir.Path);
        Assert.Same(IdentityRules.Default, workspace.Identity);
        Assert.Equal(["customer_id", "email", "phone", "anonymous_id"], workspace.Identity.Types.Select(t => t.Name));
        Assert.Equal([1, 5, 3, null], workspace.Identity.Types.Select(t => t.Limit));
        Assert.Equal(1, workspace.Identity.Find("anonymous_id")!.SharedAfter);
        Assert.Equal("US", ((PhoneNormalizer)workspace.Identity.Find("phone")!.Normalizer).DefaultRegion);
    }

    [Fact]
    public void A_good_identity_yaml_is_loaded_in_priority_order_with_its_settings()
    {
        var source = Source.Replace("  phone: phone\n", "  phone: phone\ncomposite_identifiers:\n  name_postcode: [first_name, last_name, postcode]\n", StringComparison.Ordinal);
        using var dir = Workspace(Good, source);
        var workspace = WorkspaceLoader.Load(dir.Path);
        var rules = workspace.Identity;
        Assert.Equal(["customer_id", "email", "phone", "anonymous_id", "name_postcode", "loyalty_card"], rules.Types.Select(t => t.Name));
        Assert.Equal(0, rules.PriorityOf("customer_id"));
        Assert.Equal(4, rules.PriorityOf("name_postcode"));
        Assert.Equal(-1, rules.PriorityOf("fax"));
        Assert.Equal([1, 5, 3, null, 1, null], rules.Types.Select(t => t.Limit));
        Assert.Equal(3, rules.Find("anonymous_id")!.SharedAfter);
        Assert.Equal(NormalizerKind.Composite, Assert.Single(rules.Composites).Kind);
        Assert.Equal(NormalizerKind.Id, rules.Find("loyalty_card")!.Kind);

        var email = (EmailNormalizer)rules.Find("email")!.Normalizer;
        Assert.True(email.StripPlusTags);
        Assert.True(email.GmailDots);
        Assert.Equal("GB", ((PhoneNormalizer)rules.Find("phone")!.Normalizer).DefaultRegion);

        var emailBlocklist = rules.Find("email")!.Blocklist;
        Assert.True(emailBlocklist.IsBlocked("shop@ourcompany.com"u8));
        Assert.True(emailBlocklist.IsBlocked("ann@ourcompany.com"u8));
        Assert.True(emailBlocklist.IsBlocked("noreply@shop.com"u8));
        Assert.True(emailBlocklist.IsBlocked("test@test.com"u8));
        Assert.False(emailBlocklist.IsBlocked("ann@shop.com"u8));
        Assert.True(rules.Find("customer_id")!.Blocklist.IsBlocked("guest-0"u8));

        var crm = Assert.Single(workspace.Sources);
        Assert.Equal(["first_name", "last_name", "postcode"], crm.CompositeIdentifiers["name_postcode"]);
    }

    [Fact]
    public void Defaults_false_turns_the_built_in_blocklists_off()
    {
        using var dir = Workspace(Good.Replace("defaults: true", "defaults: false", StringComparison.Ordinal));
        var rules = WorkspaceLoader.Load(dir.Path).Identity;
        Assert.False(rules.Find("email")!.Blocklist.IsBlocked("test@test.com"u8));
        Assert.True(rules.Find("email")!.Blocklist.IsBlocked("shop@ourcompany.com"u8));
        Assert.False(rules.Find("anonymous_id")!.Blocklist.IsBlocked("null"u8));
    }

    [Fact]
    public void Each_bad_setting_is_reported_at_its_line_and_column()
    {
        var errors = Errors("""
            identifier_types:
              customer_id: { normalizer: id, limit: 0, shared_after: 2 }
              email: { normalizer: emial, limit: -1 }
              phone: { normalizer: phone, default_region: XX, strip_plus_tags: true }
              anonymous_id: { normalizer: hash, shared_after: many }
              card: { normalizer: id, limt: 2 }
            blocklist:
              emails: ["x@y.z"]
              patterns: { phone: ["(unclosed", "^\\+1"] }
              defaults: sometimes

            """);
        Assert.Equal(
        [
            "identity.yaml:2:41: 'limit' must be a whole number of at least 1 (leave it out for no limit), not '0'",
            "identity.yaml:2:58: 'shared_after' counts profiles formed by higher-priority types, and 'customer_id' has the highest priority; move it down or remove 'shared_after'",
            "identity.yaml:3:24: unknown normalizer 'emial' (known: id, email, phone, composite)",
            "identity.yaml:3:38: 'limit' must be a whole number of at least 1 (leave it out for no limit), not '-1'",
            "identity.yaml:4:68: 'strip_plus_tags' applies to the email normalizer only",
            "identity.yaml:4:47: unknown region code 'XX' (expected a two-letter ISO 3166 code such as US, GB, DE or FR)",
            "identity.yaml:5:31: unknown normalizer 'hash' (known: id, email, phone, composite)",
            "identity.yaml:5:51: 'shared_after' must be a whole number of at least 1 (leave it out to never treat values as shared), not 'many'",
            "identity.yaml:6:27: unknown key 'limt' (did you mean 'limit'?)",
            "identity.yaml:8:3: blocklist for 'emails': no such identifier type (did you mean 'email'?)",
            "identity.yaml:9:23: invalid pattern '(unclosed': Invalid pattern '(unclosed' at offset 9. Not enough )'s.",
            "identity.yaml:10:13: 'defaults' must be true or false",
        ], errors);
    }

    [Fact]
    public void A_source_naming_an_undefined_identifier_type_is_an_error_in_the_source()
    {
        var source = Source.Replace("  phone: phone\n", "  phone: phon\n  visits: visit_id\n", StringComparison.Ordinal);
        var errors = Errors("identifier_types:\n  customer_id: id\n  email: email\n  phone: phone\n", source);
        Assert.Contains("sources/crm.yaml:14:10: identifier type 'phon' is not defined in identity.yaml (did you mean 'phone'?)", errors);
        Assert.Contains("sources/crm.yaml:15:11: identifier type 'visit_id' is not defined in identity.yaml (defined: customer_id, email, phone)", errors);

        errors = Errors(null, source);
        Assert.Contains("sources/crm.yaml:14:10: identifier type 'phon' is not defined (did you mean 'phone'?); define your identifier types in identity.yaml to add it", errors);
    }

    [Fact]
    public void Composite_identifiers_must_name_a_composite_type_and_declared_string_columns()
    {
        var source = Source.Replace("  phone: phone\n", """
              phone: phone
              first_name: name_postcode
            composite_identifiers:
              name_postcode: [first_name, lastname, visits]
              email: [first_name, last_name]
              name_zip: [first_name, postcode]
              name_only: first_name

            """, StringComparison.Ordinal);
        var errors = Errors(Good, source);
        Assert.Equal(
        [
            "sources/crm.yaml:15:15: 'name_postcode' is a composite identifier type; list its columns under 'composite_identifiers'",
            "sources/crm.yaml:17:31: composite identifier 'name_postcode' part 'lastname' is not among the declared columns (did you mean 'last_name'?)",
            "sources/crm.yaml:17:41: composite identifier 'name_postcode' part 'visits' is declared int64; parts must be string columns",
            "sources/crm.yaml:18:3: 'email' is not a composite identifier type (its normalizer is email); map its column under 'identifiers'",
            "sources/crm.yaml:19:3: identifier type 'name_zip' is not defined in identity.yaml (defined: name_postcode)",
            "sources/crm.yaml:20:3: identifier type 'name_only' is not defined in identity.yaml (defined: name_postcode)",
            "sources/crm.yaml:20:14: composite identifier 'name_only': expected a list of two or more columns, such as [first_name, last_name, postcode]",
        ], errors);
    }

    [Fact]
    public void An_identity_yaml_without_types_says_what_to_add()
    {
        Assert.Equal(["identity.yaml:1:1: missing required key 'identifier_types'"], Errors("blocklist: { defaults: false }\n"));
        Assert.Equal(["identity.yaml:1:19: declare at least one identifier type, highest priority first"], Errors("identifier_types: {}\n"));
    }

    [Fact]
    public void Type_names_must_be_names_and_not_the_blocklist_settings()
    {
        Assert.Equal(
        [
            "identity.yaml:3:3: identifier type name '2fa' must be letters, digits and underscores, starting with a letter",
            "identity.yaml:4:3: 'patterns' is reserved (the blocklist uses it); choose another identifier type name",
            "identity.yaml:5:9: identifier type 'card': expected a normalizer name or a mapping with 'normalizer'",
        ], Errors("identifier_types:\n  customer_id: ID\n  2fa: id\n  patterns: id\n  card: [id]\n"));
    }

    [Fact]
    public void Loaded_rules_normalise_like_the_defaults()
    {
        using var dir = Workspace(Good);
        var email = WorkspaceLoader.Load(dir.Path).Identity.Find("email")!;
        var destination = new byte[64];
        Assert.Equal(NormalizeStatus.Ok, email.Canonicalize(" A.n.n+shop@GoogleMail.com "u8, destination, out var written));
        Assert.Equal("ann@gmail.com", Encoding.UTF8.GetString(destination, 0, written));
        Assert.Equal(NormalizeStatus.Blocked, email.Canonicalize("Shop@OurCompany.com"u8, destination, out _));
    }

    private const string CountrySource = """
        name: crm
        location: data/crm
        columns:
          customer_id: string
          email: string
          phone: string
          country: string
          visits: int64
        identifiers:
          customer_id: customer_id
          email: email
          phone: { type: phone, region_column: country }

        """;

    [Fact]
    public void A_phone_column_can_take_its_region_from_another_column()
    {
        using var dir = Workspace(null, CountrySource);
        var source = WorkspaceLoader.Load(dir.Path).Sources.Single();
        Assert.Equal("phone", source.Identifiers["phone"]);
        Assert.Equal("country", source.PhoneRegionColumns["phone"]);
        Assert.False(source.PhoneRegionColumns.ContainsKey("email"));
    }

    [Fact]
    public void A_region_column_is_checked_where_it_is_written()
    {
        Assert.Equal(
            ["sources/crm.yaml:11:40: 'region_column' applies to phone identifiers; 'email' uses the email normalizer"],
            Errors(null, CountrySource.Replace("email: email", "email: { type: email, region_column: country }", StringComparison.Ordinal)));
        Assert.Equal(
            ["sources/crm.yaml:12:40: region column 'contry' is not among the declared columns (did you mean 'country'?)"],
            Errors(null, CountrySource.Replace("region_column: country", "region_column: contry", StringComparison.Ordinal)));
        Assert.Equal(
            ["sources/crm.yaml:12:40: region column 'visits' is declared int64; it must be a string column of ISO 3166 country codes"],
            Errors(null, CountrySource.Replace("region_column: country", "region_column: visits", StringComparison.Ordinal)));
        var unknown = Assert.Single(Errors(null, CountrySource.Replace("region_column: country", "region: country", StringComparison.Ordinal)));
        Assert.StartsWith("sources/crm.yaml:12:", unknown, StringComparison.Ordinal);
        Assert.Contains("'region'", unknown, StringComparison.Ordinal);
    }
}
