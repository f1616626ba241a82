// SPDX-License-Identifier: GPL-2.0-only OR Apache-2.0
// What every pytap BPF program needs, declared by pytap itself: no kernel headers, no
// libbpf headers, no BTF of its own types, no CO-RE (so nothing is needed where pytap runs).
#ifndef PYTAP_COMMON_BPF_H
#define PYTAP_COMMON_BPF_H

typedef unsigned long long u64;
typedef unsigned int u32;
typedef int s32;
typedef unsigned short u16;
typedef unsigned char u8;

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name
#define ALWAYS_INLINE static __attribute__((always_inline, unused))

// x86_64 struct pt_regs, in the kernel's order (r15 first, ss last). The context of
// uprobe/kprobe programs; perf_event programs get it inside bpf_perf_event_data.
struct pt_regs { u64 r15, r14, r13, r12, bp, bx, r11, r10, r9, r8, ax, cx, dx, si, di, orig_ax, ip, cs, flags, sp, ss; };
struct bpf_perf_event_data { struct pt_regs regs; u64 sample_period; u64 addr; };

// x86_64 System V: the first arguments and the return value of a probed C function.
#define PT_REGS_ARG1(regs) ((regs)->di)
#define PT_REGS_ARG2(regs) ((regs)->si)
#define PT_REGS_ARG3(regs) ((regs)->dx)
#define PT_REGS_ARG4(regs) ((regs)->cx)
#define PT_REGS_RET(regs) ((regs)->ax)

enum {
    BPF_MAP_TYPE_HASH = 1,
    BPF_MAP_TYPE_ARRAY = 2,
    BPF_MAP_TYPE_PERCPU_ARRAY = 6,
    BPF_MAP_TYPE_LRU_HASH = 9,
    BPF_MAP_TYPE_RINGBUF = 27,
};
enum { BPF_ANY = 0, BPF_NOEXIST = 1, BPF_EXIST = 2 };

// Helpers by number (include/uapi/linux/bpf.h).
static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_map_update_elem)(void *map, const void *key, const void *value, u64 flags) = (void *)2;
static long (*bpf_map_delete_elem)(void *map, const void *key) = (void *)3;
static u64 (*bpf_ktime_get_ns)(void) = (void *)5;
static u64 (*bpf_get_current_pid_tgid)(void) = (void *)14;
static long (*bpf_get_stack)(void *ctx, void *buf, u32 size, u64 flags) = (void *)67;
static long (*bpf_probe_read_user)(void *dst, u32 size, const void *src) = (void *)112;
static long (*bpf_probe_read_kernel)(void *dst, u32 size, const void *src) = (void *)113;
static long (*bpf_probe_read_user_str)(void *dst, u32 size, const void *src) = (void *)114;
static void *(*bpf_ringbuf_reserve)(void *ringbuf, u64 size, u64 flags) = (void *)131;
static void (*bpf_ringbuf_submit)(void *data, u64 flags) = (void *)132;
static void (*bpf_ringbuf_discard)(void *data, u64 flags) = (void *)133;
static u64 (*bpf_ringbuf_query)(void *ringbuf, u64 flags) = (void *)134;
static void *(*bpf_get_current_task_btf)(void) = (void *)158;
static u64 (*bpf_get_func_ip)(void *ctx) = (void *)173;
static u64 (*bpf_get_attach_cookie)(void *ctx) = (void *)174;
static struct pt_regs *(*bpf_task_pt_regs)(void *task) = (void *)175;

// bpf_ringbuf_submit flags and bpf_ringbuf_query's question.
#define BPF_RB_NO_WAKEUP (1ULL << 0)
#define BPF_RB_FORCE_WAKEUP (1ULL << 1)
#define BPF_RB_AVAIL_DATA 0

// bpf_get_stack flags.
#define BPF_F_USER_STACK (1ULL << 8)

/// A pointer-sized word of the target's memory; 0 when unreadable.
ALWAYS_INLINE u64 read_pointer(u64 address) {
    u64 value = 0;
    if (bpf_probe_read_user(&value, sizeof(value), (const void *)address) != 0) return 0;
    return value;
}

/// Submits a ring buffer record without waking pytap, which reads the ring on a short
/// timer: a wakeup per record (irq_work, then pytap scheduled, often onto the target's CPU)
/// costs more than the probe itself. pytap is woken once, by the record that takes the ring
/// past an eighth of its `size` bytes (a burst then need not wait for the timer); waking it
/// for every record past that mark made each hit ~1.5 µs slower while pytap caught up.
#define SUBMIT_QUIETLY(ring, event, size) do { \
    u64 waiting_ = bpf_ringbuf_query(&(ring), BPF_RB_AVAIL_DATA); \
    u64 mark_ = (size) / 8, own_ = (sizeof(*(event)) + 8 + 7) & ~7ULL; \
    bpf_ringbuf_submit((event), waiting_ >= mark_ && waiting_ < mark_ + own_ ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP); \
} while (0)

/// Adds one to a counter kept in an array map of one u64 (losses, drops).
#define COUNT_INTO(map) do { u32 zero_ = 0; u64 *count_ = bpf_map_lookup_elem(&(map), &zero_); if (count_) __sync_fetch_and_add(count_, 1); } while (0)

#endif
