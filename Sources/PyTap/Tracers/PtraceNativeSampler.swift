import Glibc

/// `sample --native` where the kernel refuses BPF or perf events: each thread on a CPU is
/// stopped for a moment per sample (`NativeStackReader`, as `dump --native`: PTRACE_SEIZE +
/// PTRACE_INTERRUPT, registers read, stack unwound and Python frames read, resumed at once),
/// then merged as the BPF sampler's copies are. The target pays a stop per sample, so this
/// is the fallback, named as such in the summary; no kernel frames. A stopped thread is
/// resumed before the next is stopped, and the kernel resumes it if pytap dies meanwhile.
public final class PtraceNativeSampler: StackSampler {
    private var book: NativeSampleBook
    public var frames: FrameTable { book.frames }
    public var stacks: StackTable { book.stacks }
    public var statistics: SamplerStatistics { book.statistics }
    public let options: SamplerOptions
    public let target: PythonTarget
    private let reader: PythonReader
    private let native: NativeStackReader
    private var threadTable: ThreadTable?

    /// The highest rate: each sample stops a thread for some 100 µs.
    public static let maximumRate = 1000

    public init(target: PythonTarget, options: SamplerOptions, native: NativeSamplingOptions) throws {
        guard target.process != nil else { throw NativeCaptureUnavailable("native sampling needs a live process") }
        self.target = target
        self.options = options
        reader = try PythonReader(target: target)
        self.native = try NativeStackReader(target: target, policy: native.allNativeFrames ? .nativeAll : .native)
        book = NativeSampleBook(byFunction: options.byFunction)
        self.native.modules.prepareSymbolization()
    }

    public var pythonVersion: String? { target.version.description }

    @discardableResult
    public func run(shouldStop: (SamplerStatistics) -> Bool,
                    record: (SampledThread, UInt32, UInt64, SampleState) -> Void,
                    progress: (SamplerStatistics) -> Void) -> SamplerStop {
        let start = MonotonicClock.now()
        let interval = UInt64(1_000_000_000 / max(1, min(options.rate, PtraceNativeSampler.maximumRate)))
        let stopAt = options.stopAfter.map { start + UInt64((min(max($0, 0), 1e9) * 1e9).rounded(.up)) }
        var next = start
        var lastProgress = start
        while true {
            let now = MonotonicClock.now()
            book.statistics.elapsed = Double(now - start) / 1e9
            if shouldStop(statistics) { return .requested }
            if let stopAt, now >= stopAt { return .requested }
            if !target.source.isAlive { return .targetExited }
            if now < next {
                var pause = timespec(tv_sec: 0, tv_nsec: Int(min(next - now, 50_000_000)))
                nanosleep(&pause, nil)
                continue
            }
            if now - next >= interval {
                book.statistics.missedRounds += Int((now - next) / interval)
                next = now
            }
            next += interval
            book.statistics.rounds += 1
            if sampleRound(time: now - start, record: record) == .targetExited { return .targetExited }
            if now - lastProgress >= 250_000_000 {
                lastProgress = now
                progress(statistics)
            }
        }
    }

    /// Stops, reads and resumes each selected thread in turn.
    private func sampleRound(time: UInt64, record: (SampledThread, UInt32, UInt64, SampleState) -> Void) -> SamplerStop? {
        let states: [ThreadState]
        do {
            states = try reader.allThreadStates()
        } catch let error as MemoryReadError where error == .processGone {
            return .targetExited
        } catch {
            book.countError("thread list unreadable")
            return nil
        }
        let table = (try? target.source.threadTable(previous: threadTable)) ?? ThreadTable(hostTIDs: [])
        threadTable = table
        for view in reader.threadViews(of: states, in: table) where view.isCurrent {
            guard let tid = view.tid else { continue }
            // As the BPF sampler's task clock: threads on a CPU only, unless `--idle`.
            let idle = view.idle(in: target.source)
            if !options.includeIdle && idle != false { continue }
            let capture: NativeStackReader.Capture<RawStack>
            do {
                capture = try native.capture(tid: tid) { try reader.rawStack(of: try reader.reread(view.state)) }
            } catch let error as MemoryReadError where error == .processGone {
                return .targetExited
            } catch {
                book.countError("thread not stopped")
                continue
            }
            // The walk re-read any code object whose address another one took: frames
            // decoded from the old one go too.
            book.forgetPythonFrames(ofCodes: reader.codes.takeDropped())
            guard let python = book.pythonCalls(of: capture.python, reader: reader) else { continue }
            let thread = SampledThread(pid: target.pid, tid: tid, ident: view.state.ident, name: view.name)
            let root = options.threadRoots ? book.frames.id(for: .marker("thread \(thread.label)")) : nil
            let id = book.stackID(root: root, frames: native.merge(capture, python: python))
            book.countSample(of: thread)
            record(thread, id, time, idle == false ? .onCPU : idle == true ? .offCPU : [])
        }
        return nil
    }
}
