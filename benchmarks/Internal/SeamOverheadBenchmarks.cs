using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using LockFree.Benchmarks.Infrastructure;
using LockFree.Internal;

namespace LockFree.Benchmarks.Internal;

/// <summary>
/// Proves the atomics seam costs nothing: <see cref="SpscQueue{T}"/> (the SPSC ring instantiated with
/// <see cref="RealAtomics"/>, behind the public wrapper) against <see cref="DirectSpscQueue"/>, the same
/// algorithm written here against <see cref="Volatile"/> directly, in the same layout (a mutable engine
/// struct stored inline in a sealed class), as baseline: the only difference left is the seam. Single-threaded,
/// so the figures are instruction cost, not coherence traffic. Expected ratio ≈ 1.00 in every category:
///   Pair:  enqueue one, dequeue one (the consumer is always at its bound: the slot-sequence path);
///   Burst: enqueue <see cref="Burst"/>, then dequeue them (the bound and sequence paths);
///   Batch: one TryEnqueueMany + one TryDequeueMany of <see cref="Burst"/> items.
/// Per-op = one item through the queue. Results are checked.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(LockFreeBenchmarkConfig))]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[CategoriesColumn]
public class SeamOverheadBenchmarks
{
    /// <summary>Items per invocation.</summary>
    public const int Items = 1 << 16;

    /// <summary>Items per burst / batch.</summary>
    public const int Burst = 64;

    private const int Capacity = 1024;

    private DirectSpscQueue _direct = null!;
    private SpscQueue<long> _queue = null!;
    private long[] _batch = null!;

    [GlobalSetup]
    public void Setup()
    {
        _direct = new DirectSpscQueue(Capacity);
        _queue = new SpscQueue<long>(Capacity);
        _batch = new long[Burst];

        // Every case's loop at Tier 1 before anything is measured (see TierUp): once per process, the promotion is for good.
        if (!s_tieredUp)
        {
            TierUp.Run(() => DirectPair(), () => SeamPair(), () => DirectBurst(), () => SeamBurst(), () => DirectBatch(), () => SeamBatch());
            s_tieredUp = true;
        }
    }

    private static bool s_tieredUp;

    [Benchmark(Baseline = true, OperationsPerInvoke = Items), BenchmarkCategory("Pair")]
    public long DirectPair()
    {
        DirectSpscQueue ring = _direct;
        long sum = 0;
        for (long i = 1; i <= Items; i++)
        {
            ring.TryEnqueue(i);
            ring.TryDequeue(out long item);
            sum += item;
        }

        return Check(sum);
    }

    [Benchmark(OperationsPerInvoke = Items), BenchmarkCategory("Pair")]
    public long SeamPair()
    {
        SpscQueue<long> queue = _queue;
        long sum = 0;
        for (long i = 1; i <= Items; i++)
        {
            queue.TryEnqueue(i);
            queue.TryDequeue(out long item);
            sum += item;
        }

        return Check(sum);
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Items), BenchmarkCategory("Burst")]
    public long DirectBurst()
    {
        DirectSpscQueue ring = _direct;
        long sum = 0;
        for (long i = 1; i <= Items; i += Burst)
        {
            for (long j = 0; j < Burst; j++)
            {
                ring.TryEnqueue(i + j);
            }

            for (int j = 0; j < Burst; j++)
            {
                ring.TryDequeue(out long item);
                sum += item;
            }
        }

        return Check(sum);
    }

    [Benchmark(OperationsPerInvoke = Items), BenchmarkCategory("Burst")]
    public long SeamBurst()
    {
        SpscQueue<long> queue = _queue;
        long sum = 0;
        for (long i = 1; i <= Items; i += Burst)
        {
            for (long j = 0; j < Burst; j++)
            {
                queue.TryEnqueue(i + j);
            }

            for (int j = 0; j < Burst; j++)
            {
                queue.TryDequeue(out long item);
                sum += item;
            }
        }

        return Check(sum);
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Items), BenchmarkCategory("Batch")]
    public long DirectBatch()
    {
        DirectSpscQueue ring = _direct;
        long[] batch = _batch;
        long sum = 0;
        for (long i = 1; i <= Items; i += Burst)
        {
            for (int j = 0; j < Burst; j++)
            {
                batch[j] = i + j;
            }

            ring.TryEnqueueMany(batch);
            ring.TryDequeueMany(batch);
            for (int j = 0; j < Burst; j++)
            {
                sum += batch[j];
            }
        }

        return Check(sum);
    }

    [Benchmark(OperationsPerInvoke = Items), BenchmarkCategory("Batch")]
    public long SeamBatch()
    {
        SpscQueue<long> queue = _queue;
        long[] batch = _batch;
        long sum = 0;
        for (long i = 1; i <= Items; i += Burst)
        {
            for (int j = 0; j < Burst; j++)
            {
                batch[j] = i + j;
            }

            queue.TryEnqueueMany(batch);
            queue.TryDequeueMany(batch);
            for (int j = 0; j < Burst; j++)
            {
                sum += batch[j];
            }
        }

        return Check(sum);
    }

    private static long Check(long sum)
    {
        Transfer.Check(sum, Transfer.SumOneTo(Items), "sum of dequeued items");
        return sum;
    }
}

