namespace Engine.Datasets;

/// <summary>The role a simulated person plays.</summary>
internal enum PersonKind : byte
{
    /// <summary>Has an online account: browses, logs in, buys, subscribes, may churn.</summary>
    Registered,
    /// <summary>Browses without ever identifying.</summary>
    AnonymousOnly,
    /// <summary>Buys as a guest with an email address; may subscribe to the newsletter.</summary>
    Guest,
    /// <summary>A store customer: CRM record and mailing list, no browsing of their own.</summary>
    CrmOnly,
    /// <summary>A crawler.</summary>
    Bot,
}

/// <summary>
/// Simulates one block of people into a <see cref="BlockOutput"/>: households (which share tablets and, rarely, a
/// family address), then each person week by week: sessions on devices whose cookies expire, logins, carts and
/// orders with seasonality, email campaigns, support tickets, subscription and loyalty changes, consent, and a
/// hidden churn process. Everything comes from one random stream per block, consumed in a fixed order, so a block
/// is a pure function of (seed, block index).
/// </summary>
/// <remarks>
/// <para><b>Churn model.</b> Each person has a hidden risk r in [0, 1) (skewed low). Every week a person may start to
/// disengage with chance <see cref="Realism.DisengageWeeklyChance"/>·r² (tripled for price-sensitive subscribers after
/// the price rise), or after an unresolved support ticket (itself likelier at high r). While disengaging, engagement
/// (which scales sessions, carts and email opens) decays by about 20% a week; the person may recover, or falls
/// below <see cref="Realism.ChurnThreshold"/> and churns: the subscription is cancelled and visits stop. So churn is
/// preceded by weeks of falling activity and often by an unresolved ticket, while trial drop-outs and random
/// "life event" cancellations add noise that behaviour does not explain.</para>
/// </remarks>
internal sealed class BlockGenerator
{
    private const int MaxDevices = 5;
    private const int RingBuckets = 13; // four-week buckets: a rolling year of spend for loyalty tiers

    private readonly GeneratorContext _context;
    private readonly Calendar _calendar;
    private readonly BlockOutput _output;
    private readonly IdentifierTable _ids;
    private readonly int _blockSize;
    private Rng _rng;
    private long _block;
    private long _firstPerson;
    private ulong _anonCounter;

    // Per block.
    private long[] _personIds = [];
    private bool[] _bots = [];
    private PersonKind[] _kinds = [];

    // Per household.
    private readonly List<(double Start, int Handle)> _tabletCookies = [];
    private bool _hasTablet;
    private Country _householdCountry = null!;
    private int _householdLast;
    private int _familyEmail;
    private int _familyEmailUsesLeft;

    // Per person.
    private int _local;
    private ulong _q;
    private PersonKind _kind;
    private Country _country = null!;
    private int _firstName;
    private double _risk;
    private bool _priceSensitive;
    private double _sessionRate;
    private double _openRate;
    private double _cartPropensity;
    private double _valueScale;
    private double _engagement;
    private double _activeStart;
    private double _activeEnd;
    private readonly Device[] _devices = new Device[MaxDevices];
    private readonly double[] _deviceCumulative = new double[MaxDevices];
    private int _deviceCount;
    private int _emailStyleOfName;
    private int _personalDomain;

    // Account holders (and guests' email).
    private bool _signedUp;
    private double _signupDay;
    private int _customer;
    private int _accountEmail;
    private int _personalEmail;
    private int _workEmail;
    private int _crmEmailOverride;
    private EmailStyle _crmEmailStyle;
    private int _phone;
    private int _phone2;
    private byte _phoneFormat;
    private NameStyle _firstStyle;
    private NameStyle _lastStyle;
    private ulong _postcode;
    private int _tier;
    private int _status;
    private double _trialStart;
    private double _trialEnd;
    private double _pauseEnd;
    private double _emailChangeDay;
    private int _emailChangeTo;
    private double _phoneChangeDay;
    private double _duplicateDay;
    private readonly double[] _spend = new double[RingBuckets];
    private readonly List<Address> _addresses = [];

    // Scratch.
    private SessionPlan[] _plans = new SessionPlan[64];
    private int _planCount;

    public BlockGenerator(GeneratorContext context, BlockOutput output)
    {
        _context = context;
        _calendar = context.Calendar;
        _output = output;
        _ids = output.Ids;
        _blockSize = context.Options.BlockSize;
        for (var i = 0; i < _devices.Length; i++)
        {
            _devices[i] = new Device();
        }
    }

    /// <summary>Fills the output with block <paramref name="block"/>.</summary>
    public void Generate(long block)
    {
        _output.Reset(block);
        _block = block;
        _rng = Rng.ForStream(_context.Seed, block);
        _anonCounter = 0;
        _firstPerson = block * _blockSize;
        var count = (int)Math.Min(_blockSize, _context.People - _firstPerson);
        _output.People = count;
        if (_personIds.Length < count)
        {
            _personIds = new long[count];
            _bots = new bool[count];
            _kinds = new PersonKind[count];
        }
        for (var i = 0; i < count; i++)
        {
            _personIds[i] = _firstPerson + i + 1;
            _kinds[i] = DrawKind();
            _bots[i] = _kinds[i] == PersonKind.Bot;
        }

        var start = 0;
        while (start < count)
        {
            var size = Math.Min(_rng.Pick(HouseholdSizes) + 1, count - start);
            SetUpHousehold(start, size);
            for (var m = 0; m < size; m++)
            {
                SimulatePerson(start + m);
            }
            start += size;
        }

        // Linkable ids: the block number in the high half keeps them unique across blocks.
        _ids.WriteTruth(_output.Truth, _personIds.AsSpan(0, count), _bots.AsSpan(0, count), block << 32);
    }

