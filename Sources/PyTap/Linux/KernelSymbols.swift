/// The kernel's function symbols from `/proc/kallsyms` (module symbols included), for
/// naming kernel frames. Without the right to see addresses (`kptr_restrict`, no
/// CAP_SYSLOG) every address reads as 0 and nothing is named.
public final class KernelSymbols {
    private let addresses: [UInt64]
    private let names: [String]

    public init(text: String) {
        var entries = [(UInt64, String)]()
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            let fields = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true)
            guard fields.count == 3, let kind = fields[1].first, "tTwW".contains(kind),
                  let address = UInt64(fields[0], radix: 16), address != 0 else { continue }
            // "name\t[module]": the module is dropped.
            let name = fields[2].split(separator: "\t", maxSplits: 1).first.map(String.init) ?? String(fields[2])
            entries.append((address, name))
        }
        entries.sort { $0.0 < $1.0 }
        addresses = entries.map(\.0)
        names = entries.map(\.1)
    }

    /// This machine's kernel symbols; empty when /proc/kallsyms cannot be read.
    public static func current() -> KernelSymbols {
        KernelSymbols(text: (try? ProcFiles.readString("/proc/kallsyms", limit: 64 << 20)) ?? "")
    }

    public var count: Int { addresses.count }

    /// The function containing `address` (the nearest symbol at or below it).
    public func name(at address: UInt64) -> String? {
        var low = 0, high = addresses.count
        while low < high {
            let middle = (low + high) / 2
            if addresses[middle] <= address { low = middle + 1 } else { high = middle }
        }
        return low == 0 ? nil : names[low - 1]
    }
}
