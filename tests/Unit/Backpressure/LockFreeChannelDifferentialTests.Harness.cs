using System.Threading.Channels;
using Xunit;

namespace LockFree.Tests.Unit.Backpressure;

/// <content>The harness: running a scenario on both implementations, and the transcript of what a caller saw.</content>
public sealed partial class LockFreeChannelDifferentialTests
{
    private static async Task<List<int>> ReadAll(Channel<int> channel, CancellationToken token)
    {
        var items = new List<int>();
        await foreach (int item in channel.Reader.ReadAllAsync(token))
        {
            items.Add(item);
        }

        return items;
    }

    private static async Task AssertSameAsBcl(
        bool singleReader,
        bool singleWriter,
        OverflowPolicy mode,
        Func<Channel<int>, Transcript, Task> scenario,
        Action<int>? itemDropped = null,
        int capacity = Capacity)
    {
        var bcl = new Transcript();
        await scenario(
            Channel.CreateBounded<int>(new BoundedChannelOptions(capacity)
            {
                SingleReader = singleReader,
                SingleWriter = singleWriter,
                FullMode = mode switch
                {
                    OverflowPolicy.Wait => BoundedChannelFullMode.Wait,
                    OverflowPolicy.DropIncoming => BoundedChannelFullMode.DropWrite,
                    OverflowPolicy.DropOldest => BoundedChannelFullMode.DropOldest,
                    _ => throw new ArgumentOutOfRangeException(nameof(mode), mode, "No BCL twin."),
                },
            },
            itemDropped),
            bcl);
        var ours = new Transcript();
        await scenario(
            LockFreeChannel.CreateBounded<int>(new LockFreeChannelOptions
            {
                Capacity = capacity,
                SingleReader = singleReader,
                SingleWriter = singleWriter,
                FullMode = mode,
            },
            itemDropped is null ? null : (item, _) => itemDropped(item)),
            ours);
        Assert.Equal(bcl.Text, ours.Text);
    }

    private static void Fill(Channel<int> channel, int count = Capacity)
    {
        for (int i = 0; i < count; i++)
        {
            Assert.True(channel.Writer.TryWrite(i));
        }
    }

    private static List<int> Drain(Channel<int> channel)
    {
        var items = new List<int>();
        while (channel.Reader.TryRead(out int item))
        {
            items.Add(item);
        }

        return items;
    }

    /// <summary>What a caller saw, line by line.</summary>
    private sealed class Transcript
    {
        private readonly List<string> _lines = [];

        public string Text => string.Join(Environment.NewLine, _lines);

        public void Add(string line) => _lines.Add(line);

        /// <summary>Waits (bounded) for <paramref name="task"/> and records its state, result or exception.</summary>
        public async Task Outcome(string name, Task task)
        {
            try
            {
                await task.WaitAsync(Timeout).ConfigureAwait(false);
            }
            catch (TimeoutException) when (!task.IsCompleted)
            {
                Add($"{name}: still pending after {Timeout.TotalSeconds} s");
                return;
            }
            catch (Exception)
            {
                // recorded below from the task itself
            }

            string result = task.Status == TaskStatus.RanToCompletion && task.GetType().IsGenericType
                ? $" = {task.GetType().GetProperty("Result")!.GetValue(task)}"
                : string.Empty;
            Exception? error = task.Exception?.InnerException;
            if (task.IsCanceled)
            {
                try
                {
                    await task.ConfigureAwait(false);
                }
                catch (OperationCanceledException canceled)
                {
                    error = canceled;
                }
            }

            string failure = error is null
                ? string.Empty
                : $" {error.GetType().Name} (inner {error.InnerException?.GetType().Name ?? "none"}"
                    + (error is OperationCanceledException oce ? $", token canceled {oce.CancellationToken.IsCancellationRequested}" : string.Empty) + ")";
            Add($"{name}: {task.Status}{result}{failure}");
        }
    }
}
