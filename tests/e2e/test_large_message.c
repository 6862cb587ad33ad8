/* test_large_message.c -- one very large message costs memory in proportion
 * to its size, from a file and from a pipe (issue 13 items 13 and 14).
 *
 * A 60 MB MessagePack message (an array of 60M nils under an unknown key)
 * once took 1.5 GB of RSS: the decoder built msgpack-c's object tree, 24
 * bytes per nil and more per thread. The decoder now walks the bytes
 * (decode.c), so what is resident is the message itself (mapped from a
 * file, or the reader's buffer from a pipe). Each case replays a ~20 MB
 * message and requires the replay summary's max_rss_kb to exceed that of a
 * replay of a tiny file by less than 3x the message size (the pipe reader's
 * buffer doubles as it grows, so up to 2x is expected); the tree took 25x.
 * The difference, not the absolute figure, so sanitizer builds pass too.
 *
 * The pipe cases also walk the framer over ~300 reads of 64 KB each: with
 * the old framer, which restarted at every read, they took half a minute.
 * And a run of large messages must not pile up in the engine's batch ring.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e_util.h"

#define BIG (20u << 20)

static const char cfg_yaml[] = "window: {size: 1m, max_out_of_orderness: 0}\n"
                               "funnels:\n"
                               "  - name: f\n"
                               "    stages:\n"
                               "      - {name: s0, events: [e]}\n"
                               "      - {name: s1, events: [e2]}\n";

/* A valid event whose unknown key "x" holds `nils` nils. */
static char *msgpack_nils(size_t nils, size_t *len)
{
    static const char head[] = "\x84\xab"
                               "customer_id\xa1"
                               "c\xa2ts\xcf\x00\x00\x01\x93\x53\xf5\x38\x80\xa5"
                               "event\xa1"
                               "e\xa1x\xdd";
    size_t h = sizeof head - 1;
    char *b = malloc(h + 4 + nils);
    assert_non_null(b);
    memcpy(b, head, h);
    b[h] = (char)(nils >> 24), b[h + 1] = (char)(nils >> 16), b[h + 2] = (char)(nils >> 8);
    b[h + 3] = (char)nils;
    memset(b + h + 4, 0xc0, nils);
    *len = h + 4 + nils;
    return b;
}

/* A valid event whose unknown key "x" holds a string of n bytes. (A list
 * of millions of nulls would be a valid event too, but beyond 1M tokens the
 * exact JSON decoder calls it malformed: decode.c, JSON_MAX_TOKENS.) */
static char *json_string(size_t n, size_t *len)
{
    static const char head[] =
        "{\"customer_id\":\"c\",\"ts\":1732280400000,\"event\":\"e\",\"x\":\"";
    size_t h = sizeof head - 1;
    char *b = malloc(h + n + 3);
    assert_non_null(b);
    memcpy(b, head, h);
    memset(b + h, 'a', n);
    memcpy(b + h + n, "\"}\n", 3);
    *len = h + n + 3;
    return b;
}

/* Runs replay on the file at path, as its --input or, piped, through
 * `cat path |`; returns its stderr (the summary). The replay is started by
 * a shell that forks it: a process forked from this test would start with
 * the test's resident memory as its peak (fork copies the RSS high-water
 * mark, and max_rss_kb keeps it across exec). */
static char *replay(const char *path, bool piped, const char *format)
{
    static char cfg_path[4096];
    if (!cfg_path[0]) {
        char *p = fs_e2e_write_text(".yaml", cfg_yaml);
        snprintf(cfg_path, sizeof cfg_path, "%s", p);
        free(p);
    }
    char *err_path = fs_e2e_write_text(".log", "");
    char cmd[16384];
    /* Under AddressSanitizer freed memory waits in a quarantine (256 MB)
     * before reuse, which would count as resident here: none for this. */
    snprintf(cmd, sizeof cmd,
             "%s%s%s ASAN_OPTIONS=\"$ASAN_OPTIONS:quarantine_size_mb=0\" '%s' replay --quiet "
             "--threads 4 --config '%s' --format %s --input '%s' >/dev/null 2>'%s'; exit $?",
             piped ? "cat '" : "", piped ? path : "", piped ? "' |" : "", fs_e2e_bin(), cfg_path,
             format, piped ? "-" : path, err_path);
    int status = system(cmd);
    size_t n;
    char *err = fs_e2e_read_file(err_path, &n);
    assert_non_null(err);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        print_error("replay failed (status %d): %s\n%s\n", status, cmd, err);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    unlink(err_path);
    free(err_path);
    return err;
}

