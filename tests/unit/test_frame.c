/* test_frame.c -- replay stream framing: MessagePack object sizes and JSON lines.
 *
 * For every MessagePack type the framer must report the exact object size,
 * NEED_MORE for every proper prefix (a reader calls again with more bytes),
 * and BAD with the span up to and including an impossible 0xc1 byte. The
 * framer needs no memory, so huge declared sizes and deep nesting must come
 * back quickly as NEED_MORE / OK rather than failing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "frame.h"

typedef struct mp_case {
    const char *name;
    const char *bytes;
    size_t len; /* == the object's size */
} mp_case;

#define CASE(name, s)                                                                              \
    {                                                                                              \
        name, s, sizeof(s) - 1                                                                     \
    }

static const mp_case objects[] = {
    CASE("positive fixint", "\x05"),
    CASE("positive fixint max", "\x7f"),
    CASE("negative fixint", "\xff"),
    CASE("negative fixint min", "\xe0"),
    CASE("nil", "\xc0"),
    CASE("false", "\xc2"),
    CASE("true", "\xc3"),
    CASE("float32", "\xca\x3f\x80\x00\x00"),
    CASE("float64", "\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00"),
    CASE("uint8", "\xcc\xff"),
    CASE("uint16", "\xcd\xff\xff"),
    CASE("uint32", "\xce\xff\xff\xff\xff"),
    CASE("uint64", "\xcf\xff\xff\xff\xff\xff\xff\xff\xff"),
    CASE("int8", "\xd0\x80"),
    CASE("int16", "\xd1\x80\x00"),
    CASE("int32", "\xd2\x80\x00\x00\x00"),
    CASE("int64", "\xd3\x80\x00\x00\x00\x00\x00\x00\x00"),
    CASE("fixstr empty", "\xa0"),
    CASE("fixstr", "\xa3"
                   "abc"),
    CASE("fixstr 31", "\xbf"
                      "0123456789012345678901234567890"),
    CASE("str8", "\xd9\x03"
                 "abc"),
    CASE("str8 empty", "\xd9\x00"),
    CASE("str16", "\xda\x00\x03"
                  "abc"),
    CASE("str32", "\xdb\x00\x00\x00\x03"
                  "abc"),
    CASE("str payload holds 0xc1", "\xa2\xc1\xc1"),
    CASE("bin8", "\xc4\x02\xc1\x00"),
    CASE("bin16", "\xc5\x00\x02\x01\x02"),
    CASE("bin32", "\xc6\x00\x00\x00\x02\x01\x02"),
    CASE("fixext1", "\xd4\x01\x02"),
    CASE("fixext2", "\xd5\x01\x02\x03"),
    CASE("fixext4", "\xd6\x01\x02\x03\x04\x05"),
    CASE("fixext8", "\xd7\x01"
                    "12345678"),
    CASE("fixext16", "\xd8\x01"
                     "0123456789abcdef"),
    CASE("ext8", "\xc7\x02\x05\xc1\xc1"),
    CASE("ext8 empty", "\xc7\x00\x05"),
    CASE("ext16", "\xc8\x00\x02\x05\x01\x02"),
    CASE("ext32", "\xc9\x00\x00\x00\x02\x05\x01\x02"),
    CASE("fixarray empty", "\x90"),
    CASE("fixarray", "\x93\x01\x02\x03"),
    CASE("array16", "\xdc\x00\x02\x01\xc0"),
    CASE("array32", "\xdd\x00\x00\x00\x02\x01\xc0"),
    CASE("fixmap empty", "\x80"),
    CASE("fixmap", "\x82\xa1"
                   "a\x01\xa1"
                   "b\xc0"),
    CASE("map16", "\xde\x00\x01\xa1"
                  "a\x01"),
    CASE("map32", "\xdf\x00\x00\x00\x01\xa1"
                  "a\x01"),
    CASE("nested", "\x92\x81\xa1"
                   "a\x91\x90\xd9\x01"
                   "x"),
    CASE("map of containers", "\x82\x93\x01\x02\x03\x81\xc0\xc0\xa1"
                              "k\xdc\x00\x01\xc4\x01\x00"),
    CASE("event", "\x83\xab"
                  "customer_id\xa2"
                  "c1\xa2"
                  "ts\xcf\x00\x00\x01\x8b\xcf\xe5\x68\x00\xa5"
                  "event\xa8"
                  "ad_click"),
};

