/* bench_decode.c -- single-core decode throughput against msgpack-c's ceiling.
 *
 * Usage: bench_decode FILE [msgpack|json]
 *
 * Reads a replay file (concatenated MessagePack objects or JSON lines; the
 * format defaults from the name) fully into memory, then times, best of 3:
 *
 *   msgpack:
 *     a1  msgpack_unpack_next into a msgpack_unpacked (a fresh zone per
 *         object: msgpack-c's convenience API) -- walking the stream only
 *     a2  msgpack_unpack into one reused, cleared zone -- the decode ceiling
 *     b   fs_frame_msgpack + fs_decode_msgpack per message
 *     b2  fs_frame_msgpack + fs_decode_framed (what replay does: the reader
 *         frames, the workers decode)
 *     b3  fs_decode_msgpack_next: framing and decoding in one pass
 *   json:
 *     c0  fs_frame_jsonl + jsmn tokenising each line, nothing else
 *     cr  fs_frame_jsonl + fs_decode_json_reference (the jsmn decoder alone)
 *     c   fs_frame_jsonl + fs_decode_json per non-blank line
 *
 * and prints events/s, MB/s of input and ns/event for each, from the thread's
 * CPU time (so that other load on a shared machine does not count; the best
 * wall-clock ns/event is shown too). Set
 * BENCH_DECODE_ONLY=b (or a1, a2, b2, b3, c0, cr, c) to run one variant, e.g. under perf. Every
 * variant folds something from each event into a checksum that is printed, so the compiler cannot
 * drop the work.
 */
#include <msgpack.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define JSMN_STATIC
#define JSMN_STRICT
#define JSMN_PARENT_LINKS
#include <jsmn.h>

#include "decode.h"
#include "frame.h"
#include "util.h"

#define RUNS 3

typedef struct input {
    const char *buf;
    size_t len;
} input;

typedef struct result {
    uint64_t events; /* messages seen */
    uint64_t ok;     /* of which valid (for our decoders) */
    uint64_t checksum;
} result;

typedef result (*bench_fn)(const input *in);

static double clock_s(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(1);
    }
    size_t cap = 1 << 20, n = 0;
    char *buf = fs_xmalloc(cap);
    for (;;) {
        if (n == cap)
            buf = fs_xrealloc(buf, cap *= 2);
        size_t got = fread(buf + n, 1, cap - n, f);
        if (got == 0)
            break;
        n += got;
    }
    if (ferror(f)) {
        perror(path);
        exit(1);
    }
    fclose(f);
    *len = n;
    return buf;
}

/* ---- msgpack ------------------------------------------------------------ */

static result mp_unpack_next(const input *in)
{
    result r = {0, 0, 0};
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    while (off < in->len) {
        msgpack_unpack_return ret = msgpack_unpack_next(&u, in->buf, in->len, &off);
        if (ret != MSGPACK_UNPACK_SUCCESS)
            break;
        r.events++;
        r.ok += u.data.type == MSGPACK_OBJECT_MAP;
        r.checksum += u.data.via.map.size;
    }
    msgpack_unpacked_destroy(&u);
    return r;
}

static result mp_unpack_zone(const input *in)
{
    result r = {0, 0, 0};
    msgpack_zone zone;
    if (!msgpack_zone_init(&zone, 8192))
        abort();
    size_t off = 0;
    while (off < in->len) {
        msgpack_object obj;
        msgpack_zone_clear(&zone);
        msgpack_unpack_return ret = msgpack_unpack(in->buf, in->len, &off, &zone, &obj);
        if (ret != MSGPACK_UNPACK_SUCCESS && ret != MSGPACK_UNPACK_EXTRA_BYTES)
            break;
        r.events++;
        r.ok += obj.type == MSGPACK_OBJECT_MAP;
        r.checksum += obj.via.map.size;
    }
    msgpack_zone_destroy(&zone);
    return r;
}

static void fold(result *r, const fs_event *ev)
{
    r->ok++;
    r->checksum += (uint64_t)ev->ts ^ ev->customer_hash ^ ev->event.len ^ ev->channel.len;
}

static result fs_msgpack(const input *in)
{
    result r = {0, 0, 0};
    fs_decoder *dec = fs_decoder_new();
    size_t pos = 0;
    while (pos < in->len) {
        size_t n = 0;
        fs_frame_status st = fs_frame_msgpack(in->buf + pos, in->len - pos, &n);
        if (st == FS_FRAME_NEED_MORE)
            n = in->len - pos; /* the incomplete tail: one rejection */
        r.events++;
        if (st == FS_FRAME_OK) {
            fs_event ev;
            if (fs_decode_msgpack(dec, in->buf + pos, n, &ev) == FS_OK)
                fold(&r, &ev);
        }
        pos += n;
    }
    fs_decoder_free(dec);
    return r;
}

static result fs_msgpack_framed(const input *in)
{
    result r = {0, 0, 0};
    fs_decoder *dec = fs_decoder_new();
    size_t pos = 0;
    while (pos < in->len) {
        size_t n = 0, used;
        fs_frame_status st = fs_frame_msgpack(in->buf + pos, in->len - pos, &n);
        if (st == FS_FRAME_NEED_MORE)
            n = in->len - pos;
        r.events++;
        if (st == FS_FRAME_OK) {
            fs_event ev;
            if (fs_decode_framed(dec, FS_FORMAT_MSGPACK, in->buf + pos, n, &ev, NULL, &used) ==
                FS_OK)
                fold(&r, &ev);
        }
        pos += n;
    }
    fs_decoder_free(dec);
    return r;
}

