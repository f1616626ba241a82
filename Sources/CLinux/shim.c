#define _GNU_SOURCE
#include "CLinux.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <elf.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

ssize_t clinux_process_vm_readv(pid_t pid,
                                const struct iovec *local, unsigned long local_count,
                                const struct iovec *remote, unsigned long remote_count) {
    return process_vm_readv(pid, local, local_count, remote, remote_count, 0);
}

ssize_t clinux_process_vm_writev(pid_t pid,
                                 const struct iovec *local, unsigned long local_count,
                                 const struct iovec *remote, unsigned long remote_count) {
    return process_vm_writev(pid, local, local_count, remote, remote_count, 0);
}

int clinux_set_timer_slack(unsigned long nanoseconds) {
    return prctl(PR_SET_TIMERSLACK, nanoseconds, 0, 0, 0);
}

static volatile sig_atomic_t interrupted_count = 0;
static volatile sig_atomic_t suspend_requested = 0;
static volatile pid_t forward_pid = 0;

/// The signals that end a recording (and are forwarded to a launched command).
static const int stop_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGALRM, SIGUSR1, SIGUSR2};
#define STOP_SIGNAL_COUNT (sizeof stop_signals / sizeof stop_signals[0])

/// What pytap inherited, restored in a launched command before exec.
static int inherited_saved = 0;
static sigset_t inherited_mask;
static unsigned char inherited_ignored[NSIG];

static void save_inherited(void) {
    if (inherited_saved) return;
    inherited_saved = 1;
    sigprocmask(SIG_SETMASK, NULL, &inherited_mask);
    for (int signo = 1; signo < NSIG; signo++) {
        struct sigaction old;
        inherited_ignored[signo] = sigaction(signo, NULL, &old) == 0 && old.sa_handler == SIG_IGN;
    }
}

static void on_interrupt(int signo, siginfo_t *info, void *context) {
    (void)context;
    interrupted_count++;
    // Sent by another process (kill, not the terminal, which signals the command itself).
    if (forward_pid > 0 && info != NULL && info->si_code <= 0) {
        kill(forward_pid, signo);
    }
    if (signo == SIGINT && interrupted_count >= 2) {
        signal(SIGINT, SIG_DFL);
    }
}

void clinux_install_interrupt_flag(void) {
    save_inherited();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_interrupt;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < STOP_SIGNAL_COUNT; i++) sigaction(stop_signals[i], &sa, NULL);
}

int clinux_interrupted(void) { return interrupted_count > 0; }
void clinux_clear_interrupted(void) { interrupted_count = 0; }
void clinux_ignore_sigpipe(void) {
    save_inherited();
    signal(SIGPIPE, SIG_IGN);
}
void clinux_forward_signals_to(pid_t pid) { forward_pid = pid; }

static void on_suspend(int signo) {
    (void)signo;
    suspend_requested = 1;
}

void clinux_watch_suspend(int enable) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = enable ? on_suspend : SIG_DFL;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTSTP, &sa, NULL);
}

int clinux_take_suspend(void) {
    int requested = suspend_requested;
    suspend_requested = 0;
    return requested;
}

pid_t clinux_spawn(const char *file, char *const argv[], int death_signal) {
    save_inherited();
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) return -errno;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int error = errno;
        close(report[0]);
        close(report[1]);
        return -error;
    }
    if (pid == 0) {
        // Only async-signal-safe calls from here to exec.
        close(report[0]);
        prctl(PR_SET_PDEATHSIG, death_signal, 0, 0, 0);
        if (getppid() != parent) _exit(127);   // pytap died before the line above
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sigemptyset(&sa.sa_mask);
        for (int signo = 1; signo < NSIG; signo++) {
            if (signo == SIGKILL || signo == SIGSTOP) continue;
            sa.sa_handler = inherited_ignored[signo] ? SIG_IGN : SIG_DFL;
            sigaction(signo, &sa, NULL);
        }
        sigprocmask(SIG_SETMASK, &inherited_mask, NULL);
        execvp(file, argv);
        int error = errno;
        ssize_t ignored = write(report[1], &error, sizeof error);
        (void)ignored;
        _exit(127);
    }
    close(report[1]);
    int error = 0;
    ssize_t n;
    do {
        n = read(report[0], &error, sizeof error);
    } while (n < 0 && errno == EINTR);
    close(report[0]);
    if (n == (ssize_t)sizeof error) {
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
        return -error;
    }
    return pid;
}

/// Waits up to timeout_ms for a ptrace stop of tid: 0 and the status, or -errno.
static int wait_for_stop(pid_t tid, int timeout_ms, int *status) {
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        pid_t got = waitpid(tid, status, __WALL | WNOHANG);
        if (got == tid) {
            if (WIFSTOPPED(*status)) return 0;
            return -ESRCH;  // exited or killed
        }
        if (got < 0 && errno != EINTR) return -errno;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long elapsed = (now.tv_sec - start.tv_sec) * 1000L + (now.tv_nsec - start.tv_nsec) / 1000000L;
        if (elapsed >= timeout_ms) return -ETIMEDOUT;
        struct timespec pause = {0, 20000};
        nanosleep(&pause, NULL);
    }
}

int clinux_thread_stop(pid_t tid, int timeout_ms, int *pending_signal) {
    *pending_signal = 0;
    if (ptrace(PTRACE_SEIZE, tid, NULL, NULL) != 0) return -errno;
    if (ptrace(PTRACE_INTERRUPT, tid, NULL, NULL) != 0) {
        int error = errno;
        ptrace(PTRACE_DETACH, tid, NULL, NULL);
        return -error;
    }
    int status = 0;
    int result = wait_for_stop(tid, timeout_ms, &status);
    if (result != 0) return result;
    // A signal-delivery stop (no event in the high bits) took the signal from the thread.
    if ((status >> 16) == 0 && WSTOPSIG(status) != SIGTRAP) *pending_signal = WSTOPSIG(status);
    return 0;
}

long clinux_thread_registers(pid_t tid, void *buffer, size_t size) {
    struct iovec vector = {buffer, size};
    if (ptrace(PTRACE_GETREGSET, tid, (void *)(uintptr_t)NT_PRSTATUS, &vector) != 0) return -errno;
    return (long)vector.iov_len;
}

int clinux_thread_resume(pid_t tid, int signal, int timeout_ms) {
    if (ptrace(PTRACE_DETACH, tid, NULL, (void *)(uintptr_t)signal) == 0) return 0;
    if (errno != ESRCH) return -errno;
    // Not stopped yet (a late stop from the interrupt): wait for it, then detach.
    int status = 0;
    int result = wait_for_stop(tid, timeout_ms, &status);
    if (result != 0) return result;
    if ((status >> 16) == 0 && WSTOPSIG(status) != SIGTRAP && signal == 0) signal = WSTOPSIG(status);
    return ptrace(PTRACE_DETACH, tid, NULL, (void *)(uintptr_t)signal) == 0 ? 0 : -errno;
}
