/* test_decode.c -- SPEC §1 event decoding, MessagePack and JSON, rule by rule.
 *
 * Each test states one rule and checks it in both formats where the rule
 * applies to both: the exact fs_reject reason for bad input, and every field
 * of the event for good input. MessagePack inputs are built with msgpack-c's
 * packer from a small key/value table (or written as raw bytes where the
 * packer cannot produce them); JSON inputs are literal text.
 *
 * Every message is copied into a heap block of exactly its size (and JSON
 * scratch is exactly the size the API promises to need), so under ASan any
 * read past the message or write past the scratch fails the test.
 */
#include <inttypes.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>

#include "../fuzz/mp_reference.h"
#include "decode.h"
#include "event.h"
#include "frame.h"
#include "utf8.h"

/* ---- harness ------------------------------------------------------------- */

static fs_decoder *dec;
static fs_event ev;
static char *msg; /* the last message decoded, exactly msg_len bytes */
static size_t msg_len;
static char *scratch;
static size_t scratch_used;

static int setup(void **state)
{
    (void)state;
    dec = fs_decoder_new();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fs_decoder_free(dec);
    free(msg);
    free(scratch);
    msg = scratch = NULL;
    return 0;
}

static void set_msg(const void *bytes, size_t len)
{
    free(msg);
    free(scratch);
    msg = malloc(len ? len : 1);
    scratch = malloc(len ? len : 1);
    assert_non_null(msg);
    assert_non_null(scratch);
    memcpy(msg, bytes, len);
    msg_len = len;
    memset(&ev, 0xab, sizeof ev); /* no stale fields from an earlier decode */
}

static fs_reject decode_mp_bytes(const void *bytes, size_t len)
{
    set_msg(bytes, len);
    return fs_decode_msgpack(dec, msg, msg_len, &ev);
}

static fs_reject decode_json_bytes(const char *text, size_t len)
{
    set_msg(text, len);
    scratch_used = 12345;
    fs_reject r = fs_decode_json(dec, msg, msg_len, &ev, scratch, &scratch_used);
    assert_true(scratch_used <= msg_len);
    return r;
}

static fs_reject js(const char *text)
{
    return decode_json_bytes(text, strlen(text));
}

/* Reasons compare by name so a failure says e.g. "bad_ts" != "missing_ts". */
#define assert_reason(got, want) assert_string_equal(fs_reject_name(got), fs_reject_name(want))

/* A MessagePack map described as a table of entries. */
typedef enum vkind {
    T_STR,
    T_INT,
    T_UINT,
    T_F64,
    T_F32,
    T_NIL,
    T_TRUE,
    T_BIN,
    T_EXT,
    T_NESTED, /* [1, [2, {"a": ["b", nil]}], {}, bin, ext] */
    T_EMPTY_MAP,
} vkind;

typedef enum kkind { K_STR, K_INT, K_BIN, K_NIL } kkind;

typedef struct kv {
    const char *k;
    size_t klen;
    kkind kk;
    vkind t;
    const char *s;
    size_t slen;
    int64_t i;
    uint64_t u;
    double d;
} kv;

#define KEY(key) .k = key, .klen = sizeof(key) - 1
#define S(key, lit)                                                                                \
    {                                                                                              \
        KEY(key), .t = T_STR, .s = lit, .slen = sizeof(lit) - 1                                    \
    }
#define SN(key, ptr, n)                                                                            \
    {                                                                                              \
        KEY(key), .t = T_STR, .s = ptr, .slen = n                                                  \
    }
#define I(key, v)                                                                                  \
    {                                                                                              \
        KEY(key), .t = T_INT, .i = v                                                               \
    }
#define U(key, v)                                                                                  \
    {                                                                                              \
        KEY(key), .t = T_UINT, .u = v                                                              \
    }
#define F(key, v)                                                                                  \
    {                                                                                              \
        KEY(key), .t = T_F64, .d = v                                                               \
    }
#define F32(key, v)                                                                                \
    {                                                                                              \
        KEY(key), .t = T_F32, .d = v                                                               \
    }
#define NIL(key)                                                                                   \
    {                                                                                              \
        KEY(key), .t = T_NIL                                                                       \
    }
#define TRUE_(key)                                                                                 \
    {                                                                                              \
        KEY(key), .t = T_TRUE                                                                      \
    }
#define BIN(key, lit)                                                                              \
    {                                                                                              \
        KEY(key), .t = T_BIN, .s = lit, .slen = sizeof(lit) - 1                                    \
    }
#define EXT(key)                                                                                   \
    {                                                                                              \
        KEY(key), .t = T_EXT                                                                       \
    }
#define NESTED(key)                                                                                \
    {                                                                                              \
        KEY(key), .t = T_NESTED                                                                    \
    }
#define EMPTY_MAP(key)                                                                             \
    {                                                                                              \
        KEY(key), .t = T_EMPTY_MAP                                                                 \
    }
#define KEYK(kind, v)                                                                              \
    {                                                                                              \
        .kk = kind, .t = T_INT, .i = v                                                             \
    }

#define BASE_MP   S("customer_id", "c1"), I("ts", 1700000000000), S("event", "ad_click")
#define BASE_JSON "\"customer_id\":\"c1\",\"ts\":1700000000000,\"event\":\"ad_click\""

static void pack_str(msgpack_packer *pk, const char *s, size_t n)
{
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static void pack_value(msgpack_packer *pk, const kv *e)
{
    switch (e->t) {
    case T_STR:
        pack_str(pk, e->s, e->slen);
        break;
    case T_INT:
        msgpack_pack_int64(pk, e->i);
        break;
    case T_UINT:
        msgpack_pack_uint64(pk, e->u);
        break;
    case T_F64:
        msgpack_pack_double(pk, e->d);
        break;
    case T_F32:
        msgpack_pack_float(pk, (float)e->d);
        break;
    case T_NIL:
        msgpack_pack_nil(pk);
        break;
    case T_TRUE:
        msgpack_pack_true(pk);
        break;
    case T_BIN:
        msgpack_pack_bin(pk, e->slen);
        msgpack_pack_bin_body(pk, e->s, e->slen);
        break;
    case T_EXT:
        msgpack_pack_ext(pk, 3, 7);
        msgpack_pack_ext_body(pk, "abc", 3);
        break;
    case T_NESTED:
        msgpack_pack_array(pk, 5);
        msgpack_pack_int64(pk, 1);
        msgpack_pack_array(pk, 2);
        msgpack_pack_int64(pk, 2);
        msgpack_pack_map(pk, 1);
        pack_str(pk, "a", 1);
        msgpack_pack_array(pk, 2);
        pack_str(pk, "b", 1);
        msgpack_pack_nil(pk);
        msgpack_pack_map(pk, 0);
        msgpack_pack_bin(pk, 1);
        msgpack_pack_bin_body(pk, "\xff", 1);
        msgpack_pack_ext(pk, 1, -1);
        msgpack_pack_ext_body(pk, "\x00", 1);
        break;
    case T_EMPTY_MAP:
        msgpack_pack_map(pk, 0);
        break;
    }
}

static fs_reject mp(const kv *entries, size_t n)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, n);
    for (size_t i = 0; i < n; i++) {
        const kv *e = &entries[i];
        switch (e->kk) {
        case K_STR:
            pack_str(&pk, e->k, e->klen);
            break;
        case K_INT:
            msgpack_pack_int64(&pk, 1);
            break;
        case K_BIN:
            msgpack_pack_bin(&pk, 2);
            msgpack_pack_bin_body(&pk, "ts", 2);
            break;
        case K_NIL:
            msgpack_pack_nil(&pk);
            break;
        }
        pack_value(&pk, e);
    }
    fs_reject r = decode_mp_bytes(sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    return r;
}

#define MP(...) mp((const kv[]){__VA_ARGS__}, sizeof((const kv[]){__VA_ARGS__}) / sizeof(kv))

static void assert_slice(fs_slice s, const char *want, size_t want_len)
{
    if (s.len != want_len || memcmp(s.ptr, want, want_len) != 0) {
        print_error("slice \"%.*s\" (%u bytes), want \"%.*s\" (%zu bytes)\n", (int)s.len, s.ptr,
                    s.len, (int)want_len, want, want_len);
        fail();
    }
}

#define assert_str(slice, lit) assert_slice(slice, lit, sizeof(lit) - 1)

static bool within(fs_slice s, const char *base, size_t len)
{
    return s.ptr >= base && s.ptr + s.len <= base + len;
}

static void assert_in_msg(fs_slice s)
{
    assert_true(within(s, msg, msg_len));
}

static void assert_in_scratch(fs_slice s)
{
    assert_true(within(s, scratch, scratch_used));
}

/* The event every BASE_* message decodes to, with the defaults. */
static void assert_base_event(void)
{
    assert_str(ev.customer_id, "c1");
    assert_int_equal(ev.ts, 1700000000000);
    assert_str(ev.event, "ad_click");
    assert_str(ev.channel, "unknown");
    assert_str(ev.campaign, "unknown"); /* SPEC §4: by_campaign "unknown" */
    assert_str(ev.segment, "unknown");
    assert_true(ev.value == 0.0);
    assert_int_equal(ev.customer_hash, fs_hash_customer("c1", 2));
}

/* A string of n copies of c. */
static char *rep(char c, size_t n)
{
    static char buf[4][512];
    static int next;
    char *b = buf[next++ % 4];
    assert_true(n < sizeof buf[0]);
    memset(b, c, n);
    b[n] = '\0';
    return b;
}

/* ---- valid events ---------------------------------------------------------- */

static void test_valid_full_event(void **state)
{
    (void)state;
    assert_reason(MP(S("customer_id", "cust-42"), I("ts", 1732280400123), S("event", "add_to_cart"),
                     S("channel", "search"), S("campaign", "bf24"), S("segment", "b2c"),
                     F("value", 19.99)),
                  FS_OK);
    for (int pass = 0; pass < 2; pass++) {
        assert_str(ev.customer_id, "cust-42");
        assert_int_equal(ev.ts, 1732280400123);
        assert_str(ev.event, "add_to_cart");
        assert_str(ev.channel, "search");
        assert_str(ev.campaign, "bf24");
        assert_str(ev.segment, "b2c");
        assert_true(ev.value == 19.99);
        assert_int_equal(ev.customer_hash, fs_hash_customer("cust-42", 7));
        /* No copies: every string points into the message. */
        assert_in_msg(ev.customer_id);
        assert_in_msg(ev.event);
        assert_in_msg(ev.channel);
        assert_in_msg(ev.campaign);
        assert_in_msg(ev.segment);
        if (pass == 0) { /* same event, as JSON, keys in another order */
            assert_reason(js("{\"value\":19.99,\"segment\":\"b2c\",\"campaign\":\"bf24\","
                             "\"channel\":\"search\",\"event\":\"add_to_cart\","
                             "\"ts\":1732280400123,\"customer_id\":\"cust-42\"}"),
                          FS_OK);
            assert_int_equal(scratch_used, 0);
        }
    }
}

