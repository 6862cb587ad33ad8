/* mp_reference.h -- a plain MessagePack event decoder built on msgpack-c, the
 * reference the one-pass decoder (fs_decode_msgpack) is tested against.
 *
 * It is deliberately the simple way round: frame the message (frame.c, which
 * fuzz_frame checks against msgpack-c), let msgpack-c build the object tree
 * in a fresh zone, then apply SPEC §1 to the tree. The order of the checks
 * fixes which reason a message with several faults gets, and is the
 * contract fs_decode_msgpack must match:
 *   1. shape, from the framer: truncated, bad start byte, malformed (0xc1
 *      inside), trailing data;
 *   2. the top-level object is not a map;
 *   3. msgpack-c refuses it (containers nested deeper than 32 levels):
 *      malformed;
 *   4. map keys in order: the first that is not a string, or (for keys that
 *      are not field names) not UTF-8;
 *   5. the final value of each field (the last duplicate wins), in field
 *      order: a string that is not UTF-8;
 *   6. the field rules, in the order customer_id, ts, event, channel,
 *      campaign, segment, value.
 * Values that are replaced by a later duplicate, or belong to other keys,
 * are not examined. Test code: it allocates per call and may be slow.
 */
#ifndef FS_MP_REFERENCE_H
#define FS_MP_REFERENCE_H

#include <math.h>
#include <stdbool.h>
#include <string.h>

#include <msgpack.h>

#include "event.h"
#include "frame.h"
#include "utf8.h"

static inline bool ref_key_is(const msgpack_object *k, const char *name)
{
    return k->via.str.size == strlen(name) && memcmp(k->via.str.ptr, name, k->via.str.size) == 0;
}

/* A string field: required (min 1) or optional (default dflt for absent/nil). */
static inline fs_reject ref_string(const msgpack_object *o, bool required, uint32_t max,
                                   fs_reject missing, fs_reject bad, const char *dflt,
                                   fs_slice *out)
{
    if (!o || (!required && o->type == MSGPACK_OBJECT_NIL)) {
        if (required)
            return missing;
        *out = (fs_slice){dflt, (uint32_t)strlen(dflt)};
        return FS_OK;
    }
    if (o->type != MSGPACK_OBJECT_STR || o->via.str.size > max ||
        (required && o->via.str.size == 0))
        return bad;
    *out = (fs_slice){o->via.str.ptr, o->via.str.size};
    return FS_OK;
}

static inline fs_reject fs_ref_decode_msgpack(const char *msg, size_t len, fs_event *ev)
{
    size_t framed = 0;
    switch (fs_frame_msgpack(msg, len, &framed)) {
    case FS_FRAME_NEED_MORE:
        return FS_REJECT_TRUNCATED;
    case FS_FRAME_BAD:
        return framed == 1 ? FS_REJECT_BAD_START_BYTE : FS_REJECT_MALFORMED;
    case FS_FRAME_OK:
        break;
    }
    if (framed < len)
        return FS_REJECT_TRAILING_DATA;
    unsigned char b = (unsigned char)msg[0];
    if (!((b >= 0x80 && b <= 0x8f) || b == 0xde || b == 0xdf))
        return FS_REJECT_NOT_A_MAP;

    msgpack_zone zone;
    if (!msgpack_zone_init(&zone, 2048))
        abort();
    msgpack_object root;
    size_t off = 0;
    fs_reject r = FS_OK;
    if (msgpack_unpack(msg, len, &off, &zone, &root) != MSGPACK_UNPACK_SUCCESS ||
        root.type != MSGPACK_OBJECT_MAP) {
        r = FS_REJECT_MALFORMED;
        goto out;
    }
    static const char *const names[] = {"customer_id", "ts",      "event", "channel",
                                        "campaign",    "segment", "value"};
    const msgpack_object *f[7] = {0};
    for (uint32_t i = 0; i < root.via.map.size && !r; i++) {
        const msgpack_object *k = &root.via.map.ptr[i].key;
        if (k->type != MSGPACK_OBJECT_STR) {
            r = FS_REJECT_KEY_NOT_STRING;
            break;
        }
        int which = -1;
        for (int n = 0; n < 7; n++)
            if (ref_key_is(k, names[n]))
                which = n;
        if (which >= 0)
            f[which] = &root.via.map.ptr[i].val;
        else if (!fs_utf8_valid(k->via.str.ptr, k->via.str.size))
            r = FS_REJECT_INVALID_UTF8;
    }
    for (int n = 0; n < 7 && !r; n++)
        if (f[n] && f[n]->type == MSGPACK_OBJECT_STR &&
            !fs_utf8_valid(f[n]->via.str.ptr, f[n]->via.str.size))
            r = FS_REJECT_INVALID_UTF8;
    if (r)
        goto out;
    if ((r = ref_string(f[0], true, FS_MAX_CUSTOMER_ID, FS_REJECT_MISSING_CUSTOMER_ID,
                        FS_REJECT_BAD_CUSTOMER_ID, NULL, &ev->customer_id)))
        goto out;
    if (!f[1]) {
        r = FS_REJECT_MISSING_TS;
        goto out;
    }
    if (f[1]->type == MSGPACK_OBJECT_POSITIVE_INTEGER && f[1]->via.u64 <= (uint64_t)INT64_MAX)
        ev->ts = (int64_t)f[1]->via.u64;
    else if (f[1]->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        ev->ts = f[1]->via.i64;
    else {
        r = FS_REJECT_BAD_TS;
        goto out;
    }
    if (ev->ts < FS_TS_MIN || ev->ts > FS_TS_MAX) { /* SPEC §1's range, event.h */
        r = FS_REJECT_BAD_TS;
        goto out;
    }
    if ((r = ref_string(f[2], true, FS_MAX_EVENT_TYPE, FS_REJECT_MISSING_EVENT, FS_REJECT_BAD_EVENT,
                        NULL, &ev->event)) ||
        (r = ref_string(f[3], false, FS_MAX_LABEL, 0, FS_REJECT_BAD_CHANNEL, "unknown",
                        &ev->channel)) ||
        (r = ref_string(f[4], false, FS_MAX_LABEL, 0, FS_REJECT_BAD_CAMPAIGN, "unknown",
                        &ev->campaign)) ||
        (r = ref_string(f[5], false, FS_MAX_LABEL, 0, FS_REJECT_BAD_SEGMENT, "unknown",
                        &ev->segment)))
        goto out;
    const msgpack_object *v = f[6];
    double d = 0;
    if (!v || v->type == MSGPACK_OBJECT_NIL)
        d = 0;
    else if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        d = (double)v->via.u64;
    else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        d = (double)v->via.i64;
    else if (v->type == MSGPACK_OBJECT_FLOAT32 || v->type == MSGPACK_OBJECT_FLOAT64)
        d = v->via.f64;
    else
        d = NAN;
    if (!isfinite(d) || fabs(d) >= 1e18) {
        r = FS_REJECT_BAD_VALUE;
        goto out;
    }
    ev->value = d;
    ev->customer_hash = fs_hash_customer(ev->customer_id.ptr, ev->customer_id.len);
out:
    msgpack_zone_destroy(&zone);
    return r;
}

#endif
