using System.Diagnostics;

namespace LockFree;

/// <summary>
/// One delivery of a message from an <see cref="AckQueue{T}"/>: the message, how many times it has been delivered,
/// and a token that identifies this delivery, so an acknowledgement that arrives after the message was redelivered
/// (a stale ack) is refused.
/// </summary>
/// <typeparam name="T">The message type.</typeparam>
[DebuggerDisplay("{Message} (delivery {DeliveryCount})")]
public readonly struct Delivery<T>
{
    internal Delivery(object owner, T message, int deliveryCount, int slot, long stamp)
    {
        Owner = owner;
        Message = message;
        DeliveryCount = deliveryCount;
        Slot = slot;
        Stamp = stamp;
    }

    /// <summary>The message.</summary>
    public T Message { get; }

    /// <summary>How many times the message has been delivered, this delivery included (1 the first time).</summary>
    public int DeliveryCount { get; }

    /// <summary>The queue that made this delivery (null for <c>default</c>): slots and stamps mean something only there.</summary>
    internal object? Owner { get; }

    /// <summary>The in-flight slot this delivery holds.</summary>
    internal int Slot { get; }

    /// <summary>The slot's version for this delivery: it changes when the delivery ends (ack, nack, timeout).</summary>
    internal long Stamp { get; }
}
