#include "CMicroHTTPD.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* libmicrohttpd's own diagnostics (accept failures, out of memory) go to stderr, one line each. */
static void tund_mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    fprintf(stderr, "level=warning component=microhttpd message=\"%s\"\n", line);
}

/* Leave URLs and query strings as sent: the router splits the path on '/' first and decodes each
 * segment after, so "%2F" inside a device name cannot turn into a path separator. */
static size_t tund_mhd_keep_escaped(void *cls, struct MHD_Connection *connection, char *text) {
    (void)cls; (void)connection;
    return strlen(text);
}

struct MHD_Daemon *tund_mhd_start(const struct tund_mhd_options *o,
                                  MHD_AccessHandlerCallback handler, void *handler_cls,
                                  MHD_RequestCompletedCallback completed, void *completed_cls) {
    /* Suspend/resume lets a streaming response (server-sent events) wait for data without a thread. */
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
    /* The logger must come first, or MHD's default logger reports the options before it. */
    return MHD_start_daemon(flags, 0, NULL, NULL, handler, handler_cls,
                            MHD_OPTION_EXTERNAL_LOGGER, tund_mhd_log, NULL,
                            MHD_OPTION_LISTEN_SOCKET, (MHD_socket)o->listen_fd,
                            MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)o->thread_pool_size,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned int)o->connection_limit,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)o->connection_timeout_seconds,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)o->connection_memory_limit,
                            MHD_OPTION_NOTIFY_COMPLETED, completed, completed_cls,
                            MHD_OPTION_UNESCAPE_CALLBACK, tund_mhd_keep_escaped, NULL,
                            MHD_OPTION_END);
}
