using System.Runtime.CompilerServices;
using LockFree.Backpressure;
using LockFree.Internal;
using LockFree.Queues;

#if LOCKFREE_COMPOSED_TESTS
using Seam = LockFree.Tests.Concurrency.Scheduling.TestAtomics;

namespace LockFree.Tests.Concurrency.Composed;
#else
using Seam = LockFree.Internal.RealAtomics;

namespace LockFree;
#endif

/// <content>The work after a queue operation (wake-ups, disarming, completion, watermarks) and parking.</content>
public sealed partial class BackpressureBuffer<T>
{
    /// <summary>
    /// Consecutive operations of a single-thread side that asked the other side's gate and found no waiter before that
    /// side disarms (clears its Parked bit: no call, no fence again until the next park). The next park then pays a
    /// process-wide barrier (about 1.5 us measured on the 2-vCPU VM; more with many cores), so a disarm waits long
    /// enough for the fences it saves (about 6 ns each) to outweigh it.
    /// </summary>
    internal const int QuietChecksBeforeDisarm = 4096;

    /// <summary>
    /// Byte distances from the in-write mark's word (stored by the writer on every write) to the fields a reader reads on
    /// every read (its after-work word, the SPSC field, the queue, the engine kind): the layout unit test checks the
    /// writer's stores never invalidate a line the reader keeps hot.
    /// </summary>
    internal long[] WriteMarkDistances()
    {
        ref byte mark = ref Unsafe.As<long, byte>(ref _writeMark.MarkWord);
        return
        [
            Math.Abs(Unsafe.ByteOffset(ref mark, ref Unsafe.As<StickyBits<Seam>, byte>(ref _afterRead))),
            Math.Abs(Unsafe.ByteOffset(ref mark, ref Unsafe.As<SpscQueue<T>?, byte>(ref Unsafe.AsRef(in _spsc)))),
            Math.Abs(Unsafe.ByteOffset(ref mark, ref Unsafe.As<IBoundedQueue<T>, byte>(ref Unsafe.AsRef(in _queue)))),
            Math.Abs(Unsafe.ByteOffset(ref mark, ref Unsafe.As<EngineKind, byte>(ref Unsafe.AsRef(in _engine)))),
        ];
    }

    /// <summary>Whether reads ask the writers' gate after each item (a writer parked and the readers' side has not disarmed since): diagnostics, tests.</summary>
    internal bool ReadsAskWriters => (_afterRead.Read() & (long)AfterWork.Parked) != 0;

    /// <summary>Whether writes ask the readers' gate after each item (as <see cref="ReadsAskWriters"/>, for the other side).</summary>
    internal bool WritesAskReaders => (_afterWrite.Read() & (long)AfterWork.Parked) != 0;

    /// <summary>
    /// Diagnostics for a test's failure message (a snapshot, walking the waiter lists under their locks): completion,
    /// finish, the after-work words and both waiter lists.
    /// </summary>
    internal string DescribeWaitState() =>
        $"completed {IsCompleted}, finished {IsFinished}, completion task {Completion.Status}, count {Count}, " +
        $"after-write bits {_afterWrite.Read()}, after-read bits {_afterRead.Read()}; readers: {_readers.Describe()}; writers: {_writers.Describe()}";

    private void AfterWriteIfAny()
    {
        if (_afterWrite.Read() != 0) // acquire: after the publish
        {
            AfterWrite();
        }
    }

    /// <summary>After an item was published: wake parked readers, check the watermarks (the bits say which applies).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void AfterWrite()
    {
        long work = _afterWrite.Read(); // acquire: re-read (Parked may have been cleared only by this very side: one writer)
        if ((work & (long)AfterWork.Parked) != 0)
        {
            if (_writesClaimByCas ? _readers.HasWaitersAfterLockedPublish : _readers.HasWaiters)
            {
                _readers.ResetQuietChecks();
                _readers.FinishAll(WaitStatus.Signaled);
            }
            else if (_writesClaimByCas)
            {
                // Many writers: quiet once QuietChecksBeforeDisarm items were claimed since the last reader parked.
                if (EnqueuedPosition() - Seam.LoadAcquire(ref _readersParkedAt) >= QuietChecksBeforeDisarm // acquire: a hint; a stale value only moves the disarm
                    && !_readers.TryDisarmShared(ref _afterWrite, (long)AfterWork.Parked))
                {
                    _readers.FinishAll(WaitStatus.Signaled); // a reader raced the disarm: other writers may have skipped the gate (ParkingGate, "Disarming a side played by many threads")
                }
            }
            else if (_readers.CountQuietCheck() >= QuietChecksBeforeDisarm)
            {
                _readers.ResetQuietChecks(); // the one writer: plain
                _readers.TryDisarm(ref _afterWrite, (long)AfterWork.Parked); // back to the fence-free fast path (see "Disarming")
            }
        }

        if ((work & (long)AfterWork.Completed) != 0)
        {
            WriterDone(); // one writer, after the mark's clear: a completer that saw this write in flight left the finish to it (InWriteMark)
        }

        if ((work & (long)AfterWork.Watermarks) != 0)
        {
            CheckPressure();
        }
    }

