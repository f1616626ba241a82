/// `_Py_DebugOffsets` (3.13+): the interpreter's description of its own layout, at the
/// start of `_PyRuntime` (Include/internal/pycore_debug_offsets.h). It is a cookie
/// "xdebugpy" followed by uint64 values whose order is fixed per minor version; the order
/// is data here, checked against DWARF like the layout tables.
public struct DebugOffsets: Sendable {
    public static let cookie: [UInt8] = Array("xdebugpy".utf8)

    /// Member names in struct order, after the 8-byte cookie, per minor version.
    static let fieldOrder: [PythonMinorVersion: [String]] = [
        PythonMinorVersion(3, 13): """
            version free_threaded runtime_state.size runtime_state.finalizing runtime_state.interpreters_head \
            interpreter_state.size interpreter_state.id interpreter_state.next interpreter_state.threads_head \
            interpreter_state.gc interpreter_state.imports_modules interpreter_state.sysdict interpreter_state.builtins \
            interpreter_state.ceval_gil interpreter_state.gil_runtime_state interpreter_state.gil_runtime_state_enabled \
            interpreter_state.gil_runtime_state_locked interpreter_state.gil_runtime_state_holder \
            thread_state.size thread_state.prev thread_state.next thread_state.interp thread_state.current_frame \
            thread_state.thread_id thread_state.native_thread_id thread_state.datastack_chunk thread_state.status \
            interpreter_frame.size interpreter_frame.previous interpreter_frame.executable interpreter_frame.instr_ptr \
            interpreter_frame.localsplus interpreter_frame.owner \
            code_object.size code_object.filename code_object.name code_object.qualname code_object.linetable \
            code_object.firstlineno code_object.argcount code_object.localsplusnames code_object.localspluskinds \
            code_object.co_code_adaptive pyobject.size pyobject.ob_type \
            type_object.size type_object.tp_name type_object.tp_repr type_object.tp_flags \
            tuple_object.size tuple_object.ob_item tuple_object.ob_size list_object.size list_object.ob_item list_object.ob_size \
            dict_object.size dict_object.ma_keys dict_object.ma_values float_object.size float_object.ob_fval \
            long_object.size long_object.lv_tag long_object.ob_digit bytes_object.size bytes_object.ob_size bytes_object.ob_sval \
            unicode_object.size unicode_object.state unicode_object.length unicode_object.asciiobject_size \
            gc.size gc.collecting
            """.split(separator: " ").map(String.init),
        PythonMinorVersion(3, 14): """
            version free_threaded runtime_state.size runtime_state.finalizing runtime_state.interpreters_head \
            interpreter_state.size interpreter_state.id interpreter_state.next interpreter_state.threads_head \
            interpreter_state.threads_main interpreter_state.gc interpreter_state.imports_modules interpreter_state.sysdict \
            interpreter_state.builtins interpreter_state.ceval_gil interpreter_state.gil_runtime_state \
            interpreter_state.gil_runtime_state_enabled interpreter_state.gil_runtime_state_locked \
            interpreter_state.gil_runtime_state_holder interpreter_state.code_object_generation interpreter_state.tlbc_generation \
            thread_state.size thread_state.prev thread_state.next thread_state.interp thread_state.current_frame \
            thread_state.thread_id thread_state.native_thread_id thread_state.datastack_chunk thread_state.status \
            interpreter_frame.size interpreter_frame.previous interpreter_frame.executable interpreter_frame.instr_ptr \
            interpreter_frame.localsplus interpreter_frame.owner interpreter_frame.stackpointer interpreter_frame.tlbc_index \
            code_object.size code_object.filename code_object.name code_object.qualname code_object.linetable \
            code_object.firstlineno code_object.argcount code_object.localsplusnames code_object.localspluskinds \
            code_object.co_code_adaptive code_object.co_tlbc pyobject.size pyobject.ob_type \
            type_object.size type_object.tp_name type_object.tp_repr type_object.tp_flags \
            tuple_object.size tuple_object.ob_item tuple_object.ob_size list_object.size list_object.ob_item list_object.ob_size \
            set_object.size set_object.used set_object.table set_object.mask \
            dict_object.size dict_object.ma_keys dict_object.ma_values float_object.size float_object.ob_fval \
            long_object.size long_object.lv_tag long_object.ob_digit bytes_object.size bytes_object.ob_size bytes_object.ob_sval \
            unicode_object.size unicode_object.state unicode_object.length unicode_object.asciiobject_size \
            gc.size gc.collecting gen_object.size gen_object.gi_name gen_object.gi_iframe gen_object.gi_frame_state \
            llist_node.next llist_node.prev debugger_support.eval_breaker debugger_support.remote_debugger_support \
            debugger_support.remote_debugging_enabled debugger_support.debugger_pending_call \
            debugger_support.debugger_script_path debugger_support.debugger_script_path_size
            """.split(separator: " ").map(String.init),
        PythonMinorVersion(3, 15): """
            version free_threaded runtime_state.size runtime_state.finalizing runtime_state.interpreters_head \
            interpreter_state.size interpreter_state.id interpreter_state.next interpreter_state.threads_head \
            interpreter_state.threads_main interpreter_state.gc interpreter_state.imports_modules interpreter_state.sysdict \
            interpreter_state.builtins interpreter_state.ceval_gil interpreter_state.gil_runtime_state \
            interpreter_state.gil_runtime_state_enabled interpreter_state.gil_runtime_state_locked \
            interpreter_state.gil_runtime_state_holder interpreter_state.code_object_generation interpreter_state.tlbc_generation \
            thread_state.size thread_state.prev thread_state.next thread_state.interp thread_state.current_frame \
            thread_state.base_frame thread_state.last_profiled_frame thread_state.last_profiled_frame_seq \
            thread_state.thread_id thread_state.native_thread_id thread_state.datastack_chunk thread_state.status \
            thread_state.holds_gil thread_state.gil_requested thread_state.current_exception thread_state.exc_state \
            err_stackitem.exc_value \
            interpreter_frame.size interpreter_frame.previous interpreter_frame.executable interpreter_frame.instr_ptr \
            interpreter_frame.localsplus interpreter_frame.owner interpreter_frame.stackpointer interpreter_frame.tlbc_index \
            code_object.size code_object.filename code_object.name code_object.qualname code_object.linetable \
            code_object.firstlineno code_object.argcount code_object.localsplusnames code_object.localspluskinds \
            code_object.co_code_adaptive code_object.co_tlbc pyobject.size pyobject.ob_type \
            type_object.size type_object.tp_name type_object.tp_repr type_object.tp_flags type_object.tp_basicsize \
            type_object.tp_dictoffset heap_type_object.size heap_type_object.ht_cached_keys \
            tuple_object.size tuple_object.ob_item tuple_object.ob_size list_object.size list_object.ob_item list_object.ob_size \
            set_object.size set_object.used set_object.table set_object.mask \
            dict_object.size dict_object.ma_keys dict_object.ma_values float_object.size float_object.ob_fval \
            long_object.size long_object.lv_tag long_object.ob_digit bytes_object.size bytes_object.ob_size bytes_object.ob_sval \
            unicode_object.size unicode_object.state unicode_object.length unicode_object.asciiobject_size \
            unicode_object.compactunicodeobject_size gc.size gc.collecting gc.frame gc.generation_stats_size \
            gc.generation_stats gen_object.size gen_object.gi_name gen_object.gi_iframe gen_object.gi_frame_state \
            llist_node.next llist_node.prev debugger_support.eval_breaker debugger_support.remote_debugger_support \
            debugger_support.remote_debugging_enabled debugger_support.debugger_pending_call \
            debugger_support.debugger_script_path debugger_support.debugger_script_path_size
            """.split(separator: " ").map(String.init),
    ]

