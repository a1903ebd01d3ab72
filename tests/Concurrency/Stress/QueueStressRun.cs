using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;

namespace LockFree.Tests.Concurrency.Stress;

/// <summary>A queue's TryPeek, bound to the queue (single-consumer queues only).</summary>
public delegate bool PeekFunc<T>([MaybeNullWhen(false)] out T item);

/// <summary>How a stress run ended: the accounting report, thread failures, and whether it finished in time.</summary>
public sealed record QueueStressOutcome(ExactlyOnceReport Report, IReadOnlyList<Exception> ThreadFailures, bool TimedOut, string Progress, TimeSpan Elapsed);

/// <summary>
/// Runs producers and consumers on real threads against one queue, mixing single and batch operations at
/// random (seeded), and accounts for every item with <see cref="ExactlyOnceChecker"/>.
/// </summary>
/// <remarks>
/// The machine may have fewer cores than threads, so a thread that finds the queue full or empty backs off
/// with <see cref="SpinWait"/> (spin, then yield) rather than burning its time slice. Consumers stop once
/// every producer has finished and a dequeue started after that finds the queue empty (empty answers are
/// exact), so a queue that loses items still ends and the checker reports the loss.
/// </remarks>
public static class QueueStressRun
{
    /// <summary>Longest batch a thread passes to TryEnqueueMany / TryDequeueMany.</summary>
    public const int MaxBatch = 8;

    /// <summary>How long threads get to notice the stop flag after a timeout.</summary>
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(2);

    /// <summary>A run in which no item moves for this long is livelocked or deadlocked: fail it without waiting out the timeout.</summary>
    private static readonly TimeSpan StallLimit = TimeSpan.FromSeconds(10);

    private static readonly TimeSpan WatchInterval = TimeSpan.FromMilliseconds(50);

    /// <summary>Runs the scenario with <c>long</c> items.</summary>
    public static QueueStressOutcome Run(
        IBoundedQueue<long> queue,
        int producers,
        int consumers,
        long itemsPerProducer,
        TimeSpan timeout,
        int seed,
        PeekFunc<long>? peek = null) =>
        Run(queue, item => item, item => item, producers, consumers, itemsPerProducer, timeout, seed, peek);

