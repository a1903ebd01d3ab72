using System.Text;
using LockFree.Internal;
using LockFree.Tests.Concurrency.Scheduling;
using LockFree.Tests.Unit.Support;
using Xunit;
using Xunit.Abstractions;

namespace LockFree.Tests.Concurrency.Composed;

/// <summary>
/// <see cref="RetryPolicy.ExecuteAsync{TResult}"/> itself under the controlled scheduler: here <see cref="RetryPolicy"/> is
/// the composed build (the library's sources on <see cref="TestAtomics"/>; Composed/README.md). A caller runs a call whose
/// action fails a number of times before it succeeds; its backoff waits are timers of a manual clock that another
/// logical thread advances (each timer fires on that thread, which then runs the operation's next attempt), and a third
/// thread may cancel the call's token. After every schedule: the call ends exactly once, with the action's result after
/// the promised attempts, with the last failure when the attempts run out, or with <see cref="TaskCanceledException"/>
/// once cancelled; no attempt starts before its backoff has passed on the clock; no attempt runs after the call ended;
/// and a cancelled call made no attempt after the cancellation was seen by its wait. Proof of power: a cancellation that
/// ends the wait but forgets to resume the operation (<see cref="PlantedFault.RetryCancelForgetsToResume"/>) is found.
/// </summary>
public sealed class RetryPolicyScheduleTests(ITestOutputHelper output)
{
    private const int PerStrategy = 300;

    /// <summary>A scenario: attempts allowed, failures before the action succeeds, backoff (ticks), whether a thread cancels.</summary>
    public sealed record Scenario(int MaxAttempts, int Failures, long Backoff, bool Cancels);

    public static TheoryData<string> Scenarios() => [.. All.Keys];

    internal static readonly Dictionary<string, Scenario> All = new()
    {
        ["3 attempts, fails twice, backoff 2"] = new(3, 2, 2, false),
        ["3 attempts, fails 3 times (exhausted), backoff 1"] = new(3, 3, 1, false),
        ["4 attempts, fails twice, backoff 2, cancelled"] = new(4, 2, 2, true),
        ["2 attempts, fails once, backoff 3, cancelled"] = new(2, 1, 3, true),
    };

    private static long s_results;
    private static long s_exhausted;
    private static long s_cancelled;

    [Theory]
    [MemberData(nameof(Scenarios))]
    public void Explore_RealRetryPolicy_EndsOnceNeverEarly(string name)
    {
        Scenario scenario = All[name];
        s_results = s_exhausted = s_cancelled = 0;
        ComposedRuns.ExploreStandard(output.WriteLine, name, 5600 + name.Length, ExplorationBudget.Schedules(PerStrategy), (strategy, budget) => Explore(strategy, name, scenario, PlantedFault.None, budget));

        output.WriteLine($"results {s_results}, exhausted {s_exhausted}, cancelled {s_cancelled}");
        if (scenario.Cancels)
        {
            Assert.True(s_cancelled > 0, "no call was cancelled");
        }

        else
        {
            Assert.True(scenario.Failures < scenario.MaxAttempts ? s_results > 0 : s_exhausted > 0, "the call never ended as its failures say");
        }
    }

    [Fact]
    public void Explore_CancelForgetsToResume_IsFound()
    {
        Scenario scenario = All["4 attempts, fails twice, backoff 2, cancelled"];
        ComposedRuns.AssertPlantedFound(
            output.WriteLine,
            "cancel forgets to resume",
            99,
            PlantedFault.RetryCancelForgetsToResume,
            (strategy, fault, budget) => Explore(strategy, "planted: cancel forgets to resume", scenario, fault, budget));
    }

    internal static ExplorationResult Explore(Strategy strategy, string name, Scenario scenario, PlantedFault faults, int budget, bool storeBuffers = false)
    {
        Action<Run>[] threads = scenario.Cancels
            ? [run => run.Call(), run => run.Advance(), run => run.Cancel()]
            : [run => run.Call(), run => run.Advance()];
        return ControlledTest.Explore(strategy, budget, () => new Run(scenario), threads, run => run.Check(), new ExploreOptions { Faults = faults, Name = name }.WithTso(storeBuffers));
    }

