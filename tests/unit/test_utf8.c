/* test_utf8.c -- fs_utf8_valid against RFC 3629's boundaries, and fs_utf8_put.
 *
 * The validator has an 8-bytes-at-a-time ASCII fast path, so every boundary
 * case is also checked at each offset 0..16 inside an ASCII string: a bad or
 * good sequence must be judged the same wherever the fast path stops.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "utf8.h"

typedef struct utf8_case {
    const char *bytes;
    size_t len;
    bool valid;
} utf8_case;

#define GOOD(s)                                                                                    \
    {                                                                                              \
        s, sizeof(s) - 1, true                                                                     \
    }
#define BAD(s)                                                                                     \
    {                                                                                              \
        s, sizeof(s) - 1, false                                                                    \
    }

static const utf8_case cases[] = {
    GOOD(""),
    GOOD("a"),
    GOOD("\x7f"),
    GOOD("\0"),               /* U+0000 is a valid code point */
    GOOD("\xc2\x80"),         /* U+0080, smallest 2-byte */
    GOOD("\xc3\xa9"),         /* é */
    GOOD("\xdf\xbf"),         /* U+07FF */
    GOOD("\xe0\xa0\x80"),     /* U+0800, smallest 3-byte */
    GOOD("\xe2\x82\xac"),     /* € */
    GOOD("\xed\x9f\xbf"),     /* U+D7FF, just below the surrogates */
    GOOD("\xee\x80\x80"),     /* U+E000, just above */
    GOOD("\xef\xbf\xbf"),     /* U+FFFF */
    GOOD("\xf0\x90\x80\x80"), /* U+10000, smallest 4-byte */
    GOOD("\xf0\x9f\x98\x80"), /* 😀 */
    GOOD("\xf4\x8f\xbf\xbf"), /* U+10FFFF, the largest */
    BAD("\x80"),              /* lone continuation */
    BAD("\xbf"),
    BAD("\xc0\x80"),         /* overlong NUL */
    BAD("\xc0\xaf"),         /* overlong '/' */
    BAD("\xc1\xbf"),         /* overlong U+007F */
    BAD("\xe0\x80\x80"),     /* overlong 3-byte */
    BAD("\xe0\x9f\xbf"),     /* overlong U+07FF */
    BAD("\xf0\x80\x80\x80"), /* overlong 4-byte */
    BAD("\xf0\x8f\xbf\xbf"), /* overlong U+FFFF */
    BAD("\xed\xa0\x80"),     /* U+D800, a surrogate */
    BAD("\xed\xbf\xbf"),     /* U+DFFF */
    BAD("\xf4\x90\x80\x80"), /* U+110000 */
    BAD("\xf5\x80\x80\x80"), /* F5..FF never appear */
    BAD("\xf7\xbf\xbf\xbf"),
    BAD("\xf8\x88\x80\x80\x80"),
    BAD("\xfc\x84\x80\x80\x80\x80"),
    BAD("\xfe"),
    BAD("\xff"),
    BAD("\xc3"),     /* truncated 2-byte */
    BAD("\xe2\x82"), /* truncated 3-byte */
    BAD("\xe2"),
    BAD("\xf0\x9f\x98"), /* truncated 4-byte */
    BAD("\xf0\x9f"),
    BAD("\xf0"),
    BAD("\xc3\x41"), /* continuation replaced by ASCII */
    BAD("\xe2\x41\xac"),
    BAD("\xe2\x82\x41"),
    BAD("\xf0\x9f\x41\x80"),
    BAD("\xf0\x9f\x98\x41"),
    BAD("\xc3\xa9\xa9"), /* one continuation too many */
    BAD("\xc3\xc3\xa9"),
};

static void check(const char *bytes, size_t len, bool want, size_t offset)
{
    if (fs_utf8_valid(bytes, len) != want) {
        print_error("case at offset %zu, len %zu:", offset, len);
        for (size_t i = 0; i < len; i++)
            print_error(" %02x", (unsigned char)bytes[i]);
        print_error(" expected %s\n", want ? "valid" : "invalid");
        fail();
    }
}

static void test_boundaries(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check(cases[i].bytes, cases[i].len, cases[i].valid, 0);
}

/* Each case embedded at offsets 0..16 of ASCII, with ASCII after it too:
 * the fast path must hand over to the sequence decoder at any alignment. */
static void test_cases_across_ascii_blocks(void **state)
{
    (void)state;
    char buf[64];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (size_t off = 0; off <= 16; off++) {
            for (size_t tail = 0; tail <= 9; tail += 9) {
                memset(buf, 'x', sizeof buf);
                memcpy(buf + off, cases[i].bytes, cases[i].len);
                size_t n = off + cases[i].len + tail;
                check(buf, n, cases[i].valid, off);
            }
        }
    }
}

static void test_ascii_fast_path(void **state)
{
    (void)state;
    char buf[40];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (char)(0x20 + i);
    for (size_t n = 0; n <= sizeof buf; n++)
        check(buf, n, true, 0);
    /* A high bit in any byte of any 8-byte block is noticed... */
    for (size_t pos = 0; pos < sizeof buf; pos++) {
        char b[sizeof buf];
        memcpy(b, buf, sizeof b);
        b[pos] = (char)0x80;
        check(b, sizeof b, false, pos);
        /* ...but not when it lies beyond len: the validator reads only len bytes. */
        check(b, pos, true, pos);
    }
}

/* A valid multi-byte sequence that straddles an 8-byte block boundary. */
static void test_sequence_straddles_block(void **state)
{
    (void)state;
    const char *seqs[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf4\x8f\xbf\xbf"};
    for (size_t s = 0; s < 3; s++) {
        size_t sl = strlen(seqs[s]);
        for (size_t off = 4; off <= 8; off++) {
            char buf[32];
            memset(buf, 'a', sizeof buf);
            memcpy(buf + off, seqs[s], sl);
            memcpy(buf + off + sl, seqs[s], sl); /* and two in a row */
            check(buf, sizeof buf, true, off);
            check(buf, off + sl - 1, false, off); /* cut inside the first */
        }
    }
}

/* Every code point fs_utf8_put can write is accepted, with the right length,
 * and surrogates written raw are not. */
static void test_put_roundtrip(void **state)
{
    (void)state;
    char out[4];
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
        size_t n;
        bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
        n = fs_utf8_put(out, cp);
        size_t want = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
        assert_int_equal(n, want);
        if (fs_utf8_valid(out, n) == surrogate) {
            print_error("U+%04X\n", cp);
            fail();
        }
    }
    assert_int_equal(fs_utf8_put(out, 0xE9), 2);
    assert_memory_equal(out, "\xc3\xa9", 2);
    assert_int_equal(fs_utf8_put(out, 0x1F600), 4);
    assert_memory_equal(out, "\xf0\x9f\x98\x80", 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_boundaries),      cmocka_unit_test(test_cases_across_ascii_blocks),
        cmocka_unit_test(test_ascii_fast_path), cmocka_unit_test(test_sequence_straddles_block),
        cmocka_unit_test(test_put_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
