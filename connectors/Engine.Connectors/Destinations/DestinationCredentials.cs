namespace Engine.Connectors.Destinations;

/// <summary>Reads a destination's credentials from the environment variables its file names.</summary>
public static class DestinationCredentials
{
    /// <summary>
    /// The value of credential <paramref name="name"/> of <paramref name="definition"/>. An unset or empty variable is a
    /// fatal <see cref="DestinationException"/> naming the variable; the value itself never appears in a message.
    /// </summary>
    public static string Read(DestinationDefinition definition, string name)
    {
        ArgumentNullException.ThrowIfNull(definition);
        var variable = definition.Credentials[name];
        var value = Environment.GetEnvironmentVariable(variable);
        if (string.IsNullOrEmpty(value))
        {
            throw new DestinationException("missing_credential", FailureKind.Fatal,
                $"destination '{definition.Name}' reads its {name} from the environment variable {variable}, which is not set");
        }
        return value;
    }
}
