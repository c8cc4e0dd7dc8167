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
    int listen_fd;                 /* an already bound, listening socket (TCP or Unix) */
    unsigned int thread_pool_size; /* worker threads polling connections */
    unsigned int connection_limit;
    unsigned int connection_timeout_seconds;
    size_t connection_memory_limit; /* per-connection buffer for headers and body chunks */
    const char *tls_cert_pem;       /* both set: serve HTTPS (GnuTLS); both NULL: plain HTTP */
    const char *tls_key_pem;
};

/// `uri_logger` (MHD_OPTION_URI_LOG_CALLBACK) sees each request-target first; what it returns becomes
/// the request's context, and `completed` is then called for every request.
typedef void *(*tund_uri_logger)(void *cls, const char *uri, struct MHD_Connection *connection);

/// `connections` (MHD_OPTION_NOTIFY_CONNECTION) is told of every connection opened and closed.
struct MHD_Daemon *tund_mhd_start(const struct tund_mhd_options *options,
                                  MHD_AccessHandlerCallback handler, void *handler_cls,
                                  MHD_RequestCompletedCallback completed, void *completed_cls,
                                  tund_uri_logger uri_logger, void *uri_logger_cls,
                                  MHD_NotifyConnectionCallback connections, void *connections_cls);

/// 1 when this libmicrohttpd was built with TLS support.
int tund_mhd_supports_tls(void);

/// The connection's socket (MHD_get_connection_info is C-variadic); -1 when MHD does not say.
int tund_mhd_connection_fd(struct MHD_Connection *connection);
#endif
