using System.Diagnostics;
using LockFree.Backpressure;
using Xunit;

namespace LockFree.Tests.Unit.Backpressure;

/// <summary>
/// The spin budget of asynchronous waits (<see cref="AdaptiveSpin"/>) and the wake-up count it is gated on
/// (<see cref="WaiterList.WakesInFlight"/>). No assertion on how long anything takes: the budget is compared with
/// itself, and a spin is run only against conditions that decide it at once.
/// </summary>
public sealed class AdaptiveSpinTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    [Fact]
    public void Start_CounterpartIdle_SpinsOnMultiCoreOnly()
    {
        var spin = default(AdaptiveSpin);
        AdaptiveSpin.SpinRound round = spin.Start(new WaiterList(static _ => { }));
        Assert.Equal(Environment.ProcessorCount > 1, round.Budget > 0);
        Assert.Equal(Environment.ProcessorCount > 1, round.Pause());
    }

    [Fact]
    public async Task Start_CounterpartParked_DoesNotSpin()
    {
        var counterpart = new WaiterList(static _ => { });
        Waiter waiter = counterpart.RentAndLink(synchronous: false);
        waiter.Arm(Timeout.InfiniteTimeSpan, default, TimeProvider.System);

        var spin = default(AdaptiveSpin);
        AdaptiveSpin.SpinRound round = spin.Start(counterpart);
        Assert.Equal(0, round.Budget);
        Assert.False(round.Pause());

        counterpart.SignalOne();
        await new ValueTask<WaitStatus>(waiter, waiter.Version).AsTask().WaitAsync(Generous);
    }

    [Fact]
    public void Finish_RanOut_HalvesDownToAFloor_FoundDoublesUpToTheCeiling()
    {
        if (!AdaptiveSpin.Enabled)
        {
            return; // one core: nothing spins, nothing adapts
        }

        var spin = default(AdaptiveSpin);
        var idle = new WaiterList(static _ => { });
        long initial = spin.Start(idle).Budget;
        long previous = initial;
        for (int i = 0; i < 64; i++)
        {
            AdaptiveSpin.SpinRound round = spin.Start(idle);
            spin.Finish(round, found: false);
            long next = spin.Start(idle).Budget;
            Assert.True(next <= previous && next > 0, $"a spin that ran out must not grow the budget ({previous} -> {next})");
            previous = next;
        }

        long floor = previous;
        Assert.True(floor < initial);
        for (int i = 0; i < 64; i++)
        {
            AdaptiveSpin.SpinRound round = spin.Start(idle);
            spin.Finish(round, found: true);
            long next = spin.Start(idle).Budget;
            Assert.True(next >= previous, $"a spin that found its condition must not shrink the budget ({previous} -> {next})");
            previous = next;
        }

        Assert.Equal(initial, previous); // back at the ceiling, and no further
    }

    [Fact]
    public void Pause_BudgetSpent_AnswersFalse()
    {
        if (!AdaptiveSpin.Enabled)
        {
            return;
        }

        var spin = default(AdaptiveSpin);
        AdaptiveSpin.SpinRound round = spin.Start(new WaiterList(static _ => { }));
        var clock = Stopwatch.StartNew();
        while (round.Pause())
        {
            Assert.True(clock.Elapsed < Generous, "a spin must end once its budget is spent");
        }
    }

    [Fact]
    public async Task WakesInFlight_CountsASignalledWaitUntilItsContinuationStarts()
    {
        var list = new WaiterList(static _ => { });
        Waiter waiter = list.RentAndLink(synchronous: false);
        waiter.Arm(Timeout.InfiniteTimeSpan, default, TimeProvider.System);
        Assert.Equal(0, list.WakesInFlight);

        list.SignalOne();
        Assert.InRange(list.WakesInFlight, 0, 1); // 1 until the pool runs the continuation
        Assert.Equal(WaitStatus.Signaled, await new ValueTask<WaitStatus>(waiter, waiter.Version).AsTask().WaitAsync(Generous));
        Assert.Equal(0, list.WakesInFlight);
    }

    [Fact]
    public async Task WaitToReadAsync_WriterKeepsUp_CompletesEveryWait()
    {
        // The spin path and the park path both end in a true answer; the counts must match exactly.
        var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int> { Capacity = 4, FullMode = OverflowPolicy.Wait, SingleWriter = true, SingleReader = true });
        const int Items = 20_000;
        Task writer = Task.Run(async () =>
        {
            for (int i = 0; i < Items; i++)
            {
                Assert.Equal(WriteOutcome.Accepted, (await buffer.WriteAsync(i)).Outcome);
            }

            buffer.Complete();
        });

        long expected = 0, sum = 0;
        int count = 0;
        await foreach (int item in buffer.ReadAllAsync().WithCancellation(new CancellationTokenSource(Generous).Token))
        {
            expected += count++;
            sum += item;
        }

        await writer.WaitAsync(Generous);
        Assert.Equal(Items, count);
        Assert.Equal(expected, sum);
        await buffer.Completion.WaitAsync(Generous);
    }
}
