namespace Engine.Datasets;

/// <summary>Browsing: crawler sessions, anonymous visitors and guests, web sessions with carts and orders, and email campaigns.</summary>
internal sealed partial class BlockGenerator
{
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
        if (registered && _signedUp && !loggedIn && _rng.Chance(Realism.CheckoutLoginChance))
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
        var email = _accountEmail != _personalEmail && _rng.Chance(Realism.PlainAddressLoginChance) ? _personalEmail : _accountEmail;
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
}
