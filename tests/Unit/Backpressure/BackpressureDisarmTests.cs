using Xunit;

namespace LockFree.Tests.Unit.Backpressure;

/// <summary>
/// A side played by one thread returns to its fence-free fast path once nobody waits (ParkingGate, "Disarming"):
/// after a park, <see cref="BackpressureBuffer{T}.QuietChecksBeforeDisarm"/> operations that find no waiter clear the
/// side's Parked bit, and a later park sets it again and is still woken. A side of many threads (a CAS claim per
/// operation) disarms once that many items were claimed since the last park (ParkingGate, "Disarming a side played by
/// many threads"). Real threads; every wait is bounded by a generous timeout.
/// </summary>
public sealed class BackpressureDisarmTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    private static BackpressureBuffer<int> Create(bool singleWriter, bool singleReader) =>
        new(new BackpressureBufferOptions<int>
        {
            Capacity = 1,
            FullMode = OverflowPolicy.Wait,
            SingleWriter = singleWriter,
            SingleReader = singleReader,
        });

    [Theory]
    [InlineData(true, true)] // SPSC
    [InlineData(false, true)] // MPSC: the one reader signals the many writers
    [InlineData(true, false)] // SPMC: the many readers (and evictions) signal the one writer, each after a CAS claim
    [InlineData(false, false)] // MPMC
    public async Task Reads_AfterWriterParkAndQuietReads_StopAskingAndAParkAfterwardsIsWoken(bool singleWriter, bool singleReader)
    {
        // One reader disarms after QuietChecksBeforeDisarm reads that found no writer waiting; many readers once that
        // many items were claimed since the writer parked (ParkingGate, "Disarming a side played by many threads").
        using BackpressureBuffer<int> buffer = Create(singleWriter, singleReader);
        int next = 0;
        for (int round = 0; round < 2; round++)
        {
            // Fill, then a writer blocks for room: it parks, which makes reads ask the writers' gate.
            Assert.Equal(WriteResult.Accepted, buffer.TryWrite(next++));
            int parked = next++;
            Task<WriteResult> writer = Task.Factory.StartNew(() => buffer.Write(parked, Generous), TaskCreationOptions.LongRunning);
            AwaitTrue(() => buffer.ReadsAskWriters || writer.IsCompleted);
            Assert.True(buffer.TryRead(out _));
            Assert.Equal(WriteResult.Accepted, await writer.WaitAsync(Generous)); // a lost wake-up times out

            // Quiet operations: the readers find no writer waiting and, after enough of them, disarm.
            for (int i = 0; i < BackpressureBuffer<int>.QuietChecksBeforeDisarm + 1; i++)
            {
                Assert.True(buffer.TryRead(out _));
                Assert.Equal(WriteResult.Accepted, buffer.TryWrite(next++));
            }

            Assert.False(buffer.ReadsAskWriters);
            Assert.True(buffer.TryRead(out _));
            Assert.Equal(0, buffer.Count);
        }
    }

    [Theory]
    [InlineData(true, true)] // SPSC
    [InlineData(true, false)] // SPMC: the one writer signals the many readers
    [InlineData(false, true)] // MPSC: the many writers signal the one reader, each after a CAS claim
    [InlineData(false, false)] // MPMC
    public async Task Writes_AfterReaderParkAndQuietWrites_StopAskingAndAParkAfterwardsIsWoken(bool singleWriter, bool singleReader)
    {
        using BackpressureBuffer<int> buffer = Create(singleWriter, singleReader);
        for (int round = 0; round < 2; round++)
        {
            // Empty: a reader waits for an item; its park makes writes ask the readers' gate.
            Task<int> reader = Task.Run(async () => await buffer.ReadAsync());
            AwaitTrue(() => buffer.WritesAskReaders || reader.IsCompleted);
            Assert.Equal(WriteResult.Accepted, buffer.TryWrite(round));
            Assert.Equal(round, await reader.WaitAsync(Generous)); // a lost wake-up times out

            for (int i = 0; i < BackpressureBuffer<int>.QuietChecksBeforeDisarm + 1; i++)
            {
                Assert.Equal(WriteResult.Accepted, buffer.TryWrite(i));
                Assert.True(buffer.TryRead(out _));
            }

            Assert.False(buffer.WritesAskReaders);
        }
    }

    [Fact]
    public async Task ManyWritersAndReaders_BurstsThatParkBetweenQuietSpells_EveryItemDeliveredOnce()
    {
        // Two writer and two reader threads on an MPMC buffer of capacity 4. Each round: a quiet spell (TryWrite /
        // TryRead with spins, long enough for both sides to disarm), then a burst of blocking calls in which both
        // sides park and re-arm, racing the other threads' disarms. A lost wake-up hangs a blocking call until its
        // generous timeout; every item must arrive exactly once.
        using var buffer = new BackpressureBuffer<int>(new BackpressureBufferOptions<int> { Capacity = 4, FullMode = OverflowPolicy.Wait });
        const int Rounds = 4;
        const int Burst = 256;
        int quiet = BackpressureBuffer<int>.QuietChecksBeforeDisarm + 64;
        int perWriter = Rounds * (quiet + Burst);
        var seen = new int[2 * perWriter];
        int phase = 0; // odd during writer 0's bursts: readers block only then, so the quiet spells are quiet for both gates
        int disarmedRounds = 0; // rounds at whose quiet spell's end writer 0 saw both sides disarmed
        Task[] writers = new Task[2];
        for (int w = 0; w < 2; w++)
        {
            int first = w * perWriter;
            writers[w] = Task.Factory.StartNew(
                () =>
                {
                    int value = first;
                    for (int round = 0; round < Rounds; round++)
                    {
                        if (first == 0)
                        {
                            Volatile.Write(ref phase, 2 * round);
                        }

                        for (int i = 0; i < quiet; i++, value++)
                        {
                            while (buffer.TryWrite(value).Outcome != WriteOutcome.Accepted)
                            {
                                Thread.SpinWait(8);
                            }
                        }

                        if (first == 0)
                        {
                            if (!buffer.WritesAskReaders && !buffer.ReadsAskWriters)
                            {
                                disarmedRounds++;
                            }

                            Volatile.Write(ref phase, (2 * round) + 1);
                        }

                        for (int i = 0; i < Burst; i++, value++)
                        {
                            Assert.Equal(WriteOutcome.Accepted, buffer.Write(value, Generous).Outcome); // timed out: a lost wake-up
                        }
                    }
                },
                TaskCreationOptions.LongRunning);
        }

        int remaining = 2 * perWriter;
        Task[] readers = new Task[2];
        for (int r = 0; r < 2; r++)
        {
            int id = r;
            readers[r] = Task.Factory.StartNew(
                () =>
                {
                    int taken = 0;
                    while (true)
                    {
                        int item;
                        if ((Volatile.Read(ref phase) & 1) == 0 || (taken++ & 1) == 0)
                        {
                            if (!buffer.TryRead(out item))
                            {
                                if (Volatile.Read(ref remaining) == 0)
                                {
                                    return;
                                }

                                Thread.SpinWait(8);
                                continue;
                            }
                        }
                        else if (!buffer.TryRead(out item, Generous))
                        {
                            Assert.True(buffer.IsCompleted, "a blocking read timed out: a lost wake-up"); // completed once every item arrived
                            return;
                        }

                        Assert.Equal(1, Interlocked.Increment(ref seen[item]));
                        Interlocked.Decrement(ref remaining);
                        if (id == 0 && (taken & 63) == 0)
                        {
                            Thread.Sleep(1); // let writers fill the buffer and park
                        }
                    }
                },
                TaskCreationOptions.LongRunning);
        }

        await Task.WhenAll(writers).WaitAsync(Generous * 4);
        AwaitTrue(() => Volatile.Read(ref remaining) == 0 || readers.Any(r => r.IsFaulted));
        buffer.TryComplete(); // ends the readers' blocking reads
        await Task.WhenAll(readers).WaitAsync(Generous * 4);
        Assert.All(seen, count => Assert.Equal(1, count));
        Assert.Equal(0, buffer.Count);
        Assert.True(disarmedRounds > 0, "no quiet spell ended with both sides disarmed: the test did not exercise the disarm");
    }

    [Fact]
    public async Task WriterAndReader_BurstsThatParkBetweenQuietSpells_EveryItemDeliveredOnceInOrder()
    {
        // One writer thread and one reader thread. Each round: a quiet spell (both spin on TryWrite/TryRead, nobody
        // parks, long enough for a side that parked to disarm), then a burst of blocking calls at capacity 1 in which
        // both sides park: every park after a disarm re-arms. A lost wake-up hangs a blocking call until its generous
        // timeout, which fails the test.
        using BackpressureBuffer<int> buffer = Create(singleWriter: true, singleReader: true);
        const int Rounds = 4;
        const int Burst = 64;
        int quiet = BackpressureBuffer<int>.QuietChecksBeforeDisarm + 8;
        var writer = Task.Factory.StartNew(
            () =>
            {
                int value = 0;
                for (int round = 0; round < Rounds; round++)
                {
                    for (int i = 0; i < quiet; i++, value++)
                    {
                        while (buffer.TryWrite(value).Outcome != WriteOutcome.Accepted)
                        {
                            Thread.SpinWait(8);
                        }
                    }

                    for (int i = 0; i < Burst; i++, value++)
                    {
                        Assert.Equal(WriteOutcome.Accepted, buffer.Write(value, Generous).Outcome); // timed out: a lost wake-up
                    }
                }
            },
            TaskCreationOptions.LongRunning);
        int expected = 0;
        for (int round = 0; round < Rounds; round++)
        {
            for (int i = 0; i < quiet; i++, expected++)
            {
                int item;
                while (!buffer.TryRead(out item))
                {
                    Thread.SpinWait(8);
                }

                Assert.Equal(expected, item);
            }

            for (int i = 0; i < Burst; i++, expected++)
            {
                if (i % 8 == 0)
                {
                    Thread.Sleep(1); // let the writer fill the buffer and park
                }

                Assert.True(buffer.TryRead(out int item, Generous), $"read {expected} timed out: a lost wake-up");
                Assert.Equal(expected, item);
            }
        }

        await writer.WaitAsync(Generous);
        Assert.Equal(0, buffer.Count);
    }

    private static void AwaitTrue(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + Generous;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out waiting for the condition");
            Thread.Sleep(1);
        }
    }
}
