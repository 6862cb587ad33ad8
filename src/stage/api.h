/* api.h -- the stage's HTTP endpoints, served on its own loop (http.h).
 *
 *   /metrics       Prometheus text (metrics.h): the stage's counters, lag
 *                  and committed offset per partition, the close ->
 *                  acknowledged latency histogram
 *   /health        200 while the loop answers
 *   /ready         200 when partitions are assigned, nothing failed, the
 *                  stage is running and the consumer lag is below
 *                  READY_MAX_LAG; 503 otherwise
 *   /api/funnels   the live board (board.h) and the open windows' counts
 *   /api/journeys  a customer's active journeys (lookup.h)
 *   /              the dashboard, built into the binary
 *
 * A taken http.listen address is logged as an error and the stage runs on
 * without HTTP: the data path matters more than its observation. Handlers
 * run on the loop thread and read the stage's state directly.
 */
#ifndef FS_API_H
#define FS_API_H

#include "sink.h"
#include "stage.h"
#include "stage_internal.h"

/* Creates the board and starts the HTTP server (logging where, or why not). */
void fs_api_start(fs_stage *s, const fs_stage_opts *opts);
/* Stops accepting and closes the server's handles (the loop is ending). */
void fs_api_stop(fs_stage *s);
void fs_api_free(fs_stage *s);
/* fs_output.flow_json: every flow record, for the board. */
void fs_api_flow_from_sink(void *ctx, const fs_flow_json *rec);

#endif
