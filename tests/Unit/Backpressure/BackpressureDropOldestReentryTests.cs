using System.Reflection;
using System.Runtime.CompilerServices;
using LockFree.Backpressure;
using LockFree.Internal;
using LockFree.Queues;
using Xunit;

namespace LockFree.Tests.Unit.Backpressure;

/// <summary>
/// User code (the <see cref="BackpressureBufferOptions{T}.ItemDropped"/> callback, <see cref="BackpressureBuffer{T}.PressureChanged"/>
/// and <see cref="BackpressureBuffer{T}.CallbackFailed"/> handlers) never runs inside a single writer's in-write mark (see
/// InWriteMark): a callback that writes to the same buffer (legal: the same thread, still one writer) sets and clears
/// the mark, and if that happened while an outer write was still to publish, a completion from another thread could find
/// the writer idle and finish the buffer before the outer item landed (accepted, never read by <c>ReadAllAsync</c>).
/// The suspected hole (session 10 brief): a <see cref="OverflowPolicy.DropOldest"/> write whose placement after its eviction
/// fails reports the evicted item and tries again, with the mark still set. Since session 16 the eviction and the
/// placement are one engine step (SequencedRing.EnqueueOrEvict) that cannot fail with one writer, and the evicted item is
/// reported after it. These tests pin that down around a reader that holds the slot the write needs: the write waits for
/// the release (a window of a few instructions in a real reader) and places without evicting. The paused reader is made
/// deterministic by running the engine's own claim and release halves of a dequeue apart.
/// </summary>
public sealed class BackpressureDropOldestReentryTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task TryWrite_DropOldestWhileAReaderHoldsTheSlotTheWriteNeeds_WaitsForItInsteadOfEvicting()
    {
        // A reader has claimed position 0 of a full buffer and not released its slot: the write's first enqueue (at
        // position 2, slot 0) waits for the release instead of answering full, so it neither evicts nor reports.
        var dropped = new List<int>();
        using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int>
        {
            Capacity = 2,
            SingleWriter = true,
            FullMode = OverflowPolicy.DropOldest,
            ItemDropped = (item, _) => dropped.Add(item),
        });
        Assert.Equal(WriteResult.Accepted, buffer.TryWrite(1));
        Assert.Equal(WriteResult.Accepted, buffer.TryWrite(2));
        PausedReader reader = PausedReader.Claim(buffer);

        Task<WriteResult> write = Task.Factory.StartNew(() => buffer.TryWrite(3), TaskCreationOptions.LongRunning);
        Thread.Sleep(50); // an engine that answered "full" here would evict 2 at once
        Assert.False(write.IsCompleted, "the write did not wait for the reader's slot");
        Assert.Equal(0, buffer.GetStatistics().Evicted);

        Assert.Equal(1, reader.Release());
        Assert.Equal(WriteResult.Accepted, await write.WaitAsync(Bound)); // the reader's read made the room
        Assert.Empty(dropped);
    }

    [Fact]
    public async Task WriteFull_DropOldestStepMeetsAReaderHoldingTheOldestSlot_WaitsInsideTheMarkAndPlacesWithoutEvicting()
    {
        // The order that reaches the place-or-evict step while a reader holds the slot: the write's first enqueue answered
        // full (no reader had claimed position 0), then a reader claimed position 0. The state is set up as WriteOnce
        // leaves it (the mark set, the enqueue failed) and the overflow step is called directly. The step claims position
        // 2 (slot 0) and must not evict position 1 (the head): it waits for the reader's release and places without
        // evicting, still inside its mark, so a completion from another thread leaves the finish to it. (The two-step
        // eviction before session 16 evicted item 2 here, and a placement that then failed would have reported it inside
        // the mark.)
        var marks = new List<long>();
        BackpressureBuffer<int>? buffer = null;
        using (buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int>
        {
            Capacity = 2,
            SingleWriter = true,
            FullMode = OverflowPolicy.DropOldest,
            ItemDropped = (item, _) =>
            {
                lock (marks)
                {
                    marks.Add(item);
                    marks.Add(Mark(buffer!));
                }
            },
        }))
        {
            Assert.Equal(WriteResult.Accepted, buffer.TryWrite(1));
            Assert.Equal(WriteResult.Accepted, buffer.TryWrite(2));
            PausedReader reader = PausedReader.Claim(buffer); // takes position 0 (item 1) and keeps its slot

            Task<WriteResult> write = Task.Factory.StartNew(
                () =>
                {
                    Buffer<int>.WriteMark(buffer).Enter(); // as WriteOnce: the mark before the completed-check and the failed enqueue
                    return Buffer<int>.WriteFull(buffer, 3, OverflowPolicy.DropOldest, countRejection: true, retryHint: true);
                },
                TaskCreationOptions.LongRunning);
            Assert.True(SpinWait.SpinUntil(() => buffer.GetStatistics().Enqueued == 3, Bound), "the write never claimed its position");

            Thread.Sleep(50);
            Assert.False(write.IsCompleted, "the step did not wait for the reader's slot");
            Assert.Equal(0, buffer.GetStatistics().Evicted);
            Assert.Equal(1, Mark(buffer));
            Assert.True(buffer.TryComplete());
            Assert.False(buffer.Completion.IsCompleted, "the buffer finished while the write was still to place its item");

            Assert.Equal(1, reader.Release());
            Assert.Equal(WriteResult.Accepted, await write.WaitAsync(Bound)); // the reader's read made the room
            lock (marks)
            {
                Assert.Empty(marks); // nothing evicted, nothing reported
            }

            Assert.True(buffer.TryRead(out int item));
            Assert.Equal(2, item);
            Assert.True(buffer.TryRead(out item));
            Assert.Equal(3, item);
            await buffer.Completion.WaitAsync(Bound); // the reads drained the completed buffer
            BackpressureStatistics stats = buffer.GetStatistics();
            Assert.Equal((3L, 3L, 0L), (stats.Enqueued, stats.Dequeued, stats.Evicted));
        }
    }

    [Fact]
    public async Task TryWrite_DropOldestCallbackWritesAndAnotherThreadCompletes_EveryAcceptedItemIsReadBeforeTheFinish()
    {
        // The brief's scenario, at the moment the callback does run (after the placement): it writes to the same buffer
        // (its own DropOldest write, which evicts the outer write's item), then a completion from another thread. Every
        // item accepted is read by ReadAllAsync before the buffer finishes, and the accounting balances.
        BackpressureBuffer<int>? buffer = null;
        var dropped = new List<int>();
        WriteResult nested = default;
        using (buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int>
        {
            Capacity = 2,
            SingleWriter = true,
            FullMode = OverflowPolicy.DropOldest,
            ItemDropped = (item, _) =>
            {
                dropped.Add(item);
                if (dropped.Count == 1)
                {
                    Assert.Equal(0, Mark(buffer!));
                    nested = buffer!.TryWrite(9); // full (2, 3): evicts 2
                    Assert.True(Task.Factory.StartNew(() => buffer.TryComplete(), TaskCreationOptions.LongRunning).Wait(Bound), "the completer hung");
                }
            },
        }))
        {
            Assert.Equal(WriteResult.Accepted, buffer.TryWrite(1));
            Assert.Equal(WriteResult.Accepted, buffer.TryWrite(2));
            Assert.Equal(WriteOutcome.EvictedOldest, buffer.TryWrite(3).Outcome); // evicts 1; the callback writes 9 (evicting 2), then completes

            Assert.Equal(0, buffer.CallbackFailures); // an assertion inside the callback would land here
            Assert.Equal(WriteOutcome.EvictedOldest, nested.Outcome);
            Assert.Equal([1, 2], dropped);
            var seen = new List<int>();
            await foreach (int item in buffer.ReadAllAsync().WithCancellation(new CancellationTokenSource(Bound).Token))
            {
                seen.Add(item);
            }

            Assert.Equal([3, 9], seen);
            await buffer.Completion.WaitAsync(Bound);
            BackpressureStatistics stats = buffer.GetStatistics();
            Assert.Equal(stats.Enqueued, stats.Dequeued + stats.Evicted + stats.Remaining);
        }
    }

    [Fact]
    public void UserCode_EveryCallbackOfASingleWriter_RunsWithTheMarkClear()
    {
        // ItemDropped (dropped incoming, evicted), PressureChanged (on a write, and on a read) and CallbackFailed: each
        // records the mark. A stamp that throws in a DropOldest write's place-or-evict step changes nothing (session 16;
        // before, the eviction came first and was reported after the throw).
        var marks = new List<(string Who, long Mark)>();
        var clock = new LockFree.Tests.Unit.Support.FailingReadingClock(new LockFree.Tests.Unit.Support.ManualTimeProvider());
        BackpressureBuffer<int>? buffer = null;
        using (buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int>
        {
            Capacity = 4,
            SingleWriter = true,
            FullMode = OverflowPolicy.DropOldest,
            HighWatermark = 4,
            LowWatermark = 3,
            TrackItemAge = true,
            TimeProvider = clock,
            ItemDropped = (item, reason) =>
            {
                marks.Add(($"dropped {item} {reason}", Mark(buffer!)));
                if (item == 5)
                {
                    throw new InvalidOperationException("callback failed");
                }
            },
        }))
        {
            buffer.PressureChanged += (_, paused) => marks.Add(($"pressure {paused}", Mark(buffer)));
            buffer.CallbackFailed += (_, _) => marks.Add(("callback failed", Mark(buffer)));
            for (int i = 1; i <= 4; i++)
            {
                Assert.Equal(WriteResult.Accepted, buffer.TryWrite(i)); // the fourth pauses
            }

            Assert.Equal(WriteOutcome.DroppedIncoming, buffer.TryWrite(5, OverflowPolicy.DropIncoming).Outcome); // its callback throws
            Assert.Equal(WriteOutcome.EvictedOldest, buffer.TryWrite(6).Outcome); // evicts 1
            clock.FailReading(2); // the stamp of the place-or-evict step (the first: the failed enqueue's)
            Assert.Throws<InvalidOperationException>(() => buffer.TryWrite(7)); // nothing evicted: still 4
            Assert.Equal(4, buffer.Count);
            Assert.True(buffer.TryRead(out _)); // 3 left, which resumes
        }

        Assert.Equal(
            ["pressure True", "dropped 5 Incoming", "callback failed", "dropped 1 Oldest", "pressure False"],
            marks.Select(m => m.Who));
        Assert.All(marks, m => Assert.Equal(0, m.Mark));
    }

    /// <summary>The single writer's in-write mark: 1 while a write is in flight (see InWriteMark).</summary>
    private static long Mark(BackpressureBuffer<int> buffer) => Volatile.Read(ref Buffer<int>.WriteMark(buffer).MarkWord);

    /// <summary>
    /// A reader of a single-writer DropOldest buffer (the SPMC engine) stopped inside its dequeue: it has claimed the head
    /// position (the engine's own claim) but not yet taken the item and released the slot (the engine's own halves, run by
    /// <see cref="Release"/>).
    /// </summary>
    private sealed class PausedReader
    {
        private readonly SpmcQueue<int> _queue;
        private readonly long _position;

        private PausedReader(SpmcQueue<int> queue, long position)
        {
            _queue = queue;
            _position = position;
        }

        public static PausedReader Claim(BackpressureBuffer<int> buffer)
        {
            var queue = (SpmcQueue<int>)typeof(BackpressureBuffer<int>).GetField("_queue", BindingFlags.NonPublic | BindingFlags.Instance)!.GetValue(buffer)!;
            ref SequencedRing<int, RealAtomics, SingleRole, MultiRole> ring = ref Queue<int>.Ring(queue);
            long position = ((IQueuePositions)queue).DequeuedPositions;
            Assert.True(Engine<int, RealAtomics, SingleRole, MultiRole>.ClaimHead(ref ring, position, 1), "the claim failed");
            return new PausedReader(queue, position);
        }

        /// <summary>Finishes the dequeue: takes the item and releases the slot; returns the item.</summary>
        public int Release()
        {
            ref SequencedRing<int, RealAtomics, SingleRole, MultiRole> ring = ref Queue<int>.Ring(_queue);
            ref SequencedSlot<int> slot = ref Engine<int, RealAtomics, SingleRole, MultiRole>.Slot(ref ring, _position);
            int item = slot.Item;
            Engine<int, RealAtomics, SingleRole, MultiRole>.ReleaseSlot(ref ring, ref slot, _position, _position + 1);
            return item;
        }
    }

    /// <summary>The buffer's private mark and overflow step (an accessor of a generic type's member is declared generic over its parameters).</summary>
    private static class Buffer<T>
    {
        [UnsafeAccessor(UnsafeAccessorKind.Field, Name = "_writeMark")]
        public static extern ref InWriteMark<RealAtomics> WriteMark(BackpressureBuffer<T> buffer);

        [UnsafeAccessor(UnsafeAccessorKind.Method, Name = "WriteFull")]
        public static extern WriteResult WriteFull(BackpressureBuffer<T> buffer, T item, OverflowPolicy policy, bool countRejection, bool retryHint);
    }

    /// <summary>The queue's private engine field (an accessor of a generic type's member is declared generic over its parameters).</summary>
    private static class Queue<T>
    {
        [UnsafeAccessor(UnsafeAccessorKind.Field, Name = "_ring")]
        public static extern ref SequencedRing<T, RealAtomics, SingleRole, MultiRole> Ring(SpmcQueue<T> queue);
    }

    /// <summary>The engine's private halves of a dequeue (declared generic over its parameters, with its constraints).</summary>
    private static class Engine<T, TAtomics, TProducers, TConsumers>
        where TAtomics : struct, IAtomics
        where TProducers : struct, IRolePolicy
        where TConsumers : struct, IRolePolicy
    {
        [UnsafeAccessor(UnsafeAccessorKind.Method, Name = "ClaimHead")]
        public static extern bool ClaimHead(ref SequencedRing<T, TAtomics, TProducers, TConsumers> ring, long position, long count);

        [UnsafeAccessor(UnsafeAccessorKind.Method, Name = "Slot")]
        public static extern ref SequencedSlot<T> Slot(ref SequencedRing<T, TAtomics, TProducers, TConsumers> ring, long position);

        [UnsafeAccessor(UnsafeAccessorKind.Method, Name = "ReleaseSlot")]
        public static extern void ReleaseSlot(ref SequencedRing<T, TAtomics, TProducers, TConsumers> ring, ref SequencedSlot<T> slot, long position, long newHead);
    }
}
