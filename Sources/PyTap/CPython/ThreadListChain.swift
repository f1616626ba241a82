/// The interpreter and thread-state lists as last read, so the sampler can re-read them
/// in one batched read per round instead of a chain of dependent reads (head, each
/// interpreter's `next` and thread-list head, each thread state: 4 system calls for one
/// thread, ~1.5 µs each). The batch reads every pointer of the old chain at once; when
/// each pointer still leads where it led before, the list is unchanged and the thread
/// states' copies in the batch are fresh. Otherwise the list is read link by link again.
struct ThreadListChain {
    /// Where the first interpreter's address is stored.
    var headLocation: UInt64
    /// Interpreters in list order, each with its thread states in list order.
    var interpreters: [(address: UInt64, threads: [UInt64])]
}

extension PythonReader {
    /// Where the interpreter list starts, when it is one pointer at a fixed place.
    func interpreterListHeadLocation() -> UInt64? {
        switch layout.traits.interpreterRoot {
        case .runtime:
            guard let runtime = addresses.runtime, let offset = layout[.runtimeInterpretersHead] else { return nil }
            return runtime &+ UInt64(offset)
        case .interpHeadSymbol:
            // 2.7 and 3.6 without `interp_head`: the list is reached through the current thread.
            return addresses.interpHead
        }
    }

    /// The thread states of `chain`, read in one batch, or nil when any link changed or a
    /// read failed (the caller then reads the lists link by link, with its error messages).
    /// `first` is read ahead of the chain in the same batch; its results come back as they are.
    func threadStates(following chain: ThreadListChain, stateSize: Int, readingFirst first: [(address: UInt64, count: Int)] = [])
        -> (states: [ThreadState], first: [Result<[UInt8], MemoryReadError>])? {
        guard let nextOffset = layout[.interpNext], let headOffset = layout[.interpThreadsHead],
              let stateNextOffset = layout[.tstateNext], let identOffset = layout[.tstateThreadID] else { return nil }
        let nativeOffset = layout[.tstateNativeThreadID]
        var ranges = first
        ranges.append((chain.headLocation, 8))
        for interpreter in chain.interpreters {
            ranges.append((interpreter.address &+ UInt64(nextOffset), 8))
            ranges.append((interpreter.address &+ UInt64(headOffset), 8))
            for state in interpreter.threads { ranges.append((state, stateSize)) }
        }
        let results = memory.readMany(ranges)
        var index = first.count
        func nextPointer() -> UInt64? {
            defer { index += 1 }
            guard case .success(let bytes) = results[index] else { return nil }
            return try? RemoteBytes(address: ranges[index].address, bytes: bytes).pointer(0)
        }
        guard nextPointer() == chain.interpreters.first?.address ?? 0 else { return nil }
        var states = [ThreadState]()
        for (position, interpreter) in chain.interpreters.enumerated() {
            let following = position + 1 < chain.interpreters.count ? chain.interpreters[position + 1].address : 0
            guard nextPointer() == following, nextPointer() == interpreter.threads.first ?? 0 else { return nil }
            for (statePosition, address) in interpreter.threads.enumerated() {
                guard case .success(let copy) = results[index] else { return nil }
                index += 1
                let bytes = RemoteBytes(address: address, bytes: copy)
                let followingState = statePosition + 1 < interpreter.threads.count ? interpreter.threads[statePosition + 1] : 0
                guard (try? bytes.pointer(stateNextOffset)) == followingState, let ident = try? bytes.u64(identOffset) else { return nil }
                var native: Int32?
                if let nativeOffset {
                    guard let value = try? bytes.i64(nativeOffset) else { return nil }
                    if value > 0 && value < Int64(Int32.max) { native = Int32(value) }
                }
                states.append(ThreadState(address: address, interpreter: interpreter.address, ident: ident,
                                          nativeThreadID: native, bytes: bytes))
            }
        }
        return (states, Array(results.prefix(first.count)))
    }
}
