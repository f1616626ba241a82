extension Frame {
    /// The frame put on top of the stack of the thread running the cyclic garbage collector.
    public static let garbageCollection = Frame.marker("<GC>")
}

/// Which threads run their interpreter's cyclic garbage collector, for one snapshot or one
/// sampling round.
///
/// The collecting thread is the one that started the collection: where the interpreter
/// records the frame it started from (`gc.frame`, 3.15+), the thread whose stack holds that
/// frame; elsewhere the GIL holder — a collection runs with the GIL held from start to end,
/// except while a finalizer it calls releases the GIL, when the holder is another thread.
///
/// The collector's state is read before the thread states are copied (at `init`) and, while
/// it says a collection runs, again after each walk: a stack is marked only when the
/// collection ran both before its thread state was copied and after its frames were read
/// (a walk may return the frames of the copy's moment, and on a loaded machine the reader
/// is preempted between reads for milliseconds). Interpreters not observed at `init` (new
/// this round) get no mark.
public struct GCCollectors {
    private let reader: PythonReader
    private var before: [UInt64: GCActivity] = [:]

    /// Reads the collector state of `interpreters`: make it before copying thread states.
    public init(reader: PythonReader, observing interpreters: [UInt64]) {
        self.reader = reader
        for interpreter in interpreters where before[interpreter] == nil {
            if let activity = reader.gcActivity(interpreter: interpreter) { before[interpreter] = activity }
        }
    }

    /// The collector states read already (from `gcStateRange`, in the batch that copied the
    /// thread states, ahead of them).
    public init(reader: PythonReader, states: [UInt64: GCActivity]) {
        self.reader = reader
        before = states
    }

    /// Whether `state`, whose frames walked since `init` are at `frameAddresses`, runs the
    /// collector.
    public mutating func isCollecting(_ state: ThreadState, frameAddresses: [UInt64], gil: inout GILHolders) -> Bool {
        guard let earlier = before[state.interpreter], earlier.collecting,
              let now = reader.gcActivity(interpreter: state.interpreter), now.collecting,
              now.startFrame == earlier.startFrame else { return false }
        if now.startFrame != 0 {
            return frameAddresses.contains(now.startFrame) || (try? reader.topFrame(of: state)) == now.startFrame
        }
        return gil.holds(state)
    }
}
