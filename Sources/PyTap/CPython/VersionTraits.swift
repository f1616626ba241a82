/// How a CPython version works, beyond field offsets: which frame chain it keeps, which
/// line-table format, how it finds its interpreters and its GIL holder. Data per version,
/// so the walkers branch on a trait, never on a version number.
public struct VersionTraits: Sendable, Equatable {
    public enum FrameModel: Sendable, Equatable {
        /// ≤3.10: heap `PyFrameObject`s linked by `f_back`; `f_lasti` counts bytes or code units.
        case frameObjects(lastiUnit: Int)
        /// 3.11+: `_PyInterpreterFrame`s linked by `previous`, mostly in per-thread data stacks.
        case interpreterFrames
    }

    public enum LineTableFormat: Sendable, Equatable {
        /// `co_lnotab` with unsigned line deltas (2.7 … 3.5).
        case lnotabUnsigned
        /// `co_lnotab` with signed line deltas (3.6 … 3.9).
        case lnotabSigned
        /// 3.10 `co_linetable`: (byte delta, signed line delta) pairs, -128 = no line.
        case lineTable310
        /// 3.11+ location table: varint-encoded entries of code units.
        case locationTable311
    }

    public enum InterpreterRoot: Sendable, Equatable {
        /// 2.7, 3.6: the static `interp_head` (in .symtab or the debug file).
        case interpHeadSymbol
        /// 3.7+: `_PyRuntime.interpreters.head`.
        case runtime
    }

    public enum GILModel: Sendable, Equatable {
        /// 2.7, 3.6: the exported `_PyThreadState_Current` is the thread that holds the GIL.
        case currentThreadSymbol
        /// 3.7–3.11: `_PyRuntime.ceval.gil.{locked,last_holder}`.
        case runtimeGIL
        /// 3.12+: `interp->ceval.gil` points to the GIL's `{locked,last_holder}`.
        case interpreterGIL
    }

    public enum StringModel: Sendable, Equatable {
        /// 2.7: `str` is PyStringObject (bytes), `unicode` is PyUnicodeObject of Py_UNICODE.
        case python2
        /// 3.3+: PEP 393 compact/legacy unicode with kind and ascii flags in `state`.
        case pep393
    }

    public enum DictModel: Sendable, Equatable {
        /// 2.7: open-addressing table of (hash, key, value) entries.
        case python27
        /// 3.6–3.10: compact dict, `dk_size` indices then `dk_nentries` entries.
        case compact36
        /// 3.11+: compact dict with `dk_log2_size`, `dk_log2_index_bytes` and unicode-key entries.
        case compact311
    }

    public enum LongModel: Sendable, Equatable {
        /// 2.7 `int` is a C long in `ob_ival`; `long` is sign-in-size digits.
        case python2
        /// 3.x ≤3.11: digit count and sign in `ob_size`.
        case signedSize
        /// 3.12+: `lv_tag` = digit count << 3 | sign bits.
        case taggedValue
    }

    /// Where an instance's attribute dict lives when its type manages it (3.11+).
    public enum ManagedDictModel: Sendable, Equatable {
        /// ≤3.10: at `tp_dictoffset`.
        case dictOffset
        /// 3.11: dict pointer at -3 words, values pointer at -4 words.
        case python311
        /// 3.12: one tagged pointer at -3 words: dict, or values + 1.
        case python312
        /// 3.13+: dict pointer at -3 words, values inline after the object (`tp_basicsize`).
        case inlineValues
    }

    /// How the frame chain shows which frames one C-level call of the eval loop runs.
    public enum EvalCallModel: Sendable, Equatable {
        /// ≤3.10: every frame object is run by a call of its own.
        case framePerCall
        /// 3.11: the first frame a call runs has `is_entry` set.
        case entryFlag
        /// 3.12+: each call pushes a shim frame owned by the C stack (the owner value
        /// `firstNonPythonFrameOwner` of the layout table) under the first frame it runs.
        case entryShim
    }

