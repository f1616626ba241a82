import Foundation
import XCTest
@testable import PyTap

/// Call trees from entries and returns matched by stack pointer, and their text, JSON and
/// Chrome trace forms.
final class CallTreeTests: XCTestCase {
    private let rootStack: UInt64 = 0x7fff_0000_1000

    private func builder() -> CallTreeBuilder {
        CallTreeBuilder(number: 1, tid: 42, threadName: "python", startTime: 1_000_000, root: "trigger", function: 0, stack: rootStack)
    }

    func testNestedCallsAndReturnsMakeATreeWithMicroseconds() throws {
        var tree = builder()
        tree.enter(name: "a", function: 1, stack: rootStack - 0x40, time: 1_002_000)
        tree.enter(name: "b", function: 2, stack: rootStack - 0x80, time: 1_003_000)
        tree.leave(function: 2, stack: rootStack - 0x80, time: 1_004_500)
        tree.leave(function: 1, stack: rootStack - 0x40, time: 1_005_000)
        tree.enter(name: "c", function: 3, stack: rootStack - 0x40, time: 1_006_000)
        tree.leave(function: 3, stack: rootStack - 0x40, time: 1_007_000)
        XCTAssertFalse(tree.isFinished)
        tree.leave(function: 0, stack: rootStack, time: 1_010_000)
        let invocation = try XCTUnwrap(tree.invocation)
        XCTAssertFalse(invocation.truncated)
        XCTAssertEqual(invocation.root, CallNode(name: "trigger", start: 0, end: 10, children: [
            CallNode(name: "a", start: 2, end: 5, children: [CallNode(name: "b", start: 3, end: 4.5)]),
            CallNode(name: "c", start: 6, end: 7),
        ]))
        XCTAssertEqual(CallGraphWriter.text(invocation), """
                 0 python(42): -> trigger
                 2 python(42):  -> a
                 3 python(42):   -> b
                 4 python(42):   <- b
                 5 python(42):  <- a
                 6 python(42):  -> c
                 7 python(42):  <- c
                10 python(42): <- trigger

            """)
    }

    /// A return the kernel did not report (uretprobes past 64 nested ones are omitted)
    /// must not shift the later ones: the next entry at a higher stack pointer closes it.
    func testAMissingReturnClosesOnlyTheCallItBelongsTo() throws {
        var tree = builder()
        tree.enter(name: "a", function: 1, stack: rootStack - 0x40, time: 1_001_000)
        tree.enter(name: "lost", function: 2, stack: rootStack - 0x80, time: 1_002_000)
        tree.leave(function: 1, stack: rootStack - 0x40, time: 1_003_000)
        tree.enter(name: "c", function: 3, stack: rootStack - 0x40, time: 1_004_000)
        tree.leave(function: 3, stack: rootStack - 0x40, time: 1_005_000)
        tree.leave(function: 0, stack: rootStack, time: 1_006_000)
        let root = try XCTUnwrap(tree.invocation).root
        XCTAssertEqual(root.children.map(\.name), ["a", "c"])
        XCTAssertEqual(root.children[0].end, 3)
        XCTAssertEqual(root.children[0].children, [CallNode(name: "lost", start: 2, end: nil)])
        XCTAssertEqual(root.end, 6)
    }

    /// A function the trigger tail-called runs at the trigger's own stack pointer: it is
    /// a child, and returns before the trigger does.
    func testATailCallIsAChildOfTheTrigger() throws {
        var tree = builder()
        tree.enter(name: "tail", function: 5, stack: rootStack, time: 1_001_000)
        tree.leave(function: 5, stack: rootStack, time: 1_002_000)
        XCTAssertFalse(tree.isFinished)
        tree.leave(function: 0, stack: rootStack, time: 1_002_000)
        let root = try XCTUnwrap(tree.invocation).root
        XCTAssertEqual(root.children, [CallNode(name: "tail", start: 1, end: 2)])
    }

    func testAnEndWithoutTheTriggersReturnIsTruncatedAndChromeDurationsCoverWhatWasSeen() throws {
        var tree = builder()
        tree.enter(name: "a", function: 1, stack: rootStack - 0x40, time: 1_001_000)
        tree.leave(function: 1, stack: rootStack - 0x40, time: 1_004_000)
        tree.end()
        let invocation = try XCTUnwrap(tree.invocation)
        XCTAssertTrue(invocation.truncated)
        XCTAssertNil(invocation.root.end)
        XCTAssertTrue(CallGraphWriter.text(invocation).contains("ended before its return was seen"))
        let trace = CallGraphWriter.chromeTrace([invocation], pid: 7)
        let document = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(trace.utf8)) as? [String: Any])
        let events = try XCTUnwrap(document["traceEvents"] as? [[String: Any]])
        XCTAssertEqual(events.map { $0["name"] as? String }, ["trigger", "a"])
        XCTAssertEqual(events[0]["dur"] as? Double, 4)  // to the last thing seen inside it
        XCTAssertEqual(events[0]["ts"] as? Double, 1000)
        XCTAssertEqual(events[1]["ts"] as? Double, 1001)
        XCTAssertEqual(events.map { $0["ph"] as? String }, ["X", "X"])
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(CallGraphWriter.json([invocation]).utf8)) as? [[String: Any]])
        XCTAssertEqual(json.first?["truncated"] as? Bool, true)
        XCTAssertTrue((json.first?["call"] as? [String: Any])?["end_us"] is NSNull)
    }
}
