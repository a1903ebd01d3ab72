namespace LockFree.Benchmarks.Infrastructure;

/// <summary>
/// The producer and consumer loops every threaded benchmark shares. On a failed Try* call they count the
/// failure, check for an aborted round, and back off with <see cref="SpinWait"/> (spin, then yield; never
/// sleep), which matters on small machines where the other side may need this core to make progress.
/// </summary>
public static class Transfer
{
    /// <summary>Enqueues the values [first, first + count); returns how many TryEnqueue calls failed (queue full).</summary>
    public static long Produce<TQ>(TQ queue, long first, long count, RoundWorkers workers)
        where TQ : struct, IQueueOps
    {
        long failed = 0;
        long end = first + count;
        for (long value = first; value < end; value++)
        {
            if (queue.TryEnqueue(value))
            {
                continue;
            }

            var spinner = default(SpinWait);
            do
            {
                failed++;
                if (workers.IsAborted)
                {
                    return failed;
                }

                spinner.SpinOnce(sleep1Threshold: -1);
            }
            while (!queue.TryEnqueue(value));
        }

        return failed;
    }

    /// <summary>Dequeues exactly <paramref name="count"/> items; returns their sum and the failed TryDequeue calls (queue empty).</summary>
    public static (long Sum, long Failed) Consume<TQ>(TQ queue, long count, RoundWorkers workers)
        where TQ : struct, IQueueOps
    {
        long sum = 0;
        long failed = 0;
        for (long i = 0; i < count; i++)
        {
            long item;
            if (!queue.TryDequeue(out item))
            {
                var spinner = default(SpinWait);
                do
                {
                    failed++;
                    if (workers.IsAborted)
                    {
                        return (sum, failed);
                    }

                    spinner.SpinOnce(sleep1Threshold: -1);
                }
                while (!queue.TryDequeue(out item));
            }

            sum += item;
        }

        return (sum, failed);
    }

    /// <summary>
    /// One of several consumers: dequeues until every producer has finished (<paramref name="producersDone"/>
    /// reaches <paramref name="producers"/>) and the queue is then empty. Exact for queues whose empty answer
    /// is exact once producers are quiescent (all compared here).
    /// </summary>
    public static (long Sum, long Count, long Failed) ConsumeUntilDrained<TQ>(
        TQ queue, ref int producersDone, int producers, RoundWorkers workers)
        where TQ : struct, IQueueOps
    {
        long sum = 0;
        long count = 0;
        long failed = 0;
        var spinner = default(SpinWait);
        while (true)
        {
            if (queue.TryDequeue(out long item))
            {
                sum += item;
                count++;
                spinner = default;
                continue;
            }

            // acquire: pairs with the producers' Interlocked.Increment after their last enqueue.
            if (Volatile.Read(ref producersDone) == producers)
            {
                if (queue.TryDequeue(out item))
                {
                    sum += item;
                    count++;
                    continue;
                }

                return (sum, count, failed);
            }

            failed++;
            if (workers.IsAborted)
            {
                return (sum, count, failed);
            }

            spinner.SpinOnce(sleep1Threshold: -1);
        }
    }

    /// <summary>Enqueues [first, first + count) in batches of <paramref name="batch"/>.Length; returns failed (zero-progress) calls.</summary>
    public static long ProduceBatches<TQ>(TQ queue, long first, long count, long[] batch, RoundWorkers workers)
        where TQ : struct, IBatchQueueOps
    {
        long failed = 0;
        long next = first;
        long end = first + count;
        while (next < end)
        {
            int size = (int)Math.Min(batch.Length, end - next);
            for (int i = 0; i < size; i++)
            {
                batch[i] = next + i;
            }

            ReadOnlySpan<long> pending = batch.AsSpan(0, size);
            var spinner = default(SpinWait);
            while (!pending.IsEmpty)
            {
                int taken = queue.TryEnqueueMany(pending);
                if (taken > 0)
                {
                    pending = pending[taken..];
                    continue;
                }

                failed++;
                if (workers.IsAborted)
                {
                    return failed;
                }

                spinner.SpinOnce(sleep1Threshold: -1);
            }

            next += size;
        }

        return failed;
    }

    /// <summary>Dequeues exactly <paramref name="count"/> items in batches; returns their sum and the failed (empty) calls.</summary>
    public static (long Sum, long Failed) ConsumeBatches<TQ>(TQ queue, long count, long[] batch, RoundWorkers workers)
        where TQ : struct, IBatchQueueOps
    {
        long sum = 0;
        long failed = 0;
        long remaining = count;
        var spinner = default(SpinWait);
        while (remaining > 0)
        {
            int taken = queue.TryDequeueMany(batch.AsSpan(0, (int)Math.Min(batch.Length, remaining)));
            if (taken == 0)
            {
                failed++;
                if (workers.IsAborted)
                {
                    return (sum, failed);
                }

                spinner.SpinOnce(sleep1Threshold: -1);
                continue;
            }

            spinner = default;
            for (int i = 0; i < taken; i++)
            {
                sum += batch[i];
            }

            remaining -= taken;
        }

        return (sum, failed);
    }

    /// <summary>Polls a yield-free slot every this many failed polls in a latency loop: bounded spinning for oversubscribed machines.</summary>
    private const int PollsPerYield = 1024;

    /// <summary>
    /// The wait step of the latency (ping-pong) loops, called with the running count of failed polls: one
    /// short pause per poll (no exponential backoff, which would quantise the round trip to the backoff
    /// steps), and a yield every <see cref="PollsPerYield"/> polls so a descheduled peer can run.
    /// </summary>
    public static void PollPause(long failedPolls)
    {
        if ((failedPolls & (PollsPerYield - 1)) == 0)
        {
            Thread.Yield();
        }
        else
        {
            Thread.SpinWait(1);
        }
    }

    /// <summary>Dequeues one item for a latency loop, polling with <see cref="PollPause"/>; adds the failed polls to <paramref name="failed"/>.</summary>
    public static long PollOne<TQ>(TQ queue, ref long failed, RoundWorkers workers)
        where TQ : struct, IQueueOps
    {
        long item;
        while (!queue.TryDequeue(out item))
        {
            failed++;
            if (workers.IsAborted)
            {
                return 0;
            }

            PollPause(failed);
        }

        return item;
    }

    /// <summary>Sum of 1..n, the checksum of a round that moves the values 1..n.</summary>
    public static long SumOneTo(long n) => n * (n + 1) / 2;

    /// <summary>Throws (failing the benchmark) when a round lost, duplicated or corrupted items.</summary>
    public static void Check(long actual, long expected, string what)
    {
        if (actual != expected)
        {
            throw new InvalidOperationException($"{what}: expected {expected}, got {actual}.");
        }
    }
}
