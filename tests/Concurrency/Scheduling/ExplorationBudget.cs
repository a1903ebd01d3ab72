using System.Globalization;

namespace LockFree.Tests.Concurrency.Scheduling;

/// <summary>
/// The one knob for exploration and stress depth: <c>LOCKFREE_STRESS_SCALE</c> (default 1) multiplies every
/// schedule count, so CI runs the small version and a deep run is one command away
/// (<c>LOCKFREE_STRESS_SCALE=20 dotnet test tests/Concurrency -c Release</c>).
/// </summary>
public static class ExplorationBudget
{
    /// <summary>The environment variable read.</summary>
    public const string Variable = "LOCKFREE_STRESS_SCALE";

    /// <summary>The multiplier: a positive number, 1 when unset or unreadable.</summary>
    public static double Scale { get; } =
        double.TryParse(Environment.GetEnvironmentVariable(Variable), NumberStyles.Float, CultureInfo.InvariantCulture, out double s) && s > 0
            ? s
            : 1;

    /// <summary><paramref name="ciCount"/> schedules scaled by <see cref="Scale"/> (at least 1).</summary>
    public static int Schedules(int ciCount) => (int)Math.Max(1, Math.Min(int.MaxValue, Math.Round(ciCount * Scale)));
}
