// SPDX-License-Identifier: GPL-2.0-only OR Apache-2.0
// `pytap py-callgraph` on 3.11+: Python-to-Python calls no longer run a C function, so the
// probes sit on the bytecode handlers themselves (addresses from the interpreter's
// `opcode_targets` table): RESUME and its variants (a frame starts or resumes), the return
// and yield handlers (it leaves), and PyTraceBack_Here (an exception reached a frame: the
// frames it left are gone). At each the thread's current frame is the one concerned; the
// record carries it and its callers (shim frames skipped) so that pytap can match every
// record to the frames it has seen, whatever was missed in between.
#include "common.bpf.h"
#include "pytap_callgraph.h"
#include "python_stack.bpf.h"

struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, u32); __type(value, struct pytap_pyframes_config); } pyconfig SEC(".maps");
// tid -> PyThreadState address, kept current by pytap.
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 8192); __type(key, u32); __type(value, u64); } thread_states SEC(".maps");
#define PYFRAMES_BYTES (1 << 23)
// 1 while a request to look for new threads is on its way to pytap (it clears it after).
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, u32); __type(value, u32); } refresh_asked SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, PYFRAMES_BYTES); } pyframes SEC(".maps");

// One frame's bytes, read at once (each read of the target costs a few hundred ns).
struct scratch { u8 frame[PYTAP_MEMTRACE_FRAME_BYTES]; };
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, 1); __type(key, u32); __type(value, struct scratch); } scratch SEC(".maps");

/// A thread started since pytap last read the target's threads: asks it (waking it at once)
/// to read them now, rather than at its next periodic refresh; one request at a time.
ALWAYS_INLINE void ask_for_new_threads(u32 tid) {
    u32 zero = 0;
    u32 *asked = bpf_map_lookup_elem(&refresh_asked, &zero);
    if (!asked || __sync_val_compare_and_swap(asked, 0, 1) != 0) return;
    struct pytap_pyframe_event *event = bpf_ringbuf_reserve(&pyframes, sizeof(*event), 0);
    if (!event) { *asked = 0; return; }
    __builtin_memset(event, 0, sizeof(*event));
    event->time_ns = bpf_ktime_get_ns();
    event->tid = tid;
    event->kind = PYTAP_PYFRAME_NEW_THREAD;
    bpf_ringbuf_submit(event, BPF_RB_FORCE_WAKEUP);
}

ALWAYS_INLINE int record(struct pt_regs *ctx) {
    u32 zero = 0;
    struct pytap_pyframes_config *cfg = bpf_map_lookup_elem(&pyconfig, &zero);
    struct scratch *work = bpf_map_lookup_elem(&scratch, &zero);
    if (!cfg || !work) return 0;
    u32 tid = (u32)bpf_get_current_pid_tgid();
    u64 *tstate = bpf_map_lookup_elem(&thread_states, &tid);
    if (!tstate || *tstate == 0) { __sync_fetch_and_add(&cfg->unknown_thread, 1); ask_for_new_threads(tid); return 0; }
    if (cfg->events_left == 0) { __sync_fetch_and_add(&cfg->dropped, 1); return 0; }
    struct pytap_pyframe_event *event = bpf_ringbuf_reserve(&pyframes, sizeof(*event), 0);
    if (!event) { __sync_fetch_and_add(&cfg->dropped, 1); return 0; }
    cfg->events_left -= 1;
    event->time_ns = bpf_ktime_get_ns();
    event->tid = tid;
    event->kind = (u32)bpf_get_attach_cookie(ctx);
    u64 frame = 0;
    if (cfg->thread_state_frame >= 0) {
        frame = read_pointer(*tstate + (cfg->thread_state_frame & 0xfff));
    } else if (cfg->thread_state_cframe >= 0) {
        u64 cframe = read_pointer(*tstate + (cfg->thread_state_cframe & 0xfff));
        frame = cframe ? read_pointer(cframe + (cfg->cframe_current_frame & 0xfff)) : 0;
    }
    u32 size = cfg->frame_read_bytes;
    if (size > PYTAP_MEMTRACE_FRAME_BYTES) size = PYTAP_MEMTRACE_FRAME_BYTES;
    if (size < 8) size = 8;
    u32 count = 0;
    for (int i = 0; i < PYTAP_PYFRAME_CHAIN; i++) { event->frames[i] = 0; event->codes[i] = 0; }
    // The chain outwards, shim frames (owned by the C stack or the interpreter) skipped.
    for (int i = 0; i < PYTAP_PYFRAME_CHAIN + 3; i++) {
        if (frame == 0 || count >= PYTAP_PYFRAME_CHAIN) break;
        if (bpf_probe_read_user(work->frame, size, (const void *)frame) != 0) break;
        u64 previous = python_frame_field(work->frame, cfg->frame_previous, 8);
        if (python_frame_field(work->frame, cfg->frame_owner, 1) < cfg->first_non_python_owner) {
            event->frames[count & (PYTAP_PYFRAME_CHAIN - 1)] = frame;
            event->codes[count & (PYTAP_PYFRAME_CHAIN - 1)] = python_frame_field(work->frame, cfg->frame_code, 8);
            count += 1;
        }
        frame = previous;
    }
    event->count = count;
    event->reserved = 0;
    SUBMIT_QUIETLY(pyframes, event, PYFRAMES_BYTES);
    return 0;
}

// The first gets BPF_TRACE_UPROBE_MULTI as its attach type from pytap (multi-uprobe links);
// the second is the fallback for single uprobes, on kernels without them.
SEC("uprobe")
int on_handler_multi(struct pt_regs *ctx) { return record(ctx); }

SEC("uprobe")
int on_handler(struct pt_regs *ctx) { return record(ctx); }

char LICENSE[] SEC("license") = "GPL";
