/* decode.c -- one message -> fs_event, from MessagePack or JSON (SPEC §1).
 *
 * Both formats end in fill_event, which applies the SPEC §1 rules once to a
 * neutral field_value per known key (the last duplicate wins) in a fixed
 * order (customer_id, ts, event, channel, campaign, segment, value), so a
 * record with several faults is always rejected for the same reason.
 *
 * MessagePack: one pass over the bytes (mp_walk), no object tree, no memory.
 * Each header is read with its bounds checked against the message; a field's
 * value is kept as a slice/number when its key is read, any other value is
 * skipped. Skipping a container keeps a stack of counts of values still to
 * read, at most MP_MAX_DEPTH deep (msgpack-c's nesting limit, which the
 * output side and the test reference use: deeper objects are malformed), so
 * the cost is the bytes actually present whatever sizes are declared. The
 * walk ranks what it finds as the reference decoder does (see
 * tests/fuzz/mp_reference.h): depth, then the first bad key, then the
 * fields' UTF-8, then fill_event. Only a rejected message is also framed
 * (frame.c): a truncated object, a 0xc1 byte or trailing bytes outrank every
 * other reason, and the framer says which.
 *
 * JSON: two decoders. json_fast is a single-pass parser for the messages
 * that matter: a valid object whose keys have no escapes and whose fields
 * are strings, numbers or null (values under other keys may be any
 * valid JSON, checked and skipped, nested at most JSON_MAX_DEPTH). It either
 * accepts -- exactly when the exact decoder would, with the same event -- or
 * defers, and the exact decoder (fs_decode_json_reference) then decides the
 * outcome and the reason. Rejected messages thus cost both, which keeps the
 * reasons identical without a second implementation of jsmn's error
 * classification (truncated vs malformed vs trailing data).
 *
 * The exact JSON decoder: jsmn (strict mode) tokenises into a token array
 * owned by the decoder and grown on demand up to JSON_MAX_TOKENS. jsmn's
 * comma and closing-bracket handling search back through the tokens; with
 * parent links that search is bounded by the nesting depth, and a pre-scan
 * rejects objects nested deeper than JSON_MAX_DEPTH, so tokenising stays
 * linear in the message length (without both, one 500 KB message took
 * seconds). jsmn is lenient about separators, so the top-level object's
 * structure (`{ "k" : v , ... }`) is checked here between tokens, and so is
 * every nested value's (json_check_value): a message is accepted only if it
 * is valid JSON, unknown keys included. Strings are validated (no raw control
 * characters, valid UTF-8) everywhere; the strings that become fields also
 * must have paired surrogate escapes, and are unescaped into the caller's
 * scratch only when they contain a backslash.
 */
#include "decode.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSMN_STATIC
#define JSMN_STRICT
#define JSMN_PARENT_LINKS /* O(1) commas, O(depth) closing brackets */
#include <jsmn.h>

#include "frame.h"
#include "utf8.h"
#include "util.h"

#define JSON_INITIAL_TOKENS 64
#define JSON_MAX_TOKENS     (1u << 20) /* 16 MiB of tokens; a bigger object is malformed */
#define JSON_MAX_DEPTH      32 /* nested containers, top level included: msgpack-c's limit */
#define MP_MAX_DEPTH        32 /* nested containers, top level included: msgpack-c's limit */
#define MAX_ABS_VALUE       1e18

struct fs_decoder {
    jsmntok_t *tok;
    unsigned ntok;
};

fs_decoder *fs_decoder_new(void)
{
    fs_decoder *dec = fs_xcalloc(1, sizeof *dec);
    dec->ntok = JSON_INITIAL_TOKENS;
    dec->tok = fs_xmalloc(dec->ntok * sizeof *dec->tok);
    return dec;
}

void fs_decoder_free(fs_decoder *dec)
{
    if (!dec)
        return;
    free(dec->tok);
    free(dec);
}

/* ---- the format-neutral part ------------------------------------------ */

enum field { F_CUSTOMER_ID, F_TS, F_EVENT, F_CHANNEL, F_CAMPAIGN, F_SEGMENT, F_VALUE, F_COUNT };

static int field_of(const char *k, size_t n)
{
    switch (n) {
    case 2:
        return memcmp(k, "ts", 2) ? -1 : F_TS;
    case 5:
        return !memcmp(k, "event", 5) ? F_EVENT : !memcmp(k, "value", 5) ? F_VALUE : -1;
    case 7:
        return !memcmp(k, "channel", 7) ? F_CHANNEL : !memcmp(k, "segment", 7) ? F_SEGMENT : -1;
    case 8:
        return memcmp(k, "campaign", 8) ? -1 : F_CAMPAIGN;
    case 11:
        return memcmp(k, "customer_id", 11) ? -1 : F_CUSTOMER_ID;
    default:
        return -1;
    }
}

typedef enum value_kind { V_ABSENT, V_NULL, V_STR, V_INT, V_FLOAT, V_OTHER } value_kind;

typedef struct field_value {
    value_kind kind;
    bool fits_int64; /* V_INT: i holds the value exactly */
    int64_t i;
    double d; /* V_INT and V_FLOAT: the value as a double */
    fs_slice str;
} field_value;

static const fs_slice unknown_label = {"unknown", 7};

static fs_reject required_string(const field_value *f, uint32_t max, fs_reject missing,
                                 fs_reject bad, fs_slice *out)
{
    if (f->kind == V_ABSENT)
        return missing;
    if (f->kind != V_STR || f->str.len == 0 || f->str.len > max)
        return bad;
    *out = f->str;
    return FS_OK;
}

static fs_reject optional_string(const field_value *f, fs_slice dflt, fs_reject bad, fs_slice *out)
{
    if (f->kind == V_ABSENT || f->kind == V_NULL) {
        *out = dflt;
        return FS_OK;
    }
    if (f->kind != V_STR || f->str.len > FS_MAX_LABEL)
        return bad;
    *out = f->str;
    return FS_OK;
}

