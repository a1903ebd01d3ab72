using System.Diagnostics.CodeAnalysis;

namespace LockFree.Queues;

/// <summary>A queue whose head can be read from any thread for monitoring (a validated snapshot; see the engines).</summary>
internal interface IHeadSnapshot<T>
{
    /// <summary>A copy of the head item, validated against concurrent consumers; false when none could be read.</summary>
    bool TrySnapshotHead([MaybeNullWhen(false)] out T item);
}

/// <summary>A many-producer queue whose producer side can be closed (the mark bit of <c>SequencedRing.CloseProducers</c>).</summary>
internal interface IClosableProducers
{
    /// <summary>Closes the producers' side: every later enqueue answers false; claims made before complete. Returns the final tail.</summary>
    long CloseProducers();
}
