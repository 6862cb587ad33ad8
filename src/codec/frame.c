/* frame.c -- find message boundaries in replay streams (see frame.h).
 *
 * MessagePack framing walks the object's bytes once, keeping only `pending`,
 * the number of values still needed to complete the object. A container
 * header adds its element count (twice for maps) and every value, header
 * included, consumes one. The walk never allocates and never recurses, so an
 * adversarial object (deep nesting, a map declaring 2^32 entries) costs only
 * the bytes it really has. `pending` cannot overflow: each byte adds at most
 * 2 * (2^32 - 1), and a buffer is far shorter than 2^30 bytes.
 *
 * A reader that gets a message in pieces keeps the walk (fs_framer: where
 * it stopped and `pending` there) between calls, so that each byte is
 * walked once however many reads the message takes: restarting from the
 * message's first byte after every 64 KB read of a pipe made a 60 MB
 * message cost 53 s instead of 3.
 */
#include "frame.h"

#include <assert.h>
#include <stdint.h>
#include <string.h>

/* Size of a big-endian length field of `n` bytes at p. */
static uint64_t read_be(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* The shape of a value whose type is not packed into its first byte: either
 * `fixed` bytes in all (scalars), or a 1-byte tag plus a `len_bytes`
 * big-endian length followed by length + `extra` payload bytes (str, bin,
 * ext; `extra` is ext's type byte) or by length * `children` values (arrays
 * 1, maps 2). */
typedef struct header_shape {
    uint8_t fixed;
    uint8_t len_bytes;
    uint8_t children;
    uint8_t extra;
    int8_t valid;
} header_shape;

static header_shape shape_of(unsigned char b)
{
    if (b <= 0x7f || b >= 0xe0)
        return (header_shape){1, 0, 0, 0, 1}; /* fixint */
    switch (b) {
    case 0xc0:
    case 0xc2:
    case 0xc3:
        return (header_shape){1, 0, 0, 0, 1};
    case 0xc4:
        return (header_shape){1, 1, 0, 0, 1};
    case 0xc5:
        return (header_shape){1, 2, 0, 0, 1};
    case 0xc6:
        return (header_shape){1, 4, 0, 0, 1};
    case 0xc7:
        return (header_shape){1, 1, 0, 1, 1};
    case 0xc8:
        return (header_shape){1, 2, 0, 1, 1};
    case 0xc9:
        return (header_shape){1, 4, 0, 1, 1};
    case 0xca:
        return (header_shape){5, 0, 0, 0, 1};
    case 0xcb:
        return (header_shape){9, 0, 0, 0, 1};
    case 0xcc:
    case 0xd0:
        return (header_shape){2, 0, 0, 0, 1};
    case 0xcd:
    case 0xd1:
        return (header_shape){3, 0, 0, 0, 1};
    case 0xce:
    case 0xd2:
        return (header_shape){5, 0, 0, 0, 1};
    case 0xcf:
    case 0xd3:
        return (header_shape){9, 0, 0, 0, 1};
    case 0xd4:
        return (header_shape){3, 0, 0, 0, 1};
    case 0xd5:
        return (header_shape){4, 0, 0, 0, 1};
    case 0xd6:
        return (header_shape){6, 0, 0, 0, 1};
    case 0xd7:
        return (header_shape){10, 0, 0, 0, 1};
    case 0xd8:
        return (header_shape){18, 0, 0, 0, 1};
    case 0xd9:
        return (header_shape){1, 1, 0, 0, 1};
    case 0xda:
        return (header_shape){1, 2, 0, 0, 1};
    case 0xdb:
        return (header_shape){1, 4, 0, 0, 1};
    case 0xdc:
        return (header_shape){1, 2, 1, 0, 1};
    case 0xdd:
        return (header_shape){1, 4, 1, 0, 1};
    case 0xde:
        return (header_shape){1, 2, 2, 0, 1};
    case 0xdf:
        return (header_shape){1, 4, 2, 0, 1};
    default:
        return (header_shape){0, 0, 0, 0, 0}; /* 0xc1: never used */
    }
}

/* Total size of the scalars whose size the first byte fixes (fixint, nil,
 * bool, float, int, fixext); 0 for everything else. */
static const uint8_t fixed_size[256] = {
    [0x00 ... 0x7f] = 1, [0xe0 ... 0xff] = 1, [0xc0] = 1, [0xc2] = 1,  [0xc3] = 1,
    [0xca] = 5,          [0xcb] = 9,          [0xcc] = 2, [0xcd] = 3,  [0xce] = 5,
    [0xcf] = 9,          [0xd0] = 2,          [0xd1] = 3, [0xd2] = 5,  [0xd3] = 9,
    [0xd4] = 3,          [0xd5] = 4,          [0xd6] = 6, [0xd7] = 10, [0xd8] = 18,
};

/* Reads the header at p[0..avail): on success sets the header size, the
 * payload size that follows it and the number of child values it opens. */
static fs_frame_status read_header(const unsigned char *p, size_t avail, size_t *head,
                                   uint64_t *payload, uint64_t *children)
{
    unsigned char b = p[0];
    *head = 1;
    *payload = 0;
    *children = 0;
    if (b >= 0x80 && b <= 0x8f) {
        *children = 2u * (b & 0x0fu);
        return FS_FRAME_OK;
    }
    if (b >= 0x90 && b <= 0x9f) {
        *children = b & 0x0fu;
        return FS_FRAME_OK;
    }
    if (b >= 0xa0 && b <= 0xbf) {
        *payload = b & 0x1fu;
        return FS_FRAME_OK;
    }
    header_shape h = shape_of(b);
    if (!h.valid)
        return FS_FRAME_BAD;
    if (h.len_bytes == 0) {
        *head = h.fixed;
        return FS_FRAME_OK;
    }
    if (avail < (size_t)h.fixed + h.len_bytes)
        return FS_FRAME_NEED_MORE;
    uint64_t count = read_be(p + 1, h.len_bytes);
    *head = (size_t)h.fixed + h.len_bytes;
    if (h.children)
        *children = count * h.children;
    else
        *payload = count + h.extra;
    return FS_FRAME_OK;
}

/* The walk from *pos with *pending values still needed. On NEED_MORE both
 * are left at the start of the value that is incomplete, whose header is
 * then read again (a few bytes: payloads are skipped, never scanned), so
 * that the walk can resume there with more bytes. */
static fs_frame_status frame_walk(const unsigned char *p, size_t len, size_t *pos_io,
                                  uint64_t *pending_io, size_t *msg_len)
{
    size_t pos = *pos_io;
    uint64_t pending = *pending_io;
    while (pending > 0) {
        if (pos >= len)
            goto need_more;
        unsigned char b = p[pos];
        /* Events are mostly fixstr and fixed-size scalars: skip those directly. */
        if ((b & 0xe0) == 0xa0) {
            size_t n = b & 0x1fu;
            if (len - pos - 1 < n)
                goto need_more;
            pos += 1 + n;
            pending--;
            continue;
        }
        if (fixed_size[b]) {
            if (len - pos < fixed_size[b])
                goto need_more;
            pos += fixed_size[b];
            pending--;
            continue;
        }
        size_t head;
        uint64_t payload, children;
        fs_frame_status st = read_header(p + pos, len - pos, &head, &payload, &children);
        if (st == FS_FRAME_BAD) {
            *msg_len = pos + 1;
            return FS_FRAME_BAD;
        }
        if (st == FS_FRAME_NEED_MORE || len - pos < head || len - pos - head < payload)
            goto need_more;
        pos += head + (size_t)payload;
        pending = pending - 1 + children;
    }
    *msg_len = pos;
    return FS_FRAME_OK;
need_more:
    *pos_io = pos;
    *pending_io = pending;
    return FS_FRAME_NEED_MORE;
}

fs_frame_status fs_framer_msgpack(fs_framer *f, const char *buf, size_t len, size_t *msg_len)
{
    assert(f->pos <= len);
    size_t pos = f->pos;
    uint64_t pending = f->pending ? f->pending : 1;
    fs_frame_status st = frame_walk((const unsigned char *)buf, len, &pos, &pending, msg_len);
    if (st == FS_FRAME_NEED_MORE) {
        f->examined += pos - f->pos;
        f->pos = pos;
        f->pending = pending;
    } else {
        f->examined += *msg_len - f->pos;
        fs_framer_reset(f);
    }
    return st;
}

fs_frame_status fs_frame_msgpack(const char *buf, size_t len, size_t *msg_len)
{
    size_t pos = 0;
    uint64_t pending = 1;
    return frame_walk((const unsigned char *)buf, len, &pos, &pending, msg_len);
}

/* A line ends at its first '\n'; bytes already searched are not searched
 * again (f->pos). */
fs_frame_status fs_framer_jsonl(fs_framer *f, const char *buf, size_t len, size_t *msg_len,
                                size_t *consumed)
{
    assert(f->pos <= len);
    const char *nl = memchr(buf + f->pos, '\n', len - f->pos);
    if (!nl) {
        f->examined += len - f->pos;
        f->pos = len;
        return FS_FRAME_NEED_MORE;
    }
    size_t line = (size_t)(nl - buf);
    f->examined += line + 1 - f->pos;
    fs_framer_reset(f);
    *consumed = line + 1;
    if (line > 0 && buf[line - 1] == '\r') /* CRLF files */
        line--;
    *msg_len = line;
    return FS_FRAME_OK;
}

fs_frame_status fs_frame_jsonl(const char *buf, size_t len, size_t *msg_len, size_t *consumed)
{
    fs_framer f = {0};
    return fs_framer_jsonl(&f, buf, len, msg_len, consumed);
}

bool fs_line_is_blank(const char *line, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = line[i];
        if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
            return false;
    }
    return true;
}
