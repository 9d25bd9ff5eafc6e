using System.Text;

namespace Engine.Datasets;

/// <summary>A country the simulated customers live in: its ISO code, names, email providers and phone plan.</summary>
internal sealed class Country
{
    public required int Index { get; init; }

    public required byte[] Code { get; init; }

    public required double Weight { get; init; }

    public required NameList Names { get; init; }

    /// <summary>Free-mail providers, cumulative weights in <see cref="MailWeights"/>.</summary>
    public required byte[][] MailDomains { get; init; }

    public required double[] MailWeights { get; init; }

    public required PhonePlan Phone { get; init; }

    public required PostcodeStyle Postcode { get; init; }
}

/// <summary>How a country writes postcodes.</summary>
internal enum PostcodeStyle : byte
{
    /// <summary>Five digits (US, DE, FR).</summary>
    FiveDigits,
    /// <summary>UK outward + inward code: <c>SW1A 1AA</c>.</summary>
    British,
    /// <summary>Four digits and two letters: <c>1234 AB</c>.</summary>
    Dutch,
    /// <summary>Four digits (AU).</summary>
    FourDigits,
}

/// <summary>First and last names of one language, as written (UTF-8) and as they appear in email addresses (ASCII).</summary>
internal sealed class NameList
{
    public NameList(string[] first, string[] last, (string Formal, string Nick)[] nicknames)
    {
        First = Encode(first);
        Last = Encode(last);
        FirstAscii = Ascii(first);
        LastAscii = Ascii(last);
        Nick = new byte[first.Length][];
        for (var i = 0; i < first.Length; i++)
        {
            foreach (var (formal, nick) in nicknames)
            {
                if (formal == first[i])
                {
                    Nick[i] = Encoding.UTF8.GetBytes(nick);
                }
            }
        }
    }

    public byte[][] First { get; }

    public byte[][] Last { get; }

    public byte[][] FirstAscii { get; }

    public byte[][] LastAscii { get; }

    /// <summary>The short form of a first name, or null: duplicate CRM records are often created under it.</summary>
    public byte[]?[] Nick { get; }

    private static byte[][] Encode(string[] names)
    {
        var result = new byte[names.Length][];
        for (var i = 0; i < names.Length; i++)
        {
            result[i] = Encoding.UTF8.GetBytes(names[i]);
        }
        return result;
    }

    /// <summary>Lower-case ASCII as mail providers accept it: umlauts spelled out, accents dropped, spaces and apostrophes removed.</summary>
    private static byte[][] Ascii(string[] names)
    {
        var result = new byte[names.Length][];
        var text = new StringBuilder();
        for (var i = 0; i < names.Length; i++)
        {
            text.Clear();
            foreach (var c in names[i].ToLowerInvariant())
            {
                _ = c switch
                {
                    'ä' => text.Append("ae"),
                    'ö' => text.Append("oe"),
                    'ü' => text.Append("ue"),
                    'ß' => text.Append("ss"),
                    'é' or 'è' or 'ê' or 'ë' => text.Append('e'),
                    'à' or 'â' => text.Append('a'),
                    'ç' => text.Append('c'),
                    'î' or 'ï' => text.Append('i'),
                    'ô' => text.Append('o'),
                    'û' or 'ù' => text.Append('u'),
                    >= 'a' and <= 'z' => text.Append(c),
                    _ => text,
                };
            }
            result[i] = Encoding.ASCII.GetBytes(text.ToString());
        }
        return result;
    }
}

