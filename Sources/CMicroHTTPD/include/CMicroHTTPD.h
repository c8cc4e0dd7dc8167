#ifndef TUND_CMICROHTTPD_H
#define TUND_CMICROHTTPD_H
#include <stddef.h>
#include <sys/types.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <microhttpd.h>

/// Options for `tund_mhd_start`, passed as a struct because MHD_start_daemon is C-variadic, and a
/// variadic call from Swift silently breaks when one argument has the wrong width.
struct tund_mhd_options {
    int listen_fd;                 /* an already bound, listening socket */
    unsigned int thread_pool_size; /* worker threads polling connections */
    unsigned int connection_limit;
    unsigned int connection_timeout_seconds;
    size_t connection_memory_limit; /* per-connection buffer for headers and body chunks */
};

struct MHD_Daemon *tund_mhd_start(const struct tund_mhd_options *options,
                                  MHD_AccessHandlerCallback handler, void *handler_cls,
                                  MHD_RequestCompletedCallback completed, void *completed_cls);

#endif
