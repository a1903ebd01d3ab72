using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace LockFree.Benchmarks.WorkStealing;

/// <summary>
/// One owner-side shape over the deque and its peers (push at the owner's end, take from the owner's end), so
/// every benchmark case runs the same loop; a struct per collection, so the JIT specialises and inlines it.
/// </summary>
public interface IOwnerOps
{
    void Push(object item);

    bool TryPop([MaybeNullWhen(false)] out object item);
}

/// <summary>The thief's side: take one item from the other end (or whatever the peer's take does).</summary>
public interface IThiefOps
{
    bool TryTake([MaybeNullWhen(false)] out object item);
}

public readonly struct DequeOwnerOps(WorkStealingDeque<object> deque) : IOwnerOps, IThiefOps
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Push(object item) => deque.Push(item);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryPop([MaybeNullWhen(false)] out object item) => deque.TryPop(out item);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryTake([MaybeNullWhen(false)] out object item) => deque.Stealer.TrySteal(out item) == StealResult.Success;
}

public readonly struct StackOps(ConcurrentStack<object> stack) : IOwnerOps, IThiefOps
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Push(object item) => stack.Push(item);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryPop([MaybeNullWhen(false)] out object item) => stack.TryPop(out item);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryTake([MaybeNullWhen(false)] out object item) => stack.TryPop(out item);
}

public readonly struct BagOps(ConcurrentBag<object> bag) : IOwnerOps, IThiefOps
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Push(object item) => bag.Add(item);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryPop([MaybeNullWhen(false)] out object item) => bag.TryTake(out item);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryTake([MaybeNullWhen(false)] out object item) => bag.TryTake(out item);
}
