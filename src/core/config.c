/* config.c -- the YAML configuration (SPEC §6): text -> validated fs_config.
 *
 * Loading has four steps.
 *
 *  0. The text is read once as a stream of parser events to check its size
 *     against FS_CONFIG_MAX_* (config.h): nodes with aliases expanded, keys
 *     per mapping, nesting. Building the document is what costs memory and
 *     time, so nothing is built until the bounds hold (see yaml_scan).
 *
 *  1. libfyaml parses the text into a document tree: anchors, aliases and merge
 *     keys are resolved, duplicate keys are rejected. Its diagnostics are
 *     collected instead of printed; the first one becomes our one-line
 *     "yaml syntax error". The whole stream is parsed, so a second document or
 *     a syntax error after the first document is reported too, not ignored;
 *     a NUL byte or a byte that is not UTF-8 (where libfyaml would quietly
 *     stop) is rejected up front.
 *
 *  2. A schema walk turns the tree into an fs_config. Every mapping of the
 *     schema is a table of known keys (cfg_field) and goes through
 *     walk_mapping, so unknown keys, missing required keys, null values and
 *     wrong node kinds are all handled in one place, each message naming the
 *     field path ("funnels[1].stages[0].events[2]").
 *
 *  3. Rules that relate several fields (an event type in two stages, hop versus
 *     size, unique names) run once all the fields they relate are known, because
 *     YAML key order is free.
 *
 * Positions. libfyaml 0.7 exposes a source mark only for scalar tokens, so the
 * position of a mapping or sequence is derived from its first child: that
 * child's position, moved back over blanks to the '{', '[' or '-' that opens the
 * collection when there is one. Empty collections and empty (null) values have
 * no token at all; they take the position of the text after their key's ':'
 * when that is on the same line, else the key's own. Positions are kept
 * as byte offsets into the source and turned into 1-based line:column (column
 * counted in characters) only when a message is formatted.
 *
 * Null values. An optional key whose value is null (empty, "~" or "null")
 * keeps its default, as if it were absent; a required key with a null value is
 * an error, and so is a null anywhere else (a sequence item, a kafka value).
 *
 * Ownership. Every string in fs_config is a private copy; the YAML document is
 * destroyed before fs_config_parse returns. Arrays are allocated zeroed at their
 * final length and filled in place, so fs_config_free can release a config
 * abandoned half-way through validation.
 */
#include "config.h"
#include "dict.h"
#include "utf8.h"
#include "util.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <libfyaml.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NO_POS                SIZE_MAX
#define PATH_LEN              256
#define MAX_FILE_BYTES        FS_CONFIG_MAX_BYTES
#define MAX_NAME_LEN          64  /* funnel names (they appear in Kafka keys) */
#define MAX_TOPIC_LEN         249 /* Kafka's own limit */
#define MAX_THREADS           1024
#define MAX_IN_FLIGHT_BATCHES 1024

#define MS_PER_S INT64_C(1000)
#define MS_PER_M (60 * MS_PER_S)
#define MS_PER_H (60 * MS_PER_M)
#define MS_PER_D (24 * MS_PER_H)

#define DEFAULT_INPUT_TOPIC          "touchpoints"
#define DEFAULT_OUTPUT_TOPIC         "funnel-metrics"
#define DEFAULT_HTTP_LISTEN          "127.0.0.1:8080"
#define DEFAULT_WINDOW_MS            MS_PER_M
#define DEFAULT_IDLE_TIMEOUT_MS      (30 * MS_PER_S)
#define DEFAULT_COMMIT_INTERVAL_MS   (1 * MS_PER_S)
#define DEFAULT_BROKER_TIMEOUT_MS    (30 * MS_PER_S)
#define DEFAULT_CONVERSION_WINDOW_MS (7 * MS_PER_D)
#define DEFAULT_MAX_BREAKDOWN_VALUES 1000

typedef struct cfg_ctx {
    const char *name; /* file name, as it appears in messages */
    const char *src;
    size_t src_len;
    char *err;
    size_t err_len;
} cfg_ctx;

/* One known key of a mapping: parse() receives the value node (never null)
 * and (char *)obj + off. */
typedef int (*cfg_parse_fn)(cfg_ctx *c, struct fy_node *n, size_t pos, const char *path, void *dst);
typedef struct cfg_field {
    const char *key;
    cfg_parse_fn parse;
    size_t off;
    bool required;
} cfg_field;

/* ---- durations ---------------------------------------------------------- */

typedef enum dur_status { DUR_OK, DUR_MALFORMED, DUR_ZERO, DUR_OVERFLOW } dur_status;

static dur_status duration_parse(const char *s, size_t len, int64_t *out)
{
    size_t i = 0;
    int64_t n = 0, unit;

    while (i < len && s[i] >= '0' && s[i] <= '9') {
        int d = s[i++] - '0';
        if (n > (INT64_MAX - d) / 10)
            return DUR_OVERFLOW;
        n = n * 10 + d;
    }
    if (i == 0)
        return DUR_MALFORMED;
    const char *u = s + i;
    size_t ulen = len - i;
    if (ulen == 2 && u[0] == 'm' && u[1] == 's')
        unit = 1;
    else if (ulen == 1 && u[0] == 's')
        unit = MS_PER_S;
    else if (ulen == 1 && u[0] == 'm')
        unit = MS_PER_M;
    else if (ulen == 1 && u[0] == 'h')
        unit = MS_PER_H;
    else if (ulen == 1 && u[0] == 'd')
        unit = MS_PER_D;
    else
        return DUR_MALFORMED;
    /* Capped as event times are (event.h), so that a time plus a few hundred
     * durations never overflows int64. */
    if (n > FS_TS_MAX / unit)
        return DUR_OVERFLOW;
    *out = n * unit;
    return n == 0 ? DUR_ZERO : DUR_OK;
}

int64_t fs_parse_duration(const char *s)
{
    int64_t ms;

    if (s == NULL || duration_parse(s, strlen(s), &ms) != DUR_OK)
        return -1;
    return ms;
}

/* ---- positions and messages ------------------------------------------- */

static size_t scalar_pos(const cfg_ctx *c, struct fy_node *n)
{
    struct fy_token *t = fy_node_get_scalar_token(n);
    const struct fy_mark *m = t ? fy_token_start_mark(t) : NULL;
    enum fy_node_style style = fy_node_get_style(n);
    size_t p;

    if (m == NULL)
        return NO_POS;
    /* the token of a quoted scalar starts inside the quotes */
    p = m->input_pos;
    if (p > 0 && p <= c->src_len &&
        ((style == FYNS_SINGLE_QUOTED && c->src[p - 1] == '\'') ||
         (style == FYNS_DOUBLE_QUOTED && c->src[p - 1] == '"')))
        p--;
    return p;
}

/* Where the value of key starts when it is on the key's line: the position of
 * a value that has no token of its own ({}, [], empty). */
static size_t value_start(const cfg_ctx *c, struct fy_node *key, size_t fallback)
{
    struct fy_token *t = key ? fy_node_get_scalar_token(key) : NULL;
    const struct fy_mark *m = t ? fy_token_end_mark(t) : NULL;
    const char *s = c->src;
    size_t i, n = c->src_len;

    if (m == NULL)
        return fallback;
    i = m->input_pos;
    if (i < n && (s[i] == '"' || s[i] == '\''))
        i++;
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    if (i >= n || s[i] != ':')
        return fallback;
    for (i++; i < n && (s[i] == ' ' || s[i] == '\t'); i++)
        ;
    if (i >= n || strchr("\r\n#,}", s[i]))
        return fallback;
    return i;
}

/* Moves pos back over blanks onto an opening character, if one is there. */
static size_t back_to_opener(const cfg_ctx *c, size_t pos, const char *openers)
{
    size_t i = pos;

    if (pos > c->src_len)
        return pos;
    while (i > 0 && strchr(" \t\r\n", c->src[i - 1]) && c->src[i - 1] != '\0')
        i--;
    if (i > 0 && c->src[i - 1] != '\0' && strchr(openers, c->src[i - 1]))
        return i - 1;
    return pos;
}

