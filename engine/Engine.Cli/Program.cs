namespace Engine.Cli;

internal static class Program
{
    private static Task<int> Main(string[] args) => EngineCommandLine.RunAsync(args, Console.Out, Console.Error);
}
