/* test_http.c -- the HTTP layer (src/http/http.h): its pure helpers
 * (decoding a percent-encoded id, finding a query parameter), and the server
 * on a loop of the test's own, talked to over loopback TCP: every response
 * closes its connection, HTTP/2 is refused, and stopping with connections
 * still open ends them and lets the loop end (it aborted in h2o before). The
 * endpoints themselves run in tests/e2e/http_check.sh and test_kafka_run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "event.h"
#include "http.h"
#include "lookup.h"

static long unescape(const char *in, char *out, size_t cap)
{
    return fs_http_unescape(in, strlen(in), out, cap);
}

static void test_unescape(void **state)
{
    (void)state;
    char out[8];
    assert_int_equal(unescape("c1", out, sizeof out), 2);
    assert_memory_equal(out, "c1", 2);
    assert_int_equal(unescape("%63%2f%2F+", out, sizeof out), 4); /* either case; + stays */
    assert_memory_equal(out, "c//+", 4);
    assert_int_equal(unescape("%00%FF", out, sizeof out), 2); /* bytes, checked later */
    assert_memory_equal(out, "\0\xff", 2);
    assert_int_equal(unescape("", out, sizeof out), 0);
    assert_int_equal(unescape("%", out, sizeof out), -1);
    assert_int_equal(unescape("%4", out, sizeof out), -1);
    assert_int_equal(unescape("%zz", out, sizeof out), -1);
    assert_int_equal(unescape("%4g", out, sizeof out), -1);
    assert_int_equal(unescape("12345678", out, sizeof out), 8);   /* fits exactly */
    assert_int_equal(unescape("123456789", out, sizeof out), -1); /* one too many */
    assert_int_equal(unescape("%31%32%33%34%35%36%37%38", out, sizeof out), 8);
}

static const char *param(const char *query, const char *name, size_t *len)
{
    fs_http_request req = {"", 0, query, query ? strlen(query) : 0};
    return fs_http_query_param(&req, name, len);
}

static void test_query_param(void **state)
{
    (void)state;
    size_t len;
    const char *v = param("id=c1", "id", &len);
    assert_non_null(v);
    assert_int_equal(len, 2);
    assert_memory_equal(v, "c1", 2);
    v = param("x=1&id=%2E%2E&id=second", "id", &len); /* the first one */
    assert_non_null(v);
    assert_int_equal(len, 6);
    assert_memory_equal(v, "%2E%2E", 6);
    v = param("id=", "id", &len);
    assert_non_null(v);
    assert_int_equal(len, 0);
    assert_null(param("idx=1&xid=2&id", "id", &len)); /* names must match whole */
    assert_null(param("", "id", &len));
    assert_null(param(NULL, "id", &len));
}

/* The id of /api/journeys/<id> or /api/journeys?id=<id>, or the status and
 * reason of the error answer. */
static long lookup_id(const char *path, const char *query, char *id, int *status)
{
    fs_http_request req = {path, strlen(path), query, query ? strlen(query) : 0};
    const char *error = NULL;
    *status = 200;
    long n = fs_lookup_id(&req, id, FS_MAX_CUSTOMER_ID, status, &error);
    assert_true(n >= 0 ? error == NULL && *status == 200 : error != NULL);
    return n;
}

static void test_lookup_id(void **state)
{
    (void)state;
    char id[FS_MAX_CUSTOMER_ID];
    int status;
    assert_int_equal(lookup_id("/c1", NULL, id, &status), 2);
    assert_memory_equal(id, "c1", 2);
    assert_int_equal(lookup_id("/%63%31", "id=x", id, &status), 2); /* the path wins */
    assert_memory_equal(id, "c1", 2);
    assert_int_equal(lookup_id("", "x=1&id=%2E%2E", id, &status), 2);
    assert_memory_equal(id, "..", 2);
    assert_int_equal(lookup_id("/a/b", NULL, id, &status), 3); /* the rest of the path */
    assert_memory_equal(id, "a/b", 3);
    char longest[2 * FS_MAX_CUSTOMER_ID];
    memset(longest, 'x', sizeof longest);
    longest[0] = '/';
    longest[FS_MAX_CUSTOMER_ID + 1] = '\0';
    assert_int_equal(lookup_id(longest, NULL, id, &status), FS_MAX_CUSTOMER_ID);
    longest[FS_MAX_CUSTOMER_ID + 1] = 'x';
    longest[FS_MAX_CUSTOMER_ID + 2] = '\0';
    assert_int_equal(lookup_id(longest, NULL, id, &status), -1);
    assert_int_equal(status, 400);
    static const char *const bad[][2] = {{"/%zz", NULL}, {"/c%4", NULL}, {"/%FF", NULL},
                                         {"", "id="},    {"", "id=%"},   {"/%C3", NULL}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(lookup_id(bad[i][0], bad[i][1], id, &status), -1);
        assert_int_equal(status, 400);
    }
    static const char *const none[][2] = {{"", NULL}, {"", "x=1"}, {"/", NULL}, {"x", "id=1"}};
    for (size_t i = 0; i < sizeof none / sizeof *none; i++) {
        assert_int_equal(lookup_id(none[i][0], none[i][1], id, &status), -1);
        assert_int_equal(status, 404);
    }
}

/* ---- the server, on the test's loop ---- */

static void serve_ok(void *ctx, const fs_http_request *req, fs_http_response *res)
{
    (void)ctx;
    (void)req;
    fs_buf_puts(&res->body, "ok\n");
}

typedef struct server {
    uv_loop_t loop;
    fs_http *http;
    int port;
} server;

