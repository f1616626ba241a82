/// What a task's future state says (`fut_state`), plus whether its coroutine is on a CPU now.
public enum AsyncTaskState: String, Sendable, Equatable {
    case pending
    /// Pending, and its coroutine is executing (the loop's current task).
    case running
    case cancelled
    case finished
}

/// One asyncio task as read from the target: its identity (the object's address, which is
/// Python's `id(task)`), name, state, the coroutine chain it is suspended in (outermost
/// first, as followed from `task_coro`) and the tasks awaiting it.
public struct RawAsyncTask: Sendable {
    public var address: UInt64
    public var name: String
    public var state: AsyncTaskState
    /// Frames of the coroutine chain, outermost (the task's own coroutine) first.
    public var coroutineFrames: [RawFrame]
    /// Why the chain is incomplete, nil when it was read to its end.
    public var defect: WalkDefect?
    /// Addresses of the tasks awaiting this one.
    public var awaitedBy: [UInt64]
}

/// Reads the asyncio tasks of a target from outside.
///
/// Where the tasks are: on 3.14+ the `_asyncio` module links every native task into a
/// list kept by the thread state that created it (`asyncio_tasks_head`; tasks of exited
/// threads move to the interpreter's list), plus the `_scheduled_tasks` WeakSet for
/// other tasks; before, `asyncio.tasks` keeps them in a WeakSet (`_all_tasks` ≤3.11,
/// `_scheduled_tasks` 3.12+) and, for eager tasks (3.12+), the set `_eager_tasks`.
///
/// Who awaits whom (what `asyncio pstree` shows): a task blocked on another task has it
/// as its `fut_waiter`; one blocked on `gather` has the gathering future, whose
/// `_children` are the tasks; a task of a `TaskGroup` has the group's `_on_task_done`
/// among its callbacks, and the group's `_parent_task` awaits it.
public final class AsyncioReader {
    /// The two implementations of `asyncio.Task`: the C one of `_asyncio` (fields at
    /// offsets) and the pure-Python one (`asyncio.tasks._PyTask`, attributes in its dict).
    enum TaskKind: Sendable {
        case native
        case python
    }

    public let reader: PythonReader
    public let layout: AsyncioLayout
    private var objects: ObjectReader { reader.objects }
    private var memory: RemoteMemory { reader.memory }
    private var pythonLayout: PythonLayout { reader.layout }
    private var taskTypes: [UInt64: TaskKind?] = [:]
    /// The kind of each task of the last `tasks()`.
    private var kinds: [UInt64: TaskKind] = [:]
    private var currentTasksDicts: [UInt64: UInt64] = [:]

    /// At most this many tasks are read (remote counts are untrusted).
    public var maximumTasks = 100_000
    /// At most this many coroutines are followed down one task's await chain.
    public var maximumChainLength = 1024
    /// Set tables larger than this many slots are refused as garbage.
    static let maximumSetSlots = 1 << 21

    /// Names of the containers of tasks in `asyncio.tasks`, tried in this order.
    static let taskSetNames = ["_all_tasks", "_scheduled_tasks", "_eager_tasks"]

    public init(reader: PythonReader, layout: AsyncioLayout) {
        self.reader = reader
        self.layout = layout
    }

    /// The asyncio layout of a target: its table, and on 3.14+ the `_asyncio` module's own
    /// `_Py_AsyncioModuleDebugOffsets` when its object file can be read.
    public static func layout(of target: PythonTarget) throws -> AsyncioLayout {
        var layout = try AsyncioLayout(version: target.version)
        if layout.valueStack == .stackPointer, let values = try debugOffsets(of: target) {
            layout.apply(targetValues: values)
        }
        return layout
    }

    /// `.AsyncioDebug` of the runtime's object or of a mapped `_asyncio` module, nil when none has it.
    static func debugOffsets(of target: PythonTarget) throws -> [AsyncioField: Int]? {
        if let elf = target.runtimeObject?.elf, let bytes = try elf.contents(ofSectionNamed: AsyncioDebugOffsets.sectionName) {
            return try AsyncioDebugOffsets.parse(bytes)
        }
        let mappings = try target.source.mappings()
        guard let path = mappings.lazy.compactMap(\.path).first(where: { $0.split(separator: "/").last?.hasPrefix("_asyncio.") == true }),
              let elf = try? target.source.openObject(path: path, mappings: mappings.filter { $0.path == path }),
              let bytes = try elf.contents(ofSectionNamed: AsyncioDebugOffsets.sectionName) else { return nil }
        return try AsyncioDebugOffsets.parse(bytes)
    }

