/// A layout fact of asyncio's C objects (`_asyncio`'s `TaskObj`/`FutureObj`) or of the
/// interpreter objects a task reader follows (generators, frames' value stacks, sets,
/// weak references). Each has a DWARF path in its table, like `LayoutField`.
public enum AsyncioField: String, CaseIterable, Sendable {
    case taskCallback0
    case taskCallbacks
    case taskState
    case taskFutureWaiter
    case taskCoroutine
    case taskName
    /// 3.14+: the task's node in the per-thread (or per-interpreter) list of tasks.
    case taskNode
    /// The loop the task runs on (`task_loop`): its `_thread_id` names the thread.
    case taskLoop
    case futureCallback0
    case futureCallbacks
    case futureState
    case futureStatePending
    case futureStateCancelled
    case futureStateFinished
    /// ≤3.10: the generator's `PyFrameObject *`.
    case generatorFrame
    /// ≤3.9: `gi_running`.
    case generatorRunning
    /// 3.11+: the generator's embedded interpreter frame.
    case generatorInterpreterFrame
    case generatorFrameState
    /// 3.8–3.9: `f_stacktop`, non-null while suspended.
    case frameStackTop
    /// 3.10: `f_valuestack` and `f_stackdepth`.
    case frameValueStack
    case frameStackDepth
    case frameState
    /// 3.11–3.13: index of the stack top in `localsplus`.
    case interpreterFrameStackTop
    /// 3.14+: pointer past the stack top (tagged stack references).
    case interpreterFrameStackPointer
    case frameStateSuspended
    case frameStateSuspendedYieldFrom
    case frameStateExecuting
    case threadStateTasksHead
    case threadStateRunningTask
    case interpreterTasksHead
    case typeBase
    case setMask
    case setTable
    case setEntrySize
    case setEntryKey
    case weakReferenceObject
    case methodSelf
    /// A done callback's captured variables (`asyncio.wait`, `shield`, `gather` closures).
    case functionClosure
    /// `functools.partial`'s bound arguments (`wait_for` ≤3.11).
    case partialArguments
    case listItems
}

/// Where a suspended coroutine keeps the object it awaits (the top of its value stack).
public enum ValueStackModel: Sendable, Equatable {
    /// 3.8–3.9: `frame->f_stacktop[-1]`.
    case frameStackTop
    /// 3.10: `frame->f_valuestack[f_stackdepth - 1]`.
    case frameStackDepth
    /// 3.11–3.13: `iframe->localsplus[stacktop - 1]`.
    case localsPlusIndex
    /// 3.14+: `iframe->stackpointer[-1]`, a tagged stack reference.
    case stackPointer
}

/// The built-in asyncio layout tables, one per minor version, from DWARF
/// (`scripts/gen-asyncio-tables.py`).
public enum AsyncioLayoutTables: VersionedLayoutTables {
    public static let tablesByVersion: [(version: PythonMinorVersion, table: [AsyncioField: FieldSpec])] = [
        (.init(3, 8), python3_8), (.init(3, 9), python3_9), (.init(3, 10), python3_10), (.init(3, 11), python3_11),
        (.init(3, 12), python3_12), (.init(3, 13), python3_13), (.init(3, 14), python3_14), (.init(3, 15), python3_15),
    ]

    /// Where a coroutine suspended in `await` keeps the awaited object, counted from the top
    /// of its value stack: bytecode knowledge DWARF lacks. 3.15 pushes a NULL between the
    /// awaitable and the value `SEND` sends (`GET_AWAITABLE; PUSH_NULL; SEND`), so after
    /// `YIELD_VALUE` the awaitable is second from the top; before, it is the top.
    public static func awaitedSlotFromTop(for version: PythonMinorVersion) -> Int {
        version >= PythonMinorVersion(3, 15) ? 2 : 1
    }
}

/// Why asyncio tasks cannot be read.
public enum AsyncioError: Error, Equatable, Sendable, CustomStringConvertible {
    case unsupportedVersion(String)
    case missingField(AsyncioField, version: String)
    case badDebugOffsets(String)
    /// The target has not imported asyncio.
    case asyncioNotImported

    public var description: String {
        switch self {
        case .unsupportedVersion(let version):
            return "asyncio tasks are read on Python 3.8 and newer; the target runs \(version)"
        case .missingField(let field, let version):
            return "pytap's asyncio layout for Python \(version) lacks \(field.rawValue)"
        case .badDebugOffsets(let why):
            return "the target's _Py_AsyncioModuleDebugOffsets is not understood: \(why)"
        case .asyncioNotImported:
            return "the target has not imported asyncio (no module asyncio.tasks)"
        }
    }
}

