using System.Diagnostics;

namespace LockFree.Timers;

/// <summary>One pending item of a delay queue: when it is due, its arrival order, and the item.</summary>
internal struct DelayEntry<T>
{
    public long Due;
    public long Sequence;
    public T Item;
}

// Design: a fixed-capacity priority queue ordered by (Due, Sequence): the earliest due first (compared wrap-safe, by the
// sign of the difference), and among equal due times the earliest arrival first (FIFO). Not thread-safe: its owner
// guards it (the delay queue's consumer lock).
//
// Two 4-ary min-heaps (4-ary rather than binary: half the depth, and the four children of a node are adjacent in
// memory). The far heap holds up to the whole capacity; the near heap, NearCapacity entries (1.5 KB for a long item), is
// there for the usual shape of a delay queue's contents: a large backlog due later (scheduled work, retries an hour
// out) and a trickle of items due soon. A push goes to the near heap when it is due before the far heap's root and the
// near heap has room, otherwise to the far heap; a pop takes the earlier of the two roots. So an item due before the
// backlog is pushed and popped in a heap of at most NearCapacity entries that stays in the L1 cache, instead of sifting
// through log4(backlog) levels of cache misses each way (session 19: with 1M items pending an hour out, one enqueue and
// dequeue of an item due at once cost 1.88x what they cost with 1K pending in one quick run; docs/timers.md).
//
// Correct whatever the placement: each heap is ordered, and a pop compares both roots under the same total order, so
// the pops come out in (Due, Sequence) order. The placement rule only decides the speed. An item that finds the near
// heap full, or is due at or after the far root, pays the far heap's depth as before. Heaps of at most
// NearTierThreshold entries have no near heap: one small heap is already cache-resident.
internal sealed class DelayHeap<T>
{
    /// <summary>Entries of the near heap: three full 4-ary levels (1 + 4 + 16) and 43 of a fourth.</summary>
    internal const int NearCapacity = 64;

    /// <summary>Capacities up to this have no near heap.</summary>
    internal const int NearTierThreshold = 256;

    private const int Arity = 4;
    private readonly DelayEntry<T>[] _far;
    private readonly DelayEntry<T>[] _near;
    private int _farCount;
    private int _nearCount;

    public DelayHeap(int capacity)
        : this(capacity, capacity > NearTierThreshold ? NearCapacity : 0)
    {
    }

    /// <summary>A heap with a near heap of <paramref name="nearCapacity"/> entries (0: none); tests choose it.</summary>
    internal DelayHeap(int capacity, int nearCapacity)
    {
        Debug.Assert(nearCapacity >= 0, "a count");
        _far = new DelayEntry<T>[capacity];
        _near = nearCapacity == 0 ? [] : new DelayEntry<T>[nearCapacity];
    }

    public int Count => _farCount + _nearCount;

    public int Capacity => _far.Length;

    /// <summary>Entries in the near heap (tests check the placement rule).</summary>
    internal int NearCount => _nearCount;

    /// <summary>The due time of the root; the heap must not be empty.</summary>
    public long PeekDue => Peek().Due;

    /// <summary>The earliest entry; the heap must not be empty.</summary>
    public ref readonly DelayEntry<T> Peek() => ref NearFirst() ? ref _near[0] : ref _far[0];

    public void Push(long due, long sequence, T item)
    {
        Debug.Assert(Count < _far.Length, "the owner bounds the heap");
        if (_nearCount < _near.Length && _farCount > 0 && Less(due, sequence, _far[0].Due, _far[0].Sequence))
        {
            Push(_near, _nearCount++, due, sequence, item);
        }
        else
        {
            Push(_far, _farCount++, due, sequence, item);
        }
    }

    /// <summary>Removes and returns the root's item; the heap must not be empty.</summary>
    public T Pop() => NearFirst() ? Pop(_near, --_nearCount) : Pop(_far, --_farCount);

    /// <summary>Copies the pending entries in heap order (not sorted) into a new array.</summary>
    public DelayEntry<T>[] ToArray()
    {
        var all = new DelayEntry<T>[Count];
        _near.AsSpan(0, _nearCount).CopyTo(all);
        _far.AsSpan(0, _farCount).CopyTo(all.AsSpan(_nearCount));
        return all;
    }

    /// <summary>The root is the near heap's; the heap must not be empty.</summary>
    private bool NearFirst()
    {
        Debug.Assert(Count > 0, "the owner checks Count first");
        return _nearCount > 0 && (_farCount == 0 || Less(_near[0].Due, _near[0].Sequence, _far[0].Due, _far[0].Sequence));
    }

    /// <summary>Adds an entry at <paramref name="index"/> (the old count) of <paramref name="entries"/> and sifts it up.</summary>
    private static void Push(DelayEntry<T>[] entries, int index, long due, long sequence, T item)
    {
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

    /// <summary>Removes the root of <paramref name="entries"/>, whose new count is <paramref name="last"/>.</summary>
    private static T Pop(DelayEntry<T>[] entries, int last)
    {
        T item = entries[0].Item;
        if (last > 0)
        {
            DelayEntry<T> moving = entries[last];
            SiftDown(entries, moving, last);
        }

        entries[last] = default; // let the GC reclaim what the vacated slot referenced
        return item;
    }

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
    internal static bool Less(long due, long sequence, long otherDue, long otherSequence) =>
        due == otherDue ? sequence < otherSequence
        : due == Timestamps.DueNow || (otherDue != Timestamps.DueNow && Timestamps.IsBefore(due, otherDue));
}
