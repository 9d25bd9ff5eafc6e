using System.Text;
using CsCheck;
using Engine.Identity;

namespace Engine.Tests.Identity;

public class NormalizerTests
{
    internal static (NormalizeStatus Status, string Value) Run(IIdentifierNormalizer normalizer, string raw)
    {
        var input = Encoding.UTF8.GetBytes(raw);
        var destination = new byte[IdentifierNormalizers.MaxOutputBytes(input.Length)];
        var status = normalizer.Normalize(input, destination, out var written);
        return (status, Encoding.UTF8.GetString(destination, 0, written));
    }

    private static string Ok(IIdentifierNormalizer normalizer, string raw)
    {
        var (status, value) = Run(normalizer, raw);
        Assert.Equal(NormalizeStatus.Ok, status);
        return value;
    }

    [Theory]
    [InlineData("Ann.Lee@Example.COM", "ann.lee@example.com")]
    [InlineData("  ann@shop.de \t", "ann@shop.de")]
    [InlineData("\u00A0ann@shop.de\u2003\uFEFF", "ann@shop.de")]
    [InlineData("Ann+News@Shop.de", "ann+news@shop.de")]
    [InlineData("A.n.N@GoogleMail.com", "a.n.n@googlemail.com")]
    [InlineData("ÄNN@Müller.DE", "änn@müller.de")]
    public void Email_is_trimmed_and_lower_cased_and_nothing_more_by_default(string raw, string expected)
        => Assert.Equal(expected, Ok(new EmailNormalizer(), raw));

    [Theory]
    [InlineData("Ann+News@Shop.de", "ann@shop.de")]
    [InlineData("ann+a+b@shop.de", "ann@shop.de")]
    [InlineData("+tag@shop.de", "+tag@shop.de")]
    [InlineData("a.n.n+x@gmail.com", "ann@gmail.com")]
    [InlineData("A.N.N@googlemail.com", "ann@gmail.com")]
    [InlineData("a.n.n@outlook.com", "a.n.n@outlook.com")]
    [InlineData("a.n.n+x@outlook.com", "a.n.n@outlook.com")]
    [InlineData("Ä.nn+x@gmail.com", "änn@gmail.com")]
    public void Plus_tags_and_gmail_dots_are_removed_when_asked(string raw, string expected)
        => Assert.Equal(expected, Ok(new EmailNormalizer(stripPlusTags: true, gmailDots: true), raw));

    [Theory]
    [InlineData("", NormalizeStatus.Empty)]
    [InlineData("   \t ", NormalizeStatus.Empty)]
    [InlineData("null", NormalizeStatus.Invalid)]
    [InlineData("ann.example.com", NormalizeStatus.Invalid)]
    [InlineData("ann@@example.com", NormalizeStatus.Invalid)]
    [InlineData("ann@x@example.com", NormalizeStatus.Invalid)]
    [InlineData("@example.com", NormalizeStatus.Invalid)]
    [InlineData("ann@", NormalizeStatus.Invalid)]
    [InlineData("ann lee@example.com", NormalizeStatus.Invalid)]
    [InlineData("änn\u00A0lee@example.com", NormalizeStatus.Invalid)]
    public void Malformed_emails_are_invalid_or_empty(string raw, NormalizeStatus expected)
        => Assert.Equal(expected, Run(new EmailNormalizer(true, true), raw).Status);

    [Fact]
    public void Invalid_utf8_is_invalid_not_replaced()
    {
        byte[] input = [(byte)'a', 0xC3, (byte)'@', (byte)'b'];
        var destination = new byte[64];
        Assert.Equal(NormalizeStatus.Invalid, new EmailNormalizer().Normalize(input, destination, out _));
    }

    [Fact]
    public void A_destination_too_small_is_reported_not_thrown()
    {
        var destination = new byte[4];
        Assert.Equal(NormalizeStatus.TooLong, new EmailNormalizer().Normalize("ann@example.com"u8, destination, out _));
        Assert.Equal(NormalizeStatus.TooLong, IdNormalizer.Instance.Normalize("customer-1"u8, destination, out _));
        Assert.Equal(NormalizeStatus.TooLong, new PhoneNormalizer("US").Normalize("(415) 555-2671"u8, destination, out _));
    }

