using System.Diagnostics;
using System.Threading.Channels;
using LockFree.Backpressure;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.Stress;

/// <summary>
/// A single writer flat out, a <c>ReadAllAsync</c> consumer, and completion (or disposal) from a third thread in the
/// middle of the writes: the use the BCL channels allow whatever SingleWriter says (a cancellation path, a supervisor).
/// Every write that answered a success must be read by the consumer before its loop ends, nothing may be left in the
/// finished buffer, and the accounting must balance (accepted = read + evicted). Many short rounds on the single-writer
/// engines (SPSC, the inlined fast path; SPMC; SPMC under DropOldest; SPSC under the stamping adapter) and on the channel
/// adapter. Before the in-write mark a round could end with an accepted item the consumer never saw (the completer
/// finished the buffer while the writer was between its completed-check and its publish); the deterministic
/// reproduction is <c>BackpressureForeignCompletionTests</c> in the unit tests. Rounds scale with <see cref="StressScale"/>.
/// </summary>
[Collection(StressCollection.Name)]
public sealed class ForeignCompletionStressTests(ITestOutputHelper output)
{
    /// <summary>Rounds per case at scale 1 (a round is a fraction of a millisecond to a few).</summary>
    private const int RoundsAtScaleOne = 200;

    /// <summary>The completer goes once the writer has this many items accepted (or the reader read its share): short rounds.</summary>
    private const int AcceptedBeforeCompletion = 256;

    /// <summary>... or once this much time has passed (a reader starved by the spinning writer would make rounds long).</summary>
    private static readonly TimeSpan CompleteWithin = TimeSpan.FromMilliseconds(2);

    /// <summary>One round's bound: generous, so only a hang trips it.</summary>
    private static readonly TimeSpan RoundTimeout = TimeSpan.FromSeconds(20);

    public enum Target
    {
        /// <summary>SingleWriter + SingleReader: the SPSC engine and its inlined fast path.</summary>
        Spsc,

        /// <summary>SingleWriter, many readers: the SPMC engine through the general write path.</summary>
        Spmc,

        /// <summary>SingleWriter + DropOldest: the writer evicts (SPMC), so an eviction can empty the buffer inside a write.</summary>
        SpmcDropOldest,

        /// <summary>SPSC under the item-age adapter.</summary>
        SpscStamped,

        /// <summary>The channel adapter with SingleWriter and SingleReader; completed through its writer.</summary>
        Channel,
    }

    [Theory]
    [InlineData(Target.Spsc, false)]
    [InlineData(Target.Spsc, true)]
    [InlineData(Target.Spmc, false)]
    [InlineData(Target.SpmcDropOldest, false)]
    [InlineData(Target.SpscStamped, false)]
    [InlineData(Target.Channel, false)]
    public async Task ForeignCompletion_SingleWriterFlatOut_EveryAcceptedItemIsReadBeforeTheEnd(Target target, bool dispose)
    {
        int rounds = RoundsAtScaleOne * StressScale.Factor;
        var random = new Random(((int)target * 10) + (dispose ? 1 : 0));
        var stopwatch = Stopwatch.StartNew();
        long items = 0;
        for (int round = 0; round < rounds; round++)
        {
            items += await RunRound(round, target, dispose, capacity: 1 << random.Next(4), completeAfterReads: random.Next(32));
        }

        output.WriteLine($"scale {StressScale.Factor}: {rounds} rounds, {items} items read, {stopwatch.ElapsedMilliseconds} ms");
    }

