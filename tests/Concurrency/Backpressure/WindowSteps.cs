using LockFree.Tests.Concurrency.Scheduling;

namespace LockFree.Tests.Concurrency.Backpressure;

/// <summary>Steps shared by the parking-window models (<see cref="FirstParkWindowTests"/>, <see cref="ReArmWindowTests"/>).</summary>
internal static class WindowSteps
{
    /// <summary>Takes one of the published items (a CAS decrement in the simulated memory); false when none is visible.</summary>
    public static bool TryTake(ref long items)
    {
        long n = TestAtomics.LoadAcquire(ref items);
        while (n > 0)
        {
            long seen = TestAtomics.CompareExchange(ref items, n - 1, n);
            if (seen == n)
            {
                return true;
            }

            n = seen;
        }

        return false;
    }

    /// <summary>Spins (a scheduling point each time) until the test-only cue is set; the cue lives outside the simulated memory.</summary>
    public static void AwaitCue(ref int cue)
    {
        var spinner = default(SpinWait);
        while (Volatile.Read(ref cue) == 0)
        {
            TestAtomics.SpinOnce(ref spinner);
        }
    }
}