static fs_reject fill_event(const field_value *f, fs_event *ev)
{
    fs_reject r;
    r = required_string(&f[F_CUSTOMER_ID], FS_MAX_CUSTOMER_ID, FS_REJECT_MISSING_CUSTOMER_ID,
                        FS_REJECT_BAD_CUSTOMER_ID, &ev->customer_id);
    if (r)
        return r;
    if (f[F_TS].kind == V_ABSENT)
        return FS_REJECT_MISSING_TS;
    if (f[F_TS].kind != V_INT || !f[F_TS].fits_int64 || !fs_ts_valid(f[F_TS].i))
        return FS_REJECT_BAD_TS;
    ev->ts = f[F_TS].i;
    r = required_string(&f[F_EVENT], FS_MAX_EVENT_TYPE, FS_REJECT_MISSING_EVENT,
                        FS_REJECT_BAD_EVENT, &ev->event);
    if (r)
        return r;
    if ((r = optional_string(&f[F_CHANNEL], unknown_label, FS_REJECT_BAD_CHANNEL, &ev->channel)))
        return r;
    if ((r = optional_string(&f[F_CAMPAIGN], unknown_label, FS_REJECT_BAD_CAMPAIGN, &ev->campaign)))
        return r;
    if ((r = optional_string(&f[F_SEGMENT], unknown_label, FS_REJECT_BAD_SEGMENT, &ev->segment)))
        return r;
    const field_value *v = &f[F_VALUE];
    if (v->kind == V_ABSENT || v->kind == V_NULL)
        ev->value = 0;
    else if ((v->kind == V_INT || v->kind == V_FLOAT) && isfinite(v->d) &&
             fabs(v->d) < MAX_ABS_VALUE)
        ev->value = v->d;
    else
        return FS_REJECT_BAD_VALUE;
    ev->customer_hash = fs_hash_customer(ev->customer_id.ptr, ev->customer_id.len);
    return FS_OK;
}

/* Event strings are short and nearly always ASCII: OR the bytes together
 * (a word at a time) and only call the full validator when a high bit is set. */
static inline bool utf8_ok(const char *s, size_t n)
{
    uint64_t acc = 0;
    if (n >= 8) {
        size_t i = 0;
        for (; i + 8 < n; i += 8) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            acc |= w;
        }
        uint64_t w; /* the last 8 bytes, overlapping what was read */
        memcpy(&w, s + n - 8, 8);
        acc |= w;
    } else if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, s, 4);
        memcpy(&b, s + n - 4, 4);
        acc = a | b;
    } else if (n > 0) {
        acc = (unsigned char)s[0] | (unsigned char)s[n / 2] | (unsigned char)s[n - 1];
    }
    return !(acc & 0x8080808080808080ull) || fs_utf8_valid(s, n);
}

/* ---- MessagePack ------------------------------------------------------- */

/* Reasons only mp_walk uses: the walk ran out of bytes, met 0xc1, or ended
 * before the message did. Which public reason applies (truncated, bad start
 * byte, malformed, trailing data) is the framer's call (mp_structure). */
#define MP_STRUCTURE FS_REJECT_COUNT

static inline uint16_t mp_be16(const unsigned char *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static inline uint32_t mp_be32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return __builtin_bswap32(v);
}

static inline uint64_t mp_be64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return __builtin_bswap64(v);
}

typedef enum mp_type { MP_NIL, MP_INT, MP_FLOAT, MP_STR, MP_CONTAINER, MP_OTHER } mp_type;

/* One decoded header. MP_INT: fits_int64/i/d as in field_value; MP_CONTAINER:
 * children = values that follow (twice the entries for a map). */
typedef struct mp_item {
    mp_type type;
    bool fits_int64;
    bool is_map;
    int64_t i;
    double d;
    const char *str;
    uint32_t len;
    uint64_t children;
} mp_item;

/* Reads the value header at *pp (and a scalar's payload), moving *pp past
 * it; MP_STRUCTURE when the bytes run out or the byte is 0xc1. Never reads
 * at or beyond end. */
static inline fs_reject mp_read(const unsigned char **pp, const unsigned char *end, mp_item *it)
{
    const unsigned char *p = *pp;
    size_t avail = (size_t)(end - p);
    if (avail == 0)
        return MP_STRUCTURE;
    unsigned char b = *p;
    size_t need, n;
    if (b <= 0x7f) {
        it->type = MP_INT;
        it->fits_int64 = true;
        it->i = b;
        it->d = b;
        *pp = p + 1;
        return FS_OK;
    }
    if (b >= 0xe0) {
        it->type = MP_INT;
        it->fits_int64 = true;
        it->i = (int8_t)b;
        it->d = (double)it->i;
        *pp = p + 1;
        return FS_OK;
    }
    if (b >= 0xa0 && b <= 0xbf) {
        n = b & 0x1fu;
        need = 1;
        goto str;
    }
    if (b <= 0x9f) { /* fixmap 0x80-0x8f, fixarray 0x90-0x9f */
        it->type = MP_CONTAINER;
        it->is_map = b <= 0x8f;
        it->children = (uint64_t)(b & 0x0fu) << it->is_map;
        *pp = p + 1;
        return FS_OK;
    }
    switch (b) {
    case 0xc0:
        it->type = MP_NIL;
        *pp = p + 1;
        return FS_OK;
    case 0xc2:
    case 0xc3:
        it->type = MP_OTHER;
        *pp = p + 1;
        return FS_OK;
    case 0xd9:
        if (avail < 2)
            return MP_STRUCTURE;
        n = p[1];
        need = 2;
        goto str;
    case 0xda:
        if (avail < 3)
            return MP_STRUCTURE;
        n = mp_be16(p + 1);
        need = 3;
        goto str;
    case 0xdb:
        if (avail < 5)
            return MP_STRUCTURE;
        n = mp_be32(p + 1);
        need = 5;
        goto str;
    case 0xc4: /* bin 8/16/32, ext 8/16/32: length, (ext: type byte), payload */
    case 0xc7:
        if (avail < 2)
            return MP_STRUCTURE;
        need = 2 + (b == 0xc7);
        n = p[1];
        goto other;
    case 0xc5:
    case 0xc8:
        if (avail < 3)
            return MP_STRUCTURE;
        need = 3 + (b == 0xc8);
        n = mp_be16(p + 1);
        goto other;
    case 0xc6:
    case 0xc9:
        if (avail < 5)
            return MP_STRUCTURE;
        need = 5 + (b == 0xc9);
        n = mp_be32(p + 1);
        goto other;
    case 0xd4: /* fixext 1/2/4/8/16: type byte + payload */
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8:
        need = 2;
        n = (size_t)1 << (b - 0xd4);
        goto other;
    case 0xdc:
    case 0xde:
        if (avail < 3)
            return MP_STRUCTURE;
        it->type = MP_CONTAINER;
        it->is_map = b == 0xde;
        it->children = (uint64_t)mp_be16(p + 1) << it->is_map;
        *pp = p + 3;
        return FS_OK;
    case 0xdd:
    case 0xdf:
        if (avail < 5)
            return MP_STRUCTURE;
        it->type = MP_CONTAINER;
        it->is_map = b == 0xdf;
        it->children = (uint64_t)mp_be32(p + 1) << it->is_map;
        *pp = p + 5;
        return FS_OK;
    case 0xca: {
        if (avail < 5)
            return MP_STRUCTURE;
        uint32_t u = mp_be32(p + 1);
        float f;
        memcpy(&f, &u, 4);
        it->type = MP_FLOAT;
        it->d = f;
        *pp = p + 5;
        return FS_OK;
    }
    case 0xcb: {
        if (avail < 9)
            return MP_STRUCTURE;
        uint64_t u = mp_be64(p + 1);
        memcpy(&it->d, &u, 8);
        it->type = MP_FLOAT;
        *pp = p + 9;
        return FS_OK;
    }
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf: {
        size_t w = (size_t)1 << (b - 0xcc);
        if (avail < 1 + w)
            return MP_STRUCTURE;
        uint64_t u = w == 1   ? p[1]
                     : w == 2 ? mp_be16(p + 1)
                     : w == 4 ? mp_be32(p + 1)
                              : mp_be64(p + 1);
        it->type = MP_INT;
        it->fits_int64 = u <= (uint64_t)INT64_MAX;
        it->i = it->fits_int64 ? (int64_t)u : 0;
        it->d = (double)u;
        *pp = p + 1 + w;
        return FS_OK;
    }
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3: {
        size_t w = (size_t)1 << (b - 0xd0);
        if (avail < 1 + w)
            return MP_STRUCTURE;
        int64_t v = w == 1   ? (int8_t)p[1]
                    : w == 2 ? (int16_t)mp_be16(p + 1)
                    : w == 4 ? (int32_t)mp_be32(p + 1)
                             : (int64_t)mp_be64(p + 1);
        it->type = MP_INT;
        it->fits_int64 = true;
        it->i = v;
        it->d = (double)v;
        *pp = p + 1 + w;
        return FS_OK;
    }
    default: /* 0xc1 */
        return MP_STRUCTURE;
    }
str:
    if (avail - need < n)
        return MP_STRUCTURE;
    it->type = MP_STR;
    it->str = (const char *)p + need;
    it->len = (uint32_t)n;
    *pp = p + need + n;
    return FS_OK;
other:
    if (avail < need || avail - need < n)
        return MP_STRUCTURE;
    it->type = MP_OTHER;
    *pp = p + need + n;
    return FS_OK;
}

