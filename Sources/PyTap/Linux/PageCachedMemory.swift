/// Reads of another memory served from whole 4 KiB pages read once: unwinding a stopped
/// thread reads its stack a word at a time (hundreds of process_vm_readv calls per thread
/// otherwise, while the thread is held). Made for one instant (one held thread) and thrown
/// away after it: pages are not re-read. A page that cannot be read whole (the end of a
/// mapping) is not cached; its reads go to the memory below as asked.
public final class PageCachedMemory: RemoteMemory {
    public static let pageSize = 4096
    public let base: RemoteMemory
    private var pages: [UInt64: [UInt8]] = [:]
    private var unreadable: Set<UInt64> = []
    /// Pages kept at most (a thread's stack copy plus the code around its pcs).
    static let maximumPages = 256

    public init(base: RemoteMemory) {
        self.base = base
    }

    public func read(_ address: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws {
        let page = address & ~UInt64(PageCachedMemory.pageSize - 1)
        let offset = Int(address - page)
        guard buffer.count > 0, offset + buffer.count <= PageCachedMemory.pageSize, !unreadable.contains(page) else {
            return try base.read(address, into: buffer)
        }
        let bytes: [UInt8]
        if let cached = pages[page] {
            bytes = cached
        } else {
            guard pages.count < PageCachedMemory.maximumPages,
                  let fetched = try? base.readBytes(page, count: PageCachedMemory.pageSize) else {
                unreadable.insert(page)
                return try base.read(address, into: buffer)
            }
            pages[page] = fetched
            bytes = fetched
        }
        bytes.withUnsafeBytes { source in
            buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[offset ..< offset + buffer.count]))
        }
    }
}
