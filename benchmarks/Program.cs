using BenchmarkDotNet.Running;
using LockFree.Benchmarks.Infrastructure;

namespace LockFree.Benchmarks;

/// <summary>
/// Entry point.
///   dotnet run -c Release --project benchmarks -- --quick
///       the curated short run (<see cref="QuickRun"/>): in-process, a few iterations, a compact ratio table.
///   dotnet run -c Release --project benchmarks -- [BenchmarkDotNet arguments]
///       everything else goes to BenchmarkSwitcher: --filter '*', --job short, --inProcess, --list flat, ...
///       and the same compact ratio table is printed at the end.
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        string countsFile = FailedTryColumn.PrepareFile();
        try
        {
            return Run(args);
        }
        finally
        {
            File.Delete(countsFile);
        }
    }

    private static int Run(string[] args)
    {
        if (args.Contains("--quick", StringComparer.Ordinal))
        {
            return QuickRun.Run(args.Where(a => a != "--quick").ToArray());
        }

        var summaries = BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args).ToArray();
        if (summaries.Any(s => s.Reports.Length > 0))
        {
            QuickRun.PrintCompactTable(summaries, BenchmarkDotNet.Loggers.ConsoleLogger.Default);
        }

        return summaries.Any(s => s.HasCriticalValidationErrors || s.Reports.Any(r => !r.Success)) ? 1 : 0;
    }
}
