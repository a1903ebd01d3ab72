using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace LockFree;

/// <summary>The result of a write to a <see cref="BackpressureBuffer{T}"/>: what happened, why, and when to retry.</summary>
[DebuggerDisplay("{Outcome} {Reason}")]
public readonly struct WriteResult : IEquatable<WriteResult>
{
    // Two 8-byte fields, not (int, int, TimeSpan): a result returned from a call that is not inlined (the overflow path)
    // travels in two registers, and when the JIT spills it, it stores and reloads whole 8-byte words (two 4-byte stores
    // read back as one 8-byte load miss store forwarding).
    private readonly long _code; // (uint)Outcome | ((long)(uint)Reason << 32)
    private readonly long _retryAfterTicks;

    private WriteResult(WriteOutcome outcome, RejectReason reason, TimeSpan retryAfter)
    {
        _code = (uint)outcome | ((long)(uint)reason << 32);
        _retryAfterTicks = retryAfter.Ticks;
    }

    /// <summary>A write whose item is in the buffer.</summary>
    public static WriteResult Accepted
    {
        // Forced inline: in a caller that already inlined the buffer's fast path the JIT's budget may leave it a call.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => default; // Accepted, None, zero: every field's default, so no static field read
    }

    /// <summary>A write whose incoming item was dropped by policy.</summary>
    public static WriteResult DroppedIncoming => new(WriteOutcome.DroppedIncoming, RejectReason.None, default); // default, not TimeSpan.Zero: no static field read, so the getter inlines

    /// <summary>A write that evicted the oldest item to take its place.</summary>
    public static WriteResult EvictedOldest => new(WriteOutcome.EvictedOldest, RejectReason.None, default); // default, not TimeSpan.Zero: no static field read, so the getter inlines

    /// <summary>A write to a completed buffer.</summary>
    public static WriteResult Completed => new(WriteOutcome.Completed, RejectReason.None, default); // default, not TimeSpan.Zero: no static field read, so the getter inlines

    /// <summary>What happened.</summary>
    public WriteOutcome Outcome => (WriteOutcome)(int)_code;

    /// <summary>Why the write was rejected; <see cref="RejectReason.None"/> otherwise.</summary>
    public RejectReason Reason => (RejectReason)(int)(_code >> 32);

    /// <summary>
    /// For a rejected write: how long until the buffer is expected to have room, from its measured drain rate
    /// (Little's law); <see cref="Timeout.InfiniteTimeSpan"/> when there is no estimate: nothing has drained lately (the
    /// reader may be stalled), or the buffer's clock threw while the hint was computed (counted in
    /// <see cref="BackpressureBuffer{T}.ClockFailureCount"/>). <see cref="TimeSpan.Zero"/> for every other outcome.
    /// </summary>
    public TimeSpan RetryAfter => new(_retryAfterTicks);

    /// <summary>Whether the item is now in the buffer (<see cref="WriteOutcome.Accepted"/> or <see cref="WriteOutcome.EvictedOldest"/>).</summary>
    public bool IsAccepted => Outcome is WriteOutcome.Accepted or WriteOutcome.EvictedOldest;

    /// <summary>Whether the call succeeded under its policy: accepted, evicted-oldest, or dropped-incoming.</summary>
    public bool IsSuccess => Outcome is WriteOutcome.Accepted or WriteOutcome.EvictedOldest or WriteOutcome.DroppedIncoming;

    /// <summary>Compares two results.</summary>
    public static bool operator ==(WriteResult left, WriteResult right) => left.Equals(right);

    /// <summary>Compares two results.</summary>
    public static bool operator !=(WriteResult left, WriteResult right) => !left.Equals(right);

    /// <summary>A rejected write with its reason and retry hint.</summary>
    public static WriteResult Rejected(RejectReason reason, TimeSpan retryAfter) => new(WriteOutcome.Rejected, reason, retryAfter);

    /// <inheritdoc/>
    public bool Equals(WriteResult other) => _code == other._code && _retryAfterTicks == other._retryAfterTicks;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is WriteResult other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Outcome, Reason, RetryAfter);

    /// <inheritdoc/>
    public override string ToString() => Outcome != WriteOutcome.Rejected ? Outcome.ToString()
        : RetryAfter == Timeout.InfiniteTimeSpan ? $"Rejected ({Reason}, no drain measured)" : $"Rejected ({Reason}, retry after {RetryAfter})";
}
