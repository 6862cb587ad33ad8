/* http.c -- HTTP on the loop with libh2o (see http.h).
 *
 * h2o owns the protocol; this file wires it to a uv_tcp listener and turns
 * the route table into h2o path handlers. Each h2o handler is allocated by
 * h2o with room for our route after its own fields (h2o_create_handler
 * takes the size), which is how a request finds its callback.
 *
 * Stopping: h2o's context may only be disposed once no connection holds a
 * timer of it (h2o_timeout_dispose asserts), so this file keeps its own
 * list of the connections it accepted. fs_http_stop shuts every one of them
 * down (shutdown(2) both ways): h2o then reads the end of the stream or
 * fails its write, and closes the connection itself, whatever state it was
 * in (idle, half a request read, a response being written). The context is
 * disposed when the last one has closed, on the loop.
 */
#define H2O_USE_LIBUV 1
#include "http.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <h2o.h>

#include "config.h"
#include "util.h"

/* The longest a connection may take to send its request (h2o's http1
 * req_timeout, from accept or from the last byte read), and so the longest
 * an idle connection is held. HTTP/2 is not served (upgrade_to_http2 off);
 * its idle timeout is set to the same for good measure. */
#define IDLE_TIMEOUT_MS 3000

/* One accepted connection. The uv handle comes first: h2o's close callback
 * hands us the handle. */
typedef struct http_conn {
    uv_tcp_t tcp;
    fs_http *h;
    struct http_conn *prev, *next;
} http_conn;

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
    bool stopping;    /* fs_http_stop was called */
    bool disposed;    /* h2o's context is gone */
    http_conn *conns; /* the open connections, newest first */
    size_t n_conns;
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

static int on_request(h2o_handler_t *self, h2o_req_t *req)
{
    route_handler *rh = (route_handler *)self;
    bool head = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    if (!head && !h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET"))) {
        h2o_send_error_generic(req, 405, "Method Not Allowed", "only GET and HEAD\n",
                               H2O_SEND_ERROR_HTTP1_CLOSE_CONNECTION);
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
    h2o_send_inline(req, res.body.p ? res.body.p : "", res.body.len); /* copies the body */
    fs_buf_free(&res.body);
    return 0;
}

/* Every response of every path (h2o's own 404s and errors included) ends
 * its connection: one request per connection, so no keep-alive connection
 * sits idle (README: Watching it). A filter is where h2o lets us see every
 * response before its headers go out. */
static void close_after_response(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    req->http1_is_persistent = 0;
    h2o_setup_next_ostream(req, slot);
    (void)self;
}

static void add_close_filter(h2o_pathconf_t *pc)
{
    h2o_create_filter(pc, sizeof(h2o_filter_t))->on_setup_ostream = close_after_response;
}

static void dispose_context(fs_http *h)
{
    h2o_context_dispose(&h->ctx); /* closes its timers, so the loop can end */
    h->disposed = true;
}

/* h2o has closed a connection (its socket is gone with it). */
static void on_conn_closed(uv_handle_t *handle)
{
    http_conn *c = (http_conn *)handle;
    fs_http *h = c->h;
    if (c->prev)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    h->n_conns--;
    free(c);
    if (h->stopping && h->n_conns == 0 && !h->disposed)
        dispose_context(h);
}

static void on_accept(uv_stream_t *listener, int status)
{
    fs_http *h = listener->data;
    if (status != 0 || h->stopping)
        return;
    http_conn *c = fs_xcalloc(1, sizeof(*c));
    fs_xcheck(uv_tcp_init(listener->loop, &c->tcp), "uv_tcp_init");
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, (uv_close_cb)free);
        return;
    }
    c->h = h;
    c->next = h->conns;
    if (h->conns)
        h->conns->prev = c;
    h->conns = c;
    h->n_conns++;
    h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)&c->tcp, on_conn_closed);
    h2o_accept(&h->accept_ctx, sock);
}

/* "127.0.0.1:8080", "[::1]:8080", "localhost:8080": the config's rules. */
static int parse_listen(const char *listen, struct sockaddr_storage *addr)
{
    char host[INET6_ADDRSTRLEN];
    bool ipv6;
    int port;
    if (fs_config_parse_listen(listen, strlen(listen), host, sizeof host, &ipv6, &port) != 0)
        return -1;
    if (ipv6)
        return uv_ip6_addr(host, port, (struct sockaddr_in6 *)addr);
    return uv_ip4_addr(host, port, (struct sockaddr_in *)addr);
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

    /* A peer that reset its connection makes a write raise SIGPIPE (libuv
     * writes without MSG_NOSIGNAL); on this thread, the loop's, it must be
     * an EPIPE that h2o handles, never the end of the process. Other
     * threads (the demo's screen on stdout) keep the default. */
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, NULL);

    h2o_config_init(&h->config);
    h->config.http1.req_timeout = IDLE_TIMEOUT_MS;
    /* HTTP/1.1 only: h2o would take a connection that starts with the
     * HTTP/2 preface ("PRI * HTTP/2.0", prior knowledge) or asks for
     * "Upgrade: h2c" as HTTP/2. Off, the preface is a malformed request
     * (closed at once) and the upgrade header is ignored. */
    h->config.http1.upgrade_to_http2 = 0;
    h->config.http2.idle_timeout = IDLE_TIMEOUT_MS;
    h2o_hostconf_t *host =
        h2o_config_register_host(&h->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    for (size_t i = 0; i < n_routes; i++) {
        h2o_pathconf_t *pc = h2o_config_register_path(host, routes[i].prefix, 0);
        route_handler *rh = (route_handler *)h2o_create_handler(pc, sizeof(*rh));
        rh->super.on_req = on_request;
        rh->route = routes[i];
        rh->prefix_len = strlen(routes[i].prefix);
        add_close_filter(pc);
    }
    add_close_filter(&host->fallback_path);
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
    if (!h || h->stopping)
        return;
    h->stopping = true;
    uv_close((uv_handle_t *)h->listener, (uv_close_cb)free);
    h->listening = false;
    /* h2o sees the end of the stream (or a failed write) on each and closes
     * it; the last one's close disposes the context (on_conn_closed). */
    for (http_conn *c = h->conns; c; c = c->next) {
        uv_os_fd_t fd;
        if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
            shutdown(fd, SHUT_RDWR);
    }
    if (h->n_conns == 0)
        dispose_context(h);
}

size_t fs_http_open_connections(const fs_http *h)
{
    return h ? h->n_conns : 0;
}

void fs_http_free(fs_http *h)
{
    if (!h)
        return;
    /* Never stopped (the loop is gone anyway): a context that still has
     * connections cannot be disposed, and is left as it is. */
    if (!h->disposed && h->n_conns == 0)
        h2o_context_dispose(&h->ctx);
    h2o_config_dispose(&h->config);
    free(h);
}
