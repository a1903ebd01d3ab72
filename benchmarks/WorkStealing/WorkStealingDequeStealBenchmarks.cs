using System.Collections.Concurrent;
using BenchmarkDotNet.Attributes;
using LockFree.Benchmarks.Infrastructure;

namespace LockFree.Benchmarks.WorkStealing;

/// <summary>
/// Steal throughput: a long-lived owner thread pushes <see cref="Items"/> items while the benchmark thread, as
/// the only thief, takes them all from the other end; per-op = one item moved. The deque is measured with single
/// steals and with TryStealBatchAndPop (up to 32 items per claim run, moved into the thief's own deque and popped
/// there); the peers are ConcurrentBag (owner Add, thief TryTake, which steals from the owner's thread-local list)
/// and ConcurrentStack (Push / TryPop, baseline). The thief checks the sum; failed takes (empty) are counted as
/// failed dequeues. Two threads: on a 2-core machine shared with other work, the figures are oversubscribed.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(LockFreeBenchmarkConfig))]
public class WorkStealingDequeStealBenchmarks : FailedTryBenchmark
{
    /// <summary>Items per invocation.</summary>
    public const int Items = 1 << 16;

    private RoundWorkers _owner = null!;
    private object[] _boxes = null!;
    private WorkStealingDeque<object> _deque = null!;
    private WorkStealingDeque<object> _thiefDeque = null!;
    private ConcurrentStack<object> _stack = null!;
    private ConcurrentBag<object> _bag = null!;
    private Action<int> _pushDeque = null!, _pushStack = null!, _pushBag = null!;

    [GlobalSetup]
    public void Setup()
    {
        _owner = new RoundWorkers(1, "owner");
        _boxes = new object[Items];
        for (int i = 0; i < Items; i++)
        {
            _boxes[i] = (long)(i + 1);
        }

        _deque = new WorkStealingDeque<object>(Items); // room for a whole round: no growth inside the measurement
        _thiefDeque = new WorkStealingDeque<object>(64);
        _stack = new ConcurrentStack<object>();
        _bag = new ConcurrentBag<object>();
        _pushDeque = PushAll(new DequeOwnerOps(_deque));
        _pushStack = PushAll(new StackOps(_stack));
        _pushBag = PushAll(new BagOps(_bag));
    }

    private Action<int> PushAll<TOps>(TOps owner)
        where TOps : struct, IOwnerOps =>
        _ =>
        {
            foreach (object box in _boxes)
            {
                owner.Push(box);
            }
        };

    [GlobalCleanup]
    public void Cleanup()
    {
        _owner.Dispose();
        ReportFailedTries();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Items)]
    public long ConcurrentStack_TryPop() => TakeAll(new StackOps(_stack), _pushStack);

    [Benchmark(OperationsPerInvoke = Items)]
    public long ConcurrentBag_TryTake() => TakeAll(new BagOps(_bag), _pushBag);

    [Benchmark(OperationsPerInvoke = Items)]
    public long WorkStealingDeque_TrySteal() => TakeAll(new DequeOwnerOps(_deque), _pushDeque);

    [Benchmark(OperationsPerInvoke = Items)]
    public long WorkStealingDeque_StealBatchAndPop()
    {
        _owner.StartRound(_pushDeque);
        Stealer<object> stealer = _deque.Stealer;
        long sum = 0, failed = 0;
        for (int taken = 0; taken < Items;)
        {
            if (stealer.TryStealBatchAndPop(_thiefDeque, out object? item) == StealResult.Success)
            {
                sum += (long)item;
                taken++;
                while (_thiefDeque.TryPop(out item))
                {
                    sum += (long)item;
                    taken++;
                }
            }
            else
            {
                failed++;
                Backoff(failed);
            }
        }

        return Finish(sum, failed);
    }

    private long TakeAll<TOps>(TOps thief, Action<int> push, [System.Runtime.CompilerServices.CallerMemberName] string method = "")
        where TOps : struct, IThiefOps
    {
        _owner.StartRound(push);
        long sum = 0, failed = 0;
        for (int taken = 0; taken < Items;)
        {
            if (thief.TryTake(out object? item))
            {
                sum += (long)item;
                taken++;
            }
            else
            {
                failed++;
                Backoff(failed);
            }
        }

        return Finish(sum, failed, method);
    }

    private static void Backoff(long failed)
    {
        if ((failed & 63) == 0)
        {
            Thread.Yield(); // the owner may need this core to push more
        }
        else
        {
            Thread.SpinWait(8);
        }
    }

    private long Finish(long sum, long failed, [System.Runtime.CompilerServices.CallerMemberName] string method = "")
    {
        _owner.WaitRound();
        Transfer.Check(sum, Transfer.SumOneTo(Items), "thief sum");
        Count(Items, 0, failed, method);
        return sum;
    }
}
