/// What `dump` and `sample` both know of a thread state apart from its stack: its OS
/// thread, its name and whether it is the one running on that OS thread. Made by
/// `PythonReader.threadViews(of:in:)`, the one place these are decided.
public struct ThreadView: Sendable {
    public let state: ThreadState
    /// Host thread id (as /proc names it), nil when not resolved.
    public let tid: Int32?
    /// `threading` name; nil for a thread still starting (its ids are its creator's).
    public let name: String?
    /// A thread still starting: its state carries its creator's ident.
    public let starting: Bool
    /// Its OS thread is running another interpreter's thread state: it waits.
    public let suspended: Bool

    /// Whether its stack is the one its OS thread runs (what a profile samples).
    public var isCurrent: Bool { !starting && !suspended }

    /// Idle (sleeping, waiting) or on a CPU, from the target's run state; a suspended state
    /// waits; a state without a known OS thread is neither (nil).
    public func idle(in target: Target) -> Bool? {
        if suspended { return true }
        return tid.flatMap { target.runState(tid: $0) }.map { $0 == .idle }
    }
}

extension PythonReader {
    /// Places `states` on the target's threads and names them. A thread that entered a
    /// subinterpreter is named by the interpreter that started it.
    public func threadViews(of states: [ThreadState], in table: ThreadTable) -> [ThreadView] {
        let placement = placement(of: states, in: table)
        var names = [UInt64: [UInt64: String]]()
        var interpreters = [UInt64]()
        for state in states where names[state.interpreter] == nil {
            names[state.interpreter] = threadNames(interpreter: state.interpreter)
            interpreters.append(state.interpreter)
        }
        return states.map { state in
            let starting = placement.starting.contains(state.address)
            let name = starting ? nil : names[state.interpreter]?[state.ident]
                ?? interpreters.lazy.compactMap { names[$0]?[state.ident] }.first
            return ThreadView(state: state, tid: placement.tids[state.address], name: name, starting: starting,
                              suspended: placement.suspended.contains(state.address))
        }
    }
}

/// Which thread state holds each interpreter's GIL: read once per interpreter for one
/// snapshot or one sampling round.
public struct GILHolders {
    private let reader: PythonReader
    private var byInterpreter: [UInt64: UInt64?] = [:]

    public init(reader: PythonReader) { self.reader = reader }

    /// Holders already read this round (a nil holder: the GIL was free).
    public init(reader: PythonReader, known: [UInt64: UInt64?]) {
        self.reader = reader
        byInterpreter = known
    }

    public mutating func holds(_ state: ThreadState) -> Bool {
        if byInterpreter[state.interpreter] == nil {
            byInterpreter[state.interpreter] = .some(reader.gilHolder(interpreter: state.interpreter))
        }
        return byInterpreter[state.interpreter] == .some(state.address)
    }
}
