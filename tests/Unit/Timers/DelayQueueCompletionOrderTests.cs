using Xunit;

namespace LockFree.Tests.Unit.Timers;

/// <summary>
/// s11-rev: a parked reader that <see cref="DelayQueue{T}.DequeueAsync"/> wakes with "completed and empty"
/// (<see cref="InvalidOperationException"/>) finds <see cref="DelayQueue{T}.Completion"/> already completed, as the
/// back-pressure buffer and the BCL's channels order it (<c>LockFreeChannelCompletionOrderTests</c>). Before, the queue
/// woke its parked readers first and completed the task after, so a woken reader could see it still running.
/// </summary>
public sealed class DelayQueueCompletionOrderTests
{
    private const int Readers = 256; // woken one by one: the first wake-ups run while the completer is still busy

    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    private static int Rounds => 100 * (int.TryParse(Environment.GetEnvironmentVariable("LOCKFREE_STRESS_SCALE"), out int s) && s > 0 ? s : 1);

    [Fact]
    public async Task ParkedReaders_WokenByTheFinish_FindCompletionCompleted()
    {
        int early = 0;
        int total = 0;
        for (int round = 0; round < Rounds; round++)
        {
            using var queue = new DelayQueue<int>(4);
            var readers = new Task<bool>[Readers];
            for (int i = 0; i < readers.Length; i++)
            {
                readers[i] = DequeueThenLook(queue); // parks: the queue is empty
            }

            var completer = new Thread(() => queue.TryComplete()) { IsBackground = true }; // off the pool: the wake-ups run beside it
            completer.Start();
            Assert.True(completer.Join(Timeout), "the completer hung");
            foreach (Task<bool> reader in readers)
            {
                total++;
                if (!await reader.WaitAsync(Timeout))
                {
                    early++;
                }
            }
        }

        Assert.True(early == 0, $"{early} of {total} woken readers found Completion not yet completed");
    }

    private static async Task<bool> DequeueThenLook(DelayQueue<int> queue)
    {
        try
        {
            await queue.DequeueAsync().ConfigureAwait(false);
            return false; // nothing was ever enqueued
        }
        catch (InvalidOperationException)
        {
            return queue.Completion.IsCompleted;
        }
    }
}