static void test_value_int_and_float(void **state)
{
    (void)state;
    assert_reason(MP(BASE_MP, I("value", 250)), FS_OK);
    assert_true(ev.value == 250.0);
    assert_reason(MP(BASE_MP, I("value", -3)), FS_OK);
    assert_true(ev.value == -3.0);
    assert_reason(MP(BASE_MP, F32("value", 1.5)), FS_OK);
    assert_true(ev.value == 1.5);
    assert_reason(MP(BASE_MP, F("value", -0.25)), FS_OK);
    assert_true(ev.value == -0.25);
    assert_reason(js("{" BASE_JSON ",\"value\":250}"), FS_OK);
    assert_true(ev.value == 250.0);
    assert_reason(js("{" BASE_JSON ",\"value\":-0.25}"), FS_OK);
    assert_true(ev.value == -0.25);
    assert_reason(js("{" BASE_JSON ",\"value\":1.5e2}"), FS_OK);
    assert_true(ev.value == 150.0);
    assert_reason(js("{" BASE_JSON ",\"value\":25E-1}"), FS_OK);
    assert_true(ev.value == 2.5);
}

/* ---- optional keys ------------------------------------------------------------ */

static void test_optional_absent_defaults(void **state)
{
    (void)state;
    assert_reason(MP(BASE_MP), FS_OK);
    assert_base_event();
    assert_reason(js("{" BASE_JSON "}"), FS_OK);
    assert_base_event();
}

static void test_optional_null_is_absent(void **state)
{
    (void)state;
    assert_reason(MP(BASE_MP, NIL("channel"), NIL("campaign"), NIL("segment"), NIL("value")),
                  FS_OK);
    assert_base_event();
    assert_reason(js("{" BASE_JSON ",\"channel\":null,\"campaign\":null,\"segment\":null,"
                     "\"value\":null}"),
                  FS_OK);
    assert_base_event();
}

static void test_empty_labels_are_kept(void **state)
{
    (void)state;
    /* An empty channel is a value, not absence: it does not become "unknown". */
    assert_reason(MP(BASE_MP, S("channel", ""), S("campaign", ""), S("segment", "")), FS_OK);
    assert_str(ev.channel, "");
    assert_str(ev.campaign, "");
    assert_str(ev.segment, "");
    assert_reason(js("{" BASE_JSON ",\"channel\":\"\",\"segment\":\"\"}"), FS_OK);
    assert_str(ev.channel, "");
    assert_str(ev.segment, "");
}

static void test_optional_wrong_type(void **state)
{
    (void)state;
    assert_reason(MP(BASE_MP, I("channel", 1)), FS_REJECT_BAD_CHANNEL);
    assert_reason(MP(BASE_MP, TRUE_("campaign")), FS_REJECT_BAD_CAMPAIGN);
    assert_reason(MP(BASE_MP, EMPTY_MAP("segment")), FS_REJECT_BAD_SEGMENT);
    assert_reason(MP(BASE_MP, BIN("channel", "web")), FS_REJECT_BAD_CHANNEL);
    assert_reason(MP(BASE_MP, S("value", "1")), FS_REJECT_BAD_VALUE);
    assert_reason(MP(BASE_MP, TRUE_("value")), FS_REJECT_BAD_VALUE);
    assert_reason(MP(BASE_MP, NESTED("value")), FS_REJECT_BAD_VALUE);
    assert_reason(js("{" BASE_JSON ",\"channel\":1}"), FS_REJECT_BAD_CHANNEL);
    assert_reason(js("{" BASE_JSON ",\"campaign\":true}"), FS_REJECT_BAD_CAMPAIGN);
    assert_reason(js("{" BASE_JSON ",\"segment\":{}}"), FS_REJECT_BAD_SEGMENT);
    assert_reason(js("{" BASE_JSON ",\"channel\":[\"web\"]}"), FS_REJECT_BAD_CHANNEL);
    assert_reason(js("{" BASE_JSON ",\"value\":\"1\"}"), FS_REJECT_BAD_VALUE);
    assert_reason(js("{" BASE_JSON ",\"value\":false}"), FS_REJECT_BAD_VALUE);
    assert_reason(js("{" BASE_JSON ",\"value\":[1]}"), FS_REJECT_BAD_VALUE);
}

/* ---- required keys ------------------------------------------------------------ */

static void test_required_missing(void **state)
{
    (void)state;
    assert_reason(MP(I("ts", 1), S("event", "e")), FS_REJECT_MISSING_CUSTOMER_ID);
    assert_reason(MP(S("customer_id", "c"), S("event", "e")), FS_REJECT_MISSING_TS);
    assert_reason(MP(S("customer_id", "c"), I("ts", 1)), FS_REJECT_MISSING_EVENT);
    assert_reason(MP(S("other", "x")), FS_REJECT_MISSING_CUSTOMER_ID);
    assert_reason(decode_mp_bytes("\x80", 1), FS_REJECT_MISSING_CUSTOMER_ID);
    assert_reason(js("{\"ts\":1,\"event\":\"e\"}"), FS_REJECT_MISSING_CUSTOMER_ID);
    assert_reason(js("{\"customer_id\":\"c\",\"event\":\"e\"}"), FS_REJECT_MISSING_TS);
    assert_reason(js("{\"customer_id\":\"c\",\"ts\":1}"), FS_REJECT_MISSING_EVENT);
    assert_reason(js("{}"), FS_REJECT_MISSING_CUSTOMER_ID);
    /* Keys are case-sensitive. */
    assert_reason(js("{\"Customer_id\":\"c\",\"ts\":1,\"event\":\"e\"}"),
                  FS_REJECT_MISSING_CUSTOMER_ID);
}

static void test_required_null(void **state)
{
    (void)state;
    assert_reason(MP(NIL("customer_id"), I("ts", 1), S("event", "e")), FS_REJECT_BAD_CUSTOMER_ID);
    assert_reason(MP(S("customer_id", "c"), NIL("ts"), S("event", "e")), FS_REJECT_BAD_TS);
    assert_reason(MP(S("customer_id", "c"), I("ts", 1), NIL("event")), FS_REJECT_BAD_EVENT);
    assert_reason(js("{\"customer_id\":null,\"ts\":1,\"event\":\"e\"}"), FS_REJECT_BAD_CUSTOMER_ID);
    assert_reason(js("{\"customer_id\":\"c\",\"ts\":null,\"event\":\"e\"}"), FS_REJECT_BAD_TS);
    assert_reason(js("{\"customer_id\":\"c\",\"ts\":1,\"event\":null}"), FS_REJECT_BAD_EVENT);
}

static void test_required_wrong_type(void **state)
{
    (void)state;
    assert_reason(MP(I("customer_id", 42), I("ts", 1), S("event", "e")), FS_REJECT_BAD_CUSTOMER_ID);
    assert_reason(MP(EXT("customer_id"), I("ts", 1), S("event", "e")), FS_REJECT_BAD_CUSTOMER_ID);
    assert_reason(MP(S("customer_id", "c"), S("ts", "1"), S("event", "e")), FS_REJECT_BAD_TS);
    assert_reason(MP(S("customer_id", "c"), TRUE_("ts"), S("event", "e")), FS_REJECT_BAD_TS);
    assert_reason(MP(S("customer_id", "c"), I("ts", 1), NESTED("event")), FS_REJECT_BAD_EVENT);
    assert_reason(MP(S("customer_id", "c"), I("ts", 1), I("event", 3)), FS_REJECT_BAD_EVENT);
    assert_reason(js("{\"customer_id\":42,\"ts\":1,\"event\":\"e\"}"), FS_REJECT_BAD_CUSTOMER_ID);
    assert_reason(js("{\"customer_id\":{\"a\":1},\"ts\":1,\"event\":\"e\"}"),
                  FS_REJECT_BAD_CUSTOMER_ID);
    assert_reason(js("{\"customer_id\":\"c\",\"ts\":\"1\",\"event\":\"e\"}"), FS_REJECT_BAD_TS);
    assert_reason(js("{\"customer_id\":\"c\",\"ts\":true,\"event\":\"e\"}"), FS_REJECT_BAD_TS);
    assert_reason(js("{\"customer_id\":\"c\",\"ts\":[1],\"event\":\"e\"}"), FS_REJECT_BAD_TS);
    assert_reason(js("{\"customer_id\":\"c\",\"ts\":1,\"event\":[]}"), FS_REJECT_BAD_EVENT);
}

/* bin is not str, for values and for keys. */
static void test_bin_instead_of_str(void **state)
{
    (void)state;
    assert_reason(MP(BIN("customer_id", "c1"), I("ts", 1), S("event", "e")),
                  FS_REJECT_BAD_CUSTOMER_ID);
    assert_reason(MP(S("customer_id", "c1"), I("ts", 1), BIN("event", "e")), FS_REJECT_BAD_EVENT);
    assert_reason(MP(BASE_MP, BIN("segment", "b2b")), FS_REJECT_BAD_SEGMENT);
    assert_reason(MP(BASE_MP, KEYK(K_BIN, 5)), FS_REJECT_KEY_NOT_STRING);
}

/* When a record has several faults the reason is always the first in the
 * order customer_id, ts, event, channel, campaign, segment, value. */
static void test_reason_order(void **state)
{
    (void)state;
    assert_reason(MP(F("value", NAN), I("channel", 1), S("event", ""), F("ts", 1.0)),
                  FS_REJECT_MISSING_CUSTOMER_ID);
    assert_reason(
        MP(F("value", NAN), I("channel", 1), S("event", ""), F("ts", 1.0), S("customer_id", "c")),
        FS_REJECT_BAD_TS);
    assert_reason(MP(F("value", NAN), I("segment", 1), I("campaign", 1), I("channel", 1), BASE_MP),
                  FS_REJECT_BAD_CHANNEL);
    assert_reason(MP(F("value", NAN), I("segment", 1), I("campaign", 1), BASE_MP),
                  FS_REJECT_BAD_CAMPAIGN);
    assert_reason(js("{\"value\":\"x\",\"segment\":1," BASE_JSON "}"), FS_REJECT_BAD_SEGMENT);
    assert_reason(js("{\"event\":\"\",\"ts\":1.5}"), FS_REJECT_MISSING_CUSTOMER_ID);
}

/* ---- string lengths -------------------------------------------------------------- */