static size_t node_pos(const cfg_ctx *c, struct fy_node *n, size_t fallback)
{
    size_t p = NO_POS;
    void *it = NULL;

    if (n == NULL)
        return fallback;
    switch (fy_node_get_type(n)) {
    case FYNT_SCALAR:
        p = scalar_pos(c, n);
        break;
    case FYNT_MAPPING: {
        struct fy_node_pair *first = fy_node_mapping_iterate(n, &it);
        p = first ? node_pos(c, fy_node_pair_key(first), NO_POS) : NO_POS;
        if (p != NO_POS)
            p = back_to_opener(c, p, "{");
        break;
    }
    case FYNT_SEQUENCE:
        p = node_pos(c, fy_node_sequence_iterate(n, &it), NO_POS);
        if (p != NO_POS)
            p = back_to_opener(c, p, "[-");
        break;
    }
    return p == NO_POS ? fallback : p;
}

static void line_col(const cfg_ctx *c, size_t pos, unsigned *line, unsigned *col)
{
    unsigned l = 1, k = 1;
    size_t i = 0;

    if (c->src_len >= 3 && memcmp(c->src, "\xef\xbb\xbf", 3) == 0)
        i = 3; /* a byte order mark is not a column */
    for (; i < pos && i < c->src_len; i++) {
        unsigned char ch = (unsigned char)c->src[i];
        if (ch == '\n') {
            l++;
            k = 1;
        } else if ((ch & 0xC0) != 0x80) { /* count characters, not UTF-8 bytes */
            k++;
        }
    }
    *line = l;
    *col = k;
}

/* Keeps the message on one line whatever the YAML text put into it. */
static void one_line(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = ' ';
}

