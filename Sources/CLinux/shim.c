#define _GNU_SOURCE
#include "CLinux.h"

#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

ssize_t clinux_process_vm_readv(pid_t pid,
                                const struct iovec *local, unsigned long local_count,
                                const struct iovec *remote, unsigned long remote_count) {
    return process_vm_readv(pid, local, local_count, remote, remote_count, 0);
}

pid_t clinux_gettid(void) { return (pid_t)syscall(SYS_gettid); }

long clinux_ptrace(int request, pid_t pid, void *addr, void *data) {
    return ptrace((enum __ptrace_request)request, pid, addr, data);
}

int clinux_set_timer_slack(unsigned long nanoseconds) {
    return prctl(PR_SET_TIMERSLACK, nanoseconds, 0, 0, 0);
}

static volatile sig_atomic_t interrupted_count = 0;

static void on_interrupt(int signo) {
    interrupted_count++;
    if (signo == SIGINT && interrupted_count >= 2) {
        signal(SIGINT, SIG_DFL);
    }
}

void clinux_install_interrupt_flag(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int clinux_interrupted(void) { return interrupted_count > 0; }
void clinux_clear_interrupted(void) { interrupted_count = 0; }
void clinux_ignore_sigpipe(void) { signal(SIGPIPE, SIG_IGN); }