static void test_customer_id_length(void **state)
{
    (void)state;
    char buf[1024]; /* room for 65 six-byte escapes */
    assert_reason(MP(SN("customer_id", rep('c', 128), 128), I("ts", 1), S("event", "e")), FS_OK);
    assert_slice(ev.customer_id, rep('c', 128), 128);
    assert_int_equal(ev.customer_hash, fs_hash_customer(rep('c', 128), 128));
    assert_reason(MP(SN("customer_id", rep('c', 129), 129), I("ts", 1), S("event", "e")),
                  FS_REJECT_BAD_CUSTOMER_ID);
    assert_reason(MP(S("customer_id", ""), I("ts", 1), S("event", "e")), FS_REJECT_BAD_CUSTOMER_ID);

    snprintf(buf, sizeof buf, "{\"customer_id\":\"%s\",\"ts\":1,\"event\":\"e\"}", rep('c', 128));
    assert_reason(js(buf), FS_OK);
    assert_slice(ev.customer_id, rep('c', 128), 128);
    snprintf(buf, sizeof buf, "{\"customer_id\":\"%s\",\"ts\":1,\"event\":\"e\"}", rep('c', 129));
    assert_reason(js(buf), FS_REJECT_BAD_CUSTOMER_ID);
    assert_reason(js("{\"customer_id\":\"\",\"ts\":1,\"event\":\"e\"}"), FS_REJECT_BAD_CUSTOMER_ID);

    /* Lengths are UTF-8 bytes: 64 x 'é' is 128 bytes, 65 x is 130. */
    char e[300];
    for (int i = 0; i < 65; i++)
        memcpy(e + 2 * i, "\xc3\xa9", 2);
    assert_reason(MP(SN("customer_id", e, 128), I("ts", 1), S("event", "e")), FS_OK);
    assert_reason(MP(SN("customer_id", e, 130), I("ts", 1), S("event", "e")),
                  FS_REJECT_BAD_CUSTOMER_ID);
    /* ...also when the JSON spells them as escapes (6 bytes of text each). */
    char esc[400] = ""; /* 65 escapes of 6 bytes */
    for (int i = 0; i < 64; i++)
        strcat(esc, "\\u00e9");
    snprintf(buf, sizeof buf, "{\"customer_id\":\"%s\",\"ts\":1,\"event\":\"e\"}", esc);
    assert_reason(js(buf), FS_OK);
    assert_slice(ev.customer_id, e, 128);
    assert_in_scratch(ev.customer_id);
    strcat(esc, "\\u00e9");
    snprintf(buf, sizeof buf, "{\"customer_id\":\"%s\",\"ts\":1,\"event\":\"e\"}", esc);
    assert_reason(js(buf), FS_REJECT_BAD_CUSTOMER_ID);
}

static void test_event_length(void **state)
{
    (void)state;
    char buf[512];
    assert_reason(MP(S("customer_id", "c"), I("ts", 1), SN("event", rep('e', 64), 64)), FS_OK);
    assert_slice(ev.event, rep('e', 64), 64);
    assert_reason(MP(S("customer_id", "c"), I("ts", 1), SN("event", rep('e', 65), 65)),
                  FS_REJECT_BAD_EVENT);
    assert_reason(MP(S("customer_id", "c"), I("ts", 1), S("event", "")), FS_REJECT_BAD_EVENT);
    snprintf(buf, sizeof buf, "{\"customer_id\":\"c\",\"ts\":1,\"event\":\"%s\"}", rep('e', 64));
    assert_reason(js(buf), FS_OK);
    assert_slice(ev.event, rep('e', 64), 64);
    snprintf(buf, sizeof buf, "{\"customer_id\":\"c\",\"ts\":1,\"event\":\"%s\"}", rep('e', 65));
    assert_reason(js(buf), FS_REJECT_BAD_EVENT);
    assert_reason(js("{\"customer_id\":\"c\",\"ts\":1,\"event\":\"\"}"), FS_REJECT_BAD_EVENT);
}

static void test_label_lengths(void **state)
{
    (void)state;
    static const char *const keys[] = {"channel", "campaign", "segment"};
    static const fs_reject bad[] = {FS_REJECT_BAD_CHANNEL, FS_REJECT_BAD_CAMPAIGN,
                                    FS_REJECT_BAD_SEGMENT};
    char buf[512];
    for (int k = 0; k < 3; k++) {
        for (size_t n = 63; n <= 65; n++) {
            fs_reject want = n <= 64 ? FS_OK : bad[k];
            kv e[4] = {BASE_MP, SN("", rep('l', n), n)};
            e[3].k = keys[k];
            e[3].klen = strlen(keys[k]);
            assert_reason(mp(e, 4), want);
            if (want == FS_OK) {
                fs_slice got = k == 0 ? ev.channel : k == 1 ? ev.campaign : ev.segment;
                assert_slice(got, rep('l', n), n);
            }
            snprintf(buf, sizeof buf, "{" BASE_JSON ",\"%s\":\"%s\"}", keys[k], rep('l', n));
            assert_reason(js(buf), want);
        }
    }
}

/* ---- ts -------------------------------------------------------------------------- */

static void test_ts_integers(void **state)
{
    (void)state;
    const int64_t ok[] = {0, 1, -1, -1700000000000, 1700000000000, FS_TS_MAX, FS_TS_MIN, 127, -32};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        assert_reason(MP(S("customer_id", "c"), I("ts", ok[i]), S("event", "e")), FS_OK);
        assert_int_equal(ev.ts, ok[i]);
    }
    assert_reason(MP(S("customer_id", "c"), U("ts", (uint64_t)FS_TS_MAX), S("event", "e")), FS_OK);
    assert_int_equal(ev.ts, FS_TS_MAX);
    assert_reason(MP(S("customer_id", "c"), U("ts", (uint64_t)INT64_MAX), S("event", "e")),
                  FS_REJECT_BAD_TS);
    assert_reason(MP(S("customer_id", "c"), U("ts", (uint64_t)INT64_MAX + 1), S("event", "e")),
                  FS_REJECT_BAD_TS);
    assert_reason(MP(S("customer_id", "c"), U("ts", UINT64_MAX), S("event", "e")),
                  FS_REJECT_BAD_TS);

    /* Every integer encoding, including signed ones holding positive values. */
    static const struct {
        const char *bytes;
        size_t len;
        int64_t want;
    } enc[] = {
        {"\x05", 1, 5},
        {"\xff", 1, -1},
        {"\xcc\xff", 2, 255},
        {"\xcd\x01\x00", 3, 256},
        {"\xce\x00\x01\x00\x00", 5, 65536},
        {"\xcf\x00\x00\x00\x01\x00\x00\x00\x00", 9, 4294967296},
        {"\xd0\x80", 2, -128},
        {"\xd1\x80\x00", 3, -32768},
        {"\xd2\x80\x00\x00\x00", 5, INT32_MIN},
        {"\xd3\xff\xe0\x00\x00\x00\x00\x00\x01", 9, FS_TS_MIN},
        {"\xcf\x00\x1f\xff\xff\xff\xff\xff\xff", 9, FS_TS_MAX},
        {"\xd3\x00\x00\x00\x00\x00\x00\x00\x05", 9, 5},
        {"\xd0\x05", 2, 5},
    };
    for (size_t i = 0; i < sizeof enc / sizeof enc[0]; i++) {
        char b[64] = "\x83\xab"
                     "customer_id\xa1"
                     "c\xa5"
                     "event\xa1"
                     "e\xa2"
                     "ts";
        size_t n = 1 + 12 + 2 + 6 + 2 + 3;
        memcpy(b + n, enc[i].bytes, enc[i].len);
        assert_reason(decode_mp_bytes(b, n + enc[i].len), FS_OK);
        assert_int_equal(ev.ts, enc[i].want);
    }

    assert_reason(js("{\"customer_id\":\"c\",\"ts\":-1700000000000,\"event\":\"e\"}"), FS_OK);
    assert_int_equal(ev.ts, -1700000000000);
    assert_reason(js("{\"customer_id\":\"c\",\"ts\":-0,\"event\":\"e\"}"), FS_OK);
    assert_int_equal(ev.ts, 0);
    assert_reason(js("{\"customer_id\":\"c\",\"ts\":9223372036854775807,\"event\":\"e\"}"),
                  FS_REJECT_BAD_TS);
    assert_reason(js("{\"customer_id\":\"c\",\"ts\":-9223372036854775808,\"event\":\"e\"}"),
                  FS_REJECT_BAD_TS);
    assert_reason(js("{\"customer_id\":\"c\",\"ts\":9223372036854775808,\"event\":\"e\"}"),
                  FS_REJECT_BAD_TS);
    assert_reason(js("{\"customer_id\":\"c\",\"ts\":-9223372036854775809,\"event\":\"e\"}"),
                  FS_REJECT_BAD_TS);
    assert_reason(js("{\"customer_id\":\"c\",\"ts\":18446744073709551616,\"event\":\"e\"}"),
                  FS_REJECT_BAD_TS);
    assert_reason(
        js("{\"customer_id\":\"c\",\"ts\":123456789012345678901234567890,\"event\":\"e\"}"),
        FS_REJECT_BAD_TS);
}

/* The valid range is |ts| <= 2^53 - 1 (event.h): both ends are events, one
 * step beyond either is bad_ts, in every encoding that can hold it. */
static void test_ts_range_boundaries(void **state)
{
    (void)state;
    static const struct {
        int64_t ts;
        fs_reject want;
    } c[] = {
        {FS_TS_MAX, FS_OK},
        {FS_TS_MAX + 1, FS_REJECT_BAD_TS},
        {FS_TS_MIN, FS_OK},
        {FS_TS_MIN - 1, FS_REJECT_BAD_TS},
        {FS_TS_MIN + 5, FS_OK},
        {INT64_MIN + 5, FS_REJECT_BAD_TS},
        {INT64_MAX, FS_REJECT_BAD_TS},
        {INT64_MIN, FS_REJECT_BAD_TS},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        assert_reason(MP(S("customer_id", "c"), I("ts", c[i].ts), S("event", "e")), c[i].want);
        if (c[i].want == FS_OK)
            assert_int_equal(ev.ts, c[i].ts);
        if (c[i].ts >= 0) { /* as an unsigned encoding too */
            assert_reason(MP(S("customer_id", "c"), U("ts", (uint64_t)c[i].ts), S("event", "e")),
                          c[i].want);
        }
        char line[128];
        snprintf(line, sizeof line, "{\"customer_id\":\"c\",\"ts\":%" PRId64 ",\"event\":\"e\"}",
                 c[i].ts);
        assert_reason(js(line), c[i].want);
        if (c[i].want == FS_OK)
            assert_int_equal(ev.ts, c[i].ts);
    }
    /* The literal boundaries as a JSON writer prints them. */
    assert_reason(js("{\"customer_id\":\"c\",\"ts\":9007199254740991,\"event\":\"e\"}"), FS_OK);
    assert_reason(js("{\"customer_id\":\"c\",\"ts\":-9007199254740991,\"event\":\"e\"}"), FS_OK);
    assert_reason(js("{\"customer_id\":\"c\",\"ts\":9007199254740992,\"event\":\"e\"}"),
                  FS_REJECT_BAD_TS);
    assert_reason(js("{\"customer_id\":\"c\",\"ts\":-9007199254740992,\"event\":\"e\"}"),
                  FS_REJECT_BAD_TS);
    /* bad_ts keeps its rank: after customer_id, before event. */
    assert_reason(MP(I("ts", FS_TS_MAX + 1)), FS_REJECT_MISSING_CUSTOMER_ID);
    assert_reason(MP(S("customer_id", "c"), I("ts", FS_TS_MAX + 1)), FS_REJECT_BAD_TS);
}