    private static readonly double[] HouseholdSizes = Mix.Cumulative(Realism.HouseholdSizeWeights);
    private static readonly double[] DeviceCounts = Mix.Cumulative(Realism.DeviceCountWeights);

    private PersonKind DrawKind()
    {
        var u = _rng.NextDouble();
        if ((u -= Realism.BotShare) < 0)
        {
            return PersonKind.Bot;
        }
        if ((u -= Realism.AnonymousOnlyShare) < 0)
        {
            return PersonKind.AnonymousOnly;
        }
        if ((u -= Realism.GuestShare) < 0)
        {
            return PersonKind.Guest;
        }
        return (u -= Realism.CrmOnlyShare) < 0 ? PersonKind.CrmOnly : PersonKind.Registered;
    }

    // ---- Households ------------------------------------------------------------------------------------------------

    private void SetUpHousehold(int start, int size)
    {
        _householdCountry = Vocabulary.Countries[_rng.Pick(Vocabulary.CountryWeights)];
        _householdLast = _rng.Next(_householdCountry.Names.Last.Length);
        _tabletCookies.Clear();
        _hasTablet = false;
        _familyEmail = Ref.None;
        _familyEmailUsesLeft = 0;
        if (size < 2)
        {
            return;
        }
        if (_rng.Chance(Realism.SharedDeviceShare))
        {
            // The tablet's browser cookies, laid out over the whole window up front: its members are simulated one
            // after the other, but must see the same cookie at the same time.
            _hasTablet = true;
            var day = -_rng.Uniform(0, 60);
            while (day < _calendar.Days)
            {
                _tabletCookies.Add((day, NewAnonymousId(owner: -1, upper: false)));
                day += 1 + _rng.Exponential(60);
            }
        }
        var holders = 0;
        for (var m = 0; m < size; m++)
        {
            holders += _kinds[start + m] is PersonKind.Registered or PersonKind.CrmOnly ? 1 : 0;
        }
        if (holders >= 2 && _rng.Chance(Realism.SharedFamilyEmailShare))
        {
            _familyEmail = NewFamilyEmail(_context.Permutation[(ulong)(_firstPerson + start)]);
            _familyEmailUsesLeft = 2;
        }
    }

    private int TabletCookieAt(double day)
    {
        var handle = _tabletCookies[0].Handle;
        foreach (var (start, h) in _tabletCookies)
        {
            if (start > day)
            {
                break;
            }
            handle = h;
        }
        return handle;
    }

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

    // ---- People ----------------------------------------------------------------------------------------------------

    private void SimulatePerson(int local)
    {
        _local = local;
        _ids.CurrentPerson = local;
        _q = _context.Permutation[(ulong)(_firstPerson + local)];
        _kind = _kinds[local];
        _country = _householdCountry;
        if (_kind == PersonKind.Bot)
        {
            SimulateBot();
            return;
        }
        _firstName = _rng.Next(_country.Names.First.Length);
        _emailStyleOfName = _rng.Next(5);
        _personalDomain = _rng.Pick(_country.MailWeights);
        // Hidden traits: risk is skewed low (u²), so churn concentrates in a minority.
        var u = _rng.NextDouble();
        _risk = u * u;
        _priceSensitive = _rng.Chance(Realism.PriceSensitiveShare);
        _valueScale = _rng.LogNormal(1, 0.5);
        _cartPropensity = _rng.LogNormal(1, 0.4);
        _openRate = Math.Min(0.9, _rng.LogNormal(Realism.OpenRateMedian, 0.6));
        _engagement = 1;
        _addresses.Clear();
        _planCount = 0;
        SetUpDevices();

        switch (_kind)
        {
            case PersonKind.AnonymousOnly:
            case PersonKind.Guest:
                SimulateVisitor();
                break;
            default:
                SimulateAccountHolder();
                break;
        }
    }

    private void SetUpDevices()
    {
        _deviceCount = _kind == PersonKind.CrmOnly ? 1 : _rng.Pick(DeviceCounts) + 1;
        var total = 0.0;
        for (var i = 0; i < _deviceCount; i++)
        {
            var device = _devices[i];
            var u = _rng.NextDouble();
            device.Kind = i == 0
                ? u switch { < 0.5 => DeviceKind.Mobile, < 0.8 => DeviceKind.Desktop, _ => DeviceKind.App }
                : u switch { < 0.35 => DeviceKind.Desktop, < 0.7 => DeviceKind.Mobile, < 0.85 => DeviceKind.App, _ => DeviceKind.Tablet };
            device.Shared = false;
            device.Anonymous = Ref.None;
            device.LoggedIn = Ref.None;
            device.RememberedLogin = false;
            device.RotateAt = 0;
            total += i == 0 ? 1.0 : _rng.LogNormal(0.35, 0.6);
            _deviceCumulative[i] = total;
        }
        if (_hasTablet && _kind != PersonKind.CrmOnly)
        {
            var tablet = _devices[_deviceCount];
            tablet.Kind = DeviceKind.Tablet;
            tablet.Shared = true;
            tablet.Anonymous = Ref.None;
            tablet.LoggedIn = Ref.None;
            tablet.RememberedLogin = false;
            total += 0.3;
            _deviceCumulative[_deviceCount++] = total;
        }
    }

    private Device PickDevice() => _devices[_rng.Pick(_deviceCumulative.AsSpan(0, _deviceCount))];