/* Skips the `children` values of a container at nesting level `level` (the
 * top-level map is 1). Open containers are a stack of counts of values still
 * to read, so the cost is the bytes read whatever the declared sizes; a
 * container deeper than MP_MAX_DEPTH is malformed, as msgpack-c (which the
 * reference decoder and the output side use) refuses it. */
static fs_reject mp_skip_children(const unsigned char **pp, const unsigned char *end,
                                  uint64_t children, unsigned level)
{
    uint64_t stack[MP_MAX_DEPTH];
    unsigned top = 0;
    uint64_t left = children;
    while (left > 0) {
        mp_item it;
        fs_reject r = mp_read(pp, end, &it);
        if (r)
            return r;
        left--;
        if (it.type == MP_CONTAINER) {
            if (level + top + 1 > MP_MAX_DEPTH)
                return FS_REJECT_MALFORMED;
            if (it.children > 0) {
                stack[top++] = left;
                left = it.children;
            }
        }
        while (left == 0 && top > 0)
            left = stack[--top];
    }
    return FS_OK;
}

/* A value that became a field, as field_value (strings not yet validated). */
static void mp_field(const mp_item *it, field_value *out)
{
    switch (it->type) {
    case MP_NIL:
        out->kind = V_NULL;
        break;
    case MP_STR:
        out->kind = V_STR;
        out->str = (fs_slice){it->str, it->len};
        break;
    case MP_INT:
        out->kind = V_INT;
        out->fits_int64 = it->fits_int64;
        out->i = it->i;
        out->d = it->d;
        break;
    case MP_FLOAT:
        out->kind = V_FLOAT;
        out->d = it->d;
        break;
    default:
        out->kind = V_OTHER;
        break;
    }
}

/* Decodes msg[0..len) in one pass. The result is exact when msg frames as
 * exactly one object; otherwise it may be MP_STRUCTURE or a reason that the
 * framer's verdict overrides (see fs_decode_msgpack). The checks run in the
 * order the reasons are ranked: nesting depth (found anywhere), then the
 * first key that is not a string or not UTF-8, then the UTF-8 of the fields'
 * final values, then fill_event. Replaced duplicates are only skipped. */
static fs_reject mp_walk(const char *msg, size_t len, fs_event *ev, size_t *used)
{
    const unsigned char *p = (const unsigned char *)msg, *end = p + len;
    mp_item it;
    fs_reject r = mp_read(&p, end, &it);
    if (r)
        return r;
    if (it.type != MP_CONTAINER || !it.is_map)
        return FS_REJECT_NOT_A_MAP; /* unless the framer finds worse */
    uint64_t entries = it.children / 2;
    field_value fv[F_COUNT];
    for (int f = 0; f < F_COUNT; f++)
        fv[f].kind = V_ABSENT;
    fs_reject key_err = FS_OK;
    for (uint64_t k = 0; k < entries; k++) {
        int f = -1;
        const char *key;
        size_t klen;
        if (p < end && (*p & 0xe0) == 0xa0) { /* a fixstr key: nearly always */
            klen = *p & 0x1fu;
            if ((size_t)(end - p) - 1 < klen)
                return MP_STRUCTURE;
            key = (const char *)p + 1;
            p += 1 + klen;
            goto key_str;
        }
        if ((r = mp_read(&p, end, &it)))
            return r;
        if (it.type == MP_STR) {
            key = it.str;
            klen = it.len;
        key_str:
            f = field_of(key, klen);
            if (f < 0 && !key_err && !utf8_ok(key, klen)) /* known names: ASCII */
                key_err = FS_REJECT_INVALID_UTF8;
        } else {
            if (!key_err)
                key_err = FS_REJECT_KEY_NOT_STRING;
            if (it.type == MP_CONTAINER && (r = mp_skip_children(&p, end, it.children, 2)))
                return r;
        }
        if (f >= 0 && p < end && (*p & 0xe0) == 0xa0) { /* a field's fixstr value */
            size_t n = *p & 0x1fu;
            if ((size_t)(end - p) - 1 < n)
                return MP_STRUCTURE;
            fv[f].kind = V_STR;
            fv[f].str = (fs_slice){(const char *)p + 1, (uint32_t)n};
            p += 1 + n;
            continue;
        }
        if ((r = mp_read(&p, end, &it)))
            return r;
        if (it.type == MP_CONTAINER && (r = mp_skip_children(&p, end, it.children, 2)))
            return r;
        if (f >= 0)
            mp_field(&it, &fv[f]);
    }
    if (used)
        *used = (size_t)(p - (const unsigned char *)msg);
    else if (p != end)
        return MP_STRUCTURE;
    if (key_err)
        return key_err;
    for (int f = 0; f < F_COUNT; f++)
        if (fv[f].kind == V_STR && !utf8_ok(fv[f].str.ptr, fv[f].str.len))
            return FS_REJECT_INVALID_UTF8;
    return fill_event(fv, ev);
}

