using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Threading.Channels;

namespace LockFree.Benchmarks.Infrastructure;

/// <summary>
/// Non-blocking queue operations as a struct constraint, so one harness loop serves every queue and the JIT
/// specialises and inlines it per queue (a generic over the sealed queue classes would be shared code with
/// interface dispatch, which would penalise exactly the calls being measured).
/// </summary>
public interface IQueueOps
{
    /// <summary>Adds an item; false when full.</summary>
    bool TryEnqueue(long item);

    /// <summary>Removes an item; false when empty.</summary>
    bool TryDequeue(out long item);
}

/// <summary>Batch operations, for the queues that have them.</summary>
public interface IBatchQueueOps : IQueueOps
{
    /// <summary>Adds a prefix of <paramref name="items"/>; returns its length.</summary>
    int TryEnqueueMany(ReadOnlySpan<long> items);

    /// <summary>Removes up to <c>destination.Length</c> items; returns how many.</summary>
    int TryDequeueMany(Span<long> destination);
}

public readonly struct SpscOps(SpscQueue<long> queue) : IBatchQueueOps
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public bool TryEnqueue(long item) => queue.TryEnqueue(item);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public bool TryDequeue(out long item) => queue.TryDequeue(out item);
    public int TryEnqueueMany(ReadOnlySpan<long> items) => queue.TryEnqueueMany(items);
    public int TryDequeueMany(Span<long> destination) => queue.TryDequeueMany(destination);
}

public readonly struct MpscOps(MpscQueue<long> queue) : IBatchQueueOps
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public bool TryEnqueue(long item) => queue.TryEnqueue(item);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public bool TryDequeue(out long item) => queue.TryDequeue(out item);
    public int TryEnqueueMany(ReadOnlySpan<long> items) => queue.TryEnqueueMany(items);
    public int TryDequeueMany(Span<long> destination) => queue.TryDequeueMany(destination);
}

public readonly struct SpmcOps(SpmcQueue<long> queue) : IBatchQueueOps
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public bool TryEnqueue(long item) => queue.TryEnqueue(item);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public bool TryDequeue(out long item) => queue.TryDequeue(out item);
    public int TryEnqueueMany(ReadOnlySpan<long> items) => queue.TryEnqueueMany(items);
    public int TryDequeueMany(Span<long> destination) => queue.TryDequeueMany(destination);
}

public readonly struct MpmcOps(MpmcQueue<long> queue) : IBatchQueueOps
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public bool TryEnqueue(long item) => queue.TryEnqueue(item);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public bool TryDequeue(out long item) => queue.TryDequeue(out item);
    public int TryEnqueueMany(ReadOnlySpan<long> items) => queue.TryEnqueueMany(items);
    public int TryDequeueMany(Span<long> destination) => queue.TryDequeueMany(destination);
}

/// <summary>The unbounded BCL peer: never full.</summary>
public readonly struct ConcurrentQueueOps(ConcurrentQueue<long> queue) : IQueueOps
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public bool TryEnqueue(long item) { queue.Enqueue(item); return true; }
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public bool TryDequeue(out long item) => queue.TryDequeue(out item);
}

/// <summary>
/// Bounded <see cref="BlockingCollection{T}"/> used as designed: its semaphores do the waiting. The calls
/// block for up to <see cref="WaitMilliseconds"/> and report failure only on that timeout, so a round whose
/// other side died still ends (the harness checks for an aborted round on every failure).
/// </summary>
public readonly struct BlockingCollectionOps(BlockingCollection<long> collection) : IQueueOps
{
    /// <summary>Longest a single blocking call waits before the harness rechecks for an aborted round.</summary>
    private const int WaitMilliseconds = 100;

    public bool TryEnqueue(long item) => collection.TryAdd(item, WaitMilliseconds);
    public bool TryDequeue(out long item) => collection.TryTake(out item, WaitMilliseconds);
}

/// <summary>
/// Bounded <see cref="BlockingCollection{T}"/> through its non-blocking <c>TryAdd</c>/<c>TryTake</c> (zero timeout);
/// the harness spins on failure, as for the channels. Used where a blocking wait would stall the end of a
/// many-consumer round (a consumer blocked in <c>TryTake</c> only learns the producers are done when it times out).
/// </summary>
public readonly struct BlockingCollectionTryOps(BlockingCollection<long> collection) : IQueueOps
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public bool TryEnqueue(long item) => collection.TryAdd(item);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public bool TryDequeue(out long item) => collection.TryTake(out item);
}

/// <summary>A channel through its non-blocking <c>TryWrite</c>/<c>TryRead</c>; the harness spins on failure.</summary>
public readonly struct ChannelOps(Channel<long> channel) : IQueueOps
{
    private readonly ChannelWriter<long> _writer = channel.Writer;
    private readonly ChannelReader<long> _reader = channel.Reader;

    [MethodImpl(MethodImplOptions.AggressiveInlining)] public bool TryEnqueue(long item) => _writer.TryWrite(item);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public bool TryDequeue(out long item) => _reader.TryRead(out item);
}

/// <summary>Channel factories with the options the benchmarks compare against.</summary>
public static class Channels
{
    /// <summary>Bounded, <see cref="BoundedChannelFullMode.Wait"/>, the given reader/writer multiplicity.</summary>
    public static Channel<long> Bounded(int capacity, bool singleWriter, bool singleReader) =>
        Channel.CreateBounded<long>(new BoundedChannelOptions(capacity)
        {
            SingleWriter = singleWriter,
            SingleReader = singleReader,
            FullMode = BoundedChannelFullMode.Wait,
            AllowSynchronousContinuations = false,
        });

    /// <summary>Unbounded, with the given reader/writer multiplicity.</summary>
    public static Channel<long> Unbounded(bool singleWriter, bool singleReader) =>
        Channel.CreateUnbounded<long>(new UnboundedChannelOptions { SingleWriter = singleWriter, SingleReader = singleReader });

    /// <summary>Unbounded, single reader and single writer (the SPSC-specialised implementation).</summary>
    public static Channel<long> UnboundedSpsc() =>
        Channel.CreateUnbounded<long>(new UnboundedChannelOptions { SingleWriter = true, SingleReader = true });
}
