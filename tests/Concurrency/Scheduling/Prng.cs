using System.Numerics;

namespace LockFree.Tests.Concurrency.Scheduling;

/// <summary>
/// xoshiro256** seeded through SplitMix64 (Blackman &amp; Vigna, https://prng.di.unimi.it/). The scheduler
/// owns its generator so that a seed replays the same schedule on every runtime version
/// (<see cref="System.Random"/> makes no such promise).
/// </summary>
internal struct Prng
{
    private ulong _s0, _s1, _s2, _s3;

    public Prng(ulong seed)
    {
        ulong x = seed;
        _s0 = SplitMix64(ref x);
        _s1 = SplitMix64(ref x);
        _s2 = SplitMix64(ref x);
        _s3 = SplitMix64(ref x);
    }

    /// <summary>One SplitMix64 step: also used to derive per-iteration seeds.</summary>
    public static ulong SplitMix64(ref ulong state)
    {
        ulong z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>The seed of iteration <paramref name="iteration"/> of a run seeded with <paramref name="seed"/>; iteration 0 uses the seed itself, so a printed per-iteration seed replays as iteration 0.</summary>
    public static ulong IterationSeed(ulong seed, int iteration)
    {
        if (iteration == 0)
        {
            return seed;
        }

        ulong x = seed ^ ((ulong)iteration * 0xD1B54A32D192ED03UL);
        return SplitMix64(ref x) >> 1; // keep it positive as a long, for readable replay lines
    }

    public ulong NextUInt64()
    {
        ulong result = BitOperations.RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= t;
        _s3 = BitOperations.RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>Uniform in [0, bound) (Lemire's multiply-shift; the tiny bias is irrelevant here but the result is deterministic).</summary>
    public int Next(int bound) => (int)(((NextUInt64() >> 32) * (ulong)bound) >> 32);
}
