using LockFree.Tests.Concurrency.PlantedBugs;
using LockFree.Tests.Concurrency.Scheduling;
using LockFree.WorkStealing;

namespace LockFree.Tests.Concurrency.WorkStealing;

/// <summary>A work-stealing deque of boxed items as the scenarios drive it (the real engine or a planted-bug variant).</summary>
internal interface ITestDeque
{
    int Capacity { get; }

    void Push(object item);

    bool TryPop(out object? item);

    StealResult TrySteal(out object? item);

    /// <summary>Batch steal into <paramref name="destination"/> (a deque of the same kind, owned by the caller).</summary>
    StealResult TryStealBatch(ITestDeque destination, bool popOne, out int moved, out object? first);
}

/// <summary>Which deque a scenario runs.</summary>
public enum DequeKind
{
    /// <summary>The real engine, <see cref="ChaseLevDeque{T, TAtomics}"/> with <see cref="TestAtomics"/>.</summary>
    Real,

    /// <summary><c>PlantedDeque</c> without a bug (negative control for the planted variants).</summary>
    PlantedNone,

    /// <summary><c>DequeBug.MissingLastElementCas</c>.</summary>
    PlantedMissingLastElementCas,

    /// <summary><c>DequeBug.SlotReadAfterCas</c>.</summary>
    PlantedSlotReadAfterCas,

    /// <summary><c>DequeBug.SingleCasBatch</c>.</summary>
    PlantedSingleCasBatch,

    /// <summary><c>DequeBug.EarlyBufferLoadNoReread</c>.</summary>
    PlantedEarlyBufferLoadNoReread,

    /// <summary><c>DequeBug.EarlyBufferLoad</c> (negative control: the reread repairs it).</summary>
    PlantedEarlyBufferLoadWithReread,

    /// <summary><c>DequeBug.MissingPopFence</c> (found only with the store-buffer simulation).</summary>
    PlantedMissingPopFence,
}

internal static class TestDeques
{
    public static ITestDeque Create(DequeKind kind, int capacity, long start) => kind switch
    {
        DequeKind.Real => new RealDeque(capacity, start),
        DequeKind.PlantedNone => new PlantedDeque<TestAtomics>(capacity, DequeBug.None),
        DequeKind.PlantedMissingLastElementCas => new PlantedDeque<TestAtomics>(capacity, DequeBug.MissingLastElementCas),
        DequeKind.PlantedSlotReadAfterCas => new PlantedDeque<TestAtomics>(capacity, DequeBug.SlotReadAfterCas),
        DequeKind.PlantedSingleCasBatch => new PlantedDeque<TestAtomics>(capacity, DequeBug.SingleCasBatch),
        DequeKind.PlantedEarlyBufferLoadNoReread => new PlantedDeque<TestAtomics>(capacity, DequeBug.EarlyBufferLoadNoReread),
        DequeKind.PlantedEarlyBufferLoadWithReread => new PlantedDeque<TestAtomics>(capacity, DequeBug.EarlyBufferLoad),
        DequeKind.PlantedMissingPopFence => new PlantedDeque<TestAtomics>(capacity, DequeBug.MissingPopFence),
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    private sealed class RealDeque(int capacity, long start) : ITestDeque
    {
        private ChaseLevDeque<object, TestAtomics> _engine = new(capacity, start);

        public int Capacity => _engine.Capacity;

        public void Push(object item) => _engine.Push(item);

        public bool TryPop(out object? item) => _engine.TryPop(out item);

        public StealResult TrySteal(out object? item) => _engine.TrySteal(out item);

        public StealResult TryStealBatch(ITestDeque destination, bool popOne, out int moved, out object? first) =>
            _engine.TryStealBatch(ref ((RealDeque)destination)._engine, popOne, out moved, out first);
    }
}
