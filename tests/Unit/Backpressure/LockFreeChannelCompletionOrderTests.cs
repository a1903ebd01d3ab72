using System.Threading.Channels;
using Xunit;

namespace LockFree.Tests.Unit.Backpressure;

/// <summary>
/// The order in which a finish (completed and drained) becomes visible: a reader that learns the channel is finished
/// (a parked <c>WaitToReadAsync</c> answering false, a parked <c>ReadAsync</c> throwing <see cref="ChannelClosedException"/>)
/// finds <c>Completion</c> already completed, as the BCL's bounded channel guarantees (it completes the task before it
/// wakes its parked readers). Before (review of 2026-11-23) the buffer woke its parked readers first and completed the
/// task after: a woken reader that looked at <c>Completion.IsCompleted</c> (or its exception) at once saw it still
/// running, in up to 8% of the wake-ups with 64 parked readers and a completer on its own thread on the 2-vCPU VM.
/// </summary>
public sealed class LockFreeChannelCompletionOrderTests
{
    private const int Readers = 256; // FinishAll wakes them one by one: the first wake-ups run while the completer is still busy

    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    private static int Rounds => 20 * (int.TryParse(Environment.GetEnvironmentVariable("LOCKFREE_STRESS_SCALE"), out int s) && s > 0 ? s : 1);

    /// <summary>Multi-reader channels (the parked readers are many): the BCL's and ours over both multi-consumer engines.</summary>
    public static TheoryData<string, bool> KindsAndReadCalls => new()
    {
        { "bcl", false }, { "bcl", true },
        { "lf-mpmc", false }, { "lf-mpmc", true },
        { "lf-spmc", false }, { "lf-spmc", true },
        { "lf-mpmc-error", false }, { "lf-mpmc-error", true },
    };

    [Theory]
    [MemberData(nameof(KindsAndReadCalls))]
    public async Task ParkedReaders_WokenByTheFinish_FindCompletionCompleted(string kind, bool readAsync)
    {
        int early = 0;
        int total = 0;
        for (int round = 0; round < Rounds; round++)
        {
            Channel<int> channel = Create(kind);
            Exception? error = kind.EndsWith("-error", StringComparison.Ordinal) ? new FormatException("boom") : null;
            var readers = new Task<bool>[Readers];
            for (int i = 0; i < readers.Length; i++)
            {
                readers[i] = readAsync ? ReadThenLook(channel) : WaitThenLook(channel); // parks: the channel is empty
            }

            var completer = new Thread(() => channel.Writer.TryComplete(error)) { IsBackground = true }; // off the pool: the wake-ups run beside it
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

        Assert.True(early == 0, $"{kind}: {early} of {total} woken readers found Completion not yet completed");
    }

    [Fact]
    public async Task Buffer_ParkedWaitToReadAsyncWokenByTheFinish_FindsCompletionCompleted()
    {
        int early = 0;
        for (int round = 0; round < Rounds; round++)
        {
            var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int> { Capacity = 4 });
            var readers = new Task<bool>[Readers];
            for (int i = 0; i < readers.Length; i++)
            {
                readers[i] = Look(buffer);
            }

            var completer = new Thread(() => buffer.TryComplete()) { IsBackground = true };
            completer.Start();
            Assert.True(completer.Join(Timeout), "the completer hung");
            foreach (Task<bool> reader in readers)
            {
                early += await reader.WaitAsync(Timeout) ? 0 : 1;
            }
        }

        Assert.Equal(0, early);

        static async Task<bool> Look(BackpressureBuffer<int> buffer)
        {
            bool more = await buffer.WaitToReadAsync().ConfigureAwait(false);
            return !more && buffer.Completion.IsCompleted;
        }
    }

    /// <summary>
    /// Deterministic: the test holds the readers' waiter-list lock, so a completer that finishes the empty buffer stops
    /// where it wakes the parked readers; a reader that finds the buffer finished meanwhile (WaitToReadAsync false at
    /// once, ReadAsync closed at once) must find Completion completed. Before, the finish flag was raised, then the
    /// readers woken, then the task completed: both answered "closed" with Completion still running.
    /// </summary>
    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public void Finish_ReaderThatSeesItBeforeTheParkedAreWoken_FindsCompletionCompleted(bool singleWriter, bool withError)
    {
        Channel<int> channel = LockFreeChannel.CreateBounded<int>(new LockFreeChannelOptions { Capacity = 4, SingleWriter = singleWriter });
        BackpressureBuffer<int> buffer = BufferOf(channel);
        object readersLock = ReadersLock(buffer);
        Exception? error = withError ? new FormatException("boom") : null;
        Thread completer;
        lock (readersLock)
        {
            completer = new Thread(() => channel.Writer.TryComplete(error)) { IsBackground = true };
            completer.Start();
            var waited = System.Diagnostics.Stopwatch.StartNew();
            while (!buffer.IsFinished)
            {
                Assert.True(waited.Elapsed < Timeout, "the completer never finished the empty buffer");
                Thread.Yield();
            }

            // The completer is at (or blocked in) the wake-up of the parked readers, behind the lock we hold.
            ValueTask<bool> wait = channel.Reader.WaitToReadAsync();
            ValueTask<int> read = channel.Reader.ReadAsync();
            Assert.True(wait.IsCompleted && read.IsCompleted, "a finished channel answers at once");
            _ = wait.AsTask().Exception; // observed: a faulted answer is not left for the finalizer
            _ = read.AsTask().Exception;
            Assert.True(channel.Reader.Completion.IsCompleted, "the finish was visible before Completion completed");
            Assert.Equal(withError ? TaskStatus.Faulted : TaskStatus.RanToCompletion, channel.Reader.Completion.Status);
        }

        Assert.True(completer.Join(Timeout), "the completer hung");
    }

    private static BackpressureBuffer<int> BufferOf(Channel<int> channel) =>
        (BackpressureBuffer<int>)channel.Reader.GetType()
            .GetFields(System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic)
            .Single(f => f.FieldType == typeof(BackpressureBuffer<int>))
            .GetValue(channel.Reader)!;

    private static object ReadersLock(BackpressureBuffer<int> buffer)
    {
        const System.Reflection.BindingFlags Private = System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic;
        object readers = typeof(BackpressureBuffer<int>).GetField("_readers", Private)!.GetValue(buffer)!;
        return readers.GetType().GetField("_lock", Private)!.GetValue(readers)!;
    }

    private static async Task<bool> WaitThenLook(Channel<int> channel)
    {
        try
        {
            bool more = await channel.Reader.WaitToReadAsync().ConfigureAwait(false);
            return !more && channel.Reader.Completion.IsCompleted;
        }
        catch (FormatException)
        {
            return channel.Reader.Completion.IsFaulted; // completed with an error: the wait faults with it
        }
    }

    private static async Task<bool> ReadThenLook(Channel<int> channel)
    {
        try
        {
            await channel.Reader.ReadAsync().ConfigureAwait(false);
            return false; // nothing was written
        }
        catch (ChannelClosedException)
        {
            return channel.Reader.Completion.IsCompleted;
        }
    }

    private static Channel<int> Create(string kind) => kind switch
    {
        "bcl" => Channel.CreateBounded<int>(new BoundedChannelOptions(4)),
        "lf-mpmc" or "lf-mpmc-error" => LockFreeChannel.CreateBounded<int>(new LockFreeChannelOptions { Capacity = 4 }),
        "lf-spmc" => LockFreeChannel.CreateBounded<int>(new LockFreeChannelOptions { Capacity = 4, SingleWriter = true }),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown kind."),
    };
}
