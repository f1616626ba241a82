// pytap's loader of its BPF sampling program (libbpf, linked statically in release builds).
#ifndef PYTAP_CBPF_H
#define PYTAP_CBPF_H

#include <stddef.h>
#include "pytap_sample.h"
#include "pytap_object.h"
#include "pytap_memtrace.h"
#include "pytap_callgraph.h"
#include "pytap_uprobe_multi.h"

struct pytap_bpf;

/// Opens and loads the program object (the ELF bytes). With `off_cpu_threads` > 0 the
/// sched_switch program is loaded and attached too, keeping the off-CPU copy of up to that
/// many threads. NULL on failure, with a negative errno in *error and libbpf's last message
/// in `message`.
struct pytap_bpf *pytap_bpf_open(const void *object, size_t size, unsigned int off_cpu_threads,
                                 int *error, char *message, size_t message_size);
int pytap_bpf_configure(struct pytap_bpf *bpf, const struct pytap_config *config);
int pytap_bpf_set_thread_state(struct pytap_bpf *bpf, unsigned int tid, unsigned long long thread_state);
int pytap_bpf_forget_thread_state(struct pytap_bpf *bpf, unsigned int tid);
/// Where thread `tid`'s stack ends: the program copies the user stack no further. 0 or -errno.
int pytap_bpf_set_stack_end(struct pytap_bpf *bpf, unsigned int tid, unsigned long long stack_end);
int pytap_bpf_forget_stack_end(struct pytap_bpf *bpf, unsigned int tid);
/// Starts keeping thread `tid`'s off-CPU copy (an entry the program fills). 0 or -errno.
int pytap_bpf_track_off_cpu(struct pytap_bpf *bpf, unsigned int tid);
void pytap_bpf_forget_off_cpu(struct pytap_bpf *bpf, unsigned int tid);
/// Copies thread `tid`'s last off-CPU record into `record` (sizeof(struct pytap_sample)
/// bytes) and returns its sequence count: 0 when the thread has not gone off the CPU since it
/// was tracked, -1 when the record was being written (or is gone): try again later.
long long pytap_bpf_read_off_cpu(struct pytap_bpf *bpf, unsigned int tid, void *record);
/// The sequence count alone (0: none yet, odd: being written, -1: not tracked).
long long pytap_bpf_off_cpu_sequence(struct pytap_bpf *bpf, unsigned int tid);
/// Opens a task-clock perf event on thread `tid` sampling `frequency` times per CPU-second
/// and attaches the program to it. 0, or a negative errno.
int pytap_bpf_attach_thread(struct pytap_bpf *bpf, int tid, unsigned long long frequency);
/// Closes thread `tid`'s perf event (a thread that exited).
void pytap_bpf_detach_thread(struct pytap_bpf *bpf, int tid);

/// Returns 0 to go on, or a negative number to leave the rest for the next poll.
typedef int (*pytap_sample_handler)(void *context, const void *sample);
/// Hands the records in the ring buffer to `handler` (until it says stop), waiting up to
/// `timeout_ms` for the first. The number of records, or a negative errno.
int pytap_bpf_poll(struct pytap_bpf *bpf, int timeout_ms, pytap_sample_handler handler, void *context);
/// Samples the program dropped because the ring buffer was full.
unsigned long long pytap_bpf_lost(struct pytap_bpf *bpf);
/// Detaches everything and frees the program: nothing of it stays in the kernel.
void pytap_bpf_close(struct pytap_bpf *bpf);

#endif
