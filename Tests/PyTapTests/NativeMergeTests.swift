import PyTap
import XCTest

/// The native merge on synthetic stacks: 3.10-style (one eval-loop frame per Python frame)
/// and 3.11+-style (one eval-loop frame runs several), mismatches, and `--native` folding.
final class NativeMergeTests: XCTestCase {
    let python = "/usr/bin/python3"
    let libz = "/usr/lib/libz.so.1"
    let libc = "/usr/lib/libc.so.6"
    lazy var rules = NativeMergeRules(evalLoopFunctions: ["_PyEval_EvalFrameDefault"], interpreterModules: [python])

    func native(_ name: String, _ module: String, inlined: [String] = []) -> SymbolizedFrame {
        SymbolizedFrame(pc: 0x1000, module: module, functions: (inlined + [name]).map { SourceFunction(name: $0) })
    }

    func py(_ name: String) -> Frame { Frame(kind: .python, name: name, file: "w.py", line: 1) }

    func names(_ frames: [Frame]) -> [String] { frames.map(\.name) }

    /// Innermost first: deflate ← zlib_compress ← eval(work) ← call plumbing ← eval(main) ← main ← _start.
    func threeTenStack() -> [SymbolizedFrame] {
        [native("deflate_slow", libz), native("deflate", libz), native("zlib_compress_impl", python),
         native("cfunction_vectorcall_FASTCALL", python), native("_PyEval_EvalFrameDefault", python),
         native("_PyFunction_Vectorcall", python), native("_PyEval_EvalFrameDefault", python),
         native("PyEval_EvalCode", python), native("Py_BytesMain", python), native("__libc_start_main", libc),
         native("_start", python)]
    }

    func testOneEvalFramePerPythonFrame() {
        let calls = PythonEvalCalls(frames: [py("work"), py("<module>")], callEnds: [1, 2])
        let merged = NativeStackMerger.merge(native: threeTenStack(), python: calls, rules: rules, policy: .nativeAll)
        XCTAssertEqual(names(merged), ["deflate_slow", "deflate", "zlib_compress_impl", "cfunction_vectorcall_FASTCALL",
                                       "work", "_PyFunction_Vectorcall", "<module>", "PyEval_EvalCode", "Py_BytesMain",
                                       "__libc_start_main", "_start"])
        XCTAssertEqual(merged[4].kind, .python)
        XCTAssertEqual(merged[0].module, libz)
    }

    func testNativeFoldsInterpreterPlumbingBetweenPythonFrames() {
        let calls = PythonEvalCalls(frames: [py("work"), py("<module>")], callEnds: [1, 2])
        let merged = NativeStackMerger.merge(native: threeTenStack(), python: calls, rules: rules, policy: .native)
        // _PyFunction_Vectorcall sits between two Python frames: folded. The interpreter's
        // frames inside the innermost Python frame and below the outermost stay.
        XCTAssertEqual(names(merged), ["deflate_slow", "deflate", "zlib_compress_impl", "cfunction_vectorcall_FASTCALL",
                                       "work", "<module>", "PyEval_EvalCode", "Py_BytesMain", "__libc_start_main", "_start"])
    }

    func testNativeKeepsNamedInterpreterFunctionsAndForeignFrames() {
        // <module> → (C: time.sleep-like library call through libc) → Python callback → take_gil.
        let stack = [native("futex_wait", libc), native("take_gil", python), native("PyEval_RestoreThread", python),
                     native("_PyEval_EvalFrameDefault", python), native("qsort", libc), native("list_sort", python),
                     native("_PyEval_EvalFrameDefault", python), native("_start", python)]
        let calls = PythonEvalCalls(frames: [py("key"), py("<module>")], callEnds: [1, 2])
        let merged = NativeStackMerger.merge(native: stack, python: calls, rules: rules, policy: .native)
        XCTAssertEqual(names(merged), ["futex_wait", "take_gil", "PyEval_RestoreThread", "key", "qsort", "<module>", "_start"])
    }

    func testOneEvalFrameRunsSeveralPythonFrames() {
        // 3.11+: the outer eval call runs <module> → main → work; work calls into C, which calls
        // back into Python (callback), run by a second eval call.
        let stack = [native("sqrt", libc), native("_PyEval_EvalFrameDefault", python), native("map_next", python),
                     native("_PyEval_EvalFrameDefault", python), native("_start", python)]
        let calls = PythonEvalCalls(frames: [py("callback"), py("work"), py("main"), py("<module>")], callEnds: [1, 4])
        let merged = NativeStackMerger.merge(native: stack, python: calls, rules: rules, policy: .nativeAll)
        XCTAssertEqual(names(merged), ["sqrt", "callback", "map_next", "work", "main", "<module>", "_start"])
    }

