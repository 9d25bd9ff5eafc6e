using System.Text;
using Engine.Identity;
using PhoneNumbers;

namespace Engine.Datasets.Tests;

/// <summary>
/// The engine's default identity rules agree with the generator's truth: every value they accept normalises to the
/// canonical form truth lists and is not junk there, and every value they refuse (empty, invalid or blocklisted) is
/// junk in truth or empty. Failures name the type and truth's kind only, never a value.
/// </summary>
public sealed class IdentityRulesAgreementTests(GeneratedData data)
{
    private static readonly PhoneNumberUtil Phones = PhoneNumberUtil.GetInstance();

    [Fact]
    public void Default_rules_accept_exactly_the_non_junk_values_in_their_canonical_form()
    {
        var truth = new Dictionary<(string, string), string>();
        foreach (var row in data.Rows("SELECT identifier_type, identifier_value, kind FROM truth"))
        {
            truth[((string)row[0]!, (string)row[1]!)] = (string)row[2]!;
        }

        var cells = new List<(string Type, string? Value, string? Country)>();
        foreach (var row in data.Rows("SELECT DISTINCT anonymous_id, user_id, email FROM events"))
        {
            cells.Add(("anonymous_id", (string?)row[0], null));
            cells.Add(("customer_id", (string?)row[1], null));
            cells.Add(("email", (string?)row[2], null));
        }
        foreach (var row in data.Rows("SELECT DISTINCT customer_id, email, phone, country FROM profiles"))
        {
            cells.Add(("customer_id", (string?)row[0], null));
            cells.Add(("email", (string?)row[1], null));
            cells.Add(("phone", (string?)row[2], (string?)row[3]));
        }
        foreach (var row in data.Rows("SELECT DISTINCT identifier_type, identifier_value FROM consent"))
        {
            cells.Add(((string)row[0]!, (string?)row[1], null));
        }

        var rules = IdentityRules.Default;
        var destination = new byte[1024];
        var problems = new Dictionary<string, int>(StringComparer.Ordinal);
        var accepted = 0;
        var refused = 0;
        foreach (var (typeName, value, country) in cells)
        {
            if (value is null)
            {
                continue;
            }
            var type = rules.Find(typeName)!;
            var input = Encoding.UTF8.GetBytes(value);
            var status = type.Canonicalize(input, country, destination, out var written);

            var canonical = Encoding.UTF8.GetString(destination, 0, written);
            if (status == NormalizeStatus.Ok)
            {
                accepted++;
                if (!truth.TryGetValue((typeName, canonical), out var kind))
                {
                    Count(problems, $"{typeName}: accepted, canonical form not in truth");
                }
                else if (kind == "junk")
                {
                    Count(problems, $"{typeName}: accepted, but junk in truth");
                }
            }
            else
            {
                refused++;
                // Truth keys refused values by its own canonical form: trimmed (and lower-cased for emails).
                var trimmed = typeName switch
                {
                    "email" => value.Trim().ToLowerInvariant(),
                    "phone" => TruthPhone(value, country),
                    _ => value.Trim(),
                };
                if (trimmed.Length > 0 && truth.TryGetValue((typeName, trimmed), out var kind) && kind != "junk")
                {
                    Count(problems, $"{typeName}: refused ({status}), but {kind} in truth");
                }
            }
        }

        Assert.True(accepted > 10_000, $"only {accepted} values accepted");
        Assert.True(refused > 100, $"only {refused} values refused");
        Assert.True(problems.Count == 0, string.Join("; ", problems.Select(p => $"{p.Key} ×{p.Value}")));
    }

    private static string TruthPhone(string value, string? country)
    {
        try
        {
            return Phones.Format(Phones.Parse(value, country), PhoneNumberFormat.E164);
        }
        catch (NumberParseException)
        {
            return value.Trim();
        }
    }

    private static void Count(Dictionary<string, int> counts, string key)
        => counts[key] = counts.TryGetValue(key, out var n) ? n + 1 : 1;
}
