/* fuzz_decode_json.c -- libFuzzer target: fs_decode_json on arbitrary bytes.
 *
 * The message and the scratch are exactly as large as the API allows (len
 * bytes each), so ASan catches any read past the message or write past the
 * scratch. On FS_OK it checks the event invariants: each string slice lies in
 * the message or in the used part of the scratch (or is a static default),
 * is valid UTF-8 and within its limit; the value is finite and below 1e18.
 * It also checks determinism (same bytes, same result) and a round trip:
 * the event re-packed as MessagePack decodes to the same event, so both
 * decoders agree on every event JSON accepts. Differential: the single-pass
 * parser must agree with the jsmn-based fs_decode_json_reference (same
 * reason; on FS_OK the same event and the same scratch bytes), since it
 * accepts on its own and leaves everything else to it.
 */
#include <stdint.h>
#include <stdlib.h>

#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fs_decoder *dec;
    if (!dec)
        dec = fs_decoder_new();
    const char *msg = (const char *)data;
    char *scratch = malloc(size ? size : 1);
    CHECK(scratch);
    fs_event ev, ev2;
    size_t used = 99, used2 = 99;
    fs_reject r = fs_decode_json(dec, msg, size, &ev, scratch, &used);
    CHECK((unsigned)r < FS_REJECT_COUNT);
    CHECK(r != FS_REJECT_KEY_NOT_STRING && r != FS_REJECT_BAD_START_BYTE); /* msgpack only */
    CHECK(used <= size);
    {
        char *rscratch = malloc(size ? size : 1);
        CHECK(rscratch);
        fs_event ref;
        size_t rused = 77;
        fs_reject rr = fs_decode_json_reference(dec, msg, size, &ref, rscratch, &rused);
        if (rr != r) {
            fprintf(stderr, "decoder %s, reference %s\n", fs_reject_name(r), fs_reject_name(rr));
            CHECK(rr == r);
        }
        CHECK(rused == used);
        if (r == FS_OK)
            CHECK(same_event(&ev, &ref) && memcmp(scratch, rscratch, used) == 0);
        free(rscratch);
    }
    if (r == FS_OK) {
        fuzz_where w = {msg, size, scratch, used};
        check_event(&ev, &w);
        /* Deterministic, including with a different scratch buffer. */
        char *scratch2 = malloc(size ? size : 1);
        CHECK(scratch2);
        CHECK(fs_decode_json(dec, msg, size, &ev2, scratch2, &used2) == FS_OK);
        CHECK(used2 == used && same_event(&ev, &ev2));
        free(scratch2);
        check_msgpack_round_trip(dec, &ev);
    } else {
        CHECK(fs_decode_json(dec, msg, size, &ev2, scratch, &used2) == r);
    }
    free(scratch);
    return 0;
}