    // MARK: Finding tasks

    /// Every pending task of every interpreter, with its coroutine chain and awaiters.
    public func tasks() throws -> [RawAsyncTask] {
        var addresses = [UInt64]()
        var seen = Set<UInt64>()
        var foundModule = false
        kinds.removeAll(keepingCapacity: true)
        func add(_ candidate: UInt64) {
            guard addresses.count < maximumTasks, candidate != 0, !seen.contains(candidate),
                  let kind = taskKind(candidate) else { return }
            seen.insert(candidate)
            kinds[candidate] = kind
            addresses.append(candidate)
        }
        for interpreter in try reader.interpreters() {
            if layout.valueStack == .stackPointer {
                for head in try taskListHeads(of: interpreter) { try linkedTasks(head: head).forEach(add) }
            }
            guard let tasksModule = try moduleDict(interpreter: interpreter, name: "asyncio.tasks") else { continue }
            foundModule = true
            for name in AsyncioReader.taskSetNames {
                guard let container = try objects.dictLookup(tasksModule, key: name) else { continue }
                try setMembers(of: container).forEach(add)
            }
        }
        if !foundModule && addresses.isEmpty { throw AsyncioError.asyncioNotImported }
        var tasks = [RawAsyncTask]()
        for address in addresses {
            guard let task = try? readTask(address), task.state == .pending || task.state == .running else { continue }
            tasks.append(task)
        }
        try linkAwaiters(&tasks)
        return tasks
    }

    private func moduleDict(interpreter: UInt64, name: String) throws -> UInt64? {
        let modules = try memory.readPointer(interpreter &+ UInt64(try pythonLayout.require(.interpModules)))
        guard modules != 0, let module = try objects.dictLookup(modules, key: name) else { return nil }
        let dict = try memory.readPointer(module &+ UInt64(try pythonLayout.require(.moduleDict)))
        return dict == 0 ? nil : dict
    }

    /// 3.14+: the list heads of the interpreter and of each of its thread states.
    private func taskListHeads(of interpreter: UInt64) throws -> [UInt64] {
        var heads = [interpreter &+ UInt64(try layout.require(.interpreterTasksHead))]
        let threadOffset = UInt64(try layout.require(.threadStateTasksHead))
        for state in try reader.threadStates(of: interpreter) { heads.append(state.address &+ threadOffset) }
        return heads
    }

    /// The tasks of one circular `llist_node` list (`next` first in each node).
    private func linkedTasks(head: UInt64) throws -> [UInt64] {
        let nodeOffset = UInt64(try layout.require(.taskNode))
        var tasks = [UInt64]()
        var visited = Set<UInt64>()
        var node = try memory.readPointer(head)
        while node != head && node != 0 && tasks.count < maximumTasks && visited.insert(node).inserted {
            tasks.append(node &- nodeOffset)
            node = try memory.readPointer(node)
        }
        return tasks
    }

    /// The objects of a `set`, or of a `WeakSet` (its `data`: a set of weak references).
    func setMembers(of container: UInt64) throws -> [UInt64] {
        var set = container
        let typeName = try objects.typeNameOf(container)
        if typeName != "set" {
            guard let data = try objects.attribute(container, named: "data"), try objects.typeNameOf(data) == "set" else { return [] }
            set = data
        }
        let mask = try memory.readInteger(set &+ UInt64(try layout.require(.setMask)), as: Int64.self)
        guard mask >= 0, mask < AsyncioReader.maximumSetSlots else {
            throw ObjectReadError.implausible(what: "set mask", value: mask)
        }
        let table = try memory.readPointer(set &+ UInt64(try layout.require(.setTable)))
        let entrySize = try layout.require(.setEntrySize)
        let keyOffset = try layout.require(.setEntryKey)
        let slots = Int(mask) + 1
        let bytes = try memory.readStruct(table, count: slots * entrySize)
        let weakObject = UInt64(try layout.require(.weakReferenceObject))
        var members = [UInt64]()
        for slot in 0..<slots {
            let key = try bytes.pointer(slot * entrySize + keyOffset)
            guard key != 0, let keyType = try? objects.typeNameOf(key) else { continue }
            if keyType == "weakref" || keyType == "weakref.ReferenceType" {
                if let referent = try? memory.readPointer(key &+ weakObject) { members.append(referent) }
            } else {
                members.append(key)
            }
            if members.count >= maximumTasks { break }
        }
        return members
    }

