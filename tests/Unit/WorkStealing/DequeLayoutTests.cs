using LockFree.Internal;
using LockFree.WorkStealing;
using Xunit;

namespace LockFree.Tests.Unit.WorkStealing;

/// <summary>
/// Padding of the Chase-Lev engine: top (CAS'd by every thief) is at least <see cref="CacheLine.Size"/> bytes from
/// the owner's fields (bottom, its cached top, its clearing watermark) and from the buffer reference every
/// operation reads, and the hot indices are a cache line away from the start of the engine (the object header
/// and the handle's other field come before it).
/// </summary>
public sealed class DequeLayoutTests
{
    [Fact]
    public void ChaseLevDeque_ValueItems_TopIsAwayFromOwnerFields() =>
        AssertLayout(new ChaseLevDeque<long, RealAtomics>(4).FieldOffsets());

    [Fact]
    public void ChaseLevDeque_ReferenceItems_TopIsAwayFromOwnerFields() =>
        AssertLayout(new ChaseLevDeque<object, RealAtomics>(4).FieldOffsets());

    [Fact]
    public void LayoutCheck_FieldsSharingALine_Fails() =>
        Assert.ThrowsAny<Xunit.Sdk.XunitException>(() => AssertLayout((128, 136, 200, 0, 8)));

    private static void AssertLayout((nint Bottom, nint CachedTop, nint Top, nint Buffer, nint Cleared) o)
    {
        foreach (nint other in new[] { o.Bottom, o.CachedTop, o.Buffer, o.Cleared })
        {
            Assert.True(Math.Abs(o.Top - other) >= CacheLine.Size, $"top at {o.Top} is closer than {CacheLine.Size} bytes to a field at {other}");
        }

        Assert.True(o.Bottom >= CacheLine.Size && o.Top >= CacheLine.Size, $"bottom {o.Bottom} / top {o.Top} may share a line with the object header");
    }
}