static void test_ts_float_rejected(void **state)
{
    (void)state;
    assert_reason(MP(S("customer_id", "c"), F("ts", 1.0), S("event", "e")), FS_REJECT_BAD_TS);
    assert_reason(MP(S("customer_id", "c"), F32("ts", 1.0), S("event", "e")), FS_REJECT_BAD_TS);
    assert_reason(MP(S("customer_id", "c"), F("ts", 1700000000000.0), S("event", "e")),
                  FS_REJECT_BAD_TS);
    assert_reason(js("{\"customer_id\":\"c\",\"ts\":1.0,\"event\":\"e\"}"), FS_REJECT_BAD_TS);
    assert_reason(js("{\"customer_id\":\"c\",\"ts\":1e3,\"event\":\"e\"}"), FS_REJECT_BAD_TS);
    assert_reason(js("{\"customer_id\":\"c\",\"ts\":1E3,\"event\":\"e\"}"), FS_REJECT_BAD_TS);
    assert_reason(js("{\"customer_id\":\"c\",\"ts\":1e+0,\"event\":\"e\"}"), FS_REJECT_BAD_TS);
    assert_reason(js("{\"customer_id\":\"c\",\"ts\":-2.5,\"event\":\"e\"}"), FS_REJECT_BAD_TS);
}

/* ---- value ----------------------------------------------------------------------- */

static void test_value_must_be_finite_and_bounded(void **state)
{
    (void)state;
    assert_reason(MP(BASE_MP, F("value", NAN)), FS_REJECT_BAD_VALUE);
    assert_reason(MP(BASE_MP, F("value", INFINITY)), FS_REJECT_BAD_VALUE);
    assert_reason(MP(BASE_MP, F("value", -INFINITY)), FS_REJECT_BAD_VALUE);
    assert_reason(MP(BASE_MP, F32("value", NAN)), FS_REJECT_BAD_VALUE);
    assert_reason(MP(BASE_MP, F32("value", INFINITY)), FS_REJECT_BAD_VALUE);
    assert_reason(MP(BASE_MP, F("value", 1e18)), FS_REJECT_BAD_VALUE);
    assert_reason(MP(BASE_MP, F("value", -1e18)), FS_REJECT_BAD_VALUE);
    assert_reason(MP(BASE_MP, I("value", 1000000000000000000)), FS_REJECT_BAD_VALUE);
    assert_reason(MP(BASE_MP, I("value", INT64_MIN)), FS_REJECT_BAD_VALUE);
    assert_reason(MP(BASE_MP, U("value", UINT64_MAX)), FS_REJECT_BAD_VALUE);
    /* The largest double below 1e18 is fine. */
    assert_reason(MP(BASE_MP, F("value", 999999999999999872.0)), FS_OK);
    assert_true(ev.value == 999999999999999872.0);
    assert_reason(MP(BASE_MP, I("value", -999999999999999872)), FS_OK);
    assert_true(ev.value == -999999999999999872.0);

    assert_reason(js("{" BASE_JSON ",\"value\":1e18}"), FS_REJECT_BAD_VALUE);
    assert_reason(js("{" BASE_JSON ",\"value\":-1000000000000000000}"), FS_REJECT_BAD_VALUE);
    assert_reason(js("{" BASE_JSON ",\"value\":1e400}"), FS_REJECT_BAD_VALUE); /* inf */
    assert_reason(js("{" BASE_JSON ",\"value\":-1e400}"), FS_REJECT_BAD_VALUE);
    assert_reason(js("{" BASE_JSON ",\"value\":99999999999999999999999}"), FS_REJECT_BAD_VALUE);
    assert_reason(js("{" BASE_JSON ",\"value\":999999999999999872}"), FS_OK);
    assert_reason(js("{" BASE_JSON ",\"value\":1e-400}"), FS_OK); /* underflows to 0 */
    assert_true(ev.value == 0.0);
}

/* ---- keys -------------------------------------------------------------------------- */

static void test_last_duplicate_wins(void **state)
{
    (void)state;
    assert_reason(MP(BASE_MP, S("customer_id", "c2"), S("channel", "a"), S("channel", "b")), FS_OK);
    assert_str(ev.customer_id, "c2");
    assert_str(ev.channel, "b");
    assert_int_equal(ev.customer_hash, fs_hash_customer("c2", 2));
    /* An invalid earlier value does not matter once a valid one follows... */
    assert_reason(MP(I("customer_id", 7), S("customer_id", "\xff"), F("ts", 1.5), BASE_MP,
                     F("value", NAN), I("value", 3)),
                  FS_OK);
    assert_str(ev.customer_id, "c1");
    assert_true(ev.value == 3.0);
    /* ...and a valid earlier value does not save an invalid later one. */
    assert_reason(MP(BASE_MP, S("event", "")), FS_REJECT_BAD_EVENT);
    assert_reason(MP(BASE_MP, NIL("ts")), FS_REJECT_BAD_TS);
    /* null as the last duplicate of an optional key means absent. */
    assert_reason(MP(BASE_MP, S("channel", "x"), NIL("channel")), FS_OK);
    assert_str(ev.channel, "unknown");

    assert_reason(js("{" BASE_JSON ",\"customer_id\":\"c2\",\"channel\":\"a\",\"channel\":\"b\"}"),
                  FS_OK);
    assert_str(ev.customer_id, "c2");
    assert_str(ev.channel, "b");
    assert_reason(js("{\"customer_id\":7,\"customer_id\":\"\\ud800\",\"ts\":1.5,\"value\":\"x\","
                     "\"value\":3," BASE_JSON "}"),
                  FS_OK);
    assert_str(ev.customer_id, "c1");
    assert_true(ev.value == 3.0);
    assert_int_equal(scratch_used, 0);
    assert_reason(js("{" BASE_JSON ",\"event\":\"\"}"), FS_REJECT_BAD_EVENT);
    assert_reason(js("{" BASE_JSON ",\"channel\":\"x\",\"channel\":null}"), FS_OK);
    assert_str(ev.channel, "unknown");
}

static void test_unknown_keys_ignored(void **state)
{
    (void)state;
    assert_reason(MP(NESTED("props"), BASE_MP, S("extra", "\xff"), EXT("x"),
                     BIN("blob", "\x00\xc1"), F("nan", NAN), EMPTY_MAP(""), U("big", UINT64_MAX),
                     NIL("n"), S("customer_ids", "z"), S("Event", "z")),
                  FS_OK);
    assert_base_event();
    assert_reason(js("{\"props\":[1,[2,{\"a\":[\"b\",null]}],{},true,-1.5e3],"
                     "\"o\":{\"k\":{\"k\":[]}}," BASE_JSON
                     ",\"n\":null,\"big\":123456789012345678901234567890,\"s\":\"\\u00e9\","
                     "\"customer_ids\":\"z\",\"\":\"\"}"),
                  FS_OK);
    assert_base_event();
    assert_int_equal(scratch_used, 0); /* unknown strings are not unescaped */
}

static void test_key_not_string(void **state)
{
    (void)state;
    assert_reason(MP(BASE_MP, KEYK(K_INT, 1)), FS_REJECT_KEY_NOT_STRING);
    assert_reason(MP(KEYK(K_NIL, 1), BASE_MP), FS_REJECT_KEY_NOT_STRING);
    assert_reason(MP(KEYK(K_BIN, 1), BASE_MP), FS_REJECT_KEY_NOT_STRING);
    /* A map as a key, written raw: {{}: 1} */
    assert_reason(decode_mp_bytes("\x81\x80\x01", 3), FS_REJECT_KEY_NOT_STRING);
    /* JSON keys cannot be anything but strings syntactically. */
    assert_reason(js("{1:2}"), FS_REJECT_MALFORMED);
    assert_reason(js("{null:2}"), FS_REJECT_MALFORMED);
}

/* ---- UTF-8 ---------------------------------------------------------------------------- */

static void test_invalid_utf8_in_field(void **state)
{
    (void)state;
    assert_reason(MP(S("customer_id", "c\xff"), I("ts", 1), S("event", "e")),
                  FS_REJECT_INVALID_UTF8);
    assert_reason(MP(S("customer_id", "c"), I("ts", 1), S("event", "\xc0\x80")),
                  FS_REJECT_INVALID_UTF8);
    assert_reason(MP(BASE_MP, S("channel", "\xed\xa0\x80")), FS_REJECT_INVALID_UTF8);
    assert_reason(MP(BASE_MP, S("segment", "ok\xe2\x82")), FS_REJECT_INVALID_UTF8);
    assert_reason(MP(BASE_MP, S("campaign", "\xf4\x90\x80\x80")), FS_REJECT_INVALID_UTF8);
    /* Valid multi-byte UTF-8 is fine and kept as is. */
    assert_reason(MP(S("customer_id", "j\xc3\xbcrgen"), I("ts", 1), S("event", "\xf0\x9f\x98\x80")),
                  FS_OK);
    assert_str(ev.customer_id, "j\xc3\xbcrgen");
    assert_str(ev.event, "\xf0\x9f\x98\x80");

    assert_reason(js("{\"customer_id\":\"c\xff\",\"ts\":1,\"event\":\"e\"}"),
                  FS_REJECT_INVALID_UTF8);
    assert_reason(js("{" BASE_JSON ",\"channel\":\"\xed\xa0\x80\"}"), FS_REJECT_INVALID_UTF8);
    /* Invalid bytes next to an escape: validated before unescaping. */
    assert_reason(js("{" BASE_JSON ",\"segment\":\"\\n\xc3\"}"), FS_REJECT_INVALID_UTF8);
    assert_reason(js("{\"customer_id\":\"j\xc3\xbcrgen\",\"ts\":1,\"event\":\"e\"}"), FS_OK);
    assert_str(ev.customer_id, "j\xc3\xbcrgen");
    assert_in_msg(ev.customer_id);
}

static void test_invalid_utf8_in_key(void **state)
{
    (void)state;
    assert_reason(MP(BASE_MP, S("k\xff", "v")), FS_REJECT_INVALID_UTF8);
    assert_reason(MP(S("\xc0\xae", "v"), BASE_MP), FS_REJECT_INVALID_UTF8);
    assert_reason(js("{" BASE_JSON ",\"k\xff\":1}"), FS_REJECT_INVALID_UTF8);
    assert_reason(js("{\"\xc0\xae\":1," BASE_JSON "}"), FS_REJECT_INVALID_UTF8);
    /* Long keys (longer than any known key) take another path: same result. */
    char buf[512];
    snprintf(buf, sizeof buf, "{" BASE_JSON ",\"%s\xff\":1}", rep('k', 200));
    assert_reason(js(buf), FS_REJECT_INVALID_UTF8);
    snprintf(buf, sizeof buf, "{" BASE_JSON ",\"%s\":1}", rep('k', 200));
    assert_reason(js(buf), FS_OK);
    snprintf(buf, sizeof buf, "{" BASE_JSON ",\"%s\\u00e9\":1}", rep('k', 200));
    assert_reason(js(buf), FS_OK);
}

/* ---- structure -------------------------------------------------------------------------- */