    /// Which debug-offset member gives which layout field.
    static let fieldMap: [String: LayoutField] = [
        "runtime_state.interpreters_head": .runtimeInterpretersHead,
        "interpreter_state.next": .interpNext,
        "interpreter_state.id": .interpID,
        "interpreter_state.threads_head": .interpThreadsHead,
        "interpreter_state.imports_modules": .interpModules,
        "interpreter_state.ceval_gil": .interpGIL,
        "thread_state.prev": .tstatePrev,
        "thread_state.next": .tstateNext,
        "thread_state.interp": .tstateInterp,
        "thread_state.current_frame": .tstateFrame,
        "thread_state.thread_id": .tstateThreadID,
        "thread_state.native_thread_id": .tstateNativeThreadID,
        "thread_state.datastack_chunk": .tstateDatastackChunk,
        "thread_state.current_exception": .tstateCurrentException,
        "interpreter_frame.previous": .iframePrevious,
        "interpreter_frame.executable": .iframeCode,
        "interpreter_frame.instr_ptr": .iframeInstruction,
        "interpreter_frame.localsplus": .iframeLocalsPlus,
        "interpreter_frame.owner": .iframeOwner,
        "code_object.filename": .codeFilename,
        "code_object.name": .codeName,
        "code_object.qualname": .codeQualname,
        "code_object.linetable": .codeLineTable,
        "code_object.firstlineno": .codeFirstLineno,
        "code_object.co_code_adaptive": .codeCodeAdaptive,
        "pyobject.ob_type": .objectType,
        "type_object.tp_name": .typeName,
        "type_object.tp_flags": .typeFlags,
        "type_object.tp_basicsize": .typeBasicSize,
        "type_object.tp_dictoffset": .typeDictOffset,
        "heap_type_object.ht_cached_keys": .heapTypeCachedKeys,
        "dict_object.ma_keys": .dictKeys,
        "dict_object.ma_values": .dictValues,
        "long_object.lv_tag": .longTag,
        "long_object.ob_digit": .longDigits,
        "bytes_object.ob_size": .varObjectSize,
        "bytes_object.ob_sval": .bytesData,
        "unicode_object.state": .unicodeState,
        "unicode_object.length": .unicodeLength,
        "unicode_object.asciiobject_size": .asciiObjectSize,
        "unicode_object.compactunicodeobject_size": .compactUnicodeObjectSize,
    ]