    /// <summary>The cookie (anonymous id) a device carries on <paramref name="day"/>; personal cookies expire and are replaced.</summary>
    private int CookieOf(Device device, int day, long ts)
    {
        if (device.Shared)
        {
            return TabletCookieAt(day);
        }
        if (device.Anonymous == Ref.None || day >= device.RotateAt)
        {
            device.Anonymous = NewAnonymousId(_local, device.Kind == DeviceKind.App);
            var lifetime = device.Kind switch
            {
                DeviceKind.Desktop => Realism.DesktopCookieDays,
                DeviceKind.Mobile => Realism.MobileCookieDays,
                DeviceKind.App => Realism.AppInstallDays,
                _ => 60,
            };
            device.RotateAt = day + 1 + _rng.Exponential(lifetime);
            device.LoggedIn = device.RememberedLogin ? device.Anonymous : Ref.None;
            device.RememberedLogin = false;
            if (device.Kind != DeviceKind.App && _rng.Chance(Realism.CookieBannerRecordChance))
            {
                // A cookie-banner decision: about a third decline personalised ads.
                _output.AddConsent(IdType.AnonymousId, device.Anonymous, 0, Words.ChannelAds, !_rng.Chance(0.3),
                    ts, Words.SourceCookieBanner);
            }
        }
        return device.Anonymous;
    }

    // ---- Bots ------------------------------------------------------------------------------------------------------

    private void SimulateBot()
    {
        var start = _rng.Uniform(-60, _calendar.Days);
        var end = Math.Min(_calendar.Days, start + 3 + _rng.Exponential(_calendar.Days / 2.5));
        start = Math.Max(0, start);
        if (end <= start)
        {
            end = Math.Min(_calendar.Days, start + 1);
        }
        var rate = _rng.LogNormal(Realism.BotSessionsPerWeekMedian, 0.8);
        var cookie = Ref.None;
        var sessions = 0;
        for (var w = (int)(start / 7); w < _calendar.Weeks; w++)
        {
            var n = _rng.Poisson(rate);
            for (var s = 0; s < n; s++)
            {
                var day = (w * 7) + _rng.NextDouble() * 7;
                if (day < start || day >= end)
                {
                    continue;
                }
                BotSession(day, ref cookie);
                sessions++;
            }
            if ((w + 1) * 7 >= end)
            {
                break;
            }
        }
        if (sessions == 0)
        {
            BotSession(start + ((end - start) * _rng.NextDouble()), ref cookie);
        }
    }

    private void BotSession(double day, ref int cookie)
    {
        if (cookie == Ref.None || _rng.Chance(Realism.BotFreshCookieChance))
        {
            cookie = NewAnonymousId(_local, upper: false);
        }
        var t = _calendar.At(day);
        var pages = 1 + _rng.Geometric(Realism.BotPagesPerSession - 1);
        for (var p = 0; p < pages; p++)
        {
            var product = _rng.Chance(0.5);
            _output.AddEvent(new EventRow(t, product ? EventType.ProductView : EventType.PageView)
            {
                Anon = cookie,
                User = JunkOrNoUser(),
                Product = product ? _rng.Next(_context.ProductIds.Length) : -1,
                Device = DeviceKind.Desktop,
            });
            t = Math.Min(t + (long)(_rng.Exponential(2) * 1e6), _calendar.EndMicros - 1);
        }
    }

    // ---- Visitors and guests -------------------------------------------------------------------------------------

    private void SimulateVisitor()
    {
        var guest = _kind == PersonKind.Guest;
        var start = _rng.Uniform(-Realism.AnonymousBurstDays, _calendar.Days);
        var end = Math.Min(_calendar.Days, start + 1 + _rng.Exponential(Realism.AnonymousBurstDays));
        _activeStart = Math.Max(0, start);
        _activeEnd = Math.Max(end, Math.Min(_calendar.Days, _activeStart + 1));
        _sessionRate = _rng.LogNormal(Realism.AnonymousSessionsPerWeekMedian, 0.8) * (guest ? 1.5 : 1);
        _signedUp = false;
        _customer = Ref.None;
        _accountEmail = guest ? NewEmail(0, work: false) : Ref.None;
        _personalEmail = _accountEmail;
        var sessions = 0;
        for (var w = (int)(_activeStart / 7); w < _calendar.Weeks; w++)
        {
            _planCount = 0;
            if (w * 7 < _activeEnd)
            {
                PlanSessions(w);
            }
            PlanCampaigns(w);
            sessions += ProcessPlans();
            if ((w + 1) * 7 >= _activeEnd && _addresses.Count == 0)
            {
                break;
            }
        }
        if (sessions == 0)
        {
            // Everyone in the data set was seen at least once.
            var day = (int)Math.Min(_calendar.Days - 1, _activeStart);
            AddPlan(_calendar.TimeOn(day, ref _rng), day, PlanKind.Organic, -1, Ref.None);
            ProcessPlans();
        }
    }

    // ---- Account holders ---------------------------------------------------------------------------------------

