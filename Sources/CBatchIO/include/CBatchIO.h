#ifndef TUND_CBATCHIO_H
#define TUND_CBATCHIO_H
#include <stdbool.h>
#include <sys/socket.h>

/// `struct mmsghdr` as Swift can see it: glibc declares it (and sendmmsg/recvmmsg) only under
/// _GNU_SOURCE, which Swift's Glibc module is built without. Same layout, checked in the .c file.
struct tund_mmsghdr {
    struct msghdr msg_hdr;
    unsigned int msg_len;
};

/// sendmmsg(2): sends up to `count` datagrams in one system call; returns how many, or -1 with errno.
int tund_sendmmsg(int fd, struct tund_mmsghdr *messages, unsigned int count, int flags);

/// recvmmsg(2) without a timeout: receives up to `count` datagrams; returns how many, or -1 with errno.
int tund_recvmmsg(int fd, struct tund_mmsghdr *messages, unsigned int count, int flags);

/// epoll, with a 64-bit token per descriptor (glibc's struct epoll_event is packed, which Swift
/// cannot import safely). Each returns what epoll_ctl/epoll_wait return, -1 with errno.
int tund_epoll_create(void);
int tund_epoll_add(int epfd, int fd, unsigned long long token);
int tund_epoll_remove(int epfd, int fd);
/// Waits for up to `max` ready descriptors and writes their tokens to `tokens`.
int tund_epoll_wait(int epfd, unsigned long long *tokens, int max, int timeout_ms);

/// A CLOCK_MONOTONIC timerfd (non-blocking, close-on-exec) for deadlines a data-plane thread waits on
/// in its epoll set: Swift's Glibc module does not declare <sys/timerfd.h>. -1 with errno on failure.
int tund_timerfd_create(void);
/// Arms `fd` to fire once at `monotonic_ns` (absolute CLOCK_MONOTONIC nanoseconds; a time already past
/// fires at once); 0 disarms. Returns what timerfd_settime returns.
int tund_timerfd_arm(int fd, unsigned long long monotonic_ns);
/// Clears a fired timerfd's expiry count so epoll stops reporting it.
void tund_timerfd_drain(int fd);

/// A counter slot written by one thread and read by others: relaxed atomic load and store (no
/// read-modify-write, no lock), for the data plane's counter table.
void tund_counter_add(unsigned long long *slot, unsigned long long amount);
unsigned long long tund_counter_load(const unsigned long long *slot);
void tund_counter_store(unsigned long long *slot, unsigned long long value);

/// A sequence lock over a counter table, so that a reader sees whole batches: packets_read never runs
/// ahead of the protocol counts of the same packets. The one writer brackets its stores with
/// `tund_counters_write_begin` and `tund_counters_write_end`; a reader takes `tund_counters_read_begin`,
/// loads, and keeps what it loaded only if `tund_counters_read_valid` says no write overlapped.
void tund_counters_write_begin(unsigned long long *sequence);
void tund_counters_write_end(unsigned long long *sequence);
unsigned long long tund_counters_read_begin(const unsigned long long *sequence);
bool tund_counters_read_valid(const unsigned long long *sequence, unsigned long long begun);

/// Names the calling thread (15 bytes at most; longer names are cut), as `top -H` and `perf` show it.
void tund_set_thread_name(const char *name);

#endif
