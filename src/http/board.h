/* board.h -- the latest closed windows of every funnel, for the HTTP API.
 *
 * The sink thread posts each flow record as it writes it (JSON text, with
 * its funnel's index); the loop thread renders /api/funnels from the
 * board: per funnel, in config order, its mode ("open", "strict" or
 * "unordered", which the dashboard needs to label the stage axis), its
 * stages, which stages are optional (one bool per stage), the latest record
 * and the last FS_BOARD_RECENT records, oldest first. A mutex guards the board;
 * posts happen once per window and funnel, so it is never contended.
 * With output.format msgpack the sink still hands the board each flow
 * record in JSON (fs_output.flow_json), so the API looks the same.
 *
 * Next to the closed records, each funnel shows the running counts of its
 * windows still open ("open": entered, reached and completed so far), which
 * the caller takes from the engine (fs_engine_open_counts) at render time.
 */
#ifndef FS_BOARD_H
#define FS_BOARD_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"
#include "worker.h"

#define FS_BOARD_RECENT 60

typedef struct fs_board fs_board;

fs_board *fs_board_new(const fs_config *cfg);
void fs_board_free(fs_board *b);
/* The JSON text of a flow record of funnel `funnel` (config order), as
 * written to the output. */
void fs_board_post(fs_board *b, uint32_t funnel, const char *json, size_t len);
/* The /api/funnels document; watermark INT64_MIN renders as null. open:
 * fs_engine_open_counts' array (sorted by funnel, then window start). */
void fs_board_render(fs_board *b, int64_t watermark, const fs_open_count *open, uint32_t n_open,
                     fs_buf *out);

#endif