static void test_not_a_map(void **state)
{
    (void)state;
    static const struct {
        const char *b;
        size_t n;
    } mps[] = {
        {"\x90", 1},
        {"\x91\x80", 2},
        {"\x01", 1},
        {"\xc0", 1},
        {"\xa2"
         "ab",
         3},
        {"\xc4\x01\x80", 3},
        {"\xc3", 1},
        {"\xd4\x00\x00", 3},
        {"\xcb\x00\x00\x00\x00\x00\x00\x00\x00", 9},
    };
    for (size_t i = 0; i < sizeof mps / sizeof mps[0]; i++)
        assert_reason(decode_mp_bytes(mps[i].b, mps[i].n), FS_REJECT_NOT_A_MAP);
    static const char *const jsons[] = {
        "[]",   "[{\"customer_id\":\"c\"}]", "\"s\"", "1", "-1", "0.5", "true", "false", "null",
        " [1] "};
    for (size_t i = 0; i < sizeof jsons / sizeof jsons[0]; i++)
        assert_reason(js(jsons[i]), FS_REJECT_NOT_A_MAP);
}

static void test_trailing_data(void **state)
{
    (void)state;
    static const char event[] = "\x83\xab"
                                "customer_id\xa1"
                                "c\xa2"
                                "ts\x01\xa5"
                                "event\xa1"
                                "e";
    size_t n = sizeof event - 1;
    char buf[64];
    assert_reason(decode_mp_bytes(event, n), FS_OK);
    static const char *const tails[] = {"\xc0", "\x80", "\xc1", "\x00", "\xdf"};
    for (size_t i = 0; i < 5; i++) {
        memcpy(buf, event, n);
        buf[n] = tails[i][0];
        assert_reason(decode_mp_bytes(buf, n + 1), FS_REJECT_TRAILING_DATA);
    }
    memcpy(buf, event, n);
    memcpy(buf + n, event, n); /* two events in one message */
    assert_reason(decode_mp_bytes(buf, 2 * n), FS_REJECT_TRAILING_DATA);

    assert_reason(js("{" BASE_JSON "}x"), FS_REJECT_TRAILING_DATA);
    assert_reason(js("{" BASE_JSON "} {}"), FS_REJECT_TRAILING_DATA);
    assert_reason(js("{" BASE_JSON "}}"), FS_REJECT_TRAILING_DATA);
    assert_reason(js("{" BASE_JSON "}]"), FS_REJECT_TRAILING_DATA);
    assert_reason(js("{" BASE_JSON "} 1"), FS_REJECT_TRAILING_DATA);
    assert_reason(js("{" BASE_JSON "},"), FS_REJECT_TRAILING_DATA);
    assert_reason(js("{" BASE_JSON "}\"x\""), FS_REJECT_TRAILING_DATA);
    assert_reason(decode_json_bytes("{" BASE_JSON "}\0", sizeof("{" BASE_JSON "}")),
                  FS_REJECT_TRAILING_DATA);
}

static void test_leading_trailing_whitespace(void **state)
{
    (void)state;
    assert_reason(js(" \t\r\n{" BASE_JSON "}\r\n \t"), FS_OK);
    assert_base_event();
    assert_reason(
        js("{ \"customer_id\" : \"c1\" ,\n\t\"ts\"\r:\n1700000000000 , \"event\":\"ad_click\" }"),
        FS_OK);
    assert_base_event();
    assert_reason(js(""), FS_REJECT_TRUNCATED);
    assert_reason(js(" \n"), FS_REJECT_TRUNCATED);
    assert_reason(decode_mp_bytes("", 0), FS_REJECT_TRUNCATED);
}

/* Every proper prefix of a valid event is truncated, in both formats. */
static void test_truncated(void **state)
{
    (void)state;
    assert_reason(MP(BASE_MP, S("channel", "search"), F("value", 2.5), NESTED("x")), FS_OK);
    size_t full = msg_len;
    char *whole = malloc(full);
    assert_non_null(whole);
    memcpy(whole, msg, full);
    for (size_t cut = 0; cut < full; cut++) {
        fs_reject r = decode_mp_bytes(whole, cut);
        if (r != FS_REJECT_TRUNCATED) {
            print_error("msgpack cut at %zu of %zu: %s\n", cut, full, fs_reject_name(r));
            fail();
        }
    }
    free(whole);

    const char *text = "{" BASE_JSON ",\"channel\":\"se\\u00e9\",\"value\":-2.5e1,"
                       "\"x\":[1,{\"a\":null},true]}";
    assert_reason(js(text), FS_OK);
    for (size_t cut = 0; cut < strlen(text); cut++) {
        fs_reject r = decode_json_bytes(text, cut);
        if (r != FS_REJECT_TRUNCATED) {
            print_error("json cut at %zu: \"%.*s\": %s\n", cut, (int)cut, text, fs_reject_name(r));
            fail();
        }
    }
}

static void test_msgpack_bad_bytes(void **state)
{
    (void)state;
    assert_reason(decode_mp_bytes("\xc1", 1), FS_REJECT_BAD_START_BYTE);
    assert_reason(decode_mp_bytes("\xc1\x80", 2), FS_REJECT_BAD_START_BYTE);
    /* 0xc1 inside the map, as a value and as a key. */
    assert_reason(decode_mp_bytes("\x81\xa1"
                                  "a\xc1",
                                  4),
                  FS_REJECT_MALFORMED);
    assert_reason(decode_mp_bytes("\x81\xc1\x01", 3), FS_REJECT_MALFORMED);
    assert_reason(decode_mp_bytes("\x82\xa1"
                                  "a\x91\xc1\xa1"
                                  "b\x01",
                                  8),
                  FS_REJECT_MALFORMED);
}

/* Non-fix encodings of keys and strings and maps are all fine. */
static void test_msgpack_wide_encodings(void **state)
{
    (void)state;
    static const char m[] = "\xde\x00\x03" /* map16 */
                            "\xd9\x0b"
                            "customer_id\xda\x00\x02"
                            "c1" /* str8 key, str16 */
                            "\xda\x00\x02"
                            "ts\xd3\x00\x00\x01\x8b\xcf\xe5\x68\x00" /* int64 */
                            "\xdb\x00\x00\x00\x05"
                            "event\xdb\x00\x00\x00\x08"
                            "ad_click";
    assert_reason(decode_mp_bytes(m, sizeof m - 1), FS_OK);
    assert_str(ev.customer_id, "c1");
    assert_int_equal(ev.ts, 0x18bcfe56800);
    assert_str(ev.event, "ad_click");
    assert_in_msg(ev.customer_id);
    assert_in_msg(ev.event);
    static const char m32[] = "\xdf\x00\x00\x00\x03\xab"
                              "customer_id\xa1"
                              "c\xa2"
                              "ts\x01\xa5"
                              "event\xa1"
                              "e";
    assert_reason(decode_mp_bytes(m32, sizeof m32 - 1), FS_OK);
}

/* ---- JSON strings ----------------------------------------------------------------------- */

static void test_json_escapes(void **state)
{
    (void)state;
    assert_reason(js("{" BASE_JSON ",\"channel\":\"a\\\"b\\\\c\\nd\\u00e9\","
                     "\"campaign\":\"\\ud83d\\ude00\\/\\b\\f\\r\\t\","
                     "\"segment\":\"\\u0000\\u20AC\"}"),
                  FS_OK);
    assert_str(ev.channel, "a\"b\\c\nd\xc3\xa9");
    assert_str(ev.campaign, "\xf0\x9f\x98\x80/\b\f\r\t");
    assert_slice(ev.segment, "\0\xe2\x82\xac", 4);
    /* Escaped strings live in scratch, unescaped ones in the message. */
    assert_in_scratch(ev.channel);
    assert_in_scratch(ev.campaign);
    assert_in_scratch(ev.segment);
    assert_in_msg(ev.customer_id);
    assert_in_msg(ev.event);
    assert_int_equal(scratch_used, ev.channel.len + ev.campaign.len + ev.segment.len);
    assert_true(fs_utf8_valid(ev.campaign.ptr, ev.campaign.len));
}

static void test_json_lone_surrogate(void **state)
{
    (void)state;
    assert_reason(js("{" BASE_JSON ",\"channel\":\"\\ud83d\"}"), FS_REJECT_INVALID_UTF8);
    assert_reason(js("{" BASE_JSON ",\"channel\":\"\\ude00\"}"), FS_REJECT_INVALID_UTF8);
    assert_reason(js("{" BASE_JSON ",\"channel\":\"\\ud83dx\"}"), FS_REJECT_INVALID_UTF8);
    assert_reason(js("{" BASE_JSON ",\"channel\":\"\\ud83d\\u0041\"}"), FS_REJECT_INVALID_UTF8);
    assert_reason(js("{" BASE_JSON ",\"channel\":\"\\ud83d\\ud83d\"}"), FS_REJECT_INVALID_UTF8);
    assert_reason(js("{" BASE_JSON ",\"channel\":\"\\ude00\\ud83d\"}"), FS_REJECT_INVALID_UTF8);
    assert_reason(js("{" BASE_JSON ",\"channel\":\"\\ud83d\\n\"}"), FS_REJECT_INVALID_UTF8);
    assert_reason(js("{\"\\udfff\":1," BASE_JSON "}"), FS_REJECT_INVALID_UTF8); /* in a key */
    /* The largest pair, U+10FFFF. */
    assert_reason(js("{" BASE_JSON ",\"channel\":\"\\udbff\\udfff\"}"), FS_OK);
    assert_str(ev.channel, "\xf4\x8f\xbf\xbf");
}

static void test_json_raw_control_char(void **state)
{
    (void)state;
    assert_reason(js("{" BASE_JSON ",\"channel\":\"a\tb\"}"), FS_REJECT_MALFORMED);
    assert_reason(js("{" BASE_JSON ",\"channel\":\"a\nb\"}"), FS_REJECT_MALFORMED);
    assert_reason(js("{" BASE_JSON ",\"campaign\":\"\x1f\"}"), FS_REJECT_MALFORMED);
    assert_reason(js("{\"customer_id\":\"c\x01\",\"ts\":1,\"event\":\"e\"}"), FS_REJECT_MALFORMED);
    assert_reason(js("{" BASE_JSON ",\"k\x7f\":1,\"k\x01\":1}"), FS_REJECT_MALFORMED); /* key */
    char buf[512];
    snprintf(buf, sizeof buf, "{" BASE_JSON ",\"%s\x02\":1}", rep('k', 200));
    assert_reason(js(buf), FS_REJECT_MALFORMED);
    /* A raw NUL is a control character too, not a truncation. */
    static const char nul[] = "{\"customer_id\":\"c\0\",\"ts\":1,\"event\":\"e\"}";
    assert_reason(decode_json_bytes(nul, sizeof nul - 1), FS_REJECT_MALFORMED);
    static const char nul2[] = "{\"customer_id\":\"c\",\0\"ts\":1,\"event\":\"e\"}";
    assert_reason(decode_json_bytes(nul2, sizeof nul2 - 1), FS_REJECT_MALFORMED);
    /* DEL (0x7f) is not a control character in JSON. */
    assert_reason(js("{" BASE_JSON ",\"channel\":\"\x7f\"}"), FS_OK);
}