    /// Where the cyclic garbage collector records that it runs (`collecting`).
    public enum GCStateModel: Sendable, Equatable {
        /// 2.7, 3.6: `static int collecting` of gcmodule.c, found by its local symbol
        /// (.symtab or a debug file); unknown in a binary without them.
        case collectingSymbol
        /// 3.7, 3.8: `_PyRuntime.gc.collecting`.
        case runtime
        /// 3.9+: `interp->gc.collecting` (and `interp->gc.frame` where the layout has it).
        case interpreter
    }

    /// Where a thread keeps the exception it is handling (what `sys.exc_info()` returns).
    public enum HandledExceptionModel: Sendable, Equatable {
        /// 2.7, 3.6: `tstate->exc_type`.
        case threadState
        /// 3.7+: the `tstate->exc_info` stack of `_PyErr_StackItem`s; the innermost item
        /// whose exception is neither NULL nor None.
        case errorStack
    }

    /// Bits of `co_localspluskinds` (3.11+; `CO_FAST_*`, macros of pycore_code.h, so not in DWARF).
    public struct LocalKinds: Sendable, Equatable {
        public var local: UInt8
        public var cell: UInt8
        public var free: UInt8
        /// Locals of an inlined comprehension (3.12+), not the function's own; 0 when none.
        public var hidden: UInt8
    }

    /// The state bits of a PEP 393 str (`PyASCIIObject.state`, a bitfield: checked against DWARF).
    public struct UnicodeStateBits: Sendable, Equatable {
        public var kindShift: UInt32
        public var kindMask: UInt32
        public var compactBit: UInt32
        public var asciiBit: UInt32
    }

    /// `tp_flags` bits the reader tests (macros of object.h, so not in DWARF).
    public struct TypeFlags: Sendable, Equatable {
        /// Py_TPFLAGS_MANAGED_DICT (3.11+), 0 before.
        public var managedDict: UInt64
        /// Py_TPFLAGS_INLINE_VALUES (3.13+), 0 before.
        public var inlineValues: UInt64
    }

    /// What the allocator puts before an object (objectinternals: `_PyType_PreHeaderSize`):
    /// the GC header of types with Py_TPFLAGS_HAVE_GC, and from 3.11 two more words (managed
    /// dict, values or weakrefs) before it for types with one of `preHeaderFlags`.
    public struct ObjectPreHeaders: Sendable, Equatable {
        /// sizeof(PyGC_Head): 2.7, 3.6 and 3.7 a union padded to `long double` (32; 2.7
        /// keeps that size with explicit padding), 3.8+ two words (16).
        public var gcHeadSize: Int
        /// Py_TPFLAGS_HAVE_GC.
        public var hasGCFlag: UInt64
        /// Py_TPFLAGS_MANAGED_DICT (3.11), | Py_TPFLAGS_MANAGED_WEAKREF (3.12+); 0 before.
        public var preHeaderFlags: UInt64
        /// Bytes of that pre-header (two pointers), 0 before 3.11.
        public var preHeaderSize: Int
    }

    public var frameModel: FrameModel
    public var evalCalls: EvalCallModel
    /// The C function of the eval loop, whose native frames run Python frames (`.cold`
    /// parts of it count as it).
    public var evalLoopFunctions: [String]
    public var lineTable: LineTableFormat
    public var interpreterRoot: InterpreterRoot
    public var gil: GILModel
    public var strings: StringModel
    public var dicts: DictModel
    public var longs: LongModel
    public var managedDicts: ManagedDictModel
    public var gcState: GCStateModel
    public var handledException: HandledExceptionModel
    /// Low bits of `f_executable` that tag a stack reference (3.14+), masked off.
    public var codeReferenceTagBits: UInt64
    /// Whether `_Py_DebugOffsets` sits at the start of `_PyRuntime` (3.13+).
    public var hasDebugOffsets: Bool
    public var localKinds: LocalKinds
    public var unicodeState: UnicodeStateBits
    public var typeFlags: TypeFlags
    public var objectPreHeaders: ObjectPreHeaders
    /// Where a managed dict's pointer sits relative to its object (3.11+: -3 words;
    /// `MANAGED_DICT_OFFSET`, a macro), 0 when there is none.
    public var managedDictOffset: Int
    /// 3.11: where the managed values pointer sits (-4 words), 0 in other versions.
    public var managedValuesOffset: Int
    /// How far before its code's first instruction a new frame's instruction pointer may
    /// point, in code units (3.11/3.12 point one unit before until the first instruction).
    public var instructionPointerLead: Int

