namespace Engine.TestKit;

/// <summary>Pairwise precision and recall of an identity output against the generator's truth, computed by DuckDB.</summary>
public static class IdentityScoring
{
    /// <summary>
    /// Scores <paramref name="identityGlob"/> (the <c>identity/</c> Parquet files of a run) against
    /// <paramref name="truthGlob"/>. Precision: of the pairs of identifiers put in one profile (both belonging to some
    /// person), the share that belong to one person. Recall: of the pairs that share a <c>linkable_id</c> (one person,
    /// joinable from the rows), the share put in one profile. A person's identifier that the engine left out of every
    /// profile (a value it judged shared) counts as a profile of its own, so leaving values out costs recall rather
    /// than vanishing from the score.
    /// </summary>
    public static (double Precision, double Recall, long WrongPairs) Score(string identityGlob, string truthGlob)
    {
        using var connection = DuckDb.Open();
        DuckDb.Execute(connection, $"""
            CREATE TABLE scored AS
            SELECT t.person_id, t.linkable_id, coalesce(i.profile_id, -row_number() OVER ()) AS profile_id
            FROM read_parquet('{truthGlob}') t JOIN read_parquet('{identityGlob}') i USING (identifier_type, identifier_value)
            WHERE t.person_id IS NOT NULL
            """);
        var predicted = DuckDb.Double(connection, "SELECT sum(n * (n - 1) / 2) FROM (SELECT count(*)::HUGEINT n FROM scored GROUP BY profile_id)");
        var correct = DuckDb.Double(connection, "SELECT sum(n * (n - 1) / 2) FROM (SELECT count(*)::HUGEINT n FROM scored GROUP BY profile_id, person_id)");
        var linkable = DuckDb.Double(connection, "SELECT sum(n * (n - 1) / 2) FROM (SELECT count(*)::HUGEINT n FROM scored WHERE linkable_id IS NOT NULL GROUP BY person_id, linkable_id)");
        var found = DuckDb.Double(connection, "SELECT sum(n * (n - 1) / 2) FROM (SELECT count(*)::HUGEINT n FROM scored WHERE linkable_id IS NOT NULL GROUP BY person_id, linkable_id, profile_id)");
        return (predicted == 0 ? 1 : correct / predicted, linkable == 0 ? 1 : found / linkable, (long)(predicted - correct));
    }
}
