// pytap's C shim: only what Swift's Glibc module does not import (variadic or
// GNU-only calls) and a flag set from a signal handler. Nothing else lives here.
#ifndef PYTAP_CLINUX_H
#define PYTAP_CLINUX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <zlib.h>
#include <libdeflate.h>

/// process_vm_readv(2): copies from another process's memory (needs _GNU_SOURCE).
ssize_t clinux_process_vm_readv(pid_t pid,
                                const struct iovec *local, unsigned long local_count,
                                const struct iovec *remote, unsigned long remote_count);

/// process_vm_writev(2): copies into another process's memory. pytap writes only the
/// fields of CPython's remote-debugging protocol (PEP 768), for `memtrace --via tracemalloc`.
ssize_t clinux_process_vm_writev(pid_t pid,
                                 const struct iovec *local, unsigned long local_count,
                                 const struct iovec *remote, unsigned long remote_count);

/// prctl(PR_SET_TIMERSLACK): how late the kernel may wake this thread from a timed sleep.
int clinux_set_timer_slack(unsigned long nanoseconds);

/// Installs handlers for the signals that end a recording (SIGINT, SIGTERM, SIGHUP, SIGQUIT,
/// SIGALRM, SIGUSR1, SIGUSR2) that only set a flag; the second SIGINT restores the
/// default action so a stuck pytap can still be killed.
void clinux_install_interrupt_flag(void);
/// Whether one of them arrived since install (or the last clear).
int clinux_interrupted(void);
void clinux_clear_interrupted(void);
/// Ignore SIGPIPE so a closed pipe is an EPIPE write error, not a silent death.
void clinux_ignore_sigpipe(void);
/// From now on, those signals sent by another process (kill(2), not the terminal) are
/// also sent to `pid` (0: to nobody).
void clinux_forward_signals_to(pid_t pid);

/// SIGTSTP (Ctrl-Z) as a flag (enable 1), or back to its default action (enable 0).
void clinux_watch_suspend(int enable);
/// Whether SIGTSTP arrived since the last call.
int clinux_take_suspend(void);

/// fork + execvp(file, argv); the child gets `death_signal` when pytap dies
/// (PR_SET_PDEATHSIG) and the signal dispositions and mask pytap inherited (no SIGPIPE
/// ignored by pytap). Returns the child's PID, or -errno (also exec's errno).
pid_t clinux_spawn(const char *file, char *const argv[], int death_signal);

/// Stops thread `tid` of another process for a moment: PTRACE_SEIZE (no options, so if
/// pytap dies the kernel detaches and the thread runs on), PTRACE_INTERRUPT, then waits up
/// to `timeout_ms` for the stop. Returns 0 when stopped, with `*pending_signal` a signal the
/// stop intercepted (hand it back on resume); -errno otherwise (-ETIMEDOUT: not stopped in
/// time, still seized: resume it, or exit, which detaches).
int clinux_thread_stop(pid_t tid, int timeout_ms, int *pending_signal);
/// PTRACE_GETREGSET(NT_PRSTATUS) of a stopped thread: bytes read, or -errno.
long clinux_thread_registers(pid_t tid, void *buffer, size_t size);
/// PTRACE_DETACH handing back `signal` (0: none). 0, or -errno. A seized thread that has not
/// stopped yet is waited for up to `timeout_ms` first.
int clinux_thread_resume(pid_t tid, int signal, int timeout_ms);

/// The C++ runtime's Itanium ABI demangler (libstdc++, linked into every Swift program on
/// Linux): a malloc'd name, or NULL with *status < 0 when `mangled` is not a mangled name.
char *__cxa_demangle(const char *mangled, char *output_buffer, size_t *length, int *status);

#endif
