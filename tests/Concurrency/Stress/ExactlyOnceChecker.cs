using System.Text;

namespace LockFree.Tests.Concurrency.Stress;

/// <summary>What <see cref="ExactlyOnceChecker"/> found; <see cref="IsExact"/> when nothing is wrong.</summary>
/// <param name="Expected">Items the producers handed over.</param>
/// <param name="Received">Items the consumers logged, all of them.</param>
/// <param name="Lost">Produced items no consumer received.</param>
/// <param name="Duplicated">Receipts of an item already received (by any consumer).</param>
/// <param name="Invented">Receipts of an item no producer made.</param>
/// <param name="OutOfOrder">Receipts that came, at one consumer, before an earlier item of the same producer.</param>
/// <param name="Details">The first few examples of each problem, for the failure message.</param>
public sealed record ExactlyOnceReport(
    long Expected, long Received, long Lost, long Duplicated, long Invented, long OutOfOrder, string Details)
{
    /// <summary>Every item received exactly once, none invented, each producer's items in order at each consumer.</summary>
    public bool IsExact => Lost == 0 && Duplicated == 0 && Invented == 0 && OutOfOrder == 0 && Received == Expected;

    /// <inheritdoc/>
    public override string ToString() =>
        $"expected {Expected}, received {Received}, lost {Lost}, duplicated {Duplicated}, invented {Invented}, " +
        $"out of order {OutOfOrder}{(Details.Length > 0 ? Environment.NewLine + Details : string.Empty)}";
}

/// <summary>
/// Accounts for every item of a producer/consumer run: each produced item received exactly once, nothing
/// invented, and per-producer FIFO order at each consumer. Items are longs that carry their producer and
/// sequence number (<see cref="Encode"/>); producer p makes sequence numbers 0, 1, ... in order.
/// </summary>
/// <remarks>
/// Per-producer order holds at every consumer of a FIFO queue even with many consumers: a producer's items
/// occupy increasing positions and one consumer's operations take increasing positions.
/// </remarks>
public sealed class ExactlyOnceChecker
{
    /// <summary>Bits of the sequence number; the producer id sits above them.</summary>
    public const int SequenceBits = 40;

    private const long SequenceMask = (1L << SequenceBits) - 1;
    private const int MaxExamples = 5;

    private readonly int _producers;
    private readonly long _itemsPerProducer;

    /// <summary>A checker for <paramref name="producers"/> producers that each make <paramref name="itemsPerProducer"/> items.</summary>
    public ExactlyOnceChecker(int producers, long itemsPerProducer)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(producers);
        ArgumentOutOfRangeException.ThrowIfNegative(itemsPerProducer);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(itemsPerProducer, SequenceMask + 1);
        _producers = producers;
        _itemsPerProducer = itemsPerProducer;
    }

    /// <summary>The item for sequence number <paramref name="sequence"/> of producer <paramref name="producer"/>.</summary>
    public static long Encode(int producer, long sequence) => ((long)producer << SequenceBits) | sequence;

    /// <summary>The producer id carried by <paramref name="item"/>.</summary>
    public static long ProducerOf(long item) => item >> SequenceBits;

    /// <summary>The sequence number carried by <paramref name="item"/>.</summary>
    public static long SequenceOf(long item) => item & SequenceMask;

    /// <summary>Checks the items each consumer received, each log in the order that consumer received them.</summary>
    public ExactlyOnceReport Check(IReadOnlyList<IReadOnlyList<long>> consumerLogs)
    {
        var seen = new bool[_producers][];
        for (int p = 0; p < _producers; p++)
        {
            seen[p] = new bool[_itemsPerProducer];
        }

        long received = 0, duplicated = 0, invented = 0, outOfOrder = 0;
        var details = new StringBuilder();
        int dupExamples = 0, inventedExamples = 0, orderExamples = 0;
        for (int c = 0; c < consumerLogs.Count; c++)
        {
            var last = new long[_producers];
            Array.Fill(last, -1L);
            IReadOnlyList<long> log = consumerLogs[c];
            for (int i = 0; i < log.Count; i++)
            {
                long item = log[i];
                received++;
                long producer = ProducerOf(item);
                long sequence = SequenceOf(item);
                if (item < 0 || producer >= _producers || sequence >= _itemsPerProducer)
                {
                    invented++;
                    Example(details, ref inventedExamples, $"invented: consumer {c} got {item:X} at index {i}");
                    continue;
                }

                ref bool wasSeen = ref seen[producer][sequence];
                if (wasSeen)
                {
                    duplicated++;
                    Example(details, ref dupExamples, $"duplicated: consumer {c} got producer {producer} #{sequence} again at index {i}");
                    continue;
                }

                wasSeen = true;
                if (sequence <= last[producer])
                {
                    outOfOrder++;
                    Example(details, ref orderExamples,
                        $"out of order: consumer {c} got producer {producer} #{sequence} after #{last[producer]} (index {i})");
                }

                last[producer] = Math.Max(last[producer], sequence);
            }
        }

        long lost = 0;
        int lostExamples = 0;
        for (int p = 0; p < _producers; p++)
        {
            for (long s = 0; s < _itemsPerProducer; s++)
            {
                if (!seen[p][s])
                {
                    lost++;
                    Example(details, ref lostExamples, $"lost: producer {p} #{s}");
                }
            }
        }

        return new ExactlyOnceReport(
            _producers * _itemsPerProducer, received, lost, duplicated, invented, outOfOrder, details.ToString().TrimEnd());
    }

    private static void Example(StringBuilder details, ref int count, string line)
    {
        if (count++ < MaxExamples)
        {
            details.AppendLine(line);
        }
    }
}
