using Xunit;

namespace LockFree.Tests.Unit.Backpressure;

/// <summary>
/// A side played by one thread returns to its fence-free fast path once nobody waits (ParkingGate, "Disarming"):
/// after a park, <see cref="BackpressureBuffer{T}.QuietChecksBeforeDisarm"/> operations that find no waiter clear the
/// side's Parked bit, and a later park sets it again and is still woken. A side of many threads (a CAS claim per
/// operation) keeps the bit. Real threads; every wait is bounded by a generous timeout.
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
    [InlineData(true)] // SPSC
    [InlineData(false)] // MPSC: the one reader signals the many writers
    public async Task SingleReader_AfterWriterParkAndQuietReads_StopsAskingAndAParkAfterwardsIsWoken(bool singleWriter)
    {
        using BackpressureBuffer<int> buffer = Create(singleWriter, singleReader: true);
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


            // Quiet operations: the reader finds no writer waiting and, after enough of them, disarms.
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
    [InlineData(true)] // SPSC
    [InlineData(false)] // SPMC: the one writer signals the many readers
    public async Task SingleWriter_AfterReaderParkAndQuietWrites_StopsAskingAndAParkAfterwardsIsWoken(bool singleReader)
    {
        using BackpressureBuffer<int> buffer = Create(singleWriter: true, singleReader);
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
    public async Task ManyWriters_AfterReaderParkAndQuietWrites_KeepAsking()
    {
        // The writers' side claims by CAS: its locked claim is the fence, and it never disarms (many signallers).
        using BackpressureBuffer<int> buffer = Create(singleWriter: false, singleReader: true);
        Task<int> reader = Task.Run(async () => await buffer.ReadAsync());
        AwaitTrue(() => buffer.WritesAskReaders || reader.IsCompleted);
        Assert.Equal(WriteResult.Accepted, buffer.TryWrite(1));
        Assert.Equal(1, await reader.WaitAsync(Generous));
        for (int i = 0; i < BackpressureBuffer<int>.QuietChecksBeforeDisarm + 1; i++)
        {
            Assert.Equal(WriteResult.Accepted, buffer.TryWrite(i));
            Assert.True(buffer.TryRead(out _));
        }

        Assert.True(buffer.WritesAskReaders);
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
