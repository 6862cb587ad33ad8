/* event.h -- a decoded touchpoint event and the reasons a message is rejected.
 *
 * An fs_event never owns memory: its slices point into the message bytes it
 * was decoded from, or into caller-provided scratch space (JSON strings that
 * contained escapes). It is valid exactly as long as those bytes are.
 *
 * Invariants of a successfully decoded event (SPEC §1):
 *   - customer_id: 1..128 bytes of valid UTF-8
 *   - event:       1..64 bytes of valid UTF-8
 *   - channel, segment: 0..64 bytes, "unknown" when absent or null
 *   - campaign:    0..64 bytes, "unknown" when absent or null ("" is a value)
 *   - value:       finite, 0 when absent or null
 *   - customer_hash == fs_hash_customer(customer_id)
 */
#ifndef FS_EVENT_H
#define FS_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fs_slice {
    const char *ptr;
    uint32_t len;
} fs_slice;

typedef struct fs_event {
    int64_t ts;
    double value;
    uint64_t customer_hash;
    fs_slice customer_id;
    fs_slice event;
    fs_slice channel;
    fs_slice campaign;
    fs_slice segment;
} fs_event;

#define FS_MAX_CUSTOMER_ID 128
#define FS_MAX_EVENT_TYPE  64
#define FS_MAX_LABEL       64 /* channel, campaign, segment */

/* The valid event times (SPEC §1 `ts`, ms since the epoch): |ts| <= 2^53 - 1,
 * about 285,000 years either side of 1970, every one exact as a JSON
 * double. An event outside is rejected as bad_ts. The bound leaves int64
 * room for every sum the engine forms from a time and up to a few hundred
 * durations (window ends, expiry, watermark, time to convert): durations
 * are capped at the same 2^53 - 1 ms (config.c), and 2^53 * 2^9 < 2^63. */
#define FS_TS_MAX ((int64_t)((1ull << 53) - 1))
#define FS_TS_MIN (-FS_TS_MAX)

static inline bool fs_ts_valid(int64_t ts)
{
    return ts >= FS_TS_MIN && ts <= FS_TS_MAX;
}

/* Why a message is not a valid event. The names (fs_reject_name) are stable:
 * they appear in logs, counters and the dead-letter header. */
typedef enum fs_reject {
    FS_OK = 0,
    FS_REJECT_BAD_START_BYTE, /* msgpack stream: byte that cannot start an object */
    FS_REJECT_TRUNCATED,      /* object ends before it is complete */
    FS_REJECT_MALFORMED,      /* not parseable (JSON syntax, msgpack structure) */
    FS_REJECT_TRAILING_DATA,  /* bytes after the object */
    FS_REJECT_NOT_A_MAP,      /* top-level value is not a map/object */
    FS_REJECT_KEY_NOT_STRING, /* a map key is not a string */
    FS_REJECT_INVALID_UTF8,   /* a string (key or value) is not valid UTF-8 */
    FS_REJECT_MISSING_CUSTOMER_ID,
    FS_REJECT_BAD_CUSTOMER_ID, /* wrong type, empty or longer than 128 bytes */
    FS_REJECT_MISSING_TS,
    FS_REJECT_BAD_TS, /* not an integer (floats rejected), or outside FS_TS_MIN..FS_TS_MAX */
    FS_REJECT_MISSING_EVENT,
    FS_REJECT_BAD_EVENT,   /* wrong type, empty or longer than 64 bytes */
    FS_REJECT_BAD_CHANNEL, /* wrong type or longer than 64 bytes */
    FS_REJECT_BAD_CAMPAIGN,
    FS_REJECT_BAD_SEGMENT,
    FS_REJECT_BAD_VALUE, /* not a number, not finite, or |value| >= 1e18 */
    FS_REJECT_COUNT
} fs_reject;

/* The status of a message of the partials topic (merge.h), not a
 * rejection: never decoded; worker 0 hands it to the sink's merge. */
#define FS_PARTIAL_MSG 0xfe

const char *fs_reject_name(fs_reject reason);

/* The hash that routes a customer to a worker and indexes the journey table.
 * Stable across runs and machines (XXH3-64, seed 0). */
uint64_t fs_hash_customer(const char *id, size_t len);

#endif
