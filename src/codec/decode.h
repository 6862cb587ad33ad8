/* decode.h -- one message's bytes -> fs_event (SPEC §1).
 *
 * A decoder holds reusable scratch state (the JSON token array of the exact
 * decoder) so decoding allocates nothing per event once warm; MessagePack
 * needs none. A decoder is used by one thread at a time.
 *
 * A message is exactly one MessagePack object / one JSON value (surrounding
 * JSON whitespace allowed); anything after it is FS_REJECT_TRAILING_DATA.
 * Decoding never crashes, never reads outside [msg, msg+len), and terminates
 * in time linear in len for any input.
 */
#ifndef FS_DECODE_H
#define FS_DECODE_H

#include "event.h"
#include "frame.h"

typedef enum fs_format { FS_FORMAT_MSGPACK = 0, FS_FORMAT_JSON = 1 } fs_format;

typedef struct fs_decoder fs_decoder;

fs_decoder *fs_decoder_new(void);
void fs_decoder_free(fs_decoder *dec);

/* Decodes msg into *ev. String slices of *ev point into msg. */
fs_reject fs_decode_msgpack(fs_decoder *dec, const char *msg, size_t len, fs_event *ev);

/* Frames and decodes the MessagePack object at the start of a stream buffer
 * in one pass: returns what fs_frame_msgpack(buf, avail, msg_len) returns and,
 * on FS_FRAME_OK, sets *reason to what fs_decode_msgpack(buf, *msg_len) gives
 * (filling *ev on FS_OK). For readers that frame and decode in the same
 * thread: a valid event costs one walk instead of a frame and a decode. */
fs_frame_status fs_decode_msgpack_next(fs_decoder *dec, const char *buf, size_t avail,
                                       size_t *msg_len, fs_event *ev, fs_reject *reason);

/* Decodes msg into *ev. Strings without escapes point into msg; strings with
 * escapes are unescaped into scratch, which must have room for len bytes;
 * *scratch_used receives how many bytes of it the event uses. */
fs_reject fs_decode_json(fs_decoder *dec, const char *msg, size_t len, fs_event *ev, char *scratch,
                         size_t *scratch_used);

/* The exact JSON decoder (jsmn-based, two passes) that fs_decode_json falls
 * back to for every message its single-pass parser does not accept outright:
 * it decides the reject reason. Same contract as fs_decode_json; exposed for
 * the differential tests (fs_decode_json must agree with it on every input). */
fs_reject fs_decode_json_reference(fs_decoder *dec, const char *msg, size_t len, fs_event *ev,
                                   char *scratch, size_t *scratch_used);

fs_reject fs_decode(fs_decoder *dec, fs_format fmt, const char *msg, size_t len, fs_event *ev,
                    char *scratch, size_t *scratch_used);

/* As fs_decode, for a MessagePack message that fs_frame_msgpack already found
 * to be exactly one complete object (FS_FRAME_OK, msg_len == len): the replay
 * source frames every message anyway. fs_decode_msgpack only frames messages
 * it rejects (to rank truncation and trailing bytes first), so this saves
 * that on rejects only. The decode still never reads outside the message;
 * an unframed message gets some reject reason, not necessarily the same. */
fs_reject fs_decode_framed(fs_decoder *dec, fs_format fmt, const char *msg, size_t len,
                           fs_event *ev, char *scratch, size_t *scratch_used);

#endif
