import CBPF
import Glibc
import SystemPackage

/// One of pytap's BPF objects (a bpf/NAME.bpf.c compiled at build time and embedded as
/// `BPFNameProgramObject.hex`), loaded into the kernel: its maps reached by name, its
/// programs attached to uprobes, its ring buffers polled. Every probe, map and program
/// belongs to this object's file descriptors: when pytap ends, however it ends (SIGKILL
/// included), the kernel removes the probes and the target runs on untouched.
///
/// Use: `open`, adjust (map sizes, programs to leave out), `load`, attach, poll, and let
/// it go (or `close`) to detach everything.
public final class BPFObject {
    private var handle: OpaquePointer?
    public let name: String

    /// Opens the object from its embedded bytes (`BPFNameProgramObject.hex`); not loaded yet.
    public init(name: String, hex: StaticString) throws {
        self.name = name
        let bytes = BPFObject.bytes(fromHex: hex)
        var error: Int32 = 0
        var message = [CChar](repeating: 0, count: 512)
        let opened = bytes.withUnsafeBytes { raw in
            pytap_bpf_object_open(raw.baseAddress, raw.count, name, &error, &message, message.count)
        }
        guard let opened else {
            throw NativeCaptureUnavailable(BPFSampleProgram.explain(errno: -error, doing: "opening the BPF program \(name)", detail: BPFObject.text(message)))
        }
        handle = opened
    }

    deinit { close() }

    /// Detaches every probe and frees the object. Idempotent.
    public func close() {
        if let handle { pytap_bpf_object_close(handle) }
        handle = nil
    }

    private var object: OpaquePointer {
        get throws {
            guard let handle else { throw SystemCallError("using the closed BPF object \(name)", .badFileDescriptor) }
            return handle
        }
    }

    /// Before `load`: the number of entries of a map (bounded maps with counted losses).
    public func setEntries(ofMap map: String, to entries: Int) throws {
        try check(pytap_bpf_object_set_map_entries(try object, map, UInt32(clamping: entries)), "sizing the map \(map)")
    }

    /// Before `load`: leaves a program out (one the running kernel cannot load).
    public func skipProgram(_ program: String) throws {
        try check(pytap_bpf_object_skip_program(try object, program), "leaving out the program \(program)")
    }

    /// Before `load`: a program's expected attach type (libbpf 1.1 does not know every
    /// section name, e.g. `uprobe.multi`, whose attach type is `BPF_TRACE_UPROBE_MULTI`).
    public func setAttachType(ofProgram program: String, to attachType: UInt32) throws {
        try check(pytap_bpf_object_set_attach_type(try object, program, attachType), "setting the attach type of \(program)")
    }

    /// Loads the programs into the kernel. Throws `NativeCaptureUnavailable` saying why the
    /// kernel refused (missing capabilities, seccomp, verifier).
    public func load() throws {
        var message = [CChar](repeating: 0, count: 512)
        let result = pytap_bpf_object_load(try object, &message, message.count)
        if result < 0 {
            throw NativeCaptureUnavailable(BPFSampleProgram.explain(errno: -result, doing: "loading the BPF program \(name)", detail: BPFObject.text(message)))
        }
    }

    /// A map of the loaded object.
    public func map(_ name: String) throws -> BPFMap {
        let fd = pytap_bpf_object_map_fd(try object, name)
        if fd < 0 { throw SystemCallError("finding the BPF map \(name)", Errno(rawValue: -fd)) }
        return BPFMap(name: name, descriptor: fd)
    }

    /// A program's file descriptor (for links made with the bpf() syscall directly).
    public func programDescriptor(_ program: String) throws -> Int32 {
        let fd = pytap_bpf_object_program_fd(try object, program)
        if fd < 0 { throw SystemCallError("finding the BPF program \(program)", Errno(rawValue: -fd)) }
        return fd
    }

    /// Attaches `program` at file offset `offset` of the object file at `path` (as pytap
    /// sees it, e.g. under /proc/PID/root/...), for process `pid` only (nil: every process
    /// that maps the file). `returnProbe` makes it a uretprobe. `cookie` is what the program
    /// gets from `bpf_get_attach_cookie` (e.g. which function this is).
    @discardableResult
    public func attachUprobe(program: String, pid: Int32?, path: String, offset: UInt64,
                             returnProbe: Bool = false, cookie: UInt64 = 0) throws -> BPFAttachment {
        let result = pytap_bpf_object_attach_uprobe(try object, program, pid ?? -1, path, offset, returnProbe ? 1 : 0, cookie)
        if result < 0 {
            let kind = returnProbe ? "uretprobe" : "uprobe"
            throw NativeCaptureUnavailable(BPFSampleProgram.explain(errno: -result, doing: "attaching a \(kind) at \(path)+0x\(String(offset, radix: 16))", detail: ""))
        }
        return BPFAttachment(number: result)
    }

    /// Takes ownership of a link file descriptor made elsewhere: it is closed with the object.
    @discardableResult
    public func adoptLink(descriptor: Int32) throws -> BPFAttachment {
        let result = pytap_bpf_object_adopt_link_fd(try object, descriptor)
        if result < 0 { throw SystemCallError("keeping a BPF link", Errno(rawValue: -result)) }
        return BPFAttachment(number: result)
    }

