namespace LockFree;

// Design: a latency-gradient limit in the spirit of Netflix concurrency-limits' Gradient2 and Envoy's adaptive
// concurrency filter. Per closed window:
//   short    = the window's average latency
//   long     = the baseline: an exponential average of short over LongWindow windows (plain average during
//              Warmup), updated asymmetrically:
//                short < long               -> long moves half-way down to short at once (RecoveryRate): once
//                                              latency recovers, an inflated baseline must not keep the limit high
//                                              (Gradient2 instead decays long by 5% per window when long > 2·short;
//                                              our simulation showed the limit overshoot to 3.5x capacity with that)
//                long <= short <= Tol·long  -> the plain exponential step toward short
//                short > Tol·long           -> overloaded (the gradient is cutting): the step sees at most
//                                              (1 + OverloadLatencyCap)·long, so queueing we cause ourselves cannot
//                                              pull the baseline up
//   gradient = clamp(Tolerance · long / short, MinGradient, 1)     (MinGradient after a window with drops)
//   target   = limit · gradient + QueueSize
//   limit    = (1 − Smoothing) · limit + Smoothing · target, clamped to [MinLimit, MaxLimit]
// and the limit is held when the window was not busy (MaxInFlight < limit / 2). At equilibrium
// limit·gradient + QueueSize = limit, i.e. gradient = 1 − QueueSize/limit < 1: the latency sits a little above
// Tolerance × baseline, so every equilibrium window counts as overloaded. Gradient2 feeds those windows to the
// long average in full, so the baseline creeps up (≈ α·(short/long − 1) per window) and the limit with it: the
// limit backs off less and less the longer an overload lasts. The cap bounds that creep to α·OverloadLatencyCap per
// window (1/30 of a percent per window with the defaults) while still letting a genuine rise of the no-load
// latency in eventually (the cap is a rate, not a wall; BaselineProbeInterval re-measures it at once).
// BaselineProbeInterval (off by default) is Envoy's remedy: periodically drop the limit to measure the no-load
// latency afresh.

/// <summary>
/// A concurrency limit that follows the ratio of a long-window (baseline) latency to the current latency: it
/// grows by a fixed headroom while latency stays within <see cref="GradientLimitOptions.Tolerance"/> of the
/// baseline and shrinks in proportion when queueing pushes latency above it. Needs no explicit overload
/// signal; drops, when reported, cut it by <see cref="GradientLimitOptions.MinGradient"/>.
/// </summary>
public sealed class GradientLimit : AdaptiveLimit
{
    private readonly double _tolerance;
    private readonly double _smoothing;
    private readonly double _alpha;
    private readonly int _warmup;
    private readonly double _queueSize;
    private readonly double _minGradient;
    private readonly double _overloadCap;

    /// <summary>How fast the baseline follows the latency down (per window): a baseline inflated by an overload must not keep the limit high once latency recovers.</summary>
    private const double RecoveryRate = 0.5;

    /// <summary>The smallest change of peak in-flight (as a log ratio, ≈ 10%) that says anything about how latency responds to it.</summary>
    private const double MinInFlightChange = 0.1;

    /// <summary>Weight of one window's elasticity in the smoothed one.</summary>
    private const double ElasticityWeight = 0.25;

    /// <summary>Smoothed elasticity at or above which latency counts as our own queueing (1 = proportional, 0 = none).</summary>
    private const double QueueingElasticity = 0.5;

    /// <summary>Windows a probe waits for in-flight to drain before it gives up and resumes.</summary>
    private const int MaxProbeWindows = 20;

    private readonly TimeSpan _probeInterval;

    private double _estimate;
    private double _longTicks;
    private double _elasticity = 1; // assume queueing until latency is seen not to follow concurrency
    private long _refInFlight;      // the reference window of the elasticity estimate (0 = none yet)
    private double _refShortTicks;
    private int _windows;
    private TimeSpan _lastProbe;
    private int _probeWindows = -1; // -1: not probing; else windows spent in the current probe

    /// <summary>Creates the algorithm.</summary>
    /// <param name="options">Options; null for the defaults.</param>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    public GradientLimit(GradientLimitOptions? options = null)
        : base(options ??= new GradientLimitOptions())
    {
        if (!(options.Tolerance >= 1 && double.IsFinite(options.Tolerance)))
        {
            throw new ArgumentOutOfRangeException("options.Tolerance", options.Tolerance, "Tolerance must be finite and at least 1.");
        }

        if (!(options.Smoothing > 0 && options.Smoothing <= 1))
        {
            throw new ArgumentOutOfRangeException("options.Smoothing", options.Smoothing, "Smoothing must be in (0, 1].");
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(options.LongWindow, 1, "options.LongWindow");
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Warmup, 1, "options.Warmup");
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.Warmup, options.LongWindow, "options.Warmup");
        if (!(options.QueueSize >= 0 && double.IsFinite(options.QueueSize)))
        {
            throw new ArgumentOutOfRangeException("options.QueueSize", options.QueueSize, "QueueSize must be finite and at least 0.");
        }

        if (!(options.MinGradient > 0 && options.MinGradient <= 1))
        {
            throw new ArgumentOutOfRangeException("options.MinGradient", options.MinGradient, "MinGradient must be in (0, 1].");
        }

        if (!(options.OverloadLatencyCap >= 0))
        {
            throw new ArgumentOutOfRangeException("options.OverloadLatencyCap", options.OverloadLatencyCap, "OverloadLatencyCap must be at least 0 (positive infinity turns the cap off).");
        }

