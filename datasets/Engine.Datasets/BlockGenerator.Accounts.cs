namespace Engine.Datasets;

/// <summary>Account holders: sign-up, CRM history and duplicates, subscriptions, loyalty, support, churn and consent.</summary>
internal sealed partial class BlockGenerator
{
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
            if (subscriber && _rng.Chance(Realism.ExistingSubscriberActiveShare))
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
            _devices[0].RememberedLogin = registered && _rng.Chance(Realism.RememberedLoginChance);
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
            else if (_rng.Chance(Realism.RandomCancelWeeklyChance))
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
}
