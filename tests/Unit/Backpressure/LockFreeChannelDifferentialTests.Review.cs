using System.Threading.Channels;
using Xunit;

namespace LockFree.Tests.Unit.Backpressure;

/// <content>
/// Points the other scenarios left open (review of 2026-11-23), each run on the BCL's bounded channel and on ours with
/// the same roles, full mode and capacity (1 and 4): pre-cancelled tokens on every asynchronous member in every state,
/// the drop callbacks (what is reported, in which order) and callbacks that re-enter the channel (write, read, complete),
/// unusual completion errors, peeking across completion, and that a wake-up never runs the woken caller inline.
/// </content>
public sealed partial class LockFreeChannelDifferentialTests
{
    /// <summary>Roles, each full mode with a BCL twin, and capacities 1 and 4.</summary>
    public static TheoryData<bool, bool, OverflowPolicy, int> RolesModesAndCapacities
    {
        get
        {
            var data = new TheoryData<bool, bool, OverflowPolicy, int>();
            foreach (OverflowPolicy mode in new[] { OverflowPolicy.Wait, OverflowPolicy.DropIncoming, OverflowPolicy.DropOldest })
            {
                foreach ((bool reader, bool writer) in new[] { (false, false), (false, true), (true, false), (true, true) })
                {
                    data.Add(reader, writer, mode, 1);
                    data.Add(reader, writer, mode, 4);
                }
            }

            return data;
        }
    }

    [Theory]
    [MemberData(nameof(RolesModesAndCapacities))]
    public Task PreCancelledToken_EveryAsyncMemberInEveryState_SameAnswers(bool singleReader, bool singleWriter, OverflowPolicy mode, int capacity) =>
        AssertSameAsBcl(
            singleReader,
            singleWriter,
            mode,
            async (channel, log) =>
            {
                await PreCancelledCalls(channel, log, "empty");
                log.Add($"write {channel.Writer.TryWrite(1)}");
                await PreCancelledCalls(channel, log, "one item");
                Fill(channel, capacity - 1); // one item is in already
                await PreCancelledCalls(channel, log, "full");
                log.Add($"complete {channel.Writer.TryComplete()}");
                await PreCancelledCalls(channel, log, "completed with items");
                log.Add($"items {string.Join(",", Drain(channel))}");
                await PreCancelledCalls(channel, log, "completed and drained");
                await log.Outcome("completion", channel.Reader.Completion);
            },
            capacity: capacity);

    [Theory]
    [MemberData(nameof(RolesModesAndCapacities))]
    public Task PreCancelledToken_CompletedWithAnError_SameAnswers(bool singleReader, bool singleWriter, OverflowPolicy mode, int capacity) =>
        AssertSameAsBcl(
            singleReader,
            singleWriter,
            mode,
            async (channel, log) =>
            {
                log.Add($"write {channel.Writer.TryWrite(1)} complete {channel.Writer.TryComplete(new FormatException("boom"))}");
                await PreCancelledCalls(channel, log, "faulted with an item");
                log.Add($"read {channel.Reader.TryRead(out int item)} {item}");
                await PreCancelledCalls(channel, log, "faulted and drained");
                await log.Outcome("completion", channel.Reader.Completion);
            },
            capacity: capacity);

    [Theory]
    [MemberData(nameof(RolesModesAndCapacities))]
    public Task Overflow_DropCallback_SameItemsReportedInTheSameOrder(bool singleReader, bool singleWriter, OverflowPolicy mode, int capacity)
    {
        List<int>? dropped = null;
        return AssertSameAsBcl(
            singleReader,
            singleWriter,
            mode,
            async (channel, log) =>
            {
                dropped = [];
                for (int i = 0; i < 3 * capacity; i++)
                {
                    log.Add($"tryWrite {i} {channel.Writer.TryWrite(i)} count {channel.Reader.Count} dropped [{string.Join(",", dropped)}]");
                }

                if (mode != OverflowPolicy.Wait)
                {
                    for (int i = 0; i < capacity; i++)
                    {
                        await log.Outcome($"writeAsync {100 + i}", channel.Writer.WriteAsync(100 + i).AsTask()); // a success at once under the drop modes
                    }

                    await log.Outcome("waitToWrite", channel.Writer.WaitToWriteAsync().AsTask()); // true at once: a write never waits
                }

                log.Add($"dropped [{string.Join(",", dropped)}] items {string.Join(",", Drain(channel))}");
            },
            itemDropped: item => dropped!.Add(item),
            capacity: capacity);
    }

