using FsCheck;
using FsCheck.Fluent;
using LockFree.Tests.Concurrency.Scheduling;
using Xunit;

namespace LockFree.Tests.Concurrency.Queues;

/// <summary>
/// The four real queue engines under x86-TSO: <see cref="GeneratedScenarioTests"/>' generated scenarios (prefill, two or
/// three thread programs of single and batch operations, drain and checks, linearizability) explored with store buffers,
/// each schedule in a no-GC region, so a release store still buffered while a later load runs is explored too; and the
/// place-or-evict enqueue behind <c>DropOldest</c> in every scenario of <see cref="EvictingEnqueueScheduleTests"/>. The queues
/// need no full fence; this shows it under the model, not only under sequential consistency.
/// </summary>
[Collection(StillObjectsCollection.Name)]
public sealed class QueueTsoScheduleTests(Xunit.Abstractions.ITestOutputHelper output)
{
    /// <summary>Generated scenarios per queue kind in CI.</summary>
    private const int Scenarios = 40;

    [Theory]
    [MemberData(nameof(GeneratedScenarioTests.Kinds), MemberType = typeof(GeneratedScenarioTests))]
    public void GeneratedScenarios_RealEngineUnderTso_PassAllChecks(QueueKind kind) =>
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(ExplorationBudget.Schedules(Scenarios)), GeneratedScenarioTests.Passes(kind, PlantedBug.None, tso: true));

    [Theory]
    [MemberData(nameof(EvictingEnqueueScheduleTests.Scenarios), MemberType = typeof(EvictingEnqueueScheduleTests))]
    public void EvictingEnqueue_RealEngineUnderTso_LinearizableAndEveryItemOnce(string scenario) =>
        EvictingEnqueueScheduleTests.ExploreUnderTso(scenario, output.WriteLine, ExplorationBudget.Schedules(100));
}
