using PhoneNumbers;

namespace Engine.Datasets.Tests;

/// <summary>
/// The ground truth agrees with the rows: every identifier found is in it once, junk and shared values belong to
/// nobody, and linkable ids are exactly the connected components recomputed here from the rows themselves.
/// </summary>
public sealed class TruthTests(GeneratedData data)
{
    private static readonly PhoneNumberUtil Phones = PhoneNumberUtil.GetInstance();

    private sealed record TruthRow(long? PersonId, long? LinkableId, string Kind);

    /// <summary>The canonical form the truth dataset documents; null for values that are not identifiers (empty).</summary>
    private static string? Canonical(string type, string? value, string? country)
    {
        if (value is null || value.Trim().Length == 0)
        {
            return null;
        }
        return type switch
        {
            "email" => value.Trim().ToLowerInvariant(),
            "phone" => CanonicalPhone(value, country),
            _ => value.Trim(),
        };
    }

    private static string CanonicalPhone(string value, string? country)
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

    private Dictionary<(string Type, string Value), TruthRow> LoadTruth()
    {
        var truth = new Dictionary<(string, string), TruthRow>();
        foreach (var row in data.Rows("SELECT identifier_type, identifier_value, person_id, linkable_id, kind FROM truth"))
        {
            var key = ((string)row[0]!, (string)row[1]!);
            Assert.True(truth.TryAdd(key, new TruthRow((long?)row[2], (long?)row[3], (string)row[4]!)), $"duplicate truth row for a {key.Item1}");
        }
        return truth;
    }

    /// <summary>Every row's identifiers as (type, canonical value) lists: events, profiles, then consent.</summary>
    private IEnumerable<List<(string Type, string Value)>> RowIdentifiers()
    {
        foreach (var row in data.Rows("SELECT anonymous_id, user_id, email FROM events"))
        {
            yield return Collect(("anonymous_id", (string?)row[0], null), ("customer_id", (string?)row[1], null), ("email", (string?)row[2], null));
        }
        foreach (var row in data.Rows("SELECT customer_id, email, phone, country FROM profiles"))
        {
            yield return Collect(("customer_id", (string?)row[0], null), ("email", (string?)row[1], null), ("phone", (string?)row[2], (string?)row[3]));
        }
        foreach (var row in data.Rows("SELECT identifier_type, identifier_value FROM consent"))
        {
            yield return Collect(((string)row[0]!, (string?)row[1], null));
        }
    }

    private static List<(string, string)> Collect(params (string Type, string? Value, string? Country)[] cells)
    {
        var result = new List<(string, string)>(cells.Length);
        foreach (var (type, value, country) in cells)
        {
            if (Canonical(type, value, country) is { } canonical)
            {
                result.Add((type, canonical));
            }
        }
        return result;
    }

    [Fact]
    public void Every_identifier_on_every_row_is_in_truth_and_every_truth_row_is_used()
    {
        var truth = LoadTruth();
        var seen = new HashSet<(string, string)>();
        foreach (var identifiers in RowIdentifiers())
        {
            foreach (var identifier in identifiers)
            {
                Assert.True(truth.ContainsKey(identifier), $"a {identifier.Type} on a row is missing from truth");
                seen.Add(identifier);
            }
        }
        foreach (var (key, row) in truth)
        {
            if (row.Kind != "junk")
            {
                Assert.True(seen.Contains(key), $"a {row.Kind} {key.Type} in truth appears on no row");
            }
        }
    }

    [Fact]
    public void Junk_and_shared_values_belong_to_nobody_and_the_rest_to_someone()
    {
        var truth = LoadTruth();
        foreach (var (key, row) in truth)
        {
            if (row.Kind is "junk" or "shared")
            {
                Assert.Null(row.PersonId);
                Assert.Null(row.LinkableId);
            }
            else
            {
                Assert.NotNull(row.PersonId);
                Assert.NotNull(row.LinkableId);
                Assert.InRange(row.PersonId!.Value, 1, GeneratedData.Options.People);
            }
        }
        Assert.Equal("junk", truth[("email", "test@test.com")].Kind);
        Assert.Equal("junk", truth[("customer_id", "undefined")].Kind);
        Assert.Equal("junk", truth[("anonymous_id", "00000000-0000-0000-0000-000000000000")].Kind);
        Assert.Equal("junk", truth[("phone", "+10000000000")].Kind);
        Assert.Equal("junk", truth[("phone", "n/a")].Kind);
    }

    [Fact]
    public void Each_linkable_id_belongs_to_exactly_one_person()
    {
        Assert.Equal(0, data.Scalar("SELECT count(*) FROM (SELECT linkable_id FROM truth WHERE linkable_id IS NOT NULL GROUP BY 1 HAVING count(DISTINCT person_id) > 1)"));
        Assert.Equal(0, data.Scalar("SELECT count(*) FROM (SELECT identifier_type, identifier_value FROM truth GROUP BY ALL HAVING count(*) > 1)"));
    }

    [Fact]
    public void Linkable_ids_are_the_components_recomputed_from_the_rows()
    {
        var truth = LoadTruth();
        var index = new Dictionary<(string, string), int>();
        var parent = new List<int>();
        int Node((string, string) key)
        {
            if (!index.TryGetValue(key, out var i))
            {
                i = parent.Count;
                index[key] = i;
                parent.Add(i);
            }
            return i;
        }
        int Find(int x)
        {
            while (parent[x] != x)
            {
                parent[x] = parent[parent[x]];
                x = parent[x];
            }
            return x;
        }

        foreach (var identifiers in RowIdentifiers())
        {
            var first = -1;
            long? person = null;
            foreach (var identifier in identifiers)
            {
                var row = truth[identifier];
                if (row.PersonId is not { } id)
                {
                    continue; // junk and shared values link nothing
                }
                // A row never mixes two people's own identifiers.
                Assert.True(person is null || person == id, "a row carries identifiers of two different people");
                person = id;
                var node = Node(identifier);
                if (first < 0)
                {
                    first = node;
                }
                else
                {
                    var (a, b) = (Find(first), Find(node));
                    if (a != b)
                    {
                        parent[a] = b;
                    }
                }
            }
        }

        var linkableOfRoot = new Dictionary<int, long>();
        var rootOfLinkable = new Dictionary<long, int>();
        var checkedRows = 0;
        foreach (var (key, row) in truth)
        {
            if (row.LinkableId is not { } linkable)
            {
                continue;
            }
            var root = Find(Node(key));
            Assert.Equal(linkable, linkableOfRoot.TryAdd(root, linkable) ? linkable : linkableOfRoot[root]);
            Assert.Equal(root, rootOfLinkable.TryAdd(linkable, root) ? root : rootOfLinkable[linkable]);
            checkedRows++;
        }
        Assert.True(checkedRows > 10_000);
        // Linking is real: far fewer components than identifiers.
        Assert.True(linkableOfRoot.Count < checkedRows * 0.8);
    }

    [Fact]
    public void Person_phones_are_valid_numbers_and_profile_phones_canonicalise_with_the_country()
    {
        var valid = 0;
        foreach (var row in data.Rows("SELECT identifier_value FROM truth WHERE identifier_type = 'phone' AND kind = 'person'"))
        {
            var value = (string)row[0]!;
            var number = Phones.Parse(value, null);
            Assert.True(Phones.IsValidNumber(number), "an invalid phone number was generated");
            Assert.Equal(value, Phones.Format(number, PhoneNumberFormat.E164));
            valid++;
        }
        Assert.True(valid > 1000);
    }
}