static void test_object_sizes(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof objects / sizeof objects[0]; i++) {
        const mp_case *c = &objects[i];
        size_t n = 12345;
        fs_frame_status st = fs_frame_msgpack(c->bytes, c->len, &n);
        if (st != FS_FRAME_OK || n != c->len) {
            print_error("%s: status %d msg_len %zu, want OK %zu\n", c->name, st, n, c->len);
            fail();
        }
    }
}

/* The size does not depend on what follows the object. */
static void test_object_followed_by_more(void **state)
{
    (void)state;
    char buf[128];
    for (size_t i = 0; i < sizeof objects / sizeof objects[0]; i++) {
        const mp_case *c = &objects[i];
        assert_true(c->len + 8 <= sizeof buf);
        memcpy(buf, c->bytes, c->len);
        memcpy(buf + c->len, "\xc1\xdf\xff\xff\xff\xff\x00\x00", 8);
        size_t n = 0;
        assert_int_equal(fs_frame_msgpack(buf, c->len + 8, &n), FS_FRAME_OK);
        assert_int_equal(n, c->len);
    }
}

/* Every proper prefix of a valid object is incomplete, never OK or BAD. The
 * prefix is copied to its own allocation so ASan sees any over-read. */
static void test_every_truncation_needs_more(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof objects / sizeof objects[0]; i++) {
        const mp_case *c = &objects[i];
        for (size_t cut = 0; cut < c->len; cut++) {
            char *p = malloc(cut ? cut : 1);
            assert_non_null(p);
            memcpy(p, c->bytes, cut);
            size_t n = 777;
            fs_frame_status st = fs_frame_msgpack(p, cut, &n);
            free(p);
            if (st != FS_FRAME_NEED_MORE) {
                print_error("%s cut at %zu: status %d\n", c->name, cut, st);
                fail();
            }
        }
    }
}

static void expect_bad(const char *bytes, size_t len, size_t want_msg_len)
{
    size_t n = 0;
    assert_int_equal(fs_frame_msgpack(bytes, len, &n), FS_FRAME_BAD);
    assert_int_equal(n, want_msg_len);
}

static void test_c1_at_start(void **state)
{
    (void)state;
    expect_bad("\xc1", 1, 1);
    expect_bad("\xc1\x81\xa1"
               "a\x01",
               5, 1); /* only the bad byte; the map after it is the next message */
    expect_bad("\xc1\xc1", 2, 1);
}

static void test_c1_nested(void **state)
{
    (void)state;
    expect_bad("\x92\x01\xc1", 3, 3);
    expect_bad("\x92\x01\xc1\x02\x03", 5, 3);
    expect_bad("\x82\xa1"
               "a\xc1\xa1"
               "b\x02",
               7, 4);                 /* as a value */
    expect_bad("\x81\xc1\x01", 3, 2); /* as a key */
    expect_bad("\x91\x91\x91\x91\xc1", 5, 5);
    expect_bad("\xdd\xff\xff\xff\xff\xc0\xc0\xc1", 8, 8); /* inside a huge array */
}