/* The framer's reason for a message that is not exactly one complete
 * object, or FS_OK when it is. */
static fs_reject mp_structure(const char *msg, size_t len)
{
    size_t framed = 0;
    fs_frame_status st = fs_frame_msgpack(msg, len, &framed);
    fs_reject r = fs_frame_reject(st, framed);
    return r == FS_OK && framed < len ? FS_REJECT_TRAILING_DATA : r;
}

fs_reject fs_decode_msgpack(fs_decoder *dec, const char *msg, size_t len, fs_event *ev)
{
    (void)dec;
    fs_reject r = mp_walk(msg, len, ev, NULL);
    if (r == FS_OK)
        return FS_OK;
    /* Rejected: the message's shape outranks what the walk saw. */
    fs_reject s = mp_structure(msg, len);
    if (s)
        return s;
    return r == MP_STRUCTURE ? FS_REJECT_MALFORMED : r; /* (not reached: it framed) */
}

fs_frame_status fs_decode_msgpack_next(fs_decoder *dec, const char *buf, size_t avail,
                                       size_t *msg_len, fs_event *ev, fs_reject *reason)
{
    (void)dec;
    size_t used = 0;
    if (mp_walk(buf, avail, ev, &used) == FS_OK) {
        *msg_len = used;
        *reason = FS_OK;
        return FS_FRAME_OK;
    }
    /* Rejected or incomplete: frame, then decode exactly the framed object. */
    fs_frame_status st = fs_frame_msgpack(buf, avail, msg_len);
    if (st == FS_FRAME_OK) {
        fs_reject r = mp_walk(buf, *msg_len, ev, NULL);
        *reason = r == MP_STRUCTURE ? FS_REJECT_MALFORMED : r; /* (not reached: it framed) */
    }
    return st;
}

/* ---- JSON -------------------------------------------------------------- */

static bool is_json_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t skip_ws(const char *s, size_t i, size_t len)
{
    while (i < len && is_json_ws(s[i]))
        i++;
    return i;
}

/* True when s[from..to) is JSON whitespace around one `sep` (or none if 0). */
static bool gap_is(const char *s, size_t from, size_t to, char sep)
{
    size_t i = from;
    while (i < to && is_json_ws(s[i]))
        i++;
    if (sep) {
        if (i >= to || s[i] != sep)
            return false;
        i++;
        while (i < to && is_json_ws(s[i]))
            i++;
    }
    return i == to;
}

/* A string token's start/end exclude its quotes. */
static size_t raw_start(const jsmntok_t *t)
{
    return (size_t)t->start - (t->type == JSMN_STRING);
}

static size_t raw_end(const jsmntok_t *t)
{
    return (size_t)t->end + (t->type == JSMN_STRING);
}

/* Reads \uXXXX at s[i..n) (i at the backslash); -1 when it is not one. */
static long read_u_escape(const char *s, size_t i, size_t n)
{
    if (n - i < 6 || s[i] != '\\' || s[i + 1] != 'u')
        return -1;
    long cp = 0;
    for (size_t k = 2; k < 6; k++) {
        int h = fs_hex_digit(s[i + k]);
        if (h < 0)
            return -1;
        cp = cp * 16 + h;
    }
    return cp;
}

/* Unescapes s[0..n) into out; returns the output length, or -1 for a bad
 * escape (MALFORMED) and -2 for an unpaired surrogate (INVALID_UTF8). */
static long json_unescape(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        if (s[i] != '\\') {
            out[o++] = s[i++];
            continue;
        }
        if (i + 1 >= n)
            return -1;
        char c = s[i + 1];
        const char *simple = strchr("\"\\/bfnrt", c);
        if (c && simple) {
            static const char repl[] = "\"\\/\b\f\n\r\t";
            out[o++] = repl[simple - "\"\\/bfnrt"];
            i += 2;
            continue;
        }
        long cp = read_u_escape(s, i, n);
        if (cp < 0)
            return -1;
        i += 6;
        if (cp >= 0xDC00 && cp <= 0xDFFF)
            return -2;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            long lo = read_u_escape(s, i, n);
            if (lo < 0xDC00 || lo > 0xDFFF)
                return -2;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            i += 6;
        }
        o += fs_utf8_put(out + o, (uint32_t)cp);
    }
    return (long)o;
}

/* Validates a string token and points *out at its bytes, unescaping into
 * scratch (advancing *used) when it has escapes. */
static fs_reject json_string(const char *msg, const jsmntok_t *t, char *scratch, size_t *used,
                             fs_slice *out)
{
    const char *s = msg + t->start;
    size_t n = (size_t)(t->end - t->start);
    bool escaped = false, ascii = true;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20)
            return FS_REJECT_MALFORMED;
        escaped |= (c == '\\');
        ascii &= (c < 0x80);
    }
    if (!ascii && !fs_utf8_valid(s, n))
        return FS_REJECT_INVALID_UTF8;
    if (!escaped) {
        *out = (fs_slice){s, (uint32_t)n};
        return FS_OK;
    }
    if (!scratch)
        return FS_REJECT_MALFORMED;
    char *dst = scratch + *used;
    long m = json_unescape(s, n, dst);
    if (m < 0)
        return m == -1 ? FS_REJECT_MALFORMED : FS_REJECT_INVALID_UTF8;
    *used += (size_t)m;
    *out = (fs_slice){dst, (uint32_t)m};
    return FS_OK;
}

