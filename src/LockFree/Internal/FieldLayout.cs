using System.Runtime.CompilerServices;

namespace LockFree.Internal;

/// <summary>Field offset measurement behind the engines' <c>FieldOffsets()</c>, used by the layout unit tests.</summary>
internal static class FieldLayout
{
    /// <summary>Bytes from <paramref name="start"/> to <paramref name="field"/> (both within one struct).</summary>
    public static nint Offset<TField>(ref byte start, ref TField field) =>
        Unsafe.ByteOffset(ref start, ref Unsafe.As<TField, byte>(ref field));
}
