// SPDX-License-Identifier: GPL-2.0-only OR Apache-2.0
// pytap memtrace's program: uprobes on the entry and uretprobes on the return of CPython's
// object allocator (_PyObject_Malloc/Calloc/Realloc/Free; 2.7's PyObject_*). Each
// allocation is kept in `live` under its address with its size, time, thread and the
// Python stack walked at that instant (deduplicated into `stacks`); a free deletes it.
// What is left in `live` at the end is what survived. Bounded maps, counted losses.
#include "common.bpf.h"
#include "pytap_memtrace.h"
#include "python_stack.bpf.h"

// `owner`: the slot's (tid << 2 | kind) + 1 while a call is pending, 0 when free.
struct pending_call { u64 size; u64 old_address; u64 owner; };
#define PENDING_SLOTS (1 << 16)
struct scratch { struct pytap_stack stack; u8 frame[PYTAP_MEMTRACE_FRAME_BYTES]; };

struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, u32); __type(value, struct pytap_memtrace_config); } config SEC(".maps");
// tid -> PyThreadState address, kept current by pytap.
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 8192); __type(key, u32); __type(value, u64); } thread_states SEC(".maps");
// address -> allocation (sized by pytap).
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 1 << 19); __type(key, u64); __type(value, struct pytap_allocation); } live SEC(".maps");
// stack hash -> stack.
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 16384); __type(key, u64); __type(value, struct pytap_stack); } stacks SEC(".maps");
// The call's arguments from entry to return, in the slot (tid << 2 | kind) mod PENDING_SLOTS:
// an array, whose lookups the verifier inlines, where a hash map cost three helper calls.
// Two threads whose tids are equal mod 2^14 and that allocate at the same instant would
// share a slot; the owner word tells, and the later return finds nothing.
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, PENDING_SLOTS); __type(key, u32); __type(value, struct pending_call); } pending SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, PYTAP_COUNTERS); __type(key, u32); __type(value, u64); } counters SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, 1); __type(key, u32); __type(value, struct scratch); } scratch SEC(".maps");

ALWAYS_INLINE void count(u32 counter) {
    u64 *value = bpf_map_lookup_elem(&counters, &counter);
    if (value) __sync_fetch_and_add(value, 1);
}

ALWAYS_INLINE u64 pending_key(u32 tid, u64 kind) { return ((u64)tid << 2) | (kind & 3); }
ALWAYS_INLINE struct pending_call *pending_slot(u64 key) {
    u32 slot = (u32)key & (PENDING_SLOTS - 1);
    return bpf_map_lookup_elem(&pending, &slot);
}

/// The current thread's Python stack, kept in `stacks`; its key, 0 when unknown.
ALWAYS_INLINE u64 current_stack(u32 tid) {
    u32 zero = 0;
    struct pytap_memtrace_config *cfg = bpf_map_lookup_elem(&config, &zero);
    struct scratch *work = bpf_map_lookup_elem(&scratch, &zero);
    u64 *tstate = bpf_map_lookup_elem(&thread_states, &tid);
    if (!cfg || !work || !tstate || *tstate == 0) return 0;
    u64 hash = walk_python_stack(&cfg->stack, *tstate, cfg->frame_read_bytes, &work->stack, work->frame);
    if (!bpf_map_lookup_elem(&stacks, &hash)) {
        long result = bpf_map_update_elem(&stacks, &hash, &work->stack, BPF_NOEXIST);
        if (result != 0 && result != -17 /* EEXIST: another CPU kept it first */) count(PYTAP_COUNT_STACKS_LOST);
    }
    return hash;
}

SEC("uprobe")
int on_call(struct pt_regs *ctx) {
    u64 cookie = bpf_get_attach_cookie(ctx);
    u64 first = PT_REGS_ARG1(ctx), second = PT_REGS_ARG2(ctx), third = PT_REGS_ARG3(ctx);
    if (cookie & PYTAP_MEMTRACE_CONTEXT_ARGUMENT) {
        first = second;
        second = third;
    }
    count(PYTAP_COUNT_HITS);
    u64 kind = cookie & 0xff;
    if (kind == PYTAP_MEMTRACE_FREE) {
        if (first != 0 && bpf_map_delete_elem(&live, &first) == 0) count(PYTAP_COUNT_FREES);
        return 0;
    }
    u64 key = pending_key((u32)bpf_get_current_pid_tgid(), kind);
    struct pending_call *call = pending_slot(key);
    if (!call) {
        count(PYTAP_COUNT_PENDING_LOST);
        return 0;
    }
    if (kind == PYTAP_MEMTRACE_MALLOC) {
        call->size = first;
        call->old_address = 0;
    } else if (kind == PYTAP_MEMTRACE_CALLOC) {
        call->size = first * second;
        call->old_address = 0;
    } else {
        call->old_address = first;
        call->size = second;
    }
    call->owner = key + 1;
    return 0;
}

SEC("uretprobe")
int on_return(struct pt_regs *ctx) {
    u64 cookie = bpf_get_attach_cookie(ctx);
    u64 address = PT_REGS_RET(ctx);
    count(PYTAP_COUNT_HITS);
    u32 tid = (u32)bpf_get_current_pid_tgid();
    u64 key = pending_key(tid, cookie & 0xff);
    struct pending_call *found = pending_slot(key);
    if (!found || found->owner != key + 1) return 0;
    struct pending_call call = *found;
    found->owner = 0;
    // realloc: the old block is gone once a new one is returned (moved or not).
    if (call.old_address != 0 && address != 0 && bpf_map_delete_elem(&live, &call.old_address) == 0) count(PYTAP_COUNT_FREES);
    if (address == 0) return 0;
    struct pytap_allocation allocation = {};
    allocation.size = call.size;
    allocation.time_ns = bpf_ktime_get_ns();
    allocation.tid = tid;
    allocation.stack = current_stack(tid);
    // BPF_ANY: an address handed out again proves its earlier block was freed.
    if (bpf_map_update_elem(&live, &address, &allocation, BPF_ANY) != 0) {
        count(PYTAP_COUNT_LOST);
    } else {
        count(PYTAP_COUNT_ALLOCATIONS);
    }
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
