namespace LockFree.Tests.Concurrency.Composed;

/// <summary>
/// A composed scenario's own check failed. A type of its own, so that no handler of the code under test's exceptions
/// (an <see cref="InvalidOperationException"/> from a completed queue, say) can swallow a failed check.
/// </summary>
public sealed class CheckFailedException(string message) : Exception(message);
