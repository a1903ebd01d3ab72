namespace LockFree;

// Design: a PID controller on the relative latency error, with the three guards that keep a limit from
// oscillating. Per closed window:
//   e = clamp((TargetLatency − latency) / TargetLatency, −1, 1)      (e = −1 after a window with drops)
//   hold (no change) when |e| ≤ Hysteresis            — the dead band; the integral leaks by half there
//   hold when less than Cooldown passed since the last change (the system needs time to show the effect)
//   integral = clamp(integral + e, ±IntegralLimit), skipped when the limit sits at a bound and e pushes past it
//              (conditional integration: the anti-windup rule), and reset when e changes sign
//   u = Kp·e + Ki·integral + Kd·(e − e_previous), clamped to ±MaxStep
//   limit = round(limit · (1 + u)), at least one step in the direction of u, clamped to [MinLimit, MaxLimit]
// The output is relative (a fraction of the limit), so the same gains work at limit 10 and at limit 10,000.

/// <summary>
/// A concurrency limit steered by a PID controller towards <see cref="PidLimitOptions.TargetLatency"/>, with a
/// hysteresis band, a cooldown between changes and anti-windup, so it settles instead of oscillating.
/// </summary>
public sealed class PidLimit : AdaptiveLimit
{
    private readonly double _targetTicks;
    private readonly double _kp;
    private readonly double _ki;
    private readonly double _kd;
    private readonly double _hysteresis;
    private readonly TimeSpan _cooldown;
    private readonly double _maxStep;
    private readonly double _integralLimit;

    private double _integral;
    private double _previousError;
    private TimeSpan _lastChange = TimeSpan.MinValue;

    /// <summary>Creates the algorithm.</summary>
    /// <param name="options">Options; <see cref="PidLimitOptions.TargetLatency"/> is required.</param>
    /// <exception cref="ArgumentNullException"><paramref name="options"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    public PidLimit(PidLimitOptions options)
        : base(options)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(options.TargetLatency, TimeSpan.Zero, "options.TargetLatency");
        CheckGain(options.ProportionalGain, "options.ProportionalGain");
        CheckGain(options.IntegralGain, "options.IntegralGain");
        CheckGain(options.DerivativeGain, "options.DerivativeGain");
        if (!(options.Hysteresis >= 0 && options.Hysteresis < 1))
        {
            throw new ArgumentOutOfRangeException("options.Hysteresis", options.Hysteresis, "Hysteresis must be in [0, 1).");
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(options.Cooldown, TimeSpan.Zero, "options.Cooldown");
        if (!(options.MaxStep > 0 && options.MaxStep <= 1))
        {
            throw new ArgumentOutOfRangeException("options.MaxStep", options.MaxStep, "MaxStep must be in (0, 1].");
        }

        if (!(options.IntegralLimit > 0 && double.IsFinite(options.IntegralLimit)))
        {
            throw new ArgumentOutOfRangeException("options.IntegralLimit", options.IntegralLimit, "IntegralLimit must be finite and positive.");
        }

        _targetTicks = options.TargetLatency.Ticks;
        _kp = options.ProportionalGain;
        _ki = options.IntegralGain;
        _kd = options.DerivativeGain;
        _hysteresis = options.Hysteresis;
        _cooldown = options.Cooldown;
        _maxStep = options.MaxStep;
        _integralLimit = options.IntegralLimit;
    }

    /// <summary>The controller's integral term (for diagnostics); always within ±<see cref="PidLimitOptions.IntegralLimit"/>.</summary>
    public double Integral => _integral;

    /// <inheritdoc/>
    public override int Update(in AdaptiveWindow window)
    {
        int limit = window.Limit;
        if (window.SampleCount == 0 && window.DroppedCount == 0)
        {
            return limit;
        }

        double error = window.DroppedCount > 0
            ? -1
            : Math.Clamp((_targetTicks - window.AverageLatency.Ticks) / _targetTicks, -1, 1);
        double derivative = error - _previousError;
        _previousError = error;

        if (Math.Abs(error) <= _hysteresis)
        {
            _integral *= 0.5; // dead band: hold, and let the accumulated push fade
            return limit;
        }

        if (_lastChange != TimeSpan.MinValue && window.Elapsed - _lastChange < _cooldown)
        {
            return limit;
        }

        if (Math.Sign(error) != Math.Sign(_integral))
        {
            _integral = 0; // the error changed side: the old push is stale
        }

        bool saturated = (limit >= MaxLimit && error > 0) || (limit <= MinLimit && error < 0);
        if (!saturated)
        {
            _integral = Math.Clamp(_integral + error, -_integralLimit, _integralLimit);
        }

        double u = Math.Clamp((_kp * error) + (_ki * _integral) + (_kd * derivative), -_maxStep, _maxStep);
        double next = Math.Round(limit * (1 + u));
        if (next == limit && u != 0)
        {
            next = limit + Math.Sign(u);
        }

        int result = (int)Bound(next);
        if (result != limit)
        {
            _lastChange = window.Elapsed;
        }

        return result;
    }

    private static void CheckGain(double gain, string name)
    {
        if (!(gain >= 0 && double.IsFinite(gain)))
        {
            throw new ArgumentOutOfRangeException(name, gain, "Gains must be finite and at least 0.");
        }
    }
}
