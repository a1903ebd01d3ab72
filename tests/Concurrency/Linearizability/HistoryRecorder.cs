using System.Diagnostics;

namespace LockFree.Tests.Concurrency.Linearizability;

/// <summary>
/// Records a real-thread history for the linearizability checker: each thread appends to its own list
/// (no sharing while recording) and timestamps come from <see cref="Stopwatch.GetTimestamp"/>, which is
/// monotonic across cores on the platforms .NET supports.
/// </summary>
public sealed class HistoryRecorder<TInput, TOutput>
{
    private readonly List<Operation<TInput, TOutput>>[] _perThread;

    /// <summary>Creates a recorder for <paramref name="threads"/> threads.</summary>
    public HistoryRecorder(int threads)
    {
        _perThread = new List<Operation<TInput, TOutput>>[threads];
        for (int i = 0; i < threads; i++)
        {
            _perThread[i] = new List<Operation<TInput, TOutput>>();
        }
    }

    /// <summary>Runs <paramref name="call"/> on thread <paramref name="thread"/> and records it with its call and return times.</summary>
    public TOutput Record(int thread, TInput input, Func<TInput, TOutput> call)
    {
        long start = Stopwatch.GetTimestamp();
        Interlocked.MemoryBarrier(); // the call's loads cannot be satisfied before the call time
        TOutput output = call(input);
        // Drain the store buffer before reading the clock: on x64 (TSO) and ARM a store can become visible
        // to other cores after this thread has already read the clock, so without the fence an operation's
        // effect could appear to other threads only after its recorded return, and the checker would reject
        // a correct object (seen here: a TryEnqueue answered "full" 30 ns after a dequeue "returned").
        Interlocked.MemoryBarrier();
        long end = Stopwatch.GetTimestamp();
        _perThread[thread].Add(new Operation<TInput, TOutput>(thread, input, output, start, end));
        return output;
    }

    /// <summary>The operation thread <paramref name="thread"/> recorded last; call from that thread.</summary>
    public Operation<TInput, TOutput> Last(int thread) => _perThread[thread][^1];

    /// <summary>All recorded operations; call after every recording thread has finished.</summary>
    public List<Operation<TInput, TOutput>> History() => _perThread.SelectMany(ops => ops).ToList();
}
