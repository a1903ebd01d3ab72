namespace LockFree.Benchmarks.Timers;

/// <summary>
/// The baseline delay queue a .NET developer writes first: a <see cref="PriorityQueue{TElement, TPriority}"/> keyed
/// by (due timestamp, arrival number) under one lock, due times on <see cref="TimeProvider.System"/>. Same semantics
/// as <see cref="DelayQueue{T}"/>'s TryEnqueue/TryDequeue (bounded, earliest due first, FIFO among equal due times).
/// </summary>
public sealed class LockedPriorityDelayQueue<T>(int capacity)
{
    private readonly object _lock = new();
    private readonly PriorityQueue<T, (long Due, long Sequence)> _queue = new(capacity);
    private readonly double _timestampsPerTick = TimeProvider.System.TimestampFrequency / (double)TimeSpan.TicksPerSecond;
    private long _sequence;

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _queue.Count;
            }
        }
    }

    public bool TryEnqueue(T item, TimeSpan delay)
    {
        long due = TimeProvider.System.GetTimestamp() + (long)(delay.Ticks * _timestampsPerTick);
        lock (_lock)
        {
            if (_queue.Count >= capacity)
            {
                return false;
            }

            _queue.Enqueue(item, (due, _sequence++));
            return true;
        }
    }

    public bool TryDequeue(out T item)
    {
        lock (_lock)
        {
            if (_queue.TryPeek(out item!, out (long Due, long Sequence) priority) && priority.Due <= TimeProvider.System.GetTimestamp())
            {
                _queue.Dequeue();
                return true;
            }

            item = default!;
            return false;
        }
    }
}
