/* fuzz_http.c -- libFuzzer target: the request path of /api/journeys.
 *
 * The input is what follows the route's prefix in a request target
 * ("/<id>" or "?id=<id>", any bytes): split at its first '?' into path and
 * query as h2o hands them to a handler (src/http/http.c on_request), it goes
 * through the functions the handler calls (src/stage/api.c serve_journeys):
 * fs_lookup_id (fs_http_query_param, fs_http_unescape, the UTF-8 check),
 * then fs_lookup_render against a live engine that holds the journeys of a
 * few customers with awkward ids. No sockets. Checked besides "no crash, no
 * leak, no sanitizer report":
 *   - fs_http_unescape equals a plain reference decoder, for several
 *     capacities; its length is at most the input's and the capacity;
 *   - fs_http_query_param returns the first parameter of that exact name,
 *     inside the query (a reference scan agrees), for several names;
 *   - fs_lookup_id: an id is 1..128 bytes of UTF-8 and is the reference
 *     decoding of the path segment or id= value; otherwise 404 when there
 *     is nothing to decode, 400 else, with a reason;
 *   - the rendered document is one strict JSON object (jsmn) ending in a
 *     newline; its customer_id decodes (fs_decode_json, the input decoder)
 *     back to exactly the id; "journeys" is non-empty exactly for the
 *     customers the engine holds.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define JSMN_STATIC
#define JSMN_STRICT
#include <jsmn.h>

#include "config.h"
#include "decode.h"
#include "engine.h"
#include "event.h"
#include "fuzz_check.h"
#include "lookup.h"
#include "request.h"
#include "utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char yaml[] = "window: {size: 1m}\n"
                           "funnels:\n"
                           "  - name: f1\n"
                           "    conversion_window: 1h\n"
                           "    stages:\n"
                           "      - {name: s_a, events: [a]}\n"
                           "      - {name: s_b, events: [b]}\n"
                           "      - {name: s_c, events: [c]}\n"
                           "  - name: f2\n"
                           "    stages:\n"
                           "      - {name: t_a, events: [a]}\n"
                           "      - {name: t_z, events: [z]}\n";

/* The customers with journeys: as decoded, and as JSON string text. */
static const struct {
    const char *id, *json;
} known[] = {
    {"c1", "\"c1\""},
    {"a/b c&d?\xc3\xa9%", "\"a/b c&d?\\u00e9%\""},
    {"..", "\"..\""},
    {"q\"uo\\te", "\"q\\\"uo\\\\te\""},
    {"tab\tnew\nline\x01", "\"tab\\tnew\\nline\\u0001\""},
    {"\xe2\x80\xa8<script>", "\"\\u2028<script>\""},
    {"\xf0\x9f\x98\x80", "\"\\ud83d\\ude00\""},
};
#define N_KNOWN (sizeof known / sizeof *known)

static fs_config *cfg;
static fs_engine *engine;
static fs_decoder *dec;

static int on_record(void *ctx, const char *key, size_t key_len, const char *value, size_t len)
{
    (void)ctx, (void)key, (void)key_len, (void)value, (void)len;
    return 0;
}

/* An engine that has applied one batch: one journey per known customer
 * (started at f1's s_a and f2's t_a, touched on channel "<b>&amp;"). */
static void setup(void)
{
    char err[256];
    cfg = fs_config_parse(yaml, strlen(yaml), "fuzz", err, sizeof err);
    if (!cfg) {
        fprintf(stderr, "fuzz_http: %s\n", err);
        abort();
    }
    fs_output o = {.write = on_record, .format = FS_FORMAT_JSON};
    engine = fs_engine_new(cfg, 1, o);
    dec = fs_decoder_new();
    fs_batch *b = fs_engine_batch_get(engine, FS_FORMAT_JSON);
    for (size_t i = 0; i < N_KNOWN; i++) {
        char msg[512];
        int len = snprintf(msg, sizeof msg,
                           "{\"customer_id\":%s,\"ts\":1732280400000,\"event\":\"a\","
                           "\"channel\":\"<b>&amp;\"}",
                           known[i].json);
        CHECK(len > 0 && (size_t)len < sizeof msg);
        fs_batch_reserve(b, (size_t)len);
        memcpy(b->buf + b->len, msg, (size_t)len);
        fs_batch_add(b, (uint32_t)b->len, (uint32_t)len, FS_OK);
        b->len += (size_t)len;
    }
    fs_engine_batch_publish(engine, b, false);
    while (fs_engine_batches_done(engine) < 1) /* the worker has applied it */
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    fs_engine_reader_enter(); /* this thread reads the table from now on */
}

/* Percent-decoding as RFC 3986 says, all at once, then the capacity. */
static long ref_unescape(const char *in, size_t len, char *out, size_t cap)
{
    size_t n = 0;
    char *tmp = malloc(len ? len : 1);
    CHECK(tmp);
    for (size_t i = 0; i < len; i++) {
        if (in[i] != '%') {
            tmp[n++] = in[i];
            continue;
        }
        if (i + 2 >= len || !isxdigit((unsigned char)in[i + 1]) ||
            !isxdigit((unsigned char)in[i + 2])) {
            free(tmp);
            return -1;
        }
        char hex[3] = {in[i + 1], in[i + 2], 0};
        tmp[n++] = (char)strtol(hex, NULL, 16);
        i += 2;
    }
    if (n > cap) {
        free(tmp);
        return -1;
    }
    memcpy(out, tmp, n);
    free(tmp);
    return (long)n;
}

