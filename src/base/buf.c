/* buf.c -- growable buffer and JSON primitives (see buf.h). */
#include "buf.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void fs_buf_free(fs_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

void fs_buf_reserve(fs_buf *b, size_t extra)
{
    if (b->len + extra <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra)
        cap *= 2;
    b->p = fs_xrealloc(b->p, cap);
    b->cap = cap;
}

void fs_buf_put(fs_buf *b, const char *s, size_t len)
{
    fs_buf_reserve(b, len);
    memcpy(b->p + b->len, s, len);
    b->len += len;
}

void fs_buf_puts(fs_buf *b, const char *s)
{
    fs_buf_put(b, s, strlen(s));
}

void fs_buf_i64(fs_buf *b, int64_t v)
{
    fs_buf_reserve(b, 24);
    b->len += (size_t)snprintf(b->p + b->len, 24, "%" PRId64, v);
}

void fs_buf_u64(fs_buf *b, uint64_t v)
{
    fs_buf_reserve(b, 24);
    b->len += (size_t)snprintf(b->p + b->len, 24, "%" PRIu64, v);
}

void fs_buf_double(fs_buf *b, double v)
{
    if (!isfinite(v)) { /* cannot happen for validated input; keep the JSON valid anyway */
        fs_buf_puts(b, "null");
        return;
    }
    if (v == 0) {
        fs_buf_putc(b, '0');
        return;
    }
    char tmp[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
        if (prec == 17 || strtod(tmp, NULL) == v)
            break;
    }
    fs_buf_puts(b, tmp);
}

void fs_buf_json_str(fs_buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    fs_buf_reserve(b, len + 2);
    fs_buf_putc(b, '"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            fs_buf_putc(b, '\\');
            fs_buf_putc(b, (char)c);
        } else if (c < 0x20) {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            fs_buf_put(b, esc, 6);
        } else {
            fs_buf_putc(b, (char)c);
        }
    }
    fs_buf_putc(b, '"');
}
