using System.Globalization;
using System.Reflection;
using System.Runtime.CompilerServices;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace LockFree.Benchmarks.Infrastructure;

/// <summary>
/// Base of the benchmarks that count failed Try* calls (JCTools style): a full queue on enqueue, an empty
/// one on dequeue, or a failed poll in a ping-pong. Counts are per operation (per item moved or round trip),
/// over every invocation of the case (pilot and warm-up included). [GlobalCleanup] prints them (a
/// <c>// LockFree.FailedTry</c> line in the log) and appends them to the file named by
/// <see cref="FailedTryColumn.FileVariable"/>, which the host process sets before it starts benchmarks and
/// <see cref="FailedTryColumn"/> reads back: that works for the out-of-process toolchain (whose process
/// output after the results is not kept by BDN 0.14) and in-process alike.
/// </summary>
public abstract class FailedTryBenchmark
{
    internal const string OutputPrefix = "// LockFree.FailedTry ";

    private long _failedEnqueues;
    private long _failedDequeues;
    private long _operations;
    private string? _method;

    /// <summary>Adds one invocation's counts. Call from the benchmark thread after the round has finished.</summary>
    protected void Count(long operations, long failedEnqueues, long failedDequeues, [CallerMemberName] string method = "")
    {
        _method = method;
        _operations += operations;
        _failedEnqueues += failedEnqueues;
        _failedDequeues += failedDequeues;
    }

    /// <summary>Forgets the counts so far (a warm-up's).</summary>
    protected void ResetFailedTries()
    {
        _method = null;
        _operations = _failedEnqueues = _failedDequeues = 0;
    }

    /// <summary>Publishes the counts; call from [GlobalCleanup].</summary>
    protected void ReportFailedTries()
    {
        if (_method is null || _operations == 0)
        {
            return;
        }

        double enq = (double)_failedEnqueues / _operations;
        double deq = (double)_failedDequeues / _operations;
        string key = FailedTryColumn.Key(BenchmarkType().Name, _method, ParamsOf(this));
        string line = string.Create(CultureInfo.InvariantCulture, $"{key}\t{enq:R}\t{deq:R}");
        if (Environment.GetEnvironmentVariable(FailedTryColumn.FileVariable) is { Length: > 0 } file)
        {
            File.AppendAllLines(file, [line]);
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{OutputPrefix}{key}: {enq:G3} failed enqueues/op, {deq:G3} failed dequeues/op ({_failedEnqueues}, {_failedDequeues} over {_operations} ops)"));
        _method = null;
        _operations = _failedEnqueues = _failedDequeues = 0;
    }

    /// <summary>
    /// The benchmark class as BDN names it: the in-process emit toolchain runs a generated subclass in a
    /// dynamic assembly, so walk up to the class declared in this assembly.
    /// </summary>
    private Type BenchmarkType()
    {
        Type type = GetType();
        while (type.Assembly != typeof(FailedTryBenchmark).Assembly && type.BaseType is { } baseType)
        {
            type = baseType;
        }

        return type;
    }

    private static IEnumerable<(string Name, object? Value)> ParamsOf(object benchmark)
    {
        const BindingFlags flags = BindingFlags.Public | BindingFlags.Instance;
        foreach (PropertyInfo p in benchmark.GetType().GetProperties(flags))
        {
            if (p.IsDefined(typeof(ParamsAttribute)))
            {
                yield return (p.Name, p.GetValue(benchmark));
            }
        }

        foreach (FieldInfo f in benchmark.GetType().GetFields(flags))
        {
            if (f.IsDefined(typeof(ParamsAttribute)))
            {
                yield return (f.Name, f.GetValue(benchmark));
            }
        }
    }
}

/// <summary>Summary columns: failed TryEnqueue / TryDequeue calls per operation.</summary>
public sealed class FailedTryColumn(bool enqueue) : IColumn
{
    /// <summary>Failed enqueues (queue full) per operation.</summary>
    public static readonly IColumn Enqueue = new FailedTryColumn(true);

    /// <summary>Failed dequeues / polls (queue empty) per operation.</summary>
    public static readonly IColumn Dequeue = new FailedTryColumn(false);

    /// <summary>Environment variable naming the file the benchmark processes append their counts to.</summary>
    public const string FileVariable = "LOCKFREE_BENCH_FAILED_TRY_FILE";

    /// <summary>Names a fresh counts file for this host and the benchmark processes it starts; returns its path.</summary>
    public static string PrepareFile()
    {
        string file = Path.Combine(Path.GetTempPath(), $"lockfree-bench-failed-try-{Environment.ProcessId}.tsv");
        File.Delete(file);
        Environment.SetEnvironmentVariable(FileVariable, file); // inherited by the benchmark processes
        return file;
    }

    public string Id => enqueue ? "LockFree.FailedEnq" : "LockFree.FailedDeq";
    public string ColumnName => enqueue ? "FailedEnq/op" : "FailedDeq/op";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => enqueue ? 0 : 1;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => enqueue
        ? "Failed TryEnqueue calls (queue full) per operation, all invocations of the case"
        : "Failed TryDequeue calls or polls (queue empty) per operation, all invocations of the case";

    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public bool IsAvailable(Summary summary) => true;
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, summary.Style);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style) =>
        TryGet(summary, benchmarkCase, out var counts)
            ? (enqueue ? counts.Enqueue : counts.Dequeue).ToString("G3", CultureInfo.InvariantCulture)
            : "-";

    /// <summary>The counts of a case, from the counts file (the last line for the case wins).</summary>
    public static bool TryGet(Summary summary, BenchmarkCase benchmarkCase, out (double Enqueue, double Dequeue) counts)
    {
        counts = default;
        if (Environment.GetEnvironmentVariable(FileVariable) is not { Length: > 0 } file || !File.Exists(file))
        {
            return false;
        }

        string key = Key(
            benchmarkCase.Descriptor.Type.Name,
            benchmarkCase.Descriptor.WorkloadMethod.Name,
            benchmarkCase.Parameters.Items.Select(p => (p.Name, (object?)p.Value)));
        bool found = false;
        foreach (string line in File.ReadLines(file))
        {
            string[] parts = line.Split('\t');
            if (parts.Length == 3 && parts[0] == key)
            {
                counts = (double.Parse(parts[1], CultureInfo.InvariantCulture), double.Parse(parts[2], CultureInfo.InvariantCulture));
                found = true;
            }
        }

        return found;
    }

    internal static string Key(string type, string method, IEnumerable<(string Name, object? Value)> parameters) =>
        type + "." + method + "(" + string.Join(",", parameters
            .OrderBy(p => p.Name, StringComparer.Ordinal)
            .Select(p => p.Name + "=" + Convert.ToString(p.Value, CultureInfo.InvariantCulture))) + ")";

    public override string ToString() => ColumnName;
}

/// <summary>Config every benchmark class in this assembly uses: adds the failed-try columns.</summary>
public sealed class LockFreeBenchmarkConfig : ManualConfig
{
    public LockFreeBenchmarkConfig()
    {
        AddColumn(FailedTryColumn.Enqueue, FailedTryColumn.Dequeue);
    }
}
