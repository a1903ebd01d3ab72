namespace LockFree.Internal;

/// <summary>
/// Faults a controlled-scheduler test can plant in the real code through <see cref="IAtomics.IsPlanted"/>, to show
/// that its checker finds them (tests/Concurrency/Backpressure/WaiterListTests.cs). Production never sees them:
/// <see cref="RealAtomics.IsPlanted"/> is the constant false, so the faulty branches are not in its specialisation.
/// </summary>
[Flags]
internal enum PlantedFault
{
    /// <summary>The code as written.</summary>
    None = 0,

    /// <summary>WaiterList.FinishAll pops at most the gate's count of waiters (the code before session 8), not every ticket linked when it starts.</summary>
    FinishAllBoundedByCount = 1,

    /// <summary>WaiterList.SignalOne stops at the first waiter it pops even when that wait had already ended (cancelled, timed out): the signal is swallowed.</summary>
    SignalOneStopsAtEnded = 2,

    /// <summary>WaiterList.SignalOne counts a probe it woke as the one wake-up: the signal is spent on a wait that takes nothing.</summary>
    SignalOneSpentOnProbe = 4,

    /// <summary>WaiterList.Abandon does not pass on a signal that reached a waiter whose recheck succeeded.</summary>
    AbandonDropsPassOn = 8,

    /// <summary>Waiter.Detach returns the waiter to its pool when its wheel timer fired, while the callback may still hold it (no reference count).</summary>
    DetachIgnoresTimerRef = 16,

    /// <summary>WaiterList.SignalOne wakes the newest linked waiter instead of the oldest (not FIFO).</summary>
    SignalOneNewestFirst = 32,

    /// <summary>Waiter's wake-up of a hand-off wait reads the owner's decision and then writes Completed (two steps, not one CAS): an owner that decides in between is never answered.</summary>
    HandoffReadThenWrite = 64,

    /// <summary>WaiterList.Abandon recycles a synchronous waiter that a signal (or completion) ended at once, without waiting for the ender's event set: a late set wakes the waiter's next wait early.</summary>
    AbandonSyncRecyclesBeforeSet = 128,

    /// <summary>A retry's backoff wait goes back to its pool when its wheel timer could not be cancelled, while the losing callback may still hold it (no reference count).</summary>
    BackoffReleaseIgnoresTimerRef = 256,

    /// <summary>Waiter.Arm reads the wait's status before it raises its registered flag (the Dekker order with the wake-up broken): a wait whose wake-up ran in between, never awaited, stays registered on its token.</summary>
    ArmReadsStatusBeforeFlag = 512,

    /// <summary>The early unregisters of an asynchronous wait (Arm's, once it sees the wait ended, and the wake-up's) forget the second token's registration: a wait never awaited stays registered on it.</summary>
    EarlyUnregisterForgetsSecond = 1024,

    /// <summary>Waiter.Detach drops the second token's registration without disposing it, so it does not wait for that token's running callback: a late callback ends the recycled waiter's next wait.</summary>
    DetachForgetsSecond = 2048,

    /// <summary>SequencedRing's evicting enqueue claims the oldest position without checking that its item is published: it can take the slot from under the oldest item's producer.</summary>
    EvictSkipsPublishedCheck = 4096,

    /// <summary>DelayQueueCore's DropOldest step pops the root under the lock and publishes the incoming item through the inbox after it (the code before session 16): a take in between finds neither.</summary>
    DelayEvictThenPublish = 8192,

    /// <summary>SequencedRing's evicting enqueue: a helper that evicted the head for its owner releases the slot as plainly free, not handed: the owner places without reporting the displaced item, which is lost.</summary>
    HelperHandsAFreeSlot = 16384,

    /// <summary>BackpressureBuffer's waiting write (blocking or asynchronous) parks without its recheck after linking: a read that took an item before the writer's park was visible (so it signalled nobody) leaves the writer asleep beside the room.</summary>
    WriterParksWithoutRecheck = 32768,

    /// <summary>BackpressureBuffer's watermark check as before session 17: one depth read before the state's read and CAS, no second pass: a stale depth can pause an empty buffer (or resume a full one) for good.</summary>
    PressureCheckWithStaleDepth = 65536,

    /// <summary>DelayQueue's parking dequeue takes before it links its waiter (and not after): an item published in between signals nobody, and the reader sleeps beside it.</summary>
    DelayReaderTakesBeforeLinking = 131072,

    /// <summary>RetryPolicy's backoff wait: a cancellation that ends the parked wait does not resume the operation, so the call never completes.</summary>
    RetryCancelForgetsToResume = 262144,

    /// <summary>BackpressureBuffer's timed write answers TimedOut without passing on the read's signal that woke it at or after its deadline: the next parked writer sleeps beside the room.</summary>
    TimedOutDropsPassOn = 524288,

    /// <summary>BackpressureBuffer's asynchronous wait for an item (WaitToReadAsync, ReadAsync, ReadAllAsync) parks without its recheck after linking: an item published before the park was visible (so it signalled nobody) leaves the reader asleep beside it.</summary>
    ReaderParksWithoutRecheck = 1048576,

    /// <summary>AckQueue's end of a delivery (ack, nack, dead letter) matches the slot without its version: a stale delivery's ack, after the message timed out and went out again, ends the newer delivery.</summary>
    AckIgnoresVersion = 2097152,

    /// <summary>ChaseLevDeque's owner takes the last item (without claiming bottom, session 22, or after the classic claim) with a read of top and a store of top + 1 (two steps, not the thieves' CAS): a thief that claims the item in between takes it too.</summary>
    DequeTakesLastWithoutCas = 4194304,
}
