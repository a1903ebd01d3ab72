using System.Reflection;
using Xunit;

namespace LockFree.Tests.Unit.Backpressure;

/// <summary>
/// The watermark state's repair on a miss (session 17, see <c>CheckPressure</c>'s remarks in BackpressureBuffer.Signals.cs):
/// a weak-memory race of a crossing with a single side's operation can leave the pause state disagreeing with the depth
/// until the next operation; a read that finds the buffer empty, or a write that finds it full, checks the state (after a
/// fence) and puts it right. The race itself cannot be produced on demand, so these tests plant its outcome (the state
/// set against the depth through the private field) and check that the miss repairs it and reports the crossing. Each
/// fails without the repair: the state stays as planted.
/// </summary>
public sealed class BackpressureWatermarkRepairTests
{
    private static readonly FieldInfo Paused = typeof(BackpressureBuffer<int>).GetField("_paused", BindingFlags.NonPublic | BindingFlags.Instance)
        ?? throw new InvalidOperationException("BackpressureBuffer's _paused field was renamed: update this test.");

    private static readonly FieldInfo Delivered = typeof(BackpressureBuffer<int>).GetField("_pressureDelivered", BindingFlags.NonPublic | BindingFlags.Instance)
        ?? throw new InvalidOperationException("BackpressureBuffer's _pressureDelivered field was renamed: update this test.");

    /// <summary>Plants a state (and its delivered event, as the crossing that made it would have delivered it).</summary>
    private static void Plant(BackpressureBuffer<int> buffer, long paused)
    {
        Paused.SetValue(buffer, paused);
        Delivered.SetValue(buffer, paused);
    }

    [Theory]
    [InlineData(true, true)]
    [InlineData(false, false)]
    public void TryRead_OnAnEmptyBufferLeftPaused_ResumesAndReportsIt(bool singleWriter, bool singleReader)
    {
        using var buffer = Create(singleWriter, singleReader);
        var events = new List<bool>();
        buffer.PressureChanged += (_, paused) => events.Add(paused);
        Plant(buffer, 1); // the race's outcome: paused with nothing in the buffer

        Assert.False(buffer.TryRead(out _));

        Assert.False(buffer.IsPaused);
        Assert.Equal([false], events);
    }

    [Fact]
    public void TryReadMany_OnAnEmptyBufferLeftPaused_ResumesIt()
    {
        using var buffer = Create(singleWriter: true, singleReader: true);
        Plant(buffer, 1);

        Assert.Equal(0, buffer.TryReadMany(new int[2]));

        Assert.False(buffer.IsPaused);
    }

    [Theory]
    [InlineData(true, true, OverflowPolicy.Reject)]
    [InlineData(false, false, OverflowPolicy.Reject)]
    [InlineData(true, true, OverflowPolicy.DropIncoming)]
    [InlineData(false, true, OverflowPolicy.Wait)]
    public void TryWrite_OnAFullBufferLeftResumed_PausesAndReportsIt(bool singleWriter, bool singleReader, OverflowPolicy mode)
    {
        using var buffer = Create(singleWriter, singleReader, mode);
        for (int i = 0; i < buffer.Capacity; i++)
        {
            Assert.Equal(WriteOutcome.Accepted, buffer.TryWrite(i).Outcome);
        }

        var events = new List<bool>();
        buffer.PressureChanged += (_, paused) => events.Add(paused);
        Plant(buffer, 0); // the race's outcome: resumed with the buffer full

        Assert.NotEqual(WriteOutcome.Accepted, buffer.TryWrite(-1).Outcome);

        Assert.True(buffer.IsPaused);
        Assert.Equal([true], events);
    }

    private static BackpressureBuffer<int> Create(bool singleWriter, bool singleReader, OverflowPolicy mode = OverflowPolicy.Wait) =>
        new(new BackpressureBufferOptions<int> { Capacity = 4, HighWatermark = 3, LowWatermark = 1, SingleWriter = singleWriter, SingleReader = singleReader, FullMode = mode });
}
