// The floor for tund's HTTP answers: a minimal libmicrohttpd server that answers every GET with the bytes
// of a file (tund's own `GET /devices/NAME/stats` body, captured once), as `200` with
// `Content-Type: application/json` (libmicrohttpd adds Date and Content-Length, as it does for tund).
//
// The daemon is started exactly as tund starts its own (Sources/CMicroHTTPD/mhd.c, HTTPServer.swift):
// MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME, a listening
// socket opened here (SO_REUSEADDR, backlog 128, as tund's), thread pool THREADS (tund --http-threads,
// default 2), connection limit 256 + 64 (tund's --max-connections plus its headroom), timeout 30 s,
// 64 KiB per-connection memory, and the same callbacks tund registers (completed, unescape, URI log,
// connection notification), each doing the least it can. The response is built once and queued for every
// request: the least any server can do per request.
//
//   usage: mhd_stats BODY_FILE PORT [THREADS] [SECS]   (listens on 127.0.0.1:PORT; exits after SECS, default 600)
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct MHD_Response *answer;
static atomic_long open_connections;

static enum MHD_Result access_handler(void *cls, struct MHD_Connection *connection, const char *url,
                                      const char *method, const char *version, const char *upload_data,
                                      size_t *upload_data_size, void **request_context) {
    (void)cls; (void)url; (void)method; (void)version; (void)upload_data;
    // As tund: the first call (headers only) answers nothing, body chunks are consumed, and the last call
    // queues the answer. Queued on the first call, libmicrohttpd would close the connection after it.
    static int started;
    if (*request_context == NULL) { *request_context = &started; return MHD_YES; }
    if (*upload_data_size != 0) { *upload_data_size = 0; return MHD_YES; }
    return MHD_queue_response(connection, MHD_HTTP_OK, answer);
}

static void completed(void *cls, struct MHD_Connection *connection, void **request_context,
                      enum MHD_RequestTerminationCode code) {
    (void)cls; (void)connection; (void)code;
    *request_context = NULL;
}

static size_t keep_escaped(void *cls, struct MHD_Connection *connection, char *text) {
    (void)cls; (void)connection;
    return strlen(text);
}

static void *uri_logger(void *cls, const char *uri, struct MHD_Connection *connection) {
    (void)cls; (void)uri; (void)connection;
    return NULL;
}

static void notify_connection(void *cls, struct MHD_Connection *connection, void **socket_context,
                              enum MHD_ConnectionNotificationCode code) {
    (void)cls; (void)connection; (void)socket_context;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) atomic_fetch_add(&open_connections, 1);
    else atomic_fetch_sub(&open_connections, 1);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s BODY_FILE PORT [THREADS] [SECS]\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[2]);
    unsigned int threads = argc > 3 ? (unsigned int)atoi(argv[3]) : 2;
    unsigned int seconds = argc > 4 ? (unsigned int)atoi(argv[4]) : 600;
    if (port <= 0 || port > 65535 || threads < 1 || threads > 64 || seconds < 1) {
        fprintf(stderr, "mhd_stats: bad PORT, THREADS or SECS\n");
        return 2;
    }

    FILE *file = fopen(argv[1], "rb");
    if (file == NULL) { perror(argv[1]); return 1; }
    static char body[1 << 20];
    size_t length = fread(body, 1, sizeof body, file);
    fclose(file);
    answer = MHD_create_response_from_buffer(length, body, MHD_RESPMEM_PERSISTENT);
    if (answer == NULL || MHD_add_response_header(answer, "Content-Type", "application/json") != MHD_YES) {
        fprintf(stderr, "mhd_stats: cannot build the response\n");
        return 1;
    }

    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&address, sizeof address) != 0 || listen(fd, 128) != 0) {
        perror("mhd_stats: listen");
        return 1;
    }

    // Blocked before the pool's threads start, so they inherit the mask and main takes the signal.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigprocmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
    struct MHD_Daemon *daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, access_handler, NULL,
        MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_THREAD_POOL_SIZE, threads,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)(256 + 64),
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)30,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
        MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
        MHD_OPTION_UNESCAPE_CALLBACK, keep_escaped, NULL,
        MHD_OPTION_URI_LOG_CALLBACK, uri_logger, NULL,
        MHD_OPTION_NOTIFY_CONNECTION, notify_connection, NULL,
        MHD_OPTION_END);
    if (daemon == NULL) {
        fprintf(stderr, "mhd_stats: MHD_start_daemon failed\n");
        return 1;
    }
    fprintf(stderr, "mhd_stats: serving %zu bytes on 127.0.0.1:%d with %u threads\n", length, port, threads);

    // Until SIGTERM/SIGINT or SECS, whichever comes first.
    struct timespec limit = { .tv_sec = seconds };
    sigtimedwait(&signals, NULL, &limit);
    MHD_stop_daemon(daemon);
    MHD_destroy_response(answer);
    close(fd);
    return 0;
}
