using System.Diagnostics;
using LockFree.Internal;

namespace LockFree;

// Design: client-side adaptive throttling (Beyer et al., "Site Reliability Engineering", O'Reilly 2016, ch. 21
// "Handling Overload"). Each client counts, over a sliding window, the requests its application attempted and
// the requests the backend accepted, and rejects locally with probability
//     p = max(0, (requests − K · accepts) / (requests + 1)).
// While the backend accepts everything p is 0. When it accepts only a fraction, the client sends about K times
// what it accepts and drops the rest before it costs the backend anything; as the backend recovers, accepts rise
// and p falls back to 0 by itself. Locally rejected requests still count as requests (that is what lets p grow).
// Window: a ring of Buckets words, each packed as [epoch: 20 bits | requests: 22 bits | accepts: 22 bits] where
// epoch = timestamp / bucket length (mod 2^20). A record CASes the current bucket's word; a word whose epoch is
// stale is reset in the same CAS, so counting is exact and lock-free. A count saturates at 2^22 − 1 per bucket
// (then p is computed from saturated counts: still the right order). A reader sums the words whose epoch lies in
// the last Buckets epochs. Epochs wrap after 2^20 buckets; a bucket untouched for exactly a multiple of that
// would be read as current for one window: harmless for a probability.

/// <summary>
/// Client-side adaptive throttling (Google SRE): rejects requests locally with probability
/// max(0, (requests − K·accepts) / (requests + 1)) over a sliding window, so an overloaded backend is not sent
/// traffic it would reject anyway.
/// </summary>
/// <remarks>
/// Call <see cref="TryAdmit"/> before each request (it counts the request); if admitted and the backend accepts
/// it, call <see cref="RecordAccepted"/>; if the backend rejects it as overloaded, call
/// <see cref="RecordRejected"/> (statistics only). Lock-free, allocation-free.
/// </remarks>
[DebuggerDisplay("RejectionProbability = {RejectionProbability}")]
public sealed class ClientSideThrottle
{
    private const int EpochShift = 44;
    private const int RequestShift = 22;
    private const long CountMax = (1L << 22) - 1;
    private const long EpochMask = (1L << 20) - 1;

    private readonly long[] _buckets;
    private readonly double _k;
    private readonly long _bucketTicks;
    private readonly Func<double> _random;
    private readonly TimeProvider _time;
    private long _locallyRejected;
    private long _backendRejected;

    /// <summary>Creates a throttle.</summary>
    /// <param name="options">Options; null for the defaults.</param>
    /// <exception cref="ArgumentNullException">The time provider is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    public ClientSideThrottle(ClientSideThrottleOptions? options = null)
    {
        options ??= new ClientSideThrottleOptions();
        ArgumentNullException.ThrowIfNull(options.TimeProvider, "options.TimeProvider");
        if (!(options.K >= 1 && double.IsFinite(options.K)))
        {
            throw new ArgumentOutOfRangeException("options.K", options.K, "K must be finite and at least 1.");
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(options.Buckets, 1, "options.Buckets");
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.Buckets, 1024, "options.Buckets");
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(options.Window, TimeSpan.Zero, "options.Window");
        _time = options.TimeProvider;
        long windowTimestamps = (long)(options.Window.TotalSeconds * _time.TimestampFrequency);
        _bucketTicks = windowTimestamps / options.Buckets;
        if (_bucketTicks < 1)
        {
            throw new ArgumentOutOfRangeException("options.Window", options.Window, "Window / Buckets must be at least one tick of the time provider.");
        }

        _buckets = new long[options.Buckets];
        _k = options.K;
        _random = options.RandomSource ?? Random.Shared.NextDouble;
    }

    /// <summary>The multiplier K.</summary>
    public double K => _k;

    /// <summary>Requests counted in the current window (admitted or rejected locally).</summary>
    public long Requests => Sum(CurrentEpoch()).Requests;

    /// <summary>Backend accepts counted in the current window.</summary>
    public long Accepts => Sum(CurrentEpoch()).Accepts;

    /// <summary>The current local rejection probability, max(0, (requests − K·accepts) / (requests + 1)).</summary>
    public double RejectionProbability
    {
        get
        {
            (long requests, long accepts) = Sum(CurrentEpoch());
            return Probability(requests, accepts);
        }
    }

    /// <summary>Requests rejected locally since creation.</summary>
    public long LocallyRejected => RealAtomics.LoadAcquire(ref _locallyRejected); // acquire: a snapshot

    /// <summary>Backend rejections reported through <see cref="RecordRejected"/> since creation.</summary>
    public long BackendRejected => RealAtomics.LoadAcquire(ref _backendRejected); // acquire: a snapshot

    /// <summary>Counts a request and decides whether to send it: false means reject it locally (do not send).</summary>
    /// <returns>True to send the request to the backend.</returns>
    public bool TryAdmit()
    {
        long epoch = CurrentEpoch();
        (long requests, long accepts) = Sum(epoch);
        double p = Probability(requests, accepts);
        Record(epoch, 1L << RequestShift);
        if (p > 0 && _random() < p)
        {
            RealAtomics.Add(ref _locallyRejected, 1); // statistics only
            return false;
        }

        return true;
    }

    /// <summary>Records that the backend accepted (served) an admitted request.</summary>
    public void RecordAccepted() => Record(CurrentEpoch(), 1);

    /// <summary>Records that the backend rejected an admitted request as overloaded (statistics only: a request without an accept already raises the probability).</summary>
    public void RecordRejected() => RealAtomics.Add(ref _backendRejected, 1); // statistics only

    /// <summary>The SRE formula.</summary>
    internal double Probability(long requests, long accepts) => Math.Max(0, (requests - (_k * accepts)) / (requests + 1));

    private long CurrentEpoch() => _time.GetTimestamp() / _bucketTicks;

    private void Record(long epoch, long increment)
    {
        long tag = epoch & EpochMask;
        ref long word = ref _buckets[(int)(epoch % _buckets.Length)];
        long seen = RealAtomics.LoadAcquire(ref word); // acquire: the bucket to add to
        while (true)
        {
            long next;
            if (((seen >>> EpochShift) & EpochMask) != tag)
            {
                next = (tag << EpochShift) + increment; // stale bucket: reset it and count in the same CAS
            }
            else
            {
                bool full = increment == 1 ? (seen & CountMax) == CountMax : ((seen >> RequestShift) & CountMax) == CountMax;
                if (full)
                {
                    return; // saturated: the ratio is what matters
                }

                next = seen + increment;
            }

            long prior = RealAtomics.CompareExchange(ref word, next, seen); // full fence: the count; fails only if another record moved the bucket
            if (prior == seen)
            {
                return;
            }

            seen = prior;
        }
    }

    private (long Requests, long Accepts) Sum(long epoch)
    {
        long requests = 0, accepts = 0;
        long n = _buckets.Length;
        for (int i = 0; i < _buckets.Length; i++)
        {
            long word = RealAtomics.LoadAcquire(ref _buckets[i]); // acquire: a snapshot of one bucket
            long age = (epoch - ((word >>> EpochShift) & EpochMask)) & EpochMask;
            if (word != 0 && age < n)
            {
                requests += (word >> RequestShift) & CountMax;
                accepts += word & CountMax;
            }
        }

        return (requests, accepts);
    }
}
