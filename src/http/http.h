/* http.h -- a small HTTP/1.1 server on a libuv loop, over libh2o.
 *
 * The stage serves its metrics, health, API and dashboard from the loop it
 * already runs (SPEC: one process, observable). Handlers are plain
 * functions that fill a response; they run on the loop thread and must not
 * block. Routes match by path prefix, longest first (h2o's path matching);
 * only GET and HEAD are answered. h2o routes by the normalized path (dot
 * segments resolved, unreserved escapes decoded); a request whose raw path
 * does not start with the route's prefix as well gets a 404, so a handler
 * never parses a path it was not routed by. Every response closes its connection
 * (no keep-alive), so a stopping process is never held up by a browser;
 * the clients are dashboards and scrapers polling once a second or less.
 * HTTP/1.x only: the HTTP/2 preface is refused (the connection closed) and
 * "Upgrade: h2c" ignored. A connection that has not sent its whole request
 * within 3 s is closed. The loop thread gets SIGPIPE blocked (a write to a
 * reset peer is an EPIPE, not the end of the process).
 */
#ifndef FS_HTTP_H
#define FS_HTTP_H

#include <stddef.h>

#include <uv.h>

#include "buf.h"
#include "request.h" /* fs_http_request, fs_http_unescape, fs_http_query_param */

typedef struct fs_http_response {
    int status;               /* 200 unless the handler says otherwise */
    const char *content_type; /* default "text/plain; charset=utf-8" */
    fs_buf body;
} fs_http_response;

typedef void (*fs_http_handler)(void *ctx, const fs_http_request *req, fs_http_response *res);

typedef struct fs_http_route {
    const char *prefix; /* "/metrics", "/api/journeys/", "/" */
    fs_http_handler fn;
    void *ctx;
} fs_http_route;

typedef struct fs_http fs_http;

/* listen: "host:port" as http.listen takes it (fs_config_parse_listen: IPv4,
 * [IPv6] or localhost); port 0 picks a free one. Returns
 * NULL with a message in err. */
fs_http *fs_http_start(uv_loop_t *loop, const char *listen, const fs_http_route *routes,
                       size_t n_routes, char *err, size_t err_len);
/* The port actually bound. */
int fs_http_port(const fs_http *h);
/* Stops accepting and ends every open connection (shutdown(2): idle ones,
 * half-read requests, responses being written); the loop then runs their
 * close callbacks, and the last one disposes h2o's context, so the loop can
 * end. Returns at once; idempotent. */
void fs_http_stop(fs_http *h);
/* The connections accepted and not closed yet (0 for NULL). */
size_t fs_http_open_connections(const fs_http *h);
/* After the loop has ended. */
void fs_http_free(fs_http *h);

#endif
