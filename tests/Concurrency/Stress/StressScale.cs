using System.Globalization;

namespace LockFree.Tests.Concurrency.Stress;

/// <summary>
/// The one knob for stress sizes: the environment variable <c>LOCKFREE_STRESS_SCALE</c> (a positive integer,
/// default 1). Scale 1 is the CI size (each test moves about 200k items and the whole stress suite stays
/// well under a minute on two busy cores); a deep run is
/// <c>LOCKFREE_STRESS_SCALE=50 dotnet test tests/Concurrency -c Release --filter FullyQualifiedName~Stress</c>.
/// Item counts and timeouts grow linearly with the factor.
/// </summary>
public static class StressScale
{
    /// <summary>The environment variable read once per test run.</summary>
    public const string VariableName = "LOCKFREE_STRESS_SCALE";

    /// <summary>The scale factor: 1 unless the environment variable says otherwise.</summary>
    public static int Factor { get; } = Parse(Environment.GetEnvironmentVariable(VariableName));

    /// <summary>An item count at the current scale.</summary>
    public static long Items(long atScaleOne) => checked(atScaleOne * Factor);

    /// <summary>A timeout at the current scale: long enough for the scaled work, so a hang still fails clearly.</summary>
    public static TimeSpan Timeout(TimeSpan atScaleOne) => atScaleOne * Factor;

    /// <summary>Parses the variable; an invalid value is an error rather than silently treated as 1.</summary>
    public static int Parse(string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return 1;
        }

        if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int factor) || factor < 1)
        {
            throw new InvalidOperationException($"{VariableName} must be a positive integer, not '{value}'.");
        }

        return factor;
    }
}
