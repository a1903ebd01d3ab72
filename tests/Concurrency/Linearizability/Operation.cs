namespace LockFree.Tests.Concurrency.Linearizability;

/// <summary>
/// One completed (or pending) operation of a concurrent history.
/// </summary>
/// <param name="Thread">The logical thread that ran it.</param>
/// <param name="Input">What was called, with its arguments.</param>
/// <param name="Output">What it returned.</param>
/// <param name="Call">Timestamp taken just before the call (any clock that is monotonic across threads).</param>
/// <param name="Return">Timestamp taken just after the return; <see cref="long.MaxValue"/> for an operation that never returned.</param>
public sealed record Operation<TInput, TOutput>(int Thread, TInput Input, TOutput Output, long Call, long Return);

/// <summary>
/// A sequential specification: the object's behaviour when operations run one at a time.
/// Non-determinism is allowed as long as the output determines the next state.
/// </summary>
public interface ISequentialSpec<TState, TInput, TOutput>
{
    /// <summary>The state before any operation.</summary>
    TState Initial { get; }

    /// <summary>Compares states, for the memoisation of (linearized set, state) pairs.</summary>
    IEqualityComparer<TState> StateComparer { get; }

    /// <summary>Applies <paramref name="input"/> to <paramref name="state"/>: false when <paramref name="output"/> is not a possible answer.</summary>
    bool TryStep(TState state, TInput input, TOutput output, out TState next);

    /// <summary>Renders an operation for failure messages.</summary>
    string Describe(TInput input, TOutput output);
}
