/// Maps the interpreter's thread ident (a `pthread_t`, i.e. the address of glibc's or musl's
/// `struct pthread`) to the OS thread id, for versions without `native_thread_id` (≤3.10).
/// The offset of the tid inside `struct pthread` is calibrated on the target itself: it is
/// the offset at which every thread's structure holds a tid of the process, all distinct.
public final class PthreadTIDResolver {
    private let memory: RemoteMemory
    public private(set) var tidOffset: Int?
    private var cache: [UInt64: Int32] = [:]
    private var calibrationAttempts = 0

    /// glibc's offset on x86_64 (preferred when several offsets fit a single-thread process).
    static let glibcX86_64Offset = 0x2d0
    static let scanBytes = 2048

    public init(memory: RemoteMemory) {
        self.memory = memory
    }

    /// The tid of each ident that could be resolved.
    public func tids(for idents: [UInt64], liveTIDs: Set<Int32>) -> [UInt64: Int32] {
        if tidOffset == nil && calibrationAttempts < 5 {
            calibrationAttempts += 1
            calibrate(idents: idents, liveTIDs: liveTIDs)
        }
        guard let offset = tidOffset else { return [:] }
        var result = [UInt64: Int32]()
        for ident in idents {
            if let tid = cache[ident], liveTIDs.contains(tid) {
                result[ident] = tid
                continue
            }
            if let tid = try? memory.readInteger(ident &+ UInt64(offset), as: Int32.self), liveTIDs.contains(tid) {
                cache[ident] = tid
                result[ident] = tid
            }
        }
        return result
    }

    private func calibrate(idents: [UInt64], liveTIDs: Set<Int32>) {
        let structs = idents.compactMap { try? memory.readBytes($0, count: PthreadTIDResolver.scanBytes) }
        guard !structs.isEmpty else { return }
        var fitting = [Int]()
        var offset = 0
        while offset + 4 <= PthreadTIDResolver.scanBytes {
            var seen = Set<Int32>()
            let fits = structs.allSatisfy { bytes in
                let value = bytes[offset..<(offset + 4)].withUnsafeBytes { Int32(littleEndian: $0.loadUnaligned(as: Int32.self)) }
                return liveTIDs.contains(value) && seen.insert(value).inserted
            }
            if fits { fitting.append(offset) }
            offset += 4
        }
        if fitting.contains(PthreadTIDResolver.glibcX86_64Offset) {
            tidOffset = PthreadTIDResolver.glibcX86_64Offset
        } else {
            tidOffset = fitting.first
        }
    }
}
