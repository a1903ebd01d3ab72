namespace LockFree.Internal;

/// <summary>
/// Whether one or many threads play a role (producer or consumer) of a <c>SequencedRing</c>.
/// A static abstract constant, so the JIT removes the branch not taken in each specialisation.
/// </summary>
internal interface IRolePolicy
{
    /// <summary>True when exactly one thread plays the role at a time, so it may advance its index with a plain store.</summary>
    static abstract bool IsSingle { get; }
}

/// <summary>Exactly one thread plays the role: its index advances by a release store, no read-modify-write.</summary>
internal readonly struct SingleRole : IRolePolicy
{
    /// <inheritdoc/>
    public static bool IsSingle => true;
}

/// <summary>Many threads play the role: a position is claimed by compare-and-swap on the shared index.</summary>
internal readonly struct MultiRole : IRolePolicy
{
    /// <inheritdoc/>
    public static bool IsSingle => false;
}