/* Huge declared sizes cost nothing: the object is simply incomplete. */
static void test_huge_declared_sizes(void **state)
{
    (void)state;
    size_t n;
    assert_int_equal(fs_frame_msgpack("\xdf\xff\xff\xff\xff\xa1"
                                      "a\x01\xa1"
                                      "b",
                                      10, &n),
                     FS_FRAME_NEED_MORE);
    assert_int_equal(fs_frame_msgpack("\xdb\xff\xff\xff\xff"
                                      "abc",
                                      8, &n),
                     FS_FRAME_NEED_MORE);
    assert_int_equal(fs_frame_msgpack("\xc6\xff\xff\xff\xff\x00", 6, &n), FS_FRAME_NEED_MORE);
    assert_int_equal(fs_frame_msgpack("\xc9\xff\xff\xff\xff\x01", 6, &n), FS_FRAME_NEED_MORE);

    /* 100000 nils inside an array32 declaring 2^32-1 elements. */
    size_t len = 5 + 100000;
    char *buf = malloc(len);
    assert_non_null(buf);
    memcpy(buf, "\xdd\xff\xff\xff\xff", 5);
    memset(buf + 5, 0xc0, 100000);
    assert_int_equal(fs_frame_msgpack(buf, len, &n), FS_FRAME_NEED_MORE);
    /* Nested map32s each declaring the maximum: pending grows, no overflow. */
    for (size_t i = 0; i + 5 <= len; i += 5)
        memcpy(buf + i, "\xdf\xff\xff\xff\xff", 5);
    assert_int_equal(fs_frame_msgpack(buf, len, &n), FS_FRAME_NEED_MORE);
    free(buf);
}

/* Deep nesting needs no stack: 100000 nested one-element arrays frame fine. */
static void test_deep_nesting(void **state)
{
    (void)state;
    size_t depth = 100000;
    char *buf = malloc(depth + 1);
    assert_non_null(buf);
    memset(buf, 0x91, depth);
    buf[depth] = (char)0xc0;
    size_t n = 0;
    assert_int_equal(fs_frame_msgpack(buf, depth + 1, &n), FS_FRAME_OK);
    assert_int_equal(n, depth + 1);
    assert_int_equal(fs_frame_msgpack(buf, depth, &n), FS_FRAME_NEED_MORE);
    free(buf);
}

/* Cutting a stream of concatenated objects the way the replay reader does. */
static void test_stream(void **state)
{
    (void)state;
    const char stream[] = "\x81\xa1"
                          "a\x01"
                          "\xc1"
                          "\x05"
                          "\x92\xc1"
                          "\x93\x01";
    size_t len = sizeof stream - 1, pos = 0, n;
    assert_int_equal(fs_frame_msgpack(stream + pos, len - pos, &n), FS_FRAME_OK);
    assert_int_equal(n, 4);
    pos += n;
    assert_int_equal(fs_frame_msgpack(stream + pos, len - pos, &n), FS_FRAME_BAD);
    assert_int_equal(n, 1);
    pos += n;
    assert_int_equal(fs_frame_msgpack(stream + pos, len - pos, &n), FS_FRAME_OK);
    assert_int_equal(n, 1);
    pos += n;
    assert_int_equal(fs_frame_msgpack(stream + pos, len - pos, &n), FS_FRAME_BAD);
    assert_int_equal(n, 2);
    pos += n;
    assert_int_equal(fs_frame_msgpack(stream + pos, len - pos, &n), FS_FRAME_NEED_MORE);
}

/* ---- JSON lines ---------------------------------------------------------- */

static void expect_line(const char *buf, size_t len, size_t want_msg, size_t want_consumed)
{
    size_t m = 999, c = 999;
    assert_int_equal(fs_frame_jsonl(buf, len, &m, &c), FS_FRAME_OK);
    assert_int_equal(m, want_msg);
    assert_int_equal(c, want_consumed);
}

static void test_jsonl_newlines(void **state)
{
    (void)state;
    expect_line("{}\n{}", 5, 2, 3);
    expect_line("{}\r\n{}", 6, 2, 4); /* CRLF: the \r is not part of the message */
    expect_line("\n", 1, 0, 1);       /* an empty line */
    expect_line("\r\n", 2, 0, 2);
    expect_line("a\rb\n", 4, 3, 4);  /* a \r elsewhere stays */
    expect_line("a\r\r\n", 4, 2, 4); /* only one \r is stripped */
    size_t m, c;
    assert_int_equal(fs_frame_jsonl("{\"a\":1}", 7, &m, &c), FS_FRAME_NEED_MORE);
    assert_int_equal(fs_frame_jsonl("{}\r", 3, &m, &c), FS_FRAME_NEED_MORE);
    assert_int_equal(fs_frame_jsonl("", 0, &m, &c), FS_FRAME_NEED_MORE);
    /* The '\n' is searched only within len. */
    assert_int_equal(fs_frame_jsonl("ab\n", 2, &m, &c), FS_FRAME_NEED_MORE);
}

