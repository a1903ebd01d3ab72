using LockFree.Tests.Unit.Support;
using Xunit;

namespace LockFree.Tests.Unit.Retry;

/// <summary>
/// A refused filtered <see cref="DeadLetterQueue{T}.Replay(Func{DeadLetter{T}, bool}, Func{DeadLetter{T}, bool}?)"/>
/// puts the refused letters back where they were: the queue stays in arrival order. Before (session 11) they went back
/// at the front, ahead of older letters the predicate had left, so the order, the oldest-age metric and the
/// <see cref="OverflowPolicy.DropOldest"/> victim all changed.
/// </summary>
public sealed class DeadLetterQueueReplayOrderTests
{
    private static DeadLetter<int> Letter(int message) => new(message, "src", "r", null, 1, DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch);

    private static int[] Messages(DeadLetterQueue<int> queue) => queue.Snapshot().Select(l => l.Message).ToArray();

    [Fact]
    public void Replay_FilteredAndRefused_RefusedLettersGoBackWhereTheyWere()
    {
        var time = new ManualTimeProvider();
        using var queue = new DeadLetterQueue<int>(new DeadLetterQueueOptions<int> { Capacity = 8, TimeProvider = time });
        for (int i = 1; i <= 6; i++)
        {
            queue.TryAdd(Letter(i));
        }

        // Even letters chosen; the target takes 2 and refuses 4 (and so keeps 4 and 6).
        ReplayResult result = queue.Replay(l => l.Message == 2, l => l.Message % 2 == 0);

        Assert.Equal(new ReplayResult(1, 2), result);
        Assert.Equal([1, 3, 4, 5, 6], Messages(queue)); // before: [4, 6, 1, 3, 5]
    }

    [Fact]
    public void Replay_FilteredAndRefusedWithAddsDuringIt_AddsStayNewest()
    {
        var time = new ManualTimeProvider();
        using var queue = new DeadLetterQueue<int>(new DeadLetterQueueOptions<int> { Capacity = 8, TimeProvider = time });
        for (int i = 1; i <= 4; i++)
        {
            queue.TryAdd(Letter(i));
        }

        ReplayResult result = queue.Replay(
            l =>
            {
                queue.TryAdd(Letter(10 + l.Message)); // a new failure while the replay runs
                return false;
            },
            l => l.Message >= 2);

        Assert.Equal(new ReplayResult(0, 3), result);
        Assert.Equal([1, 2, 3, 4, 12], Messages(queue)); // before: [2, 3, 4, 1, 12]
    }

    [Fact]
    public void Replay_FilteredAndRefused_DropOldestStillEvictsTheOldest()
    {
        var time = new ManualTimeProvider();
        using var queue = new DeadLetterQueue<int>(new DeadLetterQueueOptions<int> { Capacity = 3, FullMode = OverflowPolicy.DropOldest, TimeProvider = time });
        queue.TryAdd(Letter(1));
        time.Advance(TimeSpan.FromSeconds(5));
        queue.TryAdd(Letter(2));
        queue.TryAdd(Letter(3));

        queue.Replay(_ => false, l => l.Message == 3);

        Assert.Equal(TimeSpan.FromSeconds(5), queue.GetStatistics().OldestAge); // letter 1's age; before: letter 3's (0)
        Assert.Equal(WriteResult.EvictedOldest, queue.TryAdd(Letter(4)));
        Assert.Equal([2, 3, 4], Messages(queue)); // letter 1 evicted; before: letter 3, put back at the front
    }

    [Fact]
    public void Replay_RefusedAndTheQueueFilledMeanwhile_TheOldestRefusedDoNotFit()
    {
        var time = new ManualTimeProvider();
        var dropped = new List<int>();
        using var queue = new DeadLetterQueue<int>(new DeadLetterQueueOptions<int>
        {
            Capacity = 4, TimeProvider = time, ItemDropped = (l, _) => dropped.Add(l.Message),
        });
        for (int i = 1; i <= 4; i++)
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
                    queue.TryAdd(Letter(10)); // two new failures take two of the three freed places
                    queue.TryAdd(Letter(11));
                }

                return false;
            },
            l => l.Message != 1);

        Assert.Equal(new ReplayResult(0, 1, 2), result);
        Assert.Equal([3, 2], dropped); // reported newest first, as before
        Assert.Equal([1, 4, 10, 11], Messages(queue));
        DeadLetterStatistics s = queue.GetStatistics();
        Assert.Equal(s.Added, s.Replayed + s.Removed + s.Evicted + s.Count);
    }
}
