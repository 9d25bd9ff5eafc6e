namespace Engine.Identity;

/// <summary>
/// The built-in blocklists: the placeholders real identifier columns carry when a form field was required but the
/// value was not known. Turned off with <c>blocklist: { defaults: false }</c> in <c>identity.yaml</c>.
/// </summary>
public static class DefaultBlocklists
{
    /// <summary>Placeholder words blocked for every type (compared ignoring ASCII case).</summary>
    public static IReadOnlyList<string> Placeholders { get; } =
    [
        "null", "(null)", "[null]", "nil", "none", "unknown", "undefined", "n/a", "na", "nan", "#n/a", "-", "--", "?",
        ".", "0", "-1", "empty", "blank", "guest", "anonymous", "test", "xxx", "false", "true",
    ];

    /// <summary>Email addresses that stand for "no email": test and example addresses, "a@a.com" and friends.</summary>
    public static IReadOnlyList<string> EmailValues { get; } =
    [
        "test@test.com", "test@example.com", "example@example.com", "user@example.com", "email@email.com",
        "email@example.com", "no@email.com", "noemail@noemail.com", "none@none.com", "asdf@asdf.com", "abc@abc.com",
        "a@a.com", "x@x.com", "test@gmail.com",
    ];

    /// <summary>Email shapes that are never a person's address.</summary>
    public static IReadOnlyList<string> EmailPatterns { get; } =
    [
        @"^(test|noemail|no-email|nomail|none|no|null|nil|unknown|invalid|na|n/a)@",
        @"^(no-?reply|do-?not-?reply)@",
        @"@(example|test|invalid)\.(com|org|net)$",
        // a@a.com, xx@xx.com: one repeated character on both sides of the '@'.
        @"^([a-z0-9])\1*@\1+\.[a-z]+$",
    ];

    /// <summary>Phone shapes (on the E.164 form) that are placeholders: all one digit, or counting up or down.</summary>
    public static IReadOnlyList<string> PhonePatterns { get; } =
    [
        @"^\+\d{1,3}?(\d)\1{6,}$",
        @"^\+\d{1,3}?(0?123456789|1234567890?|9876543210?)$",
    ];

    /// <summary>Id placeholders beyond the common words: the all-zero UUID, with and without dashes.</summary>
    public static IReadOnlyList<string> IdValues { get; } =
    [
        "00000000-0000-0000-0000-000000000000", "00000000000000000000000000000000", "0000000000", "000000",
    ];

    /// <summary>The blocklist of a type of <paramref name="kind"/>: the defaults (when on) plus the workspace's own values and patterns.</summary>
    public static Blocklist For(NormalizerKind kind, IEnumerable<string> values, IEnumerable<string> patterns, bool defaults = true)
    {
        if (!defaults)
        {
            return new Blocklist(values, patterns);
        }
        var allValues = new List<string>(Placeholders);
        var allPatterns = new List<string>();
        switch (kind)
        {
            case NormalizerKind.Email:
                allValues.AddRange(EmailValues);
                allPatterns.AddRange(EmailPatterns);
                break;
            case NormalizerKind.Phone:
                allPatterns.AddRange(PhonePatterns);
                break;
            case NormalizerKind.Id:
                allValues.AddRange(IdValues);
                break;
            case NormalizerKind.Composite:
                break;
        }
        allValues.AddRange(values);
        allPatterns.AddRange(patterns);
        return new Blocklist(allValues, allPatterns);
    }
}
