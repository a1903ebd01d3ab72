using System.Reflection;
using System.Reflection.Emit;
using LockFree.Internal;
using LockFree.Queues;
using Xunit;

namespace LockFree.Tests.Unit.Queues;

/// <summary>
/// "SPSC with no read-modify-write instructions" (issue 2; acceptance audit, 2026-11-23: nothing checked it). The
/// engine's IL, and that of every library method it reaches, is walked instruction by instruction: no call may reach a
/// read-modify-write member of the atomics seam (<see cref="IAtomics"/> <c>CompareExchange</c>, <c>Add</c>, its lock), a
/// <see cref="Interlocked"/> method other than a barrier, or a <see cref="Monitor"/>. The walk is shown to find the
/// compare-and-swap the many-producer engine does, so it can fail.
/// </summary>
public sealed class SpscNoReadModifyWriteTests
{
    private static readonly Dictionary<short, OpCode> OpCodesByValue = typeof(OpCodes)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => (OpCode)f.GetValue(null)!)
        .ToDictionary(o => o.Value);

    [Fact]
    public void SpscQueueAndRing_ReachNoReadModifyWriteMember()
    {
        List<string> found = ReadModifyWriteCalls(out HashSet<string> seam, typeof(SpscQueue<>), typeof(SpscRing<,>));

        Assert.True(found.Count == 0, "read-modify-write reached from the SPSC queue: " + string.Join("; ", found));
        Assert.Contains(nameof(IAtomics.StoreRelease), seam); // the walk really read the engine: it met the publishing store
        Assert.Contains(nameof(IAtomics.LoadAcquire), seam);
    }

    [Fact]
    public void Walk_ManyProducerEngine_FindsItsCompareAndSwap()
    {
        // The control: the MPSC/MPMC engine claims positions with a CAS, which the same walk must report.
        List<string> found = ReadModifyWriteCalls(out _, typeof(SequencedRing<,,,>));

        Assert.Contains(found, f => f.Contains(nameof(IAtomics.CompareExchange), StringComparison.Ordinal));
    }

    /// <summary>The read-modify-write members reached from the methods of <paramref name="roots"/> (and their nested types), as "caller -> callee"; <paramref name="seamMembers"/>: every seam member met.</summary>
    private static List<string> ReadModifyWriteCalls(out HashSet<string> seamMembers, params Type[] roots)
    {
        var found = new List<string>();
        seamMembers = new HashSet<string>();
        var seen = new HashSet<MethodBase>();
        var pending = new Stack<MethodBase>();
        foreach (Type root in roots)
        {
            foreach (MethodBase method in MethodsOf(root))
            {
                pending.Push(method);
            }
        }

        Assembly library = typeof(SpscQueue<>).Assembly;
        while (pending.Count > 0)
        {
            MethodBase method = pending.Pop();
            if (!seen.Add(method))
            {
                continue;
            }

            foreach (MethodBase callee in Callees(method))
            {
                if (callee.DeclaringType == typeof(IAtomics))
                {
                    seamMembers.Add(callee.Name);
                }

                if (IsReadModifyWrite(callee))
                {
                    found.Add($"{method.DeclaringType?.Name}.{method.Name} -> {callee.DeclaringType?.Name}.{callee.Name}");
                }
                else if (callee.DeclaringType?.Assembly == library && !callee.IsAbstract)
                {
                    pending.Push(Definition(callee));
                }
            }
        }

        return found;
    }

    private static bool IsReadModifyWrite(MethodBase callee) =>
        (callee.DeclaringType == typeof(IAtomics) && callee.Name is nameof(IAtomics.CompareExchange) or nameof(IAtomics.Add) or nameof(IAtomics.EnterLock))
        || (callee.DeclaringType == typeof(Interlocked) && callee.Name is not (nameof(Interlocked.MemoryBarrier) or nameof(Interlocked.MemoryBarrierProcessWide)))
        || callee.DeclaringType == typeof(Monitor);

    /// <summary>Every method and constructor declared by <paramref name="type"/> and its nested types (lambdas, local functions).</summary>
    private static IEnumerable<MethodBase> MethodsOf(Type type)
    {
        const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
        foreach (MethodBase m in type.GetMethods(all).Cast<MethodBase>().Concat(type.GetConstructors(all)))
        {
            yield return m;
        }

        foreach (Type nested in type.GetNestedTypes(BindingFlags.Public | BindingFlags.NonPublic))
        {
            foreach (MethodBase m in MethodsOf(nested))
            {
                yield return m;
            }
        }
    }

    /// <summary>The open generic definition of a method reached through a constructed type or method, so its IL is read once.</summary>
    private static MethodBase Definition(MethodBase method)
    {
        if (method is MethodInfo { IsGenericMethod: true } generic && !generic.IsGenericMethodDefinition)
        {
            method = generic.GetGenericMethodDefinition();
        }

        Type? type = method.DeclaringType;
        if (type is { IsGenericType: true, IsGenericTypeDefinition: false })
        {
            return MethodBase.GetMethodFromHandle(method.MethodHandle, type.GetGenericTypeDefinition().TypeHandle) ?? method;
        }

        return method;
    }

    /// <summary>The methods <paramref name="method"/> calls (call, callvirt, newobj, ldftn), read from its IL one instruction at a time.</summary>
    private static IEnumerable<MethodBase> Callees(MethodBase method)
    {
        byte[]? il = method.GetMethodBody()?.GetILAsByteArray();
        if (il is null)
        {
            yield break;
        }

        Type[]? typeArguments = method.DeclaringType is { IsGenericType: true } t ? t.GetGenericArguments() : null;
        Type[]? methodArguments = method.IsGenericMethod ? method.GetGenericArguments() : null;
        int i = 0;
        while (i < il.Length)
        {
            short value = il[i] == 0xFE && i + 1 < il.Length ? (short)(0xFE00 | il[i + 1]) : il[i];
            OpCode op = OpCodesByValue[value];
            i += op.Size;
            int operand = OperandSize(op, il, i);
            if (op.OperandType == OperandType.InlineMethod)
            {
                MethodBase? callee = null;
                try
                {
                    callee = method.Module.ResolveMethod(BitConverter.ToInt32(il, i), typeArguments, methodArguments);
                }
                catch (ArgumentException)
                {
                    // A token this context cannot resolve: none of the seam's or the runtime's RMW members is one.
                }

                if (callee is not null)
                {
                    yield return callee;
                }
            }

            i += operand;
        }
    }

    private static int OperandSize(OpCode op, byte[] il, int at) => op.OperandType switch
    {
        OperandType.InlineNone => 0,
        OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar => 1,
        OperandType.InlineVar => 2,
        OperandType.InlineI8 or OperandType.InlineR => 8,
        OperandType.InlineSwitch => 4 + (4 * BitConverter.ToInt32(il, at)),
        _ => 4,
    };
}