static bool all_digits(const char *s, size_t from, size_t to)
{
    if (from >= to)
        return false;
    for (size_t i = from; i < to; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* Parses a JSON number or literal token per the JSON grammar. */
static fs_reject json_primitive(const char *msg, const jsmntok_t *t, field_value *out)
{
    const char *s = msg + t->start;
    size_t n = (size_t)(t->end - t->start);
    if (n == 4 && !memcmp(s, "null", 4)) {
        out->kind = V_NULL;
        return FS_OK;
    }
    if ((n == 4 && !memcmp(s, "true", 4)) || (n == 5 && !memcmp(s, "false", 5))) {
        out->kind = V_OTHER;
        return FS_OK;
    }
    size_t i = (s[0] == '-'), int_start = i;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++;
    size_t int_end = i;
    if (int_end == int_start || (s[int_start] == '0' && int_end - int_start > 1))
        return FS_REJECT_MALFORMED;
    bool integral = true;
    if (i < n && s[i] == '.') {
        size_t f = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == f)
            return FS_REJECT_MALFORMED;
        integral = false;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (!all_digits(s, i, n))
            return FS_REJECT_MALFORMED;
        i = n;
        integral = false;
    }
    if (i != n)
        return FS_REJECT_MALFORMED;
    /* The token ends at a JSON delimiter inside the message, so strtod stops
     * exactly at its end. */
    out->d = strtod(s, NULL);
    out->kind = integral ? V_INT : V_FLOAT;
    if (integral) {
        uint64_t mag = 0;
        bool overflow = false;
        for (size_t k = int_start; k < int_end && !overflow; k++) {
            uint64_t digit = (uint64_t)(s[k] - '0');
            overflow = mag > (UINT64_MAX - digit) / 10;
            mag = mag * 10 + digit;
        }
        bool neg = int_start == 1;
        out->fits_int64 = !overflow && mag <= (uint64_t)INT64_MAX + neg;
        if (out->fits_int64)
            out->i = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    }
    return FS_OK;
}

/* Checks a string token without unescaping it: no raw control characters,
 * valid UTF-8 (jsmn has checked the escapes' syntax). */
static fs_reject json_check_string(const char *msg, const jsmntok_t *t)
{
    const char *s = msg + t->start;
    size_t n = (size_t)(t->end - t->start);
    bool ascii = true;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20)
            return FS_REJECT_MALFORMED;
        ascii &= (c < 0x80);
    }
    return ascii || fs_utf8_valid(s, n) ? FS_OK : FS_REJECT_INVALID_UTF8;
}

/* Which known field a key token names (-1: none). Keys with escapes are
 * unescaped first, so "customer\u005fid" is customer_id. */
static int json_key_field(const char *msg, const jsmntok_t *key, fs_reject *err)
{
    fs_slice k;
    char buf[128];
    size_t used = 0;
    size_t n = (size_t)(key->end - key->start);
    if (n > sizeof buf) { /* too long to name a known field even if escaped */
        *err = json_check_string(msg, key);
        return -1;
    }
    *err = json_string(msg, key, buf, &used, &k);
    return *err ? -1 : field_of(k.ptr, k.len);
}

static fs_reject json_value(const char *msg, const jsmntok_t *t, char *scratch, size_t *used,
                            field_value *out)
{
    if (t->type == JSMN_STRING) {
        out->kind = V_STR;
        return json_string(msg, t, scratch, used, &out->str);
    }
    if (t->type == JSMN_PRIMITIVE)
        return json_primitive(msg, t, out);
    out->kind = V_OTHER;
    return FS_OK;
}

/* Rejects, before jsmn sees them, objects nested deeper than JSON_MAX_DEPTH
 * and raw NULs inside the object (jsmn stops at a NUL and would call the
 * message truncated; it is a control character, so malformed). Strings and
 * primitives are skipped the way jsmn reads them, so brackets inside them do
 * not count and brackets jsmn sees always do. */
static fs_reject json_prescan(const char *s, size_t len)
{
    /* Most events hold no nested container and no NUL: memchr is cheaper
     * than the byte loop. (s[0] is the opening brace.) */
    if (!memchr(s, '\0', len) && !memchr(s + 1, '[', len - 1) && !memchr(s + 1, '{', len - 1))
        return FS_OK;
    unsigned depth = 0;
    bool in_str = false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '\0') {
            if (depth > 0)
                return FS_REJECT_MALFORMED;
        } else if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            if (++depth > JSON_MAX_DEPTH)
                return FS_REJECT_MALFORMED;
        } else if ((c == '}' || c == ']') && depth > 0) {
            depth--;
        } else if (c == '-' || (c >= '0' && c <= '9') || c == 't' || c == 'f' || c == 'n') {
            /* jsmn runs a primitive to the next delimiter (or NUL): a quote
             * or bracket inside one starts nothing. */
            while (i + 1 < len && !strchr("\t\r\n ,]}", s[i + 1]))
                i++;
        }
    }
    return FS_OK;
}

/* Tokenises msg into dec->tok, growing it as needed; returns the token count
 * or a jsmn error. */
static int json_tokenize(fs_decoder *dec, const char *msg, size_t len)
{
    for (;;) {
        jsmn_parser p;
        jsmn_init(&p);
        int r = jsmn_parse(&p, msg, len, dec->tok, dec->ntok);
        if (r != JSMN_ERROR_NOMEM || dec->ntok >= JSON_MAX_TOKENS)
            return r;
        dec->ntok *= 2;
        free(dec->tok);
        dec->tok = fs_xmalloc(dec->ntok * sizeof *dec->tok);
    }
}

/* Checks the JSON syntax of the value at t[i] and of everything inside it,
 * which jsmn does not: separators between tokens, number and literal
 * grammar, strings (json_check_string). *next receives the index of the
 * token after the value. depth is the value's nesting level were it a
 * container (the top-level object is 1); recursion stops at JSON_MAX_DEPTH. */
