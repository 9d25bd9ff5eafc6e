namespace Engine.Datasets;

/// <summary>
/// The knobs of the simulation, each with the reason for its value. Shares are of all simulated people unless
/// said otherwise. They were chosen to look like a mid-sized online retailer with a subscription programme,
/// and to give identity resolution and churn models the kinds of mess they meet in real data.
/// </summary>
internal static class Realism
{
    // ---- Who the people are -------------------------------------------------------------------------------------

    /// <summary>Crawlers and scrapers: many page views, no identity, cookies dropped between sessions.</summary>
    public const double BotShare = 0.02;

    /// <summary>Visitors who browse and never log in, sign up or give an email: most of a shop's web traffic.</summary>
    public const double AnonymousOnlyShare = 0.26;

    /// <summary>Guest buyers: identify only by the email typed at checkout (and newsletter sign-ups); no CRM record.</summary>
    public const double GuestShare = 0.06;

    /// <summary>Store-only customers: in the CRM and on the mailing list, never browsing (their rare clicks are all we see).</summary>
    public const double CrmOnlyShare = 0.07;

    /// <summary>Customers whose account predates the history window (the rest sign up during it).</summary>
    public const double ExistingCustomerShare = 0.6;

    /// <summary>Household sizes 1..4: households are what share a tablet or a family address.</summary>
    public static ReadOnlySpan<double> HouseholdSizeWeights => [0.55, 0.3, 0.1, 0.05];

    /// <summary>Multi-person households with a shared tablet that several members browse (and log in) on.</summary>
    public const double SharedDeviceShare = 0.35;

    /// <summary>Multi-person households where two members' CRM records carry the same family address.</summary>
    public const double SharedFamilyEmailShare = 0.04;

    // ---- Devices and cookies -----------------------------------------------------------------------------------

    /// <summary>Personal devices per person (1..4).</summary>
    public static ReadOnlySpan<double> DeviceCountWeights => [0.45, 0.35, 0.15, 0.05];

    /// <summary>Mean cookie lifetime (days) of a desktop browser before it is cleared or expires.</summary>
    public const double DesktopCookieDays = 120;

    /// <summary>Mean cookie lifetime (days) of a mobile browser: Safari's tracking prevention caps script cookies at days.</summary>
    public const double MobileCookieDays = 21;

    /// <summary>Mean lifetime (days) of an app install's device id (reinstalls, new phones).</summary>
    public const double AppInstallDays = 400;

    /// <summary>Chance that a registered person logs in during a session on a device that is not logged in.</summary>
    public const double LoginChance = 0.35;

    /// <summary>Chance a customer who is not logged in logs in to check out (the rest check out as a guest, typing an email).</summary>
    public const double CheckoutLoginChance = 0.75;

    /// <summary>Existing customers whose main device is still logged in when the window opens (events carry user_id with no login event).</summary>
    public const double RememberedLoginChance = 0.6;

    /// <summary>People with a plus-addressed account who sometimes log in with the plain address.</summary>
    public const double PlainAddressLoginChance = 0.2;

    /// <summary>Chance a crawler session starts with a fresh cookie.</summary>
    public const double BotFreshCookieChance = 0.85;

    // ---- Emails and phones ---------------------------------------------------------------------------------------

    /// <summary>People with a work address besides the personal one (used for a duplicate record or an account change).</summary>
    public const double WorkEmailShare = 0.25;

    /// <summary>Account holders who change their account email during the window (old and new both appear).</summary>
    public const double EmailChangeShare = 0.08;

    /// <summary>People who signed up with a plus-addressed variant (name+shop@…): a distinct identifier of the same person.</summary>
    public const double PlusAddressShare = 0.08;

    /// <summary>CRM records with a mobile number on file.</summary>
    public const double PhoneShare = 0.65;

    /// <summary>People with a second (work) mobile that appears on a duplicate record or a later profile update.</summary>
    public const double SecondPhoneShare = 0.06;

    /// <summary>Share of CRM rows whose phone is written in an international form (the rest national).</summary>
    public const double InternationalPhoneShare = 0.4;

