using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace LockFree.Tests.Concurrency.Backpressure;

/// <summary>
/// A queue engine struct that cannot move, for the store-buffer simulation (which writes buffered stores later through
/// raw pointers): the engine is copied into native memory, and its slot array (reachable from there only) is kept alive
/// and pinned by a handle. Freed by the finalizer.
/// </summary>
/// <typeparam name="TEngine">The engine struct (<c>SpscRing</c>, <c>SequencedRing</c>).</typeparam>
internal sealed unsafe class UnmovableEngine<TEngine>
    where TEngine : struct
{
    private readonly nint _memory;
    private GCHandle _slots;

    /// <summary>Copies <paramref name="engine"/> into native memory and pins its slot array, the field named <paramref name="slotsField"/>.</summary>
    public UnmovableEngine(TEngine engine, string slotsField)
    {
        object slots = typeof(TEngine).GetField(slotsField, BindingFlags.NonPublic | BindingFlags.Instance)?.GetValue(engine)
            ?? throw new InvalidOperationException($"{typeof(TEngine).Name}'s slot array field {slotsField} was renamed: update this test.");
        _slots = GCHandle.Alloc(slots, GCHandleType.Pinned);
        _memory = (nint)NativeMemory.AllocZeroed((nuint)Unsafe.SizeOf<TEngine>());
        Value = engine;
    }

    ~UnmovableEngine()
    {
        NativeMemory.Free((void*)_memory);
        _slots.Free();
    }

    /// <summary>The engine, in place.</summary>
    public ref TEngine Value => ref Unsafe.AsRef<TEngine>((void*)_memory);
}
