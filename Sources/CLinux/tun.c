#define _GNU_SOURCE  // setns
#include "CLinux.h"
#include <string.h>

int tund_tun_set_iff(int fd, const char *name, unsigned short flags, char *name_out) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    ifr.ifr_flags = (short)flags;
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) return -1;
    memcpy(name_out, ifr.ifr_name, IFNAMSIZ);
    name_out[IFNAMSIZ - 1] = 0;
    return 0;
}

int tund_tun_get_iff(int fd, char *name_out, unsigned short *flags_out) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    if (ioctl(fd, TUNGETIFF, &ifr) < 0) return -1;
    memcpy(name_out, ifr.ifr_name, IFNAMSIZ);
    name_out[IFNAMSIZ - 1] = 0;
    *flags_out = (unsigned short)ifr.ifr_flags;
    return 0;
}

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

struct netns_call {
    int netns_fd;
    const char *path;
    int flags;
    int domain, type, protocol;
    int result;
    int error;
};

static void *netns_call_run(void *argument) {
    struct netns_call *call = argument;
    // setns changes only this thread, which ends right after: no other code ever runs in the namespace.
    if (setns(call->netns_fd, CLONE_NEWNET) < 0) {
        call->result = -1;
        call->error = errno;
        return NULL;
    }
    call->result = call->path ? open(call->path, call->flags) : socket(call->domain, call->type, call->protocol);
    call->error = call->result < 0 ? errno : 0;
    return NULL;
}

static int netns_call(struct netns_call *call) {
    pthread_t thread;
    int failed = pthread_create(&thread, NULL, netns_call_run, call);
    if (failed) {
        errno = failed;
        return -1;
    }
    pthread_join(thread, NULL);
    errno = call->error;
    return call->result;
}

int tund_netns_open(int netns_fd, const char *path, int flags) {
    struct netns_call call = {.netns_fd = netns_fd, .path = path, .flags = flags};
    return netns_call(&call);
}

int tund_netns_socket(int netns_fd, int domain, int type, int protocol) {
    struct netns_call call = {.netns_fd = netns_fd, .path = NULL, .domain = domain, .type = type, .protocol = protocol};
    return netns_call(&call);
}
