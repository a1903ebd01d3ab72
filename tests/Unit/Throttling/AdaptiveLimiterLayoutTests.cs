using LockFree.Internal;
using Xunit;

namespace LockFree.Tests.Unit.Throttling;

/// <summary>
/// The adaptive limiter's two hot regions (admission: in-flight + limit; samples: accumulator + window start) are at
/// least one cache line apart from each other and from the read-only configuration every operation reads.
/// </summary>
public sealed class AdaptiveLimiterLayoutTests
{
    [Fact]
    public void Engine_HotRegions_AtLeastOneCacheLineApart()
    {
        var engine = new AdaptiveLimiterEngine<RealAtomics>(new AimdLimit(), TimeProvider.System, TimeSpan.FromMilliseconds(100), 10);
        var o = engine.FieldOffsets();
        Assert.Equal(8, Math.Abs(o.Limit - o.InFlight));
        Assert.True(Math.Abs(o.Accumulator - o.InFlight) >= CacheLine.Size, $"in-flight {o.InFlight}, accumulator {o.Accumulator}");
        Assert.True(Math.Abs(o.WindowStart - o.InFlight) >= CacheLine.Size, $"in-flight {o.InFlight}, window start {o.WindowStart}");
        foreach (nint readOnly in new[] { o.Algorithm, o.WindowTicks })
        {
            Assert.True(Math.Abs(readOnly - o.InFlight) >= CacheLine.Size, $"read-only field at {readOnly}, in-flight at {o.InFlight}");
            Assert.True(Math.Abs(readOnly - o.Accumulator) >= CacheLine.Size, $"read-only field at {readOnly}, accumulator at {o.Accumulator}");
        }
    }
}
