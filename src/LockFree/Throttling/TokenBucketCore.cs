using System.Runtime.CompilerServices;
using LockFree.Internal;

namespace LockFree.Throttling;

/// <summary>What the engine's acquire answered.</summary>
internal enum AcquireStatus
{
    /// <summary>The tokens were taken.</summary>
    Acquired,

    /// <summary>Not enough tokens (or waiters are queued ahead): nothing was taken.</summary>
    Refused,

    /// <summary>The bucket was retired by a keyed table's eviction: look the key up again.</summary>
    Retired,
}

// Design: a GCRA token bucket (the "virtual scheduling" form of the generic cell rate algorithm, ITU-T I.371)
// whose success path is one compare-and-swap on a counter of pre-credited tokens and reads no clock.
//
// Time. _tat is the theoretical arrival time: the instant at which the bucket would be full again. The bucket
// holds Capacity - max(_tat - now, 0) / Interval tokens at `now`. Times are in units of (provider tick >> Shift),
// measured from the bucket's creation, so _tat starts at 0 = full. Interval (units per token) is rounded up,
// so the effective rate is never above the configured one.
//
// The fast word _fast.Value packs [Closed:1 @62][Waiting:1 @61][Retired:1 @60][count:40 @0]. count is a batch of
// tokens the last refill took out of the bucket but has not charged to _tat yet: any thread takes from it with
// one CAS (count - n), without reading the clock. Any flag set makes that CAS's range check fail.
//
// Refill (the slow path) is an ownership hand-off on the same word: a thread CASes Closed in, becomes the owner,
// reads the clock once, settles the batch and publishes a new word with a release store. _tat, _issued and the
// statistics are plain fields touched only by the owner, ordered by the CAS that closes (acquire) and the store
// that reopens (release). The owner's section is a few dozen instructions (no allocation, no user code); a thread
// that finds the word Closed waits it out (spin, then yield) rather than refuse: a refusal while tokens exist
// would be a wrong answer.
//
// Charging at settlement, not at issue. The batch's tokens are charged when the batch is settled, at the
// settler's clock reading, which is later than every spend from it: _tat = max(_tat, now) + spent * Interval.
// max() is monotone in its time argument, so this _tat is never below the _tat of an exact GCRA bucket that
// charged each token at the instant it was taken. And a batch is issued only when the settled bucket holds all
// of it, so an exact bucket would have admitted every token of it at any later instant. Hence every admission
// is one an exact GCRA bucket also makes: over any window, admitted <= Capacity + rate * elapsed (no slack).
// The price is the other direction: tokens spent early from a batch that is settled late are charged late, so
// the bucket may refuse while an exact one would still hold up to Batch - 1 tokens. The thread that takes a
// batch's last token settles it on the spot (one clock read per batch), which keeps that gap small; Batch = 1
// makes the bucket exact (and read the clock on every call).
//
// Refusal memos: a refusal by the owner leaves "fewer than k tokens until E" (E = when the bucket will hold k, one
// more than it holds now), in two forms. The fine memo holds E in the bucket's units, rounded down, and answers on
// the precise clock of any provider, without the word's ownership (no CAS, no shared store). The coarse memo (only
// for TimeProvider.System, whose clock the coarse tick follows) holds E less a margin in Environment.TickCount64
// milliseconds and answers on that clock alone (about 4 ns), inlined right after the failed fast path. Admissions
// only lower the bucket and keep a memo's refusals true, but make the instant it names (the retry hint) early, so
// every admission clears both memos (the owner is there anyway); refunds and retiring clear them too. While a memo
// lives no batch is open: a refusal publishes none and the admission that opens one clears the memos. Memo
// refusals are counted on a ThreadOwnedCounter (per-thread slots, no locked instruction, exact).
//
// Thread caches (buckets with a batch of 128 or more, see DefaultThreadCache): a thread whose cache is empty takes
// ThreadCache tokens from the batch with the same one CAS and keeps the rest in a slot of its own (ThreadTokenCache),
// labelled with the batch epoch _epoch; later acquires take from the slot with plain accesses after one load of
// _epoch (no locked instruction, no shared store). Every settlement first bumps _epoch with a full fence, then reads
// the clock. Why that is exact for the bound: an admission from a cache takes effect at its load of _epoch, which saw
// the old epoch, so it precedes the bump and hence the clock read of the settlement that charges the cache's tokens
// (they left the word when the cache took them, so that settlement counts them as spent). So every cached token is
// charged no earlier than it is admitted, as in the batch argument above; once the epoch moves on, a cache's
// leftover is dead (charged but never admitted). The label is the epoch read before the CAS that filled the cache,
// kept only if a second read after the CAS still sees it: the epoch moves only while the word is Closed, so an
// unchanged epoch across the successful CAS is the epoch of the batch it took from. Otherwise the request's own
// tokens are admitted (at the CAS) and the rest is dead. The price, in exactness: each settlement kills the other
// threads' leftovers, so a refusal may come while an exact bucket still holds Batch - 1 + (threads - 1) x
// (ThreadCache - 1) tokens; the thread that drains a batch takes its last tokens one at a time (a cache is filled only
// while more than ThreadCache tokens remain), so one thread alone wastes nothing. SetWaiting(true) bumps too, so no
// cached admission barges past a waiter. Keyed tables (many buckets) and exact buckets (batch 1) do not cache.
//
// Progress: while a batch has tokens the success path is lock-free (a failed CAS means another thread's
// succeeded). A refill is a short critical section on the word: a thread preempted inside it delays the others
// (they yield) until it runs again; it never over-admits and never refuses spuriously. Waiting (async, FIFO) lives in TokenBucket; it sets Waiting so that
// the fast path stops and refusals happen on the slow path, where FIFO order is kept (no barging).
internal partial struct TokenBucketCore<TAtomics>
    where TAtomics : struct, IAtomics
{
    public const long CountMask = (1L << 40) - 1;
    public const long RetiredFlag = 1L << 60;
    public const long WaitingFlag = 1L << 61;
    public const long ClosedFlag = 1L << 62;

    /// <summary>Bits of the refusal memo that hold the token count it refuses from.</summary>
    private const int MemoTokenBits = 20;

    private const long MemoTokenMask = (1L << MemoTokenBits) - 1;

    /// <summary>
    /// How much earlier than computed a refusal memo stops answering (ms): covers Environment.TickCount64's
    /// coarseness (a jiffy on Linux, 15.6 ms on Windows) and the rounding, so the memo never refuses a request
    /// the exact bucket would admit.
    /// </summary>
    private const long CoarseMarginMs = 32;

    /// <summary>The longest a memo lasts (ms): bounds any drift between the coarse and the precise clock.</summary>
    private const long MaxMemoMs = 1000;

    private PaddedIndex _fast;
    private long _epoch = 1;    // the batch epoch of thread caches: written by the owner (a locked add), read by cached admissions
    private long _tat;          // plain: owner-only (see design)
    private long _issued;       // plain: owner-only; tokens of the open batch (0 when none)
    private long _settled;      // plain: owner-only; tokens charged to _tat so far (statistics)
    private long _refused;      // plain: owner-only; refusals (statistics)
    private long _idlePoll;     // plain: owner-only; the word the last IdleUnits saw (an unchanged word: no fast-path take since)
    private long _seenCount = -1; // plain: owner-only; the open batch's count when the owner last saw it (-1: never), see TryRetireIfIdle
    private long _seenAt;         // plain: owner-only; the clock reading (units) at that sighting
    private long _memo;         // [good-until ms since _originTick:44][short of tokens:20]; 0 = none
    private long _fineMemo;     // [good-until units >> _fineShift:44][short of tokens:20]; 0 = none
    private ThreadOwnedCounter? _memoRefused; // refusals made on the memo; created on first use
    private long _memoRefusedLean;            // refusals made on the memo, for lean-counting buckets (keyed tables): locked adds
    private readonly bool _coarse;
    private readonly long _originTick;

    private readonly TimeProvider _time;
    private readonly long _origin;
    private readonly int _shift;
    private readonly long _interval;
    private readonly long _burst;
    private readonly long _capacity;
    private readonly long _batch;
    private readonly double _unitsPerSecond;
    private readonly double _unitsPerMs;
    private readonly int _fineShift;
    private readonly long _coarseMinUnits; // waits longer than this get a coarse memo (system clock only)
    private readonly ThreadTokenCache? _cache; // null: no thread caches
    private readonly long _threadCache;        // tokens a thread takes into its cache at once (0: none)
    private readonly bool _plantedSkipEpochBump; // tests only: the planted-bug twin of the epoch bump
    private readonly bool _plantedStaleSighting; // tests only: the planted-bug twin of TryRetireIfIdle's count check (charges at the last sighting even if the batch moved since)
    private readonly bool _leanRefusalCount;     // memo refusals counted with a locked add instead of per-thread slots

    public TokenBucketCore(long capacity, double tokensPerSecond, long fastPathBatch, TimeProvider time)
        : this(capacity, tokensPerSecond, fastPathBatch, time, DefaultThreadCache(fastPathBatch))
    {
    }

    public TokenBucketCore(long capacity, double tokensPerSecond, long fastPathBatch, TimeProvider time, long threadCache, bool leanRefusalCount = false, bool plantedSkipEpochBump = false, bool plantedStaleSighting = false)
    {
        ValidateRate(tokensPerSecond);
        ValidateCapacity(capacity);
        if (fastPathBatch < 1 || fastPathBatch > capacity)
        {
            throw new ArgumentOutOfRangeException(nameof(fastPathBatch), fastPathBatch, "The fast-path batch must be between 1 and the capacity.");
        }

        _time = time;
        _capacity = capacity;
        _batch = fastPathBatch;
        long frequency = time.TimestampFrequency;
        (_shift, _interval) = ChooseUnits(frequency, tokensPerSecond);
        if (_interval > (long.MaxValue >> 2) / capacity)
        {
            throw new ArgumentOutOfRangeException(nameof(capacity), capacity,
                $"Capacity x token interval overflows: {capacity} tokens at {tokensPerSecond} tokens/s is a burst longer than the clock can represent.");
        }

        _burst = capacity * _interval;
        _unitsPerSecond = frequency * (double)(1L << _shift);
        _unitsPerMs = _unitsPerSecond / 1000;
        _fineShift = ChooseFineShift(_unitsPerSecond);
        _coarseMinUnits = (long)Math.Min((CoarseMarginMs + 1) * _unitsPerMs, long.MaxValue / 2);
        _origin = time.GetTimestamp();
        _coarse = ReferenceEquals(time, TimeProvider.System);
        _originTick = Environment.TickCount64 - 1; // so a good-until time is never 0 (= no memo)
        if (threadCache < 0 || (threadCache > 0 && (threadCache < 2 || threadCache * 2 > fastPathBatch)))
        {
            throw new ArgumentOutOfRangeException(nameof(threadCache), threadCache, "A thread cache must be 0 (none) or between 2 and half the batch.");
        }

        _threadCache = threadCache;
        _cache = threadCache > 0 ? new ThreadTokenCache() : null;
        _plantedSkipEpochBump = plantedSkipEpochBump;
        _plantedStaleSighting = plantedStaleSighting;
        _leanRefusalCount = leanRefusalCount;
    }

    public readonly long Capacity => _capacity;

    public readonly long Batch => _batch;

    /// <summary>Units of time per token (provider ticks shifted left by <see cref="Shift"/>).</summary>
    public readonly long Interval => _interval;

    public readonly int Shift => _shift;

    public readonly double UnitsPerSecond => _unitsPerSecond;

    public readonly TimeProvider Time => _time;

    /// <summary>The effective rate after rounding the interval up to whole clock units.</summary>
    public readonly double EffectiveTokensPerSecond => _unitsPerSecond / _interval;

    internal static void ValidateRate(double tokensPerSecond)
    {
        if (!double.IsFinite(tokensPerSecond) || tokensPerSecond <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(tokensPerSecond), tokensPerSecond, "The rate must be a positive, finite number of tokens per second.");
        }
    }

    internal static void ValidateCapacity(long capacity)
    {
        if (capacity < 1 || capacity > CountMask)
        {
            throw new ArgumentOutOfRangeException(nameof(capacity), capacity, $"Capacity must be between 1 and {CountMask}.");
        }
    }

    /// <summary>
    /// Picks the time unit: the provider tick shifted left so a token's interval has at least 2^12 units (precision
    /// better than 1/4096), as long as a century of time still fits in 62 bits.
    /// </summary>
    private static (int Shift, long Interval) ChooseUnits(long frequency, double tokensPerSecond)
    {
        const double Century = 100 * 365.25 * 86400;
        int shift = 0;
        while (shift < 20
            && frequency / tokensPerSecond * (1L << shift) < 4096
            && frequency * (double)(1L << (shift + 1)) * Century < long.MaxValue / 4)
        {
            shift++;
        }

        double exact = frequency * (double)(1L << shift) / tokensPerSecond;
        if (exact > long.MaxValue / 4)
        {
            throw new ArgumentOutOfRangeException(nameof(tokensPerSecond), tokensPerSecond, "The rate is too low for the clock: one token's interval overflows.");
        }

        long interval = (long)Math.Ceiling(exact);
        return (shift, Math.Max(interval, 1));
    }

    /// <summary>Now, in the bucket's units (from its creation).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly long Now() => (_time.GetTimestamp() - _origin) << _shift;

    /// <summary>Converts a wait in units to a <see cref="TimeSpan"/>, rounded up to the next TimeSpan tick.</summary>
    public readonly TimeSpan ToTimeSpan(long units) =>
        units <= 0 ? TimeSpan.Zero : TimeSpan.FromTicks((long)Math.Min(Math.Ceiling(units * (TimeSpan.TicksPerSecond / _unitsPerSecond)), TimeSpan.MaxValue.Ticks));

    /// <summary>
    /// The success path: one CAS on the batch, no clock, no out-parameter (so a caller's inlined copy keeps nothing
    /// on the stack). False means "not taken here": the caller goes to a slow path, which decides.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryTake(long tokens)
    {
        ThreadTokenCache? cache = _cache;
        if (cache is not null)
        {
            long epoch = TAtomics.LoadAcquire(ref _epoch); // acquire: a cached admission takes effect here; pairs with the owner's bump (full fence before its clock read)
            return cache.TryTake(tokens, epoch)
                || ((ulong)(TAtomics.LoadAcquire(ref _fast.Value) - tokens) <= CountMask // acquire: as below; no flag-free batch holding the request: a refusal skips the refill's call
                    && TakeAndCache(cache, tokens, epoch));
        }

        return TryTakeWord(tokens);
    }

    /// <summary>The success path without caches: one CAS on the batch word.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool TryTakeWord(long tokens)
    {
        long word = TAtomics.LoadAcquire(ref _fast.Value); // acquire: pairs with the owner's release store of a new batch
        long rest = word - tokens;
        if ((ulong)rest <= CountMask // enough pre-credited tokens and no flag set
            && TAtomics.CompareExchange(ref _fast.Value, rest, word) == word) // full fence: takes the tokens; pairs with other takers and the owner's close
        {
            if (rest == 0)
            {
                SettleDrained();
            }

            return true;
        }

        return false;
    }

    /// <summary>The success path, then the slow path. <paramref name="waitUnits"/> is set on refusal only.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public AcquireStatus TryAcquire(long tokens, out long waitUnits)
    {
        if (TryTake(tokens))
        {
            waitUnits = 0;
            return AcquireStatus.Acquired;
        }

        return AcquireSlow(tokens, out waitUnits);
    }

    /// <summary>
    /// After <see cref="TryTake"/> failed: a refusal on the memo (coarse clock, no ownership), else the full slow path.
    /// <paramref name="waitUnits"/> is set on refusal only.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public AcquireStatus AcquireSlow(long tokens, out long waitUnits)
    {
        if (_coarse && TryMemoRefusal(tokens, out long leftMs))
        {
            waitUnits = (long)(leftMs * _unitsPerMs); // a hint that errs early
            return AcquireStatus.Refused;
        }

        return AcquireLoop(tokens, honorWaiting: true, _batch, out waitUnits);
    }

    /// <summary>
    /// As <see cref="AcquireSlow(long, out long)"/>, answering the wait as a <see cref="TimeSpan"/>: a memo refusal
    /// converts whole milliseconds with one integer multiply instead of the units' floating-point conversion.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public AcquireStatus AcquireSlow(long tokens, out TimeSpan retryAfter)
    {
        if (_coarse && TryMemoRefusal(tokens, out long leftMs))
        {
            retryAfter = new TimeSpan(leftMs * TimeSpan.TicksPerMillisecond); // a hint that errs early
            return AcquireStatus.Refused;
        }

        return AcquireLoopTimed(tokens, out retryAfter);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private AcquireStatus AcquireLoopTimed(long tokens, out TimeSpan retryAfter)
    {
        AcquireStatus status = AcquireLoop(tokens, honorWaiting: true, _batch, out long waitUnits);
        retryAfter = status == AcquireStatus.Refused ? ToTimeSpan(waitUnits) : default;
        return status;
    }

    /// <summary>Takes exactly <paramref name="tokens"/>, charged now, ignoring queued waiters (the waiter pump's grant).</summary>
    public AcquireStatus TryAcquireForWaiter(long tokens, out long waitUnits) =>
        AcquireLoop(tokens, honorWaiting: false, batch: 1, out waitUnits);

    [MethodImpl(MethodImplOptions.NoInlining)] // keeps the memo refusal's frame small
    private AcquireStatus AcquireLoop(long tokens, bool honorWaiting, long batch, out long waitUnits)
    {
        if (honorWaiting && TryFineRefusal(tokens, out waitUnits))
        {
            return AcquireStatus.Refused; // a refusal the precise clock confirms, without taking the word
        }

        SpinWait spinner = default;
        while (true)
        {
            long word = TAtomics.LoadAcquire(ref _fast.Value); // acquire: pairs with the owner's release store
            if ((word & ClosedFlag) != 0)
            {
                TAtomics.SpinOnce(ref spinner); // a refill is a few dozen instructions: wait it out (spin, then yield)
                continue;
            }

            if ((word & RetiredFlag) != 0)
            {
                waitUnits = 0;
                return AcquireStatus.Retired;
            }

            if (batch > 1 && (word & WaitingFlag) == 0 && (word & CountMask) >= tokens)
            {
                // Contention on the fast path: the batch still has enough.
                if (TAtomics.CompareExchange(ref _fast.Value, word - tokens, word) == word) // full fence: as the fast path
                {
                    waitUnits = 0;
                    if (word == tokens)
                    {
                        SettleDrained();
                    }

                    return AcquireStatus.Acquired;
                }

                continue;
            }

            if (_coarse && honorWaiting && TryMemoRefusal(tokens, out long leftMs))
            {
                waitUnits = (long)(leftMs * _unitsPerMs); // a memo written while we waited (a hint that errs early)
                return AcquireStatus.Refused;
            }

            if (TAtomics.CompareExchange(ref _fast.Value, word | ClosedFlag, word) != word) // full fence: ownership; pairs with the release store that reopens
            {
                continue;
            }

            return OwnerAcquire(word, tokens, honorWaiting, batch, out waitUnits);
        }
    }

    /// <summary>Runs as the owner (the word is Closed): settles the batch, then admits, issues a batch, or refuses.</summary>
    private AcquireStatus OwnerAcquire(long word, long tokens, bool honorWaiting, long batch, out long waitUnits)
    {
        EndCacheEpoch();
        long tick = _coarse ? Environment.TickCount64 - _originTick : 0; // before the precise clock: the memo errs early
        long now = OwnerNow(word);
        long tat = Settle(word, now);
        long flags = word & WaitingFlag;
        long debt = tat - now; // >= 0: Settle clamps _tat to now
        long need = tokens * _interval;
        if ((honorWaiting && flags != 0) || debt + need > _burst)
        {
            waitUnits = Math.Max(debt + need - _burst, 0);
            if (honorWaiting)
            {
                TAtomics.StorePlain(ref _refused, TAtomics.LoadPlain(ref _refused) + 1); // plain: owner-only; a caller's refusal (the waiter pump's tries are not)
            }
            RememberShortage(tick, now, debt);

            Publish(tat, issued: 0, flags);
            return AcquireStatus.Refused;
        }

        waitUnits = 0;
        ForgetShortage(); // an admission: a memo's hint (the instant it names) would now be early
        long take = tokens;
        if (batch > tokens)
        {
            take = Math.Min((_burst - debt) / _interval, batch); // >= tokens: the check above
        }

        if (take == tokens)
        {
            // No batch: charge the tokens now, exactly.
            TAtomics.StorePlain(ref _settled, TAtomics.LoadPlain(ref _settled) + tokens); // plain: owner-only
            Publish(tat + need, issued: 0, flags);
        }
        else
        {
            TAtomics.StorePlain(ref _seenCount, take - tokens); // plain: owner-only; the new batch as issued, at this clock reading
            TAtomics.StorePlain(ref _seenAt, now);              // plain: owner-only
            Publish(tat, issued: take, flags | (take - tokens));
        }

        return AcquireStatus.Acquired;
    }

    /// <summary>Charges the spent part of the open batch at <paramref name="now"/>; returns the new TAT (at least now).</summary>
    private long Settle(long word, long now)
    {
        long issued = TAtomics.LoadPlain(ref _issued); // plain: owner-only; ordered by the CAS that closed the word
        long spent = issued - (word & CountMask);
        long tat = Math.Max(TAtomics.LoadPlain(ref _tat), now) + (spent * _interval); // plain: owner-only
        TAtomics.StorePlain(ref _settled, TAtomics.LoadPlain(ref _settled) + spent); // plain: owner-only
        return tat;
    }

    /// <summary>Stores the owner's state and reopens the word with <paramref name="word"/> (flags and count).</summary>
    private void Publish(long tat, long issued, long word)
    {
        TAtomics.StorePlain(ref _tat, tat);       // plain: owner-only; published by the release below
        TAtomics.StorePlain(ref _issued, issued); // plain: owner-only; published by the release below
        TAtomics.StoreRelease(ref _fast.Value, word); // release: reopens; pairs with the acquire load of the next owner and takers
    }

    /// <summary>The thread that took a batch's last token settles it now, so its tokens are charged close to when they were spent.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void SettleDrained()
    {
        if (TAtomics.CompareExchange(ref _fast.Value, ClosedFlag, 0) != 0) // full fence: ownership of an empty, flag-free batch
        {
            return; // someone took ownership or set a flag: their settlement charges the batch
        }

        EndCacheEpoch();
        long tat = Settle(0, OwnerNow(0));
        Publish(tat, issued: 0, 0);
    }

    /// <summary>Closes the word (spinning while another owner holds it) and returns the word seen; the caller must <see cref="Reopen"/>.</summary>
    private long Own()
    {
        SpinWait spinner = default;
        while (true)
        {
            long word = TAtomics.LoadAcquire(ref _fast.Value); // acquire: pairs with the owner's release store
            if ((word & ClosedFlag) == 0 && TAtomics.CompareExchange(ref _fast.Value, word | ClosedFlag, word) == word) // full fence: ownership
            {
                return word;
            }

            TAtomics.SpinOnce(ref spinner);
        }
    }

    /// <summary>
    /// The owner's clock reading: when the <see cref="TimeProvider"/> throws, reopens the word as <paramref name="word"/>
    /// (taking nothing, charging nothing) before the exception leaves. Before, a throwing clock left the word Closed
    /// for good and every later acquire spun on it forever.
    /// </summary>
    private long OwnerNow(long word)
    {
        try
        {
            return Now();
        }
        catch
        {
            Reopen(word); // release: as Reopen; the owner's state is untouched (the ended cache epoch only retires cached tokens, as a refill does)
            throw;
        }
    }

    private void Reopen(long word) => TAtomics.StoreRelease(ref _fast.Value, word & ~ClosedFlag); // release: pairs with the next owner's acquire

    /// <summary>Sets or clears the Waiting flag (the async path's barrier against barging).</summary>
    public void SetWaiting(bool waiting)
    {
        long word = Own();
        if (waiting)
        {
            EndCacheEpoch(); // no cached admission barges past a waiter
        }

        Reopen(waiting ? word | WaitingFlag : word & ~WaitingFlag);
    }

    /// <summary>Gives back tokens taken by <see cref="TryAcquireForWaiter"/> whose waiter was cancelled meanwhile.</summary>
    /// <remarks>
    /// Settles first: tokens taken from the open batch or a thread cache are charged only when the batch settles, so
    /// taking them off <c>_tat</c> before that would be undone by the settlement's <c>max(_tat, now)</c> (the refund lost).
    /// </remarks>
    public void Refund(long tokens)
    {
        long word = Own();
        EndCacheEpoch();
        long now = OwnerNow(word);
        long tat = Settle(word, now) - (tokens * _interval); // below now only if the bucket refilled meanwhile: the next settlement caps it at full
        TAtomics.StorePlain(ref _settled, TAtomics.LoadPlain(ref _settled) - tokens); // plain: owner-only
        TAtomics.StoreRelease(ref _memo, 0); // release: the bucket holds more than any memo says
        TAtomics.StoreRelease(ref _fineMemo, 0); // release: as above
        Publish(tat, issued: 0, word & (WaitingFlag | RetiredFlag));
    }

    /// <summary>
    /// Retires the bucket if it is idle and full (indistinguishable from a fresh one, so dropping it loses no accounting):
    /// every later acquire answers <see cref="AcquireStatus.Retired"/>. False when it holds any debt or waiters; then
    /// <paramref name="fullInUnits"/> is the earliest the bucket could read full to a later call (a lower bound: takes
    /// only move it later).
    /// </summary>
    /// <remarks>
    /// A part-spent open batch: its spent tokens are charged only at settlement, and the fast path reads no clock, so
    /// when they were taken is unknown; charging them now (as a settlement does) keeps the bucket from reading full for
    /// up to Batch intervals after any idle spell, however long. Instead the owner remembers the batch's count and the
    /// clock reading whenever it sees the batch (at issue, and at each call here): a batch's count only falls while it is
    /// open, and every new batch overwrites the sighting, so finding the same count again means no token was taken since
    /// that reading, and the spent tokens are charged at it (no earlier than any of them was taken: the GCRA bound of
    /// the design note holds). A count that moved is remembered with this call's reading, and the batch is left open.
    /// Buckets with thread caches (whose admissions do not move the count) settle at now, as before.
    /// </remarks>
    public bool TryRetireIfIdle(out long fullInUnits)
    {
        long word = Own();
        long now = OwnerNow(word);
        long count = word & CountMask;
        long flags = word & (WaitingFlag | RetiredFlag);
        bool open = TAtomics.LoadPlain(ref _issued) != count; // plain: owner-only (we own the word)
        long chargeAt = now;
        if (open && _cache is null)
        {
            if (TAtomics.LoadPlain(ref _seenCount) != count && !(_plantedStaleSighting && TAtomics.LoadPlain(ref _seenCount) >= 0)) // plain: owner-only
            {
                // Taken from since the last sighting: remember this one, leave the batch open (the key may be busy).
                TAtomics.StorePlain(ref _seenCount, count); // plain: owner-only
                TAtomics.StorePlain(ref _seenAt, now);      // plain: owner-only
                long spent = TAtomics.LoadPlain(ref _issued) - count; // plain: owner-only
                fullInUnits = Math.Max(TAtomics.LoadPlain(ref _tat), now) + (spent * _interval) - now; // plain: owner-only
                Reopen(word);
                return false;
            }

            chargeAt = TAtomics.LoadPlain(ref _seenAt); // plain: owner-only; no take since this reading
        }

        EndCacheEpoch();
        long tat = Settle(word, Math.Min(chargeAt, now)); // an open batch's leftover goes back to the bucket
        bool full = flags == 0 && tat <= now;
        if (full)
        {
            TAtomics.StoreRelease(ref _memo, 0); // release: before the Retired flag; a full bucket has no shortage to remember (belt and braces: a memo never outlives one)
            TAtomics.StoreRelease(ref _fineMemo, 0); // release: as above
        }

        fullInUnits = Math.Max(tat - now, 0);
        Publish(tat, issued: 0, flags | (full ? RetiredFlag : 0));
        return full;
    }

    /// <summary>Tokens available now: a snapshot (the batch plus what the bucket holds beyond it). Reads the clock.</summary>
    public long Available()
    {
        long word = Own();
        EndCacheEpoch();
        long now = OwnerNow(word);
        long tat = Settle(word, now);
        long available = (_burst - (tat - now)) / _interval;
        Publish(tat, issued: 0, word & (WaitingFlag | RetiredFlag));
        return Math.Max(available, 0);
    }

    /// <summary>
    /// How long the bucket has been full (units), or -1 when it is not full or has waiters. A batch with spent tokens is
    /// charged only when it settles, so a bucket left with one would never read idle: a poll that finds the word as the
    /// previous poll left it (no fast-path take in between) settles it, and later polls see the bucket refill. Polls
    /// under traffic settle nothing (the word keeps moving), so they leave the batch and the thread caches alone.
    /// </summary>
    public long IdleUnits()
    {
        long word = Own();
        long now = OwnerNow(word);
        bool open = TAtomics.LoadPlain(ref _issued) != (word & CountMask); // plain: owner-only (we own the word)
        if (open && word == TAtomics.LoadPlain(ref _idlePoll)) // plain: owner-only
        {
            EndCacheEpoch();
            long settled = Settle(word, now); // the spent tokens are charged now: not idle yet, but from here the bucket refills
            TAtomics.StorePlain(ref _idlePoll, 0L); // plain: owner-only
            Publish(settled, issued: 0, word & (WaitingFlag | RetiredFlag));
            return -1;
        }

        TAtomics.StorePlain(ref _idlePoll, word); // plain: owner-only
        long tat = TAtomics.LoadPlain(ref _tat); // plain: owner-only (we own the word)
        bool idle = (word & WaitingFlag) == 0 && !open && tat <= now;
        Reopen(word);
        return idle ? now - tat : -1;
    }

    /// <summary>Tokens charged so far (a snapshot; the open batch's spent tokens are counted when it settles).</summary>
    public readonly long SettledTokens => Volatile.Read(ref Unsafe.AsRef(in _settled)) - (_cache?.DeadTokens ?? 0);

    /// <summary>Refusals made by the owner (not on a memo) so far: a snapshot, for tests.</summary>
    public readonly long OwnerRefusedCount => Volatile.Read(ref Unsafe.AsRef(in _refused));

    /// <summary>Refusals so far (a snapshot).</summary>
    public readonly long RefusedCount => Volatile.Read(ref Unsafe.AsRef(in _refused)) + Volatile.Read(ref Unsafe.AsRef(in _memoRefusedLean))
        + (Volatile.Read(ref Unsafe.AsRef(in _memoRefused))?.Sum() ?? 0);

    /// <summary>Whether memo refusals are counted on per-thread slots and some were (tests: keyed buckets never are).</summary>
    public readonly bool HasPerThreadRefusalSlots => Volatile.Read(ref Unsafe.AsRef(in _memoRefused)) is not null;

    /// <summary>Whether async waiters are queued (the Waiting flag).</summary>
    public readonly bool HasWaitingFlag => (Volatile.Read(ref Unsafe.AsRef(in _fast.Value)) & WaitingFlag) != 0;

    /// <summary>Whether the bucket is retired (evicted from its keyed table; for good: the flag is never cleared).</summary>
    public readonly bool IsRetired => (Volatile.Read(ref Unsafe.AsRef(in _fast.Value)) & RetiredFlag) != 0;

    /// <summary>The units a request of <paramref name="tokens"/> would wait now for the bucket alone (ignores waiters); a hint.</summary>
    public long WaitHint(long tokens)
    {
        long word = Own();
        EndCacheEpoch();
        long now = OwnerNow(word);
        long tat = Settle(word, now);
        Publish(tat, issued: 0, word & (WaitingFlag | RetiredFlag));
        return Math.Max(tat - now + (tokens * _interval) - _burst, 0);
    }
}
