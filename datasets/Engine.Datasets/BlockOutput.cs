using Apache.Arrow;

namespace Engine.Datasets;

/// <summary>
/// Everything one block of people produces: the rows of the four datasets (as reusable column buffers) and the
/// block's identifier table. Rows go in through <see cref="AddEvent"/>, <see cref="AddProfile"/> and
/// <see cref="AddConsent"/>, which also record which identifiers co-occur.
/// </summary>
internal sealed class BlockOutput
{
    private readonly GeneratorContext _context;
    private ulong _eventCounter;
    private long _orderCounter;
    private long _ticketCounter;

    public BlockOutput(GeneratorContext context)
    {
        _context = context;
        Events = new BatchBuffers(context.EventsSchema);
        Profiles = new BatchBuffers(context.ProfilesSchema);
        Consent = new BatchBuffers(context.ConsentSchema);
        Truth = new BatchBuffers(context.TruthSchema);
        Generator = new BlockGenerator(context, this);
    }

    public BatchBuffers Events { get; }

    public BatchBuffers Profiles { get; }

    public BatchBuffers Consent { get; }

    public BatchBuffers Truth { get; }

    public IdentifierTable Ids { get; } = new();

    /// <summary>The simulation that fills this output (scratch state reused across blocks).</summary>
    public BlockGenerator Generator { get; }

    public long Block { get; private set; }

    public int People { get; set; }

    public void Reset(long block)
    {
        Block = block;
        People = 0;
        _eventCounter = 0;
        _orderCounter = 0;
        _ticketCounter = 0;
        Events.Reset();
        Profiles.Reset();
        Consent.Reset();
        Truth.Reset();
        Ids.Reset();
    }

    public RecordBatch[] Build()
    {
        if (_context.FromMicros != long.MinValue)
        {
            // An appended slice: rows before it are already written (they counted for truth, above).
            Events.KeepFrom(EventColumns.Ts, _context.FromMicros);
            Profiles.KeepFrom(ProfileColumns.UpdatedAt, _context.FromMicros);
            Consent.KeepFrom(ConsentColumns.Ts, _context.FromMicros);
        }
        return [Events.Build(), Profiles.Build(), Consent.Build(), Truth.Build()];
    }

    public void AddEvent(in EventRow row)
    {
        var e = Events;
        // Event ids: a bijective mix of (block, counter), so unique by construction and random-looking.
        var id = Mix.SplitMix64(((ulong)Block << 32 | _eventCounter++) ^ _context.IdKey);
        if (row.Ts >= _context.UntilMicros)
        {
            // Simulated beyond the written history (FutureDays): a later append writes it. The counter moved all the
            // same, so every event keeps its id however far the history is written.
            return;
        }
        var idColumn = e.Utf8(EventColumns.EventId);
        Utf8.Hex16(id, idColumn.Reserve(16));
        idColumn.Commit(16);
        e.Fixed(EventColumns.Ts).Append(row.Ts);
        e.Utf8(EventColumns.Type).Append(Words.EventTypes[(int)row.Type]);

        Ids.WriteCell(e.Utf8(EventColumns.AnonymousId), IdType.AnonymousId, row.Anon, 0);
        Ids.WriteCell(e.Utf8(EventColumns.UserId), IdType.CustomerId, row.User, 0);
        Ids.WriteCell(e.Utf8(EventColumns.Email), IdType.Email, row.Email, (byte)row.EmailStyle);
        Ids.Link(row.Anon, row.User);
        Ids.Link(row.User, row.Email);
        Ids.Link(row.Anon, row.Email);

        var product = e.Utf8(EventColumns.ProductId);
        if (row.Product >= 0)
        {
            product.Append(_context.ProductIds[row.Product]);
        }
        else
        {
            product.AppendNull();
        }
        if (double.IsNaN(row.Revenue))
        {
            e.Fixed(EventColumns.Revenue).AppendNull();
        }
        else
        {
            e.Fixed(EventColumns.Revenue).Append(row.Revenue);
        }
        var order = e.Utf8(EventColumns.OrderId);
        if (row.HasOrder)
        {
            var span = order.Reserve(32);
            "ORD-"u8.CopyTo(span);
            order.Commit(4 + Utf8.Decimal((ulong)((Block * 10_000_000) + _orderCounter), span[4..]));
        }
        else
        {
            order.AppendNull();
        }
        if (row.Quantity > 0)
        {
            e.Fixed(EventColumns.Quantity).Append((long)row.Quantity);
        }
        else
        {
            e.Fixed(EventColumns.Quantity).AppendNull();
        }
        var campaign = e.Utf8(EventColumns.CampaignId);
        if (row.Campaign >= 0)
        {
            campaign.Append(_context.Calendar.CampaignIds[row.Campaign]);
        }
        else
        {
            campaign.AppendNull();
        }
        var ticket = e.Utf8(EventColumns.TicketId);
        if (row.HasTicket)
        {
            var span = ticket.Reserve(32);
            "TCK-"u8.CopyTo(span);
            ticket.Commit(4 + Utf8.Decimal((ulong)((Block * 1_000_000) + _ticketCounter), span[4..]));
        }
        else
        {
            ticket.AppendNull();
        }
        var device = e.Utf8(EventColumns.Device);
        if (row.Device == DeviceKind.None)
        {
            device.AppendNull();
        }
        else
        {
            device.Append(Words.Devices[(int)row.Device]);
        }
        var detail = e.Utf8(EventColumns.Detail);
        if (row.Detail is null)
        {
            detail.AppendNull();
        }
        else
        {
            detail.Append(row.Detail);
        }
    }