    private static async Task<long> RunRound(int round, Target target, bool dispose, int capacity, int completeAfterReads)
    {
        long evicted = 0;
        var buffer = new BackpressureBuffer<long>(new BackpressureBufferOptions<long>
        {
            Capacity = capacity,
            FullMode = target == Target.SpmcDropOldest ? OverflowPolicy.DropOldest : OverflowPolicy.Reject,
            SingleWriter = true,
            SingleReader = target != Target.Spmc,
            TrackItemAge = target == Target.SpscStamped,
            ItemDropped = (_, _) => evicted++, // the one writer's thread
        });
        Channel<long>? channel = target == Target.Channel
            ? LockFreeChannel.CreateBounded<long>(new LockFreeChannelOptions { Capacity = capacity, SingleWriter = true, SingleReader = true })
            : null;

        long accepted = 0; // items 0..accepted-1 were accepted, in order
        long read = 0;
        int completing = 0; // set just before the channel is completed (its TryWrite's false does not say full or closed)
        var log = new List<long>();

        void Write()
        {
            for (long seq = 0; ; seq++)
            {
                while (true)
                {
                    bool ok;
                    try
                    {
                        if (channel is not null)
                        {
                            ok = channel.Writer.TryWrite(seq);
                            if (!ok && Volatile.Read(ref completing) != 0)
                            {
                                return; // full or completed: either way the writes are over
                            }
                        }
                        else
                        {
                            WriteResult result = buffer.TryWrite(seq);
                            if (result.Outcome == WriteOutcome.Completed)
                            {
                                return;
                            }

                            ok = result.IsSuccess;
                        }
                    }
                    catch (ObjectDisposedException)
                    {
                        return;
                    }

                    if (ok)
                    {
                        Volatile.Write(ref accepted, seq + 1);
                        break;
                    }

                    Thread.SpinWait(4); // full (Reject): retry the same item (spinning, so the three threads contend for the cores and the writer is preempted now and then, inside its write too)
                }
            }
        }

        async Task ReadAll()
        {
            try
            {
                IAsyncEnumerable<long> all = channel is not null ? channel.Reader.ReadAllAsync() : buffer.ReadAllAsync();
                await foreach (long item in all.ConfigureAwait(false))
                {
                    log.Add(item);
                    Volatile.Write(ref read, read + 1);
                }
            }
            catch (ObjectDisposedException) when (dispose)
            {
                // a disposed buffer's reads end with this once drained
            }
        }

        void Complete()
        {
            var spinner = default(SpinWait);
            var waited = Stopwatch.StartNew();
            while (Volatile.Read(ref read) < completeAfterReads && Volatile.Read(ref accepted) < AcceptedBeforeCompletion && waited.Elapsed < CompleteWithin)
            {
                spinner.SpinOnce(sleep1Threshold: -1);
            }

            if (channel is not null)
            {
                Volatile.Write(ref completing, 1);
                channel.Writer.TryComplete();
            }
            else if (dispose)
            {
                buffer.Dispose();
            }
            else
            {
                buffer.TryComplete();
            }
        }

        Task reader = Task.Run(ReadAll);
        Task writer = Task.Factory.StartNew(Write, TaskCreationOptions.LongRunning);
        Task completer = Task.Factory.StartNew(Complete, TaskCreationOptions.LongRunning);
        Task all = Task.WhenAll(writer, reader, completer);
        if (await Task.WhenAny(all, Task.Delay(RoundTimeout)).ConfigureAwait(false) != all)
        {
            string state = $"writer {writer.Status}, reader {reader.Status}, completer {completer.Status}, accepted {Volatile.Read(ref accepted)}, read {Volatile.Read(ref read)}, {buffer.DescribeWaitState()}";
            buffer.Dispose();
            channel?.Writer.TryComplete();
            Assert.Fail($"round {round} ({target}, capacity {capacity}) did not end within {RoundTimeout}: {state}");
        }

        Assert.All((Task[])[writer, reader, completer], t => Assert.True(t.IsCompletedSuccessfully, t.Exception?.ToString()));
        bool leftBehind = channel is not null ? channel.Reader.TryRead(out long left) : buffer.TryRead(out left);
        Assert.False(leftBehind, $"round {round} ({target}, capacity {capacity}): item {left} was accepted but left behind in the finished buffer; the consumer read {log.Count} of {accepted} accepted, {evicted} evicted");
        long[] expected = Enumerable.Range(0, (int)accepted).Select(i => (long)i).ToArray();
        if (target == Target.SpmcDropOldest)
        {
            Assert.Equal(accepted, log.Count + evicted);
            Assert.True(log.SequenceEqual(log.Order()), $"round {round}: items out of order");
        }
        else
        {
            Assert.True(log.SequenceEqual(expected), $"round {round} ({target}, capacity {capacity}): read {log.Count} of {accepted} accepted (a lost, duplicated or reordered item)");
        }

        buffer.Dispose();
        return log.Count;
    }
}
