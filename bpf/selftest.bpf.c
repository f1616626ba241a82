// SPDX-License-Identifier: GPL-2.0-only OR Apache-2.0
// The smallest uprobe program: counts the hits of one probe and of its return probe, and
// sends each hit's first argument through a ring buffer. pytap's tests use it to prove the
// BPF object layer (load, uprobe attach, maps, ring buffer, detach) on the running kernel.
#include "common.bpf.h"

struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 2); __type(key, u32); __type(value, u64); } hits SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 4096 * 4); } events SEC(".maps");

struct selftest_event { u64 cookie; u64 argument; u32 tid; u32 returned; };

ALWAYS_INLINE int record(struct pt_regs *ctx, u32 slot, u64 argument) {
    u64 *count = bpf_map_lookup_elem(&hits, &slot);
    if (count) __sync_fetch_and_add(count, 1);
    struct selftest_event *event = bpf_ringbuf_reserve(&events, sizeof(*event), 0);
    if (!event) return 0;
    event->cookie = bpf_get_attach_cookie(ctx);
    event->argument = argument;
    event->tid = (u32)bpf_get_current_pid_tgid();
    event->returned = slot;
    bpf_ringbuf_submit(event, 0);
    return 0;
}

// Registers are read in each program, not in the shared code: the verifier refuses a
// context pointer moved by an offset computed at run time.
SEC("uprobe")
int on_entry(struct pt_regs *ctx) { return record(ctx, 0, PT_REGS_ARG1(ctx)); }

SEC("uretprobe")
int on_return(struct pt_regs *ctx) { return record(ctx, 1, PT_REGS_RET(ctx)); }

char LICENSE[] SEC("license") = "GPL";