    /// Traits of a minor version, nil when pytap does not know it.
    public static func traits(for version: PythonMinorVersion) -> VersionTraits? {
        guard LayoutTables.table(for: version) != nil else { return nil }
        let v = (version.major, version.minor)
        let atLeast = { (major: Int, minor: Int) in v >= (major, minor) }
        return VersionTraits(
            frameModel: atLeast(3, 11) ? .interpreterFrames : .frameObjects(lastiUnit: atLeast(3, 10) ? 2 : 1),
            evalCalls: atLeast(3, 12) ? .entryShim : atLeast(3, 11) ? .entryFlag : .framePerCall,
            // 3.6–3.10's PyEval_EvalFrameEx only calls the default eval function.
            evalLoopFunctions: atLeast(3, 6) ? ["_PyEval_EvalFrameDefault"] : ["PyEval_EvalFrameEx"],
            lineTable: atLeast(3, 11) ? .locationTable311 : atLeast(3, 10) ? .lineTable310 : atLeast(3, 6) ? .lnotabSigned : .lnotabUnsigned,
            interpreterRoot: atLeast(3, 7) ? .runtime : .interpHeadSymbol,
            gil: atLeast(3, 12) ? .interpreterGIL : atLeast(3, 7) ? .runtimeGIL : .currentThreadSymbol,
            strings: version.major == 2 ? .python2 : .pep393,
            dicts: atLeast(3, 11) ? .compact311 : atLeast(3, 6) ? .compact36 : .python27,
            longs: atLeast(3, 12) ? .taggedValue : version.major == 3 ? .signedSize : .python2,
            managedDicts: atLeast(3, 13) ? .inlineValues : atLeast(3, 12) ? .python312 : atLeast(3, 11) ? .python311 : .dictOffset,
            gcState: atLeast(3, 9) ? .interpreter : atLeast(3, 7) ? .runtime : .collectingSymbol,
            handledException: atLeast(3, 7) ? .errorStack : .threadState,
            codeReferenceTagBits: atLeast(3, 15) ? 3 : atLeast(3, 14) ? 1 : 0,
            hasDebugOffsets: atLeast(3, 13),
            localKinds: LocalKinds(local: 0x20, cell: 0x40, free: 0x80, hidden: atLeast(3, 12) ? 0x10 : 0),
            // interned:2, kind:3, compact:1, ascii:1 from 3.3 to 3.15.
            unicodeState: UnicodeStateBits(kindShift: 2, kindMask: 7, compactBit: 5, asciiBit: 6),
            typeFlags: TypeFlags(managedDict: atLeast(3, 11) ? 1 << 4 : 0, inlineValues: atLeast(3, 13) ? 1 << 2 : 0),
            objectPreHeaders: ObjectPreHeaders(gcHeadSize: atLeast(3, 8) ? 16 : 32, hasGCFlag: 1 << 14,
                                               preHeaderFlags: atLeast(3, 12) ? 1 << 3 | 1 << 4 : atLeast(3, 11) ? 1 << 4 : 0,
                                               preHeaderSize: atLeast(3, 11) ? 16 : 0),
            managedDictOffset: atLeast(3, 11) ? -3 * 8 : 0,
            managedValuesOffset: atLeast(3, 12) ? 0 : atLeast(3, 11) ? -4 * 8 : 0,
            instructionPointerLead: atLeast(3, 13) ? 0 : 1)
    }
}
