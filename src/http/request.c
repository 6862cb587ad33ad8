/* request.c -- taking a request apart (see request.h). */
#include "request.h"

#include <string.h>

#include "util.h"

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
