using System.Reflection;
using LockFree.Backpressure;
using Xunit;

namespace LockFree.Tests.Unit.Backpressure;

/// <summary>
/// The buffer's finish (completed and drained) wakes every parked reader, also one that parked while an earlier
/// reader was between linking its waiter and registering it in the gate. <see cref="WaiterList.FinishAll"/> used to pop
/// at most as many waiters as the gate counted: the unregistered waiter at the head used up that budget (and popping it
/// took its registration off the count before it was put on), so the registered reader behind it, which had rechecked
/// and parked, was never woken: a reader task of the MPMC stress run stayed WaitingForActivation beside a completed,
/// drained buffer. The window is held open with <see cref="WaiterList.BeforeRegister"/>.
/// </summary>
public sealed class BackpressureFinishWakeTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(10);

    public enum ParkedReader
    {
        /// <summary><c>WaitToReadAsync</c> (what <c>ReadAllAsync</c> awaits).</summary>
        WaitToReadAsync,

        /// <summary><c>TryRead(out, Timeout.InfiniteTimeSpan)</c> on a thread.</summary>
        BlockingTryRead,
    }

    [Theory]
    [InlineData(ParkedReader.WaitToReadAsync, false)]
    [InlineData(ParkedReader.WaitToReadAsync, true)]
    [InlineData(ParkedReader.BlockingTryRead, false)]
    [InlineData(ParkedReader.BlockingTryRead, true)]
    public async Task Finish_ReaderParkedBehindAReaderNotYetRegistered_IsWoken(ParkedReader kind, bool singleWriter)
    {
        // MPMC (or SPMC): many readers. The first reader links and stops before its registration; the second links
        // behind it, registers, rechecks (empty, not finished) and parks; then the buffer completes empty, which
        // finishes it at once (TryComplete's own FinishAll(Completed), then its FinishAll(Signaled)).
        using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int> { Capacity = 2, SingleWriter = singleWriter });
        WaiterList readers = Readers(buffer);
        using var releaseFirst = new ManualResetEventSlim();
        using ManualResetEventSlim firstLinked = HoldFirstBeforeRegister(readers, releaseFirst);

        Task<bool> first = Task.Factory.StartNew(() => buffer.WaitToReadAsync().AsTask(), TaskCreationOptions.LongRunning).Unwrap();
        Assert.True(firstLinked.Wait(Generous), "the first reader never parked");

        Task<bool> second = ParkReader(buffer, readers, kind);
        Thread.Sleep(20); // the blocking reader: past its recheck and its spins, into the event wait (either way it must be woken)
        Assert.False(second.IsCompleted);

        Assert.True(buffer.TryComplete());
        releaseFirst.Set();

        Assert.True(await Ends(first), "the first reader was never answered");
        Assert.False(await first);
        bool woken = await Ends(second);
        string state = $"second reader {second.Status}, readers still linked {readers.Count}, finished {buffer.IsFinished}";
        buffer.Dispose(); // wakes a reader left parked, so a failure does not leave a thread behind
        Assert.True(woken, $"the parked reader was not woken by the finish: {state}");
        Assert.False(await second);
        Assert.True(buffer.Completion.IsCompletedSuccessfully);
    }

    [Theory]
    [InlineData(ParkedReader.WaitToReadAsync)]
    [InlineData(ParkedReader.BlockingTryRead)]
    public async Task Write_ReaderParkedBehindAReaderNotYetRegistered_IsWoken(ParkedReader kind)
    {
        // The same window under a write's wake-up (FinishAll(Signaled) of every parked reader): the registered reader
        // slept beside the item; had another reader taken it after the buffer completed, the finish (whose FinishAll
        // was bounded by the count the same way) left it asleep as well.
        using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int> { Capacity = 2 });
        WaiterList readers = Readers(buffer);
        using var releaseFirst = new ManualResetEventSlim();
        using ManualResetEventSlim firstLinked = HoldFirstBeforeRegister(readers, releaseFirst);

        Task<bool> first = Task.Factory.StartNew(() => buffer.WaitToReadAsync().AsTask(), TaskCreationOptions.LongRunning).Unwrap();
        Assert.True(firstLinked.Wait(Generous), "the first reader never parked");
        Task<bool> second = ParkReader(buffer, readers, kind);
        Thread.Sleep(20);
        Assert.False(second.IsCompleted);

        Assert.True(buffer.TryWrite(7).IsAccepted);
        bool woken = await Ends(second);
        string state = $"second reader {second.Status}, readers still linked {readers.Count}, count {buffer.Count}";
        releaseFirst.Set();
        Assert.True(await Ends(first), "the first reader was never answered");
        buffer.Dispose(); // wakes a reader left parked
        Assert.True(woken, $"the parked reader was not woken by the write: {state}");
        Assert.True(await second);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Complete_WriterParkedBehindAWriterNotYetRegistered_AnswersCompleted(bool probe)
    {
        // The writers' side of the same bound: completion's FinishAll(Completed) of the parked writers ran once, so a
        // WriteAsync (or WaitToWriteAsync) parked behind a writer that had linked but not registered never returned.
        using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int> { Capacity = 1 });
        WaiterList writers = List(buffer, "_writers");
        Assert.True(buffer.TryWrite(1).IsAccepted); // full
        using var releaseFirst = new ManualResetEventSlim();
        using ManualResetEventSlim firstLinked = HoldFirstBeforeRegister(writers, releaseFirst);

        Task<WriteResult> first = Task.Factory.StartNew(() => buffer.WriteAsync(2).AsTask(), TaskCreationOptions.LongRunning).Unwrap();
        Assert.True(firstLinked.Wait(Generous), "the first writer never parked");
        Task second = probe ? buffer.WaitToWriteAsync().AsTask() : buffer.WriteAsync(3).AsTask();
        Assert.True(SpinWait.SpinUntil(() => writers.Count == 1, Generous), "the second writer never registered");
        Assert.False(second.IsCompleted);

        Assert.True(buffer.TryComplete());
        releaseFirst.Set();
        Assert.True(await Ends(first), "the first writer was never answered");
        Assert.Equal(WriteResult.Completed, await first);
        bool woken = await Ends(second);
        string state = $"second writer {second.Status}, writers still linked {writers.Count}";
        buffer.Dispose(); // wakes a writer left parked
        Assert.True(woken, $"the parked writer was not answered after completion: {state}");
        if (second is Task<bool> probed)
        {
            Assert.False(await probed);
        }
        else
        {
            Assert.Equal(WriteResult.Completed, await (Task<WriteResult>)second);
        }
    }

    /// <summary>
    /// Holds the first waiter that links on <paramref name="list"/> between its link and its registration until
    /// <paramref name="release"/> is set; the returned event is set once it is held there.
    /// </summary>
    private static ManualResetEventSlim HoldFirstBeforeRegister(WaiterList list, ManualResetEventSlim release)
    {
        var held = new ManualResetEventSlim();
        int hooked = 0;
        list.BeforeRegister = () =>
        {
            if (Interlocked.Exchange(ref hooked, 1) == 0)
            {
                held.Set();
                release.Wait(Generous);
            }
        };
        return held;
    }

    /// <summary>Starts a reader of <paramref name="kind"/> and waits until it has registered behind the held one.</summary>
    private static Task<bool> ParkReader(BackpressureBuffer<int> buffer, WaiterList readers, ParkedReader kind)
    {
        Task<bool> reader = kind == ParkedReader.WaitToReadAsync
            ? buffer.WaitToReadAsync().AsTask()
            : Task.Factory.StartNew(() => buffer.TryRead(out _, Timeout.InfiniteTimeSpan), TaskCreationOptions.LongRunning);
        Assert.True(SpinWait.SpinUntil(() => readers.Count == 1, Generous), "the second reader never registered");
        return reader;
    }

    private static async Task<bool> Ends(Task task) => await Task.WhenAny(task, Task.Delay(Generous)).ConfigureAwait(false) == task;

    private static WaiterList Readers(BackpressureBuffer<int> buffer) => List(buffer, "_readers");

    private static WaiterList List(BackpressureBuffer<int> buffer, string field) =>
        (WaiterList)typeof(BackpressureBuffer<int>).GetField(field, BindingFlags.NonPublic | BindingFlags.Instance)!.GetValue(buffer)!;
}