static void check_unescape(const char *in, size_t len)
{
    static const size_t caps[] = {0, 1, 7, FS_MAX_CUSTOMER_ID, SIZE_MAX};
    char *got = malloc(len + 1), *want = malloc(len + 1);
    CHECK(got && want);
    for (size_t i = 0; i < sizeof caps / sizeof *caps; i++) {
        size_t cap = caps[i] == SIZE_MAX ? len : caps[i];
        long n = fs_http_unescape(in, len, got, cap);
        long r = ref_unescape(in, len, want, cap);
        CHECK(n == r);
        CHECK(n >= -1 && (n < 0 || ((size_t)n <= len && (size_t)n <= cap)));
        CHECK(n <= 0 || memcmp(got, want, (size_t)n) == 0);
    }
    free(got);
    free(want);
}

/* The first "name=" segment of the query, by a plain scan. */
static const char *ref_param(const char *q, size_t qlen, const char *name, size_t *len)
{
    size_t n = strlen(name), start = 0;
    if (!q)
        return NULL;
    for (size_t i = 0; i <= qlen; i++) {
        if (i < qlen && q[i] != '&')
            continue;
        size_t seg = i - start; /* q[start..i) */
        if (seg >= n + 1 && memcmp(q + start, name, n) == 0 && q[start + n] == '=') {
            *len = seg - n - 1;
            return q + start + n + 1;
        }
        start = i + 1;
    }
    return NULL;
}

static void check_params(const fs_http_request *req)
{
    static const char *const names[] = {"id", "i", "x", ""};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        size_t len = 0, rlen = 0;
        const char *v = fs_http_query_param(req, names[i], &len);
        const char *r = ref_param(req->query, req->query_len, names[i], &rlen);
        CHECK(v == r);
        if (v) {
            CHECK(len == rlen);
            CHECK(v >= req->query && v + len <= req->query + req->query_len);
            CHECK(memchr(v, '&', len) == NULL);
        }
    }
}

/* The document: one strict JSON object, customer_id first, whose text
 * decodes back to the id, then journeys: two for a known customer (one per
 * funnel), none for any other id. */
static void check_render(const char *id, size_t n)
{
    fs_buf out = {0};
    fs_lookup_render(engine, cfg, id, n, &out);
    CHECK(out.len > 2 && out.p[out.len - 1] == '\n');
    jsmn_parser p;
    jsmntok_t t[512];
    jsmn_init(&p);
    int nt = jsmn_parse(&p, out.p, out.len - 1, t, sizeof t / sizeof *t);
    CHECK(nt >= 5 && t[0].type == JSMN_OBJECT && t[0].start == 0 &&
          (size_t)t[0].end == out.len - 1);
    CHECK(t[1].type == JSMN_STRING && t[1].end - t[1].start == 11 &&
          memcmp(out.p + t[1].start, "customer_id", 11) == 0);
    CHECK(t[2].type == JSMN_STRING);

    /* The id as JSON, through the input decoder: exactly the id again. */
    const char *s = out.p + t[2].start - 1; /* with its quotes */
    size_t slen = (size_t)(t[2].end - t[2].start) + 2;
    fs_buf ev = {0};
    fs_buf_puts(&ev, "{\"customer_id\":");
    fs_buf_put(&ev, s, slen);
    fs_buf_puts(&ev, ",\"ts\":1,\"event\":\"a\"}");
    char *scratch = malloc(ev.len);
    CHECK(scratch);
    fs_event e;
    size_t used;
    CHECK(fs_decode_json(dec, ev.p, ev.len, &e, scratch, &used) == FS_OK);
    CHECK(e.customer_id.len == n && memcmp(e.customer_id.ptr, id, n) == 0);
    free(scratch);
    fs_buf_free(&ev);

    /* journeys: an array after the id, non-empty for a known customer */
    int j = 3;
    CHECK(t[j].type == JSMN_STRING && t[j].end - t[j].start == 8 &&
          memcmp(out.p + t[j].start, "journeys", 8) == 0 && t[j + 1].type == JSMN_ARRAY);
    bool is_known = false;
    for (size_t i = 0; i < N_KNOWN; i++)
        is_known |= strlen(known[i].id) == n && memcmp(known[i].id, id, n) == 0;
    CHECK((t[j + 1].size == 2) == is_known && (t[j + 1].size == 0) == !is_known);
    fs_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!engine)
        setup();
    const char *in = (const char *)data;
    const char *qm = memchr(in, '?', size);
    fs_http_request req = {in, qm ? (size_t)(qm - in) : size, qm ? qm + 1 : NULL,
                           qm ? size - (size_t)(qm - in) - 1 : 0};
    check_unescape(req.path, req.path_len);
    if (req.query)
        check_unescape(req.query, req.query_len);
    check_params(&req);

    char id[FS_MAX_CUSTOMER_ID], want[FS_MAX_CUSTOMER_ID];
    int status = 0;
    const char *error = NULL;
    long n = fs_lookup_id(&req, id, sizeof id, &status, &error);
    const char *raw = NULL;
    size_t raw_len = 0;
    if (req.path_len > 1 && req.path[0] == '/') {
        raw = req.path + 1;
        raw_len = req.path_len - 1;
    } else if (req.path_len == 0) {
        raw = ref_param(req.query, req.query_len, "id", &raw_len);
    }
    long r = raw ? ref_unescape(raw, raw_len, want, sizeof want) : -1;
    if (n >= 0) {
        CHECK(error == NULL && n >= 1 && n <= FS_MAX_CUSTOMER_ID);
        CHECK(n == r && memcmp(id, want, (size_t)n) == 0);
        CHECK(fs_utf8_valid(id, (size_t)n));
        check_render(id, (size_t)n);
    } else {
        CHECK(n == -1 && error != NULL && error[0] != '\0');
        CHECK(status == (raw ? 400 : 404));
        CHECK(!raw || r <= 0 || !fs_utf8_valid(want, (size_t)r));
    }
    return 0;
}
