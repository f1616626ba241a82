// SPDX-License-Identifier: GPL-2.0-only OR Apache-2.0
// (GPL-compatible, as the kernel requires of programs that use its GPL-only helpers.)
// pytap's sampling program: attached to a task-clock perf event of each target thread,
// it copies at one instant what pytap needs to rebuild the thread's stack without stopping
// it: the user registers, the top of the user stack, the kernel stack and the thread's
// Python frames (raw bytes, walked by the same reader that reads live memory). Written
// against its own declarations: no kernel headers, no BTF of its own types, no CO-RE.
// Per-version offsets come from pytap's layout tables through `config`.
#include "pytap_sample.h"

typedef unsigned long long u64;
typedef unsigned int u32;

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

// x86_64 struct pt_regs, in the kernel's order (r15 first, ss last).
struct pt_regs { u64 r15, r14, r13, r12, bp, bx, r11, r10, r9, r8, ax, cx, dx, si, di, orig_ax, ip, cs, flags, sp, ss; };
struct bpf_perf_event_data { struct pt_regs regs; u64 sample_period; u64 addr; };

enum { BPF_MAP_TYPE_HASH = 1, BPF_MAP_TYPE_ARRAY = 2, BPF_MAP_TYPE_RINGBUF = 27 };

// Helpers by number (include/uapi/linux/bpf.h).
static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static u64 (*bpf_ktime_get_ns)(void) = (void *)5;
static u64 (*bpf_get_current_pid_tgid)(void) = (void *)14;
static long (*bpf_get_stack)(void *ctx, void *buf, u32 size, u64 flags) = (void *)67;
static long (*bpf_probe_read_user)(void *dst, u32 size, const void *src) = (void *)112;
static long (*bpf_probe_read_kernel)(void *dst, u32 size, const void *src) = (void *)113;
static void *(*bpf_ringbuf_reserve)(void *ringbuf, u64 size, u64 flags) = (void *)131;
static void (*bpf_ringbuf_submit)(void *data, u64 flags) = (void *)132;
static void *(*bpf_get_current_task_btf)(void) = (void *)158;
static struct pt_regs *(*bpf_task_pt_regs)(void *task) = (void *)175;

struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 16 << 20); } samples SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, u32); __type(value, struct pytap_config); } config SEC(".maps");
// tid -> PyThreadState address, kept current by pytap.
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 8192); __type(key, u32); __type(value, u64); } thread_states SEC(".maps");
// Samples lost because the ring buffer was full.
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, u32); __type(value, u64); } lost SEC(".maps");

static __attribute__((always_inline)) u64 read_pointer(u64 address) {
    u64 value = 0;
    if (bpf_probe_read_user(&value, sizeof(value), (const void *)address) != 0) return 0;
    return value;
}

SEC("perf_event")
int on_sample(struct bpf_perf_event_data *ctx) {
    u32 zero = 0;
    struct pytap_config *cfg = bpf_map_lookup_elem(&config, &zero);
    if (!cfg) return 0;
    struct pytap_sample *s = bpf_ringbuf_reserve(&samples, sizeof(struct pytap_sample), 0);
    if (!s) {
        u64 *count = bpf_map_lookup_elem(&lost, &zero);
        if (count) __sync_fetch_and_add(count, 1);
        return 0;
    }
    u64 pid_tgid = bpf_get_current_pid_tgid();
    s->pid = pid_tgid >> 32;
    s->tid = (u32)pid_tgid;
    s->time_ns = bpf_ktime_get_ns();

    // The user registers, whether the tick came in user or kernel mode.
    struct pt_regs regs = {};
    bpf_probe_read_kernel(&regs, sizeof(regs), bpf_task_pt_regs(bpf_get_current_task_btf()));
    __builtin_memcpy(s->registers, &regs, sizeof(regs));

    // The user stack from sp up, kept page-aligned (page i of the copy at offset i * 4096,
    // sp at its offset in the first page) and read page by page: one read fails as a whole
    // when it runs past the top of the stack.
    u32 copied = 0;
    u64 sp = regs.sp;
    u32 in_page = (u32)(sp & (PYTAP_PAGE_BYTES - 1));
    if (bpf_probe_read_user(s->user_stack + in_page, PYTAP_PAGE_BYTES - in_page, (const void *)sp) == 0) {
        copied = PYTAP_PAGE_BYTES;
        u64 base = sp - in_page;
        for (int page = 1; page < PYTAP_USER_STACK_BYTES / PYTAP_PAGE_BYTES; page++) {
            if (bpf_probe_read_user(s->user_stack + page * PYTAP_PAGE_BYTES, PYTAP_PAGE_BYTES,
                                    (const void *)(base + page * PYTAP_PAGE_BYTES)) != 0) break;
            copied += PYTAP_PAGE_BYTES;
        }
    }
    s->user_stack_bytes = copied;

    s->kernel_stack_bytes = bpf_get_stack(ctx, s->kernel_stack, sizeof(s->kernel_stack), 0);

    // The Python frames: the thread state, then the chain of frames from the innermost.
    s->thread_state = 0;
    s->cframe = 0;
    s->cframe_current = 0;
    s->thread_state_bytes = 0;
    s->frame_count = 0;
    s->frames_truncated = 0;
    u32 tid = s->tid;
    u64 *known = bpf_map_lookup_elem(&thread_states, &tid);
    u64 tstate = known ? *known : 0;
    if (tstate != 0) {
        s->thread_state = tstate;
        u32 size = cfg->thread_state_bytes;
        if (size > PYTAP_THREAD_STATE_BYTES) size = PYTAP_THREAD_STATE_BYTES;
        if (bpf_probe_read_user(s->thread_state_copy, size, (const void *)tstate) == 0) s->thread_state_bytes = size;
        u64 frame = 0;
        if (cfg->thread_state_frame >= 0) {
            frame = read_pointer(tstate + cfg->thread_state_frame);
        } else if (cfg->thread_state_cframe >= 0) {
            u64 cframe = read_pointer(tstate + cfg->thread_state_cframe);
            s->cframe = cframe;
            if (cframe != 0) frame = read_pointer(cframe + cfg->cframe_current_frame);
            s->cframe_current = frame;
        }
        u32 frame_size = cfg->frame_bytes;
        if (frame_size > PYTAP_FRAME_BYTES) frame_size = PYTAP_FRAME_BYTES;
        u32 count = 0;
        for (int i = 0; i < PYTAP_PYTHON_FRAMES; i++) {
            if (frame == 0) break;
            s->frame_addresses[i] = frame;
            if (bpf_probe_read_user(s->frames[i], frame_size, (const void *)frame) != 0) break;
            count = i + 1;
            frame = read_pointer(frame + cfg->frame_previous);
        }
        s->frame_count = count;
        s->frames_truncated = count == PYTAP_PYTHON_FRAMES && frame != 0;
    }
    bpf_ringbuf_submit(s, 0);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
