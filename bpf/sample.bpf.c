// SPDX-License-Identifier: GPL-2.0-only OR Apache-2.0
// (GPL-compatible, as the kernel requires of programs that use its GPL-only helpers.)
// pytap's sampling program: attached to a task-clock perf event of each target thread,
// it copies at one instant what pytap needs to rebuild the thread's stack without stopping
// it: the user registers, the top of the user stack, the kernel stack and the thread's
// Python frames (raw bytes, walked by the same reader that reads live memory). Written
// against its own declarations: no kernel headers, no BTF of its own types, no CO-RE.
// Per-version offsets come from pytap's layout tables through `config`.
// A second program, on the scheduler's sched_switch raw tracepoint, makes the same copy when
// a target thread goes off the CPU and keeps it per thread (`off_cpu`): the stack an idle
// thread sleeps in, for wall-clock profiles. A raw tracepoint needs neither the tracepoint's
// format file nor BTF: the thread switched out is the current task there.
#include "common.bpf.h"
#include "pytap_sample.h"

struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 32 << 20); } samples SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, u32); __type(value, struct pytap_config); } config SEC(".maps");
// tid -> PyThreadState address, kept current by pytap.
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 8192); __type(key, u32); __type(value, u64); } thread_states SEC(".maps");
// tid -> where the thread's stack ends (the outermost frame's CFA, learned by pytap's
// unwinder): the copy stops there instead of 16 KiB above sp's page.
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 8192); __type(key, u32); __type(value, u64); } stack_ends SEC(".maps");
// Samples lost because the ring buffer was full.
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, u32); __type(value, u64); } lost SEC(".maps");
// tid -> the copy made when the thread last went off the CPU. pytap inserts an entry per
// target thread (so the program never creates one) and sizes the map before loading.
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 1); __type(key, u32); __type(value, struct pytap_sample); } off_cpu SEC(".maps");
// tid -> a sequence count of off_cpu's entry: odd while the program writes it.
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 1); __type(key, u32); __type(value, u64); } off_cpu_sequence SEC(".maps");

/// Copies frame `i`'s code object header (and, where the header alone does not tell code
/// objects apart, its name's and line table's headers): pytap checks the code object it
/// cached at that address against these, as the sample saw it, without reading the target.
ALWAYS_INLINE void copy_code_identity(struct pytap_config *cfg, struct pytap_sample *s, int i, u64 frame) {
    s->code_addresses[i] = 0;
    s->name_addresses[i] = 0;
    s->table_addresses[i] = 0;
    u32 size = cfg->code_head_bytes;
    if (cfg->frame_code < 0 || size == 0 || size > PYTAP_CODE_HEAD_BYTES) return;
    u64 code = read_pointer(frame + cfg->frame_code) & cfg->code_pointer_mask;
    if (code == 0 || bpf_probe_read_user(s->code_heads[i], size, (const void *)code) != 0) return;
    s->code_addresses[i] = code;
    if (cfg->code_name < 0 || cfg->code_line_table < 0) return;
    u64 name = read_pointer(code + cfg->code_name);
    if (name != 0 && bpf_probe_read_user(s->name_heads[i], PYTAP_NAME_HEAD_BYTES, (const void *)(name + cfg->object_type)) == 0)
        s->name_addresses[i] = name + cfg->object_type;
    u64 table = read_pointer(code + cfg->code_line_table);
    if (table != 0 && bpf_probe_read_user(s->table_heads[i], PYTAP_TABLE_HEAD_BYTES, (const void *)(table + cfg->object_type)) == 0)
        s->table_addresses[i] = table + cfg->object_type;
}

/// Copies the current thread's registers, stack top, kernel stack and Python frames into `s`.
ALWAYS_INLINE void capture(void *ctx, struct pytap_config *cfg, struct pytap_sample *s) {
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
    // when it runs past the top of the stack. Where the thread's stack end is known and
    // above sp, only up to it (an unwind reads nothing above its outermost frame's CFA).
    u32 copied = 0;
    u64 sp = regs.sp;
    u32 in_page = (u32)(sp & (PYTAP_PAGE_BYTES - 1));
    u64 base = sp - in_page;
    u64 limit = PYTAP_USER_STACK_BYTES; // end of the copy, from base
    u32 tid = s->tid;
    u64 *stack_end = bpf_map_lookup_elem(&stack_ends, &tid);
    if (stack_end && *stack_end > sp && *stack_end - base < limit) limit = *stack_end - base;
    u32 size = PYTAP_PAGE_BYTES - in_page;
    if (limit < PYTAP_PAGE_BYTES) size = (u32)limit - in_page;
    if (size > 0 && size <= PYTAP_PAGE_BYTES &&
        bpf_probe_read_user(s->user_stack + in_page, size, (const void *)sp) == 0) {
        copied = in_page + size;
        for (int page = 1; page < PYTAP_USER_STACK_BYTES / PYTAP_PAGE_BYTES; page++) {
            if (limit <= page * PYTAP_PAGE_BYTES) break;
            u64 rest = limit - page * PYTAP_PAGE_BYTES;
            size = rest < PYTAP_PAGE_BYTES ? (u32)rest : PYTAP_PAGE_BYTES;
            if (size == 0 || size > PYTAP_PAGE_BYTES) break;
            if (bpf_probe_read_user(s->user_stack + page * PYTAP_PAGE_BYTES, size,
                                    (const void *)(base + page * PYTAP_PAGE_BYTES)) != 0) break;
            copied += size;
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
            copy_code_identity(cfg, s, i, frame);
            frame = read_pointer(frame + cfg->frame_previous);
        }
        s->frame_count = count;
        s->frames_truncated = count == PYTAP_PYTHON_FRAMES && frame != 0;
    }
}

SEC("perf_event")
int on_sample(struct bpf_perf_event_data *ctx) {
    u32 zero = 0;
    struct pytap_config *cfg = bpf_map_lookup_elem(&config, &zero);
    if (!cfg) return 0;
    struct pytap_sample *s = bpf_ringbuf_reserve(&samples, sizeof(struct pytap_sample), 0);
    if (!s) {
        COUNT_INTO(lost);
        return 0;
    }
    capture(ctx, cfg, s);
    // No wakeup per sample (an interrupt on the target's CPU and a wakeup of pytap):
    // pytap reads the ring every poll timeout, or when it fills past an eighth.
    SUBMIT_QUIETLY(samples, s, 16 << 20);
    return 0;
}

// sched_switch(bool preempt, struct task_struct *prev, struct task_struct *next, ...): runs
// in prev's context, before the switch. A preempted thread stays runnable: not an idle stack.
struct bpf_raw_tracepoint_args { u64 args[0]; };

SEC("raw_tp/sched_switch")
int on_switch(struct bpf_raw_tracepoint_args *ctx) {
    if (ctx->args[0] != 0) return 0;
    u32 tid = (u32)bpf_get_current_pid_tgid();
    struct pytap_sample *s = bpf_map_lookup_elem(&off_cpu, &tid);
    if (!s) return 0;
    u64 *sequence = bpf_map_lookup_elem(&off_cpu_sequence, &tid);
    u32 zero = 0;
    struct pytap_config *cfg = bpf_map_lookup_elem(&config, &zero);
    if (!sequence || !cfg) return 0;
    __sync_fetch_and_add(sequence, 1);
    capture(ctx, cfg, s);
    __sync_fetch_and_add(sequence, 1);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
