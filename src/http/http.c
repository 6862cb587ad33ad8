/* http.c -- HTTP on the loop with libh2o (see http.h).
 *
 * h2o owns the protocol; this file wires it to a uv_tcp listener and turns
 * the route table into h2o path handlers. Each h2o handler is allocated by
 * h2o with room for our route after its own fields (h2o_create_handler
 * takes the size), which is how a request finds its callback.
 */
#define H2O_USE_LIBUV 1
#include "http.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <h2o.h>

#include "util.h"

#define IDLE_TIMEOUT_MS 3000

typedef struct route_handler {
    h2o_handler_t super; /* first: h2o hands us this pointer */
    fs_http_route route;
    size_t prefix_len;
} route_handler;

struct fs_http {
    h2o_globalconf_t config;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    uv_tcp_t *listener; /* its own allocation: it may outlive a failed start */
    int port;
    bool listening;
};

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 503:
        return "Service Unavailable";
    default:
        return "Error";
    }
}

long fs_http_unescape(const char *in, size_t len, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == '%') {
            int hi = i + 2 < len ? fs_hex_digit(in[i + 1]) : -1;
            int lo = hi >= 0 ? fs_hex_digit(in[i + 2]) : -1;
            if (lo < 0)
                return -1;
            c = (char)(hi << 4 | lo);
            i += 2;
        }
        if (n == cap)
            return -1;
        out[n++] = c;
    }
    return (long)n;
}

const char *fs_http_query_param(const fs_http_request *req, const char *name, size_t *len)
{
    if (!req->query)
        return NULL;
    size_t n = strlen(name);
    const char *q = req->query, *end = q + req->query_len;
    while (q && q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *stop = amp ? amp : end;
        if ((size_t)(stop - q) > n && q[n] == '=' && memcmp(q, name, n) == 0) {
            *len = (size_t)(stop - q) - n - 1;
            return q + n + 1;
        }
        q = amp ? amp + 1 : NULL;
    }
    return NULL;
}

static int on_request(h2o_handler_t *self, h2o_req_t *req)
{
    route_handler *rh = (route_handler *)self;
    bool head = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    if (!head && !h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET"))) {
        h2o_send_error_generic(req, 405, "Method Not Allowed", "only GET and HEAD\n", 0);
        return 0;
    }
    size_t len = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    const char *path = req->path.base;
    fs_http_response res = {.status = 200, .content_type = "text/plain; charset=utf-8"};
    if (len >= rh->prefix_len && memcmp(path, rh->route.prefix, rh->prefix_len) == 0) {
        fs_http_request r = {path + rh->prefix_len, len - rh->prefix_len, NULL, 0};
        if (req->query_at != SIZE_MAX) {
            r.query = path + req->query_at + 1;
            r.query_len = req->path.len - req->query_at - 1;
        }
        rh->route.fn(rh->route.ctx, &r, &res);
    } else { /* routed by a normalized path the raw one does not spell out */
        res.status = 404;
        fs_buf_puts(&res.body, "not found\n");
    }
    req->res.status = res.status;
    req->res.reason = reason(res.status);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, res.content_type,
                   strlen(res.content_type));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                   H2O_STRLIT("no-store"));
    /* One request per connection: no idle keep-alive connection can hold a
     * stopping process (or the context being disposed) up. */
    req->http1_is_persistent = 0;
    h2o_send_inline(req, res.body.p ? res.body.p : "", res.body.len); /* copies the body */
    fs_buf_free(&res.body);
    return 0;
}

static void on_accept(uv_stream_t *listener, int status)
{
    fs_http *h = listener->data;
    if (status != 0)
        return;
    uv_tcp_t *conn = fs_xmalloc(sizeof(*conn));
    fs_xcheck(uv_tcp_init(listener->loop, conn), "uv_tcp_init");
    if (uv_accept(listener, (uv_stream_t *)conn) != 0) {
        uv_close((uv_handle_t *)conn, (uv_close_cb)free);
        return;
    }
    h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)conn, (uv_close_cb)free);
    h2o_accept(&h->accept_ctx, sock);
}

/* "127.0.0.1:8080", "[::1]:8080", ":8080" (all IPv4 interfaces). */
static int parse_listen(const char *listen, struct sockaddr_storage *addr)
{
    const char *colon = strrchr(listen, ':');
    if (!colon)
        return -1;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || colon[1] == '\0' || port < 0 || port > 65535)
        return -1;
    char host[128];
    size_t hl = (size_t)(colon - listen);
    if (hl >= sizeof(host))
        return -1;
    memcpy(host, listen, hl);
    host[hl] = '\0';
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        host[hl - 1] = '\0';
        return uv_ip6_addr(host + 1, (int)port, (struct sockaddr_in6 *)addr);
    }
    return uv_ip4_addr(hl ? host : "0.0.0.0", (int)port, (struct sockaddr_in *)addr);
}

fs_http *fs_http_start(uv_loop_t *loop, const char *listen, const fs_http_route *routes,
                       size_t n_routes, char *err, size_t err_len)
{
    struct sockaddr_storage addr;
    if (parse_listen(listen, &addr) != 0) {
        snprintf(err, err_len, "http.listen: '%s' is not host:port", listen);
        return NULL;
    }
    fs_http *h = fs_xcalloc(1, sizeof(*h));
    h->listener = fs_xmalloc(sizeof(*h->listener));
    fs_xcheck(uv_tcp_init(loop, h->listener), "uv_tcp_init");
    h->listener->data = h;
    int rc = uv_tcp_bind(h->listener, (struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)h->listener, 128, on_accept);
    if (rc != 0) {
        snprintf(err, err_len, "http.listen: %s: %s", listen, uv_strerror(rc));
        uv_close((uv_handle_t *)h->listener, (uv_close_cb)free);
        free(h);
        return NULL;
    }
    struct sockaddr_storage bound;
    int bl = sizeof(bound);
    uv_tcp_getsockname(h->listener, (struct sockaddr *)&bound, &bl);
    h->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);
    h->listening = true;

    h2o_config_init(&h->config);
    h->config.http1.req_timeout = IDLE_TIMEOUT_MS;
    h2o_hostconf_t *host =
        h2o_config_register_host(&h->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    for (size_t i = 0; i < n_routes; i++) {
        h2o_pathconf_t *pc = h2o_config_register_path(host, routes[i].prefix, 0);
        route_handler *rh = (route_handler *)h2o_create_handler(pc, sizeof(*rh));
        rh->super.on_req = on_request;
        rh->route = routes[i];
        rh->prefix_len = strlen(routes[i].prefix);
    }
    h2o_context_init(&h->ctx, loop, &h->config);
    h->accept_ctx.ctx = &h->ctx;
    h->accept_ctx.hosts = h->config.hosts;
    return h;
}

int fs_http_port(const fs_http *h)
{
    return h->listening ? h->port : -1;
}

void fs_http_stop(fs_http *h)
{
    if (!h || !h->listening)
        return;
    uv_close((uv_handle_t *)h->listener, (uv_close_cb)free);
    h->listening = false;
    h2o_context_dispose(&h->ctx); /* closes its timers, so the loop can end */
}

void fs_http_free(fs_http *h)
{
    if (!h)
        return;
    if (h->listening)
        h2o_context_dispose(&h->ctx); /* never stopped: the loop is gone anyway */
    h2o_config_dispose(&h->config);
    free(h);
}