    private void SimulateAccountHolder()
    {
        var registered = _kind == PersonKind.Registered;
        var existing = _rng.Chance(Realism.ExistingCustomerShare);
        _signupDay = existing ? -_rng.Uniform(30, 5 * 365) : _rng.Uniform(0, _calendar.Days);
        _signedUp = existing;
        _activeStart = existing || !registered ? Math.Max(0, _signupDay) : Math.Max(0, _signupDay - _rng.Exponential(14));
        _activeEnd = _calendar.Days;
        _sessionRate = registered ? _rng.LogNormal(Realism.SessionsPerWeekMedian, Realism.SessionRateSigma) : 0;

        _customer = NewCustomerId(0);
        _personalEmail = NewEmail(0, work: false);
        _workEmail = _rng.Chance(Realism.WorkEmailShare) ? NewEmail(1, work: true) : Ref.None;
        _accountEmail = _rng.Chance(Realism.PlusAddressShare) ? PlusVariant(_personalEmail) : _personalEmail;
        _emailChangeDay = double.PositiveInfinity;
        if (_rng.Chance(Realism.EmailChangeShare))
        {
            _emailChangeDay = _rng.Uniform(Math.Max(0, _signupDay), _calendar.Days);
            _emailChangeTo = _workEmail >= 0 && _rng.Chance(0.5) ? _workEmail : NewEmail(2, work: false);
        }
        _crmEmailStyle = StoredStyle();
        _crmEmailOverride = Ref.None;
        if (_familyEmailUsesLeft > 0)
        {
            _familyEmailUsesLeft--;
            _crmEmailOverride = _familyEmail;
        }
        else if (_rng.Chance(Realism.JunkCrmEmailRate))
        {
            _crmEmailOverride = Ref.Junk(_rng.Next(JunkValues.Email.Length));
        }

        var phoneDraw = _rng.NextDouble();
        _phone = phoneDraw < Realism.PhoneShare ? NewPhone(0)
            : phoneDraw < Realism.PhoneShare + Realism.JunkCrmPhoneRate ? Ref.Junk(_rng.Next(JunkValues.Phone.Length))
            : phoneDraw < Realism.PhoneShare + Realism.JunkCrmPhoneRate + Realism.EmptyCrmPhoneRate ? Ref.Empty
            : Ref.None;
        _phoneFormat = PhoneFormat(plusOnly: false);
        _phone2 = _rng.Chance(Realism.SecondPhoneShare) ? NewPhone(1) : Ref.None;
        _duplicateDay = _rng.Chance(Realism.DuplicateCustomerShare) ? _rng.Uniform(_signupDay, _calendar.Days) : double.PositiveInfinity;
        _phoneChangeDay = _phone2 >= 0 && double.IsPositiveInfinity(_duplicateDay) ? _rng.Uniform(Math.Max(0, _signupDay), _calendar.Days) : double.PositiveInfinity;
        var nameStyle = _rng.NextDouble();
        _firstStyle = nameStyle switch { < 0.95 => NameStyle.Plain, < 0.98 => NameStyle.Upper, _ => NameStyle.Lower };
        _lastStyle = _firstStyle;
        _postcode = _rng.NextUInt64();

        // Loyalty: existing customers bring a year of spend; new ones start at the bottom.
        Array.Clear(_spend);
        _tier = 0;
        _status = Words.StatusNone;
        _trialStart = double.PositiveInfinity;
        _trialEnd = double.PositiveInfinity;
        _pauseEnd = double.PositiveInfinity;
        var subscriber = _rng.Chance(Realism.SubscriberShare);
        if (existing)
        {
            var yearSpend = _rng.LogNormal(160 * _valueScale, 0.9);
            for (var i = 0; i < RingBuckets; i++)
            {
                _spend[i] = yearSpend / RingBuckets;
            }
            _tier = TierOf(yearSpend);
            if (subscriber && _rng.Chance(0.6))
            {
                _status = Words.StatusActive;
            }
        }
        if (subscriber && _status == Words.StatusNone)
        {
            _trialStart = Math.Max(0, _signupDay) + _rng.Exponential(45);
        }

        if (existing)
        {
            // History from before the window: the creation row, then the state the window starts in.
            var (tier, status) = (_tier, _status);
            (_tier, _status) = (0, Words.StatusNone);
            WriteProfile(_signupDay, _signupDay);
            GrantSignupConsents(_signupDay, _kind == PersonKind.CrmOnly ? Words.SourceStore : Words.SourceSignup);
            (_tier, _status) = (tier, status);
            if (_tier != 0 || _status != Words.StatusNone)
            {
                WriteProfile(_signupDay, _rng.Uniform(_signupDay, 0));
            }
            _devices[0].RememberedLogin = registered && _rng.Chance(0.6);
        }

        var disengaging = false;
        var churned = false;
        for (var w = (int)(_activeStart / 7); w < _calendar.Weeks; w++)
        {
            var weekStart = w * 7.0;
            var weekEnd = Math.Min(weekStart + 7, _calendar.Days);
            _planCount = 0;

            if (!_signedUp && _signupDay < weekEnd)
            {
                if (registered)
                {
                    var day = (int)_signupDay;
                    AddPlan(_calendar.At(_signupDay), day, PlanKind.Signup, -1, Ref.None);
                }
                else
                {
                    SignUp(_signupDay, Words.SourceStore);
                }
            }

            if (_signedUp && !churned)
            {
                WeeklyLifecycle(weekStart, weekEnd, ref disengaging);
                if (_engagement < Realism.ChurnThreshold)
                {
                    churned = true;
                    Churn(weekStart + (_rng.NextDouble() * (weekEnd - weekStart)));
                }
            }
            if (_signedUp || _signupDay < weekEnd)
            {
                ScheduledChanges(weekStart, weekEnd);
                if (w % 4 == 0 && w > 0)
                {
                    ReviewTier(weekStart);
                }
            }

            if (!churned)
            {
                PlanSessions(w);
            }
            PlanCampaigns(w);
            ProcessPlans();
        }
    }

    private void SignUp(double day, int source)
    {
        _signedUp = true;
        WriteProfile(day, day);
        GrantSignupConsents(day, source);
    }