    [Theory]
    [MemberData(nameof(RolesModesAndCapacities))]
    public Task DropCallback_ThatWritesReadsOrCompletes_SameResults(bool singleReader, bool singleWriter, OverflowPolicy mode, int capacity)
    {
        Channel<int>? current = null;
        Transcript? transcript = null;
        int calls = 0;
        return AssertSameAsBcl(
            singleReader,
            singleWriter,
            mode,
            async (channel, log) =>
            {
                (current, transcript, calls) = (channel, log, 0);
                for (int i = 0; i < capacity + 4; i++)
                {
                    log.Add($"tryWrite {i} {channel.Writer.TryWrite(i)} count {channel.Reader.Count}");
                }

                log.Add($"items {string.Join(",", Drain(channel))} complete after {channel.Writer.TryComplete()}"); // false when a callback completed it
                await log.Outcome("completion", channel.Reader.Completion);
                await log.Outcome("readAfter", channel.Reader.ReadAsync().AsTask());
            },
            itemDropped: item =>
            {
                // Runs on the writing thread after the drop (the BCL calls it outside its lock; ours once consistent again).
                switch (calls++)
                {
                    case 0:
                        transcript!.Add($"  dropped {item}; write in callback {current!.Writer.TryWrite(1000 + item)} count {current.Reader.Count}");
                        break;
                    case 1:
                        transcript!.Add($"  dropped {item}; read in callback {current!.Reader.TryRead(out int read)} {read} count {current.Reader.Count}");
                        break;
                    case 2:
                        transcript!.Add($"  dropped {item}; complete in callback {current!.Writer.TryComplete()} count {current.Reader.Count}");
                        break;
                    default:
                        transcript!.Add($"  dropped {item}");
                        break;
                }
            },
            capacity: capacity);
    }

    [Theory]
    [MemberData(nameof(Roles))]
    public Task Complete_WithUnusualErrors_SameExceptionsEverywhere(bool singleReader, bool singleWriter) =>
        AssertSameAsBcl(singleReader, singleWriter, OverflowPolicy.Wait, async (channel, log) =>
        {
            // A TaskCanceledException (a cancellation subtype), an AggregateException and a ChannelClosedException as the
            // completion error: none is unwrapped or wrapped differently from the BCL's.
            Exception[] errors = [new TaskCanceledException("stopped"), new AggregateException(new FormatException("inner")), new ChannelClosedException("closed")];
            foreach (Exception error in errors)
            {
                Channel<int> fresh = Rebuilt(channel, singleReader, singleWriter);
                log.Add($"{error.GetType().Name}: write {fresh.Writer.TryWrite(1)} complete {fresh.Writer.TryComplete(error)}");
                await log.Outcome("  waitToRead with an item", fresh.Reader.WaitToReadAsync().AsTask());
                log.Add($"  read {fresh.Reader.TryRead(out int item)} {item}");
                await log.Outcome("  completion", fresh.Reader.Completion);
                await log.Outcome("  readAsync", fresh.Reader.ReadAsync().AsTask());
                await log.Outcome("  waitToRead", fresh.Reader.WaitToReadAsync().AsTask());
                await log.Outcome("  writeAsync", fresh.Writer.WriteAsync(2).AsTask());
                await log.Outcome("  waitToWrite", fresh.Writer.WaitToWriteAsync().AsTask());
                try
                {
                    fresh.Writer.Complete();
                    log.Add("  complete again: no exception");
                }
                catch (Exception e)
                {
                    log.Add($"  complete again: {e.GetType().Name} (inner {e.InnerException?.GetType().Name ?? "none"})");
                }
            }
        });

