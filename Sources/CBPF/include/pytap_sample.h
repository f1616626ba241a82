// The record the BPF sampling program (bpf/sample.bpf.c) sends per sample, and the
// configuration pytap hands it. Shared by the BPF program and pytap: one definition, so
// the two cannot disagree. Plain C types only (no kernel or libc headers): the BPF
// target and x86_64 agree on their sizes.
#ifndef PYTAP_SAMPLE_H
#define PYTAP_SAMPLE_H

#define PYTAP_USER_STACK_BYTES 16384
#define PYTAP_KERNEL_FRAMES 64
#define PYTAP_PYTHON_FRAMES 128
#define PYTAP_FRAME_BYTES 128
#define PYTAP_THREAD_STATE_BYTES 1024
#define PYTAP_PAGE_BYTES 4096
/// Each frame's code object as the sample saw it: its header, and the headers of its name
/// and line table (what tells a code object from another that took its address). The
/// name and table sizes are what `CodeIdentity` reads (`nameWords`, `tableWords` words).
#define PYTAP_CODE_HEAD_BYTES 208
#define PYTAP_NAME_HEAD_BYTES 24
#define PYTAP_TABLE_HEAD_BYTES 16
/// x86_64 `struct pt_regs`, in the kernel's order.
#define PYTAP_REGISTER_COUNT 21

/// Per-version offsets from pytap's layout tables (never compiled into the program).
/// An offset of -1 means the field does not exist in this version.
struct pytap_config {
    unsigned int thread_state_bytes;     // bytes of the thread state to copy (<= PYTAP_THREAD_STATE_BYTES)
    unsigned int frame_bytes;            // bytes of each frame to copy (<= PYTAP_FRAME_BYTES)
    int thread_state_frame;              // tstate->frame (<= 3.10) or tstate->current_frame (3.13+)
    int thread_state_cframe;             // tstate->cframe (3.11-3.12)
    int cframe_current_frame;            // cframe->current_frame (3.11-3.12)
    int frame_previous;                  // f_back (<= 3.10) or _PyInterpreterFrame.previous (3.11+)
    int frame_code;                      // a frame's code reference (f_code, f_executable), -1: no code copies
    unsigned int code_head_bytes;        // bytes of each frame's code object to copy (<= PYTAP_CODE_HEAD_BYTES)
    int code_name;                       // co_name, -1 when the header alone tells code objects apart (co_version)
    int code_line_table;                 // co_linetable / co_lnotab, -1 likewise
    unsigned int object_type;            // ob_type: the name and table copies start there
    unsigned int reserved;
    unsigned long long code_pointer_mask; // clears the tag bits of a code reference (3.14+)
};

/// One sample of one thread. Copies are made at one instant, in the thread's own context.
struct pytap_sample {
    unsigned int pid;                    // thread group id (host PID namespace)
    unsigned int tid;
    unsigned long long time_ns;          // CLOCK_MONOTONIC
    unsigned long long registers[PYTAP_REGISTER_COUNT]; // user registers, struct pt_regs order
    unsigned long long thread_state;     // address of the thread's PyThreadState, 0 if unknown
    unsigned long long cframe;           // tstate->cframe (3.11-3.12), else 0
    unsigned long long cframe_current;   // cframe->current_frame as read, when cframe != 0
    unsigned int thread_state_bytes;     // bytes copied into thread_state_copy
    unsigned int user_stack_bytes;       // end of the copy in user_stack: it holds [sp, (sp & ~4095) + this)
    int kernel_stack_bytes;              // bpf_get_stack's result (<0: none)
    unsigned int frame_count;            // Python frames copied
    unsigned int frames_truncated;       // 1 when the chain went on past PYTAP_PYTHON_FRAMES
    unsigned int reserved;
    unsigned long long kernel_stack[PYTAP_KERNEL_FRAMES];
    unsigned long long frame_addresses[PYTAP_PYTHON_FRAMES];
    unsigned char thread_state_copy[PYTAP_THREAD_STATE_BYTES];
    unsigned char frames[PYTAP_PYTHON_FRAMES][PYTAP_FRAME_BYTES];
    // Per frame: where its code object's copies were read from (0: not copied), and the copies.
    unsigned long long code_addresses[PYTAP_PYTHON_FRAMES];
    unsigned long long name_addresses[PYTAP_PYTHON_FRAMES];
    unsigned long long table_addresses[PYTAP_PYTHON_FRAMES];
    unsigned char code_heads[PYTAP_PYTHON_FRAMES][PYTAP_CODE_HEAD_BYTES];
    unsigned char name_heads[PYTAP_PYTHON_FRAMES][PYTAP_NAME_HEAD_BYTES];
    unsigned char table_heads[PYTAP_PYTHON_FRAMES][PYTAP_TABLE_HEAD_BYTES];
    unsigned char user_stack[PYTAP_USER_STACK_BYTES]; // from sp's page start; sp at sp & 4095
};

/// Where the fields lie in a record (pytap reads it as bytes, in place).
enum pytap_sample_offsets {
    PYTAP_OFFSET_THREAD_STATE = __builtin_offsetof(struct pytap_sample, thread_state),
    PYTAP_OFFSET_CFRAME = __builtin_offsetof(struct pytap_sample, cframe),
    PYTAP_OFFSET_CFRAME_CURRENT = __builtin_offsetof(struct pytap_sample, cframe_current),
    PYTAP_OFFSET_THREAD_STATE_BYTES = __builtin_offsetof(struct pytap_sample, thread_state_bytes),
    PYTAP_OFFSET_USER_STACK_BYTES = __builtin_offsetof(struct pytap_sample, user_stack_bytes),
    PYTAP_OFFSET_KERNEL_STACK_BYTES = __builtin_offsetof(struct pytap_sample, kernel_stack_bytes),
    PYTAP_OFFSET_FRAME_COUNT = __builtin_offsetof(struct pytap_sample, frame_count),
    PYTAP_OFFSET_FRAMES_TRUNCATED = __builtin_offsetof(struct pytap_sample, frames_truncated),
    PYTAP_OFFSET_REGISTERS = __builtin_offsetof(struct pytap_sample, registers),
    PYTAP_OFFSET_KERNEL_STACK = __builtin_offsetof(struct pytap_sample, kernel_stack),
    PYTAP_OFFSET_FRAME_ADDRESSES = __builtin_offsetof(struct pytap_sample, frame_addresses),
    PYTAP_OFFSET_THREAD_STATE_COPY = __builtin_offsetof(struct pytap_sample, thread_state_copy),
    PYTAP_OFFSET_FRAMES = __builtin_offsetof(struct pytap_sample, frames),
    PYTAP_OFFSET_CODE_ADDRESSES = __builtin_offsetof(struct pytap_sample, code_addresses),
    PYTAP_OFFSET_NAME_ADDRESSES = __builtin_offsetof(struct pytap_sample, name_addresses),
    PYTAP_OFFSET_TABLE_ADDRESSES = __builtin_offsetof(struct pytap_sample, table_addresses),
    PYTAP_OFFSET_CODE_HEADS = __builtin_offsetof(struct pytap_sample, code_heads),
    PYTAP_OFFSET_NAME_HEADS = __builtin_offsetof(struct pytap_sample, name_heads),
    PYTAP_OFFSET_TABLE_HEADS = __builtin_offsetof(struct pytap_sample, table_heads),
    PYTAP_OFFSET_USER_STACK = __builtin_offsetof(struct pytap_sample, user_stack),
};

#endif