    /// Every member's value, by name.
    public let members: [String: UInt64]
    public let version: PythonVersion
    public let freeThreaded: Bool

    /// The member order of a minor version's struct, nil before 3.13.
    public static func memberOrder(for minor: PythonMinorVersion) -> [String]? {
        fieldOrder[minor]
    }

    /// Bytes to read from the start of `_PyRuntime` for a minor version.
    public static func byteCount(for minor: PythonMinorVersion) -> Int? {
        fieldOrder[minor].map { 8 + 8 * $0.count }
    }

    /// Whether `bytes` starts with the cookie.
    public static func hasCookie(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 8 && Array(bytes[0..<8]) == cookie
    }

    /// The version that follows the cookie.
    public static func version(in bytes: [UInt8]) -> PythonVersion? {
        guard hasCookie(bytes), bytes.count >= 16 else { return nil }
        let hex = bytes[8..<16].withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        return PythonVersion(hex: UInt64(littleEndian: hex))
    }

    /// Parses the struct; `bytes` must hold at least `byteCount(for:)` bytes.
    public init(bytes: [UInt8]) throws {
        guard let version = DebugOffsets.version(in: bytes) else {
            throw LayoutError.badDebugOffsets("no xdebugpy cookie or an unknown version at the start of _PyRuntime")
        }
        guard let order = DebugOffsets.fieldOrder[version.minorVersion] else {
            throw LayoutError.unsupportedVersion(version.description)
        }
        guard bytes.count >= 8 + 8 * order.count else {
            throw LayoutError.badDebugOffsets("short read of _Py_DebugOffsets")
        }
        var members = [String: UInt64]()
        for (index, name) in order.enumerated() {
            let offset = 8 + 8 * index
            members[name] = UInt64(littleEndian: bytes[offset..<(offset + 8)].withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        }
        // Sizes are small positive numbers; anything else means the order table is wrong.
        for (name, value) in members where name.hasSuffix(".size") && !name.hasPrefix("gc.generation") {
            guard value > 0, value < 1 << 24 else {
                throw LayoutError.badDebugOffsets("implausible \(name) = \(value)")
            }
        }
        self.members = members
        self.version = version
        self.freeThreaded = (members["free_threaded"] ?? 0) != 0
    }

    /// The layout fields this struct provides, including ones derived from two members.
    public var layoutValues: [LayoutField: Int] {
        var values = [LayoutField: Int]()
        for (name, field) in DebugOffsets.fieldMap {
            if let value = members[name], value < 1 << 31 { values[field] = Int(value) }
        }
        // The GIL's members are given relative to the interpreter state; pytap follows the
        // `ceval.gil` pointer, so it needs them relative to the GIL structure.
        if let base = members["interpreter_state.gil_runtime_state"],
           let locked = members["interpreter_state.gil_runtime_state_locked"],
           let holder = members["interpreter_state.gil_runtime_state_holder"],
           locked >= base, holder >= base, locked - base < 4096, holder - base < 4096 {
            values[.gilLocked] = Int(locked - base)
            values[.gilLastHolder] = Int(holder - base)
        }
        // `gc.*` members are relative to the interpreter's GC state, at `interpreter_state.gc`.
        if let gc = members["interpreter_state.gc"], let size = members["gc.size"], gc < 1 << 24 {
            for (member, field) in [("gc.collecting", LayoutField.interpGCCollecting), ("gc.frame", .interpGCFrame)] {
                if let offset = members[member], offset < size { values[field] = Int(gc + offset) }
            }
        }
        return values
    }
}