static void test_json_escaped_key(void **state)
{
    (void)state;
    assert_reason(js("{\"customer\\u005fid\":\"c1\",\"\\u0074s\":1700000000000,"
                     "\"\\u0065\\u0076\\u0065\\u006e\\u0074\":\"ad_click\"}"),
                  FS_OK);
    assert_base_event();
    assert_int_equal(scratch_used, 0);                            /* keys are unescaped elsewhere */
    assert_reason(js("{" BASE_JSON ",\"chan\\nnel\":5}"), FS_OK); /* not "channel" */
    assert_reason(js("{" BASE_JSON ",\"chan\\u006eel\":5}"), FS_REJECT_BAD_CHANNEL);
}

/* ---- JSON syntax --------------------------------------------------------------------------- */

static void test_json_structure_errors(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "{\"a\":1,}",
        "{\"a\" 1}",
        "{\"a\":1 \"b\":2}",
        "{\"a\":tru}",
        "{\"a\":truee}",
        "{\"a\":nul}",
        "{\"a\":01}",
        "{\"a\":-01}",
        "{\"a\":1.}",
        "{\"a\":.5}",
        "{\"a\":-}",
        "{\"a\":+1}",
        "{\"a\":1e}",
        "{\"a\":1e+}",
        "{\"a\":0x10}",
        "{\"a\":1.5.5}",
        "{\"a\":--1}",
        "{,\"a\":1}",
        "{\"a\"::1}",
        "{\"a\":1,,\"b\":2}",
        "{\"a\"}",
        "{\"a\":}",
        "{:1}",
        "{\"a\":1:2}",
        "{\"a\":\"\\x\"}",
        "{\"a\":\"\\u12g4\"}",
        "{\"a\":'b'}",
        "{\"a\":[1,2}",
        "{\"a\":1]",
        "{\"a\":{\"b\":1]}",
        "x",
        "]",
        "}",
        "{\"a\":x}",
        "{\"a\":1}garbage{",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fs_reject r = js(bad[i]);
        /* The last one is complete before the garbage. */
        fs_reject want =
            i + 1 == sizeof bad / sizeof bad[0] ? FS_REJECT_TRAILING_DATA : FS_REJECT_MALFORMED;
        if (r != want) {
            print_error("%s: %s\n", bad[i], fs_reject_name(r));
            fail();
        }
    }
    /* The same number errors in ts itself. */
    assert_reason(js("{\"customer_id\":\"c\",\"ts\":01,\"event\":\"e\"}"), FS_REJECT_MALFORMED);
    assert_reason(js("{\"customer_id\":\"c\",\"ts\":1.,\"event\":\"e\"}"), FS_REJECT_MALFORMED);
}

/* A message is an event only if all of it is valid JSON: values of unknown
 * keys, values nested in them, and duplicates a later key replaces are
 * checked too (as a JSON parser would; tests/reference does the same). */
static void test_json_syntax_everywhere(void **state)
{
    (void)state;
    static const char *const malformed[] = {
        "{\"x\":[1 2]," BASE_JSON "}",
        "{\"x\":[1,,2]," BASE_JSON "}",
        "{\"x\":[1,]," BASE_JSON "}",
        "{\"x\":[,1]," BASE_JSON "}",
        "{\"x\":{\"a\":1,}," BASE_JSON "}",
        "{\"x\":{\"a\" 1}," BASE_JSON "}",
        "{\"x\":{\"a\":1 \"b\":2}," BASE_JSON "}",
        "{\"x\":{\"a\"}," BASE_JSON "}",
        "{\"x\":[\"a\":1]," BASE_JSON "}",
        "{\"x\":[tru]," BASE_JSON "}",
        "{\"x\":[01]," BASE_JSON "}",
        "{\"x\":[[[1.]]]," BASE_JSON "}",
        "{\"x\":\"a\x01b\"," BASE_JSON "}", /* raw control character */
        "{\"x\":[\"a\tb\"]," BASE_JSON "}",
        "{\"x\":{\"k\x1f\":1}," BASE_JSON "}", /* in a nested key */
        "{\"ts\":[1 2]," BASE_JSON "}",        /* replaced, and a container */
        "{\"ts\":12\"x\"," BASE_JSON "}",      /* replaced duplicate */
        "{\"channel\":\"a\x01\"," BASE_JSON ",\"channel\":\"ok\"}",
        BASE_JSON, /* no braces at all */
    };
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        fs_reject r = js(malformed[i]);
        if (r != (i + 1 == sizeof malformed / sizeof malformed[0] ? FS_REJECT_NOT_A_MAP
                                                                  : FS_REJECT_MALFORMED)) {
            print_error("%s: %s\n", malformed[i], fs_reject_name(r));
            fail();
        }
    }
    /* A syntax error wins over a bad field: the message is not JSON. */
    assert_reason(js("{\"customer_id\":5,\"x\":[1 2],\"ts\":1,\"event\":\"e\"}"),
                  FS_REJECT_MALFORMED);
    assert_reason(js("{\"customer_id\":[1 2],\"ts\":1,\"event\":\"e\"}"), FS_REJECT_MALFORMED);

    assert_reason(js("{\"x\":\"\xff\"," BASE_JSON "}"), FS_REJECT_INVALID_UTF8);
    assert_reason(js("{\"x\":[\"\xc0\x80\"]," BASE_JSON "}"), FS_REJECT_INVALID_UTF8);
    assert_reason(js("{\"x\":{\"\xed\xa0\x80\":1}," BASE_JSON "}"), FS_REJECT_INVALID_UTF8);
    assert_reason(js("{\"event\":\"\xff\"," BASE_JSON "}"), FS_REJECT_INVALID_UTF8);

    /* Valid JSON in odd shapes is fine. Escapes in strings that never become
     * fields are not decoded, so a lone surrogate there does not matter. */
    assert_reason(js("{\"x\" : [ 1 , { \"a\" : null , \"b\":[ ] } ,\"[{\" ] ,\"y\":{}," BASE_JSON
                     ",\"z\":\"\\ud800\",\"w\":[\"\\udc00\"],\"v\":\"\x7f\"}"),
                  FS_OK);
    assert_base_event();
}

/* ---- adversarial sizes -------------------------------------------------------------------- */

/* A message whose only fault is nesting depth inside an unknown key. */
static size_t nested_mp(char *b, size_t depth)
{
    static const char head[] = "\x84\xab"
                               "customer_id\xa1"
                               "c\xa2"
                               "ts\x01\xa5"
                               "event\xa1"
                               "e\xa1"
                               "x";
    size_t n = sizeof head - 1;
    memcpy(b, head, n);
    memset(b + n, 0x91, depth);
    b[n + depth] = (char)0xc0;
    return n + depth + 1;
}

static size_t nested_json(char *b, size_t depth)
{
    size_t n = (size_t)sprintf(b, "{\"customer_id\":\"c\",\"ts\":1,\"event\":\"e\",\"x\":");
    memset(b + n, '[', depth);
    b[n + depth] = '0';
    memset(b + n + depth + 1, ']', depth);
    b[n + 2 * depth + 1] = '}';
    return n + 2 * depth + 2;
}

/* msgpack-c holds at most 32 nested containers (the top-level map is one);
 * deeper objects are rejected, not crashed on. JSON keeps the same limit so
 * one logical event is accepted in both formats or in neither. */
static void test_deep_nesting(void **state)
{
    (void)state;
    size_t cap = 2 * 100000 + 128;
    char *b = malloc(cap);
    assert_non_null(b);
    for (size_t depth = 0; depth <= 40; depth++) {
        fs_reject want = depth <= 31 ? FS_OK : FS_REJECT_MALFORMED;
        assert_reason(decode_mp_bytes(b, nested_mp(b, depth)), want);
        assert_reason(decode_json_bytes(b, nested_json(b, depth)), want);
    }
    assert_reason(decode_mp_bytes(b, nested_mp(b, 100000)), FS_REJECT_MALFORMED);
    assert_reason(decode_json_bytes(b, nested_json(b, 10000)), FS_REJECT_MALFORMED);
    assert_reason(decode_json_bytes(b, nested_json(b, 100000)), FS_REJECT_MALFORMED);
    /* Deep nesting at the top level is just not an object. */
    memset(b, '[', 10000);
    assert_reason(decode_json_bytes(b, 10000), FS_REJECT_NOT_A_MAP);
    /* Brackets inside strings do not count. */
    size_t n = (size_t)sprintf(b, "{" BASE_JSON ",\"x\":\"%s\"}", rep('[', 100));
    assert_reason(decode_json_bytes(b, n), FS_OK);
    /* ...but a quote inside a (malformed) number does not start a string for
     * jsmn, so the brackets after it are real: still rejected, quickly, and
     * without deep recursion. */
    n = (size_t)sprintf(b, "{\"ts\":1\"x, \"b\":");
    memset(b + n, '[', 100000);
    memset(b + n + 100000, ']', 100000);
    n += 200000;
    b[n++] = '}';
    assert_reason(decode_json_bytes(b, n), FS_REJECT_MALFORMED);
    free(b);
}

/* Declared sizes far beyond the message are truncation, found without
 * allocating for them (under ASan a 2^32-entry allocation would abort). */
static void test_huge_declared_sizes(void **state)
{
    (void)state;
    assert_reason(decode_mp_bytes("\xdf\xff\xff\xff\xff\xa1"
                                  "a\x01\xa1"
                                  "b",
                                  10),
                  FS_REJECT_TRUNCATED);
    assert_reason(decode_mp_bytes("\xdd\xff\xff\xff\xff\xc0\xc0\xc0\xc0\xc0", 10),
                  FS_REJECT_TRUNCATED);
    assert_reason(decode_mp_bytes("\x81\xa1"
                                  "a\xdb\xff\xff\xff\xff"
                                  "abc",
                                  11),
                  FS_REJECT_TRUNCATED);
    assert_reason(decode_mp_bytes("\x81\xa1"
                                  "a\xc9\xff\xff\xff\xff\x01",
                                  9),
                  FS_REJECT_TRUNCATED);
}

/* A large but legitimate message: many unknown keys and a long array. */
static void test_large_messages(void **state)
{
    (void)state;
    size_t keys = 5000, cap = keys * 24 + 256;
    char *b = malloc(cap);
    assert_non_null(b);
    size_t n = (size_t)sprintf(b, "{");
    for (size_t i = 0; i < keys; i++)
        n += (size_t)sprintf(b + n, "\"k%zu\":[%zu,\"v\"],", i, i);
    n += (size_t)sprintf(b + n, BASE_JSON "}");
    assert_reason(decode_json_bytes(b, n), FS_OK); /* grows the token array */
    assert_base_event();
    assert_reason(js("{" BASE_JSON "}"), FS_OK); /* and still works small */
    assert_base_event();

    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, keys + 3);
    for (size_t i = 0; i < keys; i++) {
        char k[32];
        int kl = snprintf(k, sizeof k, "k%zu", i);
        pack_str(&pk, k, (size_t)kl);
        msgpack_pack_array(&pk, 2);
        msgpack_pack_uint64(&pk, i);
        pack_str(&pk, "v", 1);
    }
    pack_str(&pk, "customer_id", 11);
    pack_str(&pk, "c1", 2);
    pack_str(&pk, "ts", 2);
    msgpack_pack_int64(&pk, 1700000000000);
    pack_str(&pk, "event", 5);
    pack_str(&pk, "ad_click", 8);
    assert_reason(decode_mp_bytes(sb.data, sb.size), FS_OK);
    assert_base_event();
    msgpack_sbuffer_destroy(&sb);
    free(b);
}