    /// <summary><see cref="TryRead(out T)"/>'s after-work: <see cref="AfterRead"/> after a take; after a miss, the watermarks' check of an empty buffer.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void AfterReadOrMiss(bool taken)
    {
        if (taken)
        {
            AfterRead(1);
        }
        else if (_highWatermark != 0)
        {
            CheckPressureAfterMiss(); // an empty buffer's state agrees with it from here on (see CheckPressure)
        }
    }

    /// <summary>After <paramref name="count"/> items were taken: wake parked writers, finish a completed buffer, check the watermarks.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void AfterRead(int count)
    {
        long work = _afterRead.Read(); // acquire: re-read (Parked may have been cleared only by this very side: one reader)
        if ((work & (long)AfterWork.Parked) != 0)
        {
            int signaled = 0;
            while (signaled < count && (_readsClaimByCas ? _writers.HasWaitersAfterLockedPublish : _writers.HasWaiters))
            {
                _writers.SignalOne();
                signaled++;
            }

            if (signaled != 0)
            {
                _writers.ResetQuietChecks();
            }
            else if (_readsClaimByCas)
            {
                // Many readers (or evictions): quiet once QuietChecksBeforeDisarm items were claimed since the last writer parked.
                if (DequeuedPosition() - Seam.LoadAcquire(ref _writersParkedAt) >= QuietChecksBeforeDisarm // acquire: a hint; a stale value only moves the disarm
                    && !_writers.TryDisarmShared(ref _afterRead, (long)AfterWork.Parked))
                {
                    _writers.FinishAll(WaitStatus.Signaled); // a writer raced the disarm: other readers may have skipped the gate (ParkingGate, "Disarming a side played by many threads")
                }
            }
            else if (_writers.CountQuietCheck() >= QuietChecksBeforeDisarm)
            {
                _writers.ResetQuietChecks(); // the one reader: plain
                _writers.TryDisarm(ref _afterRead, (long)AfterWork.Parked); // back to the fence-free fast path (see "Disarming")
            }
        }

        if ((work & (long)AfterWork.Completed) != 0)
        {
            TryFinishIfDrained();
        }

        if ((work & (long)AfterWork.Watermarks) != 0)
        {
            CheckPressure();
        }
    }

    /// <summary>
    /// Links a waiting writer. Before its first park the readers' fast path is told to ask the writers' gate: the
    /// bit is set (a full fence) before the gate's registration, so before the gate's process-wide barrier of the
    /// first park ever, and the gate's argument covers it (see ParkingGate): a reader that read the bit as clear ran
    /// that load before the barrier reached it, so its dequeue (which frees the room) is visible to our recheck.
    /// </summary>
    /// <param name="synchronous">Whether the caller blocks its thread.</param>
    /// <param name="probe">A <c>WaitToWriteAsync</c>, which takes nothing when woken (see <see cref="Waiter.IsProbe"/>).</param>
    private Waiter<Seam> ParkWriter(bool synchronous, bool probe = false)
    {
        if (_readsClaimByCas)
        {
            Seam.StoreRelease(ref _writersParkedAt, DequeuedPosition()); // release: the many readers' quiet spell starts here (a hint)
        }

        return _writers.RentAndLink(synchronous, ref _afterRead, (long)AfterWork.Parked, probe, handoff: !synchronous); // an asynchronous wait is a hand-off wait (Waiter); counted, then the bit made sure of (ParkingGate, "Arming")
    }