static result fs_msgpack_next(const input *in)
{
    result r = {0, 0, 0};
    fs_decoder *dec = fs_decoder_new();
    size_t pos = 0;
    while (pos < in->len) {
        size_t n = 0;
        fs_event ev;
        fs_reject why;
        fs_frame_status st =
            fs_decode_msgpack_next(dec, in->buf + pos, in->len - pos, &n, &ev, &why);
        if (st == FS_FRAME_NEED_MORE)
            n = in->len - pos;
        r.events++;
        if (st == FS_FRAME_OK && why == FS_OK)
            fold(&r, &ev);
        pos += n;
    }
    fs_decoder_free(dec);
    return r;
}

/* ---- JSON lines ---------------------------------------------------------- */

/* The next non-blank line at or after *pos, as the replay reader cuts them. */
static bool next_line(const input *in, size_t *pos, const char **line, size_t *n)
{
    while (*pos < in->len) {
        size_t consumed;
        if (fs_frame_jsonl(in->buf + *pos, in->len - *pos, n, &consumed) == FS_FRAME_NEED_MORE)
            *n = consumed = in->len - *pos; /* the last line has no '\n' */
        *line = in->buf + *pos;
        *pos += consumed;
        if (!fs_line_is_blank(*line, *n))
            return true;
    }
    return false;
}

static result jsmn_only(const input *in)
{
    result r = {0, 0, 0};
    unsigned ntok = 256;
    jsmntok_t *tok = fs_xmalloc(ntok * sizeof *tok);
    size_t pos = 0, n;
    const char *line;
    while (next_line(in, &pos, &line, &n)) {
        jsmn_parser p;
        jsmn_init(&p);
        int t = jsmn_parse(&p, line, n, tok, ntok);
        r.events++;
        if (t > 0) {
            r.ok++;
            r.checksum += (uint64_t)t + (uint64_t)tok[0].end;
        }
    }
    free(tok);
    return r;
}

typedef fs_reject (*json_decode_fn)(fs_decoder *, const char *, size_t, fs_event *, char *,
                                    size_t *);

static result json_with(const input *in, json_decode_fn decode)
{
    result r = {0, 0, 0};
    fs_decoder *dec = fs_decoder_new();
    size_t cap = 4096;
    char *scratch = fs_xmalloc(cap);
    size_t pos = 0, n;
    const char *line;
    while (next_line(in, &pos, &line, &n)) {
        if (n > cap) {
            free(scratch);
            scratch = fs_xmalloc(cap = n);
        }
        fs_event ev;
        size_t used;
        r.events++;
        if (decode(dec, line, n, &ev, scratch, &used) == FS_OK)
            fold(&r, &ev);
    }
    free(scratch);
    fs_decoder_free(dec);
    return r;
}

static result fs_json(const input *in)
{
    return json_with(in, fs_decode_json);
}

static result fs_json_reference(const input *in)
{
    return json_with(in, fs_decode_json_reference);
}

/* ---- driver -------------------------------------------------------------- */

static void run(const char *id, const char *name, bench_fn fn, const input *in)
{
    const char *only = getenv("BENCH_DECODE_ONLY");
    if (only && strcmp(only, id) != 0)
        return;
    double best = 1e300, best_wall = 1e300;
    result r = {0, 0, 0};
    for (int i = 0; i < RUNS; i++) {
        double c0 = clock_s(CLOCK_THREAD_CPUTIME_ID), w0 = clock_s(CLOCK_MONOTONIC);
        r = fn(in);
        double dt = clock_s(CLOCK_THREAD_CPUTIME_ID) - c0, wall = clock_s(CLOCK_MONOTONIC) - w0;
        if (dt < best)
            best = dt;
        if (wall < best_wall)
            best_wall = wall;
    }
    double ev = r.events ? (double)r.events : 1;
    printf("%-2s %-38s %9.0f events/s %7.1f MB/s %6.1f ns/event (wall %6.1f) [%llu events, "
           "%llu ok, checksum %016llx]\n",
           id, name, ev / best, (double)in->len / best / 1e6, best * 1e9 / ev, best_wall * 1e9 / ev,
           (unsigned long long)r.events, (unsigned long long)r.ok, (unsigned long long)r.checksum);
    fflush(stdout);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: bench_decode FILE [msgpack|json]\n");
        return 2;
    }
    const char *fmt = argc == 3                                                     ? argv[2]
                      : ends_with(argv[1], ".jsonl") || ends_with(argv[1], ".json") ? "json"
                                                                                    : "msgpack";
    if (strcmp(fmt, "msgpack") != 0 && strcmp(fmt, "json") != 0) {
        fprintf(stderr, "bench_decode: format must be msgpack or json\n");
        return 2;
    }
    input in;
    char *buf = read_file(argv[1], &in.len);
    in.buf = buf;
    printf("%s: %.1f MB, %s, best of %d runs, one thread\n", argv[1], (double)in.len / 1e6, fmt,
           RUNS);
    if (strcmp(fmt, "msgpack") == 0) {
        run("a1", "msgpack_unpack_next (zone per object)", mp_unpack_next, &in);
        run("a2", "msgpack_unpack (reused zone)", mp_unpack_zone, &in);
        run("b", "fs_frame_msgpack + fs_decode_msgpack", fs_msgpack, &in);
        run("b2", "fs_frame_msgpack + fs_decode_framed", fs_msgpack_framed, &in);
        run("b3", "fs_decode_msgpack_next", fs_msgpack_next, &in);
    } else {
        run("c0", "fs_frame_jsonl + jsmn_parse only", jsmn_only, &in);
        run("cr", "fs_frame_jsonl + fs_decode_json_reference", fs_json_reference, &in);
        run("c", "fs_frame_jsonl + fs_decode_json", fs_json, &in);
    }
    free(buf);
    return 0;
}
