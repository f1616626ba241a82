#define _GNU_SOURCE
#include "CBPF.h"
#include "messages.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/perf_event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

struct pytap_attached {
    int tid;
    int perf_fd;
    struct bpf_link *link;
};

struct pytap_bpf {
    struct bpf_object *object;
    struct bpf_program *program;
    int config_fd, thread_states_fd, stack_ends_fd, lost_fd, off_cpu_fd, off_cpu_sequence_fd;
    struct bpf_link *switch_link;
    struct ring_buffer *ring;
    struct pytap_attached *attached;
    size_t attached_count, attached_capacity;
    pytap_sample_handler handler;
    void *handler_context;
};

// libbpf's messages: the last warning is kept for the error line; nothing is printed.
static char last_message[512];


static int keep_message(enum libbpf_print_level level, const char *format, va_list args) {
    if (getenv("PYTAP_BPF_DEBUG")) {
        va_list copy;
        va_copy(copy, args);
        vfprintf(stderr, format, copy);
        va_end(copy);
    }
    if (level == LIBBPF_DEBUG) return 0;
    char line[512];
    vsnprintf(line, sizeof line, format, args);
    size_t length = strlen(line);
    while (length > 0 && (line[length - 1] == '\n' || line[length - 1] == ' ')) line[--length] = 0;
    if (length > 0) memcpy(last_message, line, length + 1);
    return 0;
}

void pytap_bpf_capture_messages(void) {
    libbpf_set_print(keep_message);
    last_message[0] = 0;
}

const char *pytap_bpf_last_message(void) { return last_message; }

static int on_record(void *context, void *data, size_t size) {
    struct pytap_bpf *bpf = context;
    if (size < sizeof(struct pytap_sample) || !bpf->handler) return 0;
    return bpf->handler(bpf->handler_context, data);
}

static int fail(int *error, int code, char *message, size_t message_size) {
    *error = code < 0 ? code : -code;
    if (message && message_size) snprintf(message, message_size, "%s", last_message);
    return 0;
}

struct pytap_bpf *pytap_bpf_open(const void *object, size_t size, unsigned int off_cpu_threads,
                                 int *error, char *message, size_t message_size) {
    pytap_bpf_capture_messages();
    struct pytap_bpf *bpf = calloc(1, sizeof *bpf);
    if (!bpf) { fail(error, ENOMEM, message, message_size); return NULL; }
    bpf->off_cpu_fd = bpf->off_cpu_sequence_fd = -1;
    LIBBPF_OPTS(bpf_object_open_opts, options, .object_name = "pytap");
    bpf->object = bpf_object__open_mem(object, size, &options);
    if (!bpf->object) { fail(error, errno, message, message_size); free(bpf); return NULL; }
    struct bpf_program *on_switch = bpf_object__find_program_by_name(bpf->object, "on_switch");
    struct bpf_map *off_cpu = bpf_object__find_map_by_name(bpf->object, "off_cpu");
    struct bpf_map *off_cpu_sequence = bpf_object__find_map_by_name(bpf->object, "off_cpu_sequence");
    if (!on_switch || !off_cpu || !off_cpu_sequence) { fail(error, ENOENT, message, message_size); pytap_bpf_close(bpf); return NULL; }
    // Hash maps are preallocated: ~70 KiB of kernel memory per thread tracked.
    if (off_cpu_threads > 0) {
        bpf_map__set_max_entries(off_cpu, off_cpu_threads);
        bpf_map__set_max_entries(off_cpu_sequence, off_cpu_threads);
    } else {
        bpf_program__set_autoload(on_switch, false);
    }
    int result = bpf_object__load(bpf->object);
    if (result) { fail(error, result, message, message_size); pytap_bpf_close(bpf); return NULL; }
    bpf->program = bpf_object__find_program_by_name(bpf->object, "on_sample");
    struct bpf_map *samples = bpf_object__find_map_by_name(bpf->object, "samples");
    struct bpf_map *config = bpf_object__find_map_by_name(bpf->object, "config");
    struct bpf_map *thread_states = bpf_object__find_map_by_name(bpf->object, "thread_states");
    struct bpf_map *stack_ends = bpf_object__find_map_by_name(bpf->object, "stack_ends");
    struct bpf_map *lost = bpf_object__find_map_by_name(bpf->object, "lost");
    if (!bpf->program || !samples || !config || !thread_states || !stack_ends || !lost) {
        fail(error, ENOENT, message, message_size);
        pytap_bpf_close(bpf);
        return NULL;
    }
    bpf->config_fd = bpf_map__fd(config);
    bpf->thread_states_fd = bpf_map__fd(thread_states);
    bpf->stack_ends_fd = bpf_map__fd(stack_ends);
    bpf->lost_fd = bpf_map__fd(lost);
    if (off_cpu_threads > 0) {
        bpf->off_cpu_fd = bpf_map__fd(off_cpu);
        bpf->off_cpu_sequence_fd = bpf_map__fd(off_cpu_sequence);
        bpf->switch_link = bpf_program__attach_raw_tracepoint(on_switch, "sched_switch");
        if (!bpf->switch_link) { fail(error, errno, message, message_size); pytap_bpf_close(bpf); return NULL; }
    }
    bpf->ring = ring_buffer__new(bpf_map__fd(samples), on_record, bpf, NULL);
    if (!bpf->ring) { fail(error, errno, message, message_size); pytap_bpf_close(bpf); return NULL; }
    return bpf;
}

