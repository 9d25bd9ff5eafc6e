namespace Engine.Datasets;

/// <summary>Event types written to <c>events.type</c>.</summary>
internal enum EventType : byte
{
    PageView,
    ProductView,
    AddToCart,
    CheckoutStarted,
    OrderCompleted,
    EmailOpen,
    EmailClick,
    SupportTicketOpened,
    SupportTicketResolved,
    Login,
    Signup,
    SubscriptionChanged,
}

/// <summary>Where an event came from (<c>events.device</c>); None for server-side events (email, support, billing).</summary>
internal enum DeviceKind : byte
{
    None,
    Desktop,
    Mobile,
    Tablet,
    App,
}

/// <summary>One event about to be written. Identifier fields are <see cref="Ref"/> values.</summary>
internal struct EventRow
{
    public EventRow(long ts, EventType type)
    {
        Ts = ts;
        Type = type;
    }

    public long Ts;
    public EventType Type;
    public int Anon = Ref.None;
    public int User = Ref.None;
    public int Email = Ref.None;
    public EmailStyle EmailStyle;
    public int Product = -1;
    public double Revenue = double.NaN;
    public bool HasOrder;
    public int Quantity;
    public int Campaign = -1;
    public bool HasTicket;
    public DeviceKind Device;
    public byte[]? Detail;
}

/// <summary>How a name is written on a CRM row.</summary>
internal enum NameStyle : byte
{
    Plain,
    Upper,
    Lower,
    TrailingSpace,
    Typo,
}

/// <summary>One CRM row about to be written.</summary>
internal struct ProfileRow
{
    public int Customer;
    public int Email;
    public EmailStyle EmailStyle;
    public int Phone;
    public byte PhoneFormat;
    public int Tier;
    public int Status;
    public Country Country;
    public long Created;
    public long Updated;
    public byte[] First;
    public NameStyle FirstStyle;
    public byte[] Last;
    public NameStyle LastStyle;
    public ulong Postcode;
    public byte PostcodeVariant;
}

/// <summary>The fixed words of the datasets, as UTF-8.</summary>
internal static class Words
{
    public static byte[][] EventTypes { get; } = Vocabulary.Encode(
        "page_view", "product_view", "add_to_cart", "checkout_started", "order_completed", "email_open", "email_click",
        "support_ticket_opened", "support_ticket_resolved", "login", "signup", "subscription_changed");

    public static byte[][] Devices { get; } = Vocabulary.Encode("", "desktop", "mobile", "tablet", "app");

    public static byte[][] Tiers { get; } = Vocabulary.Encode("bronze", "silver", "gold", "platinum");

    public const int StatusNone = 0, StatusTrial = 1, StatusActive = 2, StatusPaused = 3, StatusCancelled = 4;

    public static byte[][] Statuses { get; } = Vocabulary.Encode("none", "trial", "active", "paused", "cancelled");

    public static byte[][] TicketTopics { get; } = Vocabulary.Encode("delivery", "refund", "billing", "product_question", "account_access", "damaged_item");

    public static byte[][] IdentifierTypes { get; } = Vocabulary.Encode("email", "phone", "customer_id", "anonymous_id");

    public const int ChannelEmail = 0, ChannelSms = 1, ChannelAds = 2;

    public static byte[][] Channels { get; } = Vocabulary.Encode("email", "sms", "ads");

    public static byte[] Granted { get; } = "granted"u8.ToArray();

    public static byte[] Revoked { get; } = "revoked"u8.ToArray();

    public const int SourceSignup = 0, SourceCheckout = 1, SourcePreferenceCenter = 2, SourceUnsubscribe = 3, SourceCookieBanner = 4,
        SourceReplyStop = 5, SourceStore = 6, SourceImport = 7;

    public static byte[][] Sources { get; } = Vocabulary.Encode(
        "signup", "checkout", "preference_center", "unsubscribe_link", "cookie_banner", "reply_stop", "store", "import");
}
