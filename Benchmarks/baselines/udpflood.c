// The load for the count-mode benchmark: UDP datagrams as fast as one thread can hand them to the
// kernel, with sendmmsg() in batches, spread over FLOWS source ports (so a multi-queue tun spreads them).
//
//   usage: udpflood DST_IPV4 PORT PAYLOAD_BYTES SECS [FLOWS=1] [BATCH=64]
//   prints: "RESULT sent_pkts=N errors=N secs=S sent_pps=N payload=N flows=N batch=N cpu_s=S ns_cpu_per_pkt=N"
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { MAX_FLOWS = 64, MAX_BATCH = 1024, MAX_PAYLOAD = 65507 };

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 5) { fprintf(stderr, "usage: %s DST_IPV4 PORT PAYLOAD_BYTES SECS [FLOWS] [BATCH]\n", argv[0]); return 2; }
    int payload = atoi(argv[3]), flows = argc > 5 ? atoi(argv[5]) : 1, batch = argc > 6 ? atoi(argv[6]) : 64;
    double seconds = atof(argv[4]);
    if (payload < 0 || payload > MAX_PAYLOAD || flows < 1 || flows > MAX_FLOWS || batch < 1 || batch > MAX_BATCH
        || seconds <= 0 || seconds > 3600) {
        fprintf(stderr, "PAYLOAD 0..%d, SECS 0..3600, FLOWS 1..%d, BATCH 1..%d\n", MAX_PAYLOAD, MAX_FLOWS, MAX_BATCH);
        return 2;
    }
    struct sockaddr_in destination = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2])) };
    if (inet_pton(AF_INET, argv[1], &destination.sin_addr) != 1) { fprintf(stderr, "not an IPv4 address: %s\n", argv[1]); return 2; }

    // One connected socket per flow: each gets its own ephemeral source port.
    int sockets[MAX_FLOWS];
    for (int i = 0; i < flows; i++) {
        sockets[i] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (sockets[i] < 0 || connect(sockets[i], (struct sockaddr *)&destination, sizeof destination) < 0) {
            perror("socket/connect");
            return 1;
        }
    }
    static unsigned char data[MAX_PAYLOAD];
    memset(data, 0x5a, sizeof data);
    static struct iovec vectors[MAX_BATCH];
    static struct mmsghdr messages[MAX_BATCH];
    for (int i = 0; i < batch; i++) {
        vectors[i] = (struct iovec){ .iov_base = data, .iov_len = (size_t)payload };
        messages[i].msg_hdr = (struct msghdr){ .msg_iov = &vectors[i], .msg_iovlen = 1 };
    }

    uint64_t sent = 0, errors = 0;
    double started = now_seconds(), deadline = started + seconds;
    for (unsigned round = 0; now_seconds() < deadline; round++) {
        int n = sendmmsg(sockets[round % flows], messages, batch, 0);
        if (n < 0) errors++; else sent += (uint64_t)n;
    }
    double elapsed = now_seconds() - started;
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    double cpu = usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6 + usage.ru_stime.tv_sec + usage.ru_stime.tv_usec / 1e6;
    printf("RESULT sent_pkts=%llu errors=%llu secs=%.3f sent_pps=%.0f payload=%d flows=%d batch=%d cpu_s=%.3f ns_cpu_per_pkt=%.0f\n",
           (unsigned long long)sent, (unsigned long long)errors, elapsed, sent / elapsed, payload, flows, batch, cpu,
           sent ? cpu * 1e9 / sent : 0.0);
    return 0;
}
