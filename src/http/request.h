/* request.h -- what a handler reads of a request, and the helpers that take
 * it apart: percent-decoding and query parameters.
 *
 * Plain functions on bytes, no server: the handlers call them, the unit
 * tests (tests/unit/test_http.c) and the fuzzer (tests/fuzz/fuzz_http.c)
 * call them the same way, with any bytes a client can send.
 */
#ifndef FS_REQUEST_H
#define FS_REQUEST_H

#include <stddef.h>

typedef struct fs_http_request {
    const char *path; /* after the route's prefix, raw (still percent-encoded) */
    size_t path_len;
    const char *query; /* after the '?', raw; NULL without one */
    size_t query_len;
} fs_http_request;

/* Decodes the %XX escapes of a path segment or query value into out (cap
 * bytes; '+' stays '+'). Returns the decoded length (at most len and cap),
 * or -1 for a malformed escape or a result that would not fit. */
long fs_http_unescape(const char *in, size_t len, char *out, size_t cap);
/* The raw value of the first parameter `name` in a query string
 * ("a=1&b=2"), or NULL. The value lies inside the query. */
const char *fs_http_query_param(const fs_http_request *req, const char *name, size_t *len);

#endif
