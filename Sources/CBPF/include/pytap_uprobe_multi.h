// Multi-uprobe BPF links (kernel 6.6+) made with the bpf() syscall: libbpf 1.1 predates
// bpf_program__attach_uprobe_multi.
#ifndef PYTAP_UPROBE_MULTI_H
#define PYTAP_UPROBE_MULTI_H

/// BPF_TRACE_UPROBE_MULTI: the expected attach type of a program for a multi-uprobe link.
#define PYTAP_BPF_TRACE_UPROBE_MULTI 48

/// Creates one link attaching `program_fd` (loaded with expected attach type
/// BPF_TRACE_UPROBE_MULTI) at `count` file offsets of `path`, each with its cookie, for
/// process `pid` (0: every process). `return_probe` makes them uretprobes. The link's file
/// descriptor, or a negative errno (e.g. -EINVAL on kernels without multi-uprobe links).
int pytap_uprobe_multi_link(int program_fd, const char *path, const unsigned long long *offsets,
                            const unsigned long long *cookies, unsigned int count, int return_probe, int pid);

#endif
