using System.Text;
using Apache.Arrow;
using CsCheck;
using PhoneNumbers;

namespace Engine.Datasets.Tests;

/// <summary>The generator's building blocks: permutation, random stream, phone plans, column buffers, email styles.</summary>
public sealed class BuildingBlockTests
{
    [Fact]
    public void Permutation_is_a_bijection_of_its_range()
    {
        Gen.Select(Gen.ULong[1, 3000], Gen.Long).Sample((n, seed) =>
        {
            var permutation = new Permutation(n, seed);
            var seen = new bool[n];
            for (ulong x = 0; x < n; x++)
            {
                var y = permutation[x];
                Assert.True(y < n);
                Assert.False(seen[y]);
                seen[y] = true;
            }
        }, iter: 200);
    }

    [Fact]
    public void Random_stream_is_stable_across_runs_and_versions()
    {
        // Golden values: changing the generator's algorithm would change every data set, so it must be deliberate.
        var rng = Rng.ForStream(42, 7);
        Assert.Equal(11446834145910722687UL, rng.NextUInt64());
        Assert.NotEqual(Rng.ForStream(42, 7).NextUInt64(), Rng.ForStream(42, 8).NextUInt64());
        Assert.Equal(0xE220A8397B1DCDAFUL, Mix.SplitMix64(0x9E3779B97F4A7C15UL));
        var u = Rng.ForStream(1, 1);
        var sum = 0.0;
        for (var i = 0; i < 100_000; i++)
        {
            var d = u.NextDouble();
            Assert.InRange(d, 0.0, 0.9999999999999999);
            sum += d;
        }
        Assert.InRange(sum / 100_000, 0.49, 0.51);
        var poisson = Rng.ForStream(1, 2);
        var total = 0L;
        for (var i = 0; i < 20_000; i++)
        {
            total += poisson.Poisson(3.5);
        }
        Assert.InRange(total / 20_000.0, 3.4, 3.6);
    }

    [Fact]
    public void Every_phone_format_parses_back_to_the_same_valid_mobile()
    {
        var util = PhoneNumberUtil.GetInstance();
        var rng = Rng.ForStream(5, 5);
        Span<byte> e164 = stackalloc byte[32];
        Span<byte> written = stackalloc byte[64];
        foreach (var country in Vocabulary.Countries)
        {
            var plan = country.Phone;
            Assert.True(plan.Capacity >= 2UL * GeneratorOptions.MaxPeople, $"{plan.Region} has room for {plan.Capacity} numbers");
            var permutation = new Permutation(plan.Capacity, 9);
            for (var i = 0; i < 200; i++)
            {
                var value = i < 2 ? (i == 0 ? 0 : plan.Capacity - 1) : permutation[(ulong)rng.NextUInt64() % plan.Capacity];
                var length = plan.WriteE164(value, e164);
                var canonical = Encoding.ASCII.GetString(e164[..length]);
                var parsed = util.Parse(canonical, null);
                Assert.True(util.IsValidNumber(parsed), $"{canonical} is not valid");
                Assert.Contains(util.GetNumberType(parsed), new[] { PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE });
                for (var format = 0; format < plan.Formats.Length; format++)
                {
                    var text = Encoding.ASCII.GetString(written[..plan.Render(e164[..length], format, written)]);
                    var region = System.Array.IndexOf(plan.PlusFormats, format) >= 0 ? null : plan.Region;
                    Assert.Equal(canonical, util.Format(util.Parse(text, region), PhoneNumberFormat.E164));
                }
            }
        }
    }

    [Fact]
    public void Column_buffers_round_trip_values_and_nulls_and_are_reusable()
    {
        var schema = new Schema.Builder()
            .Field(new Field("s", Apache.Arrow.Types.StringType.Default, true))
            .Field(new Field("n", Apache.Arrow.Types.Int64Type.Default, true))
            .Build();
        var buffers = new BatchBuffers(schema);
        for (var round = 0; round < 2; round++)
        {
            buffers.Reset();
            for (var i = 0; i < 1000; i++)
            {
                if (i % 7 == 0)
                {
                    buffers.Utf8(0).AppendNull();
                    buffers.Fixed(1).AppendNull();
                }
                else
                {
                    buffers.Utf8(0).Append(Encoding.UTF8.GetBytes($"v{i}-{round}é"));
                    buffers.Fixed(1).Append((long)i * round);
                }
            }
            var batch = buffers.Build();
            Assert.Equal(1000, batch.Length);
            var strings = (StringArray)batch.Column(0);
            var numbers = (Int64Array)batch.Column(1);
            Assert.Equal(143, strings.NullCount);
            for (var i = 0; i < 1000; i++)
            {
                Assert.Equal(i % 7 == 0 ? null : $"v{i}-{round}é", strings.GetString(i));
                Assert.Equal(i % 7 == 0 ? null : (long)i * round, numbers.GetValue(i));
            }
        }
    }

    [Theory]
    [InlineData(0, "anna.keller17@gmail.com")]
    [InlineData(1, "Anna.keller17@gmail.com")]
    [InlineData(2, "ANNA.KELLER17@GMAIL.COM")]
    [InlineData(3, "anna.keller17@gmail.com ")]
    [InlineData(4, " anna.keller17@gmail.com")]
    [InlineData(5, "Anna.keller17@gmail.com ")]
    public void Email_styles_only_change_case_and_spacing(int style, string expected)
    {
        Span<byte> buffer = stackalloc byte[64];
        var length = IdentifierTable.RenderEmail("anna.keller17@gmail.com"u8, (EmailStyle)style, buffer);
        var text = Encoding.ASCII.GetString(buffer[..length]);
        Assert.Equal(expected, text);
        Assert.Equal("anna.keller17@gmail.com", text.Trim().ToLowerInvariant());
    }

    [Fact]
    public void Junk_truth_values_are_canonical_and_distinct()
    {
        var seen = new HashSet<(IdType, string)>();
        foreach (var (type, value) in JunkValues.Canonical)
        {
            var text = Encoding.UTF8.GetString(value);
            Assert.Equal(text.Trim(), text);
            Assert.NotEmpty(text);
            Assert.True(seen.Add((type, text)));
        }
        Assert.Contains((IdType.Phone, "+10000000000"), seen);
        Assert.Contains((IdType.Email, "test@test.com"), seen);
    }
}