static void set_error(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_error(char *err, size_t err_len, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || err_len == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
    one_line(err);
}

/* Formats "<file>:<line>:<col>: <path>: <what>" and returns -1. */
static int fail(cfg_ctx *c, size_t pos, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(cfg_ctx *c, size_t pos, const char *path, const char *fmt, ...)
{
    char what[512];
    unsigned line, col;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (path == NULL || path[0] == '\0')
        path = "config";
    if (pos == NO_POS) {
        set_error(c->err, c->err_len, "%s: %s: %s", c->name, path, what);
    } else {
        line_col(c, pos, &line, &col);
        set_error(c->err, c->err_len, "%s:%u:%u: %s: %s", c->name, line, col, path, what);
    }
    return -1;
}

/* A user-supplied value, cut short enough to quote in a message. */
static const char *shorten(char *buf, size_t size, const char *s, size_t len)
{
    size_t keep = len;

    if (len >= size) {
        keep = size - 4;
        while (keep > 0 && ((unsigned char)s[keep] & 0xC0) == 0x80) /* whole characters */
            keep--;
    }
    memcpy(buf, s, keep);
    strcpy(buf + keep, len >= size ? "..." : "");
    return buf;
}

/* Field paths are for messages: a path too long for PATH_LEN is cut short. */
static void path_printf(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void path_printf(char *out, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(out, PATH_LEN, fmt, ap);
    va_end(ap);
}

static void path_key(char *out, const char *base, const char *key, size_t key_len)
{
    int klen = key_len > PATH_LEN ? PATH_LEN : (int)key_len;

    path_printf(out, "%s%s%.*s", base, base[0] ? "." : "", klen, key);
}

static void path_index(char *out, const char *base, size_t i)
{
    path_printf(out, "%s[%zu]", base, i);
}

/* ---- node access ------------------------------------------------------- */

static bool is_null(struct fy_node *n)
{
    size_t len;
    const char *s;

    if (n == NULL)
        return true;
    if (fy_node_get_type(n) != FYNT_SCALAR || fy_node_get_style(n) != FYNS_PLAIN)
        return false;
    s = fy_node_get_scalar(n, &len);
    if (s == NULL || len == 0)
        return true;
    return (len == 1 && s[0] == '~') ||
           (len == 4 && (!memcmp(s, "null", 4) || !memcmp(s, "Null", 4) || !memcmp(s, "NULL", 4)));
}

static const char *describe(struct fy_node *n, char *buf, size_t size)
{
    size_t len;
    const char *s;
    char tmp[64];

    if (is_null(n))
        return "nothing (null)";
    switch (fy_node_get_type(n)) {
    case FYNT_MAPPING:
        return "a mapping";
    case FYNT_SEQUENCE:
        return "a sequence";
    default:
        s = fy_node_get_scalar(n, &len);
        snprintf(buf, size, "'%s'", shorten(tmp, sizeof tmp, s ? s : "", len));
        return buf;
    }
}

static int expect_kind(cfg_ctx *c, struct fy_node *n, size_t pos, const char *path,
                       enum fy_node_type kind, const char *what)
{
    char buf[160];

    if (!is_null(n) && fy_node_get_type(n) == kind)
        return 0;
    return fail(c, pos, path, "expected %s, got %s", what, describe(n, buf, sizeof buf));
}

static int scalar_text(cfg_ctx *c, struct fy_node *n, size_t pos, const char *path,
                       const char *what, const char **s, size_t *len)
{
    if (expect_kind(c, n, pos, path, FYNT_SCALAR, what) < 0)
        return -1;
    *s = fy_node_get_scalar(n, len);
    if (*s == NULL)
        return fail(c, pos, path, "cannot read the scalar");
    /* an escaped "\0" would silently cut the C string we copy it into */
    if (memchr(*s, '\0', *len) != NULL)
        return fail(c, pos, path, "a NUL character (\\0) is not allowed");
    return 0;
}

static int copy_text(cfg_ctx *c, const char *s, size_t len, const char *path, char **out)
{
    char *p = malloc(len + 1);

    if (p == NULL)
        return fail(c, NO_POS, path, "out of memory");
    memcpy(p, s, len);
    p[len] = '\0';
    free(*out);
    *out = p;
    return 0;
}

static bool text_eq(const char *s, size_t len, const char *lit)
{
    return strlen(lit) == len && memcmp(s, lit, len) == 0;
}

/* The value under key in a mapping, by plain string comparison. */
static struct fy_node *map_get(struct fy_node *map, const char *key)
{
    struct fy_node_pair *pair;
    void *it = NULL;
    const char *s;
    size_t len;

    if (map == NULL || fy_node_get_type(map) != FYNT_MAPPING)
        return NULL;
    while ((pair = fy_node_mapping_iterate(map, &it)) != NULL) {
        struct fy_node *k = fy_node_pair_key(pair);
        if (k && fy_node_get_type(k) == FYNT_SCALAR && (s = fy_node_get_scalar(k, &len)) &&
            text_eq(s, len, key))
            return fy_node_pair_value(pair);
    }
    return NULL;
}

static struct fy_node *seq_get(struct fy_node *seq, size_t i)
{
    if (seq == NULL || fy_node_get_type(seq) != FYNT_SEQUENCE || i > INT32_MAX)
        return NULL;
    return fy_node_sequence_get_by_index(seq, (int)i);
}

/* ---- the schema walk --------------------------------------------------- */

static void field_list(const cfg_field *fields, size_t n, char *buf, size_t size)
{
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < n && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%s", i ? ", " : "", fields[i].key);
}

static int walk_mapping(cfg_ctx *c, struct fy_node *map, size_t pos, const char *path,
                        const cfg_field *fields, size_t n_fields, void *obj)
{
    struct fy_node_pair *pair;
    void *it = NULL;
    unsigned seen = 0; /* bit i: fields[i] was given */
    char sub[PATH_LEN], list[256];

    if (expect_kind(c, map, pos, path, FYNT_MAPPING, "a mapping") < 0)
        return -1;
    while ((pair = fy_node_mapping_iterate(map, &it)) != NULL) {
        struct fy_node *k = fy_node_pair_key(pair), *v = fy_node_pair_value(pair);
        size_t kpos = node_pos(c, k, pos), i;
        const char *ks;
        size_t klen;

        if (scalar_text(c, k, kpos, path, "a plain key", &ks, &klen) < 0)
            return -1;
        path_key(sub, path, ks, klen);
        for (i = 0; i < n_fields && !text_eq(ks, klen, fields[i].key); i++)
            ;
        if (i == n_fields) {
            field_list(fields, n_fields, list, sizeof list);
            return fail(c, kpos, sub, "unknown key (expected one of: %s)", list);
        }
        seen |= 1u << i;
        if (is_null(v)) {
            if (fields[i].required)
                return fail(c, kpos, sub, "a value is required");
            continue;
        }
        if (fields[i].parse(c, v, node_pos(c, v, value_start(c, k, kpos)), sub,
                            (char *)obj + fields[i].off) < 0)
            return -1;
    }
    for (size_t i = 0; i < n_fields; i++) {
        if (fields[i].required && !(seen & (1u << i))) {
            path_key(sub, path, fields[i].key, strlen(fields[i].key));
            return fail(c, pos, sub, "required key is missing");
        }
    }
    return 0;
}

/* ---- leaf values ------------------------------------------------------- */

static bool name_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '.' || ch == '-';
}

static int parse_topic(cfg_ctx *c, struct fy_node *n, size_t pos, const char *path, void *dst)
{
    const char *s;
    size_t len;
    char buf[64];

    if (scalar_text(c, n, pos, path, "a Kafka topic name", &s, &len) < 0)
        return -1;
    if (len == 0 || len > MAX_TOPIC_LEN || text_eq(s, len, ".") || text_eq(s, len, ".."))
        return fail(c, pos, path, "a topic name must be 1..%d characters, not '.' or '..'",
                    MAX_TOPIC_LEN);
    for (size_t i = 0; i < len; i++)
        if (!name_char(s[i]))
            return fail(c, pos, path, "invalid topic name '%s' (allowed: A-Z a-z 0-9 . _ -)",
                        shorten(buf, sizeof buf, s, len));
    return copy_text(c, s, len, path, dst);
}

/* A scalar that must be one of two words; *index receives 0 or 1. */
static int parse_one_of(cfg_ctx *c, struct fy_node *n, size_t pos, const char *path,
                        const char *first, const char *second, int *index)
{
    const char *s;
    size_t len;
    char buf[64], want[64];

    snprintf(want, sizeof want, "'%s' or '%s'", first, second);
    if (scalar_text(c, n, pos, path, want, &s, &len) < 0)
        return -1;
    if (text_eq(s, len, first) || text_eq(s, len, second)) {
        *index = text_eq(s, len, second);
        return 0;
    }
    return fail(c, pos, path, "expected %s, got '%s'", want, shorten(buf, sizeof buf, s, len));
}

static int parse_format(cfg_ctx *c, struct fy_node *n, size_t pos, const char *path, void *dst)
{
    int i = 0;
    if (parse_one_of(c, n, pos, path, "msgpack", "json", &i) < 0)
        return -1;
    *(fs_format *)dst = i ? FS_FORMAT_JSON : FS_FORMAT_MSGPACK;
    return 0;
}

static int parse_delivery(cfg_ctx *c, struct fy_node *n, size_t pos, const char *path, void *dst)
{
    int i = 0;
    if (parse_one_of(c, n, pos, path, "exactly_once", "at_least_once", &i) < 0)
        return -1;
    *(fs_delivery *)dst = i ? FS_DELIVERY_AT_LEAST_ONCE : FS_DELIVERY_EXACTLY_ONCE;
    return 0;
}

static int parse_mode(cfg_ctx *c, struct fy_node *n, size_t pos, const char *path, void *dst)
{
    const char *s;
    size_t len;
    char buf[64];

    if (scalar_text(c, n, pos, path, "'strict', 'open' or 'unordered'", &s, &len) < 0)
        return -1;
    if (text_eq(s, len, "open"))
        *(fs_mode *)dst = FS_MODE_OPEN;
    else if (text_eq(s, len, "strict"))
        *(fs_mode *)dst = FS_MODE_STRICT;
    else if (text_eq(s, len, "unordered"))
        *(fs_mode *)dst = FS_MODE_UNORDERED;
    else
        return fail(c, pos, path, "expected 'strict', 'open' or 'unordered', got '%s'",
                    shorten(buf, sizeof buf, s, len));
    return 0;
}

/* YAML's true/false (only those words: "yes" or "on" would be a guess). */
static int parse_bool(cfg_ctx *c, struct fy_node *n, size_t pos, const char *path, void *dst)
{
    int i = 0;
    if (parse_one_of(c, n, pos, path, "false", "true", &i) < 0)
        return -1;
    *(bool *)dst = i;
    return 0;
}

static int duration_field(cfg_ctx *c, struct fy_node *n, size_t pos, const char *path, int64_t *dst,
                          bool allow_zero)
{
    const char *s;
    size_t len;
    char buf[64];
    int64_t ms = 0;

    if (scalar_text(c, n, pos, path, "a duration such as 30s", &s, &len) < 0)
        return -1;
    shorten(buf, sizeof buf, s, len);
    switch (duration_parse(s, len, &ms)) {
    case DUR_OK:
        break;
    case DUR_ZERO:
        if (allow_zero)
            break;
        return fail(c, pos, path, "duration '%s' must be greater than zero", buf);
    case DUR_OVERFLOW:
        return fail(c, pos, path,
                    "duration '%s' is too large (at most 2^53 - 1 ms, about 285,000 years)", buf);
    default:
        if (allow_zero && text_eq(s, len, "0"))
            break;
        return fail(c, pos, path,
                    "invalid duration '%s' (expected an integer and a unit: ms, s, m, h or d, "
                    "e.g. 30s)",
                    buf);
    }
    *dst = ms;
    return 0;
}

static int parse_duration(cfg_ctx *c, struct fy_node *n, size_t pos, const char *path, void *dst)
{
    return duration_field(c, n, pos, path, dst, false);
}

/* max_out_of_orderness: 0 is meaningful (input already in order) and the default. */
static int parse_duration0(cfg_ctx *c, struct fy_node *n, size_t pos, const char *path, void *dst)
{
    return duration_field(c, n, pos, path, dst, true);
}

/* A small non-negative integer (at most max) into *v: 0, -1 after a
 * failed read (reported), or 1 when the text is not such an integer (the
 * caller reports it, saying what it expects). */
static int small_int(cfg_ctx *c, struct fy_node *n, size_t pos, const char *path, int max, int *v,
                     char *text, size_t text_cap)
{
    const char *s;
    size_t len, i;

    if (scalar_text(c, n, pos, path, "an integer", &s, &len) < 0)
        return -1;
    *v = 0;
    for (i = 0; i < len && s[i] >= '0' && s[i] <= '9' && *v <= max; i++)
        *v = *v * 10 + (s[i] - '0');
    shorten(text, text_cap, s, len);
    return len == 0 || i != len || *v > max ? 1 : 0;
}

static int parse_threads(cfg_ctx *c, struct fy_node *n, size_t pos, const char *path, void *dst)
{
    char buf[64];
    int v, rc = small_int(c, n, pos, path, MAX_THREADS, &v, buf, sizeof buf);
    if (rc > 0)
        return fail(c, pos, path,
                    "expected an integer from 1 to %d (0 or absent: one per core), got '%s'",
                    MAX_THREADS, buf);
    if (rc == 0)
        *(int *)dst = v;
    return rc;
}

/* in_flight_batches: 2 .. MAX_IN_FLIGHT_BATCHES (0 or absent: the engine's
 * default, 2 x threads + 4). */
static int parse_in_flight(cfg_ctx *c, struct fy_node *n, size_t pos, const char *path, void *dst)
{
    char buf[64];
    int v, rc = small_int(c, n, pos, path, MAX_IN_FLIGHT_BATCHES, &v, buf, sizeof buf);
    if (rc > 0 || (rc == 0 && v == 1))
        return fail(c, pos, path,
                    "expected an integer from 2 to %d (0 or absent: 2 x threads + 4), got '%s'",
                    MAX_IN_FLIGHT_BATCHES, buf);
    if (rc == 0)
        *(int *)dst = v;
    return rc;
}

static int parse_limit_policy(cfg_ctx *c, struct fy_node *n, size_t pos, const char *path,
                              void *dst)
{
    int i = 0;
    if (parse_one_of(c, n, pos, path, "reject_new", "evict_oldest", &i) < 0)
        return -1;
    *(fs_limit_policy *)dst = i ? FS_LIMIT_EVICT_OLDEST : FS_LIMIT_REJECT_NEW;
    return 0;
}

/* A count of customer records: 1 .. 2^32 - 1 (the table's record indexes
 * are 32-bit, so a larger bound would be no bound). */
static int parse_max_journeys(cfg_ctx *c, struct fy_node *n, size_t pos, const char *path,
                              void *dst)
{
    const char *s;
    size_t len, i;
    char buf[64];
    uint64_t v = 0;

    if (scalar_text(c, n, pos, path, "an integer", &s, &len) < 0)
        return -1;
    for (i = 0; i < len && s[i] >= '0' && s[i] <= '9' && v <= FS_MAX_ACTIVE_JOURNEYS_MAX; i++)
        v = v * 10 + (uint64_t)(s[i] - '0');
    if (len == 0 || i != len || v == 0 || v > FS_MAX_ACTIVE_JOURNEYS_MAX)
        return fail(c, pos, path, "expected an integer from 1 to %llu, got '%s'",
                    (unsigned long long)FS_MAX_ACTIVE_JOURNEYS_MAX,
                    shorten(buf, sizeof buf, s, len));
    *(uint64_t *)dst = v;
    return 0;
}

int fs_config_parse_listen(const char *s, size_t len, char *host, size_t host_cap, bool *ipv6,
                           int *port)
{
    const char *colon = memrchr(s, ':', len);
    if (!colon || colon + 1 == s + len || memchr(s, '\0', len))
        return -1;
    long p = 0;
    for (const char *d = colon + 1; d < s + len; d++) {
        if (*d < '0' || *d > '9' || (p = p * 10 + (*d - '0')) > 65535)
            return -1;
    }
    const char *h = s;
    size_t hl = (size_t)(colon - s);
    *ipv6 = hl >= 2 && h[0] == '[' && h[hl - 1] == ']';
    if (*ipv6) {
        h++;
        hl -= 2;
    }
    if (hl == 0 || hl >= host_cap)
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    unsigned char addr[sizeof(struct in6_addr)];
    if (*ipv6) {
        if (inet_pton(AF_INET6, host, addr) != 1)
            return -1;
    } else if (strcmp(host, "localhost") == 0) {
        if (host_cap <= strlen("127.0.0.1"))
            return -1;
        strcpy(host, "127.0.0.1");
    } else if (inet_pton(AF_INET, host, addr) != 1) {
        return -1;
    }
    *port = (int)p;
    return 0;
}

/* "HOST:PORT" (fs_config_parse_listen): checked here, where a mistake can
 * name the field, not when the stage finds it cannot listen. */
static int parse_listen(cfg_ctx *c, struct fy_node *n, size_t pos, const char *path, void *dst)
{
    const char *s;
    size_t len;
    char buf[64], host[INET6_ADDRSTRLEN];
    bool ipv6;
    int port;

    if (scalar_text(c, n, pos, path, "HOST:PORT", &s, &len) < 0)
        return -1;
    if (fs_config_parse_listen(s, len, host, sizeof host, &ipv6, &port) != 0)
        return fail(c, pos, path,
                    "expected HOST:PORT, HOST a numeric IPv4 address, [IPv6] or localhost, "
                    "PORT from 0 to 65535; got '%s'",
                    shorten(buf, sizeof buf, s, len));
    return copy_text(c, s, len, path, dst);
}

/* ---- sections ---------------------------------------------------------- */

static const cfg_field input_fields[] = {
    {"topic", parse_topic, offsetof(fs_config, input_topic), false},
    {"format", parse_format, offsetof(fs_config, input_format), false},
};
static const cfg_field output_fields[] = {
    {"topic", parse_topic, offsetof(fs_config, output_topic), false},
    {"format", parse_format, offsetof(fs_config, output_format), false},
};
static const cfg_field dead_letter_fields[] = {
    {"topic", parse_topic, offsetof(fs_config, dead_letter_topic), true},
};
static const cfg_field state_fields[] = {
    {"topic", parse_topic, offsetof(fs_config, state_topic), false},
};
static const cfg_field window_fields[] = {
    {"size", parse_duration, offsetof(fs_config, window_size_ms), false},
    {"hop", parse_duration, offsetof(fs_config, window_hop_ms), false},
    {"max_out_of_orderness", parse_duration0, offsetof(fs_config, max_out_of_orderness_ms), false},
    {"idle_timeout", parse_duration, offsetof(fs_config, idle_timeout_ms), false},
};
static const cfg_field cohort_fields[] = {
    {"emit_interval", parse_duration, offsetof(fs_config, cohort_emit_interval_ms), false},
};
/* Both required: a limit without a policy would hide what happens at it. */
static const cfg_field limits_fields[] = {
    {"max_active_journeys", parse_max_journeys, offsetof(fs_config, max_active_journeys), true},
    {"policy", parse_limit_policy, offsetof(fs_config, limit_policy), true},
};
static const cfg_field http_fields[] = {
    {"listen", parse_listen, offsetof(fs_config, http_listen), false},
};

#define N_FIELDS(a) (sizeof(a) / sizeof((a)[0]))
#define SECTION(fn, table)                                                                         \
    static int fn(cfg_ctx *c, struct fy_node *n, size_t pos, const char *path, void *cfg)          \
    {                                                                                              \
        return walk_mapping(c, n, pos, path, table, N_FIELDS(table), cfg);                         \
    }
SECTION(parse_input, input_fields)
SECTION(parse_output, output_fields)
SECTION(parse_dead_letter, dead_letter_fields)
SECTION(parse_state, state_fields)
SECTION(parse_cohort, cohort_fields)
SECTION(parse_http, http_fields)
SECTION(parse_limits, limits_fields)

static int parse_window(cfg_ctx *c, struct fy_node *n, size_t pos, const char *path, void *obj)
{
    fs_config *cfg = obj;
    int64_t size, hop;
    char sub[PATH_LEN];

    if (walk_mapping(c, n, pos, path, window_fields, N_FIELDS(window_fields), cfg) < 0)
        return -1;
    size = cfg->window_size_ms;
    hop = cfg->window_hop_ms;
    if (hop == 0)
        return 0;
    path_key(sub, path, "hop", 3);
    pos = node_pos(c, map_get(n, "hop"), pos);
    if (hop > size)
        return fail(c, pos, sub, "hop (%lld ms) must not be larger than size (%lld ms)",
                    (long long)hop, (long long)size);
    if (size % hop != 0)
        return fail(c, pos, sub, "hop (%lld ms) must divide size (%lld ms)", (long long)hop,
                    (long long)size);
    /* Every count goes to size/hop windows: bound that work per event. */
    if (size / hop > FS_MAX_WINDOWS_PER_TIME)
        return fail(c, pos, sub, "size / hop is %lld; at most %d overlapping windows allowed",
                    (long long)(size / hop), FS_MAX_WINDOWS_PER_TIME);
    return 0;
}

/* Kafka properties pass through to librdkafka as text, whatever YAML thinks
 * the scalar is: "6000", "false" and "localhost:9092" are all just strings. */
static int parse_kafka(cfg_ctx *c, struct fy_node *n, size_t pos, const char *path, void *obj)
{
    fs_config *cfg = obj;
    struct fy_node_pair *pair;
    void *it = NULL;
    char sub[PATH_LEN];
    size_t i = 0;

    if (expect_kind(c, n, pos, path, FYNT_MAPPING, "a mapping of librdkafka properties") < 0)
        return -1;
    cfg->n_kafka = (size_t)fy_node_mapping_item_count(n);
    cfg->kafka = calloc(cfg->n_kafka ? cfg->n_kafka : 1, sizeof *cfg->kafka);
    if (cfg->kafka == NULL) {
        cfg->n_kafka = 0;
        return fail(c, pos, path, "out of memory");
    }
    while ((pair = fy_node_mapping_iterate(n, &it)) != NULL && i < cfg->n_kafka) {
        struct fy_node *k = fy_node_pair_key(pair), *v = fy_node_pair_value(pair);
        size_t kpos = node_pos(c, k, pos), klen, vlen;
        const char *ks, *vs;

        if (scalar_text(c, k, kpos, path, "a property name", &ks, &klen) < 0)
            return -1;
        path_key(sub, path, ks, klen);
        if (klen == 0)
            return fail(c, kpos, sub, "empty property name");
        if (scalar_text(c, v, node_pos(c, v, value_start(c, k, kpos)), sub, "a scalar value", &vs,
                        &vlen) < 0 ||
            copy_text(c, ks, klen, sub, &cfg->kafka[i].key) < 0 ||
            copy_text(c, vs, vlen, sub, &cfg->kafka[i].value) < 0)
            return -1;
        i++;
    }
    return 0;
}

/* A sequence of event type names (a stage's events, a funnel's exclude). */
static int parse_event_list(cfg_ctx *c, struct fy_node *n, size_t pos, const char *path,
                            char ***items, size_t *count, bool allow_empty)
{
    struct fy_node *item;
    void *it = NULL;
    char sub[PATH_LEN];
    size_t i = 0, len, cnt;
    const char *s;

    if (expect_kind(c, n, pos, path, FYNT_SEQUENCE, "a sequence of event types") < 0)
        return -1;
    cnt = (size_t)fy_node_sequence_item_count(n);
    if (cnt == 0 && !allow_empty)
        return fail(c, pos, path, "a stage needs at least one event type");
    *items = calloc(cnt ? cnt : 1, sizeof **items);
    if (*items == NULL)
        return fail(c, pos, path, "out of memory");
    *count = cnt;
    while ((item = fy_node_sequence_iterate(n, &it)) != NULL && i < cnt) {
        size_t ipos = node_pos(c, item, pos);
        path_index(sub, path, i);
        if (scalar_text(c, item, ipos, sub, "an event type", &s, &len) < 0)
            return -1;
        if (len == 0 || len > FS_MAX_EVENT_TYPE)
            return fail(c, ipos, sub, "an event type must be 1..%d bytes, got %zu",
                        FS_MAX_EVENT_TYPE, len);
        if (copy_text(c, s, len, sub, &(*items)[i++]) < 0)
            return -1;
    }
    return 0;
}

static int parse_events(cfg_ctx *c, struct fy_node *n, size_t pos, const char *path, void *obj)
{
    fs_stage_cfg *st = obj;
    return parse_event_list(c, n, pos, path, &st->events, &st->n_events, false);
}

static int parse_exclude(cfg_ctx *c, struct fy_node *n, size_t pos, const char *path, void *obj)
{
    fs_funnel_cfg *f = obj;
    return parse_event_list(c, n, pos, path, &f->exclude, &f->n_exclude, true);
}

static int parse_stage_name(cfg_ctx *c, struct fy_node *n, size_t pos, const char *path, void *dst)
{
    const char *s;
    size_t len;

    if (scalar_text(c, n, pos, path, "a stage name", &s, &len) < 0)
        return -1;
    if (len == 0)
        return fail(c, pos, path, "a stage name must not be empty");
    return copy_text(c, s, len, path, dst);
}

static int parse_funnel_name(cfg_ctx *c, struct fy_node *n, size_t pos, const char *path, void *dst)
{
    const char *s;
    size_t len;
    char buf[80];

    if (scalar_text(c, n, pos, path, "a funnel name", &s, &len) < 0)
        return -1;
    if (len == 0 || len > MAX_NAME_LEN)
        return fail(c, pos, path, "a funnel name must be 1..%d bytes, got %zu", MAX_NAME_LEN, len);
    for (size_t i = 0; i < len; i++)
        if (!name_char(s[i]))
            return fail(c, pos, path,
                        "invalid funnel name '%s' (allowed: A-Z a-z 0-9 _ . -; it is part "
                        "of Kafka keys)",
                        shorten(buf, sizeof buf, s, len));
    return copy_text(c, s, len, path, dst);
}

static const cfg_field stage_fields[] = {
    {"name", parse_stage_name, offsetof(fs_stage_cfg, name), true},
    {"events", parse_events, 0, true},
    {"optional", parse_bool, offsetof(fs_stage_cfg, optional), false},
};

/* breakdowns: a sequence of field names, each once; the empty list is a
 * choice too (no by_ maps). */
static int parse_breakdowns(cfg_ctx *c, struct fy_node *n, size_t pos, const char *path, void *dst)
{
    static const struct {
        const char *name;
        unsigned bit;
    } fields[] = {{"channel", FS_BREAKDOWN_CHANNEL},
                  {"segment", FS_BREAKDOWN_SEGMENT},
                  {"campaign", FS_BREAKDOWN_CAMPAIGN}};
    struct fy_node *item;
    void *it = NULL;
    char sub[PATH_LEN], buf[64];
    unsigned bits = 0;
    size_t i = 0;

    if (expect_kind(c, n, pos, path, FYNT_SEQUENCE, "a sequence of event fields") < 0)
        return -1;
    while ((item = fy_node_sequence_iterate(n, &it)) != NULL) {
        size_t ipos = node_pos(c, item, pos), len, k;
        const char *s;
        path_index(sub, path, i++);
        if (scalar_text(c, item, ipos, sub, "an event field", &s, &len) < 0)
            return -1;
        for (k = 0; k < N_FIELDS(fields) && !text_eq(s, len, fields[k].name); k++)
            ;
        if (k == N_FIELDS(fields))
            return fail(c, ipos, sub,
                        "unknown breakdown field '%s' (expected channel, segment or campaign)",
                        shorten(buf, sizeof buf, s, len));
        if (bits & fields[k].bit)
            return fail(c, ipos, sub, "'%s' is already listed", fields[k].name);
        bits |= fields[k].bit;
    }
    *(unsigned *)dst = bits;
    return 0;
}

static int parse_max_breakdown_values(cfg_ctx *c, struct fy_node *n, size_t pos, const char *path,
                                      void *dst)
{
    char buf[64];
    int v, rc = small_int(c, n, pos, path, (int)FS_MAX_BREAKDOWN_VALUES_MAX, &v, buf, sizeof buf);
    if (rc > 0 || (rc == 0 && v < 1))
        return fail(c, pos, path, "expected an integer from 1 to %u, got '%s'",
                    FS_MAX_BREAKDOWN_VALUES_MAX, buf);
    if (rc == 0)
        *(uint32_t *)dst = (uint32_t)v;
    return rc;
}

static int parse_stages(cfg_ctx *c, struct fy_node *n, size_t pos, const char *path, void *obj)
{
    fs_funnel_cfg *f = obj;
    struct fy_node *item;
    void *it = NULL;
    char sub[PATH_LEN];
    size_t i = 0, cnt;

    if (expect_kind(c, n, pos, path, FYNT_SEQUENCE, "a sequence of stages") < 0)
        return -1;
    cnt = (size_t)fy_node_sequence_item_count(n);
    if (cnt < 2 || cnt > FS_MAX_STAGES)
        return fail(c, pos, path, "a funnel needs 2 to %d stages, got %zu", FS_MAX_STAGES, cnt);
    f->stages = calloc(cnt, sizeof *f->stages);
    if (f->stages == NULL)
        return fail(c, pos, path, "out of memory");
    f->n_stages = cnt;
    while ((item = fy_node_sequence_iterate(n, &it)) != NULL && i < cnt) {
        path_index(sub, path, i);
        if (walk_mapping(c, item, node_pos(c, item, pos), sub, stage_fields, N_FIELDS(stage_fields),
                         &f->stages[i]) < 0)
            return -1;
        i++;
    }
    return 0;
}

/* Which stage of f lists ev among the events before (stage, index); -1 if none. */
static long stage_of(const fs_funnel_cfg *f, const char *ev, size_t stage, size_t index)
{
    for (size_t s = 0; s <= stage && s < f->n_stages; s++)
        for (size_t e = 0; e < f->stages[s].n_events && (s < stage || e < index); e++)
            if (strcmp(f->stages[s].events[e], ev) == 0)
                return (long)s;
    return -1;
}

/* `optional` (SPEC §2) is defined for a middle stage of an ordered funnel:
 * the first stage starts journeys and the last completes them, and an
 * unordered journey has no order to pass a stage over in. */
static int check_optional(cfg_ctx *c, struct fy_node *stages, size_t fpos, const char *fpath,
                          const fs_funnel_cfg *f)
{
    char sub[PATH_LEN];

    for (size_t s = 0; s < f->n_stages; s++) {
        if (!f->stages[s].optional)
            continue;
        struct fy_node *sn = seq_get(stages, s);
        path_printf(sub, "%s.stages[%zu].optional", fpath, s);
        size_t spos = node_pos(c, map_get(sn, "optional"), fpos);
        if (f->mode == FS_MODE_UNORDERED)
            return fail(c, spos, sub,
                        "optional stages are for strict and open funnels; in an unordered "
                        "funnel every stage counts toward progress in any order");
        if (s == 0 || s + 1 == f->n_stages)
            return fail(c, spos, sub,
                        "the %s stage cannot be optional (only a stage between the first and "
                        "the last)",
                        s == 0 ? "first" : "last");
    }
    return 0;
}

/* Rules across a funnel's fields: they hold only once name, stages and
 * exclude are all known, whatever order the keys came in. */
static int check_funnel(cfg_ctx *c, struct fy_node *fn, size_t fpos, const char *fpath,
                        const fs_funnel_cfg *f)
{
    struct fy_node *stages = map_get(fn, "stages"), *exclude = map_get(fn, "exclude");
    char sub[PATH_LEN];
    long k;

    for (size_t s = 0; s < f->n_stages; s++) {
        struct fy_node *sn = seq_get(stages, s);
        for (size_t t = 0; t < s; t++) {
            if (strcmp(f->stages[t].name, f->stages[s].name) != 0)
                continue;
            path_printf(sub, "%s.stages[%zu].name", fpath, s);
            return fail(c, node_pos(c, map_get(sn, "name"), fpos), sub,
                        "stage name '%s' is already used by stages[%zu]", f->stages[s].name, t);
        }
        for (size_t e = 0; e < f->stages[s].n_events; e++) {
            if ((k = stage_of(f, f->stages[s].events[e], s, e)) < 0)
                continue;
            path_printf(sub, "%s.stages[%zu].events[%zu]", fpath, s, e);
            return fail(c, node_pos(c, seq_get(map_get(sn, "events"), e), fpos), sub,
                        "'%s' is already in stage '%s' of funnel '%s'", f->stages[s].events[e],
                        f->stages[k].name, f->name);
        }
    }
    if (check_optional(c, stages, fpos, fpath, f) < 0)
        return -1;
    for (size_t x = 0; x < f->n_exclude; x++) {
        const char *ev = f->exclude[x];
        size_t xpos = node_pos(c, seq_get(exclude, x), fpos);
        path_printf(sub, "%s.exclude[%zu]", fpath, x);
        if ((k = stage_of(f, ev, f->n_stages, 0)) >= 0)
            return fail(c, xpos, sub,
                        "'%s' is in stage '%s' of funnel '%s'; an excluded event type cannot "
                        "also reach a stage",
                        ev, f->stages[k].name, f->name);
        for (size_t y = 0; y < x; y++)
            if (strcmp(f->exclude[y], ev) == 0)
                return fail(c, xpos, sub, "'%s' is already listed in exclude", ev);
    }
    return 0;
}

static const cfg_field funnel_fields[] = {
    {"name", parse_funnel_name, offsetof(fs_funnel_cfg, name), true},
    {"mode", parse_mode, offsetof(fs_funnel_cfg, mode), false},
    {"conversion_window", parse_duration, offsetof(fs_funnel_cfg, conversion_window_ms), false},
    {"exclude", parse_exclude, 0, false},
    {"stages", parse_stages, 0, true},
    {"breakdowns", parse_breakdowns, offsetof(fs_funnel_cfg, breakdowns), false},
    {"max_breakdown_values", parse_max_breakdown_values,
     offsetof(fs_funnel_cfg, max_breakdown_values), false},
    {"stage_time", parse_bool, offsetof(fs_funnel_cfg, stage_time), false},
};

static int parse_funnel(cfg_ctx *c, struct fy_node *n, size_t pos, const char *path, fs_config *cfg,
                        size_t i)
{
    fs_funnel_cfg *f = &cfg->funnels[i];
    char sub[PATH_LEN];

    f->mode = FS_MODE_OPEN;
    f->conversion_window_ms = DEFAULT_CONVERSION_WINDOW_MS;
    f->breakdowns = FS_BREAKDOWN_DEFAULT;
    f->max_breakdown_values = DEFAULT_MAX_BREAKDOWN_VALUES;
    f->stage_time = true;
    if (walk_mapping(c, n, pos, path, funnel_fields, N_FIELDS(funnel_fields), f) < 0 ||
        check_funnel(c, n, pos, path, f) < 0)
        return -1;
    for (size_t j = 0; j < i; j++) {
        if (strcmp(cfg->funnels[j].name, f->name) == 0) {
            path_key(sub, path, "name", 4);
            return fail(c, node_pos(c, map_get(n, "name"), pos), sub,
                        "funnel name '%s' is already used by funnels[%zu]", f->name, j);
        }
    }
    return 0;
}

static int parse_funnels(cfg_ctx *c, struct fy_node *n, size_t pos, const char *path, void *obj)
{
    fs_config *cfg = obj;
    struct fy_node *item;
    void *it = NULL;
    char sub[PATH_LEN];
    size_t i = 0, cnt;

    if (expect_kind(c, n, pos, path, FYNT_SEQUENCE, "a sequence of funnels") < 0)
        return -1;
    cnt = (size_t)fy_node_sequence_item_count(n);
    if (cnt == 0)
        return fail(c, pos, path, "at least one funnel is required");
    if (cnt > FS_MAX_FUNNELS) {
        path_index(sub, path, (size_t)FS_MAX_FUNNELS);
        return fail(c, node_pos(c, seq_get(n, FS_MAX_FUNNELS), pos), sub,
                    "too many funnels (at most %d)", FS_MAX_FUNNELS);
    }
    cfg->funnels = calloc(cnt, sizeof *cfg->funnels);
    if (cfg->funnels == NULL)
        return fail(c, pos, path, "out of memory");
    cfg->n_funnels = cnt;
    while ((item = fy_node_sequence_iterate(n, &it)) != NULL && i < cnt) {
        path_index(sub, path, i);
        if (parse_funnel(c, item, node_pos(c, item, pos), sub, cfg, i) < 0)
            return -1;
        i++;
    }
    return 0;
}

static const cfg_field top_fields[] = {
    {"input", parse_input, 0, false},
    {"output", parse_output, 0, false},
    {"dead_letter", parse_dead_letter, 0, false},
    {"kafka", parse_kafka, 0, false},
    {"window", parse_window, 0, false},
    {"cohort", parse_cohort, 0, false},
    {"threads", parse_threads, offsetof(fs_config, threads), false},
    {"in_flight_batches", parse_in_flight, offsetof(fs_config, in_flight_batches), false},
    {"delivery", parse_delivery, offsetof(fs_config, delivery), false},
    {"state", parse_state, 0, false},
    {"commit_interval", parse_duration, offsetof(fs_config, commit_interval_ms), false},
    {"broker_timeout", parse_duration, offsetof(fs_config, broker_timeout_ms), false},
    {"http", parse_http, 0, false},
    {"limits", parse_limits, 0, false},
    {"funnels", parse_funnels, 0, true},
};

/* ---- bounds, checked on the event stream ------------------------------- */

static void discard_output(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
    (void)diag;
    (void)user;
    (void)buf;
    (void)len;
}

/* A diagnostics sink that prints nothing and keeps the errors for us. */
static struct fy_diag *quiet_diag(void)
{
    struct fy_diag_cfg dcfg;
    struct fy_diag *d;

    fy_diag_cfg_default(&dcfg);
    dcfg.fp = NULL;
    dcfg.output_fn = discard_output;
    dcfg.colorize = false;
    if ((d = fy_diag_create(&dcfg)) != NULL)
        fy_diag_set_collect_errors(d, true);
    return d;
}

/* libfyaml builds the document with every alias copied out in full, and
 * checks the keys of a mapping in time quadratic in their number; a few
 * hundred bytes of nested aliases ("billion laughs") would take gigabytes,
 * and 10k keys a minute. So the stream is first read as parser events, which
 * costs time linear in the text and memory in its nesting, and the document
 * is built only when the expanded document is known to be small. The scan
 * counts nodes as the document would hold them: an alias counts as the
 * whole node its anchor names (the size recorded when that node ended), a
 * merge key's alias included. Syntax errors end the scan quietly: the
 * document load that follows reports them, with libfyaml's message. */

#define ANCHOR_OPEN UINT64_MAX /* the anchored node has not ended yet */

typedef struct scan_level {
    uint64_t first;  /* the node count before this collection */
    uint32_t anchor; /* its anchor's id, or UINT32_MAX */
    bool mapping;
    size_t items; /* keys and values so far, when a mapping */
} scan_level;

typedef struct scan {
    cfg_ctx *c;
    fs_dict anchors; /* anchor name -> id, an index into sizes */
    uint64_t *sizes; /* nodes an alias to the anchor stands for; ANCHOR_OPEN */
    size_t n_sizes;
    uint64_t nodes; /* in the document so far, aliases expanded */
    scan_level stack[FS_CONFIG_MAX_DEPTH];
    size_t depth;
} scan;

static size_t token_pos(struct fy_token *t)
{
    const struct fy_mark *m = t ? fy_token_start_mark(t) : NULL;
    return m ? m->input_pos : NO_POS;
}

/* Registers the anchor of a node that starts now; UINT32_MAX when none. */
static uint32_t scan_anchor(scan *s, struct fy_token *anchor)
{
    size_t len;
    const char *name = anchor ? fy_token_get_text(anchor, &len) : NULL;
    uint32_t id;

    if (name == NULL)
        return UINT32_MAX;
    id = fs_dict_intern(&s->anchors, name, len);
    if (id >= s->n_sizes) {
        s->sizes = fs_xrealloc(s->sizes, (id + 1) * sizeof *s->sizes);
        s->n_sizes = id + 1;
    }
    s->sizes[id] = ANCHOR_OPEN; /* a redefinition replaces the earlier node */
    return id;
}

/* A node of `count` nodes starts at pos: in its parent's keys, and in the total. */
static int scan_node(scan *s, size_t pos, uint64_t count)
{
    scan_level *top = s->depth ? &s->stack[s->depth - 1] : NULL;

    if (top && top->mapping && top->items++ % 2 == 0 && top->items / 2 + 1 > FS_CONFIG_MAX_MAP_KEYS)
        return fail(s->c, pos, "", "a mapping has more than %d keys", FS_CONFIG_MAX_MAP_KEYS);
    if (count > FS_CONFIG_MAX_NODES - s->nodes)
        return -1; /* the caller names what grew too big */
    s->nodes += count;
    return 0;
}

static int scan_too_many(scan *s, size_t pos)
{
    if (s->c->err && s->c->err[0])
        return -1; /* scan_node already said why */
    return fail(s->c, pos, "", "the config has more than %d YAML nodes", FS_CONFIG_MAX_NODES);
}

static int scan_alias(scan *s, struct fy_token *alias)
{
    size_t len, pos = token_pos(alias);
    const char *name = fy_token_get_text(alias, &len);
    uint32_t id = name ? fs_dict_find(&s->anchors, name, len) : UINT32_MAX;
    char buf[64];

    if (pos != NO_POS && pos > 0 && pos <= s->c->src_len && s->c->src[pos - 1] == '*')
        pos--;
    if (id == UINT32_MAX)
        return 1; /* undefined: the document load reports it */
    shorten(buf, sizeof buf, name, len);
    if (s->sizes[id] == ANCHOR_OPEN)
        return fail(s->c, pos, "", "alias '*%s' refers to a node that contains it", buf);
    if (scan_node(s, pos, s->sizes[id]) < 0)
        return s->c->err && s->c->err[0]
                   ? -1
                   : fail(s->c, pos, "",
                          "alias '*%s' expands the config to more than %d YAML nodes "
                          "(aliases must not multiply the document)",
                          buf, FS_CONFIG_MAX_NODES);
    return 0;
}

static int scan_start(scan *s, struct fy_token *anchor, struct fy_token *start, bool mapping,
                      size_t pos)
{
    uint32_t id;

    if (start)
        pos = token_pos(start);
    if (scan_node(s, pos, 1) < 0)
        return scan_too_many(s, pos);
    if (s->depth == FS_CONFIG_MAX_DEPTH)
        return fail(s->c, pos, "", "mappings and sequences are nested more than %d deep",
                    FS_CONFIG_MAX_DEPTH);
    id = scan_anchor(s, anchor);
    s->stack[s->depth++] = (scan_level){s->nodes - 1, id, mapping, 0};
    return 0;
}

static void scan_end(scan *s)
{
    scan_level *top;

    assert(s->depth > 0); /* the parser balances starts and ends */
    top = &s->stack[--s->depth];
    if (top->anchor != UINT32_MAX)
        s->sizes[top->anchor] = s->nodes - top->first;
}

/* One event: 0 to go on, 1 to stop quietly, -1 with a message. */
static int scan_event(scan *s, struct fy_event *e)
{
    size_t pos;
    uint32_t id;

    switch (e->type) {
    case FYET_SCALAR:
        pos = token_pos(e->scalar.value);
        id = scan_anchor(s, e->scalar.anchor);
        if (scan_node(s, pos, 1) < 0)
            return scan_too_many(s, pos);
        if (id != UINT32_MAX)
            s->sizes[id] = 1;
        return 0;
    case FYET_ALIAS:
        return scan_alias(s, e->alias.anchor);
    case FYET_MAPPING_START:
        return scan_start(s, e->mapping_start.anchor, e->mapping_start.mapping_start, true,
                          token_pos(e->mapping_start.anchor));
    case FYET_SEQUENCE_START:
        return scan_start(s, e->sequence_start.anchor, e->sequence_start.sequence_start, false,
                          token_pos(e->sequence_start.anchor));
    case FYET_MAPPING_END:
    case FYET_SEQUENCE_END:
        scan_end(s);
        return 0;
    default:
        return 0;
    }
}

static int yaml_scan(cfg_ctx *c)
{
    struct fy_parse_cfg pcfg = {0};
    struct fy_parser *p = NULL;
    struct fy_event *e;
    scan s = {.c = c};
    int rc = 0;

    fs_dict_init(&s.anchors);
    pcfg.flags = FYPCF_QUIET;
    pcfg.diag = quiet_diag();
    if (pcfg.diag == NULL || (p = fy_parser_create(&pcfg)) == NULL ||
        fy_parser_set_string(p, c->src, c->src_len) != 0) {
        rc = fail(c, NO_POS, "", "cannot start the YAML parser");
        goto out;
    }
    while (rc == 0 && (e = fy_parser_parse(p)) != NULL) {
        rc = scan_event(&s, e);
        fy_parser_event_free(p, e);
    }
out:
    if (p)
        fy_parser_destroy(p);
    if (pcfg.diag)
        fy_diag_destroy(pcfg.diag);
    fs_dict_free(&s.anchors);
    free(s.sizes);
    return rc < 0 ? -1 : 0;
}

/* ---- the YAML stream --------------------------------------------------- */

typedef struct yaml_doc {
    struct fy_diag *diag;
    struct fy_parser *parser;
    struct fy_document *doc;
} yaml_doc;

static void yaml_close(yaml_doc *y)
{
    if (y->doc)
        fy_parse_document_destroy(y->parser, y->doc);
    if (y->parser)
        fy_parser_destroy(y->parser);
    if (y->diag)
        fy_diag_destroy(y->diag);
}

/* Parses the whole stream: exactly one document, no diagnostics. */
static int yaml_open(cfg_ctx *c, yaml_doc *y)
{
    struct fy_parse_cfg pcfg = {0};
    struct fy_diag_error *e;
    struct fy_document *extra = NULL;
    void *it = NULL;
    size_t extra_pos = NO_POS;

    y->diag = quiet_diag();
    if (y->diag == NULL)
        return fail(c, NO_POS, "", "out of memory");
    pcfg.flags = FYPCF_QUIET | FYPCF_RESOLVE_DOCUMENT;
    pcfg.diag = y->diag;
    y->parser = fy_parser_create(&pcfg);
    if (y->parser == NULL || fy_parser_set_string(y->parser, c->src, c->src_len) != 0)
        return fail(c, NO_POS, "", "cannot start the YAML parser");
    y->doc = fy_parse_load_document(y->parser);
    if (y->doc) {
        extra = fy_parse_load_document(y->parser);
        if (extra) {
            extra_pos = node_pos(c, fy_document_root(extra), NO_POS);
            fy_parse_document_destroy(y->parser, extra);
        }
    }
    if ((e = fy_diag_errors_iterate(y->diag, &it)) != NULL) {
        const char *msg = e->msg ? e->msg : "invalid YAML";
        if (e->line > 0 && e->column > 0)
            set_error(c->err, c->err_len, "%s:%d:%d: yaml syntax error: %s", c->name, e->line,
                      e->column, msg);
        else
            set_error(c->err, c->err_len, "%s: yaml syntax error: %s", c->name, msg);
        return -1;
    }
    if (extra)
        return fail(c, extra_pos, "", "the file holds more than one YAML document");
    if (y->doc == NULL || is_null(fy_document_root(y->doc)))
        return fail(c, 0, "funnels", "required key is missing (the config is empty)");
    return 0;
}

/* ---- public API -------------------------------------------------------- */

static int set_default(cfg_ctx *c, char **field, const char *value)
{
    return *field ? 0 : copy_text(c, value, strlen(value), "", field);
}

fs_config *fs_config_parse(const char *yaml, size_t len, const char *name, char *err,
                           size_t err_len)
{
    cfg_ctx c = {name ? name : "<config>", yaml ? yaml : "", yaml ? len : 0, err, err_len};
    yaml_doc y = {0};
    fs_config *cfg = calloc(1, sizeof *cfg);
    struct fy_node *root;
    const char *nul;
    size_t bad;
    int rc = -1;

    set_error(err, err_len, "%s", "");
    if (cfg == NULL || copy_text(&c, c.name, strlen(c.name), "", &cfg->path) < 0) {
        fail(&c, NO_POS, "", "out of memory");
        goto out;
    }
    cfg->input_format = FS_FORMAT_MSGPACK;
    cfg->output_format = FS_FORMAT_JSON;
    cfg->window_size_ms = DEFAULT_WINDOW_MS;
    cfg->idle_timeout_ms = DEFAULT_IDLE_TIMEOUT_MS;
    cfg->commit_interval_ms = DEFAULT_COMMIT_INTERVAL_MS;
    cfg->broker_timeout_ms = DEFAULT_BROKER_TIMEOUT_MS;
    /* libfyaml would stop at a NUL and silently drop the rest of the file */
    if ((nul = memchr(c.src, '\0', c.src_len)) != NULL) {
        fail(&c, (size_t)(nul - c.src), "", "the file contains a NUL byte");
        goto out;
    }
    /* libfyaml stops quietly at a byte that is not UTF-8, dropping the rest
     * of the file, and loops for ever on one in a directive ("%\xb3") */
    if ((bad = fs_utf8_valid_len(c.src, c.src_len)) != c.src_len) {
        fail(&c, bad, "", "the file is not valid UTF-8 (byte 0x%02x)", (unsigned char)c.src[bad]);
        goto out;
    }
    if (c.src_len > MAX_FILE_BYTES) {
        fail(&c, NO_POS, "", "the config is larger than %u bytes", MAX_FILE_BYTES);
        goto out;
    }
    if (yaml_scan(&c) < 0 || yaml_open(&c, &y) < 0)
        goto out;
    root = fy_document_root(y.doc);
    if (walk_mapping(&c, root, node_pos(&c, root, 0), "", top_fields, N_FIELDS(top_fields), cfg))
        goto out;
    if (cfg->window_hop_ms == 0)
        cfg->window_hop_ms = cfg->window_size_ms;
    if (cfg->cohort_emit_interval_ms == 0)
        cfg->cohort_emit_interval_ms = cfg->window_size_ms;
    if (set_default(&c, &cfg->input_topic, DEFAULT_INPUT_TOPIC) < 0 ||
        set_default(&c, &cfg->output_topic, DEFAULT_OUTPUT_TOPIC) < 0 ||
        set_default(&c, &cfg->http_listen, DEFAULT_HTTP_LISTEN) < 0)
        goto out;
    rc = 0;
out:
    yaml_close(&y);
    if (rc < 0) {
        fs_config_free(cfg);
        return NULL;
    }
    return cfg;
}

fs_config *fs_config_load(const char *path, char *err, size_t err_len)
{
    FILE *f;
    char *buf = NULL;
    size_t len = 0, cap = 0, got;
    fs_config *cfg = NULL;

    if (path == NULL) {
        set_error(err, err_len, "config: no file given");
        return NULL;
    }
    if ((f = fopen(path, "rb")) == NULL) {
        set_error(err, err_len, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    do {
        if (len == cap) {
            /* read one buffer past the limit: fs_config_parse names it */
            char *nb = cap <= MAX_FILE_BYTES ? realloc(buf, cap ? cap * 2 : 4096) : NULL;
            if (nb == NULL) {
                if (cap <= MAX_FILE_BYTES)
                    set_error(err, err_len, "%s: out of memory", path);
                else
                    set_error(err, err_len, "%s: config: the config is larger than %u bytes", path,
                              MAX_FILE_BYTES);
                goto out;
            }
            buf = nb;
            cap = cap ? cap * 2 : 4096;
        }
        got = fread(buf + len, 1, cap - len, f);
        len += got;
    } while (got > 0);
    if (ferror(f)) {
        set_error(err, err_len, "%s: cannot read: %s", path, strerror(errno));
        goto out;
    }
    cfg = fs_config_parse(buf, len, path, err, err_len);
out:
    fclose(f);
    free(buf);
    return cfg;
}

static void free_strings(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

void fs_config_free(fs_config *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; cfg->funnels && i < cfg->n_funnels; i++) {
        fs_funnel_cfg *f = &cfg->funnels[i];
        for (size_t s = 0; f->stages && s < f->n_stages; s++) {
            free(f->stages[s].name);
            free_strings(f->stages[s].events, f->stages[s].n_events);
        }
        free(f->stages);
        free_strings(f->exclude, f->n_exclude);
        free(f->name);
    }
    free(cfg->funnels);
    for (size_t i = 0; cfg->kafka && i < cfg->n_kafka; i++) {
        free(cfg->kafka[i].key);
        free(cfg->kafka[i].value);
    }
    free(cfg->kafka);
    free(cfg->path);
    free(cfg->input_topic);
    free(cfg->output_topic);
    free(cfg->dead_letter_topic);
    free(cfg->state_topic);
    free(cfg->http_listen);
    free(cfg);
}

uint32_t fs_config_threads(const fs_config *cfg)
{
    if (cfg->threads > 0)
        return (uint32_t)cfg->threads;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return cores > 0 ? (uint32_t)cores : 1;
}

void fs_config_set_kafka(fs_config *cfg, const char *key, const char *value)
{
    for (size_t i = 0; i < cfg->n_kafka; i++)
        if (!strcmp(cfg->kafka[i].key, key)) {
            free(cfg->kafka[i].value);
            cfg->kafka[i].value = fs_xstrdup(value);
            return;
        }
    cfg->kafka = fs_xrealloc(cfg->kafka, (cfg->n_kafka + 1) * sizeof(*cfg->kafka));
    cfg->kafka[cfg->n_kafka++] = (fs_kv){fs_xstrdup(key), fs_xstrdup(value)};
}
