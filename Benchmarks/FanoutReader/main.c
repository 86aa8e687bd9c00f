// The fan-out bench's reader: one process, one epoll over every client socket, so the
// readers never limit the figure (100 blocking reader threads on 2 cores did).
//
// qmp-broker-fanout-reader CONTROL_FD CLIENTS EVENTS BROKER_SOCKET FIRST_PAIR_FD
//   group 'a': CLIENTS connections to BROKER_SOCKET, each negotiated (greeting read,
//              qmp_capabilities answered) before the reader says "ready";
//   group 'b': CLIENTS inherited socketpair ends at FIRST_PAIR_FD, FIRST_PAIR_FD + 1, ...
// Each byte 'a' or 'b' on CONTROL_FD starts a round: the reader then counts complete lines
// on that group and, once every client has EVENTS more, writes "<group> <ns>\n" with the
// CLOCK_MONOTONIC time of the read that completed the round (the bench's clock too).
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

enum { MAX_CLIENTS = 1024 };

struct group {
    int fds[MAX_CLIENTS];
    long lines[MAX_CLIENTS];  // complete lines read, all rounds together
    long target;              // lines per client by the end of the current round
    long complete;            // clients that have reached `target`
    int running;
};

static struct group groups[2];
static int clients;

static void fail(const char *what) {
    fprintf(stderr, "fanout-reader: %s: %s\n", what, strerror(errno));
    exit(1);
}

static uint64_t now_ns(void) {
    struct timespec spec;
    clock_gettime(CLOCK_MONOTONIC, &spec);
    return (uint64_t)spec.tv_sec * 1000000000u + (uint64_t)spec.tv_nsec;
}

// Blocking: reads until `want` newlines have arrived (the QMP handshake is line by line).
static void read_lines(int fd, int want) {
    char byte;
    while (want > 0) {
        ssize_t count = read(fd, &byte, 1);
        if (count <= 0) fail("handshake read");
        if (byte == '\n') want--;
    }
}

static int negotiated_client(const char *path) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) fail("socket");
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    strncpy(address.sun_path, path, sizeof address.sun_path - 1);
    if (connect(fd, (struct sockaddr *)&address, sizeof address) != 0) fail("connect");
    read_lines(fd, 1);
    static const char capabilities[] = "{\"execute\": \"qmp_capabilities\"}\r\n";
    if (write(fd, capabilities, sizeof capabilities - 1) != (ssize_t)(sizeof capabilities - 1)) fail("write");
    read_lines(fd, 1);
    return fd;
}

static void watch(int epoll, int fd, uint64_t tag) {
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    struct epoll_event event = {.events = EPOLLIN, .data.u64 = tag};
    if (epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event) != 0) fail("epoll_ctl");
}

static void report(int control, int group, uint64_t at) {
    char text[64];
    int length = snprintf(text, sizeof text, "%c %llu\n", 'a' + group, (unsigned long long)at);
    if (write(control, text, (size_t)length) != length) fail("control write");
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s CONTROL_FD CLIENTS EVENTS BROKER_SOCKET FIRST_PAIR_FD\n", argv[0]);
        return 2;
    }
    int control = atoi(argv[1]);
    clients = atoi(argv[2]);
    long events = atol(argv[3]);
    int first_pair = atoi(argv[5]);
    if (clients <= 0 || clients > MAX_CLIENTS) return 2;
    int epoll = epoll_create1(EPOLL_CLOEXEC);
    if (epoll < 0) fail("epoll_create1");
    for (int index = 0; index < clients; index++) {
        groups[0].fds[index] = negotiated_client(argv[4]);
        groups[1].fds[index] = first_pair + index;
        for (int group = 0; group < 2; group++) watch(epoll, groups[group].fds[index], (uint64_t)group << 32 | (uint64_t)index);
    }
    watch(epoll, control, UINT64_MAX);
    if (write(control, "ready\n", 6) != 6) fail("control write");

    static char buffer[1 << 16];
    struct epoll_event ready[256];
    for (;;) {
        int count = epoll_wait(epoll, ready, 256, -1);
        if (count < 0 && errno == EINTR) continue;
        if (count < 0) fail("epoll_wait");
        for (int slot = 0; slot < count; slot++) {
            uint64_t tag = ready[slot].data.u64;
            if (tag == UINT64_MAX) {
                ssize_t got = read(control, buffer, sizeof buffer);
                if (got <= 0) return 0;  // the bench is done
                // Counts run on across rounds: lines that beat the control byte still count.
                for (ssize_t at = 0; at < got; at++) {
                    int which = buffer[at] == 'b';
                    struct group *round = &groups[which];
                    round->target += events;
                    round->complete = 0;
                    for (int index = 0; index < clients; index++) round->complete += round->lines[index] >= round->target;
                    round->running = 1;
                    if (round->complete == clients) {
                        report(control, which, now_ns());
                        round->running = 0;
                    }
                }
                continue;
            }
            struct group *group = &groups[tag >> 32];
            int index = (int)(tag & 0xffffffffu);
            for (;;) {
                ssize_t got = read(group->fds[index], buffer, sizeof buffer);
                if (got < 0 && errno == EAGAIN) break;
                if (got == 0) return 0;  // the bench ended the broker or the pairs: done
                if (got < 0) fail("client read");
                uint64_t at = now_ns();
                long before = group->lines[index];
                for (char *line = buffer, *end = buffer + got; (line = memchr(line, '\n', (size_t)(end - line))); line++)
                    group->lines[index]++;
                if (group->running && before < group->target && group->lines[index] >= group->target
                    && ++group->complete == clients) {
                    report(control, (int)(tag >> 32), at);
                    group->running = 0;
                }
            }
        }
    }
}