/// <summary>Fixed word lists. Fictional companies only; free-mail domains are the common real ones so that
/// provider-specific normalisation rules (gmail dots, plus tags) have something real to work on.</summary>
internal static class Vocabulary
{
    private static readonly NameList English = new(
        ["James", "Robert", "John", "Michael", "William", "David", "Richard", "Joseph", "Thomas", "Christopher", "Daniel",
         "Matthew", "Anthony", "Andrew", "Joshua", "Steven", "Kevin", "Brian", "Edward", "Jacob", "Oliver", "Harry",
         "George", "Noah", "Jack", "Mary", "Patricia", "Jennifer", "Linda", "Elizabeth", "Barbara", "Susan", "Jessica",
         "Sarah", "Karen", "Emily", "Emma", "Olivia", "Sophie", "Charlotte", "Amelia", "Isla", "Grace", "Chloe",
         "Rebecca", "Katherine", "Samantha", "Megan", "Hannah", "Lucy"],
        ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez", "Wilson",
         "Anderson", "Taylor", "Thomas", "Moore", "Jackson", "Martin", "Lee", "Thompson", "White", "Harris", "Clark",
         "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Green", "Baker", "Adams", "Nelson",
         "Hill", "Campbell", "Mitchell", "Roberts", "Carter", "Phillips", "Evans", "Turner", "Parker", "Collins",
         "Edwards", "Stewart", "Morris", "Murphy", "O'Brien", "Kelly", "Hughes", "Wood", "Patel", "Nguyen", "Chen"],
        [("James", "Jim"), ("Robert", "Bob"), ("Michael", "Mike"), ("William", "Bill"), ("Richard", "Rick"), ("Joseph", "Joe"),
         ("Thomas", "Tom"), ("Christopher", "Chris"), ("Daniel", "Dan"), ("Matthew", "Matt"), ("Anthony", "Tony"),
         ("Andrew", "Andy"), ("Joshua", "Josh"), ("Steven", "Steve"), ("Edward", "Ed"), ("Elizabeth", "Liz"),
         ("Patricia", "Pat"), ("Jennifer", "Jen"), ("Jessica", "Jess"), ("Katherine", "Kate"), ("Samantha", "Sam"),
         ("Rebecca", "Becky"), ("Susan", "Sue"), ("Barbara", "Barb")]);

    private static readonly NameList German = new(
        ["Lukas", "Leon", "Finn", "Jonas", "Paul", "Felix", "Maximilian", "Alexander", "Sebastian", "Jürgen", "Stefan",
         "Thomas", "Michael", "Andreas", "Matthias", "Tobias", "Florian", "Uwe", "Klaus", "Björn", "Anna", "Lena",
         "Laura", "Julia", "Sophie", "Marie", "Katharina", "Sabine", "Petra", "Ursula", "Monika", "Jana", "Lea",
         "Hannah", "Christina", "Franziska", "Jörg", "Dörte", "Gisela", "Mia"],
        ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann",
         "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf", "Schröder", "Neumann", "Schwarz", "Zimmermann",
         "Braun", "Krüger", "Hofmann", "Hartmann", "Lange", "Schmitt", "Werner", "Krause", "Meier", "Lehmann",
         "Köhler", "Herrmann", "Walter", "König", "Mayer", "Huber", "Kaiser", "Fuchs", "Peters", "Lang", "Weiß", "Jung"],
        [("Maximilian", "Max"), ("Alexander", "Alex"), ("Sebastian", "Basti"), ("Matthias", "Matze"), ("Tobias", "Tobi"),
         ("Katharina", "Kathi"), ("Christina", "Tina"), ("Franziska", "Franzi"), ("Andreas", "Andi"), ("Michael", "Micha")]);

    private static readonly NameList French = new(
        ["Jean", "Pierre", "Louis", "Gabriel", "Arthur", "Jules", "Hugo", "Lucas", "Nicolas", "François", "Mathieu",
         "Julien", "Antoine", "Jérôme", "Sébastien", "Thierry", "Jean-Pierre", "Jean-Luc", "Philippe", "Benoît", "Marie",
         "Camille", "Léa", "Manon", "Chloé", "Inès", "Louise", "Juliette", "Claire", "Sophie", "Isabelle", "Nathalie",
         "Hélène", "Céline", "Aurélie", "Margaux", "Élodie", "Anaïs", "Sandrine", "Valérie"],
        ["Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau", "Simon",
         "Laurent", "Lefebvre", "Michel", "Garcia", "David", "Bertrand", "Roux", "Vincent", "Fournier", "Morel",
         "Girard", "André", "Lefèvre", "Mercier", "Dupont", "Lambert", "Bonnet", "François", "Martinez", "Legrand",
         "Garnier", "Faure", "Rousseau", "Blanc", "Guérin", "Muller", "Henry", "Roussel", "Nicolas", "Perrin", "Morin"],
        [("Nicolas", "Nico"), ("Mathieu", "Matt"), ("Sébastien", "Seb"), ("Philippe", "Phil"), ("Isabelle", "Isa"),
         ("Nathalie", "Nath"), ("Aurélie", "Aurel"), ("Valérie", "Val"), ("Jean-Pierre", "JP"), ("Antoine", "Toni")]);

    private static readonly NameList Dutch = new(
        ["Daan", "Sem", "Lucas", "Levi", "Finn", "Milan", "Jesse", "Thijs", "Bram", "Ruben", "Lars", "Sander", "Pieter",
         "Jeroen", "Joost", "Maarten", "Wouter", "Stijn", "Gerrit", "Johannes", "Emma", "Julia", "Tess", "Sophie",
         "Zoë", "Anouk", "Femke", "Sanne", "Lotte", "Iris", "Eva", "Fleur", "Maaike", "Marieke", "Ilse", "Esther",
         "Annemieke", "Willemijn", "Noor", "Roos"],
        ["de Jong", "Jansen", "de Vries", "van den Berg", "van Dijk", "Bakker", "Janssen", "Visser", "Smit", "Meijer",
         "de Boer", "Mulder", "de Groot", "Bos", "Vos", "Peters", "Hendriks", "van Leeuwen", "Dekker", "Brouwer",
         "de Wit", "Dijkstra", "Smits", "de Graaf", "van der Meer", "van der Linden", "Kok", "Jacobs", "de Haan",
         "Vermeulen", "van den Heuvel", "van der Veen", "van den Broek", "de Bruijn", "de Bruin", "van der Heijden",
         "Schouten", "van Beek", "Willems", "van Vliet"],
        [("Johannes", "Hans"), ("Pieter", "Piet"), ("Willemijn", "Wil"), ("Annemieke", "Mieke"), ("Maarten", "Maart")]);

    private static readonly (string Code, double Weight, NameList Names, (string Domain, double Weight)[] Mail, PostcodeStyle Postcode)[] CountryData =
    [
        ("US", 0.34, English, [("gmail.com", 0.45), ("yahoo.com", 0.15), ("outlook.com", 0.1), ("hotmail.com", 0.1), ("icloud.com", 0.12), ("aol.com", 0.04), ("comcast.net", 0.04)], PostcodeStyle.FiveDigits),
        ("GB", 0.20, English, [("gmail.com", 0.4), ("hotmail.co.uk", 0.18), ("yahoo.co.uk", 0.1), ("outlook.com", 0.12), ("btinternet.com", 0.1), ("icloud.com", 0.1)], PostcodeStyle.British),
        ("DE", 0.15, German, [("gmail.com", 0.3), ("web.de", 0.25), ("gmx.de", 0.25), ("t-online.de", 0.12), ("outlook.de", 0.08)], PostcodeStyle.FiveDigits),
        ("FR", 0.13, French, [("gmail.com", 0.4), ("orange.fr", 0.18), ("free.fr", 0.12), ("hotmail.fr", 0.15), ("laposte.net", 0.1), ("sfr.fr", 0.05)], PostcodeStyle.FiveDigits),
        ("NL", 0.10, Dutch, [("gmail.com", 0.45), ("hotmail.nl", 0.2), ("ziggo.nl", 0.12), ("kpnmail.nl", 0.1), ("outlook.com", 0.13)], PostcodeStyle.Dutch),
        ("AU", 0.08, English, [("gmail.com", 0.45), ("bigpond.com", 0.15), ("outlook.com", 0.15), ("yahoo.com.au", 0.12), ("icloud.com", 0.13)], PostcodeStyle.FourDigits),
    ];

    /// <summary>The countries, with cumulative weights in <see cref="CountryWeights"/>.</summary>
    public static Country[] Countries { get; } = BuildCountries();

    public static double[] CountryWeights { get; } = Mix.Cumulative(Array.ConvertAll(CountryData, c => c.Weight));

    /// <summary>Employers' mail domains (fictional) for work addresses.</summary>
    public static byte[][] CompanyDomains { get; } = Encode(
        "acme-corp.com", "globex.com", "initech.com", "northwind-traders.com", "contoso.com", "fabrikam.com", "umbrella-group.com",
        "hooli.com", "vandelay-industries.com", "wayne-enterprises.com", "stark-industries.com", "soylent.co", "tyrell-corp.com",
        "cyberdyne-systems.com", "wonka-industries.com", "gringotts-bank.com", "oceanic-air.com", "dunder-mifflin.com",
        "pied-piper.io", "massive-dynamic.com", "blue-sun.com", "weyland-yutani.com", "aperture-science.com", "black-mesa.org",
        "monarch-solutions.com", "kruger-logistik.de", "brightway-consulting.co.uk", "lumiere-conseil.fr", "polder-tech.nl",
        "southern-cross-mining.com.au", "nakatomi-trading.com", "sterling-cooper.com", "prestige-worldwide.com", "bluth-company.com");

    /// <summary>Tags people put after '+' in their address.</summary>
    public static byte[][] PlusTags { get; } = Encode("shop", "newsletter", "deals", "online", "promo", "store", "orders", "spam");

    /// <summary>Outward-code areas of UK postcodes.</summary>
    public static byte[][] BritishAreas { get; } = Encode("SW", "SE", "E", "N", "NW", "W", "EC", "M", "B", "LS", "L", "EH", "G", "BS", "CF", "NE", "OX", "CB", "BN", "RG");

    public static ReadOnlySpan<byte> Letters => "ABDEFGHJLNPQRSTUWXYZ"u8;

    private static Country[] BuildCountries()
    {
        var result = new Country[CountryData.Length];
        for (var i = 0; i < result.Length; i++)
        {
            var (code, weight, names, mail, postcode) = CountryData[i];
            result[i] = new Country
            {
                Index = i,
                Code = Encoding.ASCII.GetBytes(code),
                Weight = weight,
                Names = names,
                MailDomains = Encode(Array.ConvertAll(mail, m => m.Domain)),
                MailWeights = Mix.Cumulative(Array.ConvertAll(mail, m => m.Weight)),
                Phone = PhonePlan.For(code),
                Postcode = postcode,
            };
        }
        return result;
    }

    public static byte[][] Encode(params string[] values) => Array.ConvertAll(values, Encoding.UTF8.GetBytes);
}
