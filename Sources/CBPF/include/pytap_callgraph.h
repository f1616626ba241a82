// The records and state of the call-graph BPF program (bpf/callgraph.bpf.c), shared with
// pytap: one definition, so the two cannot disagree. Plain C types only.
#ifndef PYTAP_CALLGRAPH_H
#define PYTAP_CALLGRAPH_H

/// What a call-graph record says happened.
enum pytap_call_kind {
    PYTAP_CALL_ENTRY = 0,     // a probed function was entered
    PYTAP_CALL_RETURN = 1,    // a probed function returned
    PYTAP_CALL_END = 2,       // the trigger's extent ended without its return being seen
};

/// One call or return on the traced thread, inside the trigger's extent.
struct pytap_call_event {
    unsigned long long time_ns;      // CLOCK_MONOTONIC
    unsigned long long stack;        // the stack pointer at the function's entry (its return address' slot)
    unsigned int tid;
    unsigned int function;           // the attach cookie: index into pytap's function list
    unsigned int kind;               // enum pytap_call_kind
    unsigned int invocation;         // 1 for the first trigger entry traced, 2 for the next...
};

/// The program's state (array map `state`, one entry), set up by pytap before attaching.
struct pytap_callgraph_state {
    unsigned int trigger;            // function index of the trigger
    unsigned int active_tid;         // the thread inside the trigger, 0 when none
    unsigned long long trigger_stack;// stack pointer at the trigger's entry
    unsigned long long trigger_return;// the trigger's return address (before the uretprobe replaced it)
    unsigned int invocations_left;   // trigger entries still to trace
    unsigned int invocation;         // number of the current (or last) invocation
    unsigned long long events_left;  // records still allowed (--max-events)
    unsigned long long dropped;      // records not sent: the cap reached, or the ring buffer full
};

/// One entry or return of the eval function (`py-callgraph`, bpf/pycallgraph.bpf.c).
struct pytap_pycall_event {
    unsigned long long time_ns;      // CLOCK_MONOTONIC
    unsigned long long stack;        // the stack pointer at the eval function's entry
    unsigned long long code;         // entry: the frame's code object (0 at a return)
    unsigned int tid;
    unsigned int kind;               // PYTAP_CALL_ENTRY or PYTAP_CALL_RETURN
};

/// `py-callgraph`'s settings and counters (array map `pystate`, one entry).
struct pytap_pycallgraph_state {
    unsigned long long frame_code;   // offset of f_code in the frame object
    unsigned long long events_left;  // records still allowed (--max-events)
    unsigned long long dropped;      // records not sent: the cap reached, or the ring buffer full
};

/// `py-callgraph` on 3.11+ (bpf/pyopcodes.bpf.c): what the probed bytecode handler does.
enum pytap_pyframe_kind {
    PYTAP_PYFRAME_START = 0,         // RESUME (and its variants): the current frame starts or resumes
    PYTAP_PYFRAME_LEAVE = 1,         // a return or yield: the current frame leaves
    PYTAP_PYFRAME_RAISE = 2,         // PyTraceBack_Here: an exception is in the current frame (deeper ones are gone)
    PYTAP_PYFRAME_NEW_THREAD = 3,    // a thread pytap does not know yet ran a probed handler: look for new threads now
};

/// Frames of the chain sent per record (the current one and its callers, shim frames skipped).
#define PYTAP_PYFRAME_CHAIN 4

/// One handler hit: the thread's current frame and its callers, with their code objects.
struct pytap_pyframe_event {
    unsigned long long time_ns;      // CLOCK_MONOTONIC
    unsigned long long frames[PYTAP_PYFRAME_CHAIN];  // innermost first
    unsigned long long codes[PYTAP_PYFRAME_CHAIN];   // f_executable / f_code, still tagged
    unsigned int tid;
    unsigned int kind;               // enum pytap_pyframe_kind
    unsigned int count;              // frames filled
    unsigned int reserved;
};

/// The 3.11+ program's settings and counters (array map `pyconfig`, one entry).
struct pytap_pyframes_config {
    int thread_state_frame;          // tstate->current_frame (3.13+), -1 else
    int thread_state_cframe;         // tstate->cframe (3.11-3.12), -1 else
    int cframe_current_frame;        // cframe->current_frame (3.11-3.12)
    int frame_previous;              // _PyInterpreterFrame.previous
    int frame_code;                  // f_code / f_executable
    int frame_owner;                 // owner byte, -1: none
    unsigned int first_non_python_owner;  // owners from this one on are shim frames (skipped)
    unsigned int frame_read_bytes;   // bytes of each frame read at once (the fields lie below)
    unsigned long long events_left;  // records still allowed (--max-events)
    unsigned long long dropped;      // records not sent: the cap reached, or the ring buffer full
    unsigned long long unknown_thread; // hits on a thread whose state pytap did not know yet
};
#endif