    /// Whether the object is an `_asyncio.Task` (or of a subclass of it), or a pure-Python
    /// `Task` (a class named so in its type's bases, with a `_coro` attribute).
    func taskKind(_ object: UInt64) -> TaskKind? {
        guard let type = try? objects.typeOf(object) else { return nil }
        let kind: TaskKind?
        if let known = taskTypes[type] {
            kind = known
        } else {
            var names = [String]()
            var current = type
            for _ in 0..<16 where current != 0 {
                guard let name = try? objects.typeName(current) else { break }
                names.append(name)
                guard let base = try? memory.readPointer(current &+ UInt64((try? layout.require(.typeBase)) ?? 0)) else { break }
                current = base
            }
            kind = names.contains("_asyncio.Task") ? .native : names.contains("Task") ? .python : nil
                if taskTypes.count < 4096 { taskTypes[type] = kind }
        }
        // A class merely named Task is one when its instances look like asyncio's.
        if kind == .python, (try? objects.attribute(object, named: "_coro")).flatMap({ $0 }) == nil { return nil }
        return kind
    }

    // MARK: One task

    /// The task at `address`, nil when it is not (or no longer, or not yet) a whole task: a
    /// task being built has no coroutine or name yet, a freed one's memory is reused.
    func readTask(_ address: UInt64) throws -> RawAsyncTask? {
        let kind = kinds[address] ?? .native
        let coroutine = try self.coroutine(ofTask: address)
        guard coroutine != 0, let name = taskName(address) else { return nil }
        let chain = coroutineChain(from: coroutine)
        var taskState: AsyncTaskState
        switch kind {
        case .native:
            let state = try memory.readInteger(address &+ UInt64(try layout.require(.taskState)), as: Int32.self)
            switch Int(state) {
            case try layout.require(.futureStatePending): taskState = .pending
            case layout[.futureStateCancelled]: taskState = .cancelled
            default: taskState = .finished
            }
        case .python:
            // futures._PENDING / _CANCELLED / _FINISHED are the strings 'PENDING', …; a task
            // that never changed state has none of its own (the class says PENDING).
            let state = try objects.attribute(address, named: "_state")
            switch try state.map({ try objects.string($0, maximumLength: 16) }) ?? "PENDING" {
            case "PENDING": taskState = .pending
            case "CANCELLED": taskState = .cancelled
            default: taskState = .finished
            }
        }
        if taskState == .pending && chain.running { taskState = .running }
        return RawAsyncTask(address: address, name: name, state: taskState,
                            coroutineFrames: chain.frames, defect: chain.defect, awaitedBy: [])
    }

    /// `task_name`: a str, or (3.12+) the number of a name not yet asked for, shown as `Task-N`.
    func taskName(_ task: UInt64) -> String? {
        guard let name = member(of: task, field: .taskName, attribute: "_name"), name != 0, let type = try? objects.typeNameOf(name) else { return nil }
        if type == "int" { return (try? objects.integer(name)).map { "Task-\($0)" } }
        guard type == "str" else { return nil }
        return try? objects.string(name, maximumLength: 1024)
    }

    struct Chain {
        var frames: [RawFrame] = []
        var running = false
        var defect: WalkDefect?
    }

    /// Follows a coroutine and what it awaits (`cr_await`), down to the innermost coroutine.
    func coroutineChain(from first: UInt64) -> Chain {
        var chain = Chain()
        var coroutine = first
        var visited = Set<UInt64>()
        while coroutine != 0 {
            guard chain.frames.count < maximumChainLength else {
                chain.defect = .unreadable(address: coroutine, what: "await chain (longer than \(maximumChainLength))")
                break
            }
            guard visited.insert(coroutine).inserted else {
                chain.defect = .cycle(address: coroutine)
                break
            }
            guard let type = try? objects.typeNameOf(coroutine), AsyncioReader.coroutineTypes.contains(type) else { break }
            do {
                guard let step = try frameOf(coroutine: coroutine) else { break }
                chain.frames.append(step.frame)
                if step.running { chain.running = true }
                coroutine = step.awaited ?? 0
            } catch {
                chain.defect = .unreadable(address: coroutine, what: "coroutine")
                break
            }
        }
        return chain
    }

