using LockFree.Backpressure;
using LockFree.Internal;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Unit.Backpressure;

/// <summary>
/// More parked asynchronous calls of one kind at once than the operation pool's first tier holds (eight): before session
/// 13 the pool kept eight, so every park past the eighth created an operation, round after round, for as long as that many
/// callers kept parking (a documented gap A leftover). Since session 13 the pool keeps more; since session 21 up to
/// <see cref="OperationPool{TItem}.MaxSize"/> (1024; 64 before), and the waiter lists as many: 200 parked calls of one kind
/// (<see cref="ManyParked"/>) create nothing in steady state either.
/// Counted with the library's pool-miss counter (<see cref="PoolGrowth"/>), process-wide, so the class runs alone.
/// </summary>
[Collection(ProcessWideAllocationCollection.Name)]
public sealed class ManyParkedCallsPoolTests(ITestOutputHelper output)
{
    private const int Parked = 32;

    /// <summary>More parked calls than the pools kept before session 21 (64).</summary>
    private const int ManyParked = 200;
    private const int MaxRounds = 10;
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    [Theory]
    [InlineData(true, Parked)]
    [InlineData(false, Parked)]
    [InlineData(true, ManyParked)]
    [InlineData(false, ManyParked)]
    public void ManyParkedWrites_SteadyStateCreatesNothing(bool token, int parked)
    {
        using var buffer = Create();
        using var cts = new CancellationTokenSource();
        CancellationToken cancel = token ? cts.Token : CancellationToken.None;
        var writes = new ValueTask<WriteResult>[parked];
        long created = RoundsUntilNothingCreated(() =>
        {
            Assert.Equal(WriteResult.Accepted, buffer.TryWrite(-1)); // full: every write below parks
            for (int i = 0; i < parked; i++)
            {
                writes[i] = buffer.WriteAsync(i, cancel);
                Assert.False(writes[i].IsCompleted);
            }

            long sum = 0;
            for (int read = 0; read <= parked; read++)
            {
                sum += ReadSoon(buffer); // each read frees the slot for one parked write
            }

            Assert.Equal(-1L + (parked * (parked - 1) / 2), sum);
            foreach (ValueTask<WriteResult> write in writes)
            {
                Assert.Equal(WriteOutcome.Accepted, write.GetAwaiter().GetResult().Outcome); // completed: the reads took every item
            }
        });
        Assert.Equal(0, created);
    }

    [Theory]
    [InlineData(true, Parked)]
    [InlineData(false, Parked)]
    [InlineData(true, ManyParked)]
    [InlineData(false, ManyParked)]
    public void ManyParkedReads_SteadyStateCreatesNothing(bool token, int parked)
    {
        using var buffer = Create();
        using var cts = new CancellationTokenSource();
        CancellationToken cancel = token ? cts.Token : CancellationToken.None;
        var reads = new ValueTask<int>[parked];
        long created = RoundsUntilNothingCreated(() =>
        {
            for (int i = 0; i < parked; i++)
            {
                reads[i] = buffer.ReadAsync(cancel); // empty: every read parks
                Assert.False(reads[i].IsCompleted);
            }

            for (int i = 0; i < parked; i++)
            {
                SpinUntil(() => buffer.TryWrite(i).Outcome == WriteOutcome.Accepted); // capacity 1: each write waits for a woken read
            }

            long sum = 0;
            foreach (ValueTask<int> read in reads)
            {
                SpinUntil(() => read.IsCompleted);
                sum += read.GetAwaiter().GetResult();
            }

            Assert.Equal(parked * (parked - 1) / 2, sum);
        });
        Assert.Equal(0, created);
    }

    [Fact]
    public void Pool_KeepsUpToMaxSize_AndDropsBeyond()
    {
        var pool = new OperationPool<object>();
        Assert.Null(pool.Rent());
        var items = new object[OperationPool<object>.MaxSize + 3];
        for (int i = 0; i < items.Length; i++)
        {
            items[i] = new object();
            pool.Return(items[i]);
        }

        Assert.Equal(OperationPool<object>.MaxSize, pool.Count);
        var rented = new HashSet<object>(ReferenceEqualityComparer.Instance);
        for (int i = 0; i < OperationPool<object>.MaxSize; i++)
        {
            object? item = pool.Rent();
            Assert.NotNull(item);
            Assert.True(rented.Add(item)); // each object once
        }

        Assert.Null(pool.Rent());
        Assert.Equal(0, pool.Count);
        Assert.DoesNotContain(items[^1], rented); // the ones past the bound went to the GC
    }

    /// <summary>
    /// Runs <paramref name="round"/> once to warm up (the pools grow to the number parked), then until a round creates no
    /// pooled object (at most <see cref="MaxRounds"/>); returns the objects the last round created. A pool that keeps too few
    /// creates the same number every round.
    /// </summary>
    private long RoundsUntilNothingCreated(Action round)
    {
        round();
        long created = -1;
        for (int i = 0; i < MaxRounds && created != 0; i++)
        {
            long before = PoolGrowth.Created;
            round();
            created = PoolGrowth.Created - before;
            output.WriteLine($"round {i + 1}: {created} objects created by pools");
        }

        return created;
    }

    private static long ReadSoon(BackpressureBuffer<int> buffer)
    {
        int item = 0;
        SpinUntil(() => buffer.TryRead(out item));
        return item;
    }

    private static void SpinUntil(Func<bool> condition)
    {
        long deadline = Environment.TickCount64 + (long)Generous.TotalMilliseconds;
        var spinner = default(SpinWait);
        while (!condition())
        {
            Assert.True(Environment.TickCount64 < deadline, "a parked call was never woken");
            spinner.SpinOnce();
        }
    }

    private static BackpressureBuffer<int> Create() => new(new BackpressureBufferOptions<int>
    {
        Capacity = 1,
        FullMode = OverflowPolicy.Wait,
        SingleWriter = false,
        SingleReader = false,
    });
}
