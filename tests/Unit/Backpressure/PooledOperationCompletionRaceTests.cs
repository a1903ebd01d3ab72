using System.Collections.Concurrent;
using System.Threading.Channels;
using Xunit;

namespace LockFree.Tests.Unit.Backpressure;

/// <summary>
/// Review s13: completion (and disposal) racing parked pooled operations of the buffer and of the channel adapter, at a
/// random moment while writers and readers park and wake on a one-slot buffer. Every call ends with a documented outcome
/// (a write: accepted, or the completion's answer; a read: an item, or completed and drained), every accepted item is read
/// exactly once (after disposal: read, or still in the buffer for TryRead), and nothing else is read. A pin: it passed
/// before the review.
/// </summary>
public sealed class PooledOperationCompletionRaceTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(60);

    private static int Rounds => 40 * (int.TryParse(Environment.GetEnvironmentVariable("LOCKFREE_STRESS_SCALE"), out int s) && s > 0 ? s : 1);

    public static TheoryData<string, bool> Cases => new()
    {
        { "complete", false }, { "complete", true }, { "dispose", false }, { "channel", false }, { "channel", true },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task CompletionRacesParkedCalls_EveryAcceptedItemReadOnce(string ending, bool single)
    {
        for (int round = 0; round < Rounds; round++)
        {
            await RunRound(ending, single, round);
        }
    }

    private static async Task RunRound(string ending, bool single, int round)
    {
        const int Writers = 3;
        const int PerWriter = 200;
        var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int> { Capacity = 1, FullMode = OverflowPolicy.Wait, SingleReader = single });
        Channel<int>? channel = ending == "channel"
            ? LockFreeChannel.CreateBounded<int>(new LockFreeChannelOptions { Capacity = 1, FullMode = OverflowPolicy.Wait, SingleReader = single })
            : null;
        var accepted = new ConcurrentDictionary<int, byte>();
        var read = new ConcurrentDictionary<int, int>();
        var unexpected = new ConcurrentQueue<string>();

        Task[] writers = Enumerable.Range(0, Writers).Select(w => Task.Run(async () =>
        {
            for (int i = 0; i < PerWriter; i++)
            {
                int item = (w * PerWriter) + i;
                try
                {
                    if (channel is not null)
                    {
                        await channel.Writer.WriteAsync(item);
                        accepted[item] = 0;
                        continue;
                    }

                    WriteResult result = await buffer.WriteAsync(item);
                    if (result.Outcome == WriteOutcome.Accepted)
                    {
                        accepted[item] = 0;
                    }
                    else if (result.Outcome != WriteOutcome.Completed)
                    {
                        unexpected.Enqueue($"write {item}: {result.Outcome}");
                    }
                }
                catch (ChannelClosedException) when (channel is not null)
                {
                }
                catch (ObjectDisposedException) when (ending == "dispose")
                {
                }
                catch (Exception error)
                {
                    unexpected.Enqueue($"write {item}: {error.GetType().Name}");
                }
            }
        })).ToArray();

        Task[] readers = Enumerable.Range(0, single ? 1 : 2).Select(_ => Task.Run(async () =>
        {
            while (true)
            {
                try
                {
                    int item = channel is not null ? await channel.Reader.ReadAsync() : await buffer.ReadAsync();
                    read.AddOrUpdate(item, 1, (_, n) => n + 1);
                }
                catch (ChannelClosedException) when (channel is not null)
                {
                    return;
                }
                catch (InvalidOperationException) when (buffer.IsCompleted)
                {
                    return;
                }
                catch (ObjectDisposedException) when (ending == "dispose")
                {
                    return;
                }
                catch (Exception error)
                {
                    unexpected.Enqueue($"read: {error.GetType().Name}");
                    return;
                }
            }
        })).ToArray();

        await Task.Delay(new Random(round).Next(0, 4));
        switch (ending)
        {
            case "dispose":
                buffer.Dispose();
                break;
            case "channel":
                channel!.Writer.Complete();
                break;
            default:
                buffer.Complete();
                break;
        }

        await Task.WhenAll(writers).WaitAsync(Generous);
        await Task.WhenAll(readers).WaitAsync(Generous);
        while (channel is null && buffer.TryRead(out int left))
        {
            read.AddOrUpdate(left, 1, (_, n) => n + 1); // left at disposal: still the caller's
        }

        Assert.Empty(unexpected);
        Assert.All(read, pair => Assert.Equal(1, pair.Value));
        Assert.Equal(accepted.Keys.OrderBy(k => k), read.Keys.OrderBy(k => k));
        buffer.Dispose();
    }
}
