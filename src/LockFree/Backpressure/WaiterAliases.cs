// The production instantiations of the waiter list and its waiters (the controlled-scheduler tests run them with
// their own atomics: tests/Concurrency/Backpressure/WaiterListTests.cs).
global using Waiter = LockFree.Backpressure.Waiter<LockFree.Internal.RealAtomics>;
global using WaiterList = LockFree.Backpressure.WaiterList<LockFree.Internal.RealAtomics>;
