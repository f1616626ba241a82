/// The messages of pprof's `profile.proto` (package perftools.profiles) that pytap writes,
/// with their field numbers; fields pytap never sets (drop_frames, keep_frames,
/// default_sample_type, doc_url, mapping addresses and build id, columns, is_folded,
/// has_inline_frames, num_unit) are left out. `Tests/PyTapTests/pprof/profile.proto` is
/// the schema; the unit tests decode the output with code generated from it.
public enum Pprof {
    public struct Profile: Equatable, Sendable {
        public var sampleType: [ValueType] = []      // 1
        public var sample: [Sample] = []             // 2
        public var mapping: [Mapping] = []           // 3
        public var location: [Location] = []         // 4
        public var function: [Function] = []         // 5
        public var stringTable: [String] = []        // 6
        public var timeNanos: Int64 = 0              // 9
        public var durationNanos: Int64 = 0          // 10
        public var periodType = ValueType()          // 11
        public var period: Int64 = 0                 // 12
        public var comment: [Int64] = []             // 13

        /// The serialized message (not compressed).
        public func serialized() -> [UInt8] {
            var out = ProtobufWriter()
            for value in sampleType { out.message(1, value.encode) }
            for value in sample { out.message(2, value.encode) }
            for value in mapping { out.message(3, value.encode) }
            for value in location { out.message(4, value.encode) }
            for value in function { out.message(5, value.encode) }
            for value in stringTable { out.stringElement(6, value) }
            out.int64(9, timeNanos)
            out.int64(10, durationNanos)
            out.message(11, periodType.encode)
            out.int64(12, period)
            out.packed(13, comment)
            return out.bytes
        }
    }

    public struct ValueType: Equatable, Sendable {
        public var type: Int64 = 0  // 1, index into string_table
        public var unit: Int64 = 0  // 2, index into string_table

        func encode(_ out: inout ProtobufWriter) {
            out.int64(1, type)
            out.int64(2, unit)
        }
    }

    public struct Sample: Equatable, Sendable {
        public var locationID: [UInt64] = []  // 1
        public var value: [Int64] = []        // 2
        public var label: [Label] = []        // 3

        func encode(_ out: inout ProtobufWriter) {
            out.packed(1, locationID)
            out.packed(2, value)
            for value in label { out.message(3, value.encode) }
        }
    }

    public struct Label: Equatable, Sendable {
        public var key: Int64 = 0  // 1
        public var str: Int64 = 0  // 2
        public var num: Int64 = 0  // 3

        func encode(_ out: inout ProtobufWriter) {
            out.int64(1, key)
            out.int64(2, str)
            out.int64(3, num)
        }
    }

    public struct Mapping: Equatable, Sendable {
        public var id: UInt64 = 0             // 1
        public var filename: Int64 = 0        // 5
        public var hasFunctions = false       // 7
        public var hasFilenames = false       // 8
        public var hasLineNumbers = false     // 9

        func encode(_ out: inout ProtobufWriter) {
            out.uint64(1, id)
            out.int64(5, filename)
            out.bool(7, hasFunctions)
            out.bool(8, hasFilenames)
            out.bool(9, hasLineNumbers)
        }
    }

    public struct Location: Equatable, Sendable {
        public var id: UInt64 = 0         // 1
        public var mappingID: UInt64 = 0  // 2
        public var line: [Line] = []      // 4

        func encode(_ out: inout ProtobufWriter) {
            out.uint64(1, id)
            out.uint64(2, mappingID)
            for value in line { out.message(4, value.encode) }
        }
    }

    public struct Line: Equatable, Sendable {
        public var functionID: UInt64 = 0  // 1
        public var line: Int64 = 0         // 2

        func encode(_ out: inout ProtobufWriter) {
            out.uint64(1, functionID)
            out.int64(2, line)
        }
    }

    public struct Function: Equatable, Sendable {
        public var id: UInt64 = 0          // 1
        public var name: Int64 = 0         // 2
        public var systemName: Int64 = 0   // 3
        public var filename: Int64 = 0     // 4
        public var startLine: Int64 = 0    // 5

        func encode(_ out: inout ProtobufWriter) {
            out.uint64(1, id)
            out.int64(2, name)
            out.int64(3, systemName)
            out.int64(4, filename)
            out.int64(5, startLine)
        }
    }
}
