/// The protobuf wire format as far as pprof's `profile.proto` needs it: varints (int64,
/// uint64, bool), length-delimited strings and embedded messages, packed repeated varints.
///
/// Written by hand rather than through swift-protobuf, whose runtime imports Foundation:
/// in a static binary that carried Foundation and ICU (~40 MB of the binary, ~10 MB of
/// pages touched at start-up) for one output format of seven messages.
///
/// proto3 rules, as swift-protobuf and Go's protobuf apply them: fields are written in
/// field-number order (the callers' job), a singular scalar equal to its default (0,
/// false) is left out, repeated scalars are packed, elements of repeated fields are
/// always written. The unit tests decode the output with swift-protobuf and check that
/// it re-encodes to the same bytes.
struct ProtobufWriter {
    private(set) var bytes: [UInt8] = []

    private enum WireType: UInt64 {
        case varint = 0
        case lengthDelimited = 2
    }

    private mutating func varint(_ value: UInt64) {
        var rest = value
        while rest >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        bytes.append(UInt8(rest))
    }

    private static func varintSize(_ value: UInt64) -> Int {
        var size = 1
        var rest = value >> 7
        while rest != 0 {
            size += 1
            rest >>= 7
        }
        return size
    }

    private mutating func tag(_ field: Int, _ type: WireType) {
        varint(UInt64(field) << 3 | type.rawValue)
    }

    /// A singular `uint64` field (left out when 0).
    mutating func uint64(_ field: Int, _ value: UInt64) {
        guard value != 0 else { return }
        tag(field, .varint)
        varint(value)
    }

    /// A singular `int64` field (left out when 0); negative values take ten bytes, as protobuf says.
    mutating func int64(_ field: Int, _ value: Int64) {
        uint64(field, UInt64(bitPattern: value))
    }

    /// A singular `bool` field (left out when false).
    mutating func bool(_ field: Int, _ value: Bool) {
        uint64(field, value ? 1 : 0)
    }

    /// A packed repeated `uint64` or `int64` field (left out when empty).
    mutating func packed(_ field: Int, _ values: [UInt64]) {
        guard !values.isEmpty else { return }
        tag(field, .lengthDelimited)
        varint(UInt64(values.reduce(0) { $0 + ProtobufWriter.varintSize($1) }))
        for value in values { varint(value) }
    }

    mutating func packed(_ field: Int, _ values: [Int64]) {
        packed(field, values.map { UInt64(bitPattern: $0) })
    }

    /// One element of a repeated `string` field (written even when empty).
    mutating func stringElement(_ field: Int, _ value: String) {
        tag(field, .lengthDelimited)
        var text = value
        text.withUTF8 { utf8 in
            varint(UInt64(utf8.count))
            bytes.append(contentsOf: utf8)
        }
    }

    /// An embedded message (a repeated field's element, or a set singular field).
    mutating func message(_ field: Int, _ body: (inout ProtobufWriter) -> Void) {
        var inner = ProtobufWriter()
        body(&inner)
        tag(field, .lengthDelimited)
        varint(UInt64(inner.bytes.count))
        bytes.append(contentsOf: inner.bytes)
    }
}
