// Linux UAPI for TunKit, in one module: when two modules include these headers, a file that imports only
// one of them may not see every constant. Function-like macros (_IOW) are re-exported as constants.
#ifndef TUND_CLINUX_H
#define TUND_CLINUX_H

#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/eventfd.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/if_link.h>
#include <linux/if_addr.h>
#include <linux/if_arp.h>
#include <linux/neighbour.h>

static const unsigned long TUND_TUNSETIFF = TUNSETIFF;
static const unsigned long TUND_TUNSETPERSIST = TUNSETPERSIST;
static const unsigned long TUND_TUNSETOWNER = TUNSETOWNER;
static const unsigned long TUND_TUNSETGROUP = TUNSETGROUP;
static const unsigned long TUND_TUNGETIFF = TUNGETIFF;
static const unsigned long TUND_TUNSETOFFLOAD = TUNSETOFFLOAD;

static const unsigned short TUND_IFF_TUN = IFF_TUN;
static const unsigned short TUND_IFF_TAP = IFF_TAP;
static const unsigned short TUND_IFF_NO_PI = IFF_NO_PI;
static const unsigned short TUND_IFF_MULTI_QUEUE = IFF_MULTI_QUEUE;
static const unsigned short TUND_IFF_TUN_EXCL = IFF_TUN_EXCL;
static const unsigned short TUND_IFF_VNET_HDR = IFF_VNET_HDR;

/// TUNSETIFF on `fd` with `name` (may be empty: the kernel picks one) and `flags`; on success the
/// kernel's name for the device is copied to `name_out` (IFNAMSIZ bytes). Returns 0 or -1 with errno.
/// A C function because `struct ifreq` is a union of unions that Swift sees as nested tuples.
int tund_tun_set_iff(int fd, const char *name, unsigned short flags, char *name_out);

/// TUNGETIFF: the device name and flags the descriptor is attached to. Returns 0 or -1 with errno.
int tund_tun_get_iff(int fd, char *name_out, unsigned short *flags_out);

/// open(path, flags) or socket(domain, type, protocol) as if called inside the network namespace `netns_fd`
/// (a descriptor of /run/netns/NAME or /proc/PID/ns/net): from a short-lived thread that joins it with
/// setns(CLONE_NEWNET) first. What such a descriptor belongs to stays with it: /dev/net/tun creates and
/// finds devices in that namespace, a netlink socket talks to its stack, /proc/sys/net shows its
/// settings. The calling thread's own namespace never changes. Returns the descriptor, or -1 with errno.
int tund_netns_open(int netns_fd, const char *path, int flags);
int tund_netns_socket(int netns_fd, int domain, int type, int protocol);

#endif