    [Theory]
    [MemberData(nameof(Roles))]
    public Task TryPeek_AcrossCompletionAndDrain_SameAnswers(bool singleReader, bool singleWriter) =>
        AssertSameAsBcl(singleReader, singleWriter, OverflowPolicy.Wait, async (channel, log) =>
        {
            if (!singleReader)
            {
                return; // ours peeks only with a single reader (a documented difference): nothing to compare
            }

            log.Add($"empty: {Peek(channel)}");
            Fill(channel, 2);
            log.Add($"two: {Peek(channel)} complete {channel.Writer.TryComplete()}");
            log.Add($"completed: {Peek(channel)} read {channel.Reader.TryRead(out int first)} {first}");
            log.Add($"one left: {Peek(channel)} read {channel.Reader.TryRead(out int second)} {second}");
            log.Add($"drained: {Peek(channel)}");
            await log.Outcome("completion", channel.Reader.Completion);
        });

    [Theory]
    [MemberData(nameof(Roles))]
    public Task WakeUps_NeverRunTheWokenCallerInline_SameAsBcl(bool singleReader, bool singleWriter) =>
        AssertSameAsBcl(singleReader, singleWriter, OverflowPolicy.Wait, async (channel, log) =>
        {
            using var inside = new ThreadLocal<bool>(); // true on this thread while the waking call runs: a continuation run inline there sees it

            Task<string> read = Observe(async () => $"read {await channel.Reader.ReadAsync()}");
            inside.Value = true;
            channel.Writer.TryWrite(1);
            inside.Value = false;
            log.Add(await read.WaitAsync(Timeout));

            Task<string> waitToRead = Observe(async () => $"waitToRead {await channel.Reader.WaitToReadAsync()}");
            inside.Value = true;
            channel.Writer.TryWrite(2);
            inside.Value = false;
            log.Add(await waitToRead.WaitAsync(Timeout));
            log.Add($"items {string.Join(",", Drain(channel))}");

            Fill(channel);
            Task<string> write = Observe(async () =>
            {
                await channel.Writer.WriteAsync(9);
                return "write";
            });
            inside.Value = true;
            channel.Reader.TryRead(out _);
            inside.Value = false;
            log.Add(await write.WaitAsync(Timeout));
            log.Add($"items {string.Join(",", Drain(channel))}");

            Task<string> closed = Observe(async () =>
            {
                try
                {
                    return $"read {await channel.Reader.ReadAsync()}";
                }
                catch (ChannelClosedException)
                {
                    return "read closed";
                }
            });
            Task<string> completion = Observe(async () =>
            {
                await channel.Reader.Completion;
                return "completion";
            });
            inside.Value = true;
            channel.Writer.TryComplete();
            inside.Value = false;
            log.Add(await closed.WaitAsync(Timeout));
            log.Add(await completion.WaitAsync(Timeout));

            async Task<string> Observe(Func<Task<string>> call)
            {
                string what = await call();
                return $"{what}: ran inline in the waking call {inside.Value}";
            }
        });

    private static async Task PreCancelledCalls(Channel<int> channel, Transcript log, string state)
    {
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        await log.Outcome($"{state}: waitToRead", channel.Reader.WaitToReadAsync(cts.Token).AsTask());
        await log.Outcome($"{state}: read", channel.Reader.ReadAsync(cts.Token).AsTask());
        await log.Outcome($"{state}: waitToWrite", channel.Writer.WaitToWriteAsync(cts.Token).AsTask());
        await log.Outcome($"{state}: write", channel.Writer.WriteAsync(77, cts.Token).AsTask());
        log.Add($"{state}: count {channel.Reader.Count}");
    }

    private static string Peek(Channel<int> channel) => channel.Reader.TryPeek(out int item) ? $"peek {item}" : "peek none";

    /// <summary>A fresh channel of the same implementation and roles as <paramref name="channel"/> (Wait, capacity 4).</summary>
    private static Channel<int> Rebuilt(Channel<int> channel, bool singleReader, bool singleWriter) =>
        channel.GetType().Assembly == typeof(LockFreeChannel).Assembly
            ? LockFreeChannel.CreateBounded<int>(new LockFreeChannelOptions { Capacity = Capacity, SingleReader = singleReader, SingleWriter = singleWriter })
            : Channel.CreateBounded<int>(new BoundedChannelOptions(Capacity) { SingleReader = singleReader, SingleWriter = singleWriter });
}
