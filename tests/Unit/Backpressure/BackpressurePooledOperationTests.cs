using System.Collections.Concurrent;
using System.Threading.Channels;
using Xunit;

namespace LockFree.Tests.Unit.Backpressure;

/// <summary>
/// What the parked asynchronous writes and reads kept when they moved from async methods to pooled operations (session
/// 12, gap A): the steps after a wait run in the caller's ExecutionContext, the caller's await honours its
/// SynchronizationContext, a consumed value task cannot be consumed again, and more parked calls than the pool keeps
/// all complete.
/// </summary>
public sealed class BackpressurePooledOperationTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(20);
    private static readonly AsyncLocal<string?> Local = new();

    [Fact]
    public async Task WriteAsync_Parked_StepsAfterTheWaitRunInTheCallersExecutionContext()
    {
        // The write's steps after the wait read the user's clock (the wait metric): it must see the caller's AsyncLocal,
        // as it did inside the async method (whose builder flowed the context). Without the flow it reads null on the
        // pool thread that ends the wait.
        var clock = new RecordingClock();
        using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int>
        {
            Capacity = 1,
            FullMode = OverflowPolicy.Wait,
            TimeProvider = clock,
        });
        Assert.Equal(WriteResult.Accepted, buffer.TryWrite(0));
        ValueTask<WriteResult> write = StartWrite(buffer, "caller");
        Assert.False(write.IsCompleted);
        clock.Seen.Clear();
        Assert.True(buffer.TryRead(out _));
        Assert.Equal(WriteOutcome.Accepted, (await write.AsTask().WaitAsync(Generous)).Outcome);
        Assert.NotEmpty(clock.Seen);
        Assert.All(clock.Seen, value => Assert.Equal("caller", value));
    }

    [Fact]
    public async Task WriteAsync_ParkedAndAwaitedUnderASynchronizationContext_ContinuesThere()
    {
        using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int> { Capacity = 1, FullMode = OverflowPolicy.Wait });
        Assert.Equal(WriteResult.Accepted, buffer.TryWrite(0));
        var context = new CountingContext();
        SynchronizationContext? previous = SynchronizationContext.Current;
        Task<SynchronizationContext?> awaited;
        SynchronizationContext.SetSynchronizationContext(context);
        try
        {
            awaited = AwaitWrite(buffer.WriteAsync(1));
        }
        finally
        {
            SynchronizationContext.SetSynchronizationContext(previous);
        }

        Assert.False(awaited.IsCompleted);
        Assert.True(buffer.TryRead(out _));
        Assert.Same(context, await awaited.WaitAsync(Generous));
        Assert.True(context.Posts >= 1);
    }

    [Fact]
    public async Task ReadAsync_ParkedResultTakenTwice_Throws()
    {
        using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int> { Capacity = 1, FullMode = OverflowPolicy.Wait });
        ValueTask<int> read = buffer.ReadAsync();
        Assert.False(read.IsCompleted);
        Assert.Equal(WriteResult.Accepted, buffer.TryWrite(5));
        Assert.Equal(5, await read.AsTask().WaitAsync(Generous)); // consumes the value task
        Assert.Throws<InvalidOperationException>(() => read.GetAwaiter().GetResult());
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task ManyParkedCalls_MoreThanThePoolKeeps_AllComplete(bool channel)
    {
        const int Calls = 40; // past the operation pool's 8
        using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int> { Capacity = 1, FullMode = OverflowPolicy.Wait });
        Channel<int>? adapter = channel ? LockFreeChannel.CreateBounded<int>(new LockFreeChannelOptions { Capacity = 1, FullMode = OverflowPolicy.Wait }) : null;
        for (int round = 0; round < 3; round++)
        {
            var reads = new Task<int>[Calls];
            for (int i = 0; i < Calls; i++)
            {
                reads[i] = adapter is null ? buffer.ReadAsync().AsTask() : adapter.Reader.ReadAsync().AsTask();
            }

            var writes = new Task[Calls];
            for (int i = 0; i < Calls; i++)
            {
                writes[i] = adapter is null ? buffer.WriteAsync(i).AsTask() : adapter.Writer.WriteAsync(i).AsTask();
            }

            await Task.WhenAll(writes).WaitAsync(Generous);
            int[] items = await Task.WhenAll(reads).WaitAsync(Generous);
            Array.Sort(items);
            Assert.Equal(Enumerable.Range(0, Calls), items);
        }
    }

    [Fact]
    public async Task RetryPolicy_AttemptAfterAFailureCompletedElsewhere_RunsInTheCallersExecutionContext()
    {
        // The retry policy's call is a pooled operation too (session 12). Its first attempt fails on a thread whose own
        // AsyncLocal differs; with no backoff delay the second attempt starts on that thread, and must still see the
        // caller's context, as it did inside the async method (whose builder flowed it). Without the flow it reads "other".
        var policy = new RetryPolicy(new RetryPolicyOptions { MaxAttempts = 2, BaseDelay = TimeSpan.Zero, MaxDelay = TimeSpan.Zero });
        var first = new TaskCompletionSource<int>();
        var seen = new ConcurrentQueue<string?>();
        Task<int> call = RunInChildContext(() => policy.ExecuteAsync(
            (_, _) =>
            {
                seen.Enqueue(Local.Value);
                return seen.Count == 1 ? new ValueTask<int>(first.Task) : new ValueTask<int>(seen.Count);
            },
            0).AsTask());
        var failer = new Thread(() =>
        {
            Local.Value = "other";
            first.SetException(new TimeoutException("transient")); // the policy's continuation runs here, inline
        });
        using (ExecutionContext.SuppressFlow())
        {
            failer.Start();
        }

        failer.Join();
        Assert.Equal(2, await call.WaitAsync(Generous));
        Assert.Equal(new string?[] { "caller", "caller" }, seen.ToArray());
    }

    private static Task<int> RunInChildContext(Func<Task<int>> start)
    {
        Task<int> started = null!;
        ExecutionContext.Run(ExecutionContext.Capture()!, _ =>
        {
            Local.Value = "caller";
            started = start();
        }, null);
        return started;
    }

    private static ValueTask<WriteResult> StartWrite(BackpressureBuffer<int> buffer, string value)
    {
        // Sets the AsyncLocal in a child context (ExecutionContext.Run), so the test's own context stays clean.
        ValueTask<WriteResult> write = default;
        ExecutionContext.Run(ExecutionContext.Capture()!, _ =>
        {
            Local.Value = value;
            write = buffer.WriteAsync(1);
        }, null);
        return write;
    }

    private static async Task<SynchronizationContext?> AwaitWrite(ValueTask<WriteResult> write)
    {
        await write; // captures the current SynchronizationContext
        return SynchronizationContext.Current;
    }

    /// <summary>A clock that records the AsyncLocal each reading sees.</summary>
    private sealed class RecordingClock : TimeProvider
    {
        public ConcurrentQueue<string?> Seen { get; } = new();

        public override long GetTimestamp()
        {
            Seen.Enqueue(Local.Value);
            return base.GetTimestamp();
        }
    }

    /// <summary>A context that counts its posts and runs them on the pool with itself installed.</summary>
    private sealed class CountingContext : SynchronizationContext
    {
        private int _posts;

        public int Posts => Volatile.Read(ref _posts);

        public override void Post(SendOrPostCallback d, object? state)
        {
            Interlocked.Increment(ref _posts);
            ThreadPool.QueueUserWorkItem(_ =>
            {
                SetSynchronizationContext(this);
                d(state);
            });
        }
    }
}