static fs_reject json_check_value(const char *msg, const jsmntok_t *t, int n, int i, int *next,
                                  int depth)
{
    const jsmntok_t *v = &t[i];
    *next = i + 1;
    if (v->type == JSMN_STRING || v->type == JSMN_PRIMITIVE) {
        field_value ignored;
        if (v->size != 0)
            return FS_REJECT_MALFORMED;
        if (v->type == JSMN_STRING)
            return json_check_string(msg, v);
        return json_primitive(msg, v, &ignored) ? FS_REJECT_MALFORMED : FS_OK;
    }
    if (depth > JSON_MAX_DEPTH) /* json_prescan's job; this guards the stack */
        return FS_REJECT_MALFORMED;
    bool object = v->type == JSMN_OBJECT;
    size_t gap_from = (size_t)v->start + 1;
    int j = i + 1;
    for (int k = 0; k < v->size; k++) {
        if (j + object >= n || !gap_is(msg, gap_from, raw_start(&t[j]), k ? ',' : 0))
            return FS_REJECT_MALFORMED;
        if (object) {
            const jsmntok_t *key = &t[j++];
            if (key->type != JSMN_STRING || key->size != 1 ||
                !gap_is(msg, raw_end(key), raw_start(&t[j]), ':'))
                return FS_REJECT_MALFORMED;
            fs_reject r = json_check_string(msg, key);
            if (r)
                return r;
        }
        fs_reject r = json_check_value(msg, t, n, j, next, depth + 1);
        if (r)
            return r;
        gap_from = raw_end(&t[j]);
        j = *next;
    }
    *next = j;
    return gap_is(msg, gap_from, (size_t)v->end - 1, 0) ? FS_OK : FS_REJECT_MALFORMED;
}

/* Walks the top-level object's keys; slot[f] receives the token index of the
 * last value of known field f. Every other value (unknown keys, replaced
 * duplicates, containers) has its syntax checked here; the values that
 * become fields are checked by json_value. */
static fs_reject json_walk(const char *msg, const jsmntok_t *t, int n, int slot[F_COUNT])
{
    int idx = 1;
    size_t gap_from = (size_t)t[0].start + 1;
    for (int k = 0; k < t[0].size; k++) {
        if (idx + 1 >= n)
            return FS_REJECT_MALFORMED;
        const jsmntok_t *key = &t[idx], *val = &t[idx + 1];
        if (key->type != JSMN_STRING)
            return FS_REJECT_KEY_NOT_STRING;
        if (key->size != 1 || !gap_is(msg, gap_from, raw_start(key), k ? ',' : 0) ||
            !gap_is(msg, raw_end(key), raw_start(val), ':'))
            return FS_REJECT_MALFORMED;
        if (val->type != JSMN_OBJECT && val->type != JSMN_ARRAY && val->size != 0)
            return FS_REJECT_MALFORMED;
        fs_reject err;
        int f = json_key_field(msg, key, &err);
        if (err)
            return err;
        int next = idx + 2;
        bool scalar = val->type == JSMN_STRING || val->type == JSMN_PRIMITIVE;
        int ignored;
        if (f < 0 || !scalar)
            err = json_check_value(msg, t, n, idx + 1, &next, 2);
        if (!err && f >= 0 && slot[f] >= 0) /* a replaced duplicate */
            err = json_check_value(msg, t, n, slot[f], &ignored, 2);
        if (err)
            return err;
        if (f >= 0)
            slot[f] = idx + 1;
        idx = next;
        gap_from = raw_end(val);
    }
    if (idx != n || !gap_is(msg, gap_from, (size_t)t[0].end - 1, 0))
        return FS_REJECT_MALFORMED;
    return FS_OK;
}

static fs_reject json_tokenize_reject(const fs_decoder *dec, int r)
{
    if (dec->tok[0].start == 0 && dec->tok[0].end > 0)
        return FS_REJECT_TRAILING_DATA; /* the object closed; what follows broke */
    return r == JSMN_ERROR_PART ? FS_REJECT_TRUNCATED : FS_REJECT_MALFORMED;
}

fs_reject fs_decode_json_reference(fs_decoder *dec, const char *msg, size_t len, fs_event *ev,
                                   char *scratch, size_t *scratch_used)
{
    *scratch_used = 0;
    size_t first = skip_ws(msg, 0, len);
    if (first == len)
        return FS_REJECT_TRUNCATED;
    if (msg[first] != '{')
        return strchr("[\"-0123456789tfn", msg[first]) && msg[first] ? FS_REJECT_NOT_A_MAP
                                                                     : FS_REJECT_MALFORMED;
    fs_reject r = json_prescan(msg + first, len - first);
    if (r)
        return r;
    dec->tok[0].start = dec->tok[0].end = -1;
    int n = json_tokenize(dec, msg + first, len - first);
    if (n < 0)
        return json_tokenize_reject(dec, n);
    const char *obj = msg + first;
    const jsmntok_t *t = dec->tok;
    if (skip_ws(obj, (size_t)t[0].end, len - first) != len - first)
        return FS_REJECT_TRAILING_DATA;

    int slot[F_COUNT];
    for (int f = 0; f < F_COUNT; f++)
        slot[f] = -1;
    r = json_walk(obj, t, n, slot);
    if (r)
        return r;
    field_value fv[F_COUNT];
    for (int f = 0; f < F_COUNT; f++) {
        fv[f].kind = V_ABSENT;
        if (slot[f] < 0)
            continue;
        r = json_value(obj, &t[slot[f]], scratch, scratch_used, &fv[f]);
        if (r)
            return r;
    }
    return fill_event(fv, ev);
}

/* ---- JSON, the single-pass fast path ------------------------------------- */

/* What json_fast returns for anything it does not accept outright. */
#define JSON_DEFER FS_REJECT_COUNT

/* 1 for bytes that end the plain run of a string: '"', '\\', control
 * characters, and non-ASCII (validated separately). */
static const unsigned char json_str_stop[256] = {
    [0 ... 0x1f] = 1,
    ['"'] = 1,
    ['\\'] = 1,
    [0x80 ... 0xff] = 1,
};

/* JSON whitespace as a bit set over bytes 0..32: one comparison when, as
 * usual, the next byte is not whitespace. */
#define JF_WS_BITS ((1ull << ' ') | (1ull << '\t') | (1ull << '\n') | (1ull << '\r'))

static inline const char *jf_ws(const char *p, const char *end)
{
    while (p < end && (unsigned char)*p <= ' ' && ((JF_WS_BITS >> (unsigned char)*p) & 1))
        p++;
    return p;
}

