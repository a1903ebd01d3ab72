using System.Collections.Concurrent;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using LockFree.Benchmarks.Infrastructure;

namespace LockFree.Benchmarks.WorkStealing;

/// <summary>
/// The owner's fast path of <see cref="WorkStealingDeque{T}"/>: one thread pushing and popping its own deque,
/// no thieves (what a work-stealing worker does almost all the time), against ConcurrentStack Push/TryPop
/// (baseline) and ConcurrentBag Add/TryTake (the BCL's work-stealing bag, whose owner side is also a
/// thread-local deque). Per-op = one push plus one pop. "Pair": push then pop at once (depth 0-1, so every pop
/// takes the last item: the CAS path). "Burst": push 64 then pop 64 (pops above the last item take no CAS).
/// Items are preallocated objects (a scheduler moves Task references), each pop checked. Steady state must be
/// 0 B/op for the deque (ConcurrentStack allocates a node per push).
/// </summary>
[MemoryDiagnoser]
[Config(typeof(LockFreeBenchmarkConfig))]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
public class WorkStealingDequePushPopBenchmarks
{
    /// <summary>Push+pop pairs per invocation.</summary>
    public const int Pairs = 4096;

    private const int Burst = 64;

    private object[] _items = null!;
    private WorkStealingDeque<object> _deque = null!;
    private ConcurrentStack<object> _stack = null!;
    private ConcurrentBag<object> _bag = null!;

    [GlobalSetup]
    public void Setup()
    {
        _items = new object[Burst];
        for (int i = 0; i < _items.Length; i++)
        {
            _items[i] = new object();
        }

        _deque = new WorkStealingDeque<object>(Burst);
        _stack = new ConcurrentStack<object>();
        _bag = new ConcurrentBag<object>();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Pairs), BenchmarkCategory("Pair")]
    public int ConcurrentStack_Pair() => RunPairs(new StackOps(_stack));

    [Benchmark(OperationsPerInvoke = Pairs), BenchmarkCategory("Pair")]
    public int ConcurrentBag_Pair() => RunPairs(new BagOps(_bag));

    [Benchmark(OperationsPerInvoke = Pairs), BenchmarkCategory("Pair")]
    public int WorkStealingDeque_Pair() => RunPairs(new DequeOwnerOps(_deque));

    [Benchmark(Baseline = true, OperationsPerInvoke = Pairs), BenchmarkCategory("Burst")]
    public int ConcurrentStack_Burst() => RunBursts(new StackOps(_stack));

    [Benchmark(OperationsPerInvoke = Pairs), BenchmarkCategory("Burst")]
    public int ConcurrentBag_Burst() => RunBursts(new BagOps(_bag));

    [Benchmark(OperationsPerInvoke = Pairs), BenchmarkCategory("Burst")]
    public int WorkStealingDeque_Burst() => RunBursts(new DequeOwnerOps(_deque));

    private int RunPairs<TOps>(TOps ops)
        where TOps : struct, IOwnerOps
    {
        int n = 0;
        for (int i = 0; i < Pairs; i++)
        {
            object item = _items[i & (Burst - 1)];
            ops.Push(item);
            n += ops.TryPop(out object? got) && ReferenceEquals(got, item) ? 1 : Fail(i);
        }

        return n;
    }

    private int RunBursts<TOps>(TOps ops)
        where TOps : struct, IOwnerOps
    {
        int n = 0;
        for (int round = 0; round < Pairs / Burst; round++)
        {
            for (int i = 0; i < Burst; i++)
            {
                ops.Push(_items[i]);
            }

            for (int i = Burst - 1; i >= 0; i--)
            {
                n += ops.TryPop(out object? got) && ReferenceEquals(got, _items[i]) ? 1 : Fail(i);
            }
        }

        return n;
    }

    private static int Fail(int i) => throw new InvalidOperationException($"pop {i} returned the wrong item");
}
