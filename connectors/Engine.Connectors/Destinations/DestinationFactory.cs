using Engine.Connectors.Destinations.Braze;
using Engine.Connectors.Destinations.Crm;
using Engine.Connectors.Destinations.Files;
using Engine.Connectors.Destinations.Google;
using Engine.Connectors.Destinations.Meta;
using Engine.Connectors.Destinations.Postgres;
using Engine.Connectors.Destinations.Webhook;
using Engine.Connectors.Ledger;
using Engine.Storage;
using Engine.Workspaces;

namespace Engine.Connectors.Destinations;

/// <summary>What a destination's client may need besides its definition: the workspace, storage and output folder.</summary>
public sealed record DestinationContext(Workspace Workspace, StorageResolver Storage, StorageLocation Output)
{
    /// <summary>The delivery's ledger, where destinations that need state across restarts keep it (an upload job's name).</summary>
    public IDeliveryLedger? Ledger { get; init; }

    /// <summary>The state store of <paramref name="destination"/>; fatal when the context carries no ledger.</summary>
    public IDestinationState State(string destination) => Ledger is { } ledger
        ? new LedgerDestinationState(ledger, destination)
        : throw new DestinationException("no_state", FailureKind.Fatal, $"destination '{destination}' keeps state in the delivery ledger, and none was given");

    /// <summary>A destination path: a URI or absolute path as it is, a relative one under the workspace's output folder.</summary>
    public StorageLocation ResolvePath(string path) => StorageResolver.IsUri(path) || Path.IsPathRooted(path)
        ? Storage.Resolve(path, Workspace.Directory)
        : Output.Child(path);

    /// <summary>The type of a profile column (profile_id is int64).</summary>
    public ColumnType ColumnType(string column) => column == "profile_id"
        ? Engine.Storage.ColumnType.Int64
        : Workspace.ProfileColumns.First(c => c.Name == column).Type;
}

/// <summary>Builds the client of each destination type.</summary>
public static class DestinationFactory
{
    /// <summary>
    /// The client for <paramref name="definition"/>. Throws <see cref="DestinationException"/> (fatal) when it cannot be
    /// built, such as a credential whose environment variable is not set: that destination stops, the others go on.
    /// </summary>
    public static IDestination Create(DestinationDefinition definition, DestinationContext context)
    {
        ArgumentNullException.ThrowIfNull(definition);
        ArgumentNullException.ThrowIfNull(context);
        return definition.Type switch
        {
            DestinationType.File => new FileDestination(definition, context.ResolvePath(definition.Setting("path")!),
                [.. definition.Fields.Select(f => (f.Field, context.ColumnType(f.Column)))]),
            DestinationType.Webhook => new WebhookDestination(definition),
            DestinationType.Braze => new BrazeDestination(definition),
            DestinationType.Crm => new CrmDestination(definition),
            DestinationType.MetaCustomAudiences => new MetaCustomAudiencesDestination(definition,
                HashedIdentifiers.Kinds(definition.IdentifyBy, context.Workspace.Identity)),
            DestinationType.Postgres => new PostgresDestination(definition,
                [.. definition.Fields.Select(f => (f.Field, context.ColumnType(f.Column)))]),
            DestinationType.GoogleCustomerMatch => new GoogleCustomerMatchDestination(definition,
                HashedIdentifiers.Kinds(definition.IdentifyBy, context.Workspace.Identity), context.State(definition.Name)),
            _ => throw new DestinationException("not_available", FailureKind.Fatal,
                $"destination '{definition.Name}': {DestinationTypeInfo.Of(definition.Type).Name} destinations are not available in this build yet"),
        };
    }
}