    private void WeeklyLifecycle(double weekStart, double weekEnd, ref bool disengaging)
    {
        // Support tickets: likelier and less often resolved for risky people.
        if (_rng.Chance(Realism.TicketWeeklyChance * (1 + (3 * _risk))))
        {
            var day = weekStart + (_rng.NextDouble() * (weekEnd - weekStart));
            var topic = Words.TicketTopics[_rng.Next(Words.TicketTopics.Length)];
            _output.NextTicket();
            _output.AddEvent(new EventRow(_calendar.At(day), EventType.SupportTicketOpened)
            {
                User = _customer,
                Email = CurrentEmail(),
                EmailStyle = _crmEmailStyle,
                HasTicket = true,
                Detail = topic,
            });
            if (_rng.Chance(Realism.UnresolvedTicketChance * (0.5 + (1.5 * _risk))))
            {
                disengaging |= _rng.Chance(Realism.DisengageAfterUnresolvedTicket);
            }
            else
            {
                var resolved = day + 0.1 + _rng.Exponential(2.5);
                if (resolved < _calendar.Days)
                {
                    _output.AddEvent(new EventRow(_calendar.At(resolved), EventType.SupportTicketResolved)
                    {
                        User = _customer,
                        HasTicket = true,
                        Detail = topic,
                    });
                }
            }
        }

        // Disengagement and recovery (see the class remarks).
        if (!disengaging)
        {
            var chance = Realism.DisengageWeeklyChance * _risk * _risk;
            if (_priceSensitive && _status is Words.StatusActive or Words.StatusPaused && weekStart >= _calendar.PriceRiseDay)
            {
                chance *= Realism.PriceRiseDisengageFactor;
            }
            disengaging = _rng.Chance(chance);
            _engagement = Math.Min(1, _engagement + 0.1);
        }
        if (disengaging)
        {
            _engagement *= Realism.DecayPerWeek * Math.Exp(0.1 * _rng.Normal());
            if (_rng.Chance(Realism.RecoveryWeeklyChance))
            {
                disengaging = false;
                _engagement = Math.Max(_engagement, 0.7);
            }
        }

        // Subscription state machine.
        if (_status == Words.StatusNone && _trialStart < weekEnd)
        {
            SetStatus(Words.StatusTrial, Math.Max(_trialStart, weekStart));
            _trialEnd = Math.Max(_trialStart, weekStart) + Realism.TrialDays;
        }
        else if (_status == Words.StatusTrial && _trialEnd < weekEnd)
        {
            var conversion = Realism.TrialConversion * (_priceSensitive ? 0.6 : 1);
            SetStatus(_rng.Chance(conversion) ? Words.StatusActive : Words.StatusCancelled, Math.Max(_trialEnd, weekStart));
        }
        else if (_status == Words.StatusActive)
        {
            if (_rng.Chance(Realism.PauseWeeklyChance))
            {
                var day = weekStart + (_rng.NextDouble() * (weekEnd - weekStart));
                SetStatus(Words.StatusPaused, day);
                _pauseEnd = day + _rng.Uniform(14, 56);
            }
            else if (_rng.Chance(0.002))
            {
                // A "life event" cancellation that behaviour does not predict.
                SetStatus(Words.StatusCancelled, weekStart + (_rng.NextDouble() * (weekEnd - weekStart)));
            }
        }
        else if (_status == Words.StatusPaused && _pauseEnd < weekEnd)
        {
            SetStatus(Words.StatusActive, Math.Max(_pauseEnd, weekStart));
        }
    }

    private void Churn(double day)
    {
        _activeEnd = day;
        if (_status is Words.StatusTrial or Words.StatusActive or Words.StatusPaused)
        {
            SetStatus(Words.StatusCancelled, day);
        }
        if (_rng.Chance(Realism.RevokeOnChurnChance))
        {
            var revoke = day + _rng.Uniform(0, 14);
            for (var i = 0; i < _addresses.Count; i++)
            {
                var address = _addresses[i];
                if (address.From <= revoke && revoke < address.To)
                {
                    if (revoke < _calendar.Days)
                    {
                        _output.AddConsent(IdType.Email, address.Email, (byte)address.Style, Words.ChannelEmail, false, _calendar.At(revoke), Words.SourceUnsubscribe);
                    }
                    _addresses[i] = address with { To = revoke };
                }
            }
        }
        _engagement = 0.05;
    }

    private void SetStatus(int status, double day)
    {
        _status = status;
        _output.AddEvent(new EventRow(_calendar.At(day), EventType.SubscriptionChanged)
        {
            User = _customer,
            Detail = Words.Statuses[status],
        });
        WriteProfile(_signupDay, day);
    }

    private void ScheduledChanges(double weekStart, double weekEnd)
    {
        if (_emailChangeDay < weekEnd && _emailChangeDay >= weekStart)
        {
            var old = _accountEmail;
            _accountEmail = _emailChangeTo;
            WriteProfile(_signupDay, _emailChangeDay);
            // The mailing list follows the account: the old address stops, the new one starts.
            for (var i = 0; i < _addresses.Count; i++)
            {
                var address = _addresses[i];
                if (address.Email == old && address.To > _emailChangeDay)
                {
                    _addresses[i] = address with { To = _emailChangeDay };
                    GrantEmail(_accountEmail, _emailChangeDay, Words.SourcePreferenceCenter, address.Style);
                    break;
                }
            }
        }
        if (_phoneChangeDay < weekEnd && _phoneChangeDay >= weekStart)
        {
            _phone = _phone2;
            _phoneFormat = PhoneFormat(plusOnly: false);
            WriteProfile(_signupDay, _phoneChangeDay);
        }
        if (_duplicateDay < weekEnd && (_duplicateDay >= weekStart || weekStart <= 0))
        {
            WriteDuplicate(_duplicateDay);
            _duplicateDay = double.PositiveInfinity;
        }
    }