    /// Objects whose frame and value stack the chain follows: generator-like objects.
    static let coroutineTypes: Set<String> = ["coroutine", "generator", "async_generator"]

    /// A coroutine's frame, whether it is executing, and the object it awaits when suspended.
    private func frameOf(coroutine: UInt64) throws -> (frame: RawFrame, running: Bool, awaited: UInt64?)? {
        switch layout.valueStack {
        case .frameStackTop, .frameStackDepth:
            let frame = try memory.readPointer(coroutine &+ UInt64(try layout.require(.generatorFrame)))
            if frame == 0 { return nil }
            let code = try memory.readPointer(frame &+ UInt64(try pythonLayout.require(.frameCode)))
            let lasti = Int(try memory.readInteger(frame &+ UInt64(try pythonLayout.require(.frameLasti)), as: Int32.self))
            guard case .frameObjects(let lastiUnit) = pythonLayout.traits.frameModel else { return nil }
            let raw = RawFrame(code: code, instructionOffset: lasti < 0 ? -1 : lasti * lastiUnit)
            if layout.valueStack == .frameStackTop {
                let running = try memory.readInteger(coroutine &+ UInt64(try layout.require(.generatorRunning)), as: UInt8.self) != 0
                let top = try memory.readPointer(frame &+ UInt64(try layout.require(.frameStackTop)))
                guard !running, top > 8 else { return (raw, running, nil) }
                return (raw, false, try memory.readPointer(top - 8))
            }
            let state = Int(try memory.readInteger(frame &+ UInt64(try layout.require(.frameState)), as: Int8.self))
            let running = state == layout[.frameStateExecuting]
            guard state == (try layout.require(.frameStateSuspended)) else { return (raw, running, nil) }
            let depth = Int(try memory.readInteger(frame &+ UInt64(try layout.require(.frameStackDepth)), as: Int32.self))
            let stack = try memory.readPointer(frame &+ UInt64(try layout.require(.frameValueStack)))
            guard depth > 0, depth < 1 << 16 else { return (raw, false, nil) }
            return (raw, false, try memory.readPointer(stack &+ UInt64((depth - 1) * 8)))
        case .localsPlusIndex, .stackPointer:
            let frame = coroutine &+ UInt64(try layout.require(.generatorInterpreterFrame))
            let code = try memory.readPointer(frame &+ UInt64(try pythonLayout.require(.iframeCode))) & ~pythonLayout.traits.codeReferenceTagBits
            guard let codeObject = try reader.codes.codeIfCode(at: code) else { return nil }
            let instruction = try memory.readPointer(frame &+ UInt64(try pythonLayout.require(.iframeInstruction)))
            let raw = RawFrame(code: code, instructionOffset: Int(Int64(bitPattern: instruction &- codeObject.instructionsStart)))
            let state = Int(try memory.readInteger(coroutine &+ UInt64(try layout.require(.generatorFrameState)), as: Int8.self))
            let running = state == layout[.frameStateExecuting]
            guard state == (try layout.require(.frameStateSuspended)) || state == layout[.frameStateSuspendedYieldFrom] else {
                return (raw, running, nil)
            }
            if layout.valueStack == .localsPlusIndex {
                let top = Int(try memory.readInteger(frame &+ UInt64(try layout.require(.interpreterFrameStackTop)), as: Int32.self))
                guard top > 0, top < 1 << 16 else { return (raw, false, nil) }
                let slot = frame &+ UInt64(try pythonLayout.require(.iframeLocalsPlus) + (top - 1) * 8)
                return (raw, false, try memory.readPointer(slot))
            }
            let pointer = try memory.readPointer(frame &+ UInt64(try layout.require(.interpreterFrameStackPointer)))
            let slot = pointer &- UInt64(8 * layout.awaitedSlotFromTop)
            guard pointer > frame, slot > frame else { return (raw, false, nil) }
            return (raw, false, try memory.readPointer(slot) & ~pythonLayout.traits.codeReferenceTagBits)
        }
    }

    /// The address of a coroutine's frame as a thread's frame walk records it: the frame
    /// object (≤3.10) or the interpreter frame embedded in the coroutine (3.11+).
    func frameAddress(ofCoroutine coroutine: UInt64) throws -> UInt64 {
        switch layout.valueStack {
        case .frameStackTop, .frameStackDepth:
            return try memory.readPointer(coroutine &+ UInt64(try layout.require(.generatorFrame)))
        case .localsPlusIndex, .stackPointer:
            return coroutine &+ UInt64(try layout.require(.generatorInterpreterFrame))
        }
    }

