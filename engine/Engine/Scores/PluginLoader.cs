using System.Collections.Concurrent;
using System.Reflection;
using System.Runtime.Loader;

namespace Engine.Scores;

/// <summary>
/// Loads plug-in model classes (<see cref="IModelPlugin"/>) from the assemblies a workspace names. They load into the
/// default context, so that they share the engine's and ML.NET's types; their own dependencies are looked for beside
/// them. Each assembly loads once per process.
/// </summary>
public static class PluginLoader
{
    private static readonly ConcurrentDictionary<string, Assembly> Loaded = new(StringComparer.Ordinal);
    private static readonly ConcurrentDictionary<string, bool> Folders = new(StringComparer.Ordinal);

    /// <summary>A new instance of the model's plug-in class; throws <see cref="ModelException"/> naming what is wrong.</summary>
    public static IModelPlugin Create(ModelDefinition model, string workspaceDirectory)
    {
        ArgumentNullException.ThrowIfNull(model);
        var plugin = model.Plugin ?? throw new ArgumentException($"model '{model.Name}' declares no plug-in", nameof(model));
        var path = plugin.AssemblyPath(workspaceDirectory);
        if (!File.Exists(path))
        {
            throw new ModelException(model.Name, $"plug-in assembly {path} does not exist ({model.File}:{plugin.Line}); build it, or fix 'assembly'");
        }
        Assembly assembly;
        try
        {
            assembly = Loaded.GetOrAdd(path, Load);
        }
        catch (Exception e) when (e is BadImageFormatException or FileLoadException)
        {
            throw new ModelException(model.Name, $"plug-in assembly {path} cannot be loaded: {e.Message}", e);
        }
        var type = assembly.GetType(plugin.Type, throwOnError: false);
        if (type is null || !typeof(IModelPlugin).IsAssignableFrom(type))
        {
            var candidates = PluginTypes(assembly);
            throw new ModelException(model.Name, type is null
                ? $"plug-in assembly {Path.GetFileName(path)} has no type '{plugin.Type}' (classes implementing {nameof(IModelPlugin)} there: {(candidates.Count == 0 ? "none" : string.Join(", ", candidates))})"
                : $"'{plugin.Type}' does not implement {typeof(IModelPlugin).FullName}");
        }
        try
        {
            return (IModelPlugin)Activator.CreateInstance(type)!;
        }
        catch (Exception e) when (e is MissingMethodException or TargetInvocationException or MemberAccessException)
        {
            throw new ModelException(model.Name, $"'{plugin.Type}' cannot be created (it needs a public parameterless constructor): {e.InnerException?.Message ?? e.Message}", e);
        }
    }

    private static Assembly Load(string path)
    {
        var folder = Path.GetDirectoryName(path)!;
        if (Folders.TryAdd(folder, true))
        {
            AssemblyLoadContext.Default.Resolving += (context, name) =>
            {
                var candidate = Path.Combine(folder, name.Name + ".dll");
                return File.Exists(candidate) ? context.LoadFromAssemblyPath(candidate) : null;
            };
        }
        return AssemblyLoadContext.Default.LoadFromAssemblyPath(path);
    }

    private static List<string> PluginTypes(Assembly assembly)
    {
        try
        {
            return assembly.GetTypes().Where(t => t.IsClass && !t.IsAbstract && typeof(IModelPlugin).IsAssignableFrom(t)).Select(t => t.FullName!).ToList();
        }
        catch (ReflectionTypeLoadException)
        {
            return [];
        }
    }
}