    private void ReviewTier(double day)
    {
        var year = 0.0;
        foreach (var spend in _spend)
        {
            year += spend;
        }
        var bucket = (int)(day / 28) % RingBuckets;
        _spend[bucket] = 0;
        var tier = TierOf(year);
        if (tier != _tier)
        {
            _tier = tier;
            WriteProfile(_signupDay, day + _rng.NextDouble());
        }
    }

    private static int TierOf(double yearSpend)
    {
        var bounds = Realism.TierSpendBounds;
        var tier = 0;
        while (tier < bounds.Length && yearSpend >= bounds[tier])
        {
            tier++;
        }
        return tier;
    }

    private int CurrentEmail() => _crmEmailOverride != Ref.None ? _crmEmailOverride : _accountEmail;

    private void WriteProfile(double created, double updated)
    {
        _output.AddProfile(new ProfileRow
        {
            Customer = _customer,
            Email = CurrentEmail(),
            EmailStyle = _crmEmailStyle,
            Phone = _phone,
            PhoneFormat = _phoneFormat,
            Tier = _tier,
            Status = _status,
            Country = _country,
            Created = _calendar.AtUnclamped(created),
            Updated = _calendar.AtUnclamped(Math.Max(created, updated)),
            First = _country.Names.First[_firstName],
            FirstStyle = _firstStyle,
            Last = _country.Names.Last[_householdLast],
            LastStyle = _lastStyle,
            Postcode = _postcode,
            PostcodeVariant = 0,
        });
    }

    /// <summary>A second CRM record of the same person: a store sign-up or re-registration, with small differences.</summary>
    private void WriteDuplicate(double day)
    {
        var customer = NewCustomerId(1);
        int email;
        var emailStyle = _crmEmailStyle == EmailStyle.Lower ? (_rng.Chance(0.5) ? EmailStyle.Upper : EmailStyle.TrailingSpace) : EmailStyle.Lower;
        var u = _rng.NextDouble();
        if (u < Realism.DuplicateSameEmailShare)
        {
            email = _accountEmail;
        }
        else if (u < Realism.DuplicateSameEmailShare + Realism.DuplicateWorkEmailShare)
        {
            email = _workEmail >= 0 ? _workEmail : _personalEmail;
        }
        else
        {
            email = _rng.Chance(0.5) ? Ref.Junk(_rng.Next(JunkValues.Email.Length)) : Ref.None;
        }
        var phone = _phone >= 0 && _rng.Chance(Realism.DuplicateSamePhoneShare) ? _phone : _phone2 >= 0 ? _phone2 : Ref.None;
        var names = _country.Names;
        var nick = names.Nick[_firstName];
        var first = nick is not null && _rng.Chance(0.5) ? nick : names.First[_firstName];
        var firstStyle = ReferenceEquals(first, nick) ? NameStyle.Plain : (NameStyle)_rng.Next(1, 5);
        var row = new ProfileRow
        {
            Customer = customer,
            Email = email,
            EmailStyle = emailStyle,
            Phone = phone,
            PhoneFormat = PhoneFormat(plusOnly: false),
            Tier = 0,
            Status = Words.StatusNone,
            Country = _country,
            Created = _calendar.AtUnclamped(day),
            Updated = _calendar.AtUnclamped(day),
            First = first,
            FirstStyle = firstStyle,
            Last = names.Last[_householdLast],
            LastStyle = _rng.Chance(0.2) ? NameStyle.Upper : NameStyle.Plain,
            Postcode = _postcode,
            PostcodeVariant = (byte)_rng.Next(1, 3),
        };
        _output.AddProfile(row);
        var later = day + 1 + _rng.Exponential(60);
        if (_rng.Chance(0.3) && later < _calendar.Days)
        {
            row.Updated = _calendar.AtUnclamped(later);
            row.Tier = _rng.Chance(0.3) ? 1 : 0;
            _output.AddProfile(row);
        }
        if (email >= 0 && email != _accountEmail && _rng.Chance(0.5))
        {
            GrantEmail(email, day, Words.SourceStore, emailStyle);
        }
    }

    // ---- Consent ---------------------------------------------------------------------------------------------------

    private void GrantSignupConsents(double day, int source)
    {
        if (_rng.Chance(Realism.EmailConsentChance))
        {
            GrantEmail(CurrentEmail() >= 0 ? CurrentEmail() : _accountEmail, day, source, _crmEmailStyle);
        }
        if (_phone >= 0 && _rng.Chance(Realism.SmsConsentChance))
        {
            var format = PhoneFormat(plusOnly: true);
            _output.AddConsent(IdType.Phone, _phone, format, Words.ChannelSms, true, _calendar.AtUnclamped(day), source);
            var revoke = day + _rng.Exponential(Realism.RevokeMeanDays * 0.7);
            if (revoke < _calendar.Days)
            {
                _output.AddConsent(IdType.Phone, _phone, format, Words.ChannelSms, false, _calendar.AtUnclamped(revoke), Words.SourceReplyStop);
            }
        }
        var ads = _rng.NextDouble();
        if (ads < Realism.AdsConsentChance + 0.2)
        {
            // Most grant; some explicitly opt out in the preference centre.
            _output.AddConsent(IdType.CustomerId, _customer, _rng.Chance(0.03) ? (byte)1 : (byte)0, Words.ChannelAds,
                ads < Realism.AdsConsentChance, _calendar.AtUnclamped(day + _rng.Exponential(3)), Words.SourcePreferenceCenter);
        }
    }

