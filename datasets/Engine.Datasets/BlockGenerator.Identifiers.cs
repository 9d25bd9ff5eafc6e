namespace Engine.Datasets;

/// <summary>Identifier values of a person: cookies, customer ids, addresses and phones, and how they are typed on rows.</summary>
internal sealed partial class BlockGenerator
{
    // ---- Identifiers ---------------------------------------------------------------------------------------------

    private int NewAnonymousId(int owner, bool upper)
    {
        // High 64 bits: a bijective mix of (block, counter), so ids are unique by construction; low bits random.
        var high = Mix.SplitMix64(((ulong)_block << 32 | _anonCounter++) ^ _context.AnonKey);
        var low = _rng.NextUInt64();
        Span<byte> hex = stackalloc byte[32];
        Utf8.Hex16(high, hex);
        Utf8.Hex16(low, hex[16..]);
        Span<byte> uuid = stackalloc byte[36];
        var at = 0;
        for (var i = 0; i < 32; i++)
        {
            if (i is 8 or 12 or 16 or 20)
            {
                uuid[at++] = (byte)'-';
            }
            var c = hex[i];
            uuid[at++] = upper && c >= (byte)'a' ? (byte)(c - 32) : c;
        }
        return _ids.Add(IdType.AnonymousId, uuid, owner);
    }

    private int NewCustomerId(int slot)
    {
        Span<byte> buffer = stackalloc byte[24];
        buffer[0] = (byte)'C';
        var length = 1 + Utf8.Decimal((_q * 2) + (ulong)slot, 8, buffer[1..]);
        return _ids.Add(IdType.CustomerId, buffer[..length], _local);
    }

    /// <summary>
    /// An address from the person's name. The digits are q + slot·N (q the person's permuted number), unique per
    /// person and slot, which makes the address unique in the data set whatever the name and domain.
    /// </summary>
    private int NewEmail(int slot, bool work)
    {
        var names = _country.Names;
        var first = names.FirstAscii[_firstName];
        var last = names.LastAscii[_householdLast];
        Span<byte> buffer = stackalloc byte[128];
        var at = 0;
        var style = work ? 0 : _emailStyleOfName;
        switch (style)
        {
            case 0:
                at = Append(buffer, at, first, (byte)'.', last);
                break;
            case 1:
                at = Append(buffer, at, first, 0, last);
                break;
            case 2:
                buffer[at++] = first[0];
                at = Append(buffer, at, last, 0, []);
                break;
            case 3:
                at = Append(buffer, at, first, (byte)'_', last);
                break;
            default:
                at = Append(buffer, at, first, 0, []);
                break;
        }
        at += Utf8.Decimal(_q + ((ulong)slot * (ulong)_context.People), buffer[at..]);
        buffer[at++] = (byte)'@';
        byte[] domain;
        if (work)
        {
            domain = Vocabulary.CompanyDomains[_rng.Next(Vocabulary.CompanyDomains.Length)];
        }
        else
        {
            var index = slot == 0 ? _personalDomain : _rng.Pick(_country.MailWeights);
            domain = _country.MailDomains[index];
        }
        domain.CopyTo(buffer[at..]);
        at += domain.Length;
        return _ids.Add(IdType.Email, buffer[..at], _local);
    }

    private int NewFamilyEmail(ulong firstMemberQ)
    {
        var last = _householdCountry.Names.LastAscii[_householdLast];
        Span<byte> buffer = stackalloc byte[128];
        var at = Append(buffer, 0, "the"u8, 0, last);
        at = Append(buffer, at, "family"u8, 0, []);
        at += Utf8.Decimal(firstMemberQ + (3 * (ulong)_context.People), buffer[at..]);
        buffer[at++] = (byte)'@';
        var domain = _householdCountry.MailDomains[_rng.Pick(_householdCountry.MailWeights)];
        domain.CopyTo(buffer[at..]);
        at += domain.Length;
        return _ids.Add(IdType.Email, buffer[..at], owner: -1);
    }

    /// <summary>The plus-addressed twin of an address: local+tag@domain.</summary>
    private int PlusVariant(int email)
    {
        var value = _ids.Value(email);
        var atSign = value.IndexOf((byte)'@');
        var tag = Vocabulary.PlusTags[_rng.Next(Vocabulary.PlusTags.Length)];
        Span<byte> buffer = stackalloc byte[160];
        value[..atSign].CopyTo(buffer);
        var at = atSign;
        buffer[at++] = (byte)'+';
        tag.CopyTo(buffer[at..]);
        at += tag.Length;
        value[atSign..].CopyTo(buffer[at..]);
        at += value.Length - atSign;
        return _ids.Add(IdType.Email, buffer[..at], _local);
    }

    private int NewPhone(int slot)
    {
        Span<byte> buffer = stackalloc byte[24];
        var number = _context.PhonePermutations[_country.Index][_q + ((ulong)slot * (ulong)_context.People)];
        var length = _country.Phone.WriteE164(number, buffer);
        return _ids.Add(IdType.Phone, buffer[..length], _local, (byte)_country.Index);
    }

    private static int Append(Span<byte> buffer, int at, ReadOnlySpan<byte> a, byte separator, ReadOnlySpan<byte> b)
    {
        a.CopyTo(buffer[at..]);
        at += a.Length;
        if (separator != 0)
        {
            buffer[at++] = separator;
        }
        b.CopyTo(buffer[at..]);
        return at + b.Length;
    }

    private byte PhoneFormat(bool plusOnly)
    {
        var plan = _country.Phone;
        var formats = plusOnly || _rng.Chance(Realism.InternationalPhoneShare) ? plan.PlusFormats : plan.NationalOrIdd;
        return (byte)formats[_rng.Next(formats.Length)];
    }

    /// <summary>How a person types an address into a form.</summary>
    private EmailStyle TypedStyle()
    {
        var u = _rng.NextDouble();
        return u switch
        {
            < 0.8 => EmailStyle.Lower,
            < 0.9 => EmailStyle.Title,
            < 0.93 => EmailStyle.Upper,
            < 0.98 => EmailStyle.TrailingSpace,
            _ => EmailStyle.LeadingSpace,
        };
    }

    /// <summary>How a CRM stores an address (fixed per record).</summary>
    private EmailStyle StoredStyle()
    {
        var u = _rng.NextDouble();
        return u switch
        {
            < 0.75 => EmailStyle.Lower,
            < 0.87 => EmailStyle.Title,
            < 0.92 => EmailStyle.Upper,
            < 0.97 => EmailStyle.TrailingSpace,
            _ => EmailStyle.TitleTrailingSpace,
        };
    }

    /// <summary>The email field of an identify-type event: the address as typed, or a placeholder, or blank.</summary>
    private int TypedEmail(int email, out EmailStyle style)
    {
        style = TypedStyle();
        var u = _rng.NextDouble();
        if (u < Realism.JunkEventEmailRate)
        {
            return Ref.Junk(_rng.Next(JunkValues.Email.Length));
        }
        return u < Realism.JunkEventEmailRate + Realism.EmptyEventEmailRate ? Ref.Empty : email;
    }

    private int JunkOrNoUser() => _rng.Chance(Realism.JunkUserIdRate) ? Ref.Junk(_rng.Next(JunkValues.CustomerId.Length)) : Ref.None;
}