    // ---- Junk ----------------------------------------------------------------------------------------------------

    /// <summary>Identify-type event rows whose email field holds a placeholder (<c>test@test.com</c>, <c>null</c>, …).</summary>
    public const double JunkEventEmailRate = 0.03;

    /// <summary>Identify-type event rows whose email field is an empty string (a form submitted blank).</summary>
    public const double EmptyEventEmailRate = 0.03;

    /// <summary>Anonymous event rows whose user_id carries a tracking-plan bug value (<c>undefined</c>, <c>null</c>, <c>0</c>).</summary>
    public const double JunkUserIdRate = 0.03;

    /// <summary>Event rows whose anonymous_id is a placeholder (privacy tools zero it out).</summary>
    public const double JunkAnonymousIdRate = 0.005;

    /// <summary>CRM rows with a placeholder email.</summary>
    public const double JunkCrmEmailRate = 0.03;

    /// <summary>CRM rows with a placeholder phone (<c>0000000000</c>, <c>n/a</c>, …): store staff filling a required field.</summary>
    public const double JunkCrmPhoneRate = 0.06;

    /// <summary>CRM rows whose phone is an empty string rather than NULL.</summary>
    public const double EmptyCrmPhoneRate = 0.04;

    /// <summary>Consent rows with a placeholder or empty identifier value.</summary>
    public const double JunkConsentRate = 0.01;

    // ---- CRM -----------------------------------------------------------------------------------------------------

    /// <summary>Customers who also have a second CRM record (a store sign-up, a re-registration) with small differences.</summary>
    public const double DuplicateCustomerShare = 0.08;

    /// <summary>Of duplicates: the share created with the same address (in another case or with spaces) and so linkable.</summary>
    public const double DuplicateSameEmailShare = 0.5;

    /// <summary>Of duplicates: the share created with the work address.</summary>
    public const double DuplicateWorkEmailShare = 0.3;

    /// <summary>Of duplicates: the share carrying the same mobile (in another format).</summary>
    public const double DuplicateSamePhoneShare = 0.5;

    /// <summary>Loyalty tiers by spend over the last 12 months (upper bounds, in currency units).</summary>
    public static ReadOnlySpan<double> TierSpendBounds => [150, 500, 1200];

    // ---- Behaviour -----------------------------------------------------------------------------------------------

    /// <summary>Median web sessions per week of an account holder; log-normal, so many light users and a few heavy ones.</summary>
    public const double SessionsPerWeekMedian = 0.18;

    /// <summary>Log-space spread of the session rate.</summary>
    public const double SessionRateSigma = 1.0;

    /// <summary>Median sessions per week of an anonymous-only visitor, during a short visiting burst.</summary>
    public const double AnonymousSessionsPerWeekMedian = 0.5;

    /// <summary>Mean length (days) of an anonymous visitor's or guest's visiting burst.</summary>
    public const double AnonymousBurstDays = 35;

    /// <summary>Mean page views per session beyond the first.</summary>
    public const double ExtraPageViewsMean = 2.2;

    /// <summary>Chance a page view is a product page.</summary>
    public const double ProductViewChance = 0.45;

    /// <summary>Chance a session puts something in the cart (before seasonality and engagement).</summary>
    public const double CartChance = 0.16;

    /// <summary>Chance a cart goes on to checkout.</summary>
    public const double CheckoutChance = 0.6;

    /// <summary>Chance a started checkout completes (cart starts without purchase are the rest).</summary>
    public const double OrderChance = 0.7;

    /// <summary>Price-sensitive people (they buy in sale periods almost only, and react to the subscription price rise).</summary>
    public const double PriceSensitiveShare = 0.3;

    /// <summary>Order chance outside sale periods for price-sensitive people, relative to <see cref="OrderChance"/>.</summary>
    public const double PriceSensitiveFullPriceFactor = 0.1;

    /// <summary>Average discount in sale periods.</summary>
    public const double SaleDiscount = 0.25;

    /// <summary>Median sessions per week of a crawler while it is active.</summary>
    public const double BotSessionsPerWeekMedian = 1.2;

