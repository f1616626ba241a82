/// The kernel's function symbols from `/proc/kallsyms` (module symbols included), for
/// naming kernel frames. Without the right to see addresses (`kptr_restrict`, no
/// CAP_SYSLOG) every address reads as 0 and nothing is named.
public final class KernelSymbols {
    /// The file's bytes; names are decoded from them only when looked up.
    private let text: [UInt8]
    /// Function symbols sorted by address: address, and where the name lies in `text`.
    private let addresses: [UInt64]
    private let nameRanges: [Range<Int>]

    public init(bytes: [UInt8]) {
        text = bytes
        var entries = [(address: UInt64, name: Range<Int>)]()
        entries.reserveCapacity(bytes.count / 40)
        var index = 0
        let count = bytes.count
        // Lines are "ADDRESS TYPE NAME" or "ADDRESS TYPE NAME\t[MODULE]".
        while index < count {
            var address: UInt64 = 0
            var digits = 0
            while index < count, let digit = KernelSymbols.hexValue(bytes[index]) {
                address = address << 4 | UInt64(digit)
                digits += 1
                index += 1
            }
            var kind: UInt8 = 0
            var nameStart = -1, nameEnd = -1
            if index + 2 < count, bytes[index] == 0x20, bytes[index + 2] == 0x20 {
                kind = bytes[index + 1]
                nameStart = index + 3
                nameEnd = nameStart
                while nameEnd < count, bytes[nameEnd] != 0x0a, bytes[nameEnd] != 0x09 { nameEnd += 1 }
                index = nameEnd
            }
            while index < count, bytes[index] != 0x0a { index += 1 }
            index += 1
            // t/T: text, w/W: weak (functions among them); address 0: hidden by kptr_restrict.
            guard digits > 0, address != 0, nameStart >= 0, nameEnd > nameStart,
                  kind == 0x74 || kind == 0x54 || kind == 0x77 || kind == 0x57 else { continue }
            entries.append((address, nameStart..<nameEnd))
        }
        entries.sort { $0.address < $1.address }
        addresses = entries.map { $0.address }
        nameRanges = entries.map { $0.name }
    }

    public convenience init(text: String) {
        self.init(bytes: Array(text.utf8))
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: return byte - 0x30
        case 0x61...0x66: return byte - 0x61 + 10
        case 0x41...0x46: return byte - 0x41 + 10
        default: return nil
        }
    }

    /// This machine's kernel symbols; empty when /proc/kallsyms cannot be read.
    public static func current() -> KernelSymbols {
        KernelSymbols(bytes: (try? ProcFiles.readAll("/proc/kallsyms", limit: 64 << 20)) ?? [])
    }

    public var count: Int { addresses.count }

    /// The function containing `address` (the nearest symbol at or below it).
    public func name(at address: UInt64) -> String? {
        var low = 0, high = addresses.count
        while low < high {
            let middle = (low + high) / 2
            if addresses[middle] <= address { low = middle + 1 } else { high = middle }
        }
        return low == 0 ? nil : String(decoding: text[nameRanges[low - 1]], as: UTF8.self)
    }
}
