using Xunit;

namespace LockFree.Tests.Concurrency.Linearizability;

/// <summary>
/// <see cref="BackpressureBuffer{T}"/>'s non-blocking operations on real threads, checked for linearizability against the
/// bounded-FIFO spec (acceptance audit of issue 4, 2026-11-23: the engines were checked, the buffer's own layer was not:
/// its inlined SPSC fast path, the in-write mark, the overflow dispatch). A write is <c>TryWrite</c> under the buffer's
/// policy: <c>Accepted</c> is an enqueue, <c>Rejected</c> (Reject, Wait) and <c>DroppedIncoming</c> (DropIncoming) a
/// failed one, and the spec demands that a failure happens only when the buffer is full; a read is <c>TryRead</c>
/// (exactly empty), a peek <c>TryPeek</c> on single-reader buffers. Under <c>DropOldest</c> (session 16: an atomic
/// place-or-evict, SequencedRing.EnqueueOrEvict) a write is the spec's place-or-evict step: <c>Accepted</c> places,
/// <c>EvictedOldest</c> must have evicted the head, whose value the <c>ItemDropped</c> callback hands over on the writer's
/// thread. Rounds meet at a barrier (the checker's quiescent points). A planted
/// buffer that sometimes answers "empty" while it holds items must be rejected.
/// </summary>
public sealed class BackpressureRealThreadLinearizabilityTests
{
    private static int Rounds => 300 * Math.Max(1, int.TryParse(Environment.GetEnvironmentVariable("LOCKFREE_STRESS_SCALE"), out int s) ? s : 1);

    [Theory]
    [InlineData(true, true, OverflowPolicy.Reject, 1)]
    [InlineData(true, true, OverflowPolicy.Wait, 2)]
    [InlineData(false, true, OverflowPolicy.DropIncoming, 2)]
    [InlineData(true, false, OverflowPolicy.Reject, 2)]
    [InlineData(false, false, OverflowPolicy.Reject, 1)]
    [InlineData(false, false, OverflowPolicy.DropIncoming, 4)]
    [InlineData(true, false, OverflowPolicy.DropOldest, 1)]
    [InlineData(true, true, OverflowPolicy.DropOldest, 2)]
    [InlineData(false, false, OverflowPolicy.DropOldest, 1)]
    [InlineData(false, false, OverflowPolicy.DropOldest, 2)]
    public void TryWriteTryReadTryPeek_RealThreads_Linearizable(bool singleWriter, bool singleReader, OverflowPolicy policy, int capacity)
    {
        using var buffer = Create(singleWriter, singleReader, policy, capacity);
        Run(buffer, singleWriter ? 1 : 2, singleReader ? 1 : 2, peek: singleReader && policy != OverflowPolicy.DropOldest, plantedSpuriousEmpty: false, seed: (capacity * 10) + (int)policy);
    }

    [Fact]
    public void PlantedSpuriousEmptyRead_RealThreads_IsFound()
    {
        using var buffer = Create(singleWriter: false, singleReader: false, OverflowPolicy.Reject, capacity: 4);
        var error = Assert.ThrowsAny<Xunit.Sdk.XunitException>(() => Run(buffer, writers: 2, readers: 2, peek: false, plantedSpuriousEmpty: true, seed: 7));
        Assert.Contains("Not linearizable", error.Message);
    }

    /// <summary>The item the last <c>DropOldest</c> write of this thread evicted (the callback runs on the writer's thread, inside its write).</summary>
    [ThreadStatic]
    private static int? t_evicted;

    private static BackpressureBuffer<int> Create(bool singleWriter, bool singleReader, OverflowPolicy policy, int capacity) => new(new BackpressureBufferOptions<int>
    {
        Capacity = capacity,
        FullMode = policy,
        SingleWriter = singleWriter,
        SingleReader = singleReader,
        ItemDropped = policy == OverflowPolicy.DropOldest ? static (item, _) => t_evicted = item : null,
    });

    private static void Run(BackpressureBuffer<int> buffer, int writers, int readers, bool peek, bool plantedSpuriousEmpty, int seed)
    {
        int threads = writers + readers;
        int reads = 0;
        var recorder = new HistoryRecorder<QueueInput, QueueOutput>(threads);
        RealThreadRounds.Run(threads, Rounds, seed, thread =>
        {
            int next = (thread + 1) * 1_000_000;
            return random =>
            {
                int ops = random.Next(1, 4);
                for (int i = 0; i < ops; i++)
                {
                    if (thread < writers)
                    {
                        int value = next;
                        QueueOutput written = buffer.FullMode == OverflowPolicy.DropOldest
                            ? recorder.Record(thread, QueueInput.EnqueueOrEvict(value), input => PlaceOrEvict(buffer, input.Value))
                            : recorder.Record(thread, QueueInput.Enqueue(value), input =>
                                buffer.TryWrite(input.Value).Outcome == WriteOutcome.Accepted ? QueueOutput.Succeeded : QueueOutput.Failed);
                        next += written.Ok ? 1 : 0;
                    }
                    else if (peek && random.Next(3) == 0)
                    {
                        recorder.Record(thread, QueueInput.Peek(), _ => buffer.TryPeek(out int v) ? QueueOutput.Peeked(v) : QueueOutput.Failed);
                    }
                    else
                    {
                        recorder.Record(thread, QueueInput.Dequeue(), _ =>
                            (!plantedSpuriousEmpty || Interlocked.Increment(ref reads) % 5 != 0) && buffer.TryRead(out int v) ? QueueOutput.Item(v) : QueueOutput.Failed);
                    }
                }
            };
        });

        static QueueOutput PlaceOrEvict(BackpressureBuffer<int> buffer, int value)
        {
            t_evicted = null;
            WriteResult written = buffer.TryWrite(value);
            return written.Outcome switch
            {
                WriteOutcome.Accepted when t_evicted is null => QueueOutput.Succeeded,
                WriteOutcome.EvictedOldest when t_evicted is { } evicted => QueueOutput.PlacedEvicting(evicted),
                _ => throw new InvalidOperationException($"DropOldest write answered {written.Outcome} with evicted item {t_evicted}"),
            };
        }

        LinearizabilityResult result = LinearizabilityChecker.CheckInSegments(new QueueSpec(buffer.Capacity, exactBatches: false), recorder.History());
        Assert.True(result.IsLinearizable, result.Explanation);
    }
}
