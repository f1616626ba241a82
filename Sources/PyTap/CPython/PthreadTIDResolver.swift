/// Maps the interpreter's thread ident (a `pthread_t`, i.e. the address of glibc's or musl's
/// `struct pthread`) to the OS thread id, for versions without `native_thread_id` (≤3.10).
/// The offset of the tid inside `struct pthread` is calibrated on the target itself: it is
/// the offset at which the most threads' structures hold distinct tids of the process.
/// Tids are the target's own (its PID namespace's): the caller translates them for /proc.
public final class PthreadTIDResolver {
    private let memory: RemoteMemory
    public private(set) var tidOffset: Int?
    private var cache: [UInt64: Int32] = [:]
    private var calibrationAttempts = 0

    /// glibc's offset on x86_64 (preferred when several offsets fit equally well).
    static let glibcX86_64Offset = 0x2d0
    static let scanBytes = 2048
    static let maximumCalibrations = 20

    public init(memory: RemoteMemory) {
        self.memory = memory
    }

    /// The tid of each ident that could be resolved.
    public func tids(for idents: [UInt64], liveTIDs: Set<Int32>) -> [UInt64: Int32] {
        if tidOffset == nil && calibrationAttempts < PthreadTIDResolver.maximumCalibrations {
            calibrate(idents: idents, liveTIDs: liveTIDs)
        }
        guard let offset = tidOffset else { return [:] }
        var result = [UInt64: Int32]()
        for ident in idents where ident != 0 {
            // A cached tid is only trusted while that thread lives: glibc reuses a finished
            // thread's stack, and with it its `struct pthread` (the same ident), for a new one.
            if let tid = cache[ident], liveTIDs.contains(tid) {
                result[ident] = tid
                continue
            }
            cache[ident] = nil
            if let tid = try? memory.readInteger(ident &+ UInt64(offset), as: Int32.self), liveTIDs.contains(tid) {
                cache[ident] = tid
                result[ident] = tid
            }
        }
        return result
    }

    /// Picks the offset holding a distinct live tid in the most structures. Threads come and
    /// go while the list is read: a finished thread's structure holds 0 (the kernel clears
    /// it) and a starting thread's state still carries its creator's ident, so requiring
    /// every structure to fit fails under thread churn; a majority is asked for instead.
    private func calibrate(idents: [UInt64], liveTIDs: Set<Int32>) {
        let structs = Set(idents.filter { $0 != 0 }).compactMap { try? memory.readBytes($0, count: PthreadTIDResolver.scanBytes) }
        guard !structs.isEmpty else { return }
        calibrationAttempts += 1
        var best: (offset: Int, score: Int)?
        var offset = 0
        while offset + 4 <= PthreadTIDResolver.scanBytes {
            var seen = Set<Int32>()
            for bytes in structs {
                let value = bytes[offset..<(offset + 4)].withUnsafeBytes { Int32(littleEndian: $0.loadUnaligned(as: Int32.self)) }
                if liveTIDs.contains(value) { seen.insert(value) }
            }
            let score = seen.count
            if score > 0, score > best?.score ?? 0 || (score == best?.score && offset == PthreadTIDResolver.glibcX86_64Offset) {
                best = (offset, score)
            }
            offset += 4
        }
        guard let best, best.score * 2 > structs.count else { return }
        tidOffset = best.offset
    }
}
