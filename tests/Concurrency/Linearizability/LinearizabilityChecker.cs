namespace LockFree.Tests.Concurrency.Linearizability;

/// <summary>The verdict of <see cref="LinearizabilityChecker"/>.</summary>
/// <param name="IsLinearizable">True when some order of the operations, consistent with real time, satisfies the spec.</param>
/// <param name="Explanation">For a failure: the history and the longest linearizable prefix found.</param>
/// <param name="StatesExplored">How many (linearized set, state) pairs the search visited.</param>
public sealed record LinearizabilityResult(bool IsLinearizable, string Explanation, long StatesExplored);

/// <summary>
/// Wing &amp; Gong's linearizability search with Lowe's memoisation (as in Porcupine).
/// </summary>
public static class LinearizabilityChecker
{
    /// <summary>Checks <paramref name="history"/> against <paramref name="spec"/>.</summary>
    public static LinearizabilityResult Check<TState, TInput, TOutput>(
        ISequentialSpec<TState, TInput, TOutput> spec,
        IReadOnlyList<Operation<TInput, TOutput>> history)
        => throw new NotImplementedException();
}
