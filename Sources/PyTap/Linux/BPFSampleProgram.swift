import CBPF
import Glibc
import SystemPackage

/// Why native sampling could not start: one line naming the cause.
public struct NativeCaptureUnavailable: Error, CustomStringConvertible, Sendable {
    public var reason: String

    public init(_ reason: String) { self.reason = reason }

    public var description: String { reason }
}

/// pytap's BPF sampling program (bpf/sample.bpf.c, compiled at build time and embedded),
/// loaded into the kernel and attached to a task-clock perf event per target thread. Every
/// perf event, map and program belongs to this object's file descriptors: when pytap ends,
/// however it ends, the kernel drops them and the target runs on untouched.
public final class BPFSampleProgram {
    private let handle: OpaquePointer
    private var attached = Set<Int32>()
    public let frequency: Int

    /// Whether the sched_switch program keeps threads' off-CPU copies.
    public let keepsOffCPUStacks: Bool
    private var offCPURecord: UnsafeMutableRawPointer?

    /// Loads the program; with `offCPUThreads` > 0, also the sched_switch program that keeps
    /// the off-CPU copy of up to that many threads. Throws `NativeCaptureUnavailable` saying
    /// why the kernel refused.
    public init(frequency: Int, offCPUThreads: Int = 0) throws {
        self.frequency = frequency
        keepsOffCPUStacks = offCPUThreads > 0
        let object = BPFSampleProgram.objectBytes()
        var error: Int32 = 0
        var message = [CChar](repeating: 0, count: 512)
        let opened = object.withUnsafeBytes { bytes in
            pytap_bpf_open(bytes.baseAddress, bytes.count, UInt32(clamping: max(0, offCPUThreads)), &error, &message, message.count)
        }
        guard let opened else {
            throw NativeCaptureUnavailable(BPFSampleProgram.explain(errno: -error, doing: "loading the BPF program", detail: BPFObject.text(message)))
        }
        handle = opened
    }

    deinit {
        pytap_bpf_close(handle)
        offCPURecord?.deallocate()
    }

    /// The embedded object file.
    static func objectBytes() -> [UInt8] { BPFObject.bytes(fromHex: BPFSampleProgramObject.hex) }

    /// Hands the program the per-version offsets it walks Python frames with.
    public func configure(_ layout: StackCaptureLayout) throws {
        var config = pytap_config(thread_state_bytes: UInt32(min(layout.threadStateBytes, Int(PYTAP_THREAD_STATE_BYTES))),
                                  frame_bytes: UInt32(min(layout.frameBytes, Int(PYTAP_FRAME_BYTES))),
                                  thread_state_frame: Int32(layout.threadStateFrame ?? -1),
                                  thread_state_cframe: Int32(layout.threadStateCFrame ?? -1),
                                  cframe_current_frame: Int32(layout.cframeCurrentFrame ?? -1),
                                  frame_previous: Int32(layout.framePrevious),
                                  frame_code: -1, code_head_bytes: 0, code_name: -1, code_line_table: -1,
                                  object_type: 8, reserved: 0, code_pointer_mask: ~0)
        // A code header larger than the copy: none is copied, the cache checks live memory.
        if let copy = layout.codeIdentity, let frameCode = copy.frameCode, copy.headBytes <= Int(PYTAP_CODE_HEAD_BYTES) {
            config.frame_code = Int32(frameCode)
            config.code_head_bytes = UInt32(copy.headBytes)
            config.code_name = Int32(copy.name ?? -1)
            config.code_line_table = Int32(copy.lineTable ?? -1)
            config.object_type = UInt32(copy.objectType)
            config.code_pointer_mask = copy.pointerMask
        }
        let result = pytap_bpf_configure(handle, &config)
        if result < 0 { throw SystemCallError("configuring the BPF program", Errno(rawValue: -result)) }
    }

    /// Tells the program which thread state a thread runs (nil: none known).
    public func setThreadState(tid: Int32, address: UInt64?) {
        if let address {
            _ = pytap_bpf_set_thread_state(handle, UInt32(bitPattern: tid), address)
        } else {
            _ = pytap_bpf_forget_thread_state(handle, UInt32(bitPattern: tid))
        }
    }

