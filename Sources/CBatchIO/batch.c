#define _GNU_SOURCE
#include <stddef.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <stdint.h>
#include <unistd.h>
#include "CBatchIO.h"

_Static_assert(sizeof(struct tund_mmsghdr) == sizeof(struct mmsghdr), "mmsghdr layout");
_Static_assert(offsetof(struct tund_mmsghdr, msg_len) == offsetof(struct mmsghdr, msg_len), "mmsghdr layout");

int tund_sendmmsg(int fd, struct tund_mmsghdr *messages, unsigned int count, int flags) {
    return sendmmsg(fd, (struct mmsghdr *)messages, count, flags);
}

int tund_recvmmsg(int fd, struct tund_mmsghdr *messages, unsigned int count, int flags) {
    return recvmmsg(fd, (struct mmsghdr *)messages, count, flags, NULL);
}

void tund_set_thread_name(const char *name) {
    char shortened[16];
    strncpy(shortened, name, sizeof shortened - 1);
    shortened[sizeof shortened - 1] = 0;
    pthread_setname_np(pthread_self(), shortened);
}

int tund_epoll_create(void) {
    return epoll_create1(EPOLL_CLOEXEC);
}

int tund_epoll_add(int epfd, int fd, unsigned long long token) {
    struct epoll_event event = { .events = EPOLLIN, .data.u64 = token };
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &event);
}

int tund_epoll_remove(int epfd, int fd) {
    return epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
}

int tund_epoll_wait(int epfd, unsigned long long *tokens, int max, int timeout_ms) {
    struct epoll_event events[64];
    if (max > 64) max = 64;
    int ready = epoll_wait(epfd, events, max, timeout_ms);
    for (int i = 0; i < ready; i++) tokens[i] = events[i].data.u64;
    return ready;
}

void tund_counter_add(unsigned long long *slot, unsigned long long amount) {
    __atomic_store_n(slot, __atomic_load_n(slot, __ATOMIC_RELAXED) + amount, __ATOMIC_RELAXED);
}

unsigned long long tund_counter_load(const unsigned long long *slot) {
    return __atomic_load_n(slot, __ATOMIC_RELAXED);
}

void tund_counter_store(unsigned long long *slot, unsigned long long value) {
    __atomic_store_n(slot, value, __ATOMIC_RELAXED);
}

// The fences are those of Boehm's "Can seqlocks get along with programming language memory models?":
// relaxed data, release after the odd store, acquire before the reader's second look. On x86 they cost
// nothing but the compiler's ordering.
void tund_counters_write_begin(unsigned long long *sequence) {
    __atomic_store_n(sequence, __atomic_load_n(sequence, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
}

void tund_counters_write_end(unsigned long long *sequence) {
    __atomic_store_n(sequence, __atomic_load_n(sequence, __ATOMIC_RELAXED) + 1, __ATOMIC_RELEASE);
}

unsigned long long tund_counters_read_begin(const unsigned long long *sequence) {
    return __atomic_load_n(sequence, __ATOMIC_ACQUIRE);
}

bool tund_counters_read_valid(const unsigned long long *sequence, unsigned long long begun) {
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    return (begun & 1) == 0 && __atomic_load_n(sequence, __ATOMIC_RELAXED) == begun;
}

int tund_timerfd_create(void) {
    return timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
}

int tund_timerfd_arm(int fd, unsigned long long monotonic_ns) {
    struct itimerspec spec = { 0 };
    if (monotonic_ns != 0) {
        spec.it_value.tv_sec = (time_t)(monotonic_ns / 1000000000ULL);
        spec.it_value.tv_nsec = (long)(monotonic_ns % 1000000000ULL);
    }
    return timerfd_settime(fd, TFD_TIMER_ABSTIME, &spec, NULL);
}

void tund_timerfd_drain(int fd) {
    uint64_t expirations;
    ssize_t ignored = read(fd, &expirations, sizeof expirations);
    (void)ignored;
}
