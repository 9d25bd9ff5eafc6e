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
internal sealed partial class BlockGenerator
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
                // A cookie-banner decision: some decline personalised ads.
                _output.AddConsent(IdType.AnonymousId, device.Anonymous, 0, Words.ChannelAds, !_rng.Chance(Realism.CookieBannerDeclineShare),
                    ts, Words.SourceCookieBanner);
            }
        }
        return device.Anonymous;
    }

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
