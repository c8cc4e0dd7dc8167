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

#endif
