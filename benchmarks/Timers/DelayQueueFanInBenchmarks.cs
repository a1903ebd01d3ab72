using System.Runtime.CompilerServices;
using BenchmarkDotNet.Attributes;
using LockFree.Benchmarks.Infrastructure;
using LockFree.Benchmarks.Queues;

namespace LockFree.Benchmarks.Timers;

/// <summary>
/// 2 producers, 1 consumer (3 spinning threads: OVERSUBSCRIBED on a 2-core machine), items due at once, capacity
/// 65536: where the delay queue's lock-free producers (CAS + MPSC inbox) meet the baseline's one lock
/// (<see cref="LockedPriorityDelayQueue{T}"/>, baseline). Per-op = one item moved; the consumer's sum is checked.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(LockFreeBenchmarkConfig))]
public class DelayQueueFanInBenchmarks : QueueContentionBenchmarks
{
    private DelayOps _delay;
    private LockedPriorityOps _locked;
    private Action<int> _workDelay = null!, _workLocked = null!;

    /// <inheritdoc/>
    protected override int Producers => 2;

    /// <inheritdoc/>
    protected override int Consumers => 1;

    [GlobalSetup]
    public void GlobalSetup()
    {
        Setup();
        _delay = new(new DelayQueue<long>(Capacity, new DelayQueueOptions<long> { FullMode = OverflowPolicy.Reject }));
        _locked = new(new LockedPriorityDelayQueue<long>(Capacity));
        _workDelay = Work(_delay);
        _workLocked = Work(_locked);
    }

    [GlobalCleanup]
    public void GlobalCleanup() => Cleanup();

    [Benchmark(Baseline = true, OperationsPerInvoke = Items)]
    public long PriorityQueueWithLock() => Run(_locked, _workLocked);

    [Benchmark(OperationsPerInvoke = Items)]
    public long DelayQueue() => Run(_delay, _workDelay);

    private readonly struct DelayOps(DelayQueue<long> queue) : IQueueOps
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public bool TryEnqueue(long item) => queue.TryEnqueue(item, TimeSpan.Zero).IsAccepted;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public bool TryDequeue(out long item) => queue.TryDequeue(out item);
    }

    private readonly struct LockedPriorityOps(LockedPriorityDelayQueue<long> queue) : IQueueOps
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public bool TryEnqueue(long item) => queue.TryEnqueue(item, TimeSpan.Zero);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public bool TryDequeue(out long item) => queue.TryDequeue(out item);
    }
}