    /// <summary>Starts a new order: the next order event(s) carry its id.</summary>
    public void NextOrder()
    {
        _orderCounter++;
        if (_orderCounter >= 10_000_000)
        {
            throw new InvalidOperationException("more than 10 million orders in one block");
        }
    }

    /// <summary>Starts a new support ticket: the next ticket event(s) carry its id.</summary>
    public void NextTicket()
    {
        _ticketCounter++;
        if (_ticketCounter >= 1_000_000)
        {
            throw new InvalidOperationException("more than a million tickets in one block");
        }
    }

    public void AddProfile(in ProfileRow row)
    {
        if (row.Updated >= _context.UntilMicros)
        {
            return;
        }
        var p = Profiles;
        Ids.WriteCell(p.Utf8(ProfileColumns.CustomerId), IdType.CustomerId, row.Customer, 0);
        Ids.WriteCell(p.Utf8(ProfileColumns.Email), IdType.Email, row.Email, (byte)row.EmailStyle);
        Ids.WriteCell(p.Utf8(ProfileColumns.Phone), IdType.Phone, row.Phone, row.PhoneFormat);
        Ids.Link(row.Customer, row.Email);
        Ids.Link(row.Customer, row.Phone);
        Ids.Link(row.Email, row.Phone);
        p.Utf8(ProfileColumns.LoyaltyTier).Append(Words.Tiers[row.Tier]);
        p.Utf8(ProfileColumns.SubscriptionStatus).Append(Words.Statuses[row.Status]);
        p.Utf8(ProfileColumns.Country).Append(row.Country.Code);
        p.Fixed(ProfileColumns.CreatedAt).Append(row.Created);
        p.Fixed(ProfileColumns.UpdatedAt).Append(row.Updated);
        WriteName(p.Utf8(ProfileColumns.FirstName), row.First, row.FirstStyle);
        WriteName(p.Utf8(ProfileColumns.LastName), row.Last, row.LastStyle);
        WritePostcode(p.Utf8(ProfileColumns.Postcode), row.Country.Postcode, row.Postcode, row.PostcodeVariant);
    }

    public void AddConsent(IdType type, int value, byte style, int channel, bool granted, long ts, int source)
    {
        if (ts >= _context.UntilMicros)
        {
            return;
        }
        var c = Consent;
        c.Utf8(ConsentColumns.IdentifierType).Append(Words.IdentifierTypes[(int)type]);
        Ids.WriteCell(c.Utf8(ConsentColumns.IdentifierValue), type, value, style);
        c.Utf8(ConsentColumns.Channel).Append(Words.Channels[channel]);
        c.Utf8(ConsentColumns.Status).Append(granted ? Words.Granted : Words.Revoked);
        c.Fixed(ConsentColumns.Ts).Append(ts);
        c.Utf8(ConsentColumns.Source).Append(Words.Sources[source]);
    }

    private static void WriteName(Utf8Column column, byte[] name, NameStyle style)
    {
        var span = column.Reserve(name.Length + 1);
        name.CopyTo(span);
        var length = name.Length;
        switch (style)
        {
            case NameStyle.Upper:
                for (var i = 0; i < length; i++)
                {
                    span[i] = span[i] is >= (byte)'a' and <= (byte)'z' ? (byte)(span[i] - 32) : span[i];
                }
                break;
            case NameStyle.Lower:
                for (var i = 0; i < length; i++)
                {
                    span[i] = span[i] is >= (byte)'A' and <= (byte)'Z' ? (byte)(span[i] + 32) : span[i];
                }
                break;
            case NameStyle.TrailingSpace:
                span[length++] = (byte)' ';
                break;
            case NameStyle.Typo when length >= 4 && IsAsciiLetter(span[1]) && IsAsciiLetter(span[2]):
                (span[1], span[2]) = (span[2], span[1]);
                break;
            default:
                break;
        }
        column.Commit(length);
    }

    private static bool IsAsciiLetter(byte b) => b is >= (byte)'a' and <= (byte)'z';

    /// <summary>Postcodes derived from a per-person value; variant 1 drops the space, variant 2 lower-cases.</summary>
    private static void WritePostcode(Utf8Column column, PostcodeStyle style, ulong value, byte variant)
    {
        var span = column.Reserve(16);
        var at = 0;
        var letters = Vocabulary.Letters;
        switch (style)
        {
            case PostcodeStyle.FiveDigits:
                at = Utf8.Decimal(1000 + (value % 98_000), 5, span);
                break;
            case PostcodeStyle.FourDigits:
                at = Utf8.Decimal(2000 + (value % 6000), span);
                break;
            case PostcodeStyle.Dutch:
                at = Utf8.Decimal(1000 + (value % 9000), span);
                if (variant != 1)
                {
                    span[at++] = (byte)' ';
                }
                span[at++] = letters[(int)(value / 9000 % (ulong)letters.Length)];
                span[at++] = letters[(int)(value / 180_000 % (ulong)letters.Length)];
                break;
            case PostcodeStyle.British:
                var area = Vocabulary.BritishAreas[(int)(value % (ulong)Vocabulary.BritishAreas.Length)];
                area.CopyTo(span);
                at = area.Length;
                at += Utf8.Decimal(1 + (value / 20 % 19), span[at..]);
                if (variant != 1)
                {
                    span[at++] = (byte)' ';
                }
                span[at++] = (byte)('0' + (int)(value / 400 % 10));
                span[at++] = letters[(int)(value / 4000 % (ulong)letters.Length)];
                span[at++] = letters[(int)(value / 80_000 % (ulong)letters.Length)];
                break;
        }
        if (variant == 2)
        {
            for (var i = 0; i < at; i++)
            {
                span[i] = span[i] is >= (byte)'A' and <= (byte)'Z' ? (byte)(span[i] + 32) : span[i];
            }
        }
        column.Commit(at);
    }
}