    /// <summary>Email marketing consent for an address, with a possible later revocation and re-grant.</summary>
    private void GrantEmail(int email, double day, int source, EmailStyle style)
    {
        if (email < 0)
        {
            return;
        }
        _output.AddConsent(IdType.Email, email, (byte)style, Words.ChannelEmail, true, _calendar.AtUnclamped(day), source);
        if (_rng.Chance(Realism.JunkConsentRate))
        {
            // A duplicate submission with the field blanked or filled with a placeholder.
            var junk = _rng.Chance(0.5) ? Ref.Empty : Ref.Junk(_rng.Next(JunkValues.Email.Length));
            _output.AddConsent(IdType.Email, junk, 0, Words.ChannelEmail, true, _calendar.AtUnclamped(day), source);
        }
        var revoke = day + _rng.Exponential(Realism.RevokeMeanDays);
        _addresses.Add(new Address(email, day, revoke, style));
        if (revoke < _calendar.Days)
        {
            _output.AddConsent(IdType.Email, email, (byte)style, Words.ChannelEmail, false, _calendar.AtUnclamped(revoke),
                _rng.Chance(0.7) ? Words.SourceUnsubscribe : Words.SourcePreferenceCenter);
            if (_rng.Chance(Realism.RegrantChance))
            {
                var again = revoke + 1 + _rng.Exponential(60);
                if (again < _calendar.Days)
                {
                    _output.AddConsent(IdType.Email, email, (byte)style, Words.ChannelEmail, true, _calendar.AtUnclamped(again), Words.SourcePreferenceCenter);
                    _addresses.Add(new Address(email, again, double.PositiveInfinity, style));
                }
            }
        }
    }

    // ---- Sessions ------------------------------------------------------------------------------------------------

    private void PlanSessions(int week)
    {
        if (_sessionRate <= 0)
        {
            return;
        }
        var n = _rng.Poisson(_sessionRate * _engagement * _calendar.WeekTraffic[week]);
        for (var s = 0; s < n; s++)
        {
            var day = _calendar.DayInWeek(week, ref _rng);
            if (day < (int)_activeStart || day >= _activeEnd)
            {
                continue;
            }
            AddPlan(_calendar.TimeOn(day, ref _rng), day, PlanKind.Organic, -1, Ref.None);
        }
    }

    private void PlanCampaigns(int week)
    {
        if (_addresses.Count == 0)
        {
            return;
        }
        // Engagement drives opens too; after churn (engagement 0.05) a few still trickle in.
        var openChance = _openRate * Math.Sqrt(_engagement);
        for (var c = _calendar.FirstCampaignOfWeek[week]; c < _calendar.FirstCampaignOfWeek[week + 1]; c++)
        {
            var day = _calendar.CampaignDays[c];
            foreach (var address in _addresses)
            {
                if (day < address.From || day >= address.To || !_rng.Chance(openChance))
                {
                    continue;
                }
                // Opens are recorded by the email provider: address only, mostly as it stores it (lower-case).
                var openDay = day + 0.375 + _rng.Exponential(0.75);
                if (openDay >= _calendar.Days)
                {
                    continue;
                }
                var t = _calendar.At(openDay);
                _output.AddEvent(new EventRow(t, EventType.EmailOpen)
                {
                    Email = address.Email,
                    EmailStyle = _rng.Chance(0.93) ? EmailStyle.Lower : address.Style,
                    Campaign = c,
                });
                if (_deviceCount > 0 && _rng.Chance(Realism.ClickGivenOpen))
                {
                    AddPlan(t + (long)(_rng.Exponential(120) * 1e6), (int)openDay, PlanKind.Click, c, address.Email);
                }
            }
        }
    }

    private void AddPlan(long ts, int day, PlanKind kind, int campaign, int email)
    {
        if (_planCount == _plans.Length)
        {
            Array.Resize(ref _plans, _plans.Length * 2);
        }
        _plans[_planCount++] = new SessionPlan(Math.Min(ts, _calendar.EndMicros - 1), day, kind, campaign, email);
    }

    private int ProcessPlans()
    {
        var plans = _plans.AsSpan(0, _planCount);
        // Sessions run in time order so that cookies expire and logins persist consistently.
        plans.Sort(static (a, b) => a.Ts.CompareTo(b.Ts));
        foreach (var plan in plans)
        {
            Session(plan);
        }
        var count = _planCount;
        _planCount = 0;
        return count;
    }