/// <summary>The public-wrapper shape of <see cref="SpscQueue{T}"/> around <see cref="DirectSpscRing"/>.</summary>
internal sealed class DirectSpscQueue(int capacity)
{
    // Not readonly: the engine is a mutable struct stored inline, as in SpscQueue<T>.
    private DirectSpscRing _ring = new(capacity);

    public bool TryEnqueue(long item) => _ring.TryEnqueue(item);

    public bool TryDequeue(out long item) => _ring.TryDequeue(out item);

    public int TryEnqueueMany(ReadOnlySpan<long> items) => _ring.TryEnqueueMany(items);

    public int TryDequeueMany(Span<long> destination) => _ring.TryDequeueMany(destination);
}

/// <summary>
/// Benchmark-only SPSC ring for <see cref="SeamOverheadBenchmarks"/>: the algorithm of the library's
/// SpscRing (Lamport ring, producer's cached head, items published in runs whose first slot's sequence holds the run's
/// end, which a consumer beyond its known-published bound gates on, a bound read from tail every 16 takes in a row (a
/// batch dequeue: when its bound falls short) with the streaming pause and its backoff, batches as one run copied in
/// contiguous segments by walking references (as the engine does; session 11 brought this twin up to date), 128-byte-separated index pairs, padded slot array, positions as unbounded longs; session 5),
/// written against <see cref="Volatile"/> directly with no seam. Specialised to long (no slot clearing).
/// </summary>
internal struct DirectSpscRing
{
    private static int SlotPadding => CacheLine.Size / Unsafe.SizeOf<Slot>();

    private readonly Slot[] _slots;
    private readonly long _mask;
    private readonly int _capacity;
    private readonly int _boundReadStreak;
    private readonly long _streamDistance;
    private PaddedIndexPair _producer; // Index = tail, Cached = last head seen
    private PaddedIndexPair _consumer; // Index = head, Cached = known-published bound, Spare = streak, Spare2 = pause backoff