    /// The task's coroutine (`task_coro`).
    func coroutine(ofTask task: UInt64) throws -> UInt64 {
        if kind(ofTask: task) == .python { return try objects.attribute(task, named: "_coro") ?? 0 }
        return try memory.readPointer(task &+ UInt64(try layout.require(.taskCoroutine)))
    }

    /// The kind of a task of the last `tasks()`, else found from its type (and remembered).
    private func kind(ofTask task: UInt64) -> TaskKind? {
        if let known = kinds[task] { return known }
        let kind = taskKind(task)
        if let kind, kinds.count < maximumTasks { kinds[task] = kind }
        return kind
    }

    /// What the task is blocked on (`fut_waiter` / `_fut_waiter`), 0 for nothing.
    private func waiter(ofTask task: UInt64) -> UInt64 {
        member(of: task, field: .taskFutureWaiter, attribute: "_fut_waiter") ?? 0
    }

    /// A task's member: the C task's field, or the pure-Python task's attribute; nil when
    /// unreadable or (an attribute) absent.
    private func member(of task: UInt64, field: AsyncioField, attribute: String) -> UInt64? {
        if kind(ofTask: task) == .python { return (try? objects.attribute(task, named: attribute)).flatMap { $0 } }
        guard let offset = layout[field] else { return nil }
        return try? memory.readPointer(task &+ UInt64(offset))
    }

    /// The `threading.get_ident()` of the thread running the task's event loop (the loop's
    /// `_thread_id`, set while it runs), nil when the loop does not run or is unreadable.
    func loopThreadIdent(ofTask task: UInt64) -> UInt64? {
        guard let loop = member(of: task, field: .taskLoop, attribute: "_loop"), loop != 0, let ident = (try? objects.attribute(loop, named: "_thread_id")).flatMap({ $0 }),
              (try? objects.typeNameOf(ident)) == "int" else { return nil }
        return try? objects.unsignedInteger(ident)
    }

    /// Tasks that may be running on `thread` now: 3.14+ the thread state's
    /// `asyncio_running_task`, else (before 3.14, and for 3.14's pure-Python tasks, which
    /// the C bookkeeping does not know) the values of `asyncio.tasks._current_tasks`
    /// ({loop: task}; its address is remembered per interpreter).
    func runningTaskCandidates(of thread: ThreadState) -> [UInt64] {
        if let offset = layout[.threadStateRunningTask],
           let task = try? memory.readPointer(thread.address &+ UInt64(offset)), task != 0 {
            return [task]
        }
        var dict = currentTasksDicts[thread.interpreter]
        if dict == nil || (try? objects.typeNameOf(dict!)) != "dict" {
            dict = (try? moduleDict(interpreter: thread.interpreter, name: "asyncio.tasks")).flatMap { $0 }
                .flatMap { try? objects.dictLookup($0, key: "_current_tasks") }
            if let dict { currentTasksDicts[thread.interpreter] = dict }
        }
        guard let dict, let entries = try? objects.dictEntries(dict) else { return [] }
        return entries.prefix(256).map(\.value)
    }

    // MARK: Awaiting relations

    /// Fills each task's `awaitedBy` from waiters, gathering futures and task groups.
    private func linkAwaiters(_ tasks: inout [RawAsyncTask]) throws {
        var index = [UInt64: Int]()
        for (position, task) in tasks.enumerated() { index[task.address] = position }
        var awaiters = [UInt64: [UInt64]]()
        func link(_ awaited: UInt64, by awaiter: UInt64) {
            guard index[awaited] != nil, index[awaiter] != nil, awaited != awaiter,
                  awaiters[awaited]?.contains(awaiter) != true else { return }
            awaiters[awaited, default: []].append(awaiter)
        }
        // Tasks blocked on a future that is not a task, by future.
        var blockedOn = [UInt64: [UInt64]]()
        for task in tasks {
            let waiter = waiter(ofTask: task.address)
            guard waiter != 0 else { continue }
            if index[waiter] != nil {
                link(waiter, by: task.address)
                continue
            }
            if blockedOn[waiter, default: []].count < 256 { blockedOn[waiter, default: []].append(task.address) }
            if let children = try? objects.attribute(waiter, named: "_children"), let members = try? listItems(children) {
                for child in members { link(child, by: task.address) }
            }
        }
        for task in tasks {
            for callback in callbacks(of: task.address) {
                switch try? objects.typeNameOf(callback) {
                case "method":
                    // A TaskGroup's `_on_task_done`: the group's parent task awaits the task.
                    guard let owner = try? memory.readPointer(callback &+ UInt64(try layout.require(.methodSelf))), owner != 0,
                          let parent = try? objects.attribute(owner, named: "_parent_task") else { continue }
                    link(task.address, by: parent)
                case "function", "functools.partial":
                    // `asyncio.wait`'s `_on_completion`, `shield`'s and `gather`'s closures and
                    // `wait_for`'s partial (≤3.11) capture the future their caller is blocked on.
                    for captured in capturedObjects(of: callback) {
                        for awaiter in blockedOn[captured] ?? [] { link(task.address, by: awaiter) }
                    }
                default:
                    continue
                }
            }
        }
        for (awaited, list) in awaiters {
            if let position = index[awaited] { tasks[position].awaitedBy = list }
        }
    }

