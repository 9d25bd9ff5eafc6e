using System.Text;
using Engine.Datasets;
using Engine.Storage;

namespace Engine.Cli.Commands;

/// <summary>
/// The example workspace <c>engine init</c> writes: sources mapped to what <c>engine generate</c> writes (the
/// contract in DESIGN.md), identifier columns typed as email, phone, customer_id and anonymous_id, and two segments.
/// </summary>
internal static class WorkspaceTemplate
{
    /// <summary>The files of the workspace, relative path → content.</summary>
    public static IReadOnlyList<(string Path, string Content)> Files(string name, string dataLocation)
    {
        string At(string folder) => $"{dataLocation.TrimEnd('/')}/{folder}";

        return
        [
            ("workspace.yaml", $"""
                # An activation engine workspace. Keep this folder under version control, like a dbt project:
                # sources/ says where the data is, segments/ the audiences. Secrets never go here; destinations
                # read credentials from environment variables.
                name: {name}
                version: 1
                # Where runs are written: a folder relative to this one, an absolute path, or s3://bucket/prefix.
                output: output

                """),
            (".gitignore", "output/\ndata/\n"),
            ("sources/events.yaml", Source(
                "events", "Web and app events: page and product views, carts, orders, email engagement, support tickets.",
                At(GeneratedDatasets.EventsFolder), GeneratedDatasets.Events, "ts",
                [("anonymous_id", "anonymous_id"), ("user_id", "customer_id"), ("email", "email")])),
            ("sources/profiles.yaml", Source(
                "profiles", "CRM customer records; a customer may have several rows over time (the newest updated_at wins).",
                At(GeneratedDatasets.ProfilesFolder), GeneratedDatasets.Profiles, "updated_at",
                [("customer_id", "customer_id"), ("email", "email"), ("phone", "phone")])),
            ("sources/consent.yaml", Source(
                "consent", "Consent granted and revoked per identifier and channel; the latest record per identifier and channel holds.",
                At(GeneratedDatasets.ConsentFolder), GeneratedDatasets.Consent, "ts", [])),
            ("segments/loyal_members.yaml", """
                name: loyal_members
                description: Members of the two top loyalty tiers whose subscription is active.
                condition: loyalty_tier IN ('gold', 'platinum') AND subscription_status = 'active'

                """),
            ("segments/lapsed_subscribers.yaml", """
                name: lapsed_subscribers
                description: Customers whose subscription was cancelled; a win-back audience.
                condition: subscription_status = 'cancelled'

                """),
        ];
    }

    private static string Source(string name, string description, string location, DataSchema schema, string timestamp, (string Column, string Type)[] identifiers)
    {
        var text = new StringBuilder();
        text.Append("name: ").Append(name).Append('\n');
        text.Append("description: \"").Append(description).Append("\"\n");
        text.Append("# A folder (hive-style partitions allowed) or s3://bucket/prefix; relative paths are taken from the workspace folder.\n");
        text.Append("location: ").Append(location).Append('\n');
        text.Append("format: parquet\n");
        text.Append("timestamp: ").Append(timestamp).Append('\n');
        text.Append("columns:\n");
        foreach (var column in schema.Columns)
        {
            var type = DataSchema.Describe(column.Type);
            text.Append("  ").Append(column.Name).Append(": ")
                .Append(column.Required ? $"{{ type: {type}, required: true }}" : type).Append('\n');
        }
        if (identifiers.Length > 0)
        {
            text.Append("# Columns that identify a person, and the identifier type each carries.\n");
            text.Append("identifiers:\n");
            foreach (var (column, type) in identifiers)
            {
                text.Append("  ").Append(column).Append(": ").Append(type).Append('\n');
            }
        }
        return text.ToString();
    }
}