    public DirectSpscRing(int capacity)
    {
        _capacity = capacity;
        _mask = capacity - 1;
        _slots = new Slot[capacity + (2 * SlotPadding)];
        _boundReadStreak = 16;
        _streamDistance = capacity >= 128 ? 64 : 0;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryEnqueue(long item)
    {
        long tail = _producer.Index;
        if (tail - _producer.Cached >= _capacity)
        {
            _producer.Cached = Volatile.Read(ref _consumer.Index);
            if (tail - _producer.Cached >= _capacity)
            {
                return false;
            }
        }

        ref Slot slot = ref At(tail);
        slot.Item = item;
        Volatile.Write(ref slot.Sequence, tail + 1);
        Volatile.Write(ref _producer.Index, tail + 1);
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryDequeue(out long item)
    {
        long head = _consumer.Index;
        ref Slot slot = ref At(head);
        if (head >= _consumer.Cached)
        {
            // As SpscRing.TryDequeue: the sequence check and the streak inline, the bound raise out of line.
            long end = Volatile.Read(ref slot.Sequence);
            if (end <= head)
            {
                _consumer.Spare = 0;
                item = 0;
                return false;
            }

            _consumer.Cached = end;
            if (++_consumer.Spare >= _boundReadStreak)
            {
                RaiseBound(head);
            }
        }

        item = slot.Item;
        Volatile.Write(ref _consumer.Index, head + 1);
        return true;
    }

    public int TryEnqueueMany(ReadOnlySpan<long> items)
    {
        if (items.IsEmpty)
        {
            return 0;
        }

        long tail = _producer.Index;
        long free = _capacity - (tail - _producer.Cached);
        if (free < items.Length)
        {
            _producer.Cached = Volatile.Read(ref _consumer.Index);
            free = _capacity - (tail - _producer.Cached);
            if (free == 0)
            {
                return 0;
            }
        }

        int count = (int)Math.Min(free, items.Length);
        ref long source = ref MemoryMarshal.GetReference(items);
        int start = (int)(tail & _mask);
        int first = Math.Min(count, _capacity - start); // up to the end of the array, then the rest from its start
        CopyIn(ref Unsafe.Add(ref FirstSlot, start), ref source, first);
        CopyIn(ref FirstSlot, ref Unsafe.Add(ref source, first), count - first);

        Volatile.Write(ref At(tail).Sequence, tail + count); // the run's end, in its first slot
        Volatile.Write(ref _producer.Index, tail + count);
        return count;
    }

    public int TryDequeueMany(Span<long> destination)
    {
        long head = _consumer.Index;
        long bound = _consumer.Cached;
        int wanted = destination.Length;
        if (bound - head < wanted)
        {
            bound = RaiseBatchBound(head);
        }

        ref long target = ref MemoryMarshal.GetReference(destination);
        int count = (int)Math.Clamp(bound - head, 0, wanted);
        CopyOut(head, ref target, count);
        while (count < wanted)
        {
            long position = head + count;
            long end = Volatile.Read(ref At(position).Sequence);
            if (end <= position)
            {
                break;
            }

            _consumer.Cached = end;
            int stop = (int)Math.Min(end - head, wanted);
            CopyOut(position, ref Unsafe.Add(ref target, count), stop - count);
            count = stop;
        }

        if (count == 0)
        {
            _consumer.Spare = 0;
            return 0;
        }

        _consumer.Spare += count;
        Volatile.Write(ref _consumer.Index, head + count);
        return count;
    }

    private readonly ref Slot FirstSlot
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_slots), SlotPadding);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void CopyIn(ref Slot slot, ref long source, int count)
    {
        ref Slot end = ref Unsafe.Add(ref slot, count);
        while (Unsafe.IsAddressLessThan(ref slot, ref end))
        {
            slot.Item = source;
            slot = ref Unsafe.Add(ref slot, 1);
            source = ref Unsafe.Add(ref source, 1);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private readonly void CopyOut(long position, ref long target, int count)
    {
        int start = (int)(position & _mask);
        int first = Math.Min(count, _capacity - start);
        CopyOut(ref Unsafe.Add(ref FirstSlot, start), ref target, first);
        CopyOut(ref FirstSlot, ref Unsafe.Add(ref target, first), count - first);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void CopyOut(ref Slot slot, ref long target, int count)
    {
        ref Slot end = ref Unsafe.Add(ref slot, count);
        while (Unsafe.IsAddressLessThan(ref slot, ref end))
        {
            target = slot.Item;
            slot = ref Unsafe.Add(ref slot, 1);
            target = ref Unsafe.Add(ref target, 1);
        }
    }

    private void RaiseBound(long head)
    {
        _consumer.Spare = 0;
        long tail = Volatile.Read(ref _producer.Index);
        if (tail - head < _streamDistance)
        {
            tail = PauseIfUseful(tail);
        }

        _consumer.Cached = Math.Max(_consumer.Cached, tail);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private long RaiseBatchBound(long head)
    {
        long tail = Volatile.Read(ref _producer.Index);
        if (tail > head && tail - head < _streamDistance && _consumer.Spare >= _boundReadStreak)
        {
            _consumer.Spare = 0;
            tail = PauseIfUseful(tail);
        }

        long bound = Math.Max(_consumer.Cached, tail);
        _consumer.Cached = bound;
        return bound;
    }

    private long PauseIfUseful(long tail)
    {
        long backoff = _consumer.Spare2;
        if ((backoff & uint.MaxValue) != 0)
        {
            _consumer.Spare2 = backoff - 1;
            return tail;
        }

        Thread.SpinWait(100);
        long after = Volatile.Read(ref _producer.Index);
        long level = Math.Min((backoff >> 32) + 1, 15);
        _consumer.Spare2 = after - tail >= _boundReadStreak ? 0 : (level << 32) | (32L << (int)level);
        return after;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private readonly ref Slot At(long position) =>
        ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_slots), (nint)(position & _mask) + SlotPadding);

    private struct Slot
    {
        public long Item;
        public long Sequence;
    }
}
