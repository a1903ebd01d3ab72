namespace LockFree;

/// <summary>A message that failed for good, with what is known about its failure.</summary>
/// <typeparam name="T">The message type.</typeparam>
/// <param name="Message">The message.</param>
/// <param name="SourceName">Where it failed: the queue, stage or consumer name. Required: <see cref="DeadLetterQueue{T}.TryAdd(DeadLetter{T})"/> refuses null.</param>
/// <param name="Reason">Why it was dead-lettered, in words (for example the <see cref="RetryStopReason"/>). Required: <see cref="DeadLetterQueue{T}.TryAdd(DeadLetter{T})"/> refuses null.</param>
/// <param name="Exception">The last failure, if there was one.</param>
/// <param name="AttemptCount">How many times processing was attempted: 0 or more (<see cref="DeadLetterQueue{T}.TryAdd(DeadLetter{T})"/> refuses a negative count).</param>
/// <param name="FirstAttempt">When the first attempt started.</param>
/// <param name="LastAttempt">When the last attempt started.</param>
public sealed record DeadLetter<T>(
    T Message,
    string SourceName,
    string Reason,
    Exception? Exception,
    int AttemptCount,
    DateTimeOffset FirstAttempt,
    DateTimeOffset LastAttempt);

/// <summary>A snapshot of a <see cref="DeadLetterQueue{T}"/>'s accounting. <c>Added = Replayed + Removed + Evicted + Count</c> when quiescent.</summary>
/// <param name="Added">Dead letters that entered the queue (accepted and evicted-oldest writes).</param>
/// <param name="Replayed">Dead letters a replay handed to a target.</param>
/// <param name="Removed">Dead letters taken out by <see cref="DeadLetterQueue{T}.TryTake"/> or <see cref="DeadLetterQueue{T}.RemoveWhere"/>.</param>
/// <param name="DroppedIncoming">Incoming dead letters discarded by <see cref="OverflowPolicy.DropIncoming"/>.</param>
/// <param name="Evicted">Dead letters evicted by <see cref="OverflowPolicy.DropOldest"/> (or that found no room when a failed replay put them back).</param>
/// <param name="Rejected">Writes rejected by <see cref="OverflowPolicy.Reject"/>.</param>
/// <param name="Count">Dead letters held.</param>
/// <param name="OldestAge">How long the oldest held dead letter has been in the queue; <see cref="TimeSpan.Zero"/> when empty.</param>
public readonly record struct DeadLetterStatistics(
    long Added, long Replayed, long Removed, long DroppedIncoming, long Evicted, long Rejected, int Count, TimeSpan OldestAge);

/// <summary>
/// What a replay did: how many dead letters went to the target, how many stayed because it refused them, and how many
/// were lost because they no longer fitted back. <c>Replayed + Kept + Dropped</c> is the number the replay selected
/// (and still found held).
/// </summary>
/// <param name="Replayed">Dead letters the target accepted (now gone from the dead-letter queue).</param>
/// <param name="Kept">
/// Dead letters selected but kept, because the target refused one (the replay stops at the first refusal): those put
/// back in the queue, where they were in arrival order.
/// </param>
/// <param name="Dropped">
/// Refused dead letters that no longer fitted back (adds filled the queue during the replay): the oldest of the
/// refused, gone from the queue, each also counted in <see cref="DeadLetterStatistics.Evicted"/> (so in the
/// <c>lockfree.deadletter.lost</c> metric) and reported to the drop callback with <see cref="DropReason.Oldest"/>.
/// Before (s12) the result did not say: a caller saw only that fewer were kept than refused, without the count refused.
/// </param>
public readonly record struct ReplayResult(int Replayed, int Kept, int Dropped = 0);
