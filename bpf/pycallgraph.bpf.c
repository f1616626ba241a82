// SPDX-License-Identifier: GPL-2.0-only OR Apache-2.0
// `pytap py-callgraph` on 2.7–3.10: every Python call runs the eval function once
// (generator resumes included), so a uprobe on its entry (reading the frame's code object)
// and a uretprobe on its return see every Python call and return. Every thread of the
// target is recorded; pytap keeps what runs inside the trigger.
#include "common.bpf.h"
#include "pytap_callgraph.h"

struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, u32); __type(value, struct pytap_pycallgraph_state); } pystate SEC(".maps");
#define PYEVENTS_BYTES (1 << 22)
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, PYEVENTS_BYTES); } pyevents SEC(".maps");

ALWAYS_INLINE int emit(u64 frame, u64 stack, u32 kind) {
    u32 zero = 0;
    struct pytap_pycallgraph_state *s = bpf_map_lookup_elem(&pystate, &zero);
    if (!s) return 0;
    if (s->events_left == 0) { __sync_fetch_and_add(&s->dropped, 1); return 0; }
    struct pytap_pycall_event *event = bpf_ringbuf_reserve(&pyevents, sizeof(*event), 0);
    if (!event) { __sync_fetch_and_add(&s->dropped, 1); return 0; }
    s->events_left -= 1;
    event->time_ns = bpf_ktime_get_ns();
    event->stack = stack;
    event->code = kind == PYTAP_CALL_ENTRY ? read_pointer(frame + s->frame_code) : 0;
    event->tid = (u32)bpf_get_current_pid_tgid();
    event->kind = kind;
    SUBMIT_QUIETLY(pyevents, event, PYEVENTS_BYTES);
    return 0;
}

// The frame is the eval function's first argument (2.7–3.8) or its second (3.9–3.10, after
// the thread state). Registers are read in each program's own body.
SEC("uprobe")
int on_eval_frame_arg1(struct pt_regs *ctx) { return emit(PT_REGS_ARG1(ctx), ctx->sp, PYTAP_CALL_ENTRY); }

SEC("uprobe")
int on_eval_frame_arg2(struct pt_regs *ctx) { return emit(PT_REGS_ARG2(ctx), ctx->sp, PYTAP_CALL_ENTRY); }

// After the return the stack pointer is the entry's plus the popped return address.
SEC("uretprobe")
int on_eval_return(struct pt_regs *ctx) { return emit(0, ctx->sp - 8, PYTAP_CALL_RETURN); }

char LICENSE[] SEC("license") = "GPL";
