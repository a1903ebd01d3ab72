// The production instantiations of the waiter list (the library's own aliases are not visible here).
global using Waiter = LockFree.Backpressure.Waiter<LockFree.Internal.RealAtomics>;
global using WaiterList = LockFree.Backpressure.WaiterList<LockFree.Internal.RealAtomics>;
