// What bpf/memtrace.bpf.c and pytap share: the configuration (per-version offsets from
// pytap's layout tables, never compiled into the program), the records kept in its maps
// and the counters. One definition, so the two cannot disagree. Plain C types only.
#ifndef PYTAP_MEMTRACE_H
#define PYTAP_MEMTRACE_H

/// Python frames kept per allocation stack (outer frames beyond are cut, and counted).
#define PYTAP_MEMTRACE_FRAMES 32
/// Bytes of a frame read at once to take its fields from (the fields must lie below).
#define PYTAP_MEMTRACE_FRAME_BYTES 256

/// Per-version offsets of the Python frame walk (bpf/python_stack.bpf.h). -1: no such field.
struct pytap_stack_config {
    int thread_state_frame;              // tstate->frame (<= 3.10) or tstate->current_frame (3.13+)
    int thread_state_cframe;             // tstate->cframe (3.11-3.12)
    int cframe_current_frame;            // cframe->current_frame (3.11-3.12)
    int frame_previous;                  // f_back (<= 3.10) or _PyInterpreterFrame.previous (3.11+)
    int frame_code;                      // f_code, f_executable (tagged in 3.14+)
    int frame_instruction;               // f_lasti (an int) or the instruction pointer
    int frame_owner;                     // _PyInterpreterFrame.owner (a byte), -1 before 3.11
    unsigned int instruction_bytes;      // 4: f_lasti; 8: an instruction pointer
};

/// The memtrace program's configuration.
struct pytap_memtrace_config {
    struct pytap_stack_config stack;
    unsigned int frame_read_bytes;       // bytes of each frame read (the fields used lie below)
};

/// One Python frame as the walk found it: raw words, decoded by pytap with the layout.
struct pytap_stack_frame {
    unsigned long long code;             // code object (still tagged)
    unsigned long long instruction;      // f_lasti, or the instruction pointer
    unsigned long long owner;            // frame owner byte (3.11+), else 0
};

/// A deduplicated Python stack, innermost frame first, kept under its hash.
struct pytap_stack {
    unsigned int count;
    unsigned int truncated;              // 1 when the chain went on past PYTAP_MEMTRACE_FRAMES
    struct pytap_stack_frame frames[PYTAP_MEMTRACE_FRAMES];
};

/// Which allocator function a probe sits on (its attach cookie: kind | PYTAP_MEMTRACE_CONTEXT_ARGUMENT).
enum pytap_memtrace_kind {
    PYTAP_MEMTRACE_MALLOC = 0,
    PYTAP_MEMTRACE_CALLOC = 1,
    PYTAP_MEMTRACE_REALLOC = 2,
    PYTAP_MEMTRACE_FREE = 3,
};
/// The function's first argument is the allocator's context (3.x `_PyObject_Malloc(ctx, n)`).
#define PYTAP_MEMTRACE_CONTEXT_ARGUMENT 0x100

/// A live allocation, under its address.
struct pytap_allocation {
    unsigned long long size;
    unsigned long long time_ns;          // CLOCK_MONOTONIC
    unsigned long long stack;            // key into the stacks map, 0: the thread's state was not known
    unsigned int tid;
    unsigned int reserved;
};

/// Counters, by index into the array map `counters`.
enum pytap_memtrace_counter {
    PYTAP_COUNT_HITS = 0,                // probe hits of the target (entry and return probes)
    PYTAP_COUNT_ALLOCATIONS = 1,         // allocations recorded (malloc, calloc, realloc results)
    PYTAP_COUNT_FREES = 2,               // frees and reallocs of a recorded block
    PYTAP_COUNT_LOST = 3,                // allocations not recorded: the live map was full
    PYTAP_COUNT_STACKS_LOST = 4,         // stacks not kept: the stacks map was full
    PYTAP_COUNT_PENDING_LOST = 5,        // calls whose entry could not be kept until their return
    PYTAP_COUNTERS = 8,
};

#endif
