using LockFree.Internal;
using LockFree.Queues;
using Xunit;

namespace LockFree.Tests.Unit.Queues;

/// <summary>
/// SpscRing's batch paths (session 5; see its design comment): a batch is one run published by its first slot's sequence,
/// runs wrap the ring, a single dequeue inside a run takes it below the run's end, and the batch dequeue takes the streaming
/// pause at a close bound read after a streak, backing off when the pause did not help. Single-threaded, through an atomics
/// policy that records each pause (<see cref="SpinCountingAtomics"/>).
/// </summary>
public class SpscBatchTests
{
    private const int Streak = SpscRing<long, RealAtomics>.BoundReadStreak;

    private const int Pause = SpscRing<long, RealAtomics>.StreamPause;

    [Fact]
    public void BatchRun_AcrossTheWrap_ComesOutInOrderThroughEveryDequeueKind()
    {
        var ring = new SpscRing<long, RealAtomics>(4);
        for (long i = 0; i < 3; i++)
        {
            Assert.True(ring.TryEnqueue(i));
            Assert.True(ring.TryDequeue(out long item) && item == i);
        }

        // One run from position 3: one slot at the end of the array, three from its start.
        Assert.Equal(4, ring.TryEnqueueMany([10, 11, 12, 13]));
        Assert.Equal(0, ring.TryEnqueueMany([14]));
        Assert.True(ring.TryPeek(out long head) && head == 10);
        Assert.True(ring.TryDequeue(out long first) && first == 10);
        var rest = new long[8];
        Assert.Equal(3, ring.TryDequeueMany(rest));
        Assert.Equal(new long[] { 11, 12, 13 }, rest[..3]);
        Assert.False(ring.TryDequeue(out _));
        Assert.Equal(0, ring.TryDequeueMany(rest));
        Assert.True(ring.IsEmpty);

        // Runs of one and a batch, drained by one batch call that crosses the wrap again.
        Assert.True(ring.TryEnqueue(20));
        Assert.Equal(2, ring.TryEnqueueMany([21, 22]));
        Assert.True(ring.TryEnqueue(23));
        Assert.Equal(4, ring.TryDequeueMany(rest));
        Assert.Equal(new long[] { 20, 21, 22, 23 }, rest[..4]);
    }

    [Fact]
    public void BatchDequeue_ReferenceItems_ClearsTheSlotsItTook()
    {
        var ring = new SpscRing<object, RealAtomics>(4);
        var items = new object[] { new(), new(), new() };
        Assert.Equal(3, ring.TryEnqueueMany(items));
        var taken = new object[3];
        Assert.Equal(3, ring.TryDequeueMany(taken));
        Assert.Equal(items, taken);
        Assert.False(ring.TrySnapshotHead(out _));
        Assert.Equal(3, ring.TryEnqueueMany(items)); // reuses the slots: positions 3, 4, 5
        Assert.Equal(3, ring.TryDequeueMany(taken));
        Assert.Equal(items, taken);
    }

    [Fact]
    public void BatchDequeue_StreamingCloseBehind_PausesAfterAStreakAndStaysPausedOnlyWhileItHelps()
    {
        var ring = new SpscRing<long, SpinCountingAtomics>(256); // capacity >= 128: the streaming pause is on
        SpinCountingAtomics.Pauses = [];
        try
        {
            var batch = new long[Streak];
            long next = 0;
            void Produce(ref SpscRing<long, SpinCountingAtomics> r)
            {
                for (int i = 0; i < batch.Length; i++)
                {
                    batch[i] = next++;
                }

                Assert.Equal(batch.Length, r.TryEnqueueMany(batch));
            }

            long expected = 0;
            void Consume(ref SpscRing<long, SpinCountingAtomics> r, int count)
            {
                var into = new long[Streak];
                Assert.Equal(count, r.TryDequeueMany(into));
                for (int i = 0; i < count; i++)
                {
                    Assert.Equal(expected++, into[i]);
                }
            }

            // The first close bound read comes before a streak's worth of takes: no pause.
            Produce(ref ring);
            Consume(ref ring, Streak);
            Assert.Empty(SpinCountingAtomics.Pauses);

            // A streak taken, the producer 16 ahead (< 64): the pause, during which the producer adds a batch (useful).
            Produce(ref ring);
            var box = new StrongBox(ring);
            SpinCountingAtomics.OnSpin = () => Produce(ref box.Ring);
            Consume(ref box.Ring, Streak);
            ring = box.Ring;
            Assert.Equal(new[] { Pause }, SpinCountingAtomics.Pauses);
            Consume(ref ring, Streak); // what the producer added during the pause: below the bound read after it

            // Close again after another streak, and this time the producer stays idle: a useless pause, then none for the
            // next PauseBackoff << 1 close reads, then one more.
            SpinCountingAtomics.Pauses.Clear();
            Produce(ref ring);
            Consume(ref ring, Streak);
            Assert.Single(SpinCountingAtomics.Pauses);
            int skipped = 0;
            while (SpinCountingAtomics.Pauses.Count == 1)
            {
                Produce(ref ring);
                Consume(ref ring, Streak);
                skipped++;
                Assert.True(skipped < 10 * SpscRing<long, RealAtomics>.PauseBackoff, "the backoff never ended");
            }

            // Every call after a streak is a chance; a chance that reads the bound while a pause is due pauses at once.
            Assert.Equal(2 * SpscRing<long, RealAtomics>.PauseBackoff, skipped - 1);
            Assert.All(SpinCountingAtomics.Pauses, p => Assert.Equal(Pause, p));
            Assert.True(ring.IsEmpty);
        }
        finally
        {
            SpinCountingAtomics.Pauses = null;
            SpinCountingAtomics.OnSpin = null;
        }
    }

    [Fact]
    public void BatchDequeue_AfterAnEmptyAnswer_NeverPauses()
    {
        var ring = new SpscRing<long, SpinCountingAtomics>(256);
        SpinCountingAtomics.Pauses = [];
        try
        {
            var batch = new long[Streak];
            for (int round = 0; round < 100; round++)
            {
                Assert.Equal(batch.Length, ring.TryEnqueueMany(batch));
                Assert.Equal(batch.Length, ring.TryDequeueMany(new long[2 * Streak]));
                Assert.Equal(0, ring.TryDequeueMany(batch)); // empty: the streak starts over
            }

            Assert.Empty(SpinCountingAtomics.Pauses);
        }
        finally
        {
            SpinCountingAtomics.Pauses = null;
        }
    }

    /// <summary>Holds the ring so a lambda can reach it by reference.</summary>
    private sealed class StrongBox(SpscRing<long, SpinCountingAtomics> ring)
    {
        public SpscRing<long, SpinCountingAtomics> Ring = ring;
    }
}