    [Theory]
    [InlineData("US", "+14155552671", "(415) 555-2671", "415-555-2671", "415.555.2671", "+1 415 555 2671", "1 (415) 555 2671", "+1-415-555-2671")]
    [InlineData("GB", "+447911123456", "07911 123456", "07911-123-456", "+44 7911 123456", "+44 (0)7911 123456", "(07911) 123456")]
    [InlineData("DE", "+4915112345678", "0151 12345678", "0151-1234 5678", "+49 151 12345678", "+49 (0)151 12345678", "0049 151 12345678")]
    [InlineData("FR", "+33612345678", "06 12 34 56 78", "06-12-34-56-78", "+33 6 12 34 56 78", "+33 (0)6 12 34 56 78", "0033 612345678")]
    public void Phones_in_national_and_international_formats_give_one_E164(string region, string expected, params string[] written)
    {
        var normalizer = new PhoneNormalizer(region);
        foreach (var raw in written)
        {
            Assert.Equal(expected, Ok(normalizer, raw));
        }
        // International forms parse the same whatever the default region.
        Assert.Equal(expected, Ok(new PhoneNormalizer("US"), written[^1].StartsWith('+') ? written[^1] : expected));
    }

    [Fact]
    public void Every_regions_example_mobile_in_any_format_gives_its_E164_and_E164_gives_itself()
    {
        var util = PhoneNumbers.PhoneNumberUtil.GetInstance();
        var checkedRegions = 0;
        foreach (var region in util.GetSupportedRegions())
        {
            var example = util.GetExampleNumberForType(region, PhoneNumbers.PhoneNumberType.MOBILE);
            if (example is null)
            {
                continue;
            }
            var e164 = util.Format(example, PhoneNumbers.PhoneNumberFormat.E164);
            var normalizer = new PhoneNormalizer(region);
            foreach (var format in new[] { PhoneNumbers.PhoneNumberFormat.NATIONAL, PhoneNumbers.PhoneNumberFormat.INTERNATIONAL, PhoneNumbers.PhoneNumberFormat.E164 })
            {
                Assert.Equal((NormalizeStatus.Ok, e164), Run(normalizer, $"  {util.Format(example, format)} "));
            }
            Assert.Equal((NormalizeStatus.Ok, e164), Run(new PhoneNormalizer("US"), e164));
            checkedRegions++;
        }
        Assert.True(checkedRegions > 200);
    }

    [Fact]
    public void A_per_value_region_overrides_the_default()
    {
        var input = "07911 123456"u8;
        var destination = new byte[64];
        Assert.Equal(NormalizeStatus.Ok, new PhoneNormalizer("US").Normalize(input, "gb", destination, out var written));
        Assert.Equal("+447911123456", Encoding.UTF8.GetString(destination, 0, written));
    }

    [Theory]
    [InlineData("", NormalizeStatus.Empty)]
    [InlineData("n/a", NormalizeStatus.Invalid)]
    [InlineData("-", NormalizeStatus.Invalid)]
    [InlineData("unknown", NormalizeStatus.Invalid)]
    [InlineData("12", NormalizeStatus.Invalid)]
    [InlineData("123456789012345678901", NormalizeStatus.Invalid)]
    public void Unparseable_phones_are_invalid(string raw, NormalizeStatus expected)
        => Assert.Equal(expected, Run(new PhoneNormalizer("US"), raw).Status);

    [Fact]
    public void An_unknown_default_region_is_refused()
        => Assert.Throws<ArgumentException>(() => new PhoneNormalizer("XX"));

    [Theory]
    [InlineData("  C-1001 ", "C-1001")]
    [InlineData("AbC", "AbC")]
    [InlineData("\u3000id\u3000", "id")]
    public void Ids_are_trimmed_only(string raw, string expected) => Assert.Equal(expected, Ok(IdNormalizer.Instance, raw));

    [Theory]
    [InlineData("", NormalizeStatus.Empty)]
    [InlineData(" \r\n", NormalizeStatus.Empty)]
    public void Blank_ids_are_empty(string raw, NormalizeStatus expected) => Assert.Equal(expected, Run(IdNormalizer.Instance, raw).Status);

