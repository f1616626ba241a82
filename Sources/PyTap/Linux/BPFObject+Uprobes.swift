import CBPF
import Glibc
import SystemPackage

/// Many uprobes (and uretprobes) of one object file attached at once, each with its cookie.
public struct UprobeBatch: Sendable {
    /// File offsets in the object file, and the cookie each probe's program gets.
    public let offsets: [UInt64]
    public let cookies: [UInt64]

    /// One (file offset, cookie) pair per probe: the two lists cannot disagree in length.
    public init(probes: [(offset: UInt64, cookie: UInt64)]) {
        offsets = probes.map(\.offset)
        cookies = probes.map(\.cookie)
    }
}

/// What attaching a batch did.
public struct UprobeBatchResult: Sendable {
    /// Cookies of the functions probed at entry (and, for those in `withReturn`, return).
    public var attached: Set<UInt64> = []
    public var withReturn: Set<UInt64> = []
    /// Offsets the kernel refused (an instruction it cannot probe), by cookie.
    public var refused: [UInt64] = []
    /// Whether multi-uprobe links were used (else one perf uprobe per probe).
    public var multiLinks = false
    /// Links (or perf events) made.
    public var attachments: [BPFAttachment] = []
    public var links: Int { attachments.count }
}

extension BPFObject {
    /// Most offsets one multi-uprobe link takes (the kernel caps a link at 1 << 20).
    static let multiLinkChunk = 8192

    /// Attaches `entry` at every offset of `batch` in `path` and, when given, `exit` as a
    /// uretprobe at the same offsets, for process `pid`. Multi-uprobe links first (kernel 6.6+,
    /// programs loaded with attach type BPF_TRACE_UPROBE_MULTI: `multiEntry`/`multiExit`),
    /// a chunk at a time; a chunk the kernel refuses is split until the offsets it cannot
    /// probe are found and left out. When no multi link can be made at all, one perf uprobe
    /// per probe (`entry`/`exit`), for at most `maximumSingleProbes` offsets (each perf uprobe
    /// took ~40 ms to attach and as long to detach on 6.18: 5000 functions took 6 minutes).
    /// PYTAP_NO_UPROBE_MULTI=1 forces that fallback.
    public func attachUprobes(_ batch: UprobeBatch, path: String, pid: Int32,
                              multiEntry: String, multiExit: String?, entry: String, exit: String?,
                              maximumSingleProbes: Int = 500) throws -> UprobeBatchResult {
        var result = UprobeBatchResult()
        let forceSingle = getenv("PYTAP_NO_UPROBE_MULTI").map { String(cString: $0) == "1" } ?? false
        let probes = Array(zip(batch.offsets, batch.cookies))
        // Return probes first: a function entered while its return probe was not yet
        // attached would never be seen returning.
        if !forceSingle {
            var returned = [(UInt64, UInt64)]()
            var refusedReturns = [UInt64]()
            if let multiExit {
                try attachMulti(probes, program: try programDescriptor(multiExit), path: path, pid: pid,
                                returnProbe: true, attached: &returned, refused: &refusedReturns, links: &result.attachments)
            }
            if multiExit == nil || !returned.isEmpty {
                var entered = [(UInt64, UInt64)]()
                try attachMulti(probes, program: try programDescriptor(multiEntry), path: path, pid: pid,
                                returnProbe: false, attached: &entered, refused: &result.refused, links: &result.attachments)
                if !entered.isEmpty {
                    result.multiLinks = true
                    result.attached = Set(entered.map(\.1))
                    result.withReturn = Set(returned.map(\.1)).intersection(result.attached)
                    return result
                }
            }
            // No multi link could be made: start over with single probes.
            for attachment in result.attachments { detach(attachment) }
            result = UprobeBatchResult()
        }
        if probes.count > maximumSingleProbes {
            throw NativeCaptureUnavailable("this kernel makes no multi-uprobe links (Linux 6.6+), and \(probes.count) functions would take "
                                           + "minutes to probe one by one (about 40 ms each to attach and to detach): choose at most \(maximumSingleProbes)")
        }
        for (offset, cookie) in probes {
            let returnProbe = exit.flatMap { try? attachUprobe(program: $0, pid: pid, path: path, offset: offset, returnProbe: true, cookie: cookie) }
            do {
                result.attachments.append(try attachUprobe(program: entry, pid: pid, path: path, offset: offset, cookie: cookie))
            } catch {
                // Probes at one address go together (the kernel drops both when one goes).
                if let returnProbe { detach(returnProbe) }
                if result.attached.isEmpty && result.refused.count >= 16 { throw error }  // nothing attaches: say why
                result.refused.append(cookie)
                continue
            }
            result.attached.insert(cookie)
            if let returnProbe { result.attachments.append(returnProbe); result.withReturn.insert(cookie) }
        }
        return result
    }

    /// Multi links over `probes` (offset, cookie), split in halves where the kernel refuses.
    private func attachMulti(_ probes: [(UInt64, UInt64)], program: Int32, path: String, pid: Int32, returnProbe: Bool,
                             attached: inout [(UInt64, UInt64)], refused: inout [UInt64], links: inout [BPFAttachment]) throws {
        var start = 0
        while start < probes.count {
            let chunk = Array(probes[start..<min(probes.count, start + BPFObject.multiLinkChunk)])
            try attachMultiChunk(chunk[...], program: program, path: path, pid: pid, returnProbe: returnProbe,
                                 attached: &attached, refused: &refused, links: &links)
            // Every probe of the first chunk refused: this kernel makes no multi links.
            if attached.isEmpty { return }
            start += chunk.count
        }
    }

    private func attachMultiChunk(_ probes: ArraySlice<(UInt64, UInt64)>, program: Int32, path: String, pid: Int32, returnProbe: Bool,
                                  attached: inout [(UInt64, UInt64)], refused: inout [UInt64], links: inout [BPFAttachment]) throws {
        // The first offsets all refused one by one: this kernel makes no multi links.
        guard !probes.isEmpty, !(attached.isEmpty && refused.count >= 8) else { return }
        let offsets = probes.map(\.0), cookies = probes.map(\.1)
        let fd = pytap_uprobe_multi_link(program, path, offsets, cookies, UInt32(probes.count), returnProbe ? 1 : 0, pid)
        if fd >= 0 {
            links.append(try adoptLink(descriptor: fd))
            attached += probes
            return
        }
        if -fd == EPERM || -fd == EACCES || -fd == ENOENT || -fd == EBADF { throw SystemCallError("attaching multi-uprobes to \(path)", Errno(rawValue: -fd)) }
        if probes.count == 1 {
            refused.append(probes[probes.startIndex].1)
            return
        }
        let middle = probes.startIndex + probes.count / 2
        try attachMultiChunk(probes[..<middle], program: program, path: path, pid: pid, returnProbe: returnProbe,
                             attached: &attached, refused: &refused, links: &links)
        try attachMultiChunk(probes[middle...], program: program, path: path, pid: pid, returnProbe: returnProbe,
                             attached: &attached, refused: &refused, links: &links)
    }
}