static void server_start(server *s)
{
    assert_int_equal(uv_loop_init(&s->loop), 0);
    const fs_http_route routes[] = {{"/health", serve_ok, NULL}, {"/", serve_ok, NULL}};
    char err[256];
    s->http = fs_http_start(&s->loop, "127.0.0.1:0", routes, 2, err, sizeof err);
    assert_non_null(s->http);
    s->port = fs_http_port(s->http);
    assert_true(s->port > 0);
}

/* Stops the server and runs the loop to its end: nothing may be left open. */
static void server_stop(server *s)
{
    fs_http_stop(s->http);
    alarm(10); /* a loop that never ends is a failure, not a hung test */
    uv_run(&s->loop, UV_RUN_DEFAULT);
    alarm(0);
    assert_int_equal(fs_http_open_connections(s->http), 0);
    assert_int_equal(uv_loop_close(&s->loop), 0);
    fs_http_free(s->http);
}

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0); /* the backlog takes it */
    return fd;
}

static void send_text(int fd, const char *text)
{
    size_t n = strlen(text);
    assert_int_equal(send(fd, text, n, MSG_NOSIGNAL), (ssize_t)n);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9;
}

/* Runs the loop until the server holds n connections. */
static void await_connections(server *s, size_t n)
{
    for (double end = now_s() + 5; fs_http_open_connections(s->http) < n;) {
        assert_true(now_s() < end);
        uv_run(&s->loop, UV_RUN_NOWAIT);
    }
}

/* Runs the loop and reads fd until the server closes it (within 1 s: the
 * idle timeout is 3 s, so a close by the response, not by the timer).
 * Returns what was read (static buffer). */
static const char *read_to_close(server *s, int fd)
{
    static char buf[65536];
    size_t n = 0;
    for (double end = now_s() + 1;;) {
        assert_true(now_s() < end);
        uv_run(&s->loop, UV_RUN_NOWAIT);
        ssize_t r = recv(fd, buf + n, sizeof buf - 1 - n, MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno == ECONNRESET))
            break;
        if (r > 0)
            n += (size_t)r;
        else
            assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
    }
    buf[n] = '\0';
    return buf;
}

/* Every response ends its connection, whatever asked it to stay open, and
 * whoever answered (a handler, the 405 of a POST, h2o's own errors). */
static void test_every_response_closes(void **state)
{
    (void)state;
    static const struct {
        const char *request, *status;
    } cases[] = {
        {"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 200 "},
        {"GET /health HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n", "HTTP/1.1 200 "},
        {"GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "HTTP/1.1 200 "},
        {"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab", "HTTP/1.1 405 "},
        {"DELETE / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n", "HTTP/1.1 405 "},
        {"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 "},
        {"GARBAGE\r\n\r\n", "HTTP/1.1 400 "},
        /* "Upgrade: h2c" is not taken up: an HTTP/1.1 answer, no 101 */
        {"GET /health HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
         "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
         "HTTP/1.1 200 "},
    };
    server s;
    server_start(&s);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int fd = connect_to(s.port);
        /* two requests at once: the second must never be answered */
        send_text(fd, cases[i].request);
        send_text(fd, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
        const char *got = read_to_close(&s, fd);
        if (strncmp(got, cases[i].status, strlen(cases[i].status)) != 0 ||
            !strstr(got, "\r\nConnection: close\r\n") || strstr(got + 1, "HTTP/1.1 ")) {
            print_error("request %zu: %s\n", i, got);
            fail();
        }
        close(fd);
    }
    server_stop(&s);
}

/* The HTTP/2 preface ("prior knowledge") is not served: a 400 or nothing,
 * and the connection closed at once. */
static void test_http2_preface_refused(void **state)
{
    (void)state;
    server s;
    server_start(&s);
    int fd = connect_to(s.port);
    send_text(fd, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    const char *got = read_to_close(&s, fd);
    assert_true(got[0] == '\0' || strncmp(got, "HTTP/1.1 400 ", 13) == 0);
    close(fd);
    server_stop(&s);
}

/* Stopping with connections in every state: idle, half a request line, half
 * the headers, the HTTP/2 preface, a request body half sent, a response
 * nobody reads. fs_http_stop must end them all and the loop must end (it
 * aborted in h2o_timeout_dispose before). */
static void test_stop_with_open_connections(void **state)
{
    (void)state;
    server s;
    server_start(&s);
    int fds[7];
    fds[0] = connect_to(s.port);
    fds[1] = connect_to(s.port);
    send_text(fds[1], "GET /hea");
    fds[2] = connect_to(s.port);
    send_text(fds[2], "GET /health HTTP/1.1\r\nHo");
    fds[3] = connect_to(s.port);
    send_text(fds[3], "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    fds[4] = connect_to(s.port);
    send_text(fds[4], "POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc");
    fds[5] = connect_to(s.port);
    send_text(fds[5], "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    fds[6] = connect_to(s.port);
    await_connections(&s, 7);
    for (int i = 0; i < 3; i++)
        uv_run(&s.loop, UV_RUN_NOWAIT); /* let it read what was sent */
    server_stop(&s);
    for (int i = 0; i < 7; i++) {
        char c[4096];
        ssize_t r;
        while ((r = recv(fds[i], c, sizeof c, MSG_DONTWAIT)) > 0) /* a response, then the end */
            ;
        assert_true(r == 0 || (r < 0 && errno == ECONNRESET));
        close(fds[i]);
    }
}

/* A stop with no connection at all, and a stop twice. */
static void test_stop_idle_server(void **state)
{
    (void)state;
    server s;
    server_start(&s);
    fs_http_stop(s.http);
    server_stop(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unescape),
        cmocka_unit_test(test_query_param),
        cmocka_unit_test(test_lookup_id),
        cmocka_unit_test(test_every_response_closes),
        cmocka_unit_test(test_http2_preface_refused),
        cmocka_unit_test(test_stop_with_open_connections),
        cmocka_unit_test(test_stop_idle_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