    private sealed class Run
    {
        private readonly Scenario _scenario;
        private readonly ManualTimeProvider _clock = new();
        private readonly RetryPolicy _policy;
        private readonly CancellationTokenSource _cancel = new();
        private readonly List<long> _attemptTimes = [];
        private readonly StringBuilder _log = new();
        private int _done; // test-only cues, outside the simulated memory: the call ended; an attempt ran
        private int _attempted;
        private int _attemptsAtEnd = -1;
        private string _outcome = "none";

        public Run(Scenario scenario)
        {
            _scenario = scenario;
            _policy = new RetryPolicy(new RetryPolicyOptions
            {
                MaxAttempts = scenario.MaxAttempts,
                BaseDelay = TimeSpan.FromTicks(scenario.Backoff),
                MaxDelay = TimeSpan.FromTicks(scenario.Backoff),
                Jitter = RetryJitter.None,
                TimeProvider = _clock,
            });
        }

        public void Call()
        {
            try
            {
                int result = ComposedRuns.Await(
                    _policy.ExecuteAsync(
                        static (run, _) => run.Attempt(),
                        this,
                        _cancel.Token),
                    polls => Assert(polls < 4000, $"the call never ended (clock {_clock.GetTimestamp()}, attempts {_attemptTimes.Count})"));
                Assert(result == _scenario.Failures, $"the call returned {result}");
                _outcome = "result";
            }
            catch (InvalidOperationException error) when (error.Message.StartsWith("attempt", StringComparison.Ordinal))
            {
                _outcome = "exhausted";
            }
            catch (OperationCanceledException)
            {
                Assert(_cancel.IsCancellationRequested, "the call was cancelled without a cancellation");
                _outcome = "cancelled";
            }

            _attemptsAtEnd = _attemptTimes.Count;
            _log.Append("call -> ").Append(_outcome).Append("; ");
            Interlocked.Exchange(ref _done, 1);
        }

        private ValueTask<int> Attempt()
        {
            int attempt = _attemptTimes.Count;
            long now = _clock.GetTimestamp();
            Assert(attempt == 0 || now >= _attemptTimes[^1] + _scenario.Backoff, $"attempt {attempt + 1} at {now}, before its backoff from {_attemptTimes.LastOrDefault()}");
            Assert(_attemptsAtEnd < 0, "an attempt ran after the call ended");
            _attemptTimes.Add(now);
            Volatile.Write(ref _attempted, 1);
            _log.Append("attempt ").Append(attempt + 1).Append(" at ").Append(now).Append("; ");
            return attempt < _scenario.Failures
                ? ValueTask.FromException<int>(new InvalidOperationException($"attempt {attempt + 1} failed"))
                : ValueTask.FromResult(attempt);
        }

        public void Advance()
        {
            ComposedRuns.AdvanceWhile(_clock, () => Volatile.Read(ref _done) == 0); // until the call ends; a due backoff timer fires on this thread: the next attempt runs here
        }

        public void Cancel()
        {
            var spinner = default(SpinWait);
            while (Volatile.Read(ref _attempted) == 0 && Volatile.Read(ref _done) == 0) // a test-only cue: cancel once the call has begun its retries
            {
                TestAtomics.SpinOnce(ref spinner);
            }

            _cancel.Cancel(); // the registration's callback ends a parked wait on this thread
            _log.Append("cancel; ");
        }

        public void Check()
        {
            switch (_outcome)
            {
                case "result":
                    s_results++;
                    Assert(_attemptTimes.Count == _scenario.Failures + 1, $"{_attemptTimes.Count} attempts for a result after {_scenario.Failures} failures");
                    break;
                case "exhausted":
                    s_exhausted++;
                    Assert(_scenario.Failures >= _scenario.MaxAttempts && _attemptTimes.Count == _scenario.MaxAttempts, $"exhausted after {_attemptTimes.Count} attempts");
                    break;
                case "cancelled":
                    s_cancelled++;
                    Assert(_attemptTimes.Count <= Math.Min(_scenario.MaxAttempts, _scenario.Failures + 1), $"{_attemptTimes.Count} attempts before the cancellation");
                    break;
                default:
                    Assert(false, "the call never ended");
                    break;
            }

            Assert(_attemptTimes.Count == _attemptsAtEnd, "an attempt ran after the call ended");
        }

        private void Assert(bool condition, string message)
        {
            if (!condition)
            {
                throw new CheckFailedException(message + "\nhistory: " + _log);
            }
        }
    }
}
