// THROWAWAY STUB of the deque branch's API (lock-based) so the scheduler compiles before "deque: API ready".
// Deleted before `git merge deque`.
using System.Diagnostics.CodeAnalysis;

namespace LockFree;

/// <summary>Stub.</summary>
public enum StealResult
{
    /// <summary>Stub.</summary>
    Empty = 0,

    /// <summary>Stub.</summary>
    Success = 1,

    /// <summary>Stub.</summary>
    Retry = 2,
}

/// <summary>Stub.</summary>
/// <typeparam name="T">Item.</typeparam>
public sealed class WorkStealingDeque<T>
{
    internal readonly LinkedList<T> Items = new();

    /// <summary>Stub.</summary>
    /// <param name="initialCapacity">Capacity.</param>
    public WorkStealingDeque(int initialCapacity = 32)
    {
        Capacity = initialCapacity;
        Stealer = new Stealer<T>(this);
    }

    /// <summary>Stub.</summary>
    public Stealer<T> Stealer { get; }

    /// <summary>Stub.</summary>
    public int Count
    {
        get
        {
            lock (Items)
            {
                return Items.Count;
            }
        }
    }

    /// <summary>Stub.</summary>
    public bool IsEmpty => Count == 0;

    /// <summary>Stub.</summary>
    public int Capacity { get; }

    /// <summary>Stub.</summary>
    /// <param name="item">Item.</param>
    public void Push(T item)
    {
        lock (Items)
        {
            Items.AddLast(item);
        }
    }

    /// <summary>Stub.</summary>
    /// <param name="item">Item.</param>
    /// <returns>Whether.</returns>
    public bool TryPop([MaybeNullWhen(false)] out T item)
    {
        lock (Items)
        {
            if (Items.Count == 0)
            {
                item = default;
                return false;
            }

            item = Items.Last!.Value;
            Items.RemoveLast();
            return true;
        }
    }
}

/// <summary>Stub.</summary>
/// <typeparam name="T">Item.</typeparam>
public sealed class Stealer<T>
{
    private readonly WorkStealingDeque<T> _deque;

    internal Stealer(WorkStealingDeque<T> deque) => _deque = deque;

    /// <summary>Stub.</summary>
    /// <param name="item">Item.</param>
    /// <returns>Result.</returns>
    public StealResult TrySteal([MaybeNullWhen(false)] out T item)
    {
        lock (_deque.Items)
        {
            if (_deque.Items.Count == 0)
            {
                item = default!;
                return StealResult.Empty;
            }

            item = _deque.Items.First!.Value;
            _deque.Items.RemoveFirst();
            return StealResult.Success;
        }
    }

    /// <summary>Stub.</summary>
    /// <param name="destination">Destination.</param>
    /// <param name="moved">Moved.</param>
    /// <returns>Result.</returns>
    public StealResult TryStealBatch(WorkStealingDeque<T> destination, out int moved)
    {
        moved = 0;
        while (true)
        {
            T item;
            lock (_deque.Items)
            {
                if (_deque.Items.Count == 0 || moved >= (_deque.Items.Count + moved + 1) / 2)
                {
                    break;
                }

                item = _deque.Items.First!.Value;
                _deque.Items.RemoveFirst();
            }

            destination.Push(item);
            moved++;
        }

        return moved > 0 ? StealResult.Success : StealResult.Empty;
    }

    /// <summary>Stub.</summary>
    /// <param name="destination">Destination.</param>
    /// <param name="item">Item.</param>
    /// <returns>Result.</returns>
    public StealResult TryStealBatchAndPop(WorkStealingDeque<T> destination, [MaybeNullWhen(false)] out T item)
    {
        StealResult r = TrySteal(out item);
        if (r == StealResult.Success)
        {
            TryStealBatch(destination, out _);
        }

        return r;
    }
}
