// BPF_LINK_CREATE for BPF_TRACE_UPROBE_MULTI, with the bpf_attr laid out as in
// include/uapi/linux/bpf.h (link_create.uprobe_multi, kernel 6.6+).
#include "include/pytap_uprobe_multi.h"

#include <errno.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PYTAP_BPF_LINK_CREATE 28
#define PYTAP_BPF_F_UPROBE_MULTI_RETURN 1U

struct pytap_link_create_uprobe_multi {
    unsigned int prog_fd;
    unsigned int target_fd;
    unsigned int attach_type;
    unsigned int flags;
    unsigned long long path;
    unsigned long long offsets;
    unsigned long long ref_ctr_offsets;
    unsigned long long cookies;
    unsigned int cnt;
    unsigned int multi_flags;
    unsigned int pid;
    unsigned int padding;
};

int pytap_uprobe_multi_link(int program_fd, const char *path, const unsigned long long *offsets,
                            const unsigned long long *cookies, unsigned int count, int return_probe, int pid) {
    // The kernel reads the whole union member; the rest of bpf_attr must be zero.
    union { struct pytap_link_create_uprobe_multi link; char bytes[128]; } attr;
    memset(&attr, 0, sizeof(attr));
    attr.link.prog_fd = (unsigned int)program_fd;
    attr.link.attach_type = PYTAP_BPF_TRACE_UPROBE_MULTI;
    attr.link.path = (unsigned long long)(unsigned long)path;
    attr.link.offsets = (unsigned long long)(unsigned long)offsets;
    attr.link.cookies = (unsigned long long)(unsigned long)cookies;
    attr.link.cnt = count;
    attr.link.multi_flags = return_probe ? PYTAP_BPF_F_UPROBE_MULTI_RETURN : 0;
    attr.link.pid = pid > 0 ? (unsigned int)pid : 0;
    long fd = syscall(SYS_bpf, PYTAP_BPF_LINK_CREATE, &attr, sizeof(attr));
    return fd < 0 ? -errno : (int)fd;
}