    /// Tells the program where thread `tid`'s stack ends, so it copies no further (nil:
    /// unknown, the full `PYTAP_USER_STACK_BYTES`).
    public func setStackEnd(tid: Int32, address: UInt64?) {
        if let address {
            _ = pytap_bpf_set_stack_end(handle, UInt32(bitPattern: tid), address)
        } else {
            _ = pytap_bpf_forget_stack_end(handle, UInt32(bitPattern: tid))
        }
    }

    public var attachedThreads: Set<Int32> { attached }

    /// Starts sampling thread `tid`. A thread that is gone throws `ESRCH`.
    public func attach(tid: Int32) throws {
        guard !attached.contains(tid) else { return }
        let result = pytap_bpf_attach_thread(handle, tid, UInt64(frequency))
        if result < 0 {
            if result == -ESRCH { throw SystemCallError("perf_event_open", .noSuchProcess) }
            throw NativeCaptureUnavailable(BPFSampleProgram.explain(errno: -result, doing: "opening a perf event on thread \(tid)", detail: ""))
        }
        attached.insert(tid)
    }

    /// Stops sampling a thread (one that exited).
    public func detach(tid: Int32) {
        guard attached.remove(tid) != nil else { return }
        pytap_bpf_detach_thread(handle, tid)
    }

    /// Starts keeping thread `tid`'s off-CPU copy; false when the map is full.
    @discardableResult
    public func trackOffCPU(tid: Int32) -> Bool {
        keepsOffCPUStacks && pytap_bpf_track_off_cpu(handle, UInt32(bitPattern: tid)) == 0
    }

    public func forgetOffCPU(tid: Int32) {
        if keepsOffCPUStacks { pytap_bpf_forget_off_cpu(handle, UInt32(bitPattern: tid)) }
    }

    /// How many times thread `tid`'s off-CPU copy was written, times two (0: never; odd:
    /// being written; nil: not tracked). Cheap: read before `readOffCPU` to skip an unchanged copy.
    public func offCPUSequence(tid: Int32) -> Int64? {
        let sequence = pytap_bpf_off_cpu_sequence(handle, UInt32(bitPattern: tid))
        return sequence < 0 ? nil : sequence
    }

    /// Hands thread `tid`'s last off-CPU copy to `body` with its sequence count; nil when the
    /// thread has not gone off the CPU since it was tracked or the copy was being written.
    public func readOffCPU<T>(tid: Int32, _ body: (CapturedSample, Int64) -> T) -> T? {
        let record = offCPURecord ?? UnsafeMutableRawPointer.allocate(byteCount: MemoryLayout<pytap_sample>.size, alignment: 16)
        offCPURecord = record
        let sequence = pytap_bpf_read_off_cpu(handle, UInt32(bitPattern: tid), record)
        guard sequence > 0 else { return nil }
        return body(CapturedSample(record: UnsafeRawPointer(record)), sequence)
    }

    /// Samples the program dropped because pytap did not drain the ring buffer in time.
    public var lostSamples: UInt64 { pytap_bpf_lost(handle) }

    /// Hands the samples waiting in the ring buffer to `handler` until it returns false
    /// (the rest stay for the next poll), waiting up to `timeout` milliseconds for the first.
    public func poll(timeout: Int32, _ handler: (CapturedSample) -> Bool) {
        withoutActuallyEscaping(handler) { handler in
            var box = handler
            withUnsafeMutablePointer(to: &box) { context in
                _ = pytap_bpf_poll(handle, timeout, { context, record in
                    guard let context, let record else { return 0 }
                    return context.assumingMemoryBound(to: ((CapturedSample) -> Bool).self).pointee(CapturedSample(record: record)) ? 0 : -1
                }, context)
            }
        }
    }

    /// One line saying why the kernel refused, and what would let it.
    static func explain(errno code: Int32, doing what: String, detail: String) -> String {
        let name = String(cString: strerror(code))
        switch code {
        case EACCES where geteuid() == 0 && what.hasPrefix("loading"):
            return "\(what): \(name) (the kernel's BPF verifier refused it; PYTAP_BPF_DEBUG=1 prints its log)"
        case EPERM, EACCES:
            var paranoid = ""
            if let text = try? ProcFiles.readString("/proc/sys/kernel/perf_event_paranoid") {
                paranoid = ", kernel.perf_event_paranoid = " + text.filter { !$0.isWhitespace }
            }
            return "\(what): \(name) (needs root, or CAP_BPF and CAP_PERFMON\(paranoid))"
        case ENOSYS:
            return "\(what): \(name) (BPF or perf events are not available: a seccomp filter or a kernel built without them)"
        case ENOENT where what.hasPrefix("opening"):
            return "\(what): \(name) (the kernel has no software perf events)"
        default:
            return "\(what): \(name)" + (detail.isEmpty ? "" : " (\(detail))")
        }
    }
}

