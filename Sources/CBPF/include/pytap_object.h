// A BPF object of pytap's (any bpf/*.bpf.c) loaded through libbpf, with its programs
// attached to uprobes and its maps and ring buffers reached by name. Every probe, map and
// program belongs to the object's file descriptors: when pytap ends, however it ends
// (SIGKILL included), the kernel drops them and the target runs on untouched.
#ifndef PYTAP_OBJECT_H
#define PYTAP_OBJECT_H

#include <stddef.h>

struct pytap_bpf_object;

/// Opens an object from its ELF bytes without loading it (maps may still be resized).
/// NULL on failure, with a negative errno in *error and libbpf's last message in `message`.
struct pytap_bpf_object *pytap_bpf_object_open(const void *bytes, size_t size, const char *name,
                                               int *error, char *message, size_t message_size);
/// Before load: sets a map's number of entries. 0 or a negative errno.
int pytap_bpf_object_set_map_entries(struct pytap_bpf_object *object, const char *map, unsigned int entries);
/// Before load: leaves a program out of the load (one that needs a newer kernel). 0 or -ENOENT.
int pytap_bpf_object_skip_program(struct pytap_bpf_object *object, const char *program);
/// Before load: sets a program's expected attach type (e.g. BPF_TRACE_UPROBE_MULTI, 48,
/// which libbpf 1.1 does not know by section name). 0 or -ENOENT.
int pytap_bpf_object_set_attach_type(struct pytap_bpf_object *object, const char *program, unsigned int attach_type);
/// Loads every program and creates every map. 0, or a negative errno with libbpf's message.
int pytap_bpf_object_load(struct pytap_bpf_object *object, char *message, size_t message_size);

/// A map's file descriptor (for bpf_map_* calls through the functions below), or -ENOENT.
int pytap_bpf_object_map_fd(struct pytap_bpf_object *object, const char *map);
/// A program's file descriptor, or -ENOENT.
int pytap_bpf_object_program_fd(struct pytap_bpf_object *object, const char *program);
int pytap_bpf_map_update(int map_fd, const void *key, const void *value, unsigned long long flags);
int pytap_bpf_map_lookup(int map_fd, const void *key, void *value);
int pytap_bpf_map_delete(int map_fd, const void *key);
/// Iterates keys: the key after `key` (NULL: the first) into `next_key`. 0, or -ENOENT at the end.
int pytap_bpf_map_next_key(int map_fd, const void *key, void *next_key);

/// Attaches `program` as a uprobe (or, with `return_probe`, a uretprobe) at file offset
/// `offset` of the object file `path` (as pytap sees it, e.g. under /proc/PID/root),
/// for process `pid` only (-1: every process that maps the file). Returns an attachment
/// number >= 0 for pytap_bpf_object_detach, or a negative errno.
int pytap_bpf_object_attach_uprobe(struct pytap_bpf_object *object, const char *program, int pid,
                                   const char *path, unsigned long long offset, int return_probe,
                                   unsigned long long cookie);
/// Attaches a link made elsewhere (e.g. a multi-uprobe link from the bpf() syscall) so it
/// is closed with the object. Returns its attachment number.
int pytap_bpf_object_adopt_link_fd(struct pytap_bpf_object *object, int link_fd);
/// Removes one attachment (its probe is gone from the target when this returns).
void pytap_bpf_object_detach(struct pytap_bpf_object *object, int attachment);
/// Removes every attachment.
void pytap_bpf_object_detach_all(struct pytap_bpf_object *object);

/// Returns 0 to go on, or a negative number to leave the rest for the next poll.
typedef int (*pytap_record_handler)(void *context, const void *record, size_t size);
/// Opens the ring buffer map `map` for polling. 0 or a negative errno.
int pytap_bpf_object_open_ring(struct pytap_bpf_object *object, const char *map);
/// Waits up to `timeout_ms` for a wakeup (programs submitting quietly wake it only when the
/// ring fills), then hands every record waiting in the rings to `handler` (until it says
/// stop). The number of records, or a negative errno (EINTR: 0).
int pytap_bpf_object_poll(struct pytap_bpf_object *object, int timeout_ms, pytap_record_handler handler, void *context);

/// Detaches everything and frees the object: nothing of it stays in the kernel.
void pytap_bpf_object_close(struct pytap_bpf_object *object);

#endif
