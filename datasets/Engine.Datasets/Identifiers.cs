using System.Runtime.CompilerServices;
using System.Text;
using PhoneNumbers;

namespace Engine.Datasets;

/// <summary>The identifier types, named as in the truth dataset and the example workspace.</summary>
internal enum IdType : byte
{
    Email,
    Phone,
    CustomerId,
    AnonymousId,
}

/// <summary>How an email address is written on one row: as the canonical lower-case form or as someone typed it.</summary>
internal enum EmailStyle : byte
{
    Lower,
    Title,
    Upper,
    TrailingSpace,
    LeadingSpace,
    TitleTrailingSpace,
}

/// <summary>
/// A reference to an identifier on a row: a handle into the block's <see cref="IdentifierTable"/> (&gt;= 0), no value
/// (NULL), an empty string, or one of the placeholder values of <see cref="JunkValues"/>.
/// </summary>
internal static class Ref
{
    public const int None = -1;
    public const int Empty = -2;

    public static int Junk(int index) => -3 - index;

    public static bool IsJunk(int reference) => reference <= -3;

    public static int JunkIndex(int reference) => -3 - reference;
}

/// <summary>
/// Placeholder values real systems carry in identifier fields, per type, as written on rows; and their canonical
/// forms for the truth dataset (phones canonicalised by libphonenumber per country, once at start-up).
/// </summary>
internal static class JunkValues
{
    public static byte[][] Email { get; } = Vocabulary.Encode(
        "test@test.com", "TEST@TEST.COM", "null", "NULL", "unknown", "n/a", "none", "noemail@noemail.com", "no@email.com",
        "asdf@asdf.com", "x@x.com", "Test@Test.com ", " ");

    public static byte[][] CustomerId { get; } = Vocabulary.Encode("undefined", "null", "0", "-1", "guest", "NULL", "undefined ");

    public static byte[][] AnonymousId { get; } = Vocabulary.Encode("00000000-0000-0000-0000-000000000000", "undefined", "null");

    public static byte[][] Phone { get; } = Vocabulary.Encode(
        "0000000000", "000-000-0000", "1234567890", "n/a", "null", "unknown", "000 000 0000", "9999999999", "-");

    public static byte[][] For(IdType type) => type switch
    {
        IdType.Email => Email,
        IdType.Phone => Phone,
        IdType.CustomerId => CustomerId,
        _ => AnonymousId,
    };

    /// <summary>Every distinct canonical junk value per type, in a fixed order: written to truth once per data set.</summary>
    public static IReadOnlyList<(IdType Type, byte[] Value)> Canonical { get; } = BuildCanonical();

    private static List<(IdType, byte[])> BuildCanonical()
    {
        var result = new List<(IdType, byte[])>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        void Add(IdType type, string canonical)
        {
            if (canonical.Length > 0 && seen.Add($"{type}\u0001{canonical}"))
            {
                result.Add((type, Encoding.UTF8.GetBytes(canonical)));
            }
        }
        foreach (var value in Email)
        {
            Add(IdType.Email, Encoding.UTF8.GetString(value).Trim().ToLowerInvariant());
        }
        foreach (var value in CustomerId)
        {
            Add(IdType.CustomerId, Encoding.UTF8.GetString(value).Trim());
        }
        foreach (var value in AnonymousId)
        {
            Add(IdType.AnonymousId, Encoding.UTF8.GetString(value).Trim());
        }
        var util = PhoneNumberUtil.GetInstance();
        foreach (var country in Vocabulary.Countries)
        {
            foreach (var value in Phone)
            {
                Add(IdType.Phone, CanonicalPhone(util, Encoding.UTF8.GetString(value), country.Phone.Region));
            }
        }
        return result;
    }

    /// <summary>The canonical form of a phone as the truth dataset defines it (see <see cref="GeneratedDatasets"/>).</summary>
    public static string CanonicalPhone(PhoneNumberUtil util, string value, string? region)
    {
        try
        {
            return util.Format(util.Parse(value, region), PhoneNumberFormat.E164);
        }
        catch (NumberParseException)
        {
            return value.Trim();
        }
    }
}

/// <summary>
/// The identifiers of one block of people, in canonical form, with who uses them and a union-find over their
/// co-occurrence on rows. Values that may be shared (a household tablet's cookies, a family address) are
/// "candidates": their links are held back until the block is done, then kept only if a single person used them.
/// </summary>
internal sealed class IdentifierTable
{
    private const byte UsedFlag = 1, MultiFlag = 2, CandidateFlag = 4;

