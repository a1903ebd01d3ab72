namespace LockFree.Tests.Concurrency.Scheduling;

// Design: happens-before data-race detection with vector clocks, as in FastTrack (Flanagan & Freund, PLDI 2009)
// and loom's causality tracking, over the accesses that go through TestAtomics during one iteration.
//
// Clocks: thread t (1..n; 0 = the controlling thread that runs the init and post parts) has a vector clock C_t.
// Synchronising accesses carry clocks through a per-location clock L_x:
//   StoreRelease(x)            L_x := C_t, then C_t[t]++       (a release store heads a new release sequence)
//   LoadAcquire(x)             C_t := C_t join L_x
//   CompareExchange/Add/Exchange (read-modify-write, full fence in .NET)
//                              C_t := C_t join L_x; L_x := L_x join C_t; C_t[t]++   (RMWs continue release sequences)
//   FullFence                  C_t := C_t join F; F := C_t; C_t[t]++  with F one global fence clock (SC fences are
//                              totally ordered; this over-approximates their synchronisation, so it may hide a
//                              race, never invent one)
//   thread start / end         C_t := C_0 at start; C_0 := C_0 join C_t at the end (init before, post after)
// Plain accesses (LoadPlain, StorePlain, CopyPlain, ClearPlain) are checked, FastTrack style, against the last
// write epoch W_x = (thread, clock) and the read clock R_x (one read epoch per thread):
//   plain read by t:  race if W_x is not <= C_t;             then R_x[t] := C_t[t]
//   plain write by t: race if W_x or any R_x[u] is not <= C_t; then W_x := (t, C_t[t]), R_x := empty
// A race becomes a failure of the iteration with both accesses described.
//
// Location identity: the address of the ref ((nint)Unsafe.AsPointer). The GC may move objects, so the
// detector records GC.CollectionCount(0) (it counts every collection) and forgets all location state when it
// changed: a race whose two accesses straddle a collection is missed, but no race is invented from a reused
// address. The shadow state is per iteration (a fresh detector each time). Collections are rare at the
// allocation rate of one iteration, so few windows are lost; a deep run catches what a window missed.
//
// Planted bug DroppedRelease: StoreRelease clears L_x instead of setting it (a relaxed store breaks the release
// sequence), so a reader that acquires x learns nothing and its plain read of the slot races.
internal sealed class RaceDetector
{
    private readonly long[][] _clocks;
    private readonly Dictionary<nint, long[]> _sync = [];
    private readonly Dictionary<nint, Shadow> _plain = [];
    private readonly long[] _fence;
    private int _gcCount = GC.CollectionCount(0);

    public RaceDetector(int threadCount)
    {
        _clocks = new long[threadCount + 1][];
        for (int t = 0; t <= threadCount; t++)
        {
            _clocks[t] = new long[threadCount + 1];
        }

        _clocks[0][0] = 1;
        _fence = new long[threadCount + 1];
    }

    public void ThreadStart(int t)
    {
        Array.Copy(_clocks[0], _clocks[t], _clocks[t].Length);
        _clocks[t][t]++;
    }

    public void ThreadEnd(int t) => Join(_clocks[0], _clocks[t]);

    public void Acquire(int t, nint location)
    {
        CheckGc();
        if (_sync.TryGetValue(location, out long[]? l))
        {
            Join(_clocks[t], l);
        }
    }

    public void Release(int t, nint location)
    {
        CheckGc();
        long[] c = _clocks[t];
        if (!_sync.TryGetValue(location, out long[]? l))
        {
            l = new long[c.Length];
            _sync[location] = l;
        }

        Array.Copy(c, l, c.Length);
        c[t]++;
    }

    /// <summary>A relaxed store (planted bug): the location's release sequence is broken, it publishes nothing.</summary>
    public void RelaxedStore(nint location)
    {
        CheckGc();
        _sync.Remove(location);
    }

    public void ReadModifyWrite(int t, nint location)
    {
        CheckGc();
        long[] c = _clocks[t];
        if (!_sync.TryGetValue(location, out long[]? l))
        {
            l = new long[c.Length];
            _sync[location] = l;
        }

        Join(c, l);
        Array.Copy(c, l, c.Length);
        c[t]++;
    }

    public void Fence(int t)
    {
        long[] c = _clocks[t];
        Join(c, _fence);
        Array.Copy(c, _fence, c.Length);
        c[t]++;
    }

    /// <summary>Checks a plain read; returns a description of the race, or null.</summary>
    public string? PlainRead(int t, nint location, string what)
    {
        CheckGc();
        long[] c = _clocks[t];
        if (_plain.TryGetValue(location, out Shadow? s))
        {
            if (s.WriteThread != 0 && s.WriteThread != t && s.WriteClock > c[s.WriteThread])
            {
                return $"data race: T{t} {what} reads 0x{location:x} written by T{s.WriteThread} ({s.WriteWhat}) without a happens-before edge";
            }
        }
        else
        {
            s = new Shadow(c.Length);
            _plain[location] = s;
        }

        s.Reads[t] = c[t];
        s.ReadWhat = what;
        return null;
    }

    /// <summary>Checks a plain write; returns a description of the race, or null.</summary>
    public string? PlainWrite(int t, nint location, string what)
    {
        CheckGc();
        long[] c = _clocks[t];
        if (_plain.TryGetValue(location, out Shadow? s))
        {
            if (s.WriteThread != 0 && s.WriteThread != t && s.WriteClock > c[s.WriteThread])
            {
                return $"data race: T{t} {what} writes 0x{location:x} written by T{s.WriteThread} ({s.WriteWhat}) without a happens-before edge";
            }

            for (int u = 1; u < c.Length; u++)
            {
                if (u != t && s.Reads[u] > c[u])
                {
                    return $"data race: T{t} {what} writes 0x{location:x} read by T{u} ({s.ReadWhat}) without a happens-before edge";
                }
            }

            Array.Clear(s.Reads);
        }
        else
        {
            s = new Shadow(c.Length);
            _plain[location] = s;
        }

        s.WriteThread = t;
        s.WriteClock = c[t];
        s.WriteWhat = what;
        return null;
    }

    private void CheckGc()
    {
        int count = GC.CollectionCount(0);
        if (count != _gcCount)
        {
            _gcCount = count;
            _sync.Clear();
            _plain.Clear();
        }
    }

    private static void Join(long[] into, long[] from)
    {
        for (int i = 0; i < into.Length; i++)
        {
            if (from[i] > into[i])
            {
                into[i] = from[i];
            }
        }
    }

    private sealed class Shadow(int size)
    {
        public int WriteThread;
        public long WriteClock;
        public string WriteWhat = "";
        public string ReadWhat = "";
        public readonly long[] Reads = new long[size];
    }
}