    private void Session(in SessionPlan plan)
    {
        var device = PickDevice();
        var day = plan.Day;
        var cookie = _rng.Chance(Realism.JunkAnonymousIdRate) ? Ref.Junk(_rng.Next(JunkValues.AnonymousId.Length)) : CookieOf(device, day, plan.Ts);
        var registered = _kind == PersonKind.Registered;
        var loggedIn = _signedUp && cookie >= 0 && device.LoggedIn == cookie;
        var t = plan.Ts;
        var kind = device.Kind;

        if (plan.Kind == PlanKind.Click)
        {
            _output.AddEvent(new EventRow(t, EventType.EmailClick)
            {
                Anon = cookie,
                User = loggedIn ? _customer : Ref.None,
                Email = plan.Email,
                EmailStyle = EmailStyle.Lower,
                Campaign = plan.Campaign,
                Device = kind,
            });
            t = Next(t);
        }
        _output.AddEvent(new EventRow(t, EventType.PageView) { Anon = cookie, User = loggedIn ? _customer : JunkOrNoUser(), Device = kind });
        t = Next(t);

        if (plan.Kind == PlanKind.Signup)
        {
            SignUp(day + ((t - _calendar.At(day)) / (double)Calendar.MicrosPerDay), Words.SourceSignup);
            _output.AddEvent(new EventRow(t, EventType.Signup)
            {
                Anon = cookie,
                User = _customer,
                Email = TypedEmail(_accountEmail, out var style),
                EmailStyle = style,
                Device = kind,
            });
            t = Next(t);
            loggedIn = true;
            if (cookie >= 0)
            {
                device.LoggedIn = cookie;
            }
        }
        else if (registered && _signedUp && !loggedIn && _rng.Chance(Realism.LoginChance))
        {
            t = Login(t, device, cookie);
            loggedIn = true;
        }

        var pages = _rng.Geometric(Realism.ExtraPageViewsMean * (0.6 + (0.4 * _engagement)));
        var lastProduct = -1;
        for (var p = 0; p < pages; p++)
        {
            var product = _rng.Chance(Realism.ProductViewChance);
            if (product)
            {
                lastProduct = _rng.Pick(_context.ProductCumulative);
            }
            _output.AddEvent(new EventRow(t, product ? EventType.ProductView : EventType.PageView)
            {
                Anon = cookie,
                User = loggedIn ? _customer : JunkOrNoUser(),
                Product = product ? lastProduct : -1,
                Device = kind,
            });
            t = Next(t);
        }

        var sale = _calendar.Sale[Math.Min(day, _calendar.Days - 1)];
        var cartChance = Realism.CartChance * _cartPropensity * (0.4 + (0.6 * _engagement)) * (sale ? 1.5 : 1)
            * (_kind switch { PersonKind.AnonymousOnly => 0.6, PersonKind.Guest => 1.3, _ => 1 });
        if (!_rng.Chance(cartChance))
        {
            return;
        }
        var items = 1 + _rng.Geometric(0.5);
        var revenue = 0.0;
        var quantity = 0;
        var firstProduct = -1;
        for (var i = 0; i < items; i++)
        {
            var product = i == 0 && lastProduct >= 0 ? lastProduct : _rng.Pick(_context.ProductCumulative);
            var qty = _rng.Chance(0.8) ? 1 : 2;
            firstProduct = firstProduct < 0 ? product : firstProduct;
            revenue += _context.ProductPrices[product] * qty;
            quantity += qty;
            _output.AddEvent(new EventRow(t, EventType.AddToCart)
            {
                Anon = cookie,
                User = loggedIn ? _customer : Ref.None,
                Product = product,
                Quantity = qty,
                Device = kind,
            });
            t = Next(t);
        }
        if (!_rng.Chance(Realism.CheckoutChance))
        {
            return;
        }
        if (registered && _signedUp && !loggedIn && _rng.Chance(0.75))
        {
            t = Login(t, device, cookie);
            loggedIn = true;
        }
        // Not logged in at checkout: the email typed there is the only identity (guest checkout).
        var checkoutEmail = Ref.None;
        var checkoutStyle = EmailStyle.Lower;
        if (!loggedIn && _kind != PersonKind.AnonymousOnly)
        {
            checkoutEmail = TypedEmail(_accountEmail, out checkoutStyle);
        }
        _output.AddEvent(new EventRow(t, EventType.CheckoutStarted)
        {
            Anon = cookie,
            User = loggedIn ? _customer : Ref.None,
            Email = checkoutEmail,
            EmailStyle = checkoutStyle,
            Quantity = quantity,
            Device = kind,
        });
        t = Next(t);
        var orderChance = _kind == PersonKind.AnonymousOnly ? 0
            : Realism.OrderChance * (_priceSensitive && !sale ? Realism.PriceSensitiveFullPriceFactor : 1);
        if (!_rng.Chance(orderChance))
        {
            return;
        }
        if (sale)
        {
            revenue *= 1 - (Realism.SaleDiscount * _rng.Uniform(0.6, 1.4));
        }
        revenue = Math.Round(revenue, 2);
        _output.NextOrder();
        _output.AddEvent(new EventRow(t, EventType.OrderCompleted)
        {
            Anon = cookie,
            User = loggedIn ? _customer : Ref.None,
            Email = loggedIn ? (_rng.Chance(0.5) ? _accountEmail : Ref.None) : checkoutEmail,
            EmailStyle = checkoutStyle,
            Product = firstProduct,
            Revenue = revenue,
            HasOrder = true,
            Quantity = quantity,
            Device = kind,
        });
        if (_customer >= 0)
        {
            _spend[(day / 28) % RingBuckets] += revenue;
        }
        if (_kind == PersonKind.Guest && _addresses.Count == 0 && checkoutEmail >= 0 && _rng.Chance(Realism.GuestNewsletterChance))
        {
            GrantEmail(_accountEmail, day + 0.9, Words.SourceCheckout, checkoutStyle);
        }
    }

    private long Login(long t, Device device, int cookie)
    {
        // Plus-addressed accounts sometimes log in with the plain address.
        var email = _accountEmail != _personalEmail && _rng.Chance(0.2) ? _personalEmail : _accountEmail;
        _output.AddEvent(new EventRow(t, EventType.Login)
        {
            Anon = cookie,
            User = _customer,
            Email = TypedEmail(email, out var style),
            EmailStyle = style,
            Device = device.Kind,
        });
        if (cookie >= 0)
        {
            device.LoggedIn = cookie;
        }
        return Next(t);
    }

    private long Next(long t) => Math.Min(t + 1_000_000 + (long)(_rng.Exponential(40) * 1e6), _calendar.EndMicros - 1);

    private sealed class Device
    {
        public DeviceKind Kind;
        public bool Shared;
        public int Anonymous = Ref.None;
        public double RotateAt;
        public int LoggedIn = Ref.None;
        public bool RememberedLogin;
    }

    private enum PlanKind : byte
    {
        Organic,
        Click,
        Signup,
    }

    private readonly record struct SessionPlan(long Ts, int Day, PlanKind Kind, int Campaign, int Email);

    /// <summary>A mailing-list subscription of one address, from grant to revocation.</summary>
    private readonly record struct Address(int Email, double From, double To, EmailStyle Style);
}
