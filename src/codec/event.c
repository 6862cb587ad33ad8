/* event.c -- names of rejection reasons and the customer hash. */
#include "event.h"

#include <xxhash.h>

static const char *const reject_names[FS_REJECT_COUNT] = {
    [FS_OK] = "ok",
    [FS_REJECT_BAD_START_BYTE] = "bad_start_byte",
    [FS_REJECT_TRUNCATED] = "truncated",
    [FS_REJECT_MALFORMED] = "malformed",
    [FS_REJECT_TRAILING_DATA] = "trailing_data",
    [FS_REJECT_NOT_A_MAP] = "not_a_map",
    [FS_REJECT_KEY_NOT_STRING] = "key_not_string",
    [FS_REJECT_INVALID_UTF8] = "invalid_utf8",
    [FS_REJECT_MISSING_CUSTOMER_ID] = "missing_customer_id",
    [FS_REJECT_BAD_CUSTOMER_ID] = "bad_customer_id",
    [FS_REJECT_MISSING_TS] = "missing_ts",
    [FS_REJECT_BAD_TS] = "bad_ts",
    [FS_REJECT_MISSING_EVENT] = "missing_event",
    [FS_REJECT_BAD_EVENT] = "bad_event",
    [FS_REJECT_BAD_CHANNEL] = "bad_channel",
    [FS_REJECT_BAD_CAMPAIGN] = "bad_campaign",
    [FS_REJECT_BAD_SEGMENT] = "bad_segment",
    [FS_REJECT_BAD_VALUE] = "bad_value",
};

const char *fs_reject_name(fs_reject reason)
{
    if ((unsigned)reason >= FS_REJECT_COUNT)
        return "unknown";
    return reject_names[reason];
}

uint64_t fs_hash_customer(const char *id, size_t len)
{
    return XXH3_64bits(id, len);
}