    /// A future's done callbacks: `fut_callback0`, then the callables of `fut_callbacks`
    /// (a list of `(callback, context)` tuples).
    private func callbacks(of future: UInt64) -> [UInt64] {
        var found = [UInt64]()
        var list: UInt64?
        if kinds[future] == .python {
            list = (try? objects.attribute(future, named: "_callbacks")).flatMap { $0 }
        } else {
            if let offset = layout[.taskCallback0], let first = try? memory.readPointer(future &+ UInt64(offset)), first != 0 {
                found.append(first)
            }
            list = layout[.taskCallbacks].flatMap { try? memory.readPointer(future &+ UInt64($0)) }
        }
        if let list, list != 0,
           let pairs = try? listItems(list), let itemsOffset = pythonLayout[.tupleItems] {
            for pair in pairs.prefix(256) {
                if let callback = try? memory.readPointer(pair &+ UInt64(itemsOffset)), callback != 0 { found.append(callback) }
            }
        }
        return found
    }

    /// What a done callback holds on to: a function's closure cells' contents, a
    /// `functools.partial`'s bound arguments (at most 64).
    private func capturedObjects(of callback: UInt64) -> [UInt64] {
        guard let type = try? objects.typeNameOf(callback) else { return [] }
        let isFunction = type == "function"
        guard let offset = layout[isFunction ? .functionClosure : .partialArguments],
              let tuple = try? memory.readPointer(callback &+ UInt64(offset)), tuple != 0,
              let items = try? tupleItems(tuple, maximum: 64) else { return [] }
        guard isFunction else { return items }
        guard let cellReference = pythonLayout[.cellReference] else { return [] }
        return items.compactMap { cell in
            guard (try? objects.typeNameOf(cell)) == "cell" else { return nil }
            return (try? memory.readPointer(cell &+ UInt64(cellReference))).flatMap { $0 == 0 ? nil : $0 }
        }
    }

    /// The first `maximum` items of a tuple.
    private func tupleItems(_ tuple: UInt64, maximum: Int) throws -> [UInt64] {
        guard try objects.typeNameOf(tuple) == "tuple" else { return [] }
        let count = try memory.readInteger(tuple &+ UInt64(try pythonLayout.require(.varObjectSize)), as: Int64.self)
        guard count >= 0 else { throw ObjectReadError.implausible(what: "tuple size", value: count) }
        let kept = Int(min(count, Int64(maximum)))
        if kept == 0 { return [] }
        let bytes = try memory.readStruct(tuple &+ UInt64(try pythonLayout.require(.tupleItems)), count: kept * 8)
        return try (0..<kept).map { try bytes.pointer($0 * 8) }
    }

    /// The items of a list (at most 65 536).
    private func listItems(_ list: UInt64) throws -> [UInt64] {
        guard try objects.typeNameOf(list) == "list" else { return [] }
        let count = try memory.readInteger(list &+ UInt64(try pythonLayout.require(.varObjectSize)), as: Int64.self)
        guard count >= 0, count <= 1 << 16 else { throw ObjectReadError.implausible(what: "list size", value: count) }
        if count == 0 { return [] }
        let items = try memory.readPointer(list &+ UInt64(try layout.require(.listItems)))
        let bytes = try memory.readStruct(items, count: Int(count) * 8)
        return try (0..<Int(count)).map { try bytes.pointer($0 * 8) }
    }
}