    [Theory]
    [InlineData(" Ann \u001F  Van  der Berg\u001FSW1A 1AA ", "ann\u001Fvanderberg\u001Fsw1a1aa")]
    [InlineData("ANN\u001FLEE\u001F10115", "ann\u001Flee\u001F10115")]
    [InlineData("Jean-Luc\u001FO'Brien\u001F1234 AB", "jeanluc\u001Fobrien\u001F1234ab")]
    [InlineData("Zoë\u001F  Müller \u001F 10115", "zoë\u001Fmüller\u001F10115")]
    [InlineData("José María\u001FNúñez-Pérez\u001F28013", "josémaría\u001Fnúñezpérez\u001F28013")]
    [InlineData("single", "single")]
    public void Composite_parts_keep_their_letters_and_digits_lower_cased(string raw, string expected)
        => Assert.Equal(expected, Ok(CompositeNormalizer.Instance, raw));

    [Theory]
    [InlineData("Ann\u001F\u001F10115")]
    [InlineData("Ann\u001F  \u001F10115")]
    [InlineData("\u001FLee")]
    [InlineData("Zoë\u001F")]
    [InlineData("Ann\u001F - \u001F10115")]
    [InlineData("Zoë\u001F'\u001F10115")]
    public void A_composite_with_an_empty_part_is_empty(string raw)
        => Assert.Equal(NormalizeStatus.Empty, Run(CompositeNormalizer.Instance, raw).Status);

    private static Gen<string> Pick(params string[] values) => Gen.Int[0, values.Length - 1].Select(i => values[i]);

    private static readonly Gen<string> AsciiText = Gen.Char[' ', '~'].Array[0, 40].Select(chars => new string(chars));

    private static readonly Gen<string> EmailLike = Gen.Select(
        Pick(" ", "", "\t", "\u00A0"),
        Gen.String[Gen.Char.AlphaNumeric, 1, 10],
        Pick("", "+", "+tag", ".", "+a.b"),
        Pick("@gmail.com", "@GoogleMail.com", "@Shop.DE", "@x.io", "@@x", "", "@"),
        (pad, local, tag, domain) => $"{pad}{local}{tag}{domain}{pad}");

    [Fact]
    public void Email_normalisation_is_idempotent()
    {
        foreach (var normalizer in new[] { new EmailNormalizer(), new EmailNormalizer(true, true) })
        {
            Gen.OneOf(EmailLike, AsciiText, Gen.String).Sample(raw =>
            {
                var (status, once) = Run(normalizer, raw);
                if (status != NormalizeStatus.Ok)
                {
                    return;
                }
                var (again, twice) = Run(normalizer, once);
                Assert.Equal(NormalizeStatus.Ok, again);
                Assert.Equal(once, twice);
            });
        }
    }

    [Fact]
    public void Ascii_email_fast_path_equals_the_string_reference()
    {
        // Only white space the reference's Trim() also trims: ASCII spaces and controls 9-13.
        var normalizer = new EmailNormalizer();
        Gen.OneOf(EmailLike.Where(s => Ascii.IsValid(s)), AsciiText, Gen.Char[(char)9, (char)13].Array[0, 2].Select(a => new string(a) + "Ab@Cd.ef ")).Sample(raw =>
        {
            var (status, value) = Run(normalizer, raw);
            var reference = raw.Trim().ToLowerInvariant();
            var valid = reference.Count(c => c == '@') == 1 && reference[0] != '@' && reference[^1] != '@' && !reference.Any(char.IsWhiteSpace);
            if (reference.Length == 0)
            {
                Assert.Equal(NormalizeStatus.Empty, status);
            }
            else if (valid)
            {
                Assert.Equal(NormalizeStatus.Ok, status);
                Assert.Equal(reference, value);
            }
            else
            {
                Assert.Equal(NormalizeStatus.Invalid, status);
            }
        });
    }

    [Fact]
    public void Canonical_ids_and_composites_normalise_to_themselves()
    {
        Gen.String.Sample(raw =>
        {
            foreach (var normalizer in new IIdentifierNormalizer[] { IdNormalizer.Instance, CompositeNormalizer.Instance })
            {
                var (status, once) = Run(normalizer, raw);
                if (status == NormalizeStatus.Ok)
                {
                    Assert.Equal((NormalizeStatus.Ok, once), Run(normalizer, once));
                }
            }
        });
    }
}
