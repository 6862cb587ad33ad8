/* buf.h -- a growable byte buffer and the JSON text primitives built on it.
 *
 * Output records are assembled here and handed to a sink in one piece.
 * JSON strings are escaped per RFC 8259 (quote, backslash, control bytes);
 * input strings were validated as UTF-8 by the decoder, so other bytes pass
 * through unchanged. Doubles print in the shortest form that reads back to
 * the same value, so equal numbers always print equally.
 */
#ifndef FS_BUF_H
#define FS_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct fs_buf {
    char *p;
    size_t len, cap;
} fs_buf;

void fs_buf_free(fs_buf *b);
void fs_buf_reserve(fs_buf *b, size_t extra);
void fs_buf_put(fs_buf *b, const char *s, size_t len);
void fs_buf_puts(fs_buf *b, const char *s);
static inline void fs_buf_putc(fs_buf *b, char c)
{
    if (b->len == b->cap)
        fs_buf_reserve(b, 1);
    b->p[b->len++] = c;
}
void fs_buf_i64(fs_buf *b, int64_t v);
void fs_buf_u64(fs_buf *b, uint64_t v);
void fs_buf_double(fs_buf *b, double v);
void fs_buf_json_str(fs_buf *b, const char *s, size_t len);

#endif
