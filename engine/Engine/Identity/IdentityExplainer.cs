using System.Text;
using Apache.Arrow;
using Engine.Storage;

namespace Engine.Identity;

/// <summary>One identifier in an explanation: its row in <c>identity/</c>, its type and its masked value.</summary>
public sealed record ExplainedIdentifier(int Index, string Type, string MaskedValue, long? ProfileId, bool Shared);

/// <summary>One link in an explanation, with its outcome and, when refused, why.</summary>
public sealed record ExplainedLink(ExplainedIdentifier From, ExplainedIdentifier To, string Outcome, string? Reason, string? ReasonType);

/// <summary>Why an identifier is in the profile it is in: the profile's identifiers, the links that joined them, the links refused.</summary>
public sealed record IdentityExplanation(
    ExplainedIdentifier Target,
    IReadOnlyList<ExplainedIdentifier> Members,
    IReadOnlyList<ExplainedLink> Linked,
    IReadOnlyList<ExplainedLink> Refused,
    IReadOnlyList<ProfileChange> Changes);

/// <summary>
/// <c>engine identity explain</c>: reads one run's identity output (identifiers, links, merges) and explains one
/// identifier's profile. Values are only ever returned masked (<see cref="IdentifierMask"/>).
/// </summary>
public static class IdentityExplainer
{
    /// <summary>
    /// Explains <paramref name="identifier"/>, written <c>type:value</c> as a source would hold it (it is normalised
    /// with the type's rules first), from the identity output at <paramref name="identity"/>.
    /// </summary>
    public static async Task<IdentityExplanation> ExplainAsync(IdentityRules rules, StorageLocation identity, string identifier, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(rules);
        ArgumentNullException.ThrowIfNull(identifier);
        var colon = identifier.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0)
        {
            throw new EngineException($"'--identifier' must be type:value, e.g. email:ann@example.com (types: {string.Join(", ", rules.Types.Select(t => t.Name))})");
        }
        var typeName = identifier[..colon];
        var type = rules.Find(typeName)
            ?? throw new EngineException($"identifier type '{typeName}' is not defined by the identity rules"
                + (Workspaces.Suggestions.Nearest(typeName, rules.Types.Select(t => t.Name)) is { } near ? $"; did you mean '{near}'?" : "")
                + $" (types: {string.Join(", ", rules.Types.Select(t => t.Name))})");
        var raw = Encoding.UTF8.GetBytes(identifier[(colon + 1)..]);
        var canonical = new byte[IdentifierNormalizers.MaxOutputBytes(raw.Length)];
        var status = type.Canonicalize(raw, canonical, out var written);
        if (status != NormalizeStatus.Ok)
        {
            throw new EngineException($"the {typeName} value is {IdentityOutput.StatusName(status).Replace('_', ' ')} under the identity rules, so it never links anything and is in no profile");
        }
        var typeId = rules.PriorityOf(typeName);
        var target = canonical.AsSpan(0, written).ToArray();

        var identifiers = await Dataset.OpenAsync(identity, DataFormat.Parquet, cancellationToken);
        // Pass 1: the identifier's row and profile.
        var targetIndex = -1;
        long targetProfile = -1;
        IdentityOutput.ReadIdentifiers(identifiers, rules, (i, t, value, profile, _) =>
        {
            if (targetIndex < 0 && t == typeId && value.SequenceEqual(target))
            {
                targetIndex = i;
                targetProfile = profile;
            }
        }, cancellationToken);
        if (targetIndex < 0)
        {
            throw new EngineException($"{typeName} {IdentifierMask.Mask(type.Kind, Encoding.UTF8.GetString(target))} is not in this run's identity output ({identity}): no source row carried it");
        }

        // Pass 2: the profile's identifiers (a shared value in no profile stands alone).
        var members = new Dictionary<int, ExplainedIdentifier>();
        IdentityOutput.ReadIdentifiers(identifiers, rules, (i, t, value, profile, shared) =>
        {
            if (i == targetIndex || (targetProfile >= 0 && profile == targetProfile))
            {
                members[i] = Describe(rules, i, t, value, profile, shared);
            }
        }, cancellationToken);

        // The links touching the profile; refused ones lead outside it, whose far ends are read next.
        var links = await Dataset.OpenAsync(identity.Child(IdentityStage.LinksFolder), DataFormat.Parquet, cancellationToken);
        var touching = new List<(int From, int To, bool Linked, string? Reason, string? ReasonType)>();
        IdentityOutput.ReadLinks(links, (a, b, linked, reason, reasonType) =>
        {
            if (members.ContainsKey(a) || members.ContainsKey(b))
            {
                touching.Add((a, b, linked, reason, reasonType));
            }
        }, cancellationToken);
        var wanted = touching.SelectMany(l => new[] { l.From, l.To }).Where(i => !members.ContainsKey(i)).ToHashSet();
        var outside = new Dictionary<int, ExplainedIdentifier>();
        IdentityOutput.ReadIdentifiers(identifiers, rules, (i, t, value, profile, shared) =>
        {
            if (wanted.Contains(i))
            {
                outside[i] = Describe(rules, i, t, value, profile, shared);
            }
        }, cancellationToken);
        ExplainedIdentifier At(int i) => members.TryGetValue(i, out var m) ? m : outside[i];
        ExplainedLink Link((int From, int To, bool Linked, string? Reason, string? ReasonType) l) =>
            new(At(l.From), At(l.To), l.Linked ? IdentityOutput.Linked : IdentityOutput.Refused, l.Reason, l.ReasonType);
        var linked = touching.Where(l => l.Linked).Select(Link).ToList();
        var refused = touching.Where(l => !l.Linked).Select(Link).ToList();

        // How this profile's id came to be: merges and splits recorded in this run.
        var changes = new List<ProfileChange>();
        if (targetProfile >= 0)
        {
            var merges = await Dataset.OpenAsync(identity.Child(IdentityStage.MergesFolder), DataFormat.Parquet, cancellationToken);
            ColumnSpec[] mergeColumns = [new("old_profile_id", ColumnType.Int64, Required: true), new("new_profile_id", ColumnType.Int64), new("change", ColumnType.String, Required: true)];
            DatasetScan.Run(merges, mergeColumns, () => 0, (_, scan) =>
            {
                var olds = IdentityOutput.Column<Int64Array>(scan, 0, "old_profile_id");
                var news = IdentityOutput.Column<Int64Array>(scan, 1, "new_profile_id");
                for (var row = 0; row < scan.Batch.Length; row++)
                {
                    long? next = news.IsNull(row) ? null : news.Values[row];
                    if (olds.Values[row] == targetProfile || next == targetProfile)
                    {
                        IdentityGraphBuilder.TryGetBytes(scan.Batch.Column(2), row, out var change);
                        changes.Add(new ProfileChange(olds.Values[row], next, IdentityOutput.ParseChange(Encoding.UTF8.GetString(change))));
                    }
                }
            }, ScanOptions.Default with { Parallelism = 1 }, cancellationToken);
        }
        return new IdentityExplanation(members[targetIndex], [.. members.Values.OrderBy(m => m.Index)], linked, refused, changes);
    }

    private static ExplainedIdentifier Describe(IdentityRules rules, int index, int typeId, ReadOnlySpan<byte> value, long profile, bool shared)
    {
        var type = typeId >= 0 ? rules.Types[typeId] : null;
        var text = Encoding.UTF8.GetString(value);
        return new ExplainedIdentifier(index, type?.Name ?? "?", IdentifierMask.Mask(type?.Kind ?? NormalizerKind.Id, text), profile >= 0 ? profile : null, shared);
    }
}
