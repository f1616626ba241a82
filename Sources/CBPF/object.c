#define _GNU_SOURCE
#include "CBPF.h"
#include "messages.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct pytap_bpf_object {
    struct bpf_object *object;
    struct ring_buffer *ring;
    // Attachment number i is links[i] (libbpf) or link_fds[i] (adopted); -1/NULL once detached.
    struct bpf_link **links;
    int *link_fds;
    size_t count, capacity;
    pytap_record_handler handler;
    void *handler_context;
};

static void copy_message(char *message, size_t message_size) {
    if (message && message_size) snprintf(message, message_size, "%s", pytap_bpf_last_message());
}

struct pytap_bpf_object *pytap_bpf_object_open(const void *bytes, size_t size, const char *name,
                                               int *error, char *message, size_t message_size) {
    pytap_bpf_capture_messages();
    struct pytap_bpf_object *object = calloc(1, sizeof *object);
    if (!object) { *error = -ENOMEM; return NULL; }
    LIBBPF_OPTS(bpf_object_open_opts, options, .object_name = name);
    object->object = bpf_object__open_mem(bytes, size, &options);
    if (!object->object) {
        *error = errno ? -errno : -EINVAL;
        copy_message(message, message_size);
        free(object);
        return NULL;
    }
    return object;
}

int pytap_bpf_object_set_map_entries(struct pytap_bpf_object *object, const char *map, unsigned int entries) {
    struct bpf_map *found = bpf_object__find_map_by_name(object->object, map);
    if (!found) return -ENOENT;
    return bpf_map__set_max_entries(found, entries);
}

int pytap_bpf_object_skip_program(struct pytap_bpf_object *object, const char *program) {
    struct bpf_program *found = bpf_object__find_program_by_name(object->object, program);
    if (!found) return -ENOENT;
    return bpf_program__set_autoload(found, false);
}

int pytap_bpf_object_set_attach_type(struct pytap_bpf_object *object, const char *program, unsigned int attach_type) {
    struct bpf_program *found = bpf_object__find_program_by_name(object->object, program);
    if (!found) return -ENOENT;
    return bpf_program__set_expected_attach_type(found, (enum bpf_attach_type)attach_type);
}

int pytap_bpf_object_load(struct pytap_bpf_object *object, char *message, size_t message_size) {
    pytap_bpf_capture_messages();
    int result = bpf_object__load(object->object);
    if (result) copy_message(message, message_size);
    return result < 0 ? result : (result ? -result : 0);
}

int pytap_bpf_object_map_fd(struct pytap_bpf_object *object, const char *map) {
    struct bpf_map *found = bpf_object__find_map_by_name(object->object, map);
    return found ? bpf_map__fd(found) : -ENOENT;
}

int pytap_bpf_object_program_fd(struct pytap_bpf_object *object, const char *program) {
    struct bpf_program *found = bpf_object__find_program_by_name(object->object, program);
    return found ? bpf_program__fd(found) : -ENOENT;
}

int pytap_bpf_map_update(int map_fd, const void *key, const void *value, unsigned long long flags) {
    return bpf_map_update_elem(map_fd, key, value, flags) ? -errno : 0;
}

int pytap_bpf_map_lookup(int map_fd, const void *key, void *value) {
    return bpf_map_lookup_elem(map_fd, key, value) ? -errno : 0;
}

int pytap_bpf_map_delete(int map_fd, const void *key) {
    return bpf_map_delete_elem(map_fd, key) ? -errno : 0;
}

int pytap_bpf_map_next_key(int map_fd, const void *key, void *next_key) {
    return bpf_map_get_next_key(map_fd, key, next_key) ? -errno : 0;
}

static int remember(struct pytap_bpf_object *object, struct bpf_link *link, int link_fd) {
    if (object->count == object->capacity) {
        size_t capacity = object->capacity ? object->capacity * 2 : 16;
        struct bpf_link **links = realloc(object->links, capacity * sizeof *links);
        if (!links) return -ENOMEM;
        object->links = links;
        int *fds = realloc(object->link_fds, capacity * sizeof *fds);
        if (!fds) return -ENOMEM;
        object->link_fds = fds;
        object->capacity = capacity;
    }
    object->links[object->count] = link;
    object->link_fds[object->count] = link_fd;
    return (int)object->count++;
}

int pytap_bpf_object_attach_uprobe(struct pytap_bpf_object *object, const char *program, int pid,
                                   const char *path, unsigned long long offset, int return_probe,
                                   unsigned long long cookie) {
    struct bpf_program *found = bpf_object__find_program_by_name(object->object, program);
    if (!found) return -ENOENT;
    LIBBPF_OPTS(bpf_uprobe_opts, options, .retprobe = return_probe != 0, .bpf_cookie = cookie);
    struct bpf_link *link = bpf_program__attach_uprobe_opts(found, pid, path, (size_t)offset, &options);
    if (!link) return errno ? -errno : -EINVAL;
    int number = remember(object, link, -1);
    if (number < 0) bpf_link__destroy(link);
    return number;
}

int pytap_bpf_object_adopt_link_fd(struct pytap_bpf_object *object, int link_fd) {
    int number = remember(object, NULL, link_fd);
    if (number < 0) close(link_fd);
    return number;
}

void pytap_bpf_object_detach(struct pytap_bpf_object *object, int attachment) {
    if (attachment < 0 || (size_t)attachment >= object->count) return;
    if (object->links[attachment]) bpf_link__destroy(object->links[attachment]);
    if (object->link_fds[attachment] >= 0) close(object->link_fds[attachment]);
    object->links[attachment] = NULL;
    object->link_fds[attachment] = -1;
}

void pytap_bpf_object_detach_all(struct pytap_bpf_object *object) {
    for (size_t i = 0; i < object->count; i++) pytap_bpf_object_detach(object, (int)i);
}

static int on_record(void *context, void *data, size_t size) {
    struct pytap_bpf_object *object = context;
    return object->handler ? object->handler(object->handler_context, data, size) : 0;
}

int pytap_bpf_object_open_ring(struct pytap_bpf_object *object, const char *map) {
    int fd = pytap_bpf_object_map_fd(object, map);
    if (fd < 0) return fd;
    if (object->ring) return ring_buffer__add(object->ring, fd, on_record, object);
    object->ring = ring_buffer__new(fd, on_record, object, NULL);
    return object->ring ? 0 : (errno ? -errno : -EINVAL);
}

int pytap_bpf_object_poll(struct pytap_bpf_object *object, int timeout_ms, pytap_record_handler handler, void *context) {
    if (!object->ring) return -EINVAL;
    object->handler = handler;
    object->handler_context = context;
    // pytap's programs submit without waking the reader (SUBMIT_QUIETLY): the wait ends
    // on a wakeup (the ring filling) or at the timeout, and whatever is in the ring then is
    // read (ring_buffer__poll reads only the rings epoll reported).
    int result = ring_buffer__poll(object->ring, timeout_ms);
    if (result == -EINTR) result = 0;
    if (result >= 0) {
        int more = ring_buffer__consume(object->ring);
        result = more < 0 ? more : result + more;
    }
    object->handler = NULL;
    return result;
}

void pytap_bpf_object_close(struct pytap_bpf_object *object) {
    if (!object) return;
    pytap_bpf_object_detach_all(object);
    free(object->links);
    free(object->link_fds);
    if (object->ring) ring_buffer__free(object->ring);
    if (object->object) bpf_object__close(object->object);
    free(object);
}
