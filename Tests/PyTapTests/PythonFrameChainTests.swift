import XCTest
@testable import PyTap

/// `PythonFrameChain`: 3.11+ handler records (a frame and its callers) to balanced calls and
/// returns, for frames left or entered without a record of their own.
final class PythonFrameChainTests: XCTestCase {
    typealias Entry = PythonFrameChain.Entry
    let root = Entry(frame: 0x100, code: 1), child = Entry(frame: 0x200, code: 2), grandchild = Entry(frame: 0x300, code: 3)

    /// The steps as "+code@depth" / "-code@depth" ("~" for a call opened without its record).
    func trace(_ chain: inout PythonFrameChain, _ event: PythonFrameChain.Event, _ entries: [Entry]) -> [String] {
        chain.apply(event, chain: entries).map {
            switch $0 {
            case .enter(let entry, let depth, let recorded): return "\(recorded ? "+" : "~")\(entry.code)@\(depth)"
            case .leave(let entry, let depth): return "-\(entry.code)@\(depth)"
            }
        }
    }

    func testCallsAndReturnsInOrder() {
        var chain = PythonFrameChain()
        XCTAssertEqual(trace(&chain, .start, [root]), ["+1@0"])
        XCTAssertEqual(trace(&chain, .start, [child, root]), ["+2@1"])
        XCTAssertEqual(trace(&chain, .leave, [child, root]), ["-2@1"])
        XCTAssertEqual(trace(&chain, .leave, [root]), ["-1@0"])
        XCTAssertEqual(chain.open, [])
    }

    /// An exception leaves two frames without a return record: they close when the frame
    /// that catches it is seen (PyTraceBack_Here there, or its own return).
    func testFramesAnExceptionCarriedAwayCloseAtTheNextRecord() {
        var chain = PythonFrameChain()
        _ = trace(&chain, .start, [root])
        _ = trace(&chain, .start, [child, root])
        _ = trace(&chain, .start, [grandchild, child, root])
        XCTAssertEqual(trace(&chain, .raise, [grandchild, child, root]), [])
        XCTAssertEqual(trace(&chain, .raise, [root]), ["-3@2", "-2@1"])
        XCTAssertEqual(trace(&chain, .leave, [root]), ["-1@0"])
    }

    /// A function whose exception C code swallowed (its raise recorded) is called again at
    /// the same frame address: a new call, the stale one closed first (its caller decides).
    func testARecalledFrameAtTheSameAddressIsANewCall() {
        var chain = PythonFrameChain()
        _ = trace(&chain, .start, [root])
        _ = trace(&chain, .start, [child, root])
        XCTAssertEqual(trace(&chain, .raise, [child, root]), [])
        XCTAssertEqual(trace(&chain, .start, [child, root]), ["-2@1", "+2@1"])
        XCTAssertEqual(trace(&chain, .leave, [root]), ["-2@1", "-1@0"])
    }

    /// 3.12+ runs a code object's RESUME twice after re-instrumenting it: one start.
    func testAStartRunTwiceIsOneCall() {
        var chain = PythonFrameChain()
        _ = trace(&chain, .start, [root])
        XCTAssertEqual(trace(&chain, .start, [child, root]), ["+2@1"])
        XCTAssertEqual(trace(&chain, .start, [child, root]), [])
        XCTAssertEqual(trace(&chain, .start, [grandchild, child, root]), ["+3@2"])
        XCTAssertEqual(trace(&chain, .leave, [grandchild, child, root]), ["-3@2"])
        XCTAssertEqual(trace(&chain, .leave, [child, root]), ["-2@1"])
    }

    /// The same address with another code object is another frame.
    func testAReusedAddressWithOtherCodeIsAnotherFrame() {
        var chain = PythonFrameChain()
        _ = trace(&chain, .start, [root])
        _ = trace(&chain, .start, [child, root])
        let other = Entry(frame: child.frame, code: 9)
        XCTAssertEqual(trace(&chain, .leave, [other, root]), ["-2@1", "~9@1", "-9@1"])
    }

    /// A generator resumed by throw() runs no RESUME: the record that shows it opens it.
    func testAFrameStartedWithoutARecordOpensWhenSeen() {
        var chain = PythonFrameChain()
        _ = trace(&chain, .start, [root])
        XCTAssertEqual(trace(&chain, .raise, [child, root]), ["~2@1"])
        XCTAssertEqual(trace(&chain, .start, [grandchild, child, root]), ["+3@2"])
        XCTAssertEqual(trace(&chain, .leave, [grandchild, child, root]), ["-3@2"])
        XCTAssertEqual(trace(&chain, .leave, [child, root]), ["-2@1"])
    }

    /// Records of frames that began before the trace: nothing to return from; a call they
    /// make is an outermost one.
    func testFramesFromBeforeTheTraceAreNotReturnedFrom() {
        var chain = PythonFrameChain()
        XCTAssertEqual(trace(&chain, .leave, [child, root]), [])
        XCTAssertEqual(trace(&chain, .start, [grandchild, child, root]), ["+3@0"])
        XCTAssertEqual(trace(&chain, .leave, [child, root]), ["-3@0"])
    }
}

/// The check of `OpcodeHandlers`' numbers against the interpreter's `_PyOpcode_Deopt`.
final class OpcodeHandlersTableTests: XCTestCase {
    /// 3.13's table as the interpreter has it: identity but RESUME_CHECK → RESUME.
    func deopt313() -> [UInt8] {
        var table = (0..<256).map { UInt8($0) }
        table[207] = 149
        return table
    }

    func testTheTablesNumbersAgreeWithTheInterpreters() throws {
        let opcodes = try XCTUnwrap(OpcodeHandlers.opcodes.first { $0.versions.contains(PythonMinorVersion(3, 13)) })
        XCTAssertNil(OpcodeHandlers.mismatch(of: opcodes, deoptimized: deopt313()))
    }

    func testARenumberedBuildIsRefused() throws {
        let opcodes = try XCTUnwrap(OpcodeHandlers.opcodes.first { $0.versions.contains(PythonMinorVersion(3, 13)) })
        // RESUME one further on, as a pre-release might number it.
        var shifted = deopt313()
        shifted[207] = 150
        XCTAssertEqual(OpcodeHandlers.mismatch(of: opcodes, deoptimized: shifted), "RESUME_CHECK is 207 here, but the interpreter maps 207 to 150")
        var moved = deopt313()
        moved[36] = 35
        XCTAssertNotNil(OpcodeHandlers.mismatch(of: opcodes, deoptimized: moved))
    }
}
