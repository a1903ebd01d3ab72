using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Backpressure;

/// <summary>
/// Review of session 16 (s16-review): with many writers the eviction's in-flight mark (+1 before the place-or-evict step,
/// -1 after it) is kept in a <c>StripedCounterSet</c> striped by the current processor, and GetStatistics sums the stripes
/// one after another. A writer whose thread moves to another processor between the mark and the unmark puts them on two
/// stripes, so a snapshot that reads the mark's stripe before the mark and the unmark's stripe after the unmark sees -1
/// alone: Dequeued = head - inFlight - evicted comes out one too high, and the floor (the highest bound any snapshot
/// gave) keeps it. The interleaving is made deterministic with the set's test seams: the snapshot runs the write between
/// its reads of stripe 0 and stripe 1, and the write's counts land on stripe 0 (the mark), then stripe 1. The write
/// changes nothing in the queue: the buffer is completed from inside it (a clock hook in its place-or-evict step), so it
/// answers Completed.
/// </summary>
public sealed class BackpressureStripedStatisticsTests
{
    [Fact]
    public void GetStatistics_MarkAndUnmarkOnTwoStripes_DequeuedNeverExceedsReads()
    {
        var clock = new HookedReadingClock(new ManualTimeProvider());
        var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int>
        {
            Capacity = 1,
            SingleWriter = false,
            FullMode = OverflowPolicy.DropOldest,
            TrackItemAge = true,
            TimeProvider = clock,
        });
        using (buffer)
        {
            Assert.Equal(WriteResult.Accepted, buffer.TryWrite(0));
            var counts = buffer.WriterCountsForTests!;
            if (counts.Stripes < 2)
            {
                return; // one stripe: nothing to interleave
            }

            int adds = 0;
            WriteResult? inner = null;
            bool armed = true;
            counts.AfterStripeRead = (counter, stripe) =>
            {
                if (!armed || stripe != 0)
                {
                    return;
                }

                armed = false; // the first counter the snapshot sums is the in-flight one (after the head)
                counts.StripeOverride = () => adds++ == 0 ? 0 : 1; // the mark on stripe 0, the rest on stripe 1
                // Reading 1: the write's first enqueue attempt (full). Reading 2: its place-or-evict step, after the
                // mark: the buffer completes there, so the step answers Closed and the write Completed.
                clock.OnNextReading(() => clock.OnNextReading(() => buffer.TryComplete()));
                inner = buffer.TryWrite(1);
                counts.StripeOverride = null;
            };

            BackpressureStatistics during = buffer.GetStatistics();
            counts.AfterStripeRead = null;
            Assert.Equal(WriteResult.Completed, inner);
            BackpressureStatistics after = buffer.GetStatistics();

            Assert.Equal(0, during.Dequeued); // nothing was ever read
            Assert.Equal(0, after.Dequeued);
            Assert.Equal(after.Enqueued, after.Dequeued + after.Evicted + after.Remaining);
        }
    }
}
