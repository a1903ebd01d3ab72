namespace LockFree.Tests.Unit.Throttling.Simulation;

/// <summary>SplitMix64 (Steele, Lea, Flood 2014): a seeded PRNG whose sequence is fixed across runtimes, so the simulations are deterministic.</summary>
public sealed class SimRandom(ulong seed)
{
    private ulong _state = seed;

    /// <summary>A uniform double in [0, 1).</summary>
    public double NextDouble()
    {
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        return (z >> 11) * (1.0 / (1UL << 53));
    }

    /// <summary>An exponentially distributed interval with the given mean, in ticks (at least 1).</summary>
    public long Exponential(double meanTicks) => Math.Max(1, (long)(-Math.Log(1 - NextDouble()) * meanTicks));
}