    func testAnEvalCallRunningNoVisibleFrameStillCounts() {
        // The inner call's only frame is still in its prologue (not shown): its eval frame
        // is replaced by nothing, and the outer call still lines up.
        let stack = [native("_PyEval_EvalFrameDefault", python), native("PyObject_Call", python),
                     native("_PyEval_EvalFrameDefault", python), native("_start", python)]
        let calls = PythonEvalCalls(frames: [py("work"), py("<module>")], callEnds: [0, 2])
        let merged = NativeStackMerger.merge(native: stack, python: calls, rules: rules, policy: .nativeAll)
        XCTAssertEqual(names(merged), ["PyObject_Call", "work", "<module>", "_start"])
    }

    func testColdPartCountsAsTheEvalLoop() {
        let stack = [native("_PyEval_EvalFrameDefault.cold", python), native("_start", python)]
        let merged = NativeStackMerger.merge(native: stack, python: PythonEvalCalls(frames: [py("f")], callEnds: [1]),
                                             rules: rules, policy: .native)
        XCTAssertEqual(names(merged), ["f", "_start"])
    }

    func testInlinedFramesAreFramesOfTheirOwn() {
        let stack = [native("deflate", libz, inlined: ["fill_window", "longest_match"]), native("_PyEval_EvalFrameDefault", python)]
        let merged = NativeStackMerger.merge(native: stack, python: PythonEvalCalls(frames: [py("f")], callEnds: [1]),
                                             rules: rules, policy: .native)
        XCTAssertEqual(names(merged), ["fill_window", "longest_match", "deflate", "f"])
    }

    func testMismatchIsMarkedNeverGuessed() {
        let calls = PythonEvalCalls(frames: [py("work"), py("<module>")], callEnds: [1, 2])
        var stack = threeTenStack()
        stack.remove(at: 4)  // one eval-loop frame fewer than eval calls, on a complete unwind
        let merged = NativeStackMerger.merge(native: stack, python: calls, rules: rules, policy: .native)
        XCTAssertEqual(Array(names(merged).prefix(2)), ["work", "<module>"])
        XCTAssertEqual(merged[2].kind, .marker)
        XCTAssertTrue(merged[2].name.contains("1 eval-loop frame for 2 Python calls"), merged[2].name)
        XCTAssertEqual(names(merged).dropFirst(3).first, "deflate_slow")
        XCTAssertEqual(merged.count, 3 + stack.count)
        XCTAssertFalse(merged.dropFirst(3).contains { $0.kind == .python })
    }

    func testCutNativeStackMergesWhatItHasAndSaysWhereItEnds() {
        let stack = Array(threeTenStack().prefix(5))  // stops after the innermost eval frame
        let calls = PythonEvalCalls(frames: [py("work"), py("<module>")], callEnds: [1, 2])
        let merged = NativeStackMerger.merge(native: stack, nativeComplete: false, python: calls, rules: rules, policy: .native)
        XCTAssertEqual(names(merged), ["deflate_slow", "deflate", "zlib_compress_impl", "cfunction_vectorcall_FASTCALL",
                                       "work", "(native stack incomplete)", "<module>"])
        // The same frames on an unwind that claims to be complete do not line up.
        let claimed = NativeStackMerger.merge(native: stack, nativeComplete: true, python: calls, rules: rules, policy: .native)
        XCTAssertTrue(claimed.contains { $0.kind == .marker && $0.name.contains("does not line up") })
    }

    func testIncompleteUnwindIsMarkedWhereItEnds() {
        let stack = Array(threeTenStack().prefix(7))  // both eval frames, then stops
        let calls = PythonEvalCalls(frames: [py("work"), py("<module>")], callEnds: [1, 2])
        let merged = NativeStackMerger.merge(native: stack, nativeComplete: false, python: calls, rules: rules, policy: .nativeAll)
        XCTAssertEqual(names(merged).suffix(3), ["_PyFunction_Vectorcall", "<module>", "(native stack incomplete)"])
    }

    func testUnknownFunctionIsNamedByAddress() {
        let stack = [SymbolizedFrame(pc: 0xdead0, module: nil, functions: [])]
        let merged = NativeStackMerger.merge(native: stack, python: PythonEvalCalls(frames: [], callEnds: []),
                                             rules: rules, policy: .native)
        XCTAssertEqual(names(merged), ["0xdead0"])
    }
}