int pytap_bpf_configure(struct pytap_bpf *bpf, const struct pytap_config *config) {
    unsigned int key = 0;
    return bpf_map_update_elem(bpf->config_fd, &key, config, BPF_ANY) ? -errno : 0;
}

int pytap_bpf_set_thread_state(struct pytap_bpf *bpf, unsigned int tid, unsigned long long thread_state) {
    return bpf_map_update_elem(bpf->thread_states_fd, &tid, &thread_state, BPF_ANY) ? -errno : 0;
}

int pytap_bpf_forget_thread_state(struct pytap_bpf *bpf, unsigned int tid) {
    return bpf_map_delete_elem(bpf->thread_states_fd, &tid) ? -errno : 0;
}

int pytap_bpf_set_stack_end(struct pytap_bpf *bpf, unsigned int tid, unsigned long long stack_end) {
    return bpf_map_update_elem(bpf->stack_ends_fd, &tid, &stack_end, BPF_ANY) ? -errno : 0;
}

int pytap_bpf_forget_stack_end(struct pytap_bpf *bpf, unsigned int tid) {
    return bpf_map_delete_elem(bpf->stack_ends_fd, &tid) ? -errno : 0;
}

int pytap_bpf_track_off_cpu(struct pytap_bpf *bpf, unsigned int tid) {
    if (bpf->off_cpu_fd < 0) return -EINVAL;
    static struct pytap_sample empty;
    unsigned long long zero = 0;
    // The sequence first: the program writes only entries that have both.
    if (bpf_map_update_elem(bpf->off_cpu_sequence_fd, &tid, &zero, BPF_NOEXIST) && errno != EEXIST) return -errno;
    if (bpf_map_update_elem(bpf->off_cpu_fd, &tid, &empty, BPF_NOEXIST) && errno != EEXIST) {
        int code = -errno;
        bpf_map_delete_elem(bpf->off_cpu_sequence_fd, &tid);
        return code;
    }
    return 0;
}

void pytap_bpf_forget_off_cpu(struct pytap_bpf *bpf, unsigned int tid) {
    if (bpf->off_cpu_fd < 0) return;
    bpf_map_delete_elem(bpf->off_cpu_fd, &tid);
    bpf_map_delete_elem(bpf->off_cpu_sequence_fd, &tid);
}

long long pytap_bpf_off_cpu_sequence(struct pytap_bpf *bpf, unsigned int tid) {
    unsigned long long sequence = 0;
    if (bpf->off_cpu_sequence_fd < 0 || bpf_map_lookup_elem(bpf->off_cpu_sequence_fd, &tid, &sequence)) return -1;
    return (long long)(sequence & 0x3fffffffffffffffULL);
}

