using System.Diagnostics;

namespace LockFree.Timers;

/// <summary>One pending item of a delay queue: when it is due, its arrival order, and the item.</summary>
internal struct DelayEntry<T>
{
    public long Due;
    public long Sequence;
    public T Item;
}

// Design: a fixed-capacity 4-ary min-heap ordered by (Due, Sequence): the earliest due first (compared wrap-safe,
// by the sign of the difference), and among equal due times the earliest arrival first (FIFO). 4-ary rather than binary: half the depth, and the four children
// of a node are adjacent in memory. Not thread-safe: its owner guards it (the delay queue's consumer lock).
internal sealed class DelayHeap<T>
{
    private const int Arity = 4;
    private readonly DelayEntry<T>[] _entries;
    private int _count;

    public DelayHeap(int capacity) => _entries = new DelayEntry<T>[capacity];

    public int Count => _count;

    public int Capacity => _entries.Length;

    /// <summary>The due time of the root; the heap must not be empty.</summary>
    public long PeekDue => _entries[0].Due;

    public ref readonly DelayEntry<T> Peek() => ref _entries[0];

    public void Push(long due, long sequence, T item)
    {
        Debug.Assert(_count < _entries.Length, "the owner bounds the heap");
        DelayEntry<T>[] entries = _entries;
        int index = _count++;
        while (index > 0)
        {
            int parent = (index - 1) / Arity;
            ref DelayEntry<T> p = ref entries[parent];
            if (!Less(due, sequence, p.Due, p.Sequence))
            {
                break;
            }

            entries[index] = p;
            index = parent;
        }

        ref DelayEntry<T> slot = ref entries[index];
        slot.Due = due;
        slot.Sequence = sequence;
        slot.Item = item;
    }

    /// <summary>Removes and returns the root's item; the heap must not be empty.</summary>
    public T Pop()
    {
        DelayEntry<T>[] entries = _entries;
        T item = entries[0].Item;
        int last = --_count;
        if (last > 0)
        {
            DelayEntry<T> moving = entries[last];
            SiftDown(entries, moving, last);
        }

        entries[last] = default; // let the GC reclaim what the vacated slot referenced
        return item;
    }

    /// <summary>Copies the pending entries in heap order (not sorted) into a new array.</summary>
    public DelayEntry<T>[] ToArray() => _entries.AsSpan(0, _count).ToArray();

    private static void SiftDown(DelayEntry<T>[] entries, DelayEntry<T> moving, int count)
    {
        int index = 0;
        while (true)
        {
            int first = (index * Arity) + 1;
            if (first >= count)
            {
                break;
            }

            int best = first;
            int end = Math.Min(first + Arity, count);
            for (int child = first + 1; child < end; child++)
            {
                if (Less(entries[child].Due, entries[child].Sequence, entries[best].Due, entries[best].Sequence))
                {
                    best = child;
                }
            }

            if (!Less(entries[best].Due, entries[best].Sequence, moving.Due, moving.Sequence))
            {
                break;
            }

            entries[index] = entries[best];
            index = best;
        }

        entries[index] = moving;
    }

    /// <summary>
    /// (due, sequence) before (otherDue, otherSequence): due times compared by the sign of their difference (wrap-safe:
    /// the clock may pass long.MaxValue; see <see cref="Timestamps"/>), <see cref="Timestamps.DueNow"/> before every other.
    /// Before (session 11) a plain <c>&lt;</c>: across a wrap, an item due after it sorted before every earlier one.
    /// </summary>
    private static bool Less(long due, long sequence, long otherDue, long otherSequence) =>
        due == otherDue ? sequence < otherSequence
        : due == Timestamps.DueNow || (otherDue != Timestamps.DueNow && Timestamps.IsBefore(due, otherDue));
}
