// The floor for tund's count mode: the least a program can do with a TUN device. Attaches QUEUES
// descriptors to an existing tun (IFF_MULTI_QUEUE with "mq"), one thread per queue doing plain read()
// into one buffer, for SECS seconds, and prints what it read and the CPU it took per packet.
//
//   usage: tunread IFNAME QUEUES SECS [mq]
//   prints: "queue I: pkts=N bytes=N" per queue, then
//           "RESULT read_pkts=N read_bytes=N secs=S read_pps=N cpu_s=S ns_cpu_per_pkt=N"
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

enum { MAX_QUEUES = 16 };

struct queue {
    int fd;
    double deadline;
    uint64_t packets, bytes;
    pthread_t thread;
};

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int attach(const char *name, int multi_queue) {
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0) { perror("open /dev/net/tun"); exit(1); }
    struct ifreq request;
    memset(&request, 0, sizeof request);
    request.ifr_flags = IFF_TUN | IFF_NO_PI | (multi_queue ? IFF_MULTI_QUEUE : 0);
    snprintf(request.ifr_name, IFNAMSIZ, "%s", name);
    if (ioctl(fd, TUNSETIFF, &request) < 0) { perror("TUNSETIFF"); exit(1); }
    return fd;
}

// Blocking read() is the point; poll() with a short timeout only lets the thread see the deadline
// when no traffic comes.
static void *read_queue(void *argument) {
    struct queue *queue = argument;
    static __thread unsigned char buffer[65536];
    while (now_seconds() < queue->deadline) {
        struct pollfd ready = { .fd = queue->fd, .events = POLLIN };
        if (poll(&ready, 1, 100) <= 0) continue;
        for (;;) {
            ssize_t n = read(queue->fd, buffer, sizeof buffer);
            if (n < 0) break;  // EAGAIN: back to poll (the descriptor is non-blocking below)
            queue->packets++;
            queue->bytes += (uint64_t)n;
            if ((queue->packets & 1023) == 0 && now_seconds() >= queue->deadline) break;
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: %s IFNAME QUEUES SECS [mq]\n", argv[0]); return 2; }
    int count = atoi(argv[2]);
    double seconds = atof(argv[3]);
    int multi_queue = argc > 4 && strcmp(argv[4], "mq") == 0;
    if (count < 1 || count > MAX_QUEUES || (count > 1 && !multi_queue) || seconds <= 0 || seconds > 3600) {
        fprintf(stderr, "QUEUES must be 1..%d (more than 1 needs mq), SECS 0..3600\n", MAX_QUEUES);
        return 2;
    }
    struct queue queues[MAX_QUEUES];
    double started = now_seconds();
    for (int i = 0; i < count; i++) {
        queues[i] = (struct queue){ .fd = attach(argv[1], multi_queue), .deadline = started + seconds };
        fcntl(queues[i].fd, F_SETFL, fcntl(queues[i].fd, F_GETFL) | O_NONBLOCK);
    }
    printf("attached %d queue(s) to %s (mq=%d) for %.1f s\n", count, argv[1], multi_queue, seconds);
    fflush(stdout);
    for (int i = 0; i < count; i++) pthread_create(&queues[i].thread, NULL, read_queue, &queues[i]);
    uint64_t packets = 0, bytes = 0;
    for (int i = 0; i < count; i++) {
        pthread_join(queues[i].thread, NULL);
        printf("queue %d: pkts=%llu bytes=%llu\n", i, (unsigned long long)queues[i].packets, (unsigned long long)queues[i].bytes);
        packets += queues[i].packets;
        bytes += queues[i].bytes;
    }
    double elapsed = now_seconds() - started;
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    double cpu = usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6 + usage.ru_stime.tv_sec + usage.ru_stime.tv_usec / 1e6;
    printf("RESULT read_pkts=%llu read_bytes=%llu secs=%.3f read_pps=%.0f cpu_s=%.3f ns_cpu_per_pkt=%.0f\n",
           (unsigned long long)packets, (unsigned long long)bytes, elapsed, packets / elapsed, cpu,
           packets ? cpu * 1e9 / packets : 0.0);
    return 0;
}
