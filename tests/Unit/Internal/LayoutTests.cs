using System.Runtime.CompilerServices;
using LockFree.Internal;
using LockFree.Queues;
using Xunit;

namespace LockFree.Tests.Unit.Internal;

/// <summary>
/// Padding checks: fields written by different thread roles, and the read-only fields every operation
/// reads, are at least <see cref="CacheLine.Size"/> bytes apart, so a write by one role never invalidates a
/// line another role keeps hot.
/// </summary>
public sealed class LayoutTests
{
    [Fact]
    public void PaddedIndexPair_Size_IsTwoCacheLines()
    {
        Assert.Equal(2 * CacheLine.Size, Unsafe.SizeOf<PaddedIndexPair>());
    }

    [Fact]
    public void PaddedIndex_Size_IsTwoCacheLines()
    {
        Assert.Equal(2 * CacheLine.Size, Unsafe.SizeOf<PaddedIndex>());
    }

    [Fact]
    public void PaddedIndexPair_Fields_StartOneCacheLineIn()
    {
        var pair = default(PaddedIndexPair);
        ref byte start = ref Unsafe.As<PaddedIndexPair, byte>(ref pair);

        Assert.Equal(CacheLine.Size, FieldLayout.Offset(ref start, ref pair.Index));
        Assert.Equal(CacheLine.Size + sizeof(long), FieldLayout.Offset(ref start, ref pair.Cached));
    }

    [Fact]
    public void BackpressureBuffer_InWriteMark_AtLeastOneCacheLineFromTheReadersHotFields()
    {
        using var buffer = new BackpressureBuffer<long>(new BackpressureBufferOptions<long> { Capacity = 4, SingleWriter = true, SingleReader = true });

        Assert.All(buffer.WriteMarkDistances(), distance => Assert.True(distance >= CacheLine.Size, $"{distance} bytes: {string.Join(", ", buffer.WriteMarkDistances())}"));
    }

    [Fact]
    public void SpscRing_ValueItems_RolesAndReadOnlyFieldsAtLeastOneCacheLineApart()
    {
        var ring = new SpscRing<long, RealAtomics>(4);

        AssertSpscLayout(ring.FieldOffsets());
    }

    [Fact]
    public void SpscRing_ReferenceItems_RolesAndReadOnlyFieldsAtLeastOneCacheLineApart()
    {
        var ring = new SpscRing<object, RealAtomics>(4);

        AssertSpscLayout(ring.FieldOffsets());
    }

    [Fact]
    public void SequencedRing_AllRoleMixes_TailHeadAndReadOnlyFieldsAtLeastOneCacheLineApart()
    {
        AssertSequencedLayout(new SequencedRing<long, RealAtomics, MultiRole, SingleRole>(4).FieldOffsets());
        AssertSequencedLayout(new SequencedRing<long, RealAtomics, SingleRole, MultiRole>(4).FieldOffsets());
        AssertSequencedLayout(new SequencedRing<long, RealAtomics, MultiRole, MultiRole>(4).FieldOffsets());
        AssertSequencedLayout(new SequencedRing<object, RealAtomics, MultiRole, MultiRole>(4).FieldOffsets());
    }

    [Fact]
    public void LayoutCheck_FieldsSharingALine_Fails()
    {
        // Proof the check can fail: an unpadded layout (fields 8 bytes apart) must be rejected.
        Assert.ThrowsAny<Xunit.Sdk.XunitException>(() => AssertSpscLayout((0, 8, 16, 24, 32, 40, 48)));
        Assert.ThrowsAny<Xunit.Sdk.XunitException>(() => AssertSequencedLayout((0, 8, 16, 256, 300)));
    }

    private static void AssertSpscLayout(
        (nint Buffer, nint Mask, nint Capacity, nint ProducerIndex, nint ProducerCached, nint ConsumerIndex, nint ConsumerCached) o)
    {
        nint[] readOnly = [o.Buffer, o.Mask, o.Capacity];
        nint[] producer = [o.ProducerIndex, o.ProducerCached];
        nint[] consumer = [o.ConsumerIndex, o.ConsumerCached];
        AssertApart(producer, consumer, "producer vs consumer");
        AssertApart(producer, readOnly, "producer vs read-only fields");
        AssertApart(consumer, readOnly, "consumer vs read-only fields");
        AssertAwayFromObjectHeader([.. producer, .. consumer]);
    }

    private static void AssertSequencedLayout((nint Slots, nint Mask, nint Capacity, nint Tail, nint Head) o)
    {
        nint[] readOnly = [o.Slots, o.Mask, o.Capacity];
        AssertApart([o.Tail], [o.Head], "tail vs head");
        AssertApart([o.Tail], readOnly, "tail vs read-only fields");
        AssertApart([o.Head], readOnly, "head vs read-only fields");
        AssertAwayFromObjectHeader([o.Tail, o.Head]);
    }

    private static void AssertApart(nint[] left, nint[] right, string what)
    {
        foreach (nint a in left)
        {
            foreach (nint b in right)
            {
                Assert.True(Math.Abs(a - b) >= CacheLine.Size, $"{what}: offsets {a} and {b} are closer than {CacheLine.Size} bytes.");
            }
        }
    }

    /// <summary>The engine is the only field of its queue object, so offset 0 follows the object header.</summary>
    private static void AssertAwayFromObjectHeader(nint[] hot)
    {
        foreach (nint offset in hot)
        {
            Assert.True(offset >= CacheLine.Size, $"hot field at offset {offset} may share a line with the object header.");
        }
    }
}