/* A decoder is reusable after any rejection; fs_decode dispatches. */
static void test_decoder_reuse_and_dispatch(void **state)
{
    (void)state;
    assert_reason(decode_mp_bytes("\xc1", 1), FS_REJECT_BAD_START_BYTE);
    assert_reason(MP(BASE_MP), FS_OK);
    assert_base_event();
    assert_reason(js("{\"a\":[[[["), FS_REJECT_TRUNCATED);
    assert_reason(js("{" BASE_JSON "}"), FS_OK);
    assert_base_event();

    const char *text = "{" BASE_JSON ",\"channel\":\"\\u00e9\"}";
    set_msg(text, strlen(text));
    scratch_used = 99;
    assert_reason(fs_decode(dec, FS_FORMAT_JSON, msg, msg_len, &ev, scratch, &scratch_used), FS_OK);
    assert_int_equal(scratch_used, 2);
    assert_str(ev.channel, "\xc3\xa9");
    assert_reason(MP(BASE_MP, S("channel", "web")), FS_OK);
    scratch_used = 99;
    assert_reason(fs_decode(dec, FS_FORMAT_MSGPACK, msg, msg_len, &ev, scratch, &scratch_used),
                  FS_OK);
    assert_int_equal(scratch_used, 0);
    assert_str(ev.channel, "web");
}

static void test_reject_names(void **state)
{
    (void)state;
    assert_string_equal(fs_reject_name(FS_OK), "ok");
    assert_string_equal(fs_reject_name(FS_REJECT_BAD_START_BYTE), "bad_start_byte");
    assert_string_equal(fs_reject_name(FS_REJECT_KEY_NOT_STRING), "key_not_string");
    assert_string_equal(fs_reject_name(FS_REJECT_BAD_VALUE), "bad_value");
    assert_string_equal(fs_reject_name(FS_REJECT_COUNT), "unknown");
    for (int r = 0; r < FS_REJECT_COUNT; r++) {
        assert_non_null(fs_reject_name((fs_reject)r));
        for (int s = 0; s < r; s++)
            assert_string_not_equal(fs_reject_name((fs_reject)r), fs_reject_name((fs_reject)s));
    }
}

/* fs_decode_msgpack_next walks a stream: each object's length and reason,
 * a 0xc1 as one bad byte, and an incomplete tail. */
static void test_msgpack_next_stream(void **state)
{
    (void)state;
    static const char good[] = "\x83\xab"
                               "customer_id\xa1"
                               "c\xa2"
                               "ts\x01\xa5"
                               "event\xa1"
                               "e";
    static const char bad_ts[] = "\x83\xab"
                                 "customer_id\xa1"
                                 "c\xa2"
                                 "ts\xc0\xa5"
                                 "event\xa1"
                                 "e";
    size_t g = sizeof good - 1, b = sizeof bad_ts - 1;
    char stream[128];
    size_t n = 0;
    memcpy(stream + n, good, g), n += g;
    memcpy(stream + n, bad_ts, b), n += b;
    stream[n++] = (char)0xc1;
    memcpy(stream + n, good, g), n += g;
    memcpy(stream + n, good, g - 1), n += g - 1; /* cut short */
    set_msg(stream, n);
    static const struct {
        fs_frame_status st;
        size_t len;
        fs_reject reason;
    } want[] = {{FS_FRAME_OK, sizeof good - 1, FS_OK},
                {FS_FRAME_OK, sizeof bad_ts - 1, FS_REJECT_BAD_TS},
                {FS_FRAME_BAD, 1, FS_REJECT_COUNT},
                {FS_FRAME_OK, sizeof good - 1, FS_OK},
                {FS_FRAME_NEED_MORE, 0, FS_REJECT_COUNT}};
    size_t pos = 0;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        size_t len = 0;
        fs_reject reason = FS_REJECT_COUNT;
        assert_int_equal(fs_decode_msgpack_next(dec, msg + pos, msg_len - pos, &len, &ev, &reason),
                         want[i].st);
        if (want[i].st == FS_FRAME_NEED_MORE)
            break;
        assert_int_equal(len, want[i].len);
        if (want[i].st == FS_FRAME_OK)
            assert_reason(reason, want[i].reason);
        if (reason == FS_OK) {
            assert_str(ev.customer_id, "c");
            assert_in_msg(ev.event);
        }
        pos += len;
    }
    assert_int_equal(pos, n - (g - 1));
}

/* ---- differential: random and mutated messages ------------------------------------------ */

/* The decoders take shortcuts (one pass over MessagePack; JSON accepted by a
 * single-pass parser, the jsmn decoder deciding the rest), so each is checked
 * against a plain reference on many random messages built from the shapes
 * that matter -- field names, duplicates, every value type, invalid UTF-8,
 * nesting around the 32-level limit -- and on byte-level mutations of them:
 * the same reason, and on FS_OK the same event. */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)((rng_state >> 16) % n);
}

static const char *const diff_keys[] = {"customer_id",  "ts",    "event", "channel", "campaign",
                                        "segment",      "value", "x",     "",        "k\xff",
                                        "customer_ids", "Event"};
static const char *const diff_strs[] = {"c1",
                                        "",
                                        "ad_click",
                                        "\xc3\xa9t\xc3\xa9",
                                        "\xc3",
                                        "a\xff",
                                        "\xed\xa0\x80",
                                        "0123456789012345678901234567890123456789"
                                        "01234567890123456789012345"};

static void rand_mp_value(msgpack_packer *pk, unsigned depth)
{
    if (rnd(40) == 0) { /* a chain of containers around the depth limit */
        unsigned chain = 26 + rnd(10);
        for (unsigned i = 0; i < chain; i++) {
            if (rnd(2))
                msgpack_pack_array(pk, 1);
            else {
                msgpack_pack_map(pk, 1);
                msgpack_pack_nil(pk);
            }
        }
        msgpack_pack_nil(pk);
        return;
    }
    switch (rnd(depth < 36 ? 13 : 11)) {
    case 0:
    case 1: {
        const char *s = diff_strs[rnd(sizeof diff_strs / sizeof diff_strs[0])];
        size_t n = strlen(s) * (1 + rnd(3)); /* up to 198 bytes: over every limit */
        msgpack_pack_str(pk, n);
        for (size_t done = 0; done < n; done += strlen(s))
            msgpack_pack_str_body(pk, s, strlen(s));
        break;
    }
    case 2: {
        static const int64_t ints[] = {0,
                                       1,
                                       -1,
                                       127,
                                       128,
                                       -33,
                                       255,
                                       65536,
                                       1700000000000,
                                       -1700000000000,
                                       INT64_MAX,
                                       INT64_MIN,
                                       FS_TS_MAX,
                                       FS_TS_MAX + 1,
                                       FS_TS_MIN,
                                       FS_TS_MIN - 1,
                                       999999999999999999};
        msgpack_pack_int64(pk, ints[rnd(sizeof ints / sizeof ints[0])]);
        break;
    }
    case 3:
        msgpack_pack_uint64(pk, rnd(2) ? UINT64_MAX : (uint64_t)INT64_MAX + rnd(3));
        break;
    case 4: {
        static const double ds[] = {1.0, 2.5, -0.0, 1e18, -1e18, 999999999999999872.0, 1e300};
        msgpack_pack_double(pk, rnd(8) ? ds[rnd(sizeof ds / sizeof ds[0])] : NAN);
        break;
    }
    case 5:
        msgpack_pack_float(pk, rnd(2) ? 2.5f : INFINITY);
        break;
    case 6:
        msgpack_pack_nil(pk);
        break;
    case 7:
        msgpack_pack_true(pk);
        break;
    case 8:
        msgpack_pack_bin(pk, 2);
        msgpack_pack_bin_body(pk, "c1", 2);
        break;
    case 9:
        msgpack_pack_ext(pk, 1, 3);
        msgpack_pack_ext_body(pk, "abc", 1);
        break;
    case 10:
        msgpack_pack_map(pk, 0);
        break;
    default: { /* a container, sometimes a deep chain of them */
        unsigned n = rnd(3);
        if (rnd(2)) {
            msgpack_pack_array(pk, n);
            for (unsigned i = 0; i < n; i++)
                rand_mp_value(pk, depth + (rnd(4) ? 1 : 8));
        } else {
            msgpack_pack_map(pk, n);
            for (unsigned i = 0; i < n; i++) {
                rand_mp_value(pk, depth + 1);
                rand_mp_value(pk, depth + (rnd(4) ? 1 : 8));
            }
        }
        break;
    }
    }
}

/* A random map (or, rarely, something else), mostly event-like. */
static void rand_mp_message(msgpack_sbuffer *sb)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    if (rnd(20) == 0) {
        rand_mp_value(&pk, 1);
        return;
    }
    unsigned n = rnd(10);
    msgpack_pack_map(&pk, n + 3);
    static const char *const base[][2] = {{"customer_id", "c1"}, {"event", "e"}};
    for (int i = 0; i < 2; i++) {
        msgpack_pack_str_with_body(&pk, base[i][0], strlen(base[i][0]));
        msgpack_pack_str_with_body(&pk, base[i][1], strlen(base[i][1]));
    }
    msgpack_pack_str_with_body(&pk, "ts", 2);
    msgpack_pack_int64(&pk, 1700000000000);
    for (unsigned i = 0; i < n; i++) {
        if (rnd(12) == 0)
            rand_mp_value(&pk, 2); /* a key that may not be a string */
        else {
            const char *k = diff_keys[rnd(sizeof diff_keys / sizeof diff_keys[0])];
            msgpack_pack_str_with_body(&pk, k, strlen(k));
        }
        rand_mp_value(&pk, 2);
    }
}

/* Flips, inserts, deletes or truncates a few bytes (buffer has room for 8 more). */
static size_t mutate(unsigned char *b, size_t n, const char *alphabet)
{
    unsigned edits = rnd(4);
    for (unsigned e = 0; e < edits && n > 0; e++) {
        size_t at = rnd((uint32_t)n);
        unsigned char c = alphabet ? (unsigned char)alphabet[rnd((uint32_t)strlen(alphabet))]
                                   : (unsigned char)rnd(256);
        switch (rnd(4)) {
        case 0:
            b[at] = c;
            break;
        case 1:
            memmove(b + at + 1, b + at, n - at);
            b[at] = c;
            n++;
            break;
        case 2:
            memmove(b + at, b + at + 1, n - at - 1);
            n--;
            break;
        default:
            n = at;
            break;
        }
    }
    return n;
}

