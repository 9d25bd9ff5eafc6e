using System.Reflection;
using Amazon.S3;

namespace Engine.Storage.S3.Tests;

/// <summary>
/// An <see cref="IAmazonS3"/> that forwards to a real client but fails the calls a test chooses, as a flaky network or
/// a full disk would: for the failure paths of uploads and commits.
/// </summary>
public class FaultyS3Client : DispatchProxy
{
    private IAmazonS3 _inner = null!;
    private Func<string, object?[]?, Exception?> _fault = null!;

    /// <summary>A client failing every call for which <paramref name="fault"/> (method name, arguments) returns an exception.</summary>
    public static IAmazonS3 Create(IAmazonS3 inner, Func<string, object?[]?, Exception?> fault)
    {
        var proxy = Create<IAmazonS3, FaultyS3Client>();
        var faulty = (FaultyS3Client)(object)proxy;
        faulty._inner = inner;
        faulty._fault = fault;
        return proxy;
    }

    protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
    {
        ArgumentNullException.ThrowIfNull(targetMethod);
        if (_fault(targetMethod.Name, args) is { } error)
        {
            var returns = targetMethod.ReturnType;
            if (returns.IsGenericType && returns.GetGenericTypeDefinition() == typeof(Task<>))
            {
                var fromException = typeof(Task).GetMethods().Single(m => m.Name == nameof(Task.FromException) && m.IsGenericMethod);
                return fromException.MakeGenericMethod(returns.GetGenericArguments()[0]).Invoke(null, [error]);
            }
            if (returns == typeof(Task))
            {
                return Task.FromException(error);
            }
            throw error;
        }
        try
        {
            return targetMethod.Invoke(_inner, args);
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            throw e.InnerException;
        }
    }
}
