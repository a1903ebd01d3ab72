using System.Threading.Channels;
using Xunit;

namespace LockFree.Tests.Unit.Backpressure;

/// <summary>
/// The value-task contract of every pooled parked call (session 12's <c>PooledOperation</c>s and the adapter's
/// <c>WriteForwarder</c>), as the BCL's channels keep it: reading the result of a call still pending throws
/// <see cref="InvalidOperationException"/> and consumes nothing (the call still completes and can be awaited); a value
/// task consumed once throws on a second read; and a stale value task whose pooled object was reused by the next parked
/// call throws on every use (IsCompleted, GetResult, OnCompleted) without disturbing that call. Pins of the review s13
/// (they passed before it): a stale token that reached the object's new call would corrupt the pool.
/// </summary>
public sealed class PooledOperationReuseTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    /// <summary>A parked call, generic or not, seen through what a caller can do with its value task.</summary>
    private sealed record Call(Func<bool> IsCompleted, Action GetResult, Action<Action> OnCompleted, Func<Task> AsTask)
    {
        public static Call Of<TResult>(ValueTask<TResult> task) =>
            new(() => task.IsCompleted, () => task.GetAwaiter().GetResult(), c => task.GetAwaiter().OnCompleted(c), () => task.AsTask());

        public static Call Of(ValueTask task) =>
            new(() => task.IsCompleted, () => task.GetAwaiter().GetResult(), c => task.GetAwaiter().OnCompleted(c), () => task.AsTask());
    }

    /// <summary>A scenario: parks a call (its precondition made first), and the step that ends its wait.</summary>
    private sealed record Scenario(Func<Call> Park, Action Release, IDisposable? Owner = null);

    public static TheoryData<string> Kinds => new()
    {
        "BufferReadAsync", "BufferWriteAsync", "BufferTimedWriteAsync", "ChannelReadAsync", "ChannelWriteAsync",
        "ChannelWaitToWriteAsync", "DelayDequeueAsync", "DelayEnqueueAsync", "AckReceiveAsync",
    };

    private static Scenario Make(string kind)
    {
        switch (kind)
        {
            case "BufferReadAsync":
            {
                var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int> { Capacity = 1, FullMode = OverflowPolicy.Wait });
                return new Scenario(() => Call.Of(buffer.ReadAsync()), () => Assert.Equal(WriteResult.Accepted, buffer.TryWrite(7)), buffer);
            }

            case "BufferWriteAsync":
            case "BufferTimedWriteAsync":
            {
                var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int> { Capacity = 1, FullMode = OverflowPolicy.Wait });
                return new Scenario(
                    () =>
                    {
                        buffer.TryWrite(0); // full (it may hold the last call's item already)
                        return Call.Of(kind == "BufferWriteAsync" ? buffer.WriteAsync(1) : buffer.WriteAsync(1, OverflowPolicy.Wait, TimeSpan.FromMinutes(10)));
                    },
                    () => Assert.True(buffer.TryRead(out _)),
                    buffer);
            }

            case "ChannelReadAsync":
            {
                Channel<int> channel = LockFreeChannel.CreateBounded<int>(new LockFreeChannelOptions { Capacity = 1, FullMode = OverflowPolicy.Wait });
                return new Scenario(() => Call.Of(channel.Reader.ReadAsync()), () => Assert.True(channel.Writer.TryWrite(7)));
            }

            case "ChannelWriteAsync":
            case "ChannelWaitToWriteAsync":
            {
                Channel<int> channel = LockFreeChannel.CreateBounded<int>(new LockFreeChannelOptions { Capacity = 1, FullMode = OverflowPolicy.Wait });
                return new Scenario(
                    () =>
                    {
                        channel.Writer.TryWrite(0);
                        return kind == "ChannelWriteAsync" ? Call.Of(channel.Writer.WriteAsync(1)) : Call.Of(channel.Writer.WaitToWriteAsync());
                    },
                    () => Assert.True(channel.Reader.TryRead(out _)));
            }

            case "DelayDequeueAsync":
            {
                var queue = new DelayQueue<int>(1);
                return new Scenario(() => Call.Of(queue.DequeueAsync()), () => Assert.Equal(WriteResult.Accepted, queue.TryEnqueue(7, TimeSpan.Zero)), queue);
            }

            case "DelayEnqueueAsync":
            {
                var queue = new DelayQueue<int>(1);
                return new Scenario(
                    () =>
                    {
                        queue.TryEnqueue(0, TimeSpan.Zero);
                        return Call.Of(queue.EnqueueAsync(1, TimeSpan.Zero));
                    },
                    () => Assert.True(queue.TryDequeue(out _)),
                    queue);
            }

            case "AckReceiveAsync":
            {
                var queue = new AckQueue<int>(new AckQueueOptions<int> { Capacity = 64 }); // the deliveries stay in flight: room for every round
                return new Scenario(() => Call.Of(queue.ReceiveAsync()), () => Assert.Equal(WriteResult.Accepted, queue.TryEnqueue(7)), queue);
            }

            default:
                throw new ArgumentOutOfRangeException(nameof(kind), kind, null);
        }
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task ParkedCall_ReadEarlyTwiceAndStale_ThrowsInvalidOperationAndNeverDisturbsTheNextCall(string kind)
    {
        Scenario scenario = Make(kind);
        using IDisposable? owner = scenario.Owner;
        for (int round = 0; round < 3; round++)
        {
            Call first = scenario.Park();
            Assert.False(first.IsCompleted(), "the call did not park");
            Assert.Throws<InvalidOperationException>(first.GetResult); // pending: consumes nothing
            scenario.Release();
            await first.AsTask().WaitAsync(Generous); // still completes, and is consumed here
            Assert.Throws<InvalidOperationException>(first.GetResult); // consumed already

            Call second = scenario.Park(); // reuses the pooled objects the first call gave back
            Assert.False(second.IsCompleted(), "the call did not park");
            Assert.Throws<InvalidOperationException>(() => first.IsCompleted());
            Assert.Throws<InvalidOperationException>(first.GetResult);
            Assert.Throws<InvalidOperationException>(() => first.OnCompleted(() => Assert.Fail("a stale continuation ran")));
            Assert.False(second.IsCompleted(), "a stale use completed the next call");
            scenario.Release();
            await second.AsTask().WaitAsync(Generous);
        }
    }
}
