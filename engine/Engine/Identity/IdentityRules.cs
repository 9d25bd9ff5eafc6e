namespace Engine.Identity;

/// <summary>
/// A workspace's identity rules (<c>identity.yaml</c>): the identifier types in priority order (first = highest),
/// each with its normaliser, per-profile limit, blocklist and shared-value threshold. Composite types are built
/// from several columns named by each source.
/// </summary>
public sealed class IdentityRules
{
    /// <summary>The name of the rules file at the workspace root.</summary>
    public const string FileName = "identity.yaml";

    private readonly Dictionary<string, int> _priority = new(StringComparer.Ordinal);

    public IdentityRules(IReadOnlyList<IdentifierType> types)
    {
        Types = types;
        for (var i = 0; i < types.Count; i++)
        {
            if (!_priority.TryAdd(types[i].Name, i))
            {
                throw new ArgumentException($"identifier type '{types[i].Name}' is defined twice", nameof(types));
            }
        }
    }

    /// <summary>The identifier types, highest priority first.</summary>
    public IReadOnlyList<IdentifierType> Types { get; }

    /// <summary>The type named <paramref name="name"/>, or null.</summary>
    public IdentifierType? Find(string name) => _priority.TryGetValue(name, out var i) ? Types[i] : null;

    /// <summary>The type's rank: 0 for the highest priority; -1 when the rules do not define it.</summary>
    public int PriorityOf(string name) => _priority.TryGetValue(name, out var i) ? i : -1;

    /// <summary>The composite types (built from several columns), in priority order.</summary>
    public IEnumerable<IdentifierType> Composites => Types.Where(t => t.Kind == NormalizerKind.Composite);

    /// <summary>
    /// The rules a workspace gets without <c>identity.yaml</c>: customer_id (limit 1), email (5), phone (3, region
    /// US) and anonymous_id (no limit; shared when linked to more than one profile of higher-priority identifiers),
    /// emails only trimmed and lower-cased, the built-in blocklists on. Without a name to tell a duplicate CRM record
    /// from a family sharing an address, one customer id per profile is the safe default (<c>engine init</c> writes
    /// richer rules that use the CRM's names).
    /// </summary>
    public static IdentityRules Default { get; } = new(
    [
        new IdentifierType("customer_id", NormalizerKind.Id, IdNormalizer.Instance, 1, null, DefaultBlocklists.For(NormalizerKind.Id, [], [])),
        new IdentifierType("email", NormalizerKind.Email, new EmailNormalizer(), 5, null, DefaultBlocklists.For(NormalizerKind.Email, [], [])),
        new IdentifierType("phone", NormalizerKind.Phone, new PhoneNormalizer("US"), 3, null, DefaultBlocklists.For(NormalizerKind.Phone, [], [])),
        new IdentifierType("anonymous_id", NormalizerKind.Id, IdNormalizer.Instance, null, 1, DefaultBlocklists.For(NormalizerKind.Id, [], [])),
    ]);
}
