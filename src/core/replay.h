/* replay.h -- the file source: a replay file (or stdin) cut into engine batches.
 *
 * Reads the input sequentially with read(2) straight into batch buffers and
 * frames it (frame.h) as it goes; an object cut by the end of a buffer moves
 * to the start of the next batch. Framing failures become messages with a
 * preset rejection, so they are counted in stream order like any other.
 */
#ifndef FS_REPLAY_H
#define FS_REPLAY_H

#include <stdbool.h>
#include <stdint.h>

#include "decode.h"
#include "engine.h"

typedef void (*fs_replay_progress_fn)(void *ctx, uint64_t bytes_read);

/* Feeds fd to the engine until end of input and publishes what it read;
 * `last` marks its final batch as the end of the engine's input. Returns 0,
 * or -1 with errno set on a read error (what was read is still published, so
 * the engine can be joined). */
int fs_replay_feed(fs_engine *e, int fd, fs_format format, bool last,
                   fs_replay_progress_fn progress, void *progress_ctx);

/* Format implied by a file name: .msgpack/.mp/.mpk -> msgpack, .jsonl/.json/.ndjson
 * -> json; -1 when the name says nothing. */
int fs_format_from_path(const char *path);

#endif
