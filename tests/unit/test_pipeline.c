/* test_pipeline.c -- the embedding API (include/funnelstream.h).
 *
 * The same generated traffic goes through a pipeline three ways: pushed one
 * message at a time, fed as a file descriptor, and half pushed then half
 * fed. The records must be byte-identical, because message order is all the
 * engine's output depends on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frame.h"
#include "funnelstream.h"
#include "generate.h"

#define EVENTS 20000

typedef struct collected {
    char *text;
    size_t len;
    FILE *f;
    size_t records;
} collected;

static int collect(void *ctx, const char *key, size_t key_len, const char *rec, size_t len)
{
    collected *c = ctx;
    assert_true(key_len > 0 && memchr(key, '/', key_len) != NULL);
    fwrite(rec, 1, len, c->f);
    fputc('\n', c->f);
    c->records++;
    return 0;
}

static char config_path[4096];

static char *generate(size_t *len)
{
    fs_gen_opts o;
    fs_gen_opts_default(&o);
    o.events = EVENTS;
    o.customers = 500;
    o.seed = 11;
    o.disorder_ms = 1500;
    o.malformed_ppm = 2000;
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    assert_int_equal(fs_generate(&o, f), 0);
    fclose(f);
    return buf;
}

static fs_pipeline *open_pipeline(collected *c)
{
    memset(c, 0, sizeof(*c));
    c->f = open_memstream(&c->text, &c->len);
    fs_pipeline *p = NULL;
    char err[256];
    assert_int_equal(fs_pipeline_new(config_path, 2, collect, c, &p, err, sizeof err), 0);
    return p;
}

static void close_pipeline(fs_pipeline *p, collected *c, fs_pipeline_stats *st)
{
    fs_pipeline_finish(p, st);
    fs_pipeline_free(p);
    fclose(c->f);
}

/* Pushes the framed messages of data[from..to). */
static size_t push_range(fs_pipeline *p, const char *data, size_t from, size_t to)
{
    size_t pos = from, n = 0;
    while (pos < to) {
        size_t len = 0;
        fs_frame_status st = fs_frame_msgpack(data + pos, to - pos, &len);
        assert_int_not_equal(st, FS_FRAME_NEED_MORE);
        fs_pipeline_push(p, data + pos, len);
        pos += len;
        n++;
    }
    return n;
}

static int temp_fd(const char *data, size_t len)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fflush(f);
    rewind(f);
    return dup(fileno(f)); /* the FILE closes at exit; the dup is ours */
}

static void test_push_equals_feed(void **state)
{
    (void)state;
    size_t len;
    char *data = generate(&len);

    collected pushed, fed, mixed;
    fs_pipeline_stats st_pushed, st_fed, st_mixed;

    fs_pipeline *p = open_pipeline(&pushed);
    assert_int_equal(push_range(p, data, 0, len), EVENTS);
    close_pipeline(p, &pushed, &st_pushed);

    p = open_pipeline(&fed);
    int fd = temp_fd(data, len);
    assert_int_equal(fs_pipeline_feed_fd(p, fd), 0);
    close(fd);
    close_pipeline(p, &fed, &st_fed);

    /* Cut at a message boundary near the middle. */
    size_t half = 0, l;
    while (half < len / 2 && fs_frame_msgpack(data + half, len - half, &l) == FS_FRAME_OK)
        half += l;
    p = open_pipeline(&mixed);
    push_range(p, data, 0, half);
    fd = temp_fd(data + half, len - half);
    assert_int_equal(fs_pipeline_feed_fd(p, fd), 0);
    close(fd);
    close_pipeline(p, &mixed, &st_mixed);

    assert_int_equal(st_pushed.messages, EVENTS);
    assert_true(st_pushed.rejected > 0); /* malformed_ppm 2000: about 40 */
    assert_true(pushed.records > 10);
    assert_int_equal(st_fed.messages, EVENTS);
    assert_int_equal(st_mixed.messages, EVENTS);
    assert_int_equal(pushed.len, fed.len);
    assert_memory_equal(pushed.text, fed.text, pushed.len);
    assert_int_equal(pushed.len, mixed.len);
    assert_memory_equal(pushed.text, mixed.text, pushed.len);
    free(pushed.text);
    free(fed.text);
    free(mixed.text);
    free(data);
}

static void test_bad_config_names_file(void **state)
{
    (void)state;
    fs_pipeline *p = (fs_pipeline *)1;
    char err[256] = "";
    assert_int_equal(
        fs_pipeline_new("/nonexistent/funnels.yaml", 1, collect, NULL, &p, err, sizeof err), -1);
    assert_null(p);
    assert_non_null(strstr(err, "/nonexistent/funnels.yaml"));
}

static void test_finish_without_input(void **state)
{
    (void)state;
    collected c;
    fs_pipeline *p = open_pipeline(&c);
    fs_pipeline_stats st;
    close_pipeline(p, &c, &st);
    assert_int_equal(st.messages, 0);
    assert_int_equal(c.records, 0);
    free(c.text);
}

int main(void)
{
    const char *src = getenv("FS_SOURCE_DIR");
    snprintf(config_path, sizeof config_path, "%s/configs/default.yaml", src ? src : ".");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_push_equals_feed),
        cmocka_unit_test(test_bad_config_names_file),
        cmocka_unit_test(test_finish_without_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
