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
 */
#ifndef FS_HTTP_H
#define FS_HTTP_H

#include <stddef.h>

#include <uv.h>

#include "buf.h"

typedef struct fs_http_response {
    int status;               /* 200 unless the handler says otherwise */
    const char *content_type; /* default "text/plain; charset=utf-8" */
    fs_buf body;
} fs_http_response;

typedef struct fs_http_request {
    const char *path; /* after the route's prefix, raw (still percent-encoded) */
    size_t path_len;
    const char *query; /* after the '?', raw; NULL without one */
    size_t query_len;
} fs_http_request;

typedef void (*fs_http_handler)(void *ctx, const fs_http_request *req, fs_http_response *res);

typedef struct fs_http_route {
    const char *prefix; /* "/metrics", "/api/journeys/", "/" */
    fs_http_handler fn;
    void *ctx;
} fs_http_route;

typedef struct fs_http fs_http;

/* listen: "host:port" (IPv4 or [IPv6]); port 0 picks a free one. Returns
 * NULL with a message in err. */
fs_http *fs_http_start(uv_loop_t *loop, const char *listen, const fs_http_route *routes,
                       size_t n_routes, char *err, size_t err_len);
/* The port actually bound. */
int fs_http_port(const fs_http *h);
/* Stops accepting; open connections end on their own (idle timeout). */
void fs_http_stop(fs_http *h);
/* After the loop has ended. */
void fs_http_free(fs_http *h);
/* Decodes the %XX escapes of a path segment or query value into out (cap
 * bytes; '+' stays '+'). Returns the decoded length, or -1 for a malformed
 * escape or a result that would not fit. */
long fs_http_unescape(const char *in, size_t len, char *out, size_t cap);
/* The raw value of parameter `name` in a query string ("a=1&b=2"), or NULL. */
const char *fs_http_query_param(const fs_http_request *req, const char *name, size_t *len);

#endif
