/* fuzz_frame.c -- libFuzzer target: stream framing and UTF-8 validation.
 *
 * MessagePack framing on arbitrary bytes:
 *   - OK and BAD report 0 < msg_len <= len; BAD ends at a 0xc1 byte;
 *   - framing is prefix-consistent: the result is the same when the buffer
 *     ends right after msg_len, and one byte less NEEDS MORE;
 *   - msgpack-c agrees: an OK object unpacks in exactly msg_len bytes, or
 *     fails when it is nested deeper than msgpack-c's 32 levels;
 *   - walking the whole input as a stream (as the replay reader does)
 *     terminates, consuming at least one byte per step.
 * JSON lines: OK lines end at the first '\n' (minus one '\r'), NEED_MORE means
 * there is no '\n'; fs_line_is_blank agrees with a plain definition.
 * UTF-8: fs_utf8_valid agrees with a straightforward decoder that builds each
 * code point and checks it (no overlongs, surrogates, or > U+10FFFF).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "frame.h"
#include "fuzz_check.h"
#include "utf8.h"

/* Walks the object at p[*pos..n), which is known to frame, moving *pos past
 * it; false when containers nest more than 32 deep (msgpack-c's limit, the
 * outermost container counted), where the walk stops: that bounds recursion. */
static bool mp_within_depth(const unsigned char *p, size_t n, size_t *pos, size_t level)
{
    unsigned char b = p[*pos];
    uint64_t children;
    size_t head;
    if (b >= 0x80 && b <= 0x9f) {
        children = (b & 0x0fu) * (b <= 0x8f ? 2u : 1u);
        head = 1;
    } else if (b == 0xdc || b == 0xde) {
        children = ((uint64_t)p[*pos + 1] << 8 | p[*pos + 2]) * (b == 0xde ? 2u : 1u);
        head = 3;
    } else if (b == 0xdd || b == 0xdf) {
        children = ((uint64_t)p[*pos + 1] << 24 | (uint64_t)p[*pos + 2] << 16 |
                    (uint64_t)p[*pos + 3] << 8 | p[*pos + 4]) *
                   (b == 0xdf ? 2u : 1u);
        head = 5;
    } else { /* not a container: the framer knows its size */
        size_t m = 0;
        CHECK(fs_frame_msgpack((const char *)p + *pos, n - *pos, &m) == FS_FRAME_OK);
        *pos += m;
        return true;
    }
    if (level + 1 > 32)
        return false;
    *pos += head;
    for (uint64_t i = 0; i < children; i++)
        if (!mp_within_depth(p, n, pos, level + 1))
            return false;
    return true;
}

/* msgpack-c unpacks an OK object in exactly its framed size, unless it is
 * nested deeper than msgpack-c allows. (BAD spans are not given to msgpack-c:
 * their declared sizes are not backed by bytes, and it would allocate them.) */
static void check_msgpack_agrees(const char *buf, size_t n)
{
    msgpack_zone zone;
    CHECK(msgpack_zone_init(&zone, 2048));
    msgpack_object obj;
    size_t off = 0, pos = 0;
    msgpack_unpack_return r = msgpack_unpack(buf, n, &off, &zone, &obj);
    if (mp_within_depth((const unsigned char *)buf, n, &pos, 0)) {
        CHECK(pos == n);
        CHECK(r == MSGPACK_UNPACK_SUCCESS);
        CHECK(off == n);
    } else {
        CHECK(r != MSGPACK_UNPACK_SUCCESS && r != MSGPACK_UNPACK_EXTRA_BYTES);
    }
    msgpack_zone_destroy(&zone);
}

static void fuzz_msgpack(const char *buf, size_t len)
{
    size_t n = 0, n2 = 0;
    fs_frame_status st = fs_frame_msgpack(buf, len, &n);
    if (st == FS_FRAME_NEED_MORE)
        return;
    CHECK(n > 0 && n <= len);
    /* Whatever ends at byte n, the bytes before it are incomplete. */
    CHECK(fs_frame_msgpack(buf, n - 1, &n2) == FS_FRAME_NEED_MORE);
    if (st == FS_FRAME_BAD) {
        CHECK((unsigned char)buf[n - 1] == 0xc1);
        CHECK(fs_frame_msgpack(buf, n, &n2) == FS_FRAME_BAD && n2 == n);
        return;
    }
    CHECK(fs_frame_msgpack(buf, n, &n2) == FS_FRAME_OK && n2 == n);
    /* A copy of exactly n bytes, so ASan sees msgpack-c over-reads too. */
    char *copy = malloc(n);
    CHECK(copy);
    memcpy(copy, buf, n);
    check_msgpack_agrees(copy, n);
    free(copy);
}

static void walk_stream(const char *buf, size_t len)
{
    size_t pos = 0;
    while (pos < len) {
        size_t n = 0;
        if (fs_frame_msgpack(buf + pos, len - pos, &n) == FS_FRAME_NEED_MORE)
            break;
        CHECK(n > 0 && n <= len - pos);
        pos += n;
    }
}

static bool plain_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strchr(" \t\r\n", s[i]) || s[i] == '\0')
            return false;
    return true;
}

static void fuzz_jsonl(const char *buf, size_t len)
{
    size_t pos = 0;
    while (pos < len) {
        size_t m = 0, c = 0;
        const char *nl = memchr(buf + pos, '\n', len - pos);
        if (fs_frame_jsonl(buf + pos, len - pos, &m, &c) == FS_FRAME_NEED_MORE) {
            CHECK(!nl);
            CHECK(fs_line_is_blank(buf + pos, len - pos) == plain_blank(buf + pos, len - pos));
            break;
        }
        CHECK(nl && c == (size_t)(nl - (buf + pos)) + 1);
        CHECK(m == c - 1 || (m == c - 2 && buf[pos + m] == '\r'));
        CHECK(fs_line_is_blank(buf + pos, m) == plain_blank(buf + pos, m));
        pos += c;
    }
}

/* Reference UTF-8 check: decode each sequence to a code point, then judge
 * the code point and the length used. */
static bool ref_utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t len;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i < len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += len;
    }
    return true;
}

static void fuzz_utf8(const char *buf, size_t len)
{
    CHECK(fs_utf8_valid(buf, len) == ref_utf8_valid((const unsigned char *)buf, len));
    /* Every suffix too, so sequences start at every alignment. */
    for (size_t off = 1; off < len && off < 8; off++)
        CHECK(fs_utf8_valid(buf + off, len - off) ==
              ref_utf8_valid((const unsigned char *)buf + off, len - off));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    fuzz_msgpack(buf, size);
    walk_stream(buf, size);
    fuzz_jsonl(buf, size);
    fuzz_utf8(buf, size);
    return 0;
}
