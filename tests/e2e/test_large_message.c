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

/* Runs replay on data, as the file `path` or, with path NULL, through a
 * pipe the test writes to; returns its stderr (the summary). */
static char *replay(const char *path, const char *data, size_t len, const char *format)
{
    static char cfg_path[4096];
    if (!cfg_path[0]) {
        char *p = fs_e2e_write_text(".yaml", cfg_yaml);
        snprintf(cfg_path, sizeof cfg_path, "%s", p);
        free(p);
    }
    char *err_path = fs_e2e_write_text(".log", "");
    int in[2] = {-1, -1};
    if (!path)
        assert_int_equal(pipe(in), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int err = open(err_path, O_WRONLY | O_TRUNC);
        int out = open("/dev/null", O_WRONLY);
        if (!path) {
            dup2(in[0], STDIN_FILENO);
            close(in[0]), close(in[1]);
        }
        dup2(out, STDOUT_FILENO);
        dup2(err, STDERR_FILENO);
        execl(fs_e2e_bin(), "funnelstream", "replay", "--quiet", "--threads", "4", "--config",
              cfg_path, "--format", format, "--input", path ? path : "-", (char *)NULL);
        _exit(127);
    }
    if (!path) {
        close(in[0]);
        for (size_t off = 0; off < len;) {
            ssize_t w = write(in[1], data + off, len - off);
            assert_true(w > 0);
            off += (size_t)w;
        }
        close(in[1]);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    size_t n;
    char *err = fs_e2e_read_file(err_path, &n);
    assert_non_null(err);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        print_error("replay failed (status %d):\n%s\n", status, err);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
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
static void check_bounded(const char *suffix, const char *format, const char *big, size_t big_len,
                          const char *tiny, size_t tiny_len)
{
    char *tiny_path = fs_e2e_write_file(suffix, tiny, tiny_len);
    char *s = replay(tiny_path, NULL, 0, format);
    long base = max_rss_kb(s);
    free(s);
    free(tiny_path);

    char *big_path = fs_e2e_write_file(suffix, big, big_len);
    for (int piped = 0; piped < 2; piped++) {
        s = replay(piped ? NULL : big_path, big, big_len, format);
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
    free(big);
    free(tiny);
}

static void test_json_long_string(void **state)
{
    (void)state;
    size_t big_len, tiny_len;
    char *big = json_string(BIG, &big_len), *tiny = json_string(1, &tiny_len);
    check_bounded(".jsonl", "json", big, big_len, tiny, tiny_len);
    free(big);
    free(tiny);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_msgpack_array_of_nils),
        cmocka_unit_test(test_json_long_string),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
