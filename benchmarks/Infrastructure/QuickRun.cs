using System.Diagnostics;
using System.Globalization;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Filters;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Loggers;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Perfolizer.Horology;
using LockFree.Benchmarks.Backpressure;
using LockFree.Benchmarks.Internal;
using LockFree.Benchmarks.Queues;
using LockFree.Benchmarks.Timers;
using LockFree.Benchmarks.WorkStealing;
using LockFree.Benchmarks.Throttling;

namespace LockFree.Benchmarks.Infrastructure;

/// <summary>
/// <c>--quick</c>: a curated subset (1P1C throughput at capacity 65536, round trip, batch, 2P2C MPMC, seam
/// overhead, the back-pressure buffer's try path, async waits and full-buffer policies, the work-stealing deque's owner push+pop,
/// the work-stealing scheduler's fork-join, timer-wheel schedule+cancel at 1K and 1M pending, token-bucket acquires and the
/// delay queue) with a short
/// in-process job, then one compact table of median ns/op and ratio to each group's baseline. Meant to finish in a few minutes on a 2-core machine; indicative, not the published figures.
/// With more arguments (<c>--quick --filter '*Uncontended*'</c>) the quick job runs whatever benchmarks of
/// the assembly they select instead of the curated subset.
/// </summary>
public static class QuickRun
{
    private static readonly Type[] Types =
    [
        typeof(QueueThroughputBenchmarks),
        typeof(QueueRoundTripBenchmarks),
        typeof(QueueBatchBenchmarks),
        typeof(MpmcQueueContentionBenchmarks),
        typeof(SeamOverheadBenchmarks),
        typeof(BackpressureTryPathBenchmarks),
        typeof(BackpressureAsyncBenchmarks),
        typeof(BackpressureFullBufferBenchmarks),
        typeof(BackpressureTimedWaitBenchmarks),
        typeof(WorkStealingDequePushPopBenchmarks),
        typeof(WorkStealingSchedulerForkJoinBenchmarks),
        typeof(TimerWheelScheduleCancelBenchmarks),
        typeof(TokenBucketAcquireBenchmarks),
        typeof(DelayQueuePendingBenchmarks),
    ];

    /// <summary>Runs the subset; returns a process exit code (non-zero when a benchmark failed).</summary>
    public static int Run(string[] extraArgs)
    {
        // In-process (emit) toolchain: no per-benchmark project build or process start, which is what makes
        // the run short; it also sidesteps any runtime-moniker detection issue of BDN 0.14 on .NET 10.
        Job job = Job.Default
            .WithToolchain(InProcessEmitToolchain.Instance)
            .WithLaunchCount(1)
            .WithWarmupCount(2)
            .WithIterationCount(7)
            .WithIterationTime(TimeInterval.FromMilliseconds(100))
            .WithUnrollFactor(1)
            .WithId("Quick");

        IConfig config = DefaultConfig.Instance
            .AddJob(job)
            .WithOptions(ConfigOptions.DisableLogFile);
        if (extraArgs.Length == 0)
        {
            // The curated subset measures throughput at the issue's headline capacity only; an explicit
            // --filter runs every parameter value.
            // The timer wheel runs its Immediate workload at 1K and 1M pending only.
            config = config.AddFilter(new SimpleFilter(bc =>
                (bc.Descriptor.Type != typeof(QueueThroughputBenchmarks)
                    || bc.Parameters.Items.Any(p => p.Name == nameof(QueueThroughputBenchmarks.Capacity) && (int)p.Value! == 65536))
                && (bc.Descriptor.Type != typeof(MpmcQueueContentionBenchmarks)
                    || bc.Parameters.Items.Any(p => p.Name == nameof(MpmcQueueContentionBenchmarks.Pairs) && (int)p.Value! == 2))
                && (bc.Descriptor.Type != typeof(TimerWheelScheduleCancelBenchmarks)
                    || (bc.Descriptor.Categories.Contains("Immediate")
                        && bc.Parameters.Items.Any(p => p.Name == nameof(TimerWheelScheduleCancelBenchmarks.Pending) && (int)p.Value! != 100_000)))
                // The delay queue at 1K and 1M pending (the issue's flatness check), the token bucket against the BCL
                // peer only, the scheduler with one worker per core only (Result and Join): the full classes run with --filter.
                && (bc.Descriptor.Type != typeof(DelayQueuePendingBenchmarks)
                    || bc.Parameters.Items.Any(p => p.Name == nameof(DelayQueuePendingBenchmarks.Pending) && (int)p.Value! != 100_000))
                && (bc.Descriptor.Type != typeof(TokenBucketAcquireBenchmarks)
                    || bc.Descriptor.WorkloadMethod.Name is "SuccessBcl" or "SuccessOurs" or "RejectionBcl" or "RejectionOurs")
                && (bc.Descriptor.Type != typeof(WorkStealingSchedulerForkJoinBenchmarks)
                    || bc.Descriptor.WorkloadMethod.Name is "Default" or "Sequential" or "WorkStealing" or "WorkStealingJoin" or "WorkStealingForkJoin")));
        }

        var stopwatch = Stopwatch.StartNew();
        Summary[] summaries = extraArgs.Length > 0
            ? BenchmarkSwitcher.FromAssembly(typeof(QuickRun).Assembly).Run(extraArgs, config).ToArray()
            : BenchmarkRunner.Run(Types, config);
        stopwatch.Stop();

        PrintCompactTable(summaries, ConsoleLogger.Default);
        ConsoleLogger.Default.WriteLineInfo(
            $"// Quick run: {summaries.Sum(s => s.Reports.Length)} benchmarks in {stopwatch.Elapsed.TotalMinutes:F1} min on {Environment.ProcessorCount} cores"
            + (Environment.ProcessorCount < 4 && summaries.Any(s => s.BenchmarksCases.Any(bc =>
                bc.Descriptor.Type == typeof(MpmcQueueContentionBenchmarks) || bc.Descriptor.Type == typeof(BackpressureAsyncBenchmarks)))
                ? " (2P2C figures OVERSUBSCRIBED: 4 spinning threads or async loops)."
                : "."));
        var failed = summaries.SelectMany(s => s.Reports).Where(r => !r.Success).Select(r => r.BenchmarkCase).ToList();
        foreach (var bc in failed)
        {
            ConsoleLogger.Default.WriteLineError(
                $"// FAILED: {bc.Descriptor.Type.Name}.{bc.Descriptor.WorkloadMethod.Name}"
                + (IsPeer(bc)
                    ? " (a .NET peer, not ours: not counted in the exit code. The peer BlockingCollection<T> fails now and then on"
                      + " this runtime's ConcurrentQueue<T> spurious empty, dotnet/runtime#132736; docs/queues.md, \"A note on the peer\")"
                    : string.Empty));
        }

        // A failing .NET peer is reported, not fatal: the job measures ours against them and a runtime bug in a peer
        // must not fail it. Any failure of ours, or a validation error, is.
        return summaries.Any(s => s.HasCriticalValidationErrors) || failed.Any(bc => !IsPeer(bc)) ? 1 : 0;
    }