static void test_blank_lines(void **state)
{
    (void)state;
    assert_true(fs_line_is_blank("", 0));
    assert_true(fs_line_is_blank(" \t\r ", 4));
    assert_false(fs_line_is_blank(" x ", 3));
    assert_false(fs_line_is_blank("\v", 1)); /* not JSON whitespace */
    assert_false(fs_line_is_blank("\0", 1));
}

/* A whole file: messages, blank lines and a last line without '\n'. */
static void test_jsonl_file(void **state)
{
    (void)state;
    const char file[] = "{\"n\":1}\n\n  \t\n{\"n\":2}\r\n\r\n{\"n\":3}";
    const char *want[] = {"{\"n\":1}", "{\"n\":2}", "{\"n\":3}"};
    size_t len = sizeof file - 1, pos = 0, got = 0;
    while (pos < len) {
        size_t m, c;
        if (fs_frame_jsonl(file + pos, len - pos, &m, &c) == FS_FRAME_NEED_MORE)
            m = c = len - pos; /* end of input: the rest is the last line */
        if (!fs_line_is_blank(file + pos, m)) {
            assert_true(got < 3);
            assert_int_equal(m, strlen(want[got]));
            assert_memory_equal(file + pos, want[got], m);
            got++;
        }
        pos += c;
    }
    assert_int_equal(got, 3);
}

/* ---- resumable framing ---- */

#define PIECE (64u << 10) /* what one read of a pipe gives */

/* Feeds buf[0..len) to a framer in PIECE-sized steps, as the replay reader
 * does with a pipe: NEED_MORE until the last piece, then OK for the whole
 * object. Returns the bytes the framer walked over in all. */
static uint64_t frame_in_pieces(bool msgpack, const char *buf, size_t len)
{
    fs_framer f = {0};
    size_t n = 0, consumed = 0;
    for (size_t have = PIECE < len ? PIECE : len;; have = have + PIECE < len ? have + PIECE : len) {
        fs_frame_status st = msgpack ? fs_framer_msgpack(&f, buf, have, &n)
                                     : fs_framer_jsonl(&f, buf, have, &n, &consumed);
        if (have < len) {
            assert_int_equal(st, FS_FRAME_NEED_MORE);
            continue;
        }
        assert_int_equal(st, FS_FRAME_OK);
        assert_int_equal(n, msgpack ? len : len - 1);
        break;
    }
    assert_int_equal(f.pos, 0); /* ready for the next message */
    return f.examined;
}

/* A message that arrives in many pieces is walked once: the bytes examined
 * stay within twice its size (a header cut by a piece is read again), where
 * restarting at every piece walked about size^2 / (2 * PIECE) bytes -- 53 s
 * for a 60 MB message on a pipe (issue 13 item 14). */
static void test_resume_is_linear(void **state)
{
    (void)state;
    /* {"k": [nil x 2M], "b": bin32 of 1 MB, "s": "..."}: many small values
     * and one long payload, together about 3 MB. */
    const size_t nils = 2u << 20, bin = 1u << 20;
    size_t len = 1 + 2 + 5 + nils + 2 + 5 + bin + 2 + 2;
    char *buf = malloc(len), *p = buf;
    assert_non_null(buf);
    memcpy(p, "\x83\xa1k\xdd", 4), p += 4;
    *p++ = (char)(nils >> 24), *p++ = (char)(nils >> 16), *p++ = (char)(nils >> 8), *p++ = 0;
    memset(p, 0xc0, nils), p += nils;
    memcpy(p,
           "\xa1"
           "b\xc6",
           3),
        p += 3;
    *p++ = 0, *p++ = (char)(bin >> 16), *p++ = 0, *p++ = 0;
    memset(p, 'x', bin), p += bin;
    memcpy(p, "\xa1s\xa0", 3), p += 3;
    len = (size_t)(p - buf);
    uint64_t examined = frame_in_pieces(true, buf, len);
    if (examined > 2 * (uint64_t)len)
        print_error("examined %llu bytes of a %zu-byte object\n", (unsigned long long)examined,
                    len);
    assert_true(examined <= 2 * (uint64_t)len);

    /* A 3 MB JSON line: the search for its '\n' resumes too. */
    memset(buf, 'a', len - 1);
    buf[len - 1] = '\n';
    examined = frame_in_pieces(false, buf, len);
    assert_true(examined <= 2 * (uint64_t)len);
    free(buf);
}