    /// <summary>Links a waiting reader; as <see cref="ParkWriter"/>, for the writers' fast path.</summary>
    private Waiter<Seam> ParkReader(bool synchronous)
    {
        if (_writesClaimByCas)
        {
            Seam.StoreRelease(ref _readersParkedAt, EnqueuedPosition()); // release: the many writers' quiet spell starts here (a hint)
        }

        return _readers.RentAndLink(synchronous, ref _afterWrite, (long)AfterWork.Parked, handoff: !synchronous); // an asynchronous wait is a hand-off wait (Waiter); counted, then the bit made sure of (ParkingGate, "Arming")
    }

    /// <summary>The tail position (items ever claimed by writers) without interface dispatch on the many-writer engines.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private long EnqueuedPosition() => _engine switch
    {
        EngineKind.Mpsc => ((IQueuePositions)Unsafe.As<MpscQueue<T>>(_queue)).EnqueuedPositions,
        EngineKind.Mpmc => ((IQueuePositions)Unsafe.As<MpmcQueue<T>>(_queue)).EnqueuedPositions,
        _ => _positions.EnqueuedPositions,
    };

    /// <summary>The head position (items ever claimed by readers or evictions) without interface dispatch on the many-reader engines.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private long DequeuedPosition() => _engine switch
    {
        EngineKind.Spmc => ((IQueuePositions)Unsafe.As<SpmcQueue<T>>(_queue)).DequeuedPositions,
        EngineKind.Mpmc => ((IQueuePositions)Unsafe.As<MpmcQueue<T>>(_queue)).DequeuedPositions,
        _ => _positions.DequeuedPositions,
    };

    /// <summary>
    /// Finishes a completed, drained buffer: completes <see cref="Completion"/>, then raises the finish flag the readers
    /// poll, then wakes the parked readers, so a reader that learns of the finish (a WaitToReadAsync answering false, a
    /// channel's ReadAsync closed) finds Completion already completed, as the BCL's channels order it. Before (review of
    /// 2026-11-23) the flag and the wake-ups came first: a woken or newly arriving reader could look at Completion in
    /// between and find it still running (LockFreeChannelCompletionOrderTests). Completing the task before the flag's
    /// CAS is safe: every thread that gets here saw the same completed, drained state, and only the first TrySet counts.
    /// </summary>
    private void TryFinishIfDrained()
    {
        CompletionState? state = Seam.LoadAcquireReference(ref _completed);
        if (state is null
            || Seam.LoadAcquire(ref _finished) != 0 // finished already (a read after the finish asks again: no second TrySet)
            || (_singleWriter && !_writeMark.IsDone()) // one writer: a write in flight at the completion may still publish (InWriteMark); its end sets Done and finishes
            || !_queue.IsEmpty)
        {
            return;
        }

        if (state.Error is null)
        {
            _completion.TrySetResult();
        }
        else if (state.Error is OperationCanceledException canceled)
        {
            _completion.TrySetCanceled(canceled.CancellationToken); // as the BCL channels: a cancellation stays one
        }
        else
        {
            _completion.TrySetException(state.Error);
        }

        if (Seam.CompareExchange(ref _finished, 1, 0) != 0) // full fence: after the task's completion
        {
            return;
        }

        _readers.CompletionError = state.Error;
        _readers.FinishAll(WaitStatus.Completed);
    }

    /// <summary>
    /// Moves the pause state across a watermark when the depth says so, and keeps at it until the state agrees with a
    /// depth read after the state: so once writes and reads stop, <see cref="IsPaused"/> agrees with the depth (paused
    /// only above the low watermark, resumed only below the high one).
    /// </summary>
    /// <remarks>
    /// Before (session 17, found by the composed build's schedules), one depth read came before the state's read and
    /// CAS: a writer that read the depth at the high watermark and was preempted could pause the buffer after readers
    /// had emptied it (they saw it resumed and below the mark: nothing to do), and it stayed paused with nothing in it
    /// until the next write; a producer that obeys the signal then waited for a resume that never came. Now each pass
    /// reads the state, then the depth, and a crossing's CAS is followed by another pass. That is exact under any
    /// interleaving of whole steps (the composed build checks it).
    /// Weak memory leaves one narrower case: a single writer or reader moves its index with a plain store, so its check
    /// may read the state before a racing crossing's CAS while that CAS's thread still reads the old index (a Dekker
    /// pair, each side storing and then loading the other's word, with no fence on the plain side). Both then see their
    /// own view agree, and the state can be wrong until the next operation. Closing it on every operation costs a full
    /// fence per single-side write and read while watermarks are set (measured: 3.3 to 13 ns a call on the SPSC
    /// engine), and closing it on the crossing side a process-wide barrier per crossing (a first build: 709 ns a call
    /// when the depth swings across the marks twice in four calls, against 12). Neither is paid: every operation
    /// re-checks (a later state read sees the CAS), and a read that finds the buffer empty or a write that finds it full,
    /// the calls a stalled pipeline makes, fences first (<see cref="CheckPressureAfterMiss"/>), so from then on the
    /// state agrees with the depth.
    /// </remarks>
    private void CheckPressure()
    {
        if (Seam.IsPlanted(PlantedFault.PressureCheckWithStaleDepth))
        {
            CheckPressureOnce(); // the planted twin (tests only; a constant false in production)
            return;
        }

        long paused = Seam.LoadAcquire(ref _paused); // acquire: the state before the depth it is checked against
        int depth = _queue.Count;
        if (paused == 0 ? depth >= _highWatermark : depth <= _lowWatermark)
        {
            CrossPressure(paused);
        }
    }