/// What the BPF program needs to copy a thread's Python frames, from the layout tables.
public struct StackCaptureLayout: Sendable, Equatable {
    public var threadStateBytes: Int
    public var frameBytes: Int
    /// `tstate->frame` (≤3.10) or `tstate->current_frame` (3.13+).
    public var threadStateFrame: Int?
    /// 3.11–3.12: `tstate->cframe` and `cframe->current_frame`.
    public var threadStateCFrame: Int?
    public var cframeCurrentFrame: Int?
    /// `f_back` or `_PyInterpreterFrame.previous`.
    public var framePrevious: Int
    /// What to copy of each frame's code object; nil: nothing.
    public var codeIdentity: CodeIdentityCopy?

    /// Each frame's code object header (`headBytes` from its start) and, when `name` and
    /// `lineTable` are given, the headers of the objects those fields point to, from their
    /// `objectType` field on.
    public struct CodeIdentityCopy: Sendable, Equatable {
        public var frameCode: Int?
        public var headBytes: Int
        public var name: Int?
        public var lineTable: Int?
        public var objectType: Int
        public var pointerMask: UInt64

        public init(frameCode: Int?, headBytes: Int, name: Int?, lineTable: Int?, objectType: Int, pointerMask: UInt64) {
            self.frameCode = frameCode
            self.headBytes = headBytes
            self.name = name
            self.lineTable = lineTable
            self.objectType = objectType
            self.pointerMask = pointerMask
        }
    }

    public init(threadStateBytes: Int, frameBytes: Int, threadStateFrame: Int?, threadStateCFrame: Int?,
                cframeCurrentFrame: Int?, framePrevious: Int) {
        self.threadStateBytes = threadStateBytes
        self.frameBytes = frameBytes
        self.threadStateFrame = threadStateFrame
        self.threadStateCFrame = threadStateCFrame
        self.cframeCurrentFrame = cframeCurrentFrame
        self.framePrevious = framePrevious
    }
}

/// One record of the BPF program, read in place (valid only inside `poll`'s handler).
public struct CapturedSample {
    let record: UnsafeRawPointer

    private func u64(_ offset: pytap_sample_offsets, _ index: Int = 0) -> UInt64 {
        record.loadUnaligned(fromByteOffset: Int(offset.rawValue) + index * 8, as: UInt64.self)
    }
    private func u32(_ offset: pytap_sample_offsets) -> UInt32 {
        record.loadUnaligned(fromByteOffset: Int(offset.rawValue), as: UInt32.self)
    }

    public var pid: Int32 { Int32(bitPattern: record.load(fromByteOffset: 0, as: UInt32.self)) }
    public var tid: Int32 { Int32(bitPattern: record.load(fromByteOffset: 4, as: UInt32.self)) }
    public var time: UInt64 { record.load(fromByteOffset: 8, as: UInt64.self) }

    /// The user registers, x86_64 `struct pt_regs` order (r15, r14, r13, r12, bp, bx, r11,
    /// r10, r9, r8, ax, cx, dx, si, di, orig_ax, ip, cs, flags, sp, ss).
    public func register(_ index: Int) -> UInt64 { u64(PYTAP_OFFSET_REGISTERS, index) }

    /// Kernel return addresses, innermost first (empty for a tick in user mode).
    public var kernelStack: [UInt64] {
        let bytes = Int(Int32(bitPattern: u32(PYTAP_OFFSET_KERNEL_STACK_BYTES)))
        guard bytes > 0 else { return [] }
        return (0..<min(bytes / 8, Int(PYTAP_KERNEL_FRAMES))).map { u64(PYTAP_OFFSET_KERNEL_STACK, $0) }
    }

    /// The stack copy: from sp to where the copy ended.
    public var userStack: RemoteBytes? {
        let sp = register(19)
        let inPage = Int(sp & UInt64(PYTAP_PAGE_BYTES - 1))
        let end = userStackEnd
        guard end > inPage else { return nil }
        let start = record + Int(PYTAP_OFFSET_USER_STACK.rawValue) + inPage
        return RemoteBytes(address: sp, bytes: Array(UnsafeRawBufferPointer(start: start, count: end - inPage)))
    }