    /// Removes one probe: it is gone from the target when this returns.
    public func detach(_ attachment: BPFAttachment) {
        if let handle { pytap_bpf_object_detach(handle, attachment.number) }
    }

    /// Removes every probe (the maps stay readable).
    public func detachAll() {
        if let handle { pytap_bpf_object_detach_all(handle) }
    }

    /// Starts polling the ring buffer map `map` (several may be added).
    public func openRing(_ map: String) throws {
        try check(pytap_bpf_object_open_ring(try object, map), "opening the ring buffer \(map)")
    }

    /// How often, in milliseconds, a tracer reads rings its program fills quietly
    /// (`SUBMIT_QUIETLY` in bpf/common.bpf.h: no wakeup per record): the latency of its output.
    public static let quietRingInterval: Int32 = 20

    /// Waits up to `timeout` milliseconds for a wakeup (a quietly filled ring wakes pytap
    /// only when it fills), then hands the records waiting in the ring buffers to `handler`
    /// (the bytes are valid only during the call) until it returns false (the rest stay for
    /// the next poll). The number of records handled.
    @discardableResult
    public func poll(timeout: Int32, _ handler: (UnsafeRawBufferPointer) -> Bool) throws -> Int {
        let object = try object
        let result: Int32 = withoutActuallyEscaping(handler) { handler in
            var box = handler
            return withUnsafeMutablePointer(to: &box) { context in
                pytap_bpf_object_poll(object, timeout, { context, record, size in
                    guard let context, let record else { return 0 }
                    let keepGoing = context.assumingMemoryBound(to: ((UnsafeRawBufferPointer) -> Bool).self)
                        .pointee(UnsafeRawBufferPointer(start: record, count: size))
                    return keepGoing ? 0 : -1
                }, context)
            }
        }
        if result == -1 { return 0 }  // the handler asked to stop
        if result < 0 { throw SystemCallError("polling the BPF ring buffer", Errno(rawValue: -result)) }
        return Int(result)
    }

    private func check(_ result: Int32, _ doing: String) throws {
        if result < 0 { throw SystemCallError(doing, Errno(rawValue: -result)) }
    }

    static func text(_ message: [CChar]) -> String {
        String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The object file's bytes from the hex text the build plugin embeds.
    static func bytes(fromHex hex: StaticString) -> [UInt8] {
        hex.withUTF8Buffer { text in
            var bytes = [UInt8]()
            bytes.reserveCapacity(text.count / 2)
            func nibble(_ c: UInt8) -> UInt8 { c >= 97 ? c - 87 : c - 48 }
            var index = 0
            while index + 1 < text.count {
                bytes.append(nibble(text[index]) << 4 | nibble(text[index + 1]))
                index += 2
            }
            return bytes
        }
    }
}

/// One attached probe of a `BPFObject`.
public struct BPFAttachment: Hashable, Sendable {
    public let number: Int32
}

/// A map of a loaded `BPFObject`, read and written with fixed-size plain values (the C
/// structs shared with the BPF program, integers). Valid while its object is open.
public struct BPFMap: Sendable {
    public let name: String
    public let descriptor: Int32

    /// Sets `key` to `value` (BPF_ANY).
    public func update<Key: BitwiseCopyable, Value: BitwiseCopyable>(_ key: Key, _ value: Value) throws {
        var key = key, value = value
        let result = pytap_bpf_map_update(descriptor, &key, &value, 0)
        if result < 0 { throw SystemCallError("writing the BPF map \(name)", Errno(rawValue: -result)) }
    }

    /// The value at `key`, nil when absent.
    public func lookup<Key: BitwiseCopyable, Value: BitwiseCopyable>(_ key: Key, as type: Value.Type) -> Value? {
        var key = key
        return withUnsafeTemporaryAllocation(of: Value.self, capacity: 1) { buffer -> Value? in
            guard let base = buffer.baseAddress else { return nil }
            UnsafeMutableRawPointer(base).initializeMemory(as: UInt8.self, repeating: 0, count: MemoryLayout<Value>.stride)
            guard pytap_bpf_map_lookup(descriptor, &key, base) == 0 else { return nil }
            return UnsafeMutableRawPointer(base).load(as: Value.self)
        }
    }

    /// Removes `key` (absent is fine).
    public func delete<Key: BitwiseCopyable>(_ key: Key) {
        var key = key
        _ = pytap_bpf_map_delete(descriptor, &key)
    }

    /// Every key, in the map's order (a hash map may change while it is walked: keys
    /// added meanwhile may be missed, as the kernel documents).
    public func keys<Key: BitwiseCopyable>(as type: Key.Type, limit: Int = 1 << 22) -> [Key] {
        var keys = [Key]()
        withUnsafeTemporaryAllocation(of: Key.self, capacity: 2) { buffer in
            guard let current = buffer.baseAddress else { return }
            let next = current + 1
            var result = pytap_bpf_map_next_key(descriptor, nil, next)
            while result == 0 && keys.count < limit {
                let key = UnsafeMutableRawPointer(next).load(as: Key.self)
                keys.append(key)
                UnsafeMutableRawPointer(current).storeBytes(of: key, as: Key.self)
                result = pytap_bpf_map_next_key(descriptor, current, next)
            }
        }
        return keys
    }
}