    /// <summary>The crossing: the state's CAS, then passes of state-then-depth until they agree; then the events.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void CrossPressure(long paused)
    {
        bool crossed = false;
        while (true)
        {
            crossed |= Seam.CompareExchange(ref _paused, paused ^ 1, paused) == paused; // full fence: our state store before the next pass's depth loads
            paused = Seam.LoadAcquire(ref _paused); // acquire: as in CheckPressure
            int depth = _queue.Count;
            if (paused == 0 ? depth < _highWatermark : depth > _lowWatermark)
            {
                break;
            }
        }

        if (crossed)
        {
            DeliverPressure();
        }
    }

    /// <summary>
    /// A read that found the buffer empty, or a write that found it full, with watermarks set: a full fence (this side's
    /// earlier index stores before the state load), then the check. A crossing that raced this side's last operation (see
    /// <see cref="CheckPressure"/>'s remarks) is either seen here and undone, or its thread's depth read saw our stores.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void CheckPressureAfterMiss()
    {
        Seam.FullFence();
        CheckPressure();
    }

    /// <summary>The check before session 17, kept as <see cref="PlantedFault.PressureCheckWithStaleDepth"/>'s twin.</summary>
    private void CheckPressureOnce()
    {
        int depth = _queue.Count;
        bool crossed = Seam.LoadAcquire(ref _paused) == 0
            ? depth >= _highWatermark && Seam.CompareExchange(ref _paused, 1, 0) == 0
            : depth <= _lowWatermark && Seam.CompareExchange(ref _paused, 0, 1) == 1;
        if (crossed)
        {
            DeliverPressure();
        }
    }

    /// <summary>
    /// Reports the pressure state to <see cref="PressureChanged"/>, one thread at a time: the thread that takes the
    /// delivery flag reports the current state until the reported one equals it; a thread that finds the flag taken leaves
    /// its crossing to the holder. Before, each crossing was reported on its own thread right after its CAS, so a writer
    /// preempted between its pause and the call could report it after a reader's later resume: listeners ended believing
    /// the buffer paused while it was not. The flag is no lock: nobody waits for it, and a handler that crosses a watermark
    /// itself has its crossing reported when it returns. The flag's release is a CAS (a full fence) before the
    /// recheck of the state: a thread whose attempt failed changed the state (a CAS) before it, so either the recheck
    /// sees that change or that thread's attempt sees the flag released. Rare path (only on a crossing).
    /// </summary>
    private void DeliverPressure()
    {
        while (Seam.CompareExchange(ref _pressureDelivering, 1, 0) == 0) // acquire: the previous holder's _pressureDelivered
        {
            try
            {
                long state;
                while ((state = Seam.LoadAcquire(ref _paused)) != _pressureDelivered)
                {
                    _pressureDelivered = state;
                    try
                    {
                        PressureChanged?.Invoke(this, state != 0);
                    }
                    catch (Exception error)
                    {
                        ReportCallbackFailure(error); // never thrown into the write or read that crossed: it already happened
                    }
                }
            }
            finally
            {
                Seam.CompareExchange(ref _pressureDelivering, 0, 1); // release, and a full fence before the recheck below
            }

            if (Seam.LoadAcquire(ref _paused) == _pressureDelivered) // a crossing left to us while we held the flag is delivered by the loop
            {
                return;
            }
        }
    }
}
