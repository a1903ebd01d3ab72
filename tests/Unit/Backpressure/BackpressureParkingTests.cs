using Xunit;

namespace LockFree.Tests.Unit.Backpressure;

/// <summary>
/// "Waiting spins briefly, then parks; no CPU burn while parked" (issue 4; acceptance audit, 2026-11-23): a synchronous
/// writer (reader) that waits for room (an item) ends up blocked in the operating system, not spinning. The check samples
/// the waiting thread's <see cref="Thread.ThreadState"/>: a parked thread stays in <see cref="ThreadState.WaitSleepJoin"/>
/// for a long run of samples, a spinning one is <see cref="ThreadState.Running"/>. The detector's own control (a thread
/// that spins) must fail it, so the check can fail. No timing assertion: the only bound is a generous deadline.
/// </summary>
public sealed class BackpressureParkingTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(20);

    /// <summary>Consecutive blocked samples, 2 ms apart, that count as parked (about 0.2 s).</summary>
    private const int BlockedSamples = 100;

    [Theory]
    [InlineData(true, true)]
    [InlineData(false, false)]
    public void Write_Sync_WaitingForRoom_ParksTheThreadInsteadOfSpinning(bool singleWriter, bool singleReader)
    {
        using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int>
        {
            Capacity = 1,
            FullMode = OverflowPolicy.Wait,
            SingleWriter = singleWriter,
            SingleReader = singleReader,
        });
        Assert.Equal(WriteResult.Accepted, buffer.TryWrite(0));
        WriteResult result = default;
        var writer = new Thread(() => result = buffer.Write(1, Timeout.InfiniteTimeSpan)) { IsBackground = true };
        writer.Start();

        Assert.True(StaysBlocked(writer, Generous), "the waiting writer never stayed blocked: it spins (burns CPU) while it waits");

        Assert.True(buffer.TryRead(out int read));
        Assert.Equal(0, read);
        Assert.True(writer.Join(Generous), "the parked writer was not woken by the read");
        Assert.Equal(WriteResult.Accepted, result);
        Assert.True(buffer.TryRead(out read));
        Assert.Equal(1, read);
    }

    [Theory]
    [InlineData(true, true)]
    [InlineData(false, false)]
    public void TryRead_Sync_WaitingForAnItem_ParksTheThreadInsteadOfSpinning(bool singleWriter, bool singleReader)
    {
        using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int>
        {
            Capacity = 4,
            SingleWriter = singleWriter,
            SingleReader = singleReader,
        });
        bool got = false;
        int item = 0;
        var reader = new Thread(() => got = buffer.TryRead(out item, Timeout.InfiniteTimeSpan)) { IsBackground = true };
        reader.Start();

        Assert.True(StaysBlocked(reader, Generous), "the waiting reader never stayed blocked: it spins (burns CPU) while it waits");

        Assert.Equal(WriteResult.Accepted, buffer.TryWrite(7));
        Assert.True(reader.Join(Generous), "the parked reader was not woken by the write");
        Assert.True(got);
        Assert.Equal(7, item);
    }

    [Fact]
    public void StaysBlocked_SpinningThread_IsNotTakenForParked()
    {
        // The control: the detector must fail a thread that waits by spinning (as a writer that never parks would).
        bool stop = false;
        var spinner = new Thread(() =>
        {
            while (!Volatile.Read(ref stop))
            {
                Thread.SpinWait(50);
            }
        })
        { IsBackground = true };
        spinner.Start();
        try
        {
            Assert.False(StaysBlocked(spinner, TimeSpan.FromSeconds(1)));
        }
        finally
        {
            Volatile.Write(ref stop, true);
            Assert.True(spinner.Join(Generous));
        }
    }

    /// <summary>True once <paramref name="thread"/> is seen blocked in <see cref="BlockedSamples"/> samples in a row; false at the deadline.</summary>
    private static bool StaysBlocked(Thread thread, TimeSpan deadline)
    {
        DateTime end = DateTime.UtcNow + deadline;
        int run = 0;
        while (DateTime.UtcNow < end)
        {
            if (!thread.IsAlive)
            {
                return false;
            }

            run = (thread.ThreadState & ThreadState.WaitSleepJoin) != 0 ? run + 1 : 0;
            if (run >= BlockedSamples)
            {
                return true;
            }

            Thread.Sleep(2);
        }

        return false;
    }
}
