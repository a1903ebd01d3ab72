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
// Window: SlidingCountWindow, a ring of Buckets packed words [epoch | requests | accepts] updated by CAS, exact
// and lock-free (its design comment has the details); epoch = (timestamp − the timestamp at creation) / bucket length,
// so a clock that reads negative, starts near long.MinValue or wraps past long.MaxValue counts like any other (only
// differences of timestamps mean anything; the subtraction wraps with them). Epochs wrap after 2^20 buckets; a bucket
// untouched for within 16 windows of a multiple of that may be read as current (or newer) for up to 16 windows:
// harmless for a probability.

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
    private readonly SlidingCountWindow<RealAtomics> _window;
    private readonly double _k;
    private readonly long _bucketTicks;
    private readonly Func<double> _random;
    private readonly TimeProvider _time;
    private readonly long _origin;
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

        _origin = _time.GetTimestamp();
        _window = new SlidingCountWindow<RealAtomics>(options.Buckets);
        _k = options.K;
        _random = options.RandomSource ?? Random.Shared.NextDouble;
    }

    /// <summary>The multiplier K.</summary>
    public double K => _k;

    /// <summary>Requests counted in the current window (admitted or rejected locally).</summary>
    public long Requests => _window.Sum(CurrentEpoch()).Requests;

    /// <summary>Backend accepts counted in the current window.</summary>
    public long Accepts => _window.Sum(CurrentEpoch()).Accepts;

    /// <summary>The current local rejection probability, max(0, (requests − K·accepts) / (requests + 1)).</summary>
    public double RejectionProbability
    {
        get
        {
            (long requests, long accepts) = _window.Sum(CurrentEpoch());
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
        (long requests, long accepts) = _window.Sum(epoch);
        double p = Probability(requests, accepts);
        _window.Record(epoch, SlidingCountWindow<RealAtomics>.Request);
        if (p > 0 && _random() < p)
        {
            RealAtomics.Add(ref _locallyRejected, 1); // statistics only
            return false;
        }

        return true;
    }

    /// <summary>Records that the backend accepted (served) an admitted request.</summary>
    public void RecordAccepted() => _window.Record(CurrentEpoch(), SlidingCountWindow<RealAtomics>.Accept);

    /// <summary>Records that the backend rejected an admitted request as overloaded (statistics only: a request without an accept already raises the probability).</summary>
    public void RecordRejected() => RealAtomics.Add(ref _backendRejected, 1); // statistics only

    /// <summary>The SRE formula.</summary>
    internal double Probability(long requests, long accepts) => Math.Max(0, (requests - (_k * accepts)) / (requests + 1));

    /// <summary>
    /// Buckets elapsed since creation. Measured from the creation timestamp, not from 0: a raw negative timestamp
    /// divided by the bucket length truncated towards zero (epoch 0 twice as long) and indexed the ring with a negative
    /// slot (IndexOutOfRangeException). Floor division keeps a clock that steps back before creation in range too.
    /// </summary>
    private long CurrentEpoch()
    {
        long elapsed = unchecked(_time.GetTimestamp() - _origin); // wraps with the clock: a difference of timestamps
        long epoch = elapsed / _bucketTicks;
        return elapsed < 0 && epoch * _bucketTicks != elapsed ? epoch - 1 : epoch;
    }
}