    /// <summary>Mean pages per crawler session.</summary>
    public const double BotPagesPerSession = 14;

    /// <summary>Chance an email opened leads to a click (and a visit).</summary>
    public const double ClickGivenOpen = 0.18;

    /// <summary>Median chance of opening a campaign email, per person (beta-like spread around it).</summary>
    public const double OpenRateMedian = 0.22;

    /// <summary>Chance per week that a customer opens a support ticket (scaled up by hidden risk).</summary>
    public const double TicketWeeklyChance = 0.004;

    /// <summary>Chance a ticket is never resolved (scaled up by hidden risk): unresolved tickets drive churn.</summary>
    public const double UnresolvedTicketChance = 0.2;

    // ---- Subscription and churn --------------------------------------------------------------------------------

    /// <summary>Account holders who take a subscription at some point (existing ones may already have one).</summary>
    public const double SubscriberShare = 0.45;

    /// <summary>Trials that convert to a paid subscription (lower for price-sensitive people).</summary>
    public const double TrialConversion = 0.7;

    /// <summary>Subscribers among existing customers whose subscription is already active when the window opens.</summary>
    public const double ExistingSubscriberActiveShare = 0.6;

    /// <summary>Weekly chance an active subscriber cancels for a reason behaviour does not show (a move, a budget cut): noise for churn models.</summary>
    public const double RandomCancelWeeklyChance = 0.002;

    /// <summary>Length of a trial, days.</summary>
    public const int TrialDays = 14;

    /// <summary>Chance per week an active subscriber pauses (for a few weeks).</summary>
    public const double PauseWeeklyChance = 0.004;

    /// <summary>
    /// Weekly chance that a person starts to disengage, at hidden risk 1 (scaled by risk squared, so most churn comes
    /// from a risky minority). Disengagement decays engagement week by week until the person churns or recovers.
    /// </summary>
    public const double DisengageWeeklyChance = 0.05;

    /// <summary>Extra chance to start disengaging right after an unresolved support ticket.</summary>
    public const double DisengageAfterUnresolvedTicket = 0.3;

    /// <summary>Disengagement multiplier for price-sensitive subscribers after the subscription price rise.</summary>
    public const double PriceRiseDisengageFactor = 3;

    /// <summary>The price rise happens this far into the window.</summary>
    public const double PriceRiseAt = 0.5;

    /// <summary>Weekly engagement decay while disengaging (mean; noisy).</summary>
    public const double DecayPerWeek = 0.8;

    /// <summary>Weekly chance a disengaging person recovers: decay alone does not give churn away.</summary>
    public const double RecoveryWeeklyChance = 0.07;

    /// <summary>Engagement below which the person churns: cancels the subscription and stops visiting.</summary>
    public const double ChurnThreshold = 0.15;

    /// <summary>Chance a churning person also revokes email consent.</summary>
    public const double RevokeOnChurnChance = 0.35;

    // ---- Consent ---------------------------------------------------------------------------------------------------

    /// <summary>Account holders granting email marketing at sign-up.</summary>
    public const double EmailConsentChance = 0.7;

    /// <summary>Guests subscribing to the newsletter at checkout.</summary>
    public const double GuestNewsletterChance = 0.45;

    /// <summary>Account holders with a phone granting SMS marketing.</summary>
    public const double SmsConsentChance = 0.35;

    /// <summary>Account holders granting ad personalisation (stored against the customer id).</summary>
    public const double AdsConsentChance = 0.5;

    /// <summary>Browser cookies with a cookie-banner decision recorded (stored against the anonymous id).</summary>
    public const double CookieBannerRecordChance = 0.15;

    /// <summary>Cookie-banner decisions that decline personalised ads (recorded as revoked).</summary>
    public const double CookieBannerDeclineShare = 0.3;

    /// <summary>Mean days until an unprompted revocation (most never revoke within the window).</summary>
    public const double RevokeMeanDays = 900;

    /// <summary>Chance a revoked consent is granted again later.</summary>
    public const double RegrantChance = 0.15;
}