    /// <summary>The .NET peers the benchmark classes measure ours against (method names), as opposed to our own cases and floors.</summary>
    private static readonly string[] PeerMethodPrefixes =
    [
        "ConcurrentQueue", "ConcurrentStack", "ConcurrentBag", "BlockingCollection", "BoundedChannel", "UnboundedChannel",
        "TimerCreateDispose", "PriorityQueueWithLock", "Default", "RejectionBcl", "SuccessBcl",
    ];

    private static bool IsPeer(BenchmarkDotNet.Running.BenchmarkCase bc) =>
        PeerMethodPrefixes.Any(p => bc.Descriptor.WorkloadMethod.Name.StartsWith(p, StringComparison.Ordinal));

    /// <summary>One line per benchmark: median ns/op, ratio of medians to its group's baseline, allocation, failed tries.</summary>
    public static void PrintCompactTable(IEnumerable<Summary> summaries, ILogger logger)
    {
        logger.WriteLine();
        logger.WriteLineHeader("// LockFree summary (median per operation; ratio = median / baseline median in the same group; < 1 is faster)");
        logger.WriteLineHeader(string.Format(CultureInfo.InvariantCulture,
            "{0,-58} {1,12} {2,8} {3,10} {4,9} {5,9}", "Benchmark", "Median ns/op", "Ratio", "Alloc B/op", "FailEnq", "FailDeq"));
        foreach (Summary summary in summaries)
        {
            var groups = summary.Reports.GroupBy(r => summary.GetLogicalGroupKey(r.BenchmarkCase) ?? string.Empty);
            foreach (var group in groups)
            {
                BenchmarkReport? baseline = group.FirstOrDefault(r => r.BenchmarkCase.Descriptor.Baseline);
                double? baselineMedian = baseline?.ResultStatistics?.Median;
                foreach (BenchmarkReport report in group)
                {
                    var bc = report.BenchmarkCase;
                    string parameters = bc.HasParameters ? "(" + bc.Parameters.DisplayInfo + ")" : string.Empty;
                    string categories = bc.Descriptor.Categories.Length > 0 ? "[" + string.Join(",", bc.Descriptor.Categories) + "]" : string.Empty;
                    string name = $"{bc.Descriptor.Type.Name.Replace("Benchmarks", string.Empty, StringComparison.Ordinal)}.{bc.Descriptor.WorkloadMethod.Name}{categories}{parameters}";
                    double? median = report.ResultStatistics?.Median;
                    string ratio = median is { } m && baselineMedian is { } b && b > 0 ? (m / b).ToString("0.000", CultureInfo.InvariantCulture) : "-";
                    long? allocated = report.GcStats.GetBytesAllocatedPerOperation(bc);
                    bool hasCounts = FailedTryColumn.TryGet(summary, bc, out var counts);
                    logger.WriteLine(string.Format(CultureInfo.InvariantCulture,
                        "{0,-58} {1,12} {2,8} {3,10} {4,9} {5,9}",
                        name,
                        median is { } med ? med.ToString("0.00", CultureInfo.InvariantCulture) : "FAILED",
                        ratio + (report.BenchmarkCase.Descriptor.Baseline ? "*" : string.Empty),
                        allocated?.ToString(CultureInfo.InvariantCulture) ?? "-",
                        hasCounts ? counts.Enqueue.ToString("G3", CultureInfo.InvariantCulture) : "-",
                        hasCounts ? counts.Dequeue.ToString("G3", CultureInfo.InvariantCulture) : "-"));
                }
            }
        }

        logger.WriteLine("// * = baseline. FailEnq/FailDeq: failed TryEnqueue/TryDequeue (or polls) per operation.");
    }
}
