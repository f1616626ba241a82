import SwiftProtobuf
import Testing
@testable import PyTap

/// Reads back what `PprofWriter.render` writes (gzip-compressed or plain serialized bytes),
/// with swift-protobuf and the messages generated from profile.proto: a decoder
/// independent of the library's hand-written encoder.
func decodePprof(_ bytes: [UInt8]) throws -> Perftools_Profiles_Profile {
    let plain = try bytes.starts(with: [0x1f, 0x8b]) ? Gzip.decompress(bytes) : bytes
    do {
        return try Perftools_Profiles_Profile(serializedBytes: plain)
    } catch {
        throw ReportError.invalidPprof("\(error)")
    }
}

/// The hand-written protobuf encoder against swift-protobuf's: same values decoded, and
/// the very bytes swift-protobuf writes for the message it decoded (field order, packing,
/// defaults left out).
struct PprofEncodingTests {
    @Test func writerProfileReencodesToTheSameBytes() throws {
        let plain = try PprofWriter().makeProfile(WriterFixture.profile()).serialized()
        let decoded = try decodePprof(plain)
        #expect(try decoded.serializedBytes() == plain)
    }

    @Test func extremeValuesRoundTrip() throws {
        var profile = Pprof.Profile()
        profile.stringTable = ["", "ünïcödé → λ", String(repeating: "x", count: 300), "\0"]
        profile.timeNanos = Int64.min
        profile.durationNanos = Int64.max
        profile.period = -1
        profile.comment = [0, 1, 127, 128, 16_383, 16_384, -1]
        profile.periodType = Pprof.ValueType(type: 0, unit: 0)  // set but all defaults
        var sample = Pprof.Sample()
        sample.locationID = [UInt64.max, 0, 1 << 35]
        sample.value = [-5, 0, Int64.max]
        sample.label = [Pprof.Label(key: 1, str: 0, num: -300), Pprof.Label()]
        profile.sample = [sample, Pprof.Sample()]
        profile.mapping = [Pprof.Mapping(id: 1, filename: 2, hasFunctions: true, hasFilenames: false, hasLineNumbers: true)]
        profile.location = [Pprof.Location(id: 3, mappingID: 0, line: [Pprof.Line(functionID: 9, line: -2), Pprof.Line()])]
        profile.function = [Pprof.Function(id: UInt64.max, name: 1, systemName: 0, filename: 3, startLine: 1 << 40)]
        let plain = profile.serialized()
        let decoded = try decodePprof(plain)
        #expect(try decoded.serializedBytes() == plain)

        #expect(decoded.stringTable == profile.stringTable)
        #expect(decoded.timeNanos == Int64.min && decoded.durationNanos == Int64.max && decoded.period == -1)
        #expect(decoded.comment == profile.comment)
        #expect(decoded.hasPeriodType)
        #expect(decoded.sample.count == 2)
        #expect(decoded.sample[0].locationID == sample.locationID && decoded.sample[0].value == sample.value)
        #expect(decoded.sample[0].label.map { [$0.key, $0.str, $0.num] } == [[1, 0, -300], [0, 0, 0]])
        #expect(decoded.sample[1] == Perftools_Profiles_Sample())
        #expect(decoded.mapping.map { [$0.id, UInt64($0.filename)] } == [[1, 2]])
        #expect(decoded.mapping[0].hasFunctions_p && !decoded.mapping[0].hasFilenames_p && decoded.mapping[0].hasLineNumbers_p)
        #expect(decoded.location[0].id == 3 && decoded.location[0].mappingID == 0)
        #expect(decoded.location[0].line.map { [Int64($0.functionID), $0.line] } == [[9, -2], [0, 0]])
        #expect(decoded.function[0].id == UInt64.max && decoded.function[0].startLine == 1 << 40)
        #expect(decoded.function[0].name == 1 && decoded.function[0].systemName == 0 && decoded.function[0].filename == 3)
    }

    @Test func emptyProfileIsOnlyItsPeriodType() throws {
        // proto3: nothing but the set (empty) period_type message is written.
        #expect(Pprof.Profile().serialized() == [0x5a, 0x00])
        #expect(try decodePprof([0x5a, 0x00]).hasPeriodType)
    }
}