/* Scans the string whose opening quote is at *pp. On success *pp is past the
 * closing quote, the contents are s[0..*n), and *escaped says whether they
 * contain escapes (whose syntax is checked). Raw control characters, bad
 * escapes, invalid UTF-8 or a missing closing quote: false. */
static inline __attribute__((always_inline)) bool
jf_string(const char **pp, const char *end, const char **s, size_t *n, bool *escaped)
{
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    const char *p = *pp + 1, *start = p;
    bool esc = false, ascii = true;
    for (;;) {
        /* Eight bytes at a time: a high bit per byte that is '"', '\\', a
         * control character or non-ASCII. The lowest flag is always exact
         * (borrows only spill above a real match), which is the one used. */
        while (end - p >= 8) {
            uint64_t w, q, b;
            memcpy(&w, p, 8);
            q = w ^ (ones * '"');
            b = w ^ (ones * '\\');
            uint64_t m =
                (((q - ones) & ~q) | ((b - ones) & ~b) | ((w - ones * 0x20) & ~w) | w) & high;
            if (m) {
                p += __builtin_ctzll(m) >> 3;
                goto stop;
            }
            p += 8;
        }
        while (p < end && !json_str_stop[(unsigned char)*p])
            p++;
        if (p >= end)
            return false;
    stop:;
        unsigned char c = (unsigned char)*p;
        if (c == '"')
            break;
        if (c >= 0x80) {
            ascii = false;
            p++;
        } else if (c == '\\') {
            esc = true;
            if (end - p < 2)
                return false;
            char e = p[1];
            if (e == 'u') {
                if (end - p < 6)
                    return false;
                for (int k = 2; k < 6; k++)
                    if (fs_hex_digit(p[k]) < 0)
                        return false;
                p += 6;
            } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' ||
                       e == 'r' || e == 't') {
                p += 2;
            } else {
                return false;
            }
        } else {
            return false; /* control character */
        }
    }
    *s = start;
    *n = (size_t)(p - start);
    *escaped = esc;
    *pp = p + 1;
    return ascii || fs_utf8_valid(start, *n);
}

/* If p[0..8) are all ASCII digits, *mag = *mag * 10^8 + their value. The
 * digit test and the conversion work on the eight bytes as one word: the
 * conversion pairs adjacent digits, then pairs of pairs, then quads (each a
 * multiply that adds the high part times 10, 100, 10^4 to the low part). */
