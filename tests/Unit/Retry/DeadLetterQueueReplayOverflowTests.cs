using System.Diagnostics.Metrics;
using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Retry;

/// <summary>
/// A replay whose target refuses puts the refused letters back; when adds filled the queue meanwhile, the oldest of
/// the refused no longer fit and leave. Each one that leaves is counted (<see cref="DeadLetterStatistics.Evicted"/>, the
/// <c>lockfree.deadletter.lost</c> metric), reported to the drop callback, and told to the caller in
/// <see cref="ReplayResult.Dropped"/>; the ones kept stay in arrival order, under every overflow policy. Before (s12)
/// the result did not say how many left: <c>Replayed + Kept</c> fell short of the selection by an unknown count.
/// </summary>
public sealed class DeadLetterQueueReplayOverflowTests
{
    private static DeadLetter<int> Letter(int message) => new(message, "src", "r", null, 1, DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch);

    private static int[] Messages(DeadLetterQueue<int> queue) => queue.Snapshot().Select(l => l.Message).ToArray();

    [Theory]
    [InlineData(OverflowPolicy.DropOldest)]
    [InlineData(OverflowPolicy.DropIncoming)]
    [InlineData(OverflowPolicy.Reject)]
    public void Replay_RefusedAndTheQueueFilledMeanwhile_DroppedCountedReportedAndTold(OverflowPolicy policy)
    {
        string name = $"dlq-{Guid.NewGuid():N}";
        var dropped = new List<(int Message, DropReason Reason)>();
        using var queue = new DeadLetterQueue<int>(new DeadLetterQueueOptions<int>
        {
            Capacity = 5, FullMode = policy, TimeProvider = new ManualTimeProvider(), Name = name,
            ItemDropped = (l, reason) => dropped.Add((l.Message, reason)),
        });
        for (int i = 1; i <= 5; i++)
        {
            queue.TryAdd(Letter(i));
        }

        bool first = true;
        ReplayResult result = queue.Replay(
            _ =>
            {
                if (first)
                {
                    first = false;
                    Assert.Equal(WriteResult.Accepted, queue.TryAdd(Letter(10))); // 1, 3, 5 are out: room for these two
                    Assert.Equal(WriteResult.Accepted, queue.TryAdd(Letter(11)));
                }

                return false; // refuses 1: 1, 3 and 5 go back, but only one place is left
            },
            l => l.Message % 2 == 1);

        Assert.Equal(new ReplayResult(0, 1, 2), result); // before: (0, 1), the two lost letters untold
        Assert.Equal(3, result.Replayed + result.Kept + result.Dropped); // the three selected
        Assert.Equal([2, 4, 5, 10, 11], Messages(queue)); // the newest refused kept, in arrival order
        Assert.Equal([(1, DropReason.Oldest), (3, DropReason.Oldest)], dropped.OrderBy(d => d.Message)); // each reported once
        DeadLetterStatistics s = queue.GetStatistics();
        Assert.Equal(2, s.Evicted);
        Assert.Equal(s.Added, s.Replayed + s.Removed + s.Evicted + s.Count);
        Assert.Equal(2, LostMetric(name));
    }

    [Fact]
    public void Replay_TakesSomeThenRefusesAfterTheQueueFilled_DroppedTold()
    {
        var dropped = new List<int>();
        using var queue = new DeadLetterQueue<int>(new DeadLetterQueueOptions<int>
        {
            Capacity = 3, TimeProvider = new ManualTimeProvider(), ItemDropped = (l, _) => dropped.Add(l.Message),
        });
        queue.TryAdd(Letter(1));
        queue.TryAdd(Letter(2));
        queue.TryAdd(Letter(3));

        ReplayResult result = queue.Replay(letter =>
        {
            if (letter.Message == 1)
            {
                return true;
            }

            queue.TryAdd(Letter(10)); // the queue is full again: neither 2 nor 3 fits back
            queue.TryAdd(Letter(11));
            queue.TryAdd(Letter(12));
            return false;
        });

        Assert.Equal(new ReplayResult(1, 0, 2), result); // before: (1, 0)
        Assert.Equal([10, 11, 12], Messages(queue));
        Assert.Equal([2, 3], dropped.Order());
        DeadLetterStatistics s = queue.GetStatistics();
        Assert.Equal((1L, 2L), (s.Replayed, s.Evicted));
        Assert.Equal(s.Added, s.Replayed + s.Removed + s.Evicted + s.Count);
    }

    [Fact]
    public void Replay_RefusedWithRoomToSpare_NothingDropped()
    {
        using var queue = new DeadLetterQueue<int>(new DeadLetterQueueOptions<int> { Capacity = 4, TimeProvider = new ManualTimeProvider() });
        queue.TryAdd(Letter(1));
        queue.TryAdd(Letter(2));

        Assert.Equal(new ReplayResult(1, 1, 0), queue.Replay(l => l.Message == 1));
        Assert.Equal([2], Messages(queue));
    }

    /// <summary>The <c>lockfree.deadletter.lost</c> measurement of the queue named <paramref name="name"/>.</summary>
    private static long LostMetric(string name)
    {
        long? lost = null;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == BackpressureMetrics.MeterName && instrument.Name == "lockfree.deadletter.lost")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            foreach (KeyValuePair<string, object?> tag in tags)
            {
                if (tag.Key == BackpressureMetrics.NameTag && (string?)tag.Value == name)
                {
                    lost = value;
                }
            }
        });
        listener.Start();
        listener.RecordObservableInstruments();
        return lost ?? throw new InvalidOperationException("the named queue reported no lost measurement");
    }
}