/// The asyncio layout of one target: the table of its minor version, overridden on 3.14+
/// by what the `_asyncio` module exports about itself (`_Py_AsyncioModuleDebugOffsets`).
public struct AsyncioLayout: Sendable {
    public let version: PythonVersion
    public private(set) var values: [AsyncioField: Int]
    public private(set) var mismatches: [(field: AsyncioField, table: Int, target: Int)] = []
    public let valueStack: ValueStackModel
    /// See `AsyncioLayoutTables.awaitedSlotFromTop`.
    public let awaitedSlotFromTop: Int

    public init(version: PythonVersion) throws {
        guard let table = AsyncioLayoutTables.table(for: version.minorVersion) else {
            throw AsyncioError.unsupportedVersion(version.description)
        }
        try self.init(version: version, table: table)
    }

    public init(version: PythonVersion, table: [AsyncioField: FieldSpec]) throws {
        self.version = version
        self.values = table.mapValues(\.value)
        self.awaitedSlotFromTop = AsyncioLayoutTables.awaitedSlotFromTop(for: version.minorVersion)
        // The value-stack model is whichever set of fields the table describes.
        if values[.interpreterFrameStackPointer] != nil {
            valueStack = .stackPointer
        } else if values[.interpreterFrameStackTop] != nil {
            valueStack = .localsPlusIndex
        } else if values[.frameValueStack] != nil {
            valueStack = .frameStackDepth
        } else {
            valueStack = .frameStackTop
        }
        if let missing = AsyncioLayout.requiredFields(for: valueStack).first(where: { values[$0] == nil }) {
            throw AsyncioError.missingField(missing, version: version.description)
        }
    }

    static func requiredFields(for model: ValueStackModel) -> [AsyncioField] {
        var fields: [AsyncioField] = [
            .taskCallback0, .taskCallbacks, .taskState, .taskFutureWaiter, .taskCoroutine, .taskName,
            .futureState, .futureStatePending, .typeBase, .setMask, .setTable, .setEntrySize, .setEntryKey,
            .weakReferenceObject, .methodSelf, .listItems,
        ]
        switch model {
        case .frameStackTop: fields += [.generatorFrame, .generatorRunning, .frameStackTop]
        case .frameStackDepth: fields += [.generatorFrame, .frameValueStack, .frameStackDepth, .frameState, .frameStateSuspended]
        case .localsPlusIndex: fields += [.generatorInterpreterFrame, .generatorFrameState, .interpreterFrameStackTop, .frameStateSuspended]
        case .stackPointer: fields += [.generatorInterpreterFrame, .generatorFrameState, .interpreterFrameStackPointer, .frameStateSuspended,
                                       .taskNode, .threadStateTasksHead, .interpreterTasksHead]
        }
        return fields
    }

    public subscript(field: AsyncioField) -> Int? { values[field] }

    public func require(_ field: AsyncioField) throws -> Int {
        guard let value = values[field] else { throw AsyncioError.missingField(field, version: version.description) }
        return value
    }

    /// Overrides fields with the target's own values, recording disagreements.
    public mutating func apply(targetValues: [AsyncioField: Int]) {
        for (field, value) in targetValues {
            if let old = values[field], old != value { mismatches.append((field, old, value)) }
            values[field] = value
        }
        mismatches.sort { $0.field.rawValue < $1.field.rawValue }
    }
}

/// `_Py_AsyncioModuleDebugOffsets` (CPython 3.14+, `Modules/_asynciomodule.c`): the
/// `_asyncio` module's description of its task object and of where the interpreter and
/// thread states keep their task lists, in the module's `.AsyncioDebug` section.
public enum AsyncioDebugOffsets {
    /// The section's members in order (all `uint64_t`); nil marks a size member.
    static let members: [AsyncioField?] = [
        nil, .taskName, nil /* task_awaited_by */, nil /* task_is_task */, nil /* task_awaited_by_is_set */,
        .taskCoroutine, .taskNode,
        nil, .interpreterTasksHead,
        nil, nil /* asyncio_running_loop */, .threadStateRunningTask, .threadStateTasksHead,
    ]

    public static let sectionName = ".AsyncioDebug"

    /// The fields the section gives, from its bytes.
    public static func parse(_ bytes: [UInt8]) throws -> [AsyncioField: Int] {
        guard bytes.count >= members.count * 8 else {
            throw AsyncioError.badDebugOffsets("\(bytes.count) bytes, expected at least \(members.count * 8)")
        }
        var values = [AsyncioField: Int]()
        for (index, field) in members.enumerated() {
            var value: UInt64 = 0
            for byte in 0..<8 { value |= UInt64(bytes[index * 8 + byte]) << (8 * UInt64(byte)) }
            // An offset beyond any real structure is a section pytap misreads, not a layout.
            guard value < 1 << 20 else { throw AsyncioError.badDebugOffsets("member \(index) is \(value)") }
            if let field { values[field] = Int(value) }
        }
        return values
    }
}