static inline bool jf_eight_digits(const char *p, uint64_t *mag)
{
    uint64_t w;
    memcpy(&w, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap64(w); /* first digit in the lowest byte */
#endif
    if (((w & 0xf0f0f0f0f0f0f0f0ull) |
         (((w + 0x0606060606060606ull) & 0xf0f0f0f0f0f0f0f0ull) >> 4)) != 0x3333333333333333ull)
        return false;
    uint64_t v = w - 0x3030303030303030ull;
    v = ((v & 0x0f0f0f0f0f0f0f0full) * 2561) >> 8;
    v = ((v & 0x00ff00ff00ff00ffull) * 6553601) >> 16;
    v = ((v & 0x0000ffff0000ffffull) * 42949672960001ull) >> 32;
    *mag = *mag * 100000000u + (v & 0xffffffffu);
    return true;
}

/* Scans a number per the JSON grammar. On success *pp is past it, and, when
 * fv is not NULL, *fv holds its value exactly as json_primitive would give
 * it. A number must be followed by a byte of the message (a delimiter, as
 * the caller checks), so strtod never reads beyond it. */
static inline bool jf_number(const char **pp, const char *end, field_value *fv)
{
    static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    const char *p = *pp, *s = p;
    bool neg = *p == '-';
    p += neg;
    if (p >= end || *p < '0' || *p > '9')
        return false;
    uint64_t mag = 0;
    int digits = 0, frac = 0;
    if (*p == '0') {
        p++;
    } else {
        /* Timestamps have 13 digits: take eight at a time while they fit. */
        while (end - p >= 8 && digits <= 11 && jf_eight_digits(p, &mag)) {
            digits += 8;
            p += 8;
        }
        while (p < end && *p >= '0' && *p <= '9') {
            if (digits < 19) /* fits: 10^19 - 1 < 2^64 */
                mag = mag * 10 + (uint64_t)(*p - '0');
            digits++;
            p++;
        }
    }
    bool integral = true, exp = false;
    if (p < end && *p == '.') {
        p++;
        const char *f = p;
        while (p < end && *p >= '0' && *p <= '9') {
            if (digits < 19)
                mag = mag * 10 + (uint64_t)(*p - '0');
            digits += digits > 0 || *p != '0'; /* leading zeros are free */
            frac++;
            p++;
        }
        if (p == f)
            return false;
        integral = false;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        const char *e = p;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
        if (p == e)
            return false;
        integral = false;
        exp = true;
    }
    if (p >= end)
        return false; /* truncated; and strtod needs a delimiter */
    *pp = p;
    if (!fv)
        return true;
    fv->kind = integral ? V_INT : V_FLOAT;
    if (integral) {
        fv->fits_int64 = digits <= 18 || (digits == 19 && mag <= (uint64_t)INT64_MAX + neg);
        if (!fv->fits_int64)
            return false; /* not an event's number; the exact path says why */
        fv->i = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    }
    /* Exact when both the digits and the power of ten are exactly doubles:
     * one correctly rounded IEEE operation, as strtod rounds. */
    if (!exp && digits <= 19 && mag <= (1ull << 53) && frac <= 22) {
        double d = (double)mag / pow10[frac];
        fv->d = neg ? -d : d;
    } else {
        fv->d = strtod(s, NULL);
    }
    return true;
}

static inline bool jf_literal(const char **pp, const char *end, const char *lit, size_t n)
{
    if ((size_t)(end - *pp) < n || memcmp(*pp, lit, n) != 0)
        return false;
    *pp += n;
    return true;
}

/* Checks and skips the value at *pp, a value of the top-level object (so a
 * container here is at level 2). Containers are walked with a bit stack of
 * "is an object" per open level, so the cost is linear whatever the input,
 * and anything deeper than JSON_MAX_DEPTH is left to the exact path. */
static bool jf_skip(const char **pp, const char *end)
{
    const char *p = *pp;
    uint64_t is_obj = 0;
    unsigned top = 0; /* open containers */
    const char *s;
    size_t n;
    bool esc;
value:
    if (p >= end)
        return false;
    switch (*p) {
    case '"':
        if (!jf_string(&p, end, &s, &n, &esc))
            return false;
        break;
    case '{':
    case '[':
        if (2 + top > JSON_MAX_DEPTH)
            return false;
        is_obj = (is_obj & ~(1ull << top)) | ((uint64_t)(*p == '{') << top);
        top++;
        p = jf_ws(p + 1, end);
        if (p < end && *p == ((is_obj >> (top - 1)) & 1 ? '}' : ']')) {
            p++;
            top--;
            break;
        }
        if ((is_obj >> (top - 1)) & 1)
            goto key;
        goto value;
    case 't':
        if (!jf_literal(&p, end, "true", 4))
            return false;
        break;
    case 'f':
        if (!jf_literal(&p, end, "false", 5))
            return false;
        break;
    case 'n':
        if (!jf_literal(&p, end, "null", 4))
            return false;
        break;
    default:
        if (!jf_number(&p, end, NULL))
            return false;
        break;
    }
    /* after a value */
    while (top > 0) {
        p = jf_ws(p, end);
        if (p >= end)
            return false;
        bool obj = (is_obj >> (top - 1)) & 1;
        if (*p == ',') {
            p = jf_ws(p + 1, end);
            if (obj)
                goto key;
            goto value;
        }
        if (*p != (obj ? '}' : ']'))
            return false;
        p++;
        top--;
    }
    *pp = p;
    return true;
key:
    if (p >= end || *p != '"' || !jf_string(&p, end, &s, &n, &esc))
        return false;
    p = jf_ws(p, end);
    if (p >= end || *p != ':')
        return false;
    p = jf_ws(p + 1, end);
    goto value;
}

/* Decodes a message that is a plain valid event in one pass: FS_OK, or
 * JSON_DEFER for everything else -- any syntax or SPEC fault, escapes in
 * keys, a field whose value is a container, very deep or very large
 * messages. It accepts only what fs_decode_json_reference
 * accepts, with the same event, so deferring is always safe. */
static fs_reject json_fast(const char *msg, size_t len, fs_event *ev, char *scratch,
                           size_t *scratch_used)
{
    if (len >= JSON_MAX_TOKENS) /* fewer bytes than that: jsmn has tokens enough */
        return JSON_DEFER;
    const char *p = jf_ws(msg, msg + len), *end = msg + len;
    if (p >= end || *p != '{')
        return JSON_DEFER;
    field_value fv[F_COUNT];
    bool escaped[F_COUNT] = {false};
    for (int f = 0; f < F_COUNT; f++)
        fv[f].kind = V_ABSENT;
    p = jf_ws(p + 1, end);
    if (p < end && *p == '}') {
        p++;
    } else {
        for (;;) {
            const char *k, *s;
            size_t kn, sn;
            bool esc;
            if (p >= end || *p != '"' || !jf_string(&p, end, &k, &kn, &esc) || esc)
                return JSON_DEFER;
            p = jf_ws(p, end);
            if (p >= end || *p != ':')
                return JSON_DEFER;
            p = jf_ws(p + 1, end);
            if (p >= end)
                return JSON_DEFER;
            int f = field_of(k, kn);
            if (f < 0) {
                if (!jf_skip(&p, end))
                    return JSON_DEFER;
            } else if (*p == '"') {
                if (!jf_string(&p, end, &s, &sn, &esc))
                    return JSON_DEFER;
                fv[f].kind = V_STR;
                fv[f].str = (fs_slice){s, (uint32_t)sn};
                escaped[f] = esc;
            } else if (*p == 'n') {
                if (!jf_literal(&p, end, "null", 4))
                    return JSON_DEFER;
                fv[f].kind = V_NULL;
            } else if (*p == '-' || (*p >= '0' && *p <= '9')) {
                if (!jf_number(&p, end, &fv[f]))
                    return JSON_DEFER;
            } else {
                return JSON_DEFER;
            }
            p = jf_ws(p, end);
            if (p >= end)
                return JSON_DEFER;
            if (*p == '}') {
                p++;
                break;
            }
            if (*p != ',')
                return JSON_DEFER;
            p = jf_ws(p + 1, end);
        }
    }
    if (jf_ws(p, end) != end)
        return JSON_DEFER;
    /* Final field strings with escapes are unescaped into scratch in field
     * order, as the exact decoder lays them out (same bytes, same *used). */
    size_t used = 0;
    for (int f = 0; f < F_COUNT; f++) {
        if (fv[f].kind != V_STR || !escaped[f])
            continue;
        if (!scratch)
            return JSON_DEFER;
        long m = json_unescape(fv[f].str.ptr, fv[f].str.len, scratch + used);
        if (m < 0) /* an unpaired surrogate */
            return JSON_DEFER;
        fv[f].str = (fs_slice){scratch + used, (uint32_t)m};
        used += (size_t)m;
    }
    if (fill_event(fv, ev) != FS_OK)
        return JSON_DEFER;
    *scratch_used = used;
    return FS_OK;
}

fs_reject fs_decode_json(fs_decoder *dec, const char *msg, size_t len, fs_event *ev, char *scratch,
                         size_t *scratch_used)
{
    *scratch_used = 0;
    if (json_fast(msg, len, ev, scratch, scratch_used) == FS_OK)
        return FS_OK;
    return fs_decode_json_reference(dec, msg, len, ev, scratch, scratch_used);
}

fs_reject fs_decode(fs_decoder *dec, fs_format fmt, const char *msg, size_t len, fs_event *ev,
                    char *scratch, size_t *scratch_used)
{
    if (fmt == FS_FORMAT_JSON)
        return fs_decode_json(dec, msg, len, ev, scratch, scratch_used);
    *scratch_used = 0;
    return fs_decode_msgpack(dec, msg, len, ev);
}

fs_reject fs_decode_framed(fs_decoder *dec, fs_format fmt, const char *msg, size_t len,
                           fs_event *ev, char *scratch, size_t *scratch_used)
{
    if (fmt == FS_FORMAT_JSON)
        return fs_decode_json(dec, msg, len, ev, scratch, scratch_used);
    (void)dec;
    *scratch_used = 0;
    fs_reject r = mp_walk(msg, len, ev, NULL);
    return r == MP_STRUCTURE ? FS_REJECT_MALFORMED : r; /* (not reached for a framed message) */
}
