// SPDX-License-Identifier: GPL-2.0-only OR Apache-2.0
// `pytap callgraph`: uprobes and uretprobes on many functions of one object file (the
// attach cookie says which), recording calls and returns only on the thread inside the
// trigger function's dynamic extent, for a given number of trigger entries.
//
// The extent is told by the stack pointer, not by counting depth: the kernel omits
// uretprobes past 64 nested ones per thread, so a return may never be seen; a function
// whose entry stack pointer is above the trigger's runs outside of it. Return probes are
// attached before entry probes, so every traced entry's return is probed.
#include "common.bpf.h"
#include "pytap_callgraph.h"

struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, u32); __type(value, struct pytap_callgraph_state); } state SEC(".maps");
#define EVENTS_BYTES (1 << 22)
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, EVENTS_BYTES); } events SEC(".maps");

ALWAYS_INLINE void emit(struct pytap_callgraph_state *s, u32 tid, u32 function, u64 stack, u32 kind) {
    if (s->events_left == 0) { __sync_fetch_and_add(&s->dropped, 1); return; }
    struct pytap_call_event *event = bpf_ringbuf_reserve(&events, sizeof(*event), 0);
    if (!event) { __sync_fetch_and_add(&s->dropped, 1); return; }
    s->events_left -= 1;
    event->time_ns = bpf_ktime_get_ns();
    event->stack = stack;
    event->tid = tid;
    event->function = function;
    event->kind = kind;
    event->invocation = s->invocation;
    SUBMIT_QUIETLY(events, event, EVENTS_BYTES);
}

/// `stack`: the stack pointer at the function's entry (where its return address is).
ALWAYS_INLINE int entered(u32 function, u64 stack) {
    u32 zero = 0;
    struct pytap_callgraph_state *s = bpf_map_lookup_elem(&state, &zero);
    if (!s) return 0;
    u32 tid = (u32)bpf_get_current_pid_tgid();
    if (s->active_tid == tid) {
        if (stack < s->trigger_stack) { emit(s, tid, function, stack, PYTAP_CALL_ENTRY); return 0; }
        // At the trigger's own stack pointer: a function it tail-called (its return address
        // is the trigger's, replaced by the uretprobe), or a call after the trigger returned
        // unseen, which returns to the trigger's call site (a loop calling it again) or
        // elsewhere (taken as a tail call: only the 64-deep uretprobe limit loses a return).
        if (stack == s->trigger_stack && read_pointer(stack) != s->trigger_return) {
            emit(s, tid, function, stack, PYTAP_CALL_ENTRY);
            return 0;
        }
        // Outside the extent: the trigger's return was not seen.
        emit(s, tid, s->trigger, s->trigger_stack, PYTAP_CALL_END);
        s->active_tid = 0;
    }
    if (function != s->trigger || s->active_tid != 0 || s->invocations_left == 0) return 0;
    // Claim the trigger for this thread (another CPU may be entering it too).
    if (__sync_val_compare_and_swap(&s->active_tid, 0, tid) != 0) return 0;
    s->invocations_left -= 1;
    s->invocation += 1;
    s->trigger_stack = stack;
    s->trigger_return = read_pointer(stack);
    emit(s, tid, function, stack, PYTAP_CALL_ENTRY);
    return 0;
}

/// `stack`: the stack pointer after the return (the entry's plus the return address).
ALWAYS_INLINE int returned(u32 function, u64 stack) {
    u32 zero = 0;
    struct pytap_callgraph_state *s = bpf_map_lookup_elem(&state, &zero);
    if (!s) return 0;
    u32 tid = (u32)bpf_get_current_pid_tgid();
    if (s->active_tid != tid) return 0;
    u64 entry_stack = stack - 8;
    int tail_called = entry_stack == s->trigger_stack && function != s->trigger;
    if (entry_stack < s->trigger_stack || tail_called) { emit(s, tid, function, entry_stack, PYTAP_CALL_RETURN); return 0; }
    if (entry_stack == s->trigger_stack) emit(s, tid, function, entry_stack, PYTAP_CALL_RETURN);
    else emit(s, tid, s->trigger, s->trigger_stack, PYTAP_CALL_END);
    s->active_tid = 0;
    return 0;
}

// Registers are read in each program's own body (see common.bpf.h). The multi-uprobe
// programs get BPF_TRACE_UPROBE_MULTI as their attach type from pytap; the others are the
// fallback for single uprobes, on kernels without multi-uprobe links.
SEC("uprobe")
int on_entry_multi(struct pt_regs *ctx) { return entered((u32)bpf_get_attach_cookie(ctx), ctx->sp); }

SEC("uretprobe")
int on_return_multi(struct pt_regs *ctx) { return returned((u32)bpf_get_attach_cookie(ctx), ctx->sp); }

SEC("uprobe")
int on_entry(struct pt_regs *ctx) { return entered((u32)bpf_get_attach_cookie(ctx), ctx->sp); }

SEC("uretprobe")
int on_return(struct pt_regs *ctx) { return returned((u32)bpf_get_attach_cookie(ctx), ctx->sp); }

char LICENSE[] SEC("license") = "GPL";