static void test_msgpack_differential(void **state)
{
    (void)state;
    unsigned accepted = 0;
    for (int iter = 0; iter < 40000; iter++) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        rand_mp_message(&sb);
        unsigned char *b = malloc(sb.size + 8);
        assert_non_null(b);
        memcpy(b, sb.data, sb.size);
        size_t n = iter % 2 ? mutate(b, sb.size, NULL) : sb.size;
        msgpack_sbuffer_destroy(&sb);

        fs_event ref;
        memset(&ref, 0, sizeof ref);
        fs_reject want = decode_mp_bytes(b, n); /* sets msg: exactly n bytes */
        fs_reject got_ref = fs_ref_decode_msgpack(msg, msg_len, &ref);
        if (want != got_ref) {
            print_error("iteration %d: decoder %s, reference %s\n", iter, fs_reject_name(want),
                        fs_reject_name(got_ref));
            fail();
        }
        if (want == FS_OK) {
            accepted++;
            assert_true(ev.ts == ref.ts && ev.customer_hash == ref.customer_hash &&
                        memcmp(&ev.value, &ref.value, sizeof ev.value) == 0);
            assert_true(ev.customer_id.ptr == ref.customer_id.ptr &&
                        ev.event.ptr == ref.event.ptr && ev.channel.len == ref.channel.len &&
                        !memcmp(ev.channel.ptr, ref.channel.ptr, ev.channel.len) &&
                        ev.campaign.len == ref.campaign.len &&
                        !memcmp(ev.campaign.ptr, ref.campaign.ptr, ev.campaign.len) &&
                        ev.segment.len == ref.segment.len &&
                        !memcmp(ev.segment.ptr, ref.segment.ptr, ev.segment.len));
        }
        /* Framing and decoding in one pass agrees with doing them apart,
         * also when the buffer holds more than one object (trailing data). */
        size_t framed = 0, next_len = 0;
        fs_reject next_reason = FS_REJECT_COUNT;
        fs_event ev3;
        fs_frame_status st = fs_frame_msgpack(msg, msg_len, &framed);
        assert_int_equal(fs_decode_msgpack_next(dec, msg, msg_len, &next_len, &ev3, &next_reason),
                         st);
        if (st != FS_FRAME_NEED_MORE)
            assert_int_equal(next_len, framed);
        if (st == FS_FRAME_OK) {
            fs_event ev4;
            assert_reason(next_reason, fs_decode_msgpack(dec, msg, framed, &ev4));
            if (next_reason == FS_OK)
                assert_true(ev3.ts == ev4.ts && ev3.customer_hash == ev4.customer_hash &&
                            ev3.event.ptr == ev4.event.ptr &&
                            memcmp(&ev3.value, &ev4.value, sizeof ev3.value) == 0);
        }
        /* The replay path's entry point agrees on every framed message. */
        if (st == FS_FRAME_OK && framed == msg_len) {
            fs_event ev2;
            size_t used = 1;
            assert_reason(fs_decode_framed(dec, FS_FORMAT_MSGPACK, msg, msg_len, &ev2, NULL, &used),
                          want);
            assert_int_equal(used, 0);
        }
        free(b);
    }
    assert_true(accepted > 1000); /* the generator does reach the accepting paths */
}

static size_t rand_json_value(char *b, unsigned depth)
{
    static const char *const scalars[] = {"\"c1\"",
                                          "\"\"",
                                          "\"ad_click\"",
                                          "\"\\u00e9t\\u00e9\"",
                                          "\"a\\nb\"",
                                          "\"\\ud83d\"",
                                          "\"\xc3\xa9\"",
                                          "\"\xff\"",
                                          "\"a\\\"b\"",
                                          "\"\\/\"",
                                          "null",
                                          "true",
                                          "false",
                                          "0",
                                          "-0",
                                          "1",
                                          "1700000000000",
                                          "-1700000000000",
                                          "9223372036854775807",
                                          "9223372036854775808",
                                          "-9223372036854775808",
                                          "-9223372036854775809",
                                          "1.0",
                                          "2.5",
                                          "-0.25",
                                          "1e3",
                                          "1E-2",
                                          "0.1",
                                          "123.45",
                                          "999999999999999872",
                                          "1e18",
                                          "12345678901234567890.5",
                                          "0.000001",
                                          "9007199254740991",
                                          "9007199254740992",
                                          "-9007199254740991",
                                          "-9007199254740992",
                                          "9007199254740993",
                                          "9007199254740993.0",
                                          "4.35",
                                          "0.3e1",
                                          "01",
                                          "1.",
                                          ".5",
                                          "+1",
                                          "tru",
                                          "nul",
                                          "\"abc"};
    if (rnd(40) == 0) { /* a chain of containers around the depth limit */
        unsigned chain = 26 + rnd(10);
        size_t m = 0;
        char close[40];
        for (unsigned i = 0; i < chain; i++) {
            bool obj = rnd(2);
            m += (size_t)sprintf(b + m, obj ? "{\"a\":" : "[");
            close[i] = obj ? '}' : ']';
        }
        b[m++] = '1';
        while (chain > 0)
            b[m++] = close[--chain];
        return m;
    }
    switch (rnd(depth < 35 ? 6 : 4)) {
    case 0: { /* a random decimal: the fast number conversion against strtod */
        int m = sprintf(b, "%s%u", rnd(2) ? "-" : "", rnd(1000000));
        if (rnd(2))
            m += sprintf(b + m, ".%0*u", (int)(1 + rnd(8)), rnd(100000000));
        if (rnd(4) == 0)
            m += sprintf(b + m, "e%d", (int)rnd(40) - 20);
        return (size_t)m;
    }
    case 4:
    case 5: { /* a container, sometimes a deep chain */
        bool obj = rnd(2);
        size_t m = 0;
        unsigned n = rnd(3);
        b[m++] = obj ? '{' : '[';
        for (unsigned i = 0; i < n; i++) {
            if (i)
                b[m++] = ',';
            if (obj)
                m += (size_t)sprintf(b + m, "\"k%u\":", rnd(3));
            m += rand_json_value(b + m, depth + (rnd(4) ? 1 : 8));
        }
        b[m++] = obj ? '}' : ']';
        return m;
    }
    default: {
        const char *s = scalars[rnd(sizeof scalars / sizeof scalars[0])];
        strcpy(b, s);
        return strlen(s);
    }
    }
}

static void test_json_differential(void **state)
{
    (void)state;
    static const char *const keys[] = {
        "customer_id", "ts", "event", "channel",           "campaign",   "segment", "value",
        "x",           "",   "k\xff", "customer\\u005fid", "chan\\nnel", "Event"};
    static const char *const ws[] = {"", "", "", " ", "\n\t", "\r "};
    size_t cap = 1 << 20;
    char *b = malloc(cap);
    char *refscratch = malloc(cap);
    assert_non_null(b);
    assert_non_null(refscratch);
    unsigned accepted = 0;
    for (int iter = 0; iter < 40000; iter++) {
        size_t n = (size_t)sprintf(b,
                                   "%s{\"customer_id\":\"c1\",\"ts\":1700000000000,"
                                   "\"event\":\"e\"",
                                   ws[rnd(6)]);
        unsigned fields = rnd(8);
        for (unsigned i = 0; i < fields; i++) {
            n += (size_t)sprintf(b + n, ",%s\"%s\"%s:%s", ws[rnd(6)],
                                 keys[rnd(sizeof keys / sizeof keys[0])], ws[rnd(6)], ws[rnd(6)]);
            n += rand_json_value(b + n, 2);
        }
        n += (size_t)sprintf(b + n, "%s}%s", ws[rnd(6)], ws[rnd(6)]);
        if (iter % 2)
            n = mutate((unsigned char *)b, n, "{}[]\",:0123456789-+.eE \\ntu\x01\xff");

        fs_event ref;
        size_t ref_used = 0;
        fs_reject got = decode_json_bytes(b, n);
        fs_reject want = fs_decode_json_reference(dec, msg, msg_len, &ref, refscratch, &ref_used);
        if (got != want) {
            print_error("iteration %d: \"%.*s\": decoder %s, reference %s\n", iter, (int)n, b,
                        fs_reject_name(got), fs_reject_name(want));
            fail();
        }
        assert_int_equal(scratch_used, ref_used);
        if (got == FS_OK) /* the same layout too: field order */
            assert_memory_equal(scratch, refscratch, scratch_used);
        if (got == FS_OK) {
            accepted++;
            if (!(ev.ts == ref.ts && ev.customer_hash == ref.customer_hash &&
                  memcmp(&ev.value, &ref.value, sizeof ev.value) == 0)) {
                print_error("\"%.*s\": value %.17g != %.17g\n", (int)n, b, ev.value, ref.value);
                fail();
            }
            assert_true(ev.channel.len == ref.channel.len &&
                        !memcmp(ev.channel.ptr, ref.channel.ptr, ev.channel.len) &&
                        ev.campaign.len == ref.campaign.len &&
                        !memcmp(ev.campaign.ptr, ref.campaign.ptr, ev.campaign.len) &&
                        ev.segment.len == ref.segment.len &&
                        !memcmp(ev.segment.ptr, ref.segment.ptr, ev.segment.len) &&
                        ev.event.len == ref.event.len &&
                        !memcmp(ev.event.ptr, ref.event.ptr, ev.event.len));
        }
    }
    assert_true(accepted > 1000);
    free(b);
    free(refscratch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_full_event),
        cmocka_unit_test(test_value_int_and_float),
        cmocka_unit_test(test_optional_absent_defaults),
        cmocka_unit_test(test_optional_null_is_absent),
        cmocka_unit_test(test_empty_labels_are_kept),
        cmocka_unit_test(test_optional_wrong_type),
        cmocka_unit_test(test_required_missing),
        cmocka_unit_test(test_required_null),
        cmocka_unit_test(test_required_wrong_type),
        cmocka_unit_test(test_bin_instead_of_str),
        cmocka_unit_test(test_reason_order),
        cmocka_unit_test(test_customer_id_length),
        cmocka_unit_test(test_event_length),
        cmocka_unit_test(test_label_lengths),
        cmocka_unit_test(test_ts_integers),
        cmocka_unit_test(test_ts_range_boundaries),
        cmocka_unit_test(test_ts_float_rejected),
        cmocka_unit_test(test_value_must_be_finite_and_bounded),
        cmocka_unit_test(test_last_duplicate_wins),
        cmocka_unit_test(test_unknown_keys_ignored),
        cmocka_unit_test(test_key_not_string),
        cmocka_unit_test(test_invalid_utf8_in_field),
        cmocka_unit_test(test_invalid_utf8_in_key),
        cmocka_unit_test(test_not_a_map),
        cmocka_unit_test(test_trailing_data),
        cmocka_unit_test(test_leading_trailing_whitespace),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_msgpack_bad_bytes),
        cmocka_unit_test(test_msgpack_wide_encodings),
        cmocka_unit_test(test_json_escapes),
        cmocka_unit_test(test_json_lone_surrogate),
        cmocka_unit_test(test_json_raw_control_char),
        cmocka_unit_test(test_json_escaped_key),
        cmocka_unit_test(test_json_structure_errors),
        cmocka_unit_test(test_json_syntax_everywhere),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_huge_declared_sizes),
        cmocka_unit_test(test_large_messages),
        cmocka_unit_test(test_decoder_reuse_and_dispatch),
        cmocka_unit_test(test_reject_names),
        cmocka_unit_test(test_msgpack_next_stream),
        cmocka_unit_test(test_msgpack_differential),
        cmocka_unit_test(test_json_differential),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