long long pytap_bpf_read_off_cpu(struct pytap_bpf *bpf, unsigned int tid, void *record) {
    // A sequence lock: the copy is whole when the count was even before and unchanged after.
    long long before = pytap_bpf_off_cpu_sequence(bpf, tid);
    if (before <= 0 || (before & 1)) return before == 0 ? 0 : -1;
    if (bpf_map_lookup_elem(bpf->off_cpu_fd, &tid, record)) return -1;
    return pytap_bpf_off_cpu_sequence(bpf, tid) == before ? before : -1;
}

int pytap_bpf_attach_thread(struct pytap_bpf *bpf, int tid, unsigned long long frequency) {
    struct perf_event_attr attributes;
    memset(&attributes, 0, sizeof attributes);
    attributes.size = sizeof attributes;
    attributes.type = PERF_TYPE_SOFTWARE;
    attributes.config = PERF_COUNT_SW_TASK_CLOCK;
    attributes.freq = 1;
    attributes.sample_freq = frequency;
    int fd = (int)syscall(SYS_perf_event_open, &attributes, tid, -1, -1, PERF_FLAG_FD_CLOEXEC);
    if (fd < 0) return -errno;
    struct bpf_link *link = bpf_program__attach_perf_event(bpf->program, fd);
    if (!link) {
        int code = -errno;
        close(fd);
        return code;
    }
    if (bpf->attached_count == bpf->attached_capacity) {
        size_t capacity = bpf->attached_capacity ? bpf->attached_capacity * 2 : 16;
        struct pytap_attached *grown = realloc(bpf->attached, capacity * sizeof *grown);
        if (!grown) {
            bpf_link__destroy(link);
            close(fd);
            return -ENOMEM;
        }
        bpf->attached = grown;
        bpf->attached_capacity = capacity;
    }
    bpf->attached[bpf->attached_count++] = (struct pytap_attached){ .tid = tid, .perf_fd = fd, .link = link };
    return 0;
}

void pytap_bpf_detach_thread(struct pytap_bpf *bpf, int tid) {
    for (size_t i = 0; i < bpf->attached_count; i++) {
        if (bpf->attached[i].tid != tid) continue;
        bpf_link__destroy(bpf->attached[i].link);
        close(bpf->attached[i].perf_fd);
        bpf->attached[i] = bpf->attached[--bpf->attached_count];
        return;
    }
}

int pytap_bpf_poll(struct pytap_bpf *bpf, int timeout_ms, pytap_sample_handler handler, void *context) {
    bpf->handler = handler;
    bpf->handler_context = context;
    // The program submits quietly (no wakeup per sample): samples waiting are read first,
    // without sleeping, and read after the wait whether or not it ended with a wakeup.
    int result = ring_buffer__consume(bpf->ring);
    if (result == 0) {
        result = ring_buffer__poll(bpf->ring, timeout_ms);
        if (result >= 0) {
            int more = ring_buffer__consume(bpf->ring);
            result = more < 0 ? more : result + more;
        }
    }
    bpf->handler = NULL;
    // EINTR: a signal (Ctrl-C); a handler's stop comes back as its own negative value.
    return result < 0 && result != -ENOMEM && result != -EBADF && result != -EINVAL ? 0 : result;
}

unsigned long long pytap_bpf_lost(struct pytap_bpf *bpf) {
    unsigned int key = 0;
    unsigned long long count = 0;
    bpf_map_lookup_elem(bpf->lost_fd, &key, &count);
    return count;
}

void pytap_bpf_close(struct pytap_bpf *bpf) {
    if (!bpf) return;
    for (size_t i = 0; i < bpf->attached_count; i++) {
        bpf_link__destroy(bpf->attached[i].link);
        close(bpf->attached[i].perf_fd);
    }
    free(bpf->attached);
    if (bpf->switch_link) bpf_link__destroy(bpf->switch_link);
    if (bpf->ring) ring_buffer__free(bpf->ring);
    if (bpf->object) bpf_object__close(bpf->object);
    free(bpf);
}
