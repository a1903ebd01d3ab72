using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using LockFree.Internal;

namespace LockFree;

/// <summary>
/// The thieves' view of a <see cref="WorkStealingDeque{T}"/>: takes the oldest items (FIFO end). Safe to call
/// from any number of threads at once, including alongside the owner's pushes and pops.
/// </summary>
/// <remarks>
/// Each steal is lock-free: a fence, a few loads and one CAS per item taken. <see cref="StealResult.Retry"/>
/// means the thief lost a race and nothing changed; the caller usually tries again (or another victim).
/// <see cref="StealResult.Empty"/> means the deque was empty at some instant during the call.
/// </remarks>
/// <typeparam name="T">The item type.</typeparam>
[DebuggerDisplay("Count = {_deque.Count}")]
public sealed class Stealer<T>
{
    private readonly WorkStealingDeque<T> _deque;

    internal Stealer(WorkStealingDeque<T> deque) => _deque = deque;

    /// <summary>Takes the oldest item.</summary>
    /// <param name="item">The item, when the result is <see cref="StealResult.Success"/>.</param>
    /// <returns><see cref="StealResult.Success"/>, <see cref="StealResult.Empty"/>, or <see cref="StealResult.Retry"/> (lost a race; nothing taken).</returns>
    public StealResult TrySteal([MaybeNullWhen(false)] out T item) => _deque.Engine.TrySteal(out item);

    /// <summary>
    /// Moves about half of the items (half rounded up, at most 32) from the oldest end into
    /// <paramref name="destination"/>, which the calling thread must own. The moved items keep their order, so
    /// the newest of them is the first that <paramref name="destination"/>'s owner pops.
    /// </summary>
    /// <param name="destination">The calling thread's own deque; not this stealer's deque.</param>
    /// <param name="moved">How many items were moved (0 unless the result is <see cref="StealResult.Success"/>).</param>
    /// <returns><see cref="StealResult.Success"/> when <paramref name="moved"/> &gt; 0; otherwise <see cref="StealResult.Empty"/> or <see cref="StealResult.Retry"/>.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="destination"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is the deque this stealer steals from.</exception>
    public StealResult TryStealBatch(WorkStealingDeque<T> destination, out int moved)
    {
        CheckDestination(destination);
        return _deque.Engine.TryStealBatch(ref destination.Engine, popOne: false, out moved, out _);
    }

    /// <summary>
    /// Like <see cref="TryStealBatch"/>, but returns the oldest stolen item directly instead of pushing it: what
    /// a scheduler worker with an empty deque wants (one item to run now, the rest in its own deque).
    /// </summary>
    /// <param name="destination">The calling thread's own deque; not this stealer's deque.</param>
    /// <param name="item">The item to run, when the result is <see cref="StealResult.Success"/>.</param>
    /// <returns><see cref="StealResult.Success"/> when an item was taken; otherwise <see cref="StealResult.Empty"/> or <see cref="StealResult.Retry"/>.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="destination"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is the deque this stealer steals from.</exception>
    public StealResult TryStealBatchAndPop(WorkStealingDeque<T> destination, [MaybeNullWhen(false)] out T item)
    {
        CheckDestination(destination);
        return _deque.Engine.TryStealBatch(ref destination.Engine, popOne: true, out _, out item);
    }

    private void CheckDestination(WorkStealingDeque<T> destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        if (ReferenceEquals(destination, _deque))
        {
            ThrowHelper.ThrowArgument(nameof(destination), "A deque cannot steal from itself.");
        }
    }
}