    /// Where the stack copy ends, from sp's page start.
    private var userStackEnd: Int { min(Int(u32(PYTAP_OFFSET_USER_STACK_BYTES)), Int(PYTAP_USER_STACK_BYTES)) }

    /// Bytes of user stack the program copied (from sp).
    public var userStackBytes: Int { max(0, userStackEnd - Int(register(19) & UInt64(PYTAP_PAGE_BYTES - 1))) }

    /// The thread state copy, when the thread's state was known.
    public var threadState: RemoteBytes? {
        let address = u64(PYTAP_OFFSET_THREAD_STATE)
        let count = min(Int(u32(PYTAP_OFFSET_THREAD_STATE_BYTES)), Int(PYTAP_THREAD_STATE_BYTES))
        guard address != 0, count > 0 else { return nil }
        let start = record + Int(PYTAP_OFFSET_THREAD_STATE_COPY.rawValue)
        return RemoteBytes(address: address, bytes: Array(UnsafeRawBufferPointer(start: start, count: count)))
    }

    /// 3.11–3.12: `cframe->current_frame` as read, at its address.
    public var currentFrameThroughCFrame: RemoteBytes? {
        let cframe = u64(PYTAP_OFFSET_CFRAME)
        guard cframe != 0 else { return nil }
        return RemoteBytes(address: cframe, bytes: withUnsafeBytes(of: u64(PYTAP_OFFSET_CFRAME_CURRENT).littleEndian) { Array($0) })
    }

    /// The Python frames copied, innermost first, `frameBytes` each.
    public func pythonFrames(frameBytes: Int) -> [RemoteBytes] {
        let count = min(Int(u32(PYTAP_OFFSET_FRAME_COUNT)), Int(PYTAP_PYTHON_FRAMES))
        let size = min(frameBytes, Int(PYTAP_FRAME_BYTES))
        return (0..<count).map { index in
            let start = record + Int(PYTAP_OFFSET_FRAMES.rawValue) + index * Int(PYTAP_FRAME_BYTES)
            return RemoteBytes(address: u64(PYTAP_OFFSET_FRAME_ADDRESSES, index),
                               bytes: Array(UnsafeRawBufferPointer(start: start, count: size)))
        }
    }

    /// The copies of each frame's code object (and its name's and line table's headers),
    /// at the addresses they were read from: what the code cache checks its entries by.
    public func codeIdentityCopies(codeHeadBytes: Int) -> [RemoteBytes] {
        let count = min(Int(u32(PYTAP_OFFSET_FRAME_COUNT)), Int(PYTAP_PYTHON_FRAMES))
        let headBytes = min(codeHeadBytes, Int(PYTAP_CODE_HEAD_BYTES))
        var copies: [RemoteBytes] = []
        copies.reserveCapacity(count)
        func copy(_ addresses: pytap_sample_offsets, _ heads: pytap_sample_offsets, stride: Int, bytes: Int, _ index: Int) {
            let address = u64(addresses, index)
            guard address != 0, bytes > 0 else { return }
            let start = record + Int(heads.rawValue) + index * stride
            copies.append(RemoteBytes(address: address, bytes: Array(UnsafeRawBufferPointer(start: start, count: bytes))))
        }
        for index in 0..<count {
            copy(PYTAP_OFFSET_CODE_ADDRESSES, PYTAP_OFFSET_CODE_HEADS, stride: Int(PYTAP_CODE_HEAD_BYTES), bytes: headBytes, index)
            copy(PYTAP_OFFSET_NAME_ADDRESSES, PYTAP_OFFSET_NAME_HEADS, stride: Int(PYTAP_NAME_HEAD_BYTES),
                 bytes: Int(PYTAP_NAME_HEAD_BYTES), index)
            copy(PYTAP_OFFSET_TABLE_ADDRESSES, PYTAP_OFFSET_TABLE_HEADS, stride: Int(PYTAP_TABLE_HEAD_BYTES),
                 bytes: Int(PYTAP_TABLE_HEAD_BYTES), index)
        }
        return copies
    }

    /// The chain went on past the frames the program copies.
    public var pythonFramesTruncated: Bool { u32(PYTAP_OFFSET_FRAMES_TRUNCATED) != 0 }
}
