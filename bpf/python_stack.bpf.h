// SPDX-License-Identifier: GPL-2.0-only OR Apache-2.0
// Walks a thread's Python frames in the kernel, at the instant a probe fires: from the
// thread state to the innermost frame, then outwards, keeping each frame's code object,
// instruction (f_lasti or instruction pointer) and owner as raw words for pytap to decode
// with its layout tables. The offsets come from pytap through a `struct pytap_stack_config`
// (never compiled in), so one program serves every CPython version.
#ifndef PYTAP_PYTHON_STACK_BPF_H
#define PYTAP_PYTHON_STACK_BPF_H

#include "common.bpf.h"
#include "pytap_memtrace.h"

/// A field of a frame copy at a per-version offset: `bytes` (1, 4 or 8) wide, 0 when the
/// offset is absent or beyond the copy.
ALWAYS_INLINE u64 python_frame_field(const u8 *copy, int offset, u32 bytes) {
    if (offset < 0 || offset > PYTAP_MEMTRACE_FRAME_BYTES - 8) return 0;
    u64 value = 0;
    __builtin_memcpy(&value, copy + (offset & (PYTAP_MEMTRACE_FRAME_BYTES - 1)), 8);
    if (bytes == 1) return value & 0xff;
    if (bytes == 4) return value & 0xffffffffULL;
    return value;
}

/// The innermost Python frame of the thread state `tstate` (0: none).
ALWAYS_INLINE u64 python_top_frame(const struct pytap_stack_config *cfg, u64 tstate) {
    if (cfg->thread_state_frame >= 0) return read_pointer(tstate + cfg->thread_state_frame);
    if (cfg->thread_state_cframe >= 0) {
        u64 cframe = read_pointer(tstate + cfg->thread_state_cframe);
        return cframe ? read_pointer(cframe + cfg->cframe_current_frame) : 0;
    }
    return 0;
}

/// Fills `stack` with the frames of `tstate`, innermost first, reading each frame into
/// `copy` (PYTAP_MEMTRACE_FRAME_BYTES, e.g. in a per-CPU map), and returns a hash of the
/// (code, instruction, owner) words: the stack's identity, never 0.
ALWAYS_INLINE u64 walk_python_stack(const struct pytap_stack_config *cfg, u64 tstate, u32 frame_read_bytes,
                                    struct pytap_stack *stack, u8 *copy) {
    u64 hash = 0xcbf29ce484222325ULL;
    u64 frame = python_top_frame(cfg, tstate);
    u32 size = frame_read_bytes;
    if (size > PYTAP_MEMTRACE_FRAME_BYTES) size = PYTAP_MEMTRACE_FRAME_BYTES;
    if (size < 8) size = 8;
    u32 count = 0;
    for (int i = 0; i < PYTAP_MEMTRACE_FRAMES; i++) {
        if (frame == 0) break;
        if (bpf_probe_read_user(copy, size, (const void *)frame) != 0) break;
        u64 code = python_frame_field(copy, cfg->frame_code, 8);
        u64 instruction = python_frame_field(copy, cfg->frame_instruction, cfg->instruction_bytes);
        u64 owner = python_frame_field(copy, cfg->frame_owner, 1);
        stack->frames[i].code = code;
        stack->frames[i].instruction = instruction;
        stack->frames[i].owner = owner;
        hash = (hash ^ code) * 0x100000001b3ULL;
        hash = (hash ^ instruction) * 0x100000001b3ULL;
        hash = (hash ^ owner) * 0x100000001b3ULL;
        count = i + 1;
        frame = python_frame_field(copy, cfg->frame_previous, 8);
    }
    stack->count = count;
    stack->truncated = count == PYTAP_MEMTRACE_FRAMES && frame != 0;
    hash = (hash ^ count) * 0x100000001b3ULL;
    return hash ? hash : 1;
}

#endif
