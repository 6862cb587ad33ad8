/* utf8.c -- UTF-8 validation.
 *
 * Most strings in touchpoint events are ASCII, so the validator skips eight
 * ASCII bytes at a time and only decodes sequences byte by byte after the
 * first non-ASCII byte. The accepted set is exactly RFC 3629's: the lead byte
 * fixes the length, and the second byte's range excludes overlong forms
 * (E0, F0), surrogates (ED) and code points above U+10FFFF (F4).
 */
#include "utf8.h"

#include <string.h>

static bool is_cont(unsigned char c)
{
    return (c & 0xC0) == 0x80;
}

/* Length of the valid sequence at p[0..n), or 0 when it is invalid. */
static size_t sequence_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    unsigned char lo = 0x80, hi = 0xBF;
    size_t len;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4;
    else
        return 0;
    if (c == 0xE0)
        lo = 0xA0;
    else if (c == 0xED)
        hi = 0x9F;
    else if (c == 0xF0)
        lo = 0x90;
    else if (c == 0xF4)
        hi = 0x8F;
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (!is_cont(p[i]))
            return 0;
    return len;
}

size_t fs_utf8_valid_len(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        if (len - i >= 8) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if (!(w & 0x8080808080808080ULL)) {
                i += 8;
                continue;
            }
        }
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t n = sequence_len(p + i, len - i);
        if (!n)
            return i;
        i += n;
    }
    return len;
}

bool fs_utf8_valid(const char *s, size_t len)
{
    return fs_utf8_valid_len(s, len) == len;
}

size_t fs_utf8_put(char *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}
