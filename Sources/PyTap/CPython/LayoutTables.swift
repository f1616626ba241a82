/// A CPython layout fact pytap needs: a field offset, a structure size or an enum value.
/// Every one has a DWARF path in each table, so tests can check the table against the
/// debug info of real interpreters.
public enum LayoutField: String, CaseIterable, Sendable {
    case runtimeInterpretersHead
    case runtimeGILStateCurrent
    case runtimeGILLocked
    case runtimeGILLastHolder
    case interpNext
    case interpID
    case interpThreadsHead
    case interpModules
    case interpGIL
    case gilLocked
    case gilLastHolder
    /// `PyThreadState.prev` (3.x): checked when the thread list is read, to notice a freed state.
    case tstatePrev
    case tstateNext
    case tstateInterp
    case tstateFrame
    case tstateCFrame
    case cframeCurrentFrame
    case tstateThreadID
    case tstateNativeThreadID
    case tstateDatastackChunk
    case tstateDatastackTop
    /// The exception a thread handles: 2.7/3.6 `tstate->exc_type`; 3.7+ `tstate->exc_info`,
    /// a stack of `_PyErr_StackItem`s (`exc_type` ≤3.10, `exc_value` 3.11+).
    case tstateExcType27
    case tstateExcInfo
    case errStackItemException
    case errStackItemPrevious
    /// The exception being raised: `curexc_type` ≤3.11, `current_exception` 3.12+.
    case tstateCurrentException
    /// Whether the cyclic GC runs: `_PyRuntime.gc.collecting` (3.7, 3.8), else the
    /// interpreter's `gc.collecting`; `gc.frame` (3.15+) is the frame that started it.
    case runtimeGCCollecting
    case interpGCCollecting
    case interpGCFrame
    case stackChunkPrevious
    case stackChunkSize
    case stackChunkData
    case frameBack
    case frameCode
    case frameLasti
    case frameLineno
    case frameLocalsPlus
    case iframePrevious
    case iframeCode
    case iframeInstruction
    case iframeOwner
    case iframeIsEntry
    case iframeLocalsPlus
    case firstNonPythonFrameOwner
    case frameOwnedByGenerator
    case codeFilename
    case codeName
    case codeQualname
    case codeFirstLineno
    case codeLineTable
    case codeCodeAdaptive
    case codeFirstTraceable
    /// 3.12+ `co_version`: a per-interpreter counter's value when the code object was made
    /// (0 once the counter ran out), never changed after.
    case codeVersion
    case codeUnitSize
    case codeNLocals
    case codeVarNames
    case codeCellVars
    case codeFreeVars
    case codeLocalsPlusNames
    case codeLocalsPlusKinds
    case codeNLocalsPlus
    case objectType
    case varObjectSize
    case typeName
    case typeBasicSize
    case typeFlags
    case typeDictOffset
    case heapTypeCachedKeys
    case bytesData
    case unicodeLength
    case unicodeState
    case asciiObjectSize
    case compactUnicodeObjectSize
    case unicodeData
    case unicodeCharSize27
    case longDigits
    case longTag
    case intValue27
    case digitSize
    case dictKeys
    case dictValues
    case dictMask27
    case dictTable27
    case dictEntrySize
    case dictEntryKey
    case dictEntryValue
    case dictUnicodeEntrySize
    case keysSize
    case keysLog2Size
    case keysLog2IndexBytes
    case keysKind
    case keysNentries
    case keysIndices
    case dictValuesValues
    case dictValuesValid
    case dictUsed
    case dictKeysGeneral
    case moduleDict
    case tupleItems
    case floatValue
    case cellReference
}

/// One entry of a layout table: the value and where it comes from in DWARF
/// (`Type.member.member`, `sizeof(Type)` or `enum(NAME)`).
public struct FieldSpec: Sendable, Equatable {
    public let value: Int
    public let dwarfPath: String

    public init(_ value: Int, _ dwarfPath: String) {
        self.value = value
        self.dwarfPath = dwarfPath
    }
}

/// Layout tables, one per minor version, generated from DWARF and checked against real
/// interpreters by the tests: the interpreter's (`LayoutTables`) and asyncio's
/// (`AsyncioLayoutTables`). Conformers list their tables; the lookups live here.
public protocol VersionedLayoutTables {
    associatedtype Field: Hashable
    /// Every minor version with a table, oldest first.
    static var tablesByVersion: [(version: PythonMinorVersion, table: [Field: FieldSpec])] { get }
}

extension VersionedLayoutTables {
    /// Minor versions pytap has a table for.
    public static var versions: [PythonMinorVersion] { tablesByVersion.map(\.version) }

    /// The table of a minor version, nil when pytap does not know it.
    public static func table(for version: PythonMinorVersion) -> [Field: FieldSpec]? {
        tablesByVersion.first { $0.version == version }?.table
    }
}

/// The interpreter's layout tables (LayoutTables+Generated.swift).
public enum LayoutTables: VersionedLayoutTables {
    public static let tablesByVersion: [(version: PythonMinorVersion, table: [LayoutField: FieldSpec])] = [
        (.init(2, 7), python2_7), (.init(3, 6), python3_6), (.init(3, 7), python3_7), (.init(3, 8), python3_8),
        (.init(3, 9), python3_9), (.init(3, 10), python3_10), (.init(3, 11), python3_11), (.init(3, 12), python3_12),
        (.init(3, 13), python3_13), (.init(3, 14), python3_14), (.init(3, 15), python3_15),
    ]
}
