// The few VFIO ioctls, pidfd and perf system calls VFIOWatch needs, as plain functions.
// Swift cannot see <linux/vfio.h>'s _IO() macros, nor call the variadic ioctl(2) and
// syscall(2); these wrappers return -1 with errno set on failure, like the calls they wrap.
#ifndef CVFIO_SHIM_H
#define CVFIO_SHIM_H

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#include <linux/vfio.h>
#include <linux/perf_event.h>

static const unsigned int cvfio_err_irq_index = VFIO_PCI_ERR_IRQ_INDEX;

// pidfd_open(2), Linux 5.3.
static inline int cvfio_pidfd_open(pid_t pid) {
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

// pidfd_getfd(2), Linux 5.6: a new fd (close-on-exec) for the target's open file.
static inline int cvfio_pidfd_getfd(int pidfd, int target_fd) {
    return (int)syscall(SYS_pidfd_getfd, pidfd, target_fd, 0);
}

// VFIO_GROUP_GET_DEVICE_FD: opens the named device of the group (close-on-exec).
static inline int cvfio_group_get_device_fd(int group_fd, const char *device_name) {
    return ioctl(group_fd, VFIO_GROUP_GET_DEVICE_FD, device_name);
}

// VFIO_DEVICE_GET_IRQ_INFO: how many interrupts the device has at `index`.
static inline int cvfio_irq_count(int device_fd, unsigned int index, uint32_t *count) {
    struct vfio_irq_info info;
    memset(&info, 0, sizeof info);
    info.argsz = sizeof info;
    info.index = index;
    if (ioctl(device_fd, VFIO_DEVICE_GET_IRQ_INFO, &info) != 0) return -1;
    *count = info.count;
    return 0;
}

// VFIO_DEVICE_SET_IRQS, DATA_EVENTFD | ACTION_TRIGGER, start 0, count 1: `eventfd`
// becomes the interrupt's trigger, replacing any other; -1 removes the trigger.
static inline int cvfio_set_irq_trigger(int device_fd, unsigned int index, int32_t eventfd) {
    // vfio_irq_set ends in a flexible array: the one eventfd follows the header.
    uint32_t storage[(sizeof(struct vfio_irq_set) + sizeof(int32_t) + 3) / 4];
    struct vfio_irq_set *set = (struct vfio_irq_set *)storage;
    memset(storage, 0, sizeof storage);
    set->argsz = sizeof(struct vfio_irq_set) + sizeof(int32_t);
    set->flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
    set->index = index;
    set->start = 0;
    set->count = 1;
    memcpy(set->data, &eventfd, sizeof eventfd);
    return ioctl(device_fd, VFIO_DEVICE_SET_IRQS, set);
}

// perf_event_open(2) for one tracepoint on one CPU, system-wide (pid -1): every hit is
// sampled (period 1) with its CLOCK_MONOTONIC time and its raw record, and wakes a
// poller per record, as an error must be seen at once. perf_event_attr is full of
// bitfields Swift cannot set.
static inline int cvfio_perf_open_tracepoint(uint64_t tracepoint_id, int cpu) {
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.type = PERF_TYPE_TRACEPOINT;
    attr.size = sizeof attr;
    attr.config = tracepoint_id;
    attr.sample_period = 1;
    attr.sample_type = PERF_SAMPLE_TIME | PERF_SAMPLE_RAW;
    attr.use_clockid = 1;
    attr.clockid = CLOCK_MONOTONIC;
    attr.wakeup_events = 1;
    return (int)syscall(SYS_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);
}

// The ring's data_head, read with acquire order: the records before it are complete.
static inline uint64_t cvfio_perf_data_head(const void *control_page) {
    const struct perf_event_mmap_page *page = (const struct perf_event_mmap_page *)control_page;
    return __atomic_load_n(&page->data_head, __ATOMIC_ACQUIRE);
}

// Publishes data_tail with release order: the kernel may overwrite what was read.
static inline void cvfio_perf_set_data_tail(void *control_page, uint64_t tail) {
    struct perf_event_mmap_page *page = (struct perf_event_mmap_page *)control_page;
    __atomic_store_n(&page->data_tail, tail, __ATOMIC_RELEASE);
}

#endif