    private static readonly byte[][] TypeNames = Vocabulary.Encode("email", "phone", "customer_id", "anonymous_id");
    private static readonly byte[][] KindNames = Vocabulary.Encode("person", "bot", "shared", "junk");

    private byte[] _arena = new byte[256 * 1024];
    private int _arenaLength;
    private int[] _start = new int[8192];
    private byte[] _length = new byte[8192];
    private IdType[] _type = new IdType[8192];
    private byte[] _extra = new byte[8192];
    private byte[] _flags = new byte[8192];
    private int[] _owner = new int[8192];
    private int[] _parent = new int[8192];
    private int[] _linkable = new int[8192];
    private int[] _deferred = new int[1024];
    private int _deferredCount;

    public int Count { get; private set; }

    /// <summary>The person whose rows are being written: every handle used on a row is recorded against them.</summary>
    public int CurrentPerson { get; set; }

    public void Reset()
    {
        Count = 0;
        _arenaLength = 0;
        _deferredCount = 0;
    }

    /// <summary>Adds an identifier owned by <paramref name="owner"/> (a person of the block), or a shared candidate when -1.</summary>
    public int Add(IdType type, ReadOnlySpan<byte> canonical, int owner, byte extra = 0)
    {
        if (Count == _start.Length)
        {
            var size = Count * 2;
            Array.Resize(ref _start, size);
            Array.Resize(ref _length, size);
            Array.Resize(ref _type, size);
            Array.Resize(ref _extra, size);
            Array.Resize(ref _flags, size);
            Array.Resize(ref _owner, size);
            Array.Resize(ref _parent, size);
            Array.Resize(ref _linkable, size);
        }
        if (_arenaLength + canonical.Length > _arena.Length)
        {
            Array.Resize(ref _arena, Math.Max(_arena.Length * 2, _arenaLength + canonical.Length));
        }
        canonical.CopyTo(_arena.AsSpan(_arenaLength));
        var h = Count++;
        _start[h] = _arenaLength;
        _length[h] = checked((byte)canonical.Length);
        _arenaLength += canonical.Length;
        _type[h] = type;
        _extra[h] = extra;
        _flags[h] = owner < 0 ? CandidateFlag : (byte)0;
        _owner[h] = owner;
        _parent[h] = h;
        return h;
    }

    public ReadOnlySpan<byte> Value(int handle) => _arena.AsSpan(_start[handle], _length[handle]);

    public IdType Type(int handle) => _type[handle];

    /// <summary>Per-type extra data: the country index of a phone.</summary>
    public byte Extra(int handle) => _extra[handle];

    /// <summary>Records that the current person used <paramref name="handle"/> on a row.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Use(int handle)
    {
        ref var flags = ref _flags[handle];
        if ((flags & CandidateFlag) != 0)
        {
            if ((flags & UsedFlag) == 0)
            {
                _owner[handle] = CurrentPerson;
            }
            else if (_owner[handle] != CurrentPerson)
            {
                flags |= MultiFlag;
            }
        }
        flags |= UsedFlag;
    }

    /// <summary>Links two identifiers that appeared on the same row (both already <see cref="Use"/>d).</summary>
    public void Link(int a, int b)
    {
        if (a < 0 || b < 0 || a == b)
        {
            return;
        }
        if (((_flags[a] | _flags[b]) & CandidateFlag) != 0)
        {
            if (_deferredCount + 2 > _deferred.Length)
            {
                Array.Resize(ref _deferred, _deferred.Length * 2);
            }
            _deferred[_deferredCount++] = a;
            _deferred[_deferredCount++] = b;
            return;
        }
        Union(a, b);
    }

    private int Find(int x)
    {
        while (_parent[x] != x)
        {
            _parent[x] = _parent[_parent[x]];
            x = _parent[x];
        }
        return x;
    }

    private void Union(int a, int b)
    {
        var ra = Find(a);
        var rb = Find(b);
        if (ra != rb)
        {
            // The lower handle wins: deterministic whatever the order of links.
            if (ra < rb)
            {
                _parent[rb] = ra;
            }
            else
            {
                _parent[ra] = rb;
            }
        }
    }

