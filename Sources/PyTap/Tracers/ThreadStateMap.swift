/// A BPF hash map of tid → PyThreadState address that a program reads to find a thread's
/// Python frames, kept current by pytap (new threads, gone ones): a thread is known from
/// the first refresh after it starts.
struct ThreadStateMap {
    private let map: BPFMap
    private let reader: PythonReader
    private let target: PythonTarget
    private var known: [Int32: UInt64] = [:]
    private var threadTable: ThreadTable?

    init(map: BPFMap, reader: PythonReader, target: PythonTarget) {
        self.map = map
        self.reader = reader
        self.target = target
    }

    mutating func refresh() {
        guard let states = try? reader.allThreadStates(),
              let table = try? target.source.threadTable(previous: threadTable) else { return }
        threadTable = table
        var fresh: [Int32: UInt64] = [:]
        for view in reader.threadViews(of: states, in: table) where view.isCurrent {
            guard let tid = view.tid else { continue }
            fresh[tid] = view.state.address
        }
        // A thread one read of the interpreter's thread list missed (the list changes while
        // it is walked, as threads start and end) keeps its entry while the OS still has
        // it: deleting it dropped its records until the next refresh, a call or a return
        // lost inside a traced call. An entry goes when its thread is gone.
        let running = Set(table.hostTIDs)
        for (tid, address) in known where fresh[tid] == nil && running.contains(tid) { fresh[tid] = address }
        for tid in known.keys where fresh[tid] == nil { map.delete(UInt32(bitPattern: tid)) }
        for (tid, address) in fresh where known[tid] != address { try? map.update(UInt32(bitPattern: tid), address) }
        known = fresh
    }
}
