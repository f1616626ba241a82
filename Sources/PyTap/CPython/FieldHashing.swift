// `layout[field]` is looked up many times in every walk. The standard library hashes a
// `RawRepresentable` by its raw value, a String here: hashing the case's own
// representation instead is cheaper (perf of the
// sampler, issue 11 item 4). Equal cases have equal bytes, so the hash stays consistent
// with `==`.
extension LayoutField {
    @inline(__always)
    public func hash(into hasher: inout Hasher) {
        withUnsafeBytes(of: self) { hasher.combine(bytes: $0) }
    }
}

extension AsyncioField {
    @inline(__always)
    public func hash(into hasher: inout Hasher) {
        withUnsafeBytes(of: self) { hasher.combine(bytes: $0) }
    }
}