    /// <summary>
    /// Writes one truth row per used identifier. <paramref name="personIds"/> and <paramref name="bots"/> are indexed by
    /// the block's person index; linkable ids are <paramref name="linkableBase"/> + a counter in handle order.
    /// </summary>
    public int WriteTruth(BatchBuffers truth, ReadOnlySpan<long> personIds, ReadOnlySpan<bool> bots, long linkableBase)
    {
        for (var i = 0; i < _deferredCount; i += 2)
        {
            var a = _deferred[i];
            var b = _deferred[i + 1];
            if (((_flags[a] | _flags[b]) & MultiFlag) == 0)
            {
                Union(a, b);
            }
        }
        var types = truth.Utf8(TruthColumns.IdentifierType);
        var values = truth.Utf8(TruthColumns.IdentifierValue);
        var persons = truth.Fixed(TruthColumns.PersonId);
        var linkables = truth.Fixed(TruthColumns.LinkableId);
        var kinds = truth.Utf8(TruthColumns.Kind);
        Array.Fill(_linkable, -1, 0, Count);
        var next = 0;
        var rows = 0;
        for (var h = 0; h < Count; h++)
        {
            var flags = _flags[h];
            if ((flags & UsedFlag) == 0)
            {
                continue;
            }
            types.Append(TypeNames[(int)_type[h]]);
            values.Append(Value(h));
            if ((flags & MultiFlag) != 0)
            {
                persons.AppendNull();
                linkables.AppendNull();
                kinds.Append(KindNames[2]);
            }
            else
            {
                var owner = _owner[h];
                var root = Find(h);
                if (_linkable[root] < 0)
                {
                    _linkable[root] = next++;
                }
                persons.Append(personIds[owner]);
                linkables.Append(linkableBase + _linkable[root]);
                kinds.Append(KindNames[bots[owner] ? 1 : 0]);
            }
            rows++;
        }
        return rows;
    }

    /// <summary>Writes the junk values' truth rows (NULL person, kind junk).</summary>
    public static int WriteJunkTruth(BatchBuffers truth)
    {
        foreach (var (type, value) in JunkValues.Canonical)
        {
            truth.Utf8(TruthColumns.IdentifierType).Append(TypeNames[(int)type]);
            truth.Utf8(TruthColumns.IdentifierValue).Append(value);
            truth.Fixed(TruthColumns.PersonId).AppendNull();
            truth.Fixed(TruthColumns.LinkableId).AppendNull();
            truth.Utf8(TruthColumns.Kind).Append(KindNames[3]);
        }
        return JunkValues.Canonical.Count;
    }

    /// <summary>
    /// Writes an identifier cell: NULL, an empty string, a placeholder, or a handle rendered in <paramref name="style"/>
    /// (an <see cref="EmailStyle"/> for emails, a format index for phones, 1 = padded with spaces for ids).
    /// </summary>
    public void WriteCell(Utf8Column column, IdType type, int reference, byte style)
    {
        if (reference == Ref.None)
        {
            column.AppendNull();
            return;
        }
        if (reference == Ref.Empty)
        {
            column.Append([]);
            return;
        }
        if (Ref.IsJunk(reference))
        {
            column.Append(JunkValues.For(type)[Ref.JunkIndex(reference)]);
            return;
        }
        Use(reference);
        var value = Value(reference);
        var span = column.Reserve(value.Length + 32);
        int written;
        switch (type)
        {
            case IdType.Email:
                written = RenderEmail(value, (EmailStyle)style, span);
                break;
            case IdType.Phone:
                written = Vocabulary.Countries[_extra[reference]].Phone.Render(value, style, span);
                break;
            default:
                if (style == 1)
                {
                    span[0] = (byte)' ';
                    value.CopyTo(span[1..]);
                    span[value.Length + 1] = (byte)' ';
                    written = value.Length + 2;
                }
                else
                {
                    value.CopyTo(span);
                    written = value.Length;
                }
                break;
        }
        column.Commit(written);
    }

    /// <summary>Renders a canonical (lower-case ASCII) address in a style; returns bytes written.</summary>
    public static int RenderEmail(ReadOnlySpan<byte> canonical, EmailStyle style, Span<byte> destination)
    {
        var at = 0;
        if (style == EmailStyle.LeadingSpace)
        {
            destination[at++] = (byte)' ';
        }
        var capitalizeNext = true;
        for (var i = 0; i < canonical.Length; i++)
        {
            var c = canonical[i];
            var upper = style == EmailStyle.Upper || (capitalizeNext && style is EmailStyle.Title or EmailStyle.TitleTrailingSpace);
            destination[at++] = upper && c is >= (byte)'a' and <= (byte)'z' ? (byte)(c - 32) : c;
            // Title is what phone keyboards do: the first letter only.
            capitalizeNext = false;
        }
        if (style is EmailStyle.TrailingSpace or EmailStyle.TitleTrailingSpace)
        {
            destination[at++] = (byte)' ';
        }
        return at;
    }
}
