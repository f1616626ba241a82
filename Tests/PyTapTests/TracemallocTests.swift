import Glibc
import Testing
@testable import PyTap

/// `memtrace --via tracemalloc`'s parts that need no Python: the protocol's offsets, the one
/// writer, the answers of the target's script, and the report they make.
@Suite struct TracemallocTests {
    @Test func protocolOffsetsComeFromTheDebugOffsetsMembersOf314AndLater() throws {
        for minor in [PythonMinorVersion(3, 14), PythonMinorVersion(3, 15)] {
            let order = try #require(DebugOffsets.memberOrder(for: minor))
            let members = Dictionary(uniqueKeysWithValues: order.enumerated().map { ($0.element, UInt64($0.offset * 8 + 16)) })
            let offsets = try #require(RemoteExecRequest.Offsets(members), "\(minor)")
            #expect(offsets.pendingCall == members["debugger_support.debugger_pending_call"])
            #expect(offsets.scriptPath == members["debugger_support.debugger_script_path"])
            #expect(offsets.enabledInInterpreter == members["debugger_support.remote_debugging_enabled"])
        }
        // 3.13's struct has no debugger_support: no protocol, whatever the values.
        let order313 = try #require(DebugOffsets.memberOrder(for: PythonMinorVersion(3, 13)))
        #expect(RemoteExecRequest.Offsets(Dictionary(uniqueKeysWithValues: order313.map { ($0, UInt64(8)) })) == nil)
        // An implausible offset (garbage) is refused rather than written through.
        var members = Dictionary(uniqueKeysWithValues: try #require(DebugOffsets.memberOrder(for: PythonMinorVersion(3, 14))).map { ($0, UInt64(8)) })
        members["debugger_support.debugger_pending_call"] = 1 << 40
        #expect(RemoteExecRequest.Offsets(members) == nil)
    }

    @Test func writerCopiesIntoALiveProcessAndReportsUnmappedAddresses() throws {
        var buffer = [UInt8](repeating: 0, count: 16)
        let writer = ProcessMemoryWriter(pid: getpid())
        try buffer.withUnsafeMutableBytes { raw in
            let address = UInt64(UInt(bitPattern: raw.baseAddress))
            try writer.write([1, 2, 3], at: address)
            try writer.write(Int32(0x0102_0304), at: address + 4)
        }
        #expect(buffer[0..<8] == [1, 2, 3, 0, 4, 3, 2, 1])
        #expect(throws: MemoryReadError.unmapped(address: 8, length: 4)) { try writer.write(Int32(1), at: 8) }
    }

    @Test func answersAreTabSeparatedWithEscapes() {
        let lines = TracemallocTracer.parseLines("frame\t/a\\tb.py\t3\tf\\\\g\tC.f\\n\nerror\t\n")
        #expect(lines == [["frame", "/a\tb.py", "3", "f\\g", "C.f\n"], ["error", ""]])
    }

    @Test func finishAnswerBecomesGroupsWithFramesInnermostFirst() throws {
        let text = """
            finished\t5.25\t1
            group\t10001\t5326824\t2100.5\t2100.5
            frame\t/tmp/leaky.py\t18\tleak_here\tleak_here
            frame\t/tmp/leaky.py\t46\tmain\tmain
            group\t3\t-1\t0\t0
            group\t2\t64\t1000\t5000
            frame\t/tmp/x.py\t7\tm\tK.m
            frame\tshort
            bogus\tline
            group\t1\t8\t0\t0
            """
        var result = TracemallocResult()
        try TracemallocTracer.parseFinish(TracemallocTracer.parseLines(text), into: &result)
        #expect(result.seconds == 5.25)
        // The malformed group (negative bytes) is skipped with its frames; so is a short frame.
        #expect(result.survivors.map(\.count) == [10001, 2, 1])
        #expect(result.survivors[0].frames.map(\.name) == ["leak_here", "main"])
        #expect(result.survivors[0].frames[0] == Frame(kind: .python, name: "leak_here", file: "/tmp/leaky.py", line: 18))
        #expect(result.survivors[0].firstNanoseconds == 2_100_500_000)
        #expect(result.survivors[1].frames == [Frame(kind: .python, name: "m", qualname: "K.m", file: "/tmp/x.py", line: 7)])
        #expect(result.survivors[2].frames == [.marker("(no Python frame)")])
        #expect(throws: TracemallocUnavailable.self) { try TracemallocTracer.parseFinish([["error", "x"]], into: &result) }
    }

    @Test func reportHasTheProbesFormatWithoutTheirCounts() {
        let small = MemtraceReport.Survivors(count: 2, bytes: 64, firstNanoseconds: 1_000_000_000, lastNanoseconds: 2_000_000_000,
                                             frames: [Frame(kind: .python, name: "churn", file: "/w.py", line: 3)], type: nil)
        let big = MemtraceReport.Survivors(count: 10, bytes: 10_000, firstNanoseconds: 1_000_000_000, lastNanoseconds: 1_000_000_000,
                                           frames: [Frame(kind: .python, name: "leak", file: "/w.py", line: 9)], type: nil)
        var report = MemtraceReport(via: "tracemalloc", seconds: 3, minimumAge: nil, survivors: [small, big])
        report.functions = ["traceback limit 64", "4 snapshots"]
        #expect(report.survivors.map(\.count) == [10, 2])
        let json = report.json()
        #expect(json.hasPrefix(#"{"via":"tracemalloc","seconds":3.0,"allocations":null,"frees":null,"lost":0,"stacks_lost":0,"probe_hits":null,"min_age":null,"survivors":[{"count":10,"bytes":10000,"first_ms":1000.0,"last_ms":1000.0,"type":null,"frames":[{"kind":"python","name":"leak","qualname":"leak","file":"/w.py","line":9,"module":null}]}"#), "\(json)")
        let text = report.text()
        #expect(text.hasPrefix("Traced 3.0 s (via tracemalloc: traceback limit 64, 4 snapshots).\nAlive at the end: 12 blocks, 10064 bytes, in 2 stacks.\n"), "\(text)")
    }

    @Test func stepScriptQuotesPathsAsPythonLiterals() {
        #expect(TracemallocScript.pythonString(#"/tmp/a"b\c"#) == #""/tmp/a\"b\\c""#)
        #expect(TracemallocScript.pythonString("é\n") == #""\U000000e9\U0000000a""#)
        let step = TracemallocScript.step(directory: "/tmp/d", name: "step1", action: "snapshot", options: "{\"index\": 1}")
        // The library's filter of pytap's own lines assumes the step's length.
        #expect(step.split(separator: "\n").count == 6)
        #expect(TracemallocScript.library.contains("STEP_LINES = 6"))
        #expect(step.contains(#"exec(compile(_source.read(), "/tmp/d/pytap_tracemalloc.py", "exec"), _pytap)"#))
    }

    @Test func scratchDirectoryLivesUnderTheTargetsRootAndFollowsNoLinks() throws {
        // This process as the target: its root is /, so the directory is an ordinary path.
        var template = Array("/tmp/pytap-scratch-test-XXXXXX".utf8CString)
        let parent = try #require(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }.map { String(cString: $0) })
        defer { rmdir(parent) }
        let scratch = try ScratchDirectory(pid: getpid(), parentPath: parent, name: "session")
        #expect(scratch.targetPath == parent + "/session")
        try scratch.create("a.py", contents: "x = 1\n")
        #expect(try scratch.read("a.py") == "x = 1\n")
        #expect(try scratch.read("missing") == nil)
        #expect(throws: SystemCallError.self) { try scratch.create("a.py", contents: "again") }
        // A link planted by whoever owns the directory is not followed.
        symlink("/etc/hostname", parent + "/session/link")
        #expect(throws: SystemCallError.self) { try scratch.read("link") }
        #expect(ScratchDirectory.entries(pid: getpid(), parentPath: parent, prefix: "sess") == ["session"])
        #expect(scratch.remove())
        #expect(ScratchDirectory.entries(pid: getpid(), parentPath: parent, prefix: "") == [])
    }

    @Test func ownerFileNamesPidAndStartTime() {
        #expect(TracemallocTracer.parseOwner("123 456\n")! == (123, 456))
        #expect(TracemallocTracer.parseOwner("123") == nil)
        #expect(TracemallocTracer.parseOwner("x 4") == nil)
    }
}