        _overloadCap = 1 + options.OverloadLatencyCap;
        _tolerance = options.Tolerance;
        _smoothing = options.Smoothing;
        _alpha = 2.0 / (options.LongWindow + 1);
        _warmup = options.Warmup;
        _queueSize = options.QueueSize;
        _minGradient = options.MinGradient;
        if (options.BaselineProbeInterval is { } probe && probe <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException("options.BaselineProbeInterval", probe, "BaselineProbeInterval must be positive when set.");
        }

        _estimate = options.InitialLimit;
        _probeInterval = options.BaselineProbeInterval ?? TimeSpan.Zero;
    }

    /// <summary>True while a baseline probe holds the limit at <see cref="AdaptiveLimit.MinLimit"/>.</summary>
    public bool IsProbing => _probeWindows >= 0;

    /// <summary>The current long-window (baseline) latency; zero before the first sample.</summary>
    public TimeSpan BaselineLatency => TimeSpan.FromTicks((long)_longTicks);

    /// <inheritdoc/>
    public override int Update(in AdaptiveWindow window)
    {
        if (_probeInterval > TimeSpan.Zero && Probe(window) is int probing)
        {
            return probing;
        }

        if (window.SampleCount == 0 && window.DroppedCount == 0)
        {
            return (int)Math.Round(_estimate);
        }

        double gradient;
        if (window.SampleCount > 0)
        {
            double shortTicks = Math.Max(1, window.AverageLatency.Ticks);
            if (_windows < int.MaxValue)
            {
                _windows++; // saturates: only "past Warmup or not" matters, and a wrap read as warming up with weight 1 / -2^31, then divided by 0
            }
            double seen = shortTicks;
            bool queueing = UpdateElasticity(shortTicks, window.MaxInFlight);
            if (_windows > _warmup && _overloadCap < double.PositiveInfinity && shortTicks > _tolerance * _longTicks)
            {
                // Overloaded. Latency that follows our concurrency is our own queueing: it must not raise the
                // baseline. Latency that does not is the callee's no-load latency moving: let it in, at a bounded rate.
                seen = queueing ? Math.Min(shortTicks, _longTicks) : Math.Min(shortTicks, _overloadCap * _longTicks);
            }

            _longTicks = _windows <= _warmup
                ? _longTicks + ((seen - _longTicks) / _windows)
                : _longTicks + (_alpha * (seen - _longTicks));
            if (shortTicks < _longTicks)
            {
                _longTicks += RecoveryRate * (shortTicks - _longTicks); // latency fell below the baseline: follow it down fast
            }

            gradient = Math.Clamp(_tolerance * _longTicks / shortTicks, _minGradient, 1.0);
        }
        else
        {
            gradient = _minGradient;
        }

        if (window.DroppedCount > 0)
        {
            gradient = _minGradient;
        }
        else if (window.MaxInFlight * 2 < _estimate)
        {
            return (int)Math.Round(_estimate); // app-limited: the callee was not under test
        }

        double target = (_estimate * gradient) + _queueSize;
        _estimate = Bound(((1 - _smoothing) * _estimate) + (_smoothing * target));
        return (int)Math.Round(_estimate);
    }

    /// <summary>
    /// Tracks how latency responds to concurrency: once the peak in-flight has moved at least 10% away from a
    /// reference window, e = Δln(latency) / Δln(in-flight) between the two (about 1 when the latency is queueing
    /// behind our own requests, about 0 when it is the callee's own) enters a smoothed elasticity and the current
    /// window becomes the reference. Measuring against a reference, not the previous window, catches the slow moves
    /// of a smoothed limit. True while the smoothed elasticity says queueing (it starts there).
    /// </summary>
    private bool UpdateElasticity(double shortTicks, long maxInFlight)
    {
        if (maxInFlight <= 0)
        {
            return _elasticity >= QueueingElasticity;
        }

        if (_refInFlight > 0)
        {
            double dn = Math.Log((double)maxInFlight / _refInFlight);
            if (Math.Abs(dn) < MinInFlightChange)
            {
                return _elasticity >= QueueingElasticity;
            }

            double e = Math.Clamp(Math.Log(shortTicks / _refShortTicks) / dn, 0, 2);
            _elasticity += ElasticityWeight * (e - _elasticity);
        }

        _refInFlight = maxInFlight;
        _refShortTicks = shortTicks;
        return _elasticity >= QueueingElasticity;
    }

    // Baseline probe: start one when the interval is up (the limit drops to MinLimit); while in-flight is above
    // MinLimit the window still holds requests admitted under the old limit, so wait; the first window that ran
    // entirely at MinLimit gives the no-load latency, which replaces the long average; the estimate resumes.
    private int? Probe(in AdaptiveWindow window)
    {
        if (_probeWindows < 0)
        {
            if (window.Elapsed - _lastProbe < _probeInterval)
            {
                return null;
            }

            _lastProbe = window.Elapsed;
            _probeWindows = 0;
            return MinLimit;
        }

        _probeWindows++;
        if (window.MaxInFlight <= MinLimit && window.SampleCount > 0 && window.DroppedCount == 0)
        {
            _longTicks = Math.Max(1, window.AverageLatency.Ticks);
            _windows = Math.Max(_windows, _warmup);
            _probeWindows = -1;
            _lastProbe = window.Elapsed;
            return (int)Math.Round(_estimate);
        }

        if (_probeWindows >= MaxProbeWindows)
        {
            _probeWindows = -1; // could not drain (or only drops): resume, try again next interval
            _lastProbe = window.Elapsed;
            return (int)Math.Round(_estimate);
        }

        return MinLimit;
    }
}
