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
///   Pair:  enqueue one, dequeue one (the consumer's cached tail is always stale: the refresh path);
///   Burst: enqueue <see cref="Burst"/>, then dequeue them (the cached-index fast paths);
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
    }

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
/// SpscRing (Lamport ring with cached indices, 128-byte-separated index pairs, padded slot array, positions as
/// unbounded longs, NoInlining refresh on the consumer's empty path, one index publish per batch), written
/// against <see cref="Volatile"/> directly with no seam. Specialised to long (no slot clearing needed).
/// </summary>
internal struct DirectSpscRing
{
    private const int SlotPadding = CacheLine.Size / sizeof(long);

    private readonly long[] _buffer;
    private readonly long _mask;
    private readonly int _capacity;
    private PaddedIndexPair _producer; // Index = tail, Cached = last head seen
    private PaddedIndexPair _consumer; // Index = head, Cached = last tail seen

    public DirectSpscRing(int capacity)
    {
        _capacity = capacity; // a power of two, by construction in the benchmark
        _mask = capacity - 1;
        _buffer = new long[capacity + (2 * SlotPadding)];
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

        Slot(tail) = item;
        Volatile.Write(ref _producer.Index, tail + 1);
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryDequeue(out long item)
    {
        long head = _consumer.Index;
        if (head >= _consumer.Cached && !RefreshTail(head))
        {
            item = 0;
            return false;
        }

        item = Slot(head);
        Volatile.Write(ref _consumer.Index, head + 1);
        return true;
    }

    public int TryEnqueueMany(ReadOnlySpan<long> items)
    {
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
        int start = (int)(tail & _mask);
        int first = Math.Min(count, _capacity - start);
        items[..first].CopyTo(_buffer.AsSpan(SlotPadding + start, first));
        items[first..count].CopyTo(_buffer.AsSpan(SlotPadding, count - first));
        Volatile.Write(ref _producer.Index, tail + count);
        return count;
    }

    public int TryDequeueMany(Span<long> destination)
    {
        long head = _consumer.Index;
        long available = _consumer.Cached - head;
        if (available < destination.Length)
        {
            _consumer.Cached = Volatile.Read(ref _producer.Index);
            available = _consumer.Cached - head;
            if (available == 0)
            {
                return 0;
            }
        }

        int count = (int)Math.Min(available, destination.Length);
        int start = (int)(head & _mask);
        int first = Math.Min(count, _capacity - start);
        _buffer.AsSpan(SlotPadding + start, first).CopyTo(destination);
        _buffer.AsSpan(SlotPadding, count - first).CopyTo(destination[first..]);
        Volatile.Write(ref _consumer.Index, head + count);
        return count;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool RefreshTail(long head)
    {
        _consumer.Cached = Volatile.Read(ref _producer.Index);
        return head < _consumer.Cached;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private readonly ref long Slot(long position) =>
        ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_buffer), (nint)(position & _mask) + SlotPadding);
}
