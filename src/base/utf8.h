/* utf8.h -- UTF-8 validation (RFC 3629: no overlongs, no surrogates, <= U+10FFFF). */
#ifndef FS_UTF8_H
#define FS_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

bool fs_utf8_valid(const char *s, size_t len);
/* The length of the longest valid prefix of s: len when s is valid, else the
 * offset of the first byte that starts no valid sequence. */
size_t fs_utf8_valid_len(const char *s, size_t len);

/* Writes code point cp (<= 0x10FFFF, not a surrogate) as UTF-8 to out;
 * returns the number of bytes written (1..4). */
size_t fs_utf8_put(char *out, uint32_t cp);

#endif
