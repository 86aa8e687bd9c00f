// perf_event_open(2) for uprobes, its ioctls, and process_vm_readv(2), as plain functions
// (Swift cannot call the variadic syscall(2) or see the ioctl request macros).
#pragma once
#include <linux/perf_event.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

// A uprobe perf event on one thread, sampling the user registers in `regs_mask` at every
// hit. Not `inherit`: the kernel refuses to mmap an inherited per-thread event (EINVAL). `config` carries the
// semaphore's ref_ctr_offset at the bit the uprobe PMU's format names; `path` must stay
// alive for the call only (the kernel resolves it at open).
static inline int cperf_uprobe_open(uint32_t pmu_type, const char *path, uint64_t file_offset, uint64_t config,
                                    pid_t tid, uint64_t sample_type, uint64_t regs_mask) {
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.size = sizeof attr;
    attr.type = pmu_type;
    attr.config = config;
    attr.config1 = (uint64_t)(uintptr_t)path;
    attr.config2 = file_offset;
    attr.sample_period = 1;
    attr.sample_type = sample_type;
    attr.sample_regs_user = regs_mask;
    attr.wakeup_events = 1;
    attr.sample_id_all = 1;
    return (int)syscall(SYS_perf_event_open, &attr, tid, -1, -1, PERF_FLAG_FD_CLOEXEC);
}

// A tracepoint perf event (a tracefs uprobe event's `id`) on one thread, carrying the
// record the kernel filled at the hit (PERF_SAMPLE_RAW): what a fetch argument copied out
// of the traced process then, before the process could free it.
static inline int cperf_tracepoint_open(uint64_t id, pid_t tid, uint64_t sample_type) {
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.size = sizeof attr;
    attr.type = PERF_TYPE_TRACEPOINT;
    attr.config = id;
    attr.sample_period = 1;
    attr.sample_type = sample_type;
    attr.wakeup_events = 1;
    attr.sample_id_all = 1;
    return (int)syscall(SYS_perf_event_open, &attr, tid, -1, -1, PERF_FLAG_FD_CLOEXEC);
}

// Sends `fd`'s samples into `target_fd`'s ring (same thread, cpu -1).
static inline int cperf_set_output(int fd, int target_fd) {
    return ioctl(fd, PERF_EVENT_IOC_SET_OUTPUT, target_fd);
}

// The id that PERF_SAMPLE_IDENTIFIER carries for `fd`'s samples.
static inline int cperf_event_id(int fd, uint64_t *id) {
    return ioctl(fd, PERF_EVENT_IOC_ID, id);
}

// Reads `length` bytes of `pid`'s memory at `address`; the count read, or -1 with errno.
static inline ssize_t cperf_read_process_memory(pid_t pid, uint64_t address, void *buffer, size_t length) {
    struct iovec local = { buffer, length };
    struct iovec remote = { (void *)(uintptr_t)address, length };
    return (ssize_t)syscall(SYS_process_vm_readv, pid, &local, 1UL, &remote, 1UL, 0UL);
}

// The ring's head (written by the kernel) and tail (ours), with the barriers
// perf_event_mmap_page asks for.
static inline uint64_t cperf_ring_head(const struct perf_event_mmap_page *page) {
    return __atomic_load_n(&page->data_head, __ATOMIC_ACQUIRE);
}
static inline void cperf_ring_set_tail(struct perf_event_mmap_page *page, uint64_t tail) {
    __atomic_store_n(&page->data_tail, tail, __ATOMIC_RELEASE);
}
static inline uint64_t cperf_ring_data_offset(const struct perf_event_mmap_page *page) { return page->data_offset; }
static inline uint64_t cperf_ring_data_size(const struct perf_event_mmap_page *page) { return page->data_size; }