/* Resuming gives what framing the whole buffer at once gives, wherever the
 * first call stopped: every object, cut at every byte, then complete; and
 * the same for a BAD object and a stream of several. */
static void test_resume_matches_one_shot(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof objects / sizeof objects[0]; i++) {
        const mp_case *c = &objects[i];
        for (size_t cut = 0; cut < c->len; cut++) {
            fs_framer f = {0};
            size_t n = 777;
            assert_int_equal(fs_framer_msgpack(&f, c->bytes, cut, &n), FS_FRAME_NEED_MORE);
            assert_true(f.pos <= cut);
            assert_int_equal(fs_framer_msgpack(&f, c->bytes, c->len, &n), FS_FRAME_OK);
            assert_int_equal(n, c->len);
            assert_int_equal(f.pos, 0);
            assert_true(f.examined <= c->len);
        }
    }
    static const char bad[] = "\x93\x01\x92\x02\xc1\x03";
    for (size_t cut = 0; cut < 5; cut++) {
        fs_framer f = {0};
        size_t n = 0;
        assert_int_equal(fs_framer_msgpack(&f, bad, cut, &n), FS_FRAME_NEED_MORE);
        assert_int_equal(fs_framer_msgpack(&f, bad, sizeof bad - 1, &n), FS_FRAME_BAD);
        assert_int_equal(n, 5);
    }
    /* One framer across a stream: it is ready for the next message after each. */
    static const char two[] = "\x82\xa1"
                              "a\x01\xa1"
                              "b\xc0\x92\xa1x\xcc\x05";
    fs_framer f = {0};
    size_t n = 0;
    assert_int_equal(fs_framer_msgpack(&f, two, 3, &n), FS_FRAME_NEED_MORE);
    assert_int_equal(fs_framer_msgpack(&f, two, sizeof two - 1, &n), FS_FRAME_OK);
    assert_int_equal(n, 7);
    assert_int_equal(fs_framer_msgpack(&f, two + 7, 3, &n), FS_FRAME_NEED_MORE);
    assert_int_equal(fs_framer_msgpack(&f, two + 7, sizeof two - 8, &n), FS_FRAME_OK);
    assert_int_equal(n, sizeof two - 8);
    size_t consumed = 0;
    assert_int_equal(fs_framer_jsonl(&f, "ab", 2, &n, &consumed), FS_FRAME_NEED_MORE);
    assert_int_equal(fs_framer_jsonl(&f, "abc\r\nd", 6, &n, &consumed), FS_FRAME_OK);
    assert_int_equal(n, 3);
    assert_int_equal(consumed, 5);
    assert_int_equal(fs_framer_jsonl(&f, "d", 1, &n, &consumed), FS_FRAME_NEED_MORE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_object_sizes),
        cmocka_unit_test(test_object_followed_by_more),
        cmocka_unit_test(test_every_truncation_needs_more),
        cmocka_unit_test(test_c1_at_start),
        cmocka_unit_test(test_c1_nested),
        cmocka_unit_test(test_huge_declared_sizes),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_stream),
        cmocka_unit_test(test_jsonl_newlines),
        cmocka_unit_test(test_blank_lines),
        cmocka_unit_test(test_jsonl_file),
        cmocka_unit_test(test_resume_is_linear),
        cmocka_unit_test(test_resume_matches_one_shot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
