using System.Diagnostics;

namespace LockFree.Benchmarks.Infrastructure;

/// <summary>
/// Drives benchmark loops to optimized (Tier-1) code before the harness measures anything. A benchmark method that
/// loops over thousands of items starts as instrumented Tier-0 code, runs on-stack-replaced (Tier1-OSR) code once its
/// loop is hot, and is promoted to Tier 1 only after 30 calls and a quiet spell of 100 ms with no new Tier-0
/// compilation, compiled in the background. The quick job's two 100 ms warm-up iterations do not always get there: read
/// off <c>DOTNET_JitDisasm</c> in session 11, the seam-overhead class measured its whole <c>DirectBurst</c> case on OSR
/// code (its Tier-1 version was compiled during the next case) against Tier-1 code for <c>SeamBurst</c>, and the two
/// kinds of code differ by up to 1.5x on these nanosecond loops. Calling each loop enough times, with pauses that let
/// the tiering delay expire and the background compiler finish, leaves every case measuring the code the runtime keeps.
/// <para>
/// Callers: when a loop method is called from a warm-up delegate rather than directly as a loop, that delegate should be
/// <c>[MethodImpl(MethodImplOptions.NoOptimization)]</c>. Otherwise the delegate, called every round, reaches Tier 1 itself and
/// inlines the loop; the loop's own entry is then no longer called, and it can stay on instrumented or Tier1-OSR code,
/// which is what the measured path (calling that entry from a delegate called a few times per iteration) then runs. Seen
/// in session 14 with <c>DOTNET_JitDisasmSummary</c>: in one run out of two or three of the contention classes, one
/// queue's <c>Transfer.Produce</c> or <c>Transfer.ConsumeUntilDrained</c> never reached Tier 1 in the whole process, right
/// after the warm-up's delegate for it was compiled at Tier 1.
/// </para>
/// </summary>
public static class TierUp
{
    /// <summary>Rounds at most (each calls every loop once).</summary>
    public const int Rounds = 300;

    /// <summary>The longest warm-up of one call.</summary>
    public const int BudgetMilliseconds = 1_500;

    /// <summary>The pause after every <see cref="RoundsPerPause"/> rounds: longer than the runtime's 100 ms tiering delay.</summary>
    public const int PauseMilliseconds = 150;

    /// <summary>Rounds between pauses.</summary>
    public const int RoundsPerPause = 50;

    /// <summary>Calls every loop once per round until <see cref="Rounds"/> or <see cref="BudgetMilliseconds"/>, pausing now and then.</summary>
    public static int Run(params Action[] loops) => Run(BudgetMilliseconds, loops);

    /// <summary>Calls every loop once per round until <see cref="Rounds"/> or <paramref name="budgetMilliseconds"/>, pausing now and then.</summary>
    /// <returns>The rounds run: fewer than <see cref="Rounds"/> when the budget stopped the warm-up first (a loaded machine).</returns>
    public static int Run(int budgetMilliseconds, params Action[] loops)
    {
        var clock = Stopwatch.StartNew();
        int round = 0;
        for (; round < Rounds && clock.ElapsedMilliseconds < budgetMilliseconds; round++)
        {
            foreach (Action loop in loops)
            {
                loop();
            }

            if (round % RoundsPerPause == RoundsPerPause - 1)
            {
                Thread.Sleep(PauseMilliseconds);
            }
        }

        return round;
    }

    /// <summary>
    /// <see cref="Run(int, Action[])"/>, then one line saying how long it took and whether the budget cut it short (then the
    /// slowest loops may still be short of Tier 1; read <c>DOTNET_JitDisasmSummary</c> to know).
    /// </summary>
    public static void RunAndReport(string what, int budgetMilliseconds, params Action[] loops)
    {
        var clock = Stopwatch.StartNew();
        int rounds = Run(budgetMilliseconds, loops);
        Console.WriteLine(
            $"// LockFree.Note {what} warm-up: {rounds} rounds in {clock.ElapsedMilliseconds} ms"
            + (rounds < Rounds ? $", stopped by its {budgetMilliseconds} ms budget." : "."));
    }
}