    /// <summary>Runs the scenario with items of type <typeparamref name="T"/> that carry an encoded long.</summary>
    public static QueueStressOutcome Run<T>(
        IBoundedQueue<T> queue,
        Func<long, T> wrap,
        Func<T, long> unwrap,
        int producers,
        int consumers,
        long itemsPerProducer,
        TimeSpan timeout,
        int seed,
        PeekFunc<T>? peek = null)
    {
        if (peek is not null && consumers != 1)
        {
            throw new ArgumentException("TryPeek needs a single consumer.", nameof(peek));
        }

        var failures = new ConcurrentQueue<Exception>();
        var produced = new long[producers];
        var logs = new List<long>[consumers];
        var consumed = new long[consumers];
        int producersDone = 0;
        int stop = 0;
        var threads = new List<Thread>();

        for (int p = 0; p < producers; p++)
        {
            int id = p;
            threads.Add(new Thread(() => Guard(failures, () => Produce(id))) { IsBackground = true, Name = $"stress producer {id}" });
        }

        for (int c = 0; c < consumers; c++)
        {
            int id = c;
            logs[id] = new List<long>();
            threads.Add(new Thread(() => Guard(failures, () => Consume(id))) { IsBackground = true, Name = $"stress consumer {id}" });
        }

        var clock = Stopwatch.StartNew();
        foreach (Thread thread in threads)
        {
            thread.Start();
        }

        // Watch instead of a plain join: a run that stops moving items fails after StallLimit, not the whole timeout.
        bool timedOut = false;
        string why = string.Empty;
        long lastMoved = -1;
        TimeSpan lastProgress = TimeSpan.Zero;
        foreach (Thread thread in threads)
        {
            while (!thread.Join(WatchInterval))
            {
                long moved = Enumerable.Range(0, producers).Sum(p => Volatile.Read(ref produced[p]))
                    + Enumerable.Range(0, consumers).Sum(c => Volatile.Read(ref consumed[c]));
                if (moved != lastMoved)
                {
                    (lastMoved, lastProgress) = (moved, clock.Elapsed);
                }

                if (clock.Elapsed > timeout || clock.Elapsed - lastProgress > StallLimit)
                {
                    timedOut = true;
                    why = clock.Elapsed > timeout ? $"timeout {timeout}" : $"no item moved for {StallLimit}";
                    break;
                }
            }

            if (timedOut)
            {
                break;
            }
        }

        string stuck = string.Empty;
        if (timedOut)
        {
            // The threads poll the stop flag between operations; one still running after the grace period is
            // stuck inside a queue operation (a livelock in the queue). It is a background thread, so it does
            // not keep the test process alive.
            Volatile.Write(ref stop, 1);
            TimeSpan grace = clock.Elapsed + StopGrace;
            foreach (Thread thread in threads)
            {
                TimeSpan left = grace - clock.Elapsed;
                thread.Join(left > TimeSpan.Zero ? left : TimeSpan.Zero);
            }

            stuck = string.Join(", ", threads.Where(thread => thread.IsAlive).Select(thread => thread.Name));
            stuck = stuck.Length > 0 ? $"; still inside a queue call after stop: {stuck}" : string.Empty;
        }

        clock.Stop();
        string progress =
            $"{(timedOut ? $"stopped ({why}): " : string.Empty)}produced [{string.Join(", ", Enumerable.Range(0, producers).Select(p => Volatile.Read(ref produced[p])))}] of {itemsPerProducer} each, " +
            $"consumed [{string.Join(", ", logs.Select(log => log.Count))}], producers done {Volatile.Read(ref producersDone)}/{producers}{stuck}";
        // After a timeout a stuck thread is inside a queue call, not appending to its log, so reading the logs is safe.
        var report = new ExactlyOnceChecker(producers, itemsPerProducer).Check(logs);
        return new QueueStressOutcome(report, [.. failures], timedOut, progress, clock.Elapsed);

        void Produce(int id)
        {
            try
            {
                ProduceItems(id);
            }
            finally
            {
                Interlocked.Increment(ref producersDone); // even after a failure, so the consumers still end
            }
        }

        void ProduceItems(int id)
        {
            var random = new Random(HashCode.Combine(seed, "producer", id));
            var batch = new T[MaxBatch];
            var spinner = default(SpinWait);
            long next = 0;
            while (next < itemsPerProducer && Volatile.Read(ref stop) == 0)
            {
                int added;
                if (random.Next(3) == 0)
                {
                    int length = (int)Math.Min(random.Next(1, MaxBatch + 1), itemsPerProducer - next);
                    for (int i = 0; i < length; i++)
                    {
                        batch[i] = wrap(ExactlyOnceChecker.Encode(id, next + i));
                    }

                    added = queue.TryEnqueueMany(batch.AsSpan(0, length));
                    if (added < 0 || added > length)
                    {
                        throw new InvalidOperationException($"TryEnqueueMany of {length} returned {added}.");
                    }
                }
                else
                {
                    added = queue.TryEnqueue(wrap(ExactlyOnceChecker.Encode(id, next))) ? 1 : 0;
                }

                next += added;
                Volatile.Write(ref produced[id], next);
                Backoff(ref spinner, added > 0);
            }
        }

        void Consume(int id)
        {
            var random = new Random(HashCode.Combine(seed, "consumer", id));
            var batch = new T[MaxBatch];
            var spinner = default(SpinWait);
            List<long> log = logs[id];
            int iteration = 0;
            while (Volatile.Read(ref stop) == 0)
            {
                if ((++iteration & 63) == 0)
                {
                    int count = queue.Count; // a snapshot, but always within [0, Capacity]
                    if (count < 0 || count > queue.Capacity)
                    {
                        throw new InvalidOperationException($"Count {count} outside [0, {queue.Capacity}].");
                    }
                }

                // Read before the attempt: if every producer had finished before it started, an empty answer is final.
                bool allProduced = Volatile.Read(ref producersDone) == producers;
                int taken;
                int choice = random.Next(peek is null ? 3 : 4);
                if (choice == 3)
                {
                    taken = PeekThenDequeue(peek!, log);
                }
                else if (choice == 0)
                {
                    int length = random.Next(1, MaxBatch + 1);
                    taken = queue.TryDequeueMany(batch.AsSpan(0, length));
                    if (taken < 0 || taken > length)
                    {
                        throw new InvalidOperationException($"TryDequeueMany of {length} returned {taken}.");
                    }

                    for (int i = 0; i < taken; i++)
                    {
                        log.Add(Unwrap(batch[i]));
                    }
                }
                else
                {
                    taken = queue.TryDequeue(out T? item) ? 1 : 0;
                    if (taken == 1)
                    {
                        log.Add(Unwrap(item!));
                    }
                }

                if (taken > 0)
                {
                    Volatile.Write(ref consumed[id], log.Count);
                }

                if (taken == 0 && allProduced)
                {
                    return;
                }

                Backoff(ref spinner, taken > 0);
            }
        }

        // Single consumer: once TryPeek has seen an item, nothing but this thread can remove it.
        int PeekThenDequeue(PeekFunc<T> tryPeek, List<long> log)
        {
            if (!tryPeek(out T? peeked))
            {
                return 0;
            }

            if (!queue.TryDequeue(out T? item))
            {
                throw new InvalidOperationException($"TryPeek saw {peeked} but TryDequeue found the queue empty.");
            }

            if (!EqualityComparer<T>.Default.Equals(peeked, item))
            {
                throw new InvalidOperationException($"TryPeek saw {peeked} but TryDequeue took {item}.");
            }

            log.Add(Unwrap(item));
            return 1;
        }

        long Unwrap(T item) => item is null ? -1 : unwrap(item); // -1: the checker reports it as invented
    }

    private static void Backoff(ref SpinWait spinner, bool progressed)
    {
        if (progressed)
        {
            spinner.Reset();
        }
        else
        {
            spinner.SpinOnce(sleep1Threshold: -1); // spin, then yield; never Sleep(1), which would dominate small capacities
        }
    }

    private static void Guard(ConcurrentQueue<Exception> failures, Action body)
    {
        try
        {
            body();
        }
        catch (Exception exception)
        {
            failures.Enqueue(exception);
        }
    }
}