static long max_rss_kb(const char *summary)
{
    const char *p = strstr(summary, "max_rss_kb=");
    assert_non_null(p);
    return strtol(p + strlen("max_rss_kb="), NULL, 10);
}

/* Replays the big message from a file and from a pipe: one valid event
 * each time, and memory within 3x the message over the tiny replay's. */
static void check_bounded(const char *suffix, const char *format, char *big, size_t big_len,
                          char *tiny, size_t tiny_len)
{
    char *tiny_path = fs_e2e_write_file(suffix, tiny, tiny_len);
    char *big_path = fs_e2e_write_file(suffix, big, big_len);
    free(tiny);
    free(big);
    char *s = replay(tiny_path, false, format);
    long base = max_rss_kb(s);
    free(s);
    free(tiny_path);
    for (int piped = 0; piped < 2; piped++) {
        s = replay(big_path, piped, format);
        assert_contains(s, "events=1 valid=1 ", "replay summary");
        long rss = max_rss_kb(s);
        long limit = base + 3 * (long)(big_len >> 10);
        if (rss > limit)
            print_error("%s message of %zu bytes from a %s: max_rss_kb=%ld, base %ld, limit %ld\n",
                        format, big_len, piped ? "pipe" : "file", rss, base, limit);
        assert_true(rss <= limit);
        free(s);
    }
    unlink(big_path);
    free(big_path);
}

static void test_msgpack_array_of_nils(void **state)
{
    (void)state;
    size_t big_len, tiny_len;
    char *big = msgpack_nils(BIG, &big_len), *tiny = msgpack_nils(1, &tiny_len);
    check_bounded(".msgpack", "msgpack", big, big_len, tiny, tiny_len);
}

static void test_json_long_string(void **state)
{
    (void)state;
    size_t big_len, tiny_len;
    char *big = json_string(BIG, &big_len), *tiny = json_string(1, &tiny_len);
    check_bounded(".jsonl", "json", big, big_len, tiny, tiny_len);
}

/* Eight 10 MB messages in a row through a pipe: memory stays within 3x one
 * message, whatever the number of threads. Each fills a batch of its own,
 * and the engine's ring (2 * threads + 4 batches) once kept every one of
 * them: in flight, and then in the grown buffer of its slot. */
static void test_many_large_messages_through_a_pipe(void **state)
{
    (void)state;
    size_t one_len, tiny_len;
    char *one = msgpack_nils(BIG / 2, &one_len), *tiny = msgpack_nils(1, &tiny_len);
    char *tiny_path = fs_e2e_write_file(".msgpack", tiny, tiny_len);
    const int n = 8;
    char *stream = malloc((size_t)n * one_len);
    assert_non_null(stream);
    for (int i = 0; i < n; i++)
        memcpy(stream + (size_t)i * one_len, one, one_len);
    char *path = fs_e2e_write_file(".msgpack", stream, (size_t)n * one_len);
    free(stream);
    free(one);
    free(tiny);
    char *s = replay(tiny_path, false, "msgpack");
    long base = max_rss_kb(s);
    free(s);
    s = replay(path, true, "msgpack");
    assert_contains(s, "events=8 valid=8 ", "replay summary");
    long rss = max_rss_kb(s), limit = base + 3 * (long)(one_len >> 10);
    if (rss > limit)
        print_error("%d messages of %zu bytes from a pipe: max_rss_kb=%ld, base %ld, limit %ld\n",
                    n, one_len, rss, base, limit);
    assert_true(rss <= limit);
    free(s);
    unlink(path);
    free(path);
    free(tiny_path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_msgpack_array_of_nils),
        cmocka_unit_test(test_json_long_string),
        cmocka_unit_test(test_many_large_messages_through_a_pipe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
