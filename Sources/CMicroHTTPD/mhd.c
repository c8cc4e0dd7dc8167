#include "CMicroHTTPD.h"
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* libmicrohttpd's own diagnostics (accept failures, TLS handshake errors) go to stderr, one line each. */
static void tund_mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t length = strlen(line);
    while (length > 0 && (line[length - 1] == '\n' || line[length - 1] == '\r')) line[--length] = 0;
    for (size_t i = 0; i < length; i++) if (line[i] == '"') line[i] = '\'';
    fprintf(stderr, "level=warning component=microhttpd msg=\"%s\"\n", line);
}

/* Leave URLs and query strings as sent: the router splits the path on '/' first and decodes each
 * segment after, so "%2F" inside a device name cannot turn into a path separator. */
static size_t tund_mhd_keep_escaped(void *cls, struct MHD_Connection *connection, char *text) {
    (void)cls; (void)connection;
    return strlen(text);
}

struct MHD_Daemon *tund_mhd_start(const struct tund_mhd_options *o,
                                  MHD_AccessHandlerCallback handler, void *handler_cls,
                                  MHD_RequestCompletedCallback completed, void *completed_cls,
                                  tund_uri_logger uri_logger, void *uri_logger_cls,
                                  MHD_NotifyConnectionCallback connections, void *connections_cls) {
    /* Suspend/resume lets a streaming response (server-sent events, capture) wait without a thread. */
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
    int tls = o->tls_cert_pem != NULL && o->tls_key_pem != NULL;
    if (tls) flags |= MHD_USE_TLS;
    /* The logger must come first, or MHD's default logger reports the options before it. */
    struct MHD_OptionItem items[] = {
        { MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)tund_mhd_log, NULL },
        { MHD_OPTION_LISTEN_SOCKET, (intptr_t)o->listen_fd, NULL },
        { MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)o->thread_pool_size, NULL },
        { MHD_OPTION_CONNECTION_LIMIT, (intptr_t)o->connection_limit, NULL },
        { MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)o->connection_timeout_seconds, NULL },
        { MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)o->connection_memory_limit, NULL },
        { MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)completed, completed_cls },
        { MHD_OPTION_UNESCAPE_CALLBACK, (intptr_t)tund_mhd_keep_escaped, NULL },
        { MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)uri_logger, uri_logger_cls },
        { MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)connections, connections_cls },
        { tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, (void *)o->tls_cert_pem },
        { tls ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, (void *)o->tls_key_pem },
        { MHD_OPTION_END, 0, NULL },
    };
    return MHD_start_daemon(flags, 0, NULL, NULL, handler, handler_cls, MHD_OPTION_ARRAY, items, MHD_OPTION_END);
}

int tund_mhd_supports_tls(void) {
    return MHD_is_feature_supported(MHD_FEATURE_TLS) == MHD_YES;
}

int tund_mhd_connection_fd(struct MHD_Connection *connection) {
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    return info == NULL ? -1 : (int)info->connect_fd;
}
