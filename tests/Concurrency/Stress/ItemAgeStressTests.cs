using System.Diagnostics;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.Stress;

/// <summary>
/// Real-thread stress of the item-age snapshot (<see cref="BackpressureBufferOptions{T}.TrackItemAge"/>): writers
/// and readers run flat out on a small buffer while a monitor thread reads <see cref="BackpressureBuffer{T}.OldestItemAge"/>
/// as fast as it can. The snapshot races the readers (it reads the head slot they are taking), so this checks that
/// it never disturbs them (every item read exactly once) and never answers nonsense (an age below zero or above
/// the time the test has run, as a torn or stale stamp would give).
/// </summary>
[Collection(StressCollection.Name)]
public sealed class ItemAgeStressTests(ITestOutputHelper output)
{
    private const int ItemsPerWriterAtScaleOne = 15_000;

    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    [Theory]
    [InlineData(1, 1, true, true)]
    [InlineData(2, 1, false, true)]
    [InlineData(1, 2, true, false)]
    [InlineData(2, 2, false, false)]
    public void OldestItemAge_UnderConcurrentTraffic_IsSaneAndDisturbsNothing(int writers, int readers, bool singleWriter, bool singleReader)
    {
        int perWriter = checked((int)StressScale.Items(ItemsPerWriterAtScaleOne));
        using var buffer = new BackpressureBuffer<string>(new BackpressureBufferOptions<string>
        {
            Capacity = 16,
            FullMode = OverflowPolicy.Reject,
            SingleWriter = singleWriter,
            SingleReader = singleReader,
            TrackItemAge = true,
        });
        var clock = Stopwatch.StartNew();
        var seen = new int[writers * perWriter];
        int remaining = writers * perWriter;
        long observations = 0, nonZero = 0;
        TimeSpan worst = TimeSpan.Zero;
        Exception? failure = null;
        bool stop = false;

        var threads = new List<Thread>();
        for (int w = 0; w < writers; w++)
        {
            int first = w * perWriter;
            threads.Add(new Thread(() =>
            {
                for (int i = first; i < first + perWriter && !Volatile.Read(ref stop); i++)
                {
                    string item = i.ToString(System.Globalization.CultureInfo.InvariantCulture);
                    while (buffer.TryWrite(item).Outcome != WriteOutcome.Accepted && !Volatile.Read(ref stop))
                    {
                        Thread.SpinWait(20);
                    }
                }
            }));
        }

        for (int r = 0; r < readers; r++)
        {
            threads.Add(new Thread(() =>
            {
                while (Volatile.Read(ref remaining) > 0 && !Volatile.Read(ref stop))
                {
                    if (buffer.TryRead(out string? item))
                    {
                        Interlocked.Increment(ref seen[int.Parse(item, System.Globalization.CultureInfo.InvariantCulture)]);
                        Interlocked.Decrement(ref remaining);
                    }
                    else
                    {
                        Thread.SpinWait(20);
                    }
                }
            }));
        }

        using var monitorRunning = new ManualResetEventSlim();
        var monitor = new Thread(() =>
        {
            while (Volatile.Read(ref remaining) > 0 && !Volatile.Read(ref stop))
            {
                TimeSpan before = clock.Elapsed;
                TimeSpan age = buffer.OldestItemAge!.Value;
                observations++;
                if (age > TimeSpan.Zero)
                {
                    nonZero++;
                }

                if (age < TimeSpan.Zero || age > clock.Elapsed + TimeSpan.FromSeconds(1))
                {
                    failure = new InvalidOperationException($"age {age} at {before} into the run");
                    Volatile.Write(ref stop, true);
                }

                worst = age > worst ? age : worst;
                monitorRunning.Set();
            }
        });

        monitor.Start(); // the monitor reads before any traffic starts, so it overlaps the whole run
        Assert.True(monitorRunning.Wait(StressScale.Timeout(Deadline)), "the monitor never ran");
        threads.ForEach(t => t.Start());
        threads.Add(monitor);
        bool finished = threads.All(t => t.Join(StressScale.Timeout(Deadline)));
        Volatile.Write(ref stop, true);
        Assert.True(finished, $"the run did not finish within {Deadline}: {remaining} items unread");
        Assert.Null(failure);
        Assert.All(seen, count => Assert.Equal(1, count));
        Assert.True(observations > 0, "the monitor never ran");
        // How often the head could be read mid-traffic varies with the machine; correctness is the checks above.
        output.WriteLine($"{observations} observations, {nonZero} non-zero, worst {worst}");
        Assert.Equal(TimeSpan.Zero, buffer.OldestItemAge);
    }
}
